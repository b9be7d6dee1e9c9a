//! The build pipeline: plan → artifacts → layer trees → layer blobs →
//! provenance, config and manifest → references → (archive). Everything that can
//! fail on bad input fails before the output is touched; blobs are written
//! through temp files and `index.json` is replaced last, so an interrupted
//! build leaves the previous layout valid. An archive is built as a layout
//! in a temporary directory beside it, converted, and renamed into place.

mod ahead;
mod artifacts;
pub mod base_image;
mod base_layer;
mod checks;
mod copy_from;
pub mod debug;
mod image;
mod ld_cache;
pub mod multi;

use std::path::{Path, PathBuf};

use crate::archive::{self, ArchiveError};
use crate::artifact::{ArtifactError, Assembly};
use crate::base_files::BaseFilesError;
use crate::cache::{FileMemo, LayerCache};
use crate::digest::Digest;
use crate::elf::Arch;
use crate::layer::LayerError;
use crate::oci::{self, Layout, OciError};
use crate::plan::{BuildPlan, OutputFormat};
use crate::resolve::{Options, Resolver, Root};
use crate::rootfs::{LayerKind, RootfsError, base, host};
use crate::sbom::{self, HashMemo, Inventory, SbomError};
use ahead::Ahead;

use artifacts::{add_artifacts, open_root_for_artifacts};
use base_layer::{add_base, add_locale};
use image::{image_spec, write, write_archive};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    BaseFiles(#[from] BaseFilesError),
    #[error(transparent)]
    Oci(#[from] OciError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Sbom(#[from] SbomError),
    #[error("cannot create a temporary directory in {}: {source}", dir.display())]
    TempDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing the {layer} layer: {source}")]
    Layer {
        layer: &'static str,
        #[source]
        source: LayerError,
    },
    #[error("cannot write the SBOM to {}: {source}", path.display())]
    SbomFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the image holds no program to take its platform from, and this machine's is not one mkimage knows: give --platform"
    )]
    NoPlatform,
    #[error("sysroot {path}: {source}")]
    Sysroot {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "nothing to build: give --from-binary, --from-dir, --from-venv, --from-jar or --profile"
    )]
    Empty,
    #[error("--debug takes busybox from {}, which {why}: apt-get install busybox-static (in the --sysroot, for another root)", path.display())]
    Debug { path: PathBuf, why: String },
    #[error("--copy-from {from}: {why}")]
    CopyFrom { from: String, why: String },
    #[error("--base {base}: {why}")]
    Base { base: String, why: String },
    #[error("multi-platform build: {why}")]
    MultiPlatform { why: String },
    #[error("the entrypoint {path} {why}")]
    Entrypoint { path: String, why: String },
}

impl BuildError {
    /// Whether the failure is a library the loader would not find (exit 1,
    /// as with `mkimage ldd`).
    pub fn is_not_found(&self) -> bool {
        matches!(self, BuildError::Artifact(ArtifactError::NotFound { .. }))
    }
}

/// Progress of a build, for a progress bar.
#[derive(Clone, Debug)]
pub enum Event {
    Resolved {
        files: usize,
        bytes: u64,
    },
    LayerStart {
        layer: &'static str,
        bytes: u64,
    },
    /// The layer started last is written.
    LayerDone,
    /// The image is complete; converting it to an archive.
    Archive {
        format: OutputFormat,
    },
}

#[derive(Clone, Debug)]
pub struct BuiltLayer {
    pub kind: LayerKind,
    pub digest: Digest,
    /// The digest of the uncompressed tar (the config's `rootfs.diff_ids`).
    pub diff_id: Digest,
    pub size: u64,
    /// The descriptor's media type, e.g. `application/vnd.oci.image.layer.v1.tar+gzip`.
    pub media_type: String,
    pub files: usize,
    /// Taken from the layer cache, not written.
    pub cached: bool,
}

