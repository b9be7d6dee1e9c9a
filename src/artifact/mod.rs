//! Artifacts: the things users hand mkimage (binaries, directory trees,
//! venvs, jars, runtime profiles). Each adds entries to the layer trees,
//! with every native dependency it needs.

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

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::resolve::versions::VersionMissing;
use crate::resolve::{Closure, Input, Link, Missing, ResolveError, Resolver};
use crate::rootfs::host::{self, Grant};
use crate::rootfs::{Entry, ImagePath, LayerKind, LayerSet, PathError, RootfsError};

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

/// Why one image path is in the image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// For people: which artifact, and which dependency brought it in.
    pub why: String,
    /// The image path of the file that needs this one (a library's
    /// requester), so `inspect --why` can walk the chain back to the
    /// artifact.
    pub needed_by: Option<String>,
}

/// What artifacts add to: the layer trees, the resolver (shared so ELF
/// headers are read once), messages for the user, and where every file
/// came from.
pub struct Context {
    pub resolver: Resolver,
    pub layers: LayerSet,
    pub warnings: Vec<String>,
    /// Informational lines for the summary (e.g. jlink sizes).
    pub notes: Vec<String>,
    /// How the resolver found each library, one line each, for `-v`.
    pub reasoning: Vec<String>,
    /// Image path → why it is in the image (for `mkimage inspect --why`).
    pub provenance: BTreeMap<String, Origin>,
    /// The program `--dlopen` libraries are opened by: the first one added.
    pub main_input: Option<Input>,
    /// Temporary trees (a jlink runtime) read when layers are written.
    pub temps: Vec<tempfile::TempDir>,
    /// The architecture of the first program added: the image's.
    pub ident: Option<crate::elf::Ident>,
    /// The platform `--platform` gave, which every program must match.
    pub platform: Option<crate::elf::Arch>,
    /// Files a profile wrote (its `[[file]]`s), which a later input at
    /// the same path replaces: their layer and who wrote them.
    pub generated: BTreeMap<ImagePath, (LayerKind, String)>,
    /// Symlinks of users' trees that lead out of them, kept as links
    /// ([`dir::Links::Keep`]); checked once the image is complete.
    pub kept_links: Vec<KeptLink>,
    /// `--base`: the base image's files; libraries it has where the
    /// loader looks are used from it and not copied.
    pub base: Option<std::sync::Arc<crate::rootfs::base_view::BaseView>>,
    /// Programs that import `iconv_open` (image paths), for `--gconv auto`.
    pub iconv_users: Vec<String>,
}

/// A symlink of a user's tree that leads out of it, kept as it is.
#[derive(Clone, Debug)]
pub struct KeptLink {
    pub at: ImagePath,
    /// Where the link is on the host.
    pub host: PathBuf,
    pub target: PathBuf,
    pub layer: LayerKind,
    pub origin: String,
}

impl Context {
    /// Adds a note unless it is there already.
    pub fn notes_once(&mut self, note: String) {
        if !self.notes.contains(&note) {
            self.notes.push(note);
        }
    }

    pub fn new(resolver: Resolver) -> Self {
        Context {
            resolver,
            layers: LayerSet::default(),
            warnings: Vec::new(),
            notes: Vec::new(),
            reasoning: Vec::new(),
            provenance: BTreeMap::new(),
            main_input: None,
            temps: Vec::new(),
            ident: None,
            platform: None,
            kept_links: Vec::new(),
            generated: BTreeMap::new(),
            base: None,
            iconv_users: Vec::new(),
        }
    }

    /// Warns about each kept link whose target the finished image lacks,
    /// naming the flag that adds it. A link whose target the image holds
    /// anyway is fine and says nothing; so is one that reaches a file the
    /// image holds through further symlinks of the root (a venv's
    /// `bin/python3 -> /usr/bin/python3 -> python3.11`, once the
    /// interpreter is added): those symlinks are added, and they carry no
    /// host content.
    pub fn check_kept_links(&mut self) -> Result<(), ArtifactError> {
        for link in std::mem::take(&mut self.kept_links) {
            if self.layers.resolves(&link.at) {
                continue;
            }
            let parent = link.at.parent().unwrap_or_else(ImagePath::root);
            let host = crate::image_path::normalise(&parent.as_path().join(&link.target));
            if let Ok(Some(found)) = self.resolver.root().lookup(&host)
                && ImagePath::new(&found.real).is_ok_and(|real| self.layers.contains(&real))
            {
                let why = format!("symlink on the way from {} [{}]", link.at, link.origin);
                self.add_links(link.layer, &found.links, &why, None)?;
                if self.layers.resolves(&link.at) {
                    continue;
                }
            }
            let host_target = link.host.parent().map_or_else(
                || link.target.clone(),
                |dir| crate::image_path::normalise(&dir.join(&link.target)),
            );
            self.warnings.push(format!(
                "{} -> {} leads out of the tree and its target is not in the image: \
                 kept as a dangling link; add the target with --include {}[:DST], \
                 or follow such links with --follow-links [{}]",
                link.at,
                link.target.display(),
                host_target.display(),
                link.origin
            ));
        }
        Ok(())
    }

