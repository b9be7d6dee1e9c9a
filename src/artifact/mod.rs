//! Artifacts: the things users hand mkimage (binaries, directory trees,
//! venvs, jars, runtime profiles). Each adds entries to the layer trees,
//! with every native dependency it needs.

mod assembly;
pub mod binary;
pub mod classpath;
pub mod dir;
pub mod gconv;
pub mod jar;
pub mod java;
pub mod jlink;
pub mod layering;
pub mod profile;
pub mod python;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::resolve::versions::VersionMissing;
use crate::resolve::{Closure, Missing, ResolveError};
use crate::rootfs::{ImagePath, LayerKind, PathError, RootfsError};

pub use assembly::{Assembly, Gathered, KeptLink};

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    Path(#[from] PathError),
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is a directory; use --from-dir for directories")]
    Directory { path: PathBuf },
    #[error("{path} is not a directory")]
    NotDirectory { path: PathBuf },
    #[error("{}", missing_message(.missing))]
    NotFound { missing: Vec<Missing> },
    #[error("{}", versions_message(.missing))]
    Versions { missing: Vec<VersionMissing> },
    #[error("reading symbol versions: {0}")]
    VersionsUnreadable(std::sync::Arc<crate::elf::ElfError>),
    #[error(
        "{path} is built for {found}, but the image is for {expected}; one image holds one architecture"
    )]
    MixedArch {
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error(
        "{path} is built for {found}, but --platform says {given}; give --platform {actual} or leave it out"
    )]
    PlatformMismatch {
        path: PathBuf,
        found: String,
        given: crate::elf::Arch,
        actual: crate::elf::Arch,
    },
    #[error(
        "{path} is built for {found}, which no OCI platform mkimage knows runs \
         (linux/amd64, 386, arm64, arm/v7, arm/v5, ppc64le, s390x, riscv64, loong64)"
    )]
    UnsupportedMachine { path: PathBuf, found: String },
    #[error("{what}: {why}")]
    Invalid { what: String, why: String },
    #[error("{command} failed: {why}")]
    Tool { command: String, why: String },
}

impl ArtifactError {
    pub fn invalid(what: impl std::fmt::Display, why: impl Into<String>) -> Self {
        ArtifactError::Invalid {
            what: what.to_string(),
            why: why.into(),
        }
    }