/// What a build wrote.
#[derive(Clone, Debug)]
pub struct Built {
    /// The manifest's descriptor as `index.json` holds it (naming its
    /// referrers).
    pub entry: oci_spec::image::Descriptor,
    pub platform: Arch,
    pub output: PathBuf,
    pub format: OutputFormat,
    pub references: Vec<String>,
    pub manifest_digest: Digest,
    /// The manifest's size in bytes (with its digest, its descriptor).
    pub manifest_size: u64,
    pub layers: Vec<BuiltLayer>,
    /// `--debug`: the debug image's references and manifest digest.
    pub debug: Option<(Vec<String>, Digest)>,
    pub architecture: String,
    /// The platform's variant (`v8` for arm64), if it has one.
    pub variant: Option<String>,
    pub warnings: Vec<String>,
    /// Informational lines (e.g. the size a jlink runtime saved).
    pub notes: Vec<String>,
    /// How the resolver found each library (`-v`).
    pub reasoning: Vec<String>,
    /// Whether the layer cache was used (not `--no-cache`, and usable).
    pub cache_used: bool,
}

impl Built {
    pub fn compressed_size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }

    /// The layers taken from the cache, by name; `None` when the cache
    /// was not used.
    pub fn cache_reused(&self) -> Option<Vec<&'static str>> {
        self.cache_used.then(|| {
            self.layers
                .iter()
                .filter(|l| l.cached)
                .map(|l| l.kind.name())
                .collect()
        })
    }
}

pub fn build(plan: &BuildPlan, progress: &dyn Fn(Event)) -> Result<Built, BuildError> {
    build_with(plan, progress, true)
}

/// [`build`] into a layout without tagging: the manifest and its
/// referrers are stored and `index.json` is left as it was, for an image
/// index that lists the manifest ([`multi::build_index`]).
pub fn build_untagged(plan: &BuildPlan, progress: &dyn Fn(Event)) -> Result<Built, BuildError> {
    build_with(plan, progress, false)
}

