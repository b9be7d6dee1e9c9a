//! The build pipeline: plan → artifacts → layer trees → layer blobs →
//! provenance, config and manifest → tags → (archive). Everything that can
//! fail on bad input fails before the output is touched; blobs are written
//! through temp files and `index.json` is replaced last, so an interrupted
//! build leaves the previous layout valid. An archive is built as a layout
//! in a temporary directory beside it, converted, and renamed into place.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::artifact::binary::{self, add_binary};
use crate::artifact::{ArtifactError, Context, MissingPolicy, dir, java, profile, python};
use crate::digest::Digest;
use crate::elf::Ident;
use crate::layer::{LayerError, LayerOptions, write_layer};
use crate::oci::archive::{self, ArchiveError};
use crate::oci::provenance::{self, FileOrigin, Provenance};
use crate::oci::{self, Descriptor, ImageSpec, LayerInfo, Layout, MediaType, OciError};
use crate::plan::{BuildPlan, OutputFormat, Writable};
use crate::profile::Runtime;
use crate::resolve::{Options, Resolver};
use crate::rootfs::certs::CaCerts;
use crate::rootfs::tzdata::Tzdata;
use crate::rootfs::{Entry, ImagePath, LayerKind, RootfsError, Tree, base, certs, host, tzdata};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    Oci(#[from] OciError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
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
    LayerDone {
        layer: &'static str,
        size: u64,
    },
    /// The image is complete; converting it to an archive.
    Archive {
        format: OutputFormat,
    },
}

#[derive(Clone, Debug)]
pub struct BuiltLayer {
    pub kind: LayerKind,
    pub digest: Digest,
    pub size: u64,
    pub files: usize,
}

/// What a build wrote.
#[derive(Clone, Debug)]
pub struct Built {
    pub output: PathBuf,
    pub format: OutputFormat,
    pub tags: Vec<String>,
    pub manifest_digest: Digest,
    pub layers: Vec<BuiltLayer>,
    pub architecture: String,
    pub warnings: Vec<String>,
    /// Informational lines (e.g. the size a jlink runtime saved).
    pub notes: Vec<String>,
}

impl Built {
    pub fn compressed_size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }
}

pub fn build(plan: &BuildPlan, progress: &dyn Fn(Event)) -> Result<Built, BuildError> {
    if plan.binaries.is_empty()
        && plan.dirs.is_empty()
        && plan.includes.is_empty()
        && plan.venvs.is_empty()
        && plan.jars.is_empty()
        && plan.profiles.is_empty()
    {
        return Err(BuildError::Empty);
    }
    // Refuse a bad output before doing any work.
    check_output(plan)?;

    let sysroot = std::fs::canonicalize(&plan.sysroot).map_err(|source| BuildError::Sysroot {
        path: plan.sysroot.clone(),
        source,
    })?;
    let resolver = Resolver::new(Options {
        root: sysroot,
        ld_library_path: plan.config.env_var("LD_LIBRARY_PATH").map(Into::into),
        companions: true,
    });
    let mut cx = Context::new(resolver);
    let defaults = add_artifacts(&mut cx, plan)?;
    let ident = cx.ident.unwrap_or(Ident {
        is_64: true,
        little_endian: true,
        machine: goblin::elf::header::EM_X86_64,
        osabi: 0,
        abiversion: 0,
        elf_type: 0,
    });
    let platform = oci::platform_from_elf(oci::ElfMachine {
        e_machine: ident.machine,
        class64: ident.is_64,
        little_endian: ident.little_endian,
    })?;

    let bundle = add_base(&mut cx, plan)?;
    open_root_for_artifacts(&mut cx)?;
    cx.layers.harmonize_dirs();
    for tree in cx.layers.trees.values_mut() {
        host::link_hardlinks(tree)?;
    }
    let files: usize = cx.layers.layers().map(|(_, t)| t.len()).sum();
    let bytes: u64 = cx.layers.layers().map(|(_, t)| t.content_size()).sum();
    progress(Event::Resolved { files, bytes });

    let spec = image_spec(plan, &defaults, bundle, &platform);
    if spec.entrypoint.is_empty() && spec.cmd.is_empty() {
        cx.warnings
            .push("the image has no entrypoint or cmd: give --entrypoint".into());
    }

    let (manifest_digest, layers) = match plan.format {
        OutputFormat::Oci => {
            // From here on we write. If we created the directory and fail,
            // remove it; an existing layout keeps its old index.json.
            let existed = plan.output.exists();
            let result = write(plan, &cx, &spec, &plan.output, progress);
            if result.is_err() && !existed {
                let _ = std::fs::remove_dir_all(&plan.output);
            }
            let (_, digest, layers) = result?;
            (digest, layers)
        }
        format => write_archive(plan, format, &cx, &spec, progress)?,
    };
    Ok(Built {
        output: plan.output.clone(),
        format: plan.format,
        tags: plan.tags.clone(),
        manifest_digest,
        layers,
        architecture: platform.architecture.to_string(),
        warnings: cx.warnings,
        notes: cx.notes,
    })
}

