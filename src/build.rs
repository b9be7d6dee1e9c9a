//! The build pipeline: plan → artifacts → layer trees → layer blobs →
//! config and manifest → tags. Everything that can fail on bad input fails
//! before the output directory is touched; blobs are written through temp
//! files and `index.json` is replaced last, so an interrupted build leaves
//! the previous layout valid.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::artifact::binary::{AddedBinary, add_binary};
use crate::artifact::{ArtifactError, Context};
use crate::digest::Digest;
use crate::layer::{LayerError, LayerOptions, write_layer};
use crate::oci::{self, ImageSpec, LayerInfo, Layout, OciError};
use crate::plan::BuildPlan;
use crate::resolve::{Options, Resolver};
use crate::rootfs::{Entry, ImagePath, LayerKind, RootfsError, base, certs, host, tzdata};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    Oci(#[from] OciError),
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
    #[error("nothing to build: give at least one --from-binary")]
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
    Resolved { files: usize, bytes: u64 },
    LayerStart { layer: &'static str, bytes: u64 },
    LayerDone { layer: &'static str, size: u64 },
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
    pub tags: Vec<String>,
    pub manifest_digest: Digest,
    pub layers: Vec<BuiltLayer>,
    pub architecture: String,
    pub warnings: Vec<String>,
}

impl Built {
    pub fn compressed_size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }
}

pub fn build(plan: &BuildPlan, progress: &dyn Fn(Event)) -> Result<Built, BuildError> {
    if plan.binaries.is_empty() {
        return Err(BuildError::Empty);
    }
    // Refuse a bad output directory before doing any work.
    check_output(&plan.output)?;

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

    let mut added: Vec<AddedBinary> = Vec::new();
    for spec in &plan.binaries {
        let bin = add_binary(&mut cx, spec)?;
        if let Some(first) = added.first()
            && !bin.ident.compatible_with(&first.ident)
        {
            return Err(ArtifactError::MixedArch {
                path: spec.src.clone(),
                found: bin.ident.describe(),
                expected: first.ident.describe(),
            }
            .into());
        }
        added.push(bin);
    }
    let first = &added[0];
    let platform = oci::platform_from_elf(oci::ElfMachine {
        e_machine: first.ident.machine,
        class64: first.ident.is_64,
        little_endian: first.ident.little_endian,
    })?;

    let bundle = add_base(&mut cx, plan)?;
    for tree in cx.layers.trees.values_mut() {
        host::link_hardlinks(tree)?;
    }
    let files: usize = cx.layers.layers().map(|(_, t)| t.len()).sum();
    let bytes: u64 = cx.layers.layers().map(|(_, t)| t.content_size()).sum();
    progress(Event::Resolved { files, bytes });

    let spec = image_spec(plan, first, bundle, &platform);

    // From here on we write. If we created the directory and fail, remove
    // it; an existing layout keeps its old index.json.
    let existed = plan.output.exists();
    let result = write(plan, &cx, &spec, progress);
    if result.is_err() && !existed {
        let _ = std::fs::remove_dir_all(&plan.output);
    }
    let (manifest_digest, layers) = result?;
    Ok(Built {
        output: plan.output.clone(),
        tags: plan.tags.clone(),
        manifest_digest,
        layers,
        architecture: platform.architecture.to_string(),
        warnings: cx.warnings,
    })
}

/// Users, groups, certificates and time zones. Returns whether a CA
/// bundle was installed.
fn add_base(cx: &mut Context, plan: &BuildPlan) -> Result<bool, BuildError> {
    let mut tree = std::mem::take(cx.layers.tree(LayerKind::Base));
    base::add_base_files(&mut tree).map_err(RootfsError::from)?;
    let root = cx.resolver.root();
    let bundle = certs::bundle(root, &plan.ca_certs, &plan.extra_cas)?;
    let has_bundle = bundle.is_some();
    if let Some(bytes) = bundle {
        tree.insert(
            ImagePath::new(certs::BUNDLE_PATH).map_err(RootfsError::from)?,
            Entry::bytes(bytes, 0o644),
        )
        .map_err(RootfsError::from)?;
    }
    tzdata::add_tzdata(
        &mut tree,
        cx.resolver.root(),
        &plan.tzdata,
        &mut cx.warnings,
    )?;
    *cx.layers.tree(LayerKind::Base) = tree;
    Ok(has_bundle)
}

fn image_spec(
    plan: &BuildPlan,
    first: &AddedBinary,
    has_bundle: bool,
    platform: &oci::Platform,
) -> ImageSpec {
    let mut env: Vec<(String, String)> = vec![("PATH".into(), base::PATH_ENV.into())];
    if has_bundle {
        env.push(("SSL_CERT_FILE".into(), certs::BUNDLE_PATH.into()));
    }
    for (k, v) in &plan.config.env {
        match env.iter_mut().find(|(name, _)| name == k) {
            Some(slot) => slot.1 = v.clone(),
            None => env.push((k.clone(), v.clone())),
        }
    }
    ImageSpec {
        architecture: platform.architecture.to_string(),
        os: "linux".into(),
        variant: platform.variant.map(str::to_string),
        env: env.into_iter().map(|(k, v)| format!("{k}={v}")).collect(),
        entrypoint: plan
            .config
            .entrypoint
            .clone()
            .unwrap_or_else(|| vec![first.dst.to_string()]),
        cmd: plan.config.cmd.clone(),
        workdir: plan.config.workdir.clone(),
        user: plan.config.user.clone(),
        labels: plan.config.labels.clone(),
        exposed_ports: plan.config.expose.clone(),
        created_epoch: plan.epoch,
    }
}

fn write(
    plan: &BuildPlan,
    cx: &Context,
    spec: &ImageSpec,
    progress: &dyn Fn(Event),
) -> Result<(Digest, Vec<BuiltLayer>), BuildError> {
    let layout = Layout::open_or_create(&plan.output)?;
    let opts = LayerOptions {
        mtime: plan.epoch,
        threads: plan.threads.max(1),
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
    let manifest = oci::write_image(&layout, spec, &infos, &plan.config.annotations, &plan.tags)?;
    let digest = oci::from_oci_digest(manifest.digest(), layout.root())?;
    Ok((digest, built))
}

/// Fails early when `dir` cannot become an image layout.
fn check_output(dir: &Path) -> Result<(), BuildError> {
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