fn build_with(plan: &BuildPlan, progress: &dyn Fn(Event), tag: bool) -> Result<Built, BuildError> {
    if plan.binaries.is_empty()
        && plan.dirs.is_empty()
        && plan.includes.is_empty()
        && plan.copy_from.is_empty()
        && plan.venvs.is_empty()
        && plan.jars.is_empty()
        && plan.profiles.is_empty()
    {
        return Err(BuildError::Empty);
    }
    // Refuse a bad output before doing any work.
    check_output(plan)?;
    // Opened before any input is looked at: see LayerCache::open.
    let (mut cache, cache_warning) = match plan.cache.as_ref().map(LayerCache::open) {
        Some(Ok(c)) => (Some(c), None),
        Some(Err(warning)) => (None, Some(warning)),
        None => (None, None),
    };

    let sysroot = std::fs::canonicalize(&plan.sysroot).map_err(|source| BuildError::Sysroot {
        path: plan.sysroot.clone(),
        source,
    })?;
    // The package database is read and its file lists' metadata taken
    // while the image is assembled, which never needs it: on a warm
    // rebuild that is a tenth of the work, done on the other core. So is
    // all of the zone data walked, while the app is.
    let database = {
        let root = sysroot.clone();
        Ahead::start("dpkg database", move || {
            sbom::dpkg::Database::open(&mut Root::new(root))
        })
    };
    let zoneinfo = match plan.tzdata {
        crate::base_files::tzdata::Tzdata::All => {
            let root = sysroot.clone();
            Ahead::start("zoneinfo", move || {
                crate::base_files::tzdata::walk_all(&mut Root::new(root))
            })
        }
        _ => Ahead::none(),
    };
    let resolver = Resolver::new(Options {
        root: sysroot,
        ld_library_path: plan.config.env_var("LD_LIBRARY_PATH").map(Into::into),
        companions: true,
    });
    // The base is read first: its files decide which libraries the
    // closure takes from it. Its platform is the one asked for, else this
    // machine's; the programs must then match it.
    let (base, platform) = match &plan.base {
        Some(b) => {
            let arch = plan
                .platform
                .or_else(Arch::host)
                .ok_or(BuildError::NoPlatform)?;
            (Some(base_image::open(b, arch)?), Some(arch))
        }
        None => (None, plan.platform),
    };
    let mut asm = Assembly::new(
        resolver,
        platform,
        base.as_ref().map(|image| image.view.clone()),
    );
    // --copy-from trees are extracted, then included like --include.
    let with_copies;
    let plan = if plan.copy_from.is_empty() {
        plan
    } else {
        let arch = asm
            .platform()
            .or_else(Arch::host)
            .ok_or(BuildError::NoPlatform)?;
        let mut p = plan.clone();
        for copy in &plan.copy_from {
            let tmp = copy_from::temp_dir().map_err(|source| BuildError::TempDir {
                dir: std::env::temp_dir(),
                source,
            })?;
            p.includes.push(copy_from::extract(copy, arch, tmp.path())?);
            asm.keep_temp(tmp);
        }
        with_copies = p;
        &with_copies
    };
    let defaults = add_artifacts(&mut asm, plan)?;
    // Every program was checked against the first and --platform; an
    // image of no program (files, a venv of pure Python) is for the
    // platform given, else for the machine mkimage runs on.
    let arch = match asm.arch() {
        Some(arch) => arch,
        None => plan
            .platform
            .or_else(Arch::host)
            .ok_or(BuildError::NoPlatform)?,
    };
    let platform = crate::source::platform::of_arch(arch);

    let debug = if plan.debug {
        Some(debug::prepare(&mut asm, arch)?)
    } else {
        None
    };
    crate::artifact::gconv::add_gconv(&mut asm, &plan.gconv)?;
    add_locale(&mut asm, &plan.locales)?;
    ld_cache::add_ld_cache(&mut asm, plan, arch)?;
    let bundle = add_base(&mut asm, plan, base.as_ref(), zoneinfo)?;
    asm.check_kept_links()?;
    open_root_for_artifacts(&mut asm)?;
    checks::check_programs(&mut asm);
    let inventory = add_package_records(
        &mut asm,
        plan,
        database,
        cache.as_ref().and_then(|c| c.memo()),
    )?;
    if let Some(b) = &base {
        base_image::follow_base_links(&mut asm.layers, &b.view)?;
    }
    asm.layers.harmonise_dirs();
    for tree in asm.layers.trees.values_mut() {
        host::link_hardlinks(tree)?;
    }
    let files: usize = asm.layers.layers().map(|(_, t)| t.len()).sum();
    let bytes: u64 = asm.layers.layers().map(|(_, t)| t.content_size()).sum();
    progress(Event::Resolved { files, bytes });

    // The image's /etc/passwd and /etc/group are mkimage's own (inputs
    // may not replace them), so names resolve against those.
    let (passwd, group) = base_layer::users(&asm);
    let base_user = base
        .as_ref()
        .and_then(|b| b.config())
        .and_then(|c| c.user().clone())
        .filter(|u| !u.is_empty() && !plan.config.user_given);
    let run_as = match &base_user {
        // The base's user, as its config says it (its passwd decides).
        Some(u) => base::resolve_user(
            &base::UserSpec::parse(u).map_err(|e| BuildError::Base {
                base: plan
                    .base
                    .as_ref()
                    .map(|b| b.reference.clone())
                    .unwrap_or_default(),
                why: format!("its User {u:?}: {e}"),
            })?,
            &passwd,
            &group,
        )?,
        None => base::resolve_user(&plan.config.user, &passwd, &group)?,
    };
    if run_as.uid == 0 {
        asm.warn(format!(
            "--user {}: the image runs as root (uid 0); leave --user out to run as the non-root user {}",
            plan.config.user.given,
            base::DEFAULT_USER
        ));
    }
    let spec = image_spec(
        plan,
        &defaults,
        bundle,
        &platform,
        run_as,
        base.as_ref().and_then(|b| b.config()),
    );
    check_entrypoint(&mut asm, &spec, run_as)?;
    if spec.entrypoint.is_empty() && spec.cmd.is_empty() {
        asm.warn("the image has no entrypoint or cmd: give --entrypoint");
    }
    let gathered = asm.finish();

    let extra = image::Extra {
        debug: debug.as_ref(),
        base: base.as_ref(),
    };
    let parts = image::Parts {
        gathered: &gathered,
        inventory: &inventory,
        spec: &spec,
    };
    let written = match plan.format {
        OutputFormat::Oci => {
            // From here on we write. If we created the directory and fail,
            // remove it; an existing layout keeps its old index.json.
            let existed = plan.output.exists();
            let result = write(
                plan,
                parts,
                extra,
                &plan.output,
                cache.as_mut(),
                progress,
                tag,
            );
            if result.is_err() && !existed {
                // Best effort, and never another build's images.
                let _ = Layout::remove_if_untagged(&plan.output);
            }
            result?
        }
        format => write_archive(plan, format, parts, extra, cache.as_mut(), progress)?,
    };
    if let Some(path) = &plan.sbom {
        write_sbom_file(path, &written.sbom)?;
    }
    // The temporary trees the layers were read from are no longer needed.
    drop(gathered.temps);
    let mut warnings = gathered.warnings;
    warnings.extend(cache_warning);
    if let Some(c) = &mut cache {
        c.finish();
        warnings.extend(c.take_warning());
    }
    let (manifest_digest, layers, debug) = (written.digest, written.layers, written.debug);
    Ok(Built {
        platform: arch,
        output: plan.output.clone(),
        format: plan.format,
        references: plan.references.clone(),
        manifest_digest,
        manifest_size: written.entry.size(),
        entry: written.entry,
        layers,
        debug,
        architecture: platform.architecture.clone(),
        variant: platform.variant.clone(),
        warnings,
        notes: gathered.notes,
        reasoning: gathered.reasoning,
        cache_used: cache.is_some(),
    })
}