    pub fn io(path: &Path, source: std::io::Error) -> Self {
        ArtifactError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

fn missing_message(missing: &[Missing]) -> String {
    let mut s = format!(
        "{} shared librar{} not found:",
        missing.len(),
        if missing.len() == 1 { "y" } else { "ies" }
    );
    for m in missing {
        s.push_str("\n  ");
        s.push_str(&m.to_string().replace('\n', "\n  "));
    }
    s.push_str("\nInstall the package that provides it, add its directory with --sysroot or LD_LIBRARY_PATH (--env), or add the file with --include.");
    s
}

fn versions_message(missing: &[VersionMissing]) -> String {
    let mut s = format!(
        "{} symbol version{} the loader would not find (it would stop the program with \"version ... not found\"):",
        missing.len(),
        if missing.len() == 1 { "" } else { "s" }
    );
    for m in missing {
        s.push_str("\n  ");
        s.push_str(&m.to_string());
    }
    s.push_str("\nThe program was built against newer libraries than the image holds: build it on (or for) the image's distribution, or take the libraries from a newer root (--sysroot).");
    s
}

/// No sonames provided by a tree.
pub static NO_SONAMES: BTreeSet<OsString> = BTreeSet::new();

/// How a host path given on the command line appears in provenance: its
/// last component only, so that the image (whose manifest names the
/// provenance blob) does not depend on where the build ran, e.g. a
/// Bazel sandbox or a CI checkout directory.
pub fn source_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

/// How to treat libraries that are not found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MissingPolicy<'a> {
    /// The build fails (programs the image runs).
    Error,
    /// A warning (libraries inside a tree, e.g. a JDK's optional GUI
    /// plugins, that may never be loaded). Names in the set are not even
    /// that: they are sonames of other libraries of the same tree, which
    /// the program loads by path first (a JVM's libjvm.so, an
    /// interpreter's libpython), so the loader finds them by soname.
    Warn(&'a BTreeSet<OsString>),
}

/// Places a resolved closure: system libraries (with their symlink chains)
/// in the libraries layer; files the input's `$ORIGIN` reaches outside the
/// root in `layer`, at their image paths. The input itself is placed by
/// the caller.
pub(crate) fn add_closure(
    asm: &mut Assembly,
    closure: &Closure,
    layer: LayerKind,
    origin: &str,
    policy: MissingPolicy<'_>,
) -> Result<(), ArtifactError> {
    for (path, why) in &closure.bad_notes {
        asm.warn(format!(
            "{}: {why}; the libraries it names are not added [{origin}]",
            path.display()
        ));
    }
    let missing: Vec<Missing> = closure.required_missing().cloned().collect();
    if !missing.is_empty() {
        match policy {
            MissingPolicy::Error => return Err(ArtifactError::NotFound { missing }),
            MissingPolicy::Warn(provided) => {
                for m in missing.into_iter().filter(|m| !provided.contains(&m.name)) {
                    asm.warn(format!(
                        "{} needed by {} not found (the program may fail if it loads it) [{origin}]",
                        m.name.to_string_lossy(),
                        m.needed_by.display()
                    ));
                }
            }
        }
    }
    // With a base, the library the loader opens is the base's where it has
    // one: check versions against that file, and do not copy ours.
    let from_base = |o: &crate::resolve::Object| -> Option<PathBuf> {
        let base = asm.base()?;
        if !o.in_root {
            return None;
        }
        base.lookup(&o.path.to_string_lossy())?;
        Some(base.extracted(&o.path.to_string_lossy())?.to_path_buf())
    };
    let mut seen = closure.clone();
    let mut provided = BTreeSet::new();
    for (i, o) in seen.objects.iter_mut().enumerate().skip(1) {
        if let Some(host) = from_base(o) {
            o.host = host;
            provided.insert(i);
        }
    }
    let mut versions = crate::resolve::versions::check(&mut asm.resolver, &seen)
        .map_err(ArtifactError::VersionsUnreadable)?;
    // Name the base's file as the image has it, not its extracted copy.
    for m in &mut versions {
        if let Some(o) = provided
            .iter()
            .map(|&i| &seen.objects[i])
            .find(|o| o.host == m.library_host)
        {
            m.library_path = o.path.clone();
            m.library_host = PathBuf::from("the --base image");
        }
    }
    if !versions.is_empty() {
        match policy {
            MissingPolicy::Error => return Err(ArtifactError::Versions { missing: versions }),
            MissingPolicy::Warn(_) => {
                for m in versions {
                    asm.warn(format!(
                        "{m} (the program may fail if it loads it) [{origin}]"
                    ));
                }
            }
        }
    }
    for (i, o) in closure.objects.iter().enumerate().skip(1) {
        if provided.contains(&i) {
            asm.note_once(format!("{} comes from the base image", o.path.display()));
            continue;
        }
        let why = match (&o.reason, o.needed_by) {
            (reason, Some(by)) => format!(
                "{} ({reason}) of {} [{origin}]",
                o.name.to_string_lossy(),
                closure.objects[by].path.display()
            ),
            (reason, None) => format!("{reason} [{origin}]"),
        };
        // The requester's real file: the path its own reason is recorded
        // under (for the input, where the caller placed it). Recorded here
        // first, so the `record` inside `add` keeps it.
        let needed_by = o
            .needed_by
            .map(|by| closure.objects[by].real.display().to_string());
        let kind = if o.in_root { LayerKind::Libs } else { layer };
        if let (Some(found_by), Some(by)) = (&o.found_by, o.needed_by) {
            asm.explain(format!(
                "{} => {} (needed by {}): {found_by}",
                o.name.to_string_lossy(),
                o.path.display(),
                closure.objects[by].path.display()
            ));
        }
        asm.add_links(
            kind,
            &o.links,
            &format!("symlink to {why}"),
            needed_by.as_ref(),
        )?;
        let real = ImagePath::new(&o.real)?;
        asm.record_origin(&real, why.clone(), needed_by);
        asm.add_host(kind, &o.host, real, why)?;
    }
    Ok(())
}