    /// Records a program's architecture; one image holds one, which
    /// `--platform` (when given) names.
    pub fn check_arch(
        &mut self,
        ident: crate::elf::Ident,
        path: &Path,
    ) -> Result<(), ArtifactError> {
        let Some(arch) = ident.arch() else {
            return Err(ArtifactError::UnsupportedMachine {
                path: path.to_path_buf(),
                found: ident.describe(),
            });
        };
        if let Some(given) = self.platform
            && given != arch
        {
            return Err(ArtifactError::PlatformMismatch {
                path: path.to_path_buf(),
                found: ident.describe(),
                given,
                actual: arch,
            });
        }
        match &self.ident {
            None => {
                self.ident = Some(ident);
                Ok(())
            }
            Some(first) if first.compatible_with(&ident) => Ok(()),
            Some(first) => Err(ArtifactError::MixedArch {
                path: path.to_path_buf(),
                found: ident.describe(),
                expected: first.describe(),
            }),
        }
    }

    /// Records why `path` is in the image; the first reason given wins
    /// (a library two programs need is there for the first).
    pub fn record(&mut self, path: impl ToString, why: impl Into<String>) {
        self.record_origin(path, why, None);
    }

    /// [`Context::record`] for a file that `needed_by` (an image path)
    /// needs.
    pub fn record_origin(
        &mut self,
        path: impl ToString,
        why: impl Into<String>,
        needed_by: Option<String>,
    ) {
        self.provenance
            .entry(path.to_string())
            .or_insert_with(|| Origin {
                why: why.into(),
                needed_by,
            });
    }

    /// Adds an entry to a layer (once per image) and records why. An
    /// entry at the path of a file a profile wrote replaces that file, as
    /// `COPY nginx.conf /etc/nginx/` does in a Dockerfile, and the build
    /// says so.
    pub fn add(
        &mut self,
        kind: LayerKind,
        path: ImagePath,
        entry: Entry,
        why: impl Into<String>,
    ) -> Result<(), ArtifactError> {
        let why = why.into();
        if let Some((layer, writer)) = self.generated.get(&path).cloned() {
            let tree = self.layers.tree(layer);
            let same = match tree.get(&path) {
                Some(old) => host::same_entry(old, &entry)?,
                None => false,
            };
            if !same {
                tree.remove(&path);
                self.generated.remove(&path);
                self.notes
                    .push(format!("{path}: {why} replaces the file {writer} writes"));
                self.provenance.remove(&path.to_string());
            }
        }
        self.record(&path, why);
        self.layers.insert(kind, path, entry)?;
        Ok(())
    }

    /// [`Context::add`] for a file a profile writes, which a later input
    /// at the same path replaces.
    pub fn add_generated(
        &mut self,
        kind: LayerKind,
        path: ImagePath,
        entry: Entry,
        writer: &str,
    ) -> Result<(), ArtifactError> {
        self.add(kind, path.clone(), entry, writer)?;
        self.generated.insert(path, (kind, writer.to_string()));
        Ok(())
    }

    /// Adds the symlinks a lookup crossed, in order, each recorded as there
    /// for `why` (and for `needed_by`, when a file needs it).
    pub fn add_links(
        &mut self,
        kind: LayerKind,
        links: &[Link],
        why: &str,
        needed_by: Option<&String>,
    ) -> Result<(), ArtifactError> {
        for link in links {
            let at = ImagePath::new(&link.at)?;
            self.record_origin(&at, why, needed_by.cloned());
            self.add(kind, at, Entry::symlink(&link.target), why)?;
        }
        Ok(())
    }

    /// Adds a host file (or symlink, or directory entry) that mkimage
    /// found (a library, a runtime's file) at `image`, shared no more
    /// widely than the host shares it.
    pub fn add_host(
        &mut self,
        kind: LayerKind,
        host_path: &Path,
        image: ImagePath,
        why: impl Into<String>,
    ) -> Result<(), ArtifactError> {
        self.add_with(kind, host_path, image, Grant::Host, why)
    }

    /// Adds a host file the user named (`--from-binary`, `--include
    /// FILE`, a jar) at `image`: readable by the image's user.
    pub fn add_named(
        &mut self,
        kind: LayerKind,
        host_path: &Path,
        image: ImagePath,
        why: impl Into<String>,
    ) -> Result<(), ArtifactError> {
        self.add_with(kind, host_path, image, Grant::Named, why)
    }

    fn add_with(
        &mut self,
        kind: LayerKind,
        host_path: &Path,
        image: ImagePath,
        grant: Grant,
        why: impl Into<String>,
    ) -> Result<(), ArtifactError> {
        let entry = host::host_entry(host_path, &image, grant, &mut self.warnings)?;
        self.add(kind, image, entry, why)
    }
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
    cx: &mut Context,
    closure: &Closure,
    layer: LayerKind,
    origin: &str,
    policy: MissingPolicy<'_>,
) -> Result<(), ArtifactError> {
    for (path, why) in &closure.bad_notes {
        cx.warnings.push(format!(
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
                    cx.warnings.push(format!(
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
        let base = cx.base.as_ref()?;
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
    let mut versions = crate::resolve::versions::check(&mut cx.resolver, &seen)
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
                    cx.warnings.push(format!(
                        "{m} (the program may fail if it loads it) [{origin}]"
                    ));
                }
            }
        }
    }
    for (i, o) in closure.objects.iter().enumerate().skip(1) {
        if provided.contains(&i) {
            cx.notes_once(format!("{} comes from the base image", o.path.display()));
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
            cx.reasoning.push(format!(
                "{} => {} (needed by {}): {found_by}",
                o.name.to_string_lossy(),
                o.path.display(),
                closure.objects[by].path.display()
            ));
        }
        cx.add_links(
            kind,
            &o.links,
            &format!("symlink to {why}"),
            needed_by.as_ref(),
        )?;
        let real = ImagePath::new(&o.real)?;
        cx.record_origin(&real, why.clone(), needed_by);
        cx.add_host(kind, &o.host, real, why)?;
    }
    Ok(())
}