/// The program the image starts must be one its user can run: an
/// absolute entrypoint (or cmd, without one) that the image holds is
/// checked as execve(2) would check it. One the image lacks is only a
/// warning, since it may come from a volume at run time.
fn check_entrypoint(
    asm: &mut Assembly,
    spec: &oci::ImageSpec,
    run_as: base::RunAs,
) -> Result<(), BuildError> {
    let Some(program) = spec.entrypoint.first().or(spec.cmd.first()) else {
        return Ok(());
    };
    if !program.starts_with('/') {
        return Ok(());
    }
    let Ok(path) = crate::rootfs::ImagePath::new(program) else {
        return Ok(());
    };
    let fail = |why: String| BuildError::Entrypoint {
        path: program.clone(),
        why,
    };
    let Some((real, entry)) = asm.layers.resolve(path.as_path()) else {
        asm.warn(format!(
            "the entrypoint {program} is not in the image: the container will fail to start unless it is mounted there"
        ));
        return Ok(());
    };
    if !matches!(
        entry.kind,
        crate::rootfs::Kind::File { .. } | crate::rootfs::Kind::Hardlink { .. }
    ) {
        return Err(fail(format!(
            "is {} in the image, not a program",
            crate::rootfs::tree::describe(&entry.kind)
        )));
    }
    let mode = entry.mode;
    if mode & 0o111 == 0 {
        return Err(fail(format!(
            "({real}) has mode {mode:04o}: nobody may run it; make it executable (chmod +x) before the build"
        )));
    }
    // Owner, then group, then others, as the kernel checks; root needs
    // any one execute bit.
    let bit = if run_as.uid == 0 {
        0o111
    } else if run_as.uid == entry.uid {
        0o100
    } else if run_as.gid == Some(entry.gid) {
        0o010
    } else {
        0o001
    };
    if mode & bit == 0 {
        return Err(fail(format!(
            "({real}) has mode {mode:04o} and owner {}:{}: the image's user {run_as} may not run it; make it executable for others (chmod o+x) or change --user",
            entry.uid, entry.gid
        )));
    }
    Ok(())
}