/// Config values the artifacts suggest; the user's flags override them.
#[derive(Clone, Debug, Default)]
struct Defaults {
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    workdir: Option<String>,
    env: Vec<(String, String)>,
    expose: Vec<String>,
}

/// Adds every artifact, programs first (the first program is the one
/// `--dlopen` libraries belong to and the default entrypoint).
fn add_artifacts(cx: &mut Context, plan: &BuildPlan) -> Result<Defaults, BuildError> {
    let mut d = Defaults::default();
    for spec in &plan.binaries {
        let bin = add_binary(cx, spec)?;
        if d.entrypoint.is_empty() {
            d.entrypoint = vec![bin.dst.to_string()];
        }
    }
    let mut java_runtime = plan
        .profiles
        .iter()
        .any(|(_, p)| p.runtime == Some(Runtime::Java));
    java_runtime |= !plan.jars.is_empty();
    for (name, profile) in &plan.profiles {
        profile::apply(cx, profile, name, plan.full_stdlib)?;
        if plan.binaries.is_empty() {
            if let Some(e) = &profile.entrypoint {
                d.entrypoint = e.clone();
                d.cmd = profile.cmd.clone().unwrap_or_default();
            }
            if profile.workdir.is_some() {
                d.workdir = profile.workdir.clone();
            }
        }
        d.env
            .extend(profile.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        d.expose.extend(profile.expose.iter().cloned());
    }
    for venv in &plan.venvs {
        let venv = python::Venv::open(venv)?;
        let python = python::add_venv(cx, &venv, plan.full_stdlib)?;
        let bin = venv.image_dir()?.join("bin").map_err(ArtifactError::from)?;
        d.env
            .push(("VIRTUAL_ENV".into(), venv.image_dir()?.to_string()));
        d.env
            .push(("PATH".into(), format!("{bin}:{}", base::PATH_ENV)));
        if d.entrypoint.is_empty() {
            d.entrypoint = vec![python.to_string()];
        }
    }
    if java_runtime {
        let home = java::find_java_home(
            plan.java.home.as_deref(),
            plan.java.env_home.as_deref(),
            plan.java.path.as_deref(),
        )?;
        let jlink_for = plan
            .java
            .jlink
            .then(|| plan.jars.first().map(|j| j.src.as_path()))
            .flatten();
        let java_bin = java::add_java_runtime(cx, &home, jlink_for)?;
        for jar in &plan.jars {
            java::add_jar(cx, &jar.src, &jar.dst)?;
        }
        if d.entrypoint.is_empty() {
            d.entrypoint = vec![java_bin.to_string()];
            if let Some(jar) = plan.jars.first() {
                d.entrypoint
                    .extend(["-jar".to_string(), jar.dst.to_string()]);
            }
        }
    }
    for m in &plan.dirs {
        let origin = format!("--from-dir {}", crate::artifact::source_name(&m.src));
        dir::add_dir(
            cx,
            &m.src,
            &m.dst,
            &dir::app_or_deps,
            &dir::Exclude::default(),
            &origin,
        )?;
    }
    for m in &plan.includes {
        let origin = format!("--include {}", crate::artifact::source_name(&m.src));
        let meta = std::fs::metadata(&m.src).map_err(|e| ArtifactError::io(&m.src, e))?;
        if meta.is_dir() {
            let app = |_: &Path| LayerKind::App;
            dir::add_dir(cx, &m.src, &m.dst, &app, &dir::Exclude::default(), &origin)?;
        } else {
            cx.add_host(LayerKind::App, &m.src, m.dst.clone(), origin.clone())?;
            let input = crate::resolve::Input::outside(&m.src, m.dst.as_path());
            if let Ok(closure) = cx.resolver.resolve(&input) {
                crate::artifact::add_closure(
                    cx,
                    &closure,
                    LayerKind::App,
                    &origin,
                    MissingPolicy::Warn(&crate::artifact::NO_SONAMES),
                )?;
            }
        }
    }
    let mut dlopen: Vec<String> = plan
        .profiles
        .iter()
        .flat_map(|(_, p)| p.dlopen.clone())
        .collect();
    dlopen.extend(plan.dlopen.iter().cloned());
    binary::add_dlopen(cx, &dlopen)?;

    let mut writable: Vec<Writable> = Vec::new();
    for (_, p) in &plan.profiles {
        for w in &p.writable {
            writable.push(Writable {
                path: ImagePath::new(w).map_err(RootfsError::from)?,
                uid: base::NONROOT_UID,
                gid: base::NONROOT_UID,
            });
        }
    }
    writable.extend(plan.writable.iter().cloned());
    for w in writable {
        cx.add(
            LayerKind::App,
            w.path.clone(),
            Entry::dir(0o755).owned(w.uid, w.gid),
            "--writable",
        )?;
    }
    Ok(d)
}

/// /root is 0700 in the base layer; when artifacts live below it (a
/// pyenv interpreter in /root/.pyenv, a venv in /root), the non-root user
/// must be able to pass through it.
fn open_root_for_artifacts(cx: &mut Context) -> Result<(), BuildError> {
    let root_dir = ImagePath::new("/root").map_err(RootfsError::from)?;
    let used = cx
        .layers
        .trees
        .iter()
        .filter(|(k, _)| **k != LayerKind::Base)
        .any(|(_, t)| {
            t.iter()
                .any(|(p, _)| p.as_path().starts_with("/root") && *p != root_dir)
        });
    if used {
        cx.warnings.push(
            "files below /root are in the image: /root is made 0711 so the non-root user can reach them"
                .into(),
        );
        cx.layers
            .tree(LayerKind::Base)
            .insert(root_dir, Entry::dir(0o711))
            .map_err(RootfsError::from)?;
    }
    Ok(())
}

/// Builds the image as a layout in a temporary directory beside the
/// archive (same filesystem, cleaned up however we leave), then converts
/// it.
fn write_archive(
    plan: &BuildPlan,
    format: OutputFormat,
    cx: &Context,
    spec: &ImageSpec,
    progress: &dyn Fn(Event),
) -> Result<(Digest, Vec<BuiltLayer>), BuildError> {
    let dir = archive::parent_dir(&plan.output);
    let tmp = tempfile::Builder::new()
        .prefix(oci::layout::TEMP_PREFIX)
        .tempdir_in(dir)
        .map_err(|source| BuildError::TempDir {
            dir: dir.to_path_buf(),
            source,
        })?;
    let (manifest, digest, layers) = write(plan, cx, spec, tmp.path(), progress)?;
    progress(Event::Archive { format });
    let layout = Layout::open(tmp.path())?;
    match format {
        OutputFormat::OciArchive => archive::write_oci_archive(&layout, &plan.output, plan.epoch)?,
        _ => {
            archive::write_docker_archive(&layout, &manifest, &plan.tags, &plan.output, plan.epoch)?
        }
    }
    Ok((digest, layers))
}

/// Users, groups, certificates and time zones, each recorded in the
/// provenance. Returns whether a CA bundle was installed.
fn add_base(cx: &mut Context, plan: &BuildPlan) -> Result<bool, BuildError> {
    let mut tree = std::mem::take(cx.layers.tree(LayerKind::Base));
    base::add_base_files(&mut tree).map_err(RootfsError::from)?;
    record_new(
        cx,
        &tree,
        "base files: users, groups and standard directories",
    );
    let root = cx.resolver.root();
    let bundle = certs::bundle(root, &plan.ca_certs, &plan.extra_cas)?;
    let has_bundle = bundle.is_some();
    if let Some(bytes) = bundle {
        tree.insert(
            ImagePath::new(certs::BUNDLE_PATH).map_err(RootfsError::from)?,
            Entry::bytes(bytes, 0o644),
        )
        .map_err(RootfsError::from)?;
        record_new(cx, &tree, &ca_why(plan));
    }
    tzdata::add_tzdata(
        &mut tree,
        cx.resolver.root(),
        &plan.tzdata,
        &mut cx.warnings,
    )?;
    match &plan.tzdata {
        Tzdata::None => {}
        // One entry for the whole directory rather than ~1,300 that say
        // the same; `inspect --why` falls back to the nearest ancestor.
        Tzdata::All => cx.record(
            tzdata::ZONEINFO,
            format!("time zone data: all of {} (--tzdata all)", tzdata::ZONEINFO),
        ),
        Tzdata::Zones(zones) => record_new(
            cx,
            &tree,
            &format!("time zone data (--tzdata {})", zones.join(",")),
        ),
    }
    *cx.layers.tree(LayerKind::Base) = tree;
    Ok(has_bundle)
}

/// Records `why` for every path of `tree` that has no reason yet.
fn record_new(cx: &mut Context, tree: &Tree, why: &str) {
    for (path, _) in tree.iter() {
        if !path.is_root() {
            cx.record(path, why);
        }
    }
}

fn ca_why(plan: &BuildPlan) -> String {
    let mut parts = match &plan.ca_certs {
        CaCerts::Default => vec!["the root's bundle".to_owned()],
        CaCerts::File(f) => vec![format!("--ca-certs {}", crate::artifact::source_name(f))],
        CaCerts::None => Vec::new(),
    };
    parts.extend(
        plan.extra_cas
            .iter()
            .map(|p| format!("--ca-cert {}", crate::artifact::source_name(p))),
    );
    format!("CA certificates: {}", parts.join(" + "))
}

/// Every recorded path that is in a layer, with the layer holding it (the
/// topmost, if several do: that is the one a container sees).
fn provenance(cx: &Context) -> Provenance {
    let files = cx
        .provenance
        .iter()
        .filter_map(|(path, origin)| {
            let image = ImagePath::new(path).ok()?;
            let (kind, _) = cx
                .layers
                .layers()
                .filter(|(_, t)| t.contains(&image))
                .last()?;
            Some((
                path.clone(),
                FileOrigin {
                    layer: kind.name().to_owned(),
                    why: origin.why.clone(),
                    needed_by: origin.needed_by.clone(),
                },
            ))
        })
        .collect();
    Provenance::new(files)
}

fn image_spec(
    plan: &BuildPlan,
    defaults: &Defaults,
    has_bundle: bool,
    platform: &oci::Platform,
) -> ImageSpec {
    let mut env: Vec<(String, String)> = vec![("PATH".into(), base::PATH_ENV.into())];
    if has_bundle {
        env.push(("SSL_CERT_FILE".into(), certs::BUNDLE_PATH.into()));
    }
    for (k, v) in defaults.env.iter().chain(&plan.config.env) {
        match env.iter_mut().find(|(name, _)| name == k) {
            Some(slot) => slot.1 = v.clone(),
            None => env.push((k.clone(), v.clone())),
        }
    }
    let (entrypoint, cmd) = match &plan.config.entrypoint {
        Some(e) => (e.clone(), plan.config.cmd.clone()),
        None if plan.config.cmd.is_empty() => (defaults.entrypoint.clone(), defaults.cmd.clone()),
        None => (defaults.entrypoint.clone(), plan.config.cmd.clone()),
    };
    let mut exposed_ports = plan.config.expose.clone();
    exposed_ports.extend(defaults.expose.iter().cloned());
    ImageSpec {
        architecture: platform.architecture.to_string(),
        os: "linux".into(),
        variant: platform.variant.map(str::to_string),
        env: env.into_iter().map(|(k, v)| format!("{k}={v}")).collect(),
        entrypoint,
        cmd,
        workdir: plan
            .config
            .workdir
            .clone()
            .or_else(|| defaults.workdir.clone()),
        user: plan.config.user.clone(),
        labels: plan.config.labels.clone(),
        exposed_ports,
        created_epoch: plan.epoch,
    }
}

/// Writes the image into the layout at `dir`: its manifest's descriptor
/// and digest, and the layers.
fn write(
    plan: &BuildPlan,
    cx: &Context,
    spec: &ImageSpec,
    dir: &Path,
    progress: &dyn Fn(Event),
) -> Result<(Descriptor, Digest, Vec<BuiltLayer>), BuildError> {
    let layout = Layout::open_or_create(dir)?;
    let opts = LayerOptions {
        mtime: plan.epoch,
        threads: plan.threads.max(1),
        level: plan.compression_level,
    };
    let mut infos = Vec::new();
    let mut built = Vec::new();
    for (kind, tree) in cx.layers.layers() {
        let layer = kind.name();
        progress(Event::LayerStart {
            layer,
            bytes: tree.content_size(),
        });
        let mut writer = layout.blob_writer()?;
        let digests = write_layer(tree, &opts, &mut writer)
            .map_err(|source| BuildError::Layer { layer, source })?;
        let (digest, size) = writer.commit()?;
        debug_assert_eq!(digest, digests.digest);
        progress(Event::LayerDone { layer, size });
        let mut annotations = BTreeMap::new();
        annotations.insert("org.mkimage.layer".to_string(), layer.to_string());
        infos.push(LayerInfo {
            diff_id: digests.diff_id,
            digest,
            size,
            created_by: kind.description().to_string(),
            annotations,
        });
        built.push(BuiltLayer {
            kind,
            digest,
            size,
            files: tree.len(),
        });
    }
    let blob = layout.put_blob(
        MediaType::Other(provenance::MEDIA_TYPE.to_owned()),
        &provenance(cx).to_json()?,
    )?;
    let mut annotations = plan.config.annotations.clone();
    annotations.insert(provenance::ANNOTATION.to_owned(), blob.digest().to_string());
    let manifest = oci::write_image(&layout, spec, &infos, &annotations, &plan.tags)?;
    let digest = oci::from_oci_digest(manifest.digest(), layout.root())?;
    Ok((manifest, digest, built))
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