/// Surveys the file tree against the root's dpkg database and adds the
/// package records and os-release scanners read; says once when the root
/// has no database.
fn add_package_records(
    asm: &mut Assembly,
    plan: &BuildPlan,
    database: Ahead<sbom::Opened>,
    memo: Option<&FileMemo>,
) -> Result<Inventory, BuildError> {
    let mut warnings = Vec::new();
    let added = sbom::add_os_release(&mut asm.layers, asm.resolver.root(), &mut warnings);
    asm.warn_all(warnings);
    for (path, why) in added? {
        asm.record(&path, why);
    }
    let database = database
        .take()
        .unwrap_or_else(|| sbom::dpkg::Database::open(asm.resolver.root()));
    let mut warnings = Vec::new();
    let inventory = sbom::survey(
        &asm.layers,
        asm.resolver.root(),
        database,
        plan.threads.get(),
        memo.map(|m| m as &dyn HashMemo),
        &mut warnings,
    );
    asm.warn_all(warnings);
    let inventory = inventory?;
    if let Some(why) = &inventory.no_database {
        asm.note(format!(
            "no Debian package records in the image: {why}, so scanners see only the SBOM's files"
        ));
    }
    for (path, why) in sbom::add_records(&mut asm.layers, &inventory).map_err(SbomError::from)? {
        asm.record(&path, why);
    }
    Ok(inventory)
}

/// The survey's hashes are remembered in the layer cache's memo.
impl HashMemo for FileMemo {
    fn lookup(
        &self,
        host: &Path,
        file: &std::fs::Metadata,
        what: &[u8],
    ) -> Result<Vec<u8>, Option<[u8; 32]>> {
        FileMemo::lookup(self, host, file, what)
    }

    fn store(&self, key: [u8; 32], value: Vec<u8>) {
        FileMemo::store(self, key, value)
    }

    fn stamps(&self, file: &std::fs::Metadata) -> Option<[i128; 5]> {
        FileMemo::stamps(self, file)
    }

    fn recall(&self, key: &[u8; 32]) -> Option<Vec<u8>> {
        FileMemo::recall(self, key)
    }

    fn remember(&self, key: [u8; 32], value: Vec<u8>) {
        FileMemo::remember(self, key, value)
    }
}

/// `--sbom FILE`: the SBOM the layout holds, also as a file (written
/// beside it and renamed, so a reader never sees half of it).
fn write_sbom_file(path: &Path, bytes: &[u8]) -> Result<(), BuildError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let err = |source| BuildError::SbomFile {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(err)?;
    std::io::Write::write_all(&mut tmp, bytes).map_err(err)?;
    // A temp file is 0600; the SBOM is for others to read.
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

/// Fails early when the output cannot be written: a layout directory
/// must be absent, empty or a layout; an archive's directory must exist.
fn check_output(plan: &BuildPlan) -> Result<(), BuildError> {
    if plan.format.is_archive() {
        return Ok(archive::check_destination(&plan.output)?);
    }
    let dir = &plan.output;
    match std::fs::read_dir(dir) {
        Err(_) if !dir.exists() => Ok(()),
        Err(_) => Err(OciError::NotADirectory {
            path: dir.to_path_buf(),
        }
        .into()),
        Ok(mut entries) => {
            if entries.next().is_some() {
                Layout::open(dir)?;
            }
            Ok(())
        }
    }
}
