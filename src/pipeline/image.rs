//! From layer trees to an image: the config, the layer blobs, the
//! manifest, its referrers (SBOM and provenance), the references, and archives.

use std::collections::BTreeMap;
use std::path::Path;

use oci_spec::image::MediaType;

use crate::archive;
use crate::artifact::Gathered;
use crate::base_files::certs;
use crate::cache::LayerCache;
use crate::digest::Digest;
use crate::layer::{LayerDigests, LayerOptions, write_layer};
use crate::oci::names;
use crate::oci::provenance::{self, FileOrigin, Provenance};
use crate::oci::referrers::{self, Artifact};
use crate::oci::{self, Descriptor, ImageSpec, LayerInfo, Layout};
use crate::plan::{BuildPlan, OutputFormat};
use crate::rootfs::{ImagePath, Tree, base};
use crate::sbom::Inventory;
use crate::sbom::spdx::{self, ImageInfo};

use super::artifacts::Defaults;
use super::base_image::BaseImage;
use super::{BuildError, BuiltLayer, Event};

/// Builds the image as a layout in a temporary directory beside the
/// archive (same filesystem, cleaned up however we leave), then converts
/// it.
pub(super) fn write_archive(
    plan: &BuildPlan,
    format: OutputFormat,
    parts: Parts<'_>,
    extra: Extra<'_>,
    cache: Option<&mut LayerCache>,
    progress: &dyn Fn(Event),
) -> Result<Written, BuildError> {
    let dir = archive::parent_dir(&plan.output);
    let tmp = tempfile::Builder::new()
        .prefix(oci::layout::TEMP_PREFIX)
        .tempdir_in(dir)
        .map_err(|source| BuildError::TempDir {
            dir: dir.to_path_buf(),
            source,
        })?;
    let written = write(plan, parts, extra, tmp.path(), cache, progress, true)?;
    progress(Event::Archive { format });
    let layout = Layout::open(tmp.path())?;
    match format {
        OutputFormat::OciArchive => archive::write_oci_archive(&layout, &plan.output, plan.epoch)?,
        _ => archive::write_docker_archive(
            &layout,
            &written.entry,
            &plan.references,
            &plan.output,
            plan.epoch,
        )?,
    }
    Ok(written)
}

/// Every recorded path that is in a layer, with the layer holding it (the
/// topmost, if several do: that is the one a container sees).
pub(super) fn provenance(gathered: &Gathered) -> Provenance {
    let files = gathered
        .provenance
        .iter()
        .filter_map(|(path, origin)| {
            let image = ImagePath::new(path).ok()?;
            let (kind, _) = gathered
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

pub(super) fn image_spec(
    plan: &BuildPlan,
    defaults: &Defaults,
    has_bundle: bool,
    platform: &oci::Platform,
    run_as: base::RunAs,
    from_base: Option<&oci_spec::image::Config>,
) -> ImageSpec {
    // A base's Env is the starting point (its PATH included); flags and
    // the artifacts' defaults override by name.
    let base_env: Vec<(String, String)> = from_base
        .and_then(|c| c.env().clone())
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect();
    let mut env: Vec<(String, String)> = if from_base.is_some() {
        base_env
    } else {
        vec![("PATH".into(), base::PATH_ENV.into())]
    };
    if has_bundle {
        env.push(("SSL_CERT_FILE".into(), certs::BUNDLE_PATH.into()));
    }
    for (k, v) in defaults.env.iter().chain(&plan.config.env) {
        match env.iter_mut().find(|(name, _)| name == k) {
            Some(slot) => slot.1 = v.clone(),
            None => env.push((k.clone(), v.clone())),
        }
    }
    let (mut entrypoint, mut cmd) = match &plan.config.entrypoint {
        Some(e) => (e.clone(), plan.config.cmd.clone()),
        None if plan.config.cmd.is_empty() => (defaults.entrypoint.clone(), defaults.cmd.clone()),
        None => (defaults.entrypoint.clone(), plan.config.cmd.clone()),
    };
    // A build that adds no program keeps the base's entrypoint and cmd.
    if let Some(c) = from_base
        && entrypoint.is_empty()
        && plan.config.entrypoint.is_none()
    {
        entrypoint = c.entrypoint().clone().unwrap_or_default();
        if cmd.is_empty() {
            cmd = c.cmd().clone().unwrap_or_default();
        }
    }
    let mut labels: std::collections::BTreeMap<String, String> = from_base
        .and_then(|c| c.labels().clone())
        .map(|l| l.into_iter().collect())
        .unwrap_or_default();
    labels.extend(plan.config.labels.clone());
    let base_workdir = from_base
        .and_then(|c| c.working_dir().clone())
        .filter(|w| !w.is_empty());
    let mut exposed_ports = plan.config.expose.clone();
    exposed_ports.extend(defaults.expose.iter().cloned());
    ImageSpec {
        architecture: platform.architecture.clone(),
        os: platform.os.clone(),
        variant: platform.variant.clone(),
        env: env.into_iter().map(|(k, v)| format!("{k}={v}")).collect(),
        entrypoint,
        cmd,
        workdir: plan
            .config
            .workdir
            .clone()
            .or_else(|| defaults.workdir.clone())
            .or(base_workdir),
        user: run_as.to_string(),
        labels,
        exposed_ports,
        healthcheck: plan.config.healthcheck.clone(),
        stop_signal: plan.config.stop_signal.clone(),
        created_epoch: plan.epoch,
    }
}

/// Writes the image into the layout at `dir`: its manifest's descriptor
/// and digest, and the layers.
pub(super) fn write(
    plan: &BuildPlan,
    parts: Parts<'_>,
    extra: Extra<'_>,
    dir: &Path,
    mut cache: Option<&mut LayerCache>,
    progress: &dyn Fn(Event),
    tag: bool,
) -> Result<Written, BuildError> {
    let Parts {
        gathered,
        inventory,
        spec,
    } = parts;
    let Extra { debug, base } = extra;
    let layout = Layout::open_or_create(dir)?;
    let opts = LayerOptions {
        mtime: plan.epoch,
        threads: plan.threads,
        compression: plan.compression,
    };
    let media_type = plan.compression.media_type();
    let mut infos = match base {
        Some(b) => b.copy_layers(&layout)?,
        None => Vec::new(),
    };
    let mut built = Vec::new();
    for (kind, tree) in gathered.layers.layers() {
        let layer = kind.name();
        progress(Event::LayerStart {
            layer,
            bytes: tree.content_size(),
        });
        let (digests, cached) = layer_blob(
            &layout,
            cache.as_deref_mut(),
            (layer, tree),
            &opts,
            &media_type,
        )?;
        let (digest, size) = (digests.digest, digests.size);
        progress(Event::LayerDone);
        let mut annotations = BTreeMap::new();
        annotations.insert(names::LAYER_ANNOTATION.to_string(), layer.to_string());
        infos.push(LayerInfo {
            diff_id: digests.diff_id,
            digest,
            size,
            media_type: media_type.clone(),
            created_by: kind.description().to_string(),
            annotations,
        });
        built.push(BuiltLayer {
            kind,
            digest,
            diff_id: digests.diff_id,
            size,
            media_type: plan.compression.media_type().to_string(),
            files: tree.len(),
            cached,
        });
    }
    let manifest = oci::write_untagged(
        &layout,
        spec,
        &infos,
        &plan.config.annotations,
        &plan.references,
    )?;
    // The debug image is tagged before the production one, whose references
    // are the build's last write.
    let debug = match debug {
        Some(tree) => Some(write_debug(
            plan, &layout, spec, &infos, tree, &opts, progress,
        )?),
        None => None,
    };
    let digest = oci::from_oci_digest(manifest.digest(), layout.root())?;
    // The SBOM and the provenance refer to the manifest; its index.json
    // entry names them (see oci::referrers), then the references point at it.
    let sbom = spdx::document(inventory, &image_info(plan, spec, digest))?;
    let entry = referrers::tag_with_referrers(
        &layout,
        &manifest,
        &[
            Artifact {
                artifact_type: spdx::MEDIA_TYPE.to_owned(),
                bytes: sbom.clone(),
            },
            Artifact {
                artifact_type: provenance::MEDIA_TYPE.to_owned(),
                bytes: provenance(gathered).to_json()?,
            },
        ],
        if tag { &plan.references } else { &[] },
    )?;
    Ok(Written {
        entry,
        digest,
        layers: built,
        debug,
        sbom,
    })
}

/// `--debug`: the busybox layer and the `<tag>-debug` manifest over the
/// production layers, tagged.
fn write_debug(
    plan: &BuildPlan,
    layout: &Layout,
    spec: &ImageSpec,
    production: &[LayerInfo],
    tree: &Tree,
    opts: &LayerOptions,
    progress: &dyn Fn(Event),
) -> Result<(Vec<String>, Digest), BuildError> {
    let layer = "debug";
    progress(Event::LayerStart {
        layer,
        bytes: tree.content_size(),
    });
    let mut writer = layout.unhashed_blob_writer()?;
    let digests = write_layer(tree, opts, &mut writer)
        .map_err(|source| BuildError::Layer { layer, source })?;
    writer.commit(&digests.digest, digests.size)?;
    progress(Event::LayerDone);
    let mut infos = production.to_vec();
    infos.push(LayerInfo {
        diff_id: digests.diff_id,
        digest: digests.digest,
        size: digests.size,
        media_type: plan.compression.media_type(),
        created_by: super::debug::CREATED_BY.to_string(),
        annotations: [(names::LAYER_ANNOTATION.to_string(), layer.to_string())].into(),
    });
    let references = super::debug::references(&plan.references);
    let manifest = oci::write_untagged(
        layout,
        &super::debug::spec(spec),
        &infos,
        &plan.config.annotations,
        &references,
    )?;
    layout.set_references(&manifest, &references)?;
    let digest = oci::from_oci_digest(manifest.digest(), layout.root())?;
    Ok((references, digest))
}

/// Puts `tree`'s layer blob in the layout: from the cache when it knows
/// the layer (then `true`), else written (and recorded).
fn layer_blob(
    layout: &Layout,
    mut cache: Option<&mut LayerCache>,
    (layer, tree): (&'static str, &Tree),
    opts: &LayerOptions,
    media_type: &MediaType,
) -> Result<(LayerDigests, bool), BuildError> {
    let key = cache.as_ref().and_then(|c| c.key(tree, opts));
    let blob_at = |d: &Digest| layout.blob_path(d);
    if let (Some(c), Some(k)) = (cache.as_mut(), &key)
        && let Some(digests) = c.lookup(k, media_type.as_ref(), &blob_at)
    {
        return Ok((digests, true));
    }
    // write_layer hashes the compressed stream as it makes it; the blob
    // writer need not hash it again.
    let mut writer = layout.unhashed_blob_writer()?;
    let digests = write_layer(tree, opts, &mut writer)
        .map_err(|source| BuildError::Layer { layer, source })?;
    writer.commit(&digests.digest, digests.size)?;
    if let (Some(c), Some(k)) = (cache, &key) {
        c.record(k, &digests, media_type.as_ref(), &blob_at(&digests.digest));
    }
    Ok((digests, false))
}

/// What the SBOM says of the image itself.
fn image_info(plan: &BuildPlan, spec: &ImageSpec, manifest: Digest) -> ImageInfo {
    let name = plan
        .references
        .first()
        .map(|t| t.rsplit_once(':').map_or(t.as_str(), |(name, _)| name))
        .unwrap_or("image")
        .to_owned();
    let label = |k: &str| plan.config.labels.get(k).cloned();
    ImageInfo {
        name,
        manifest,
        architecture: spec.architecture.clone(),
        epoch: plan.epoch,
        supplier: label("org.opencontainers.image.vendor")
            .or_else(|| label("org.opencontainers.image.authors")),
    }
}

/// What the image is made of: the layer trees (and what the build
/// noted), the package inventory for the SBOM, and the config.
#[derive(Clone, Copy)]
pub(super) struct Parts<'a> {
    pub(super) gathered: &'a Gathered,
    pub(super) inventory: &'a Inventory,
    pub(super) spec: &'a ImageSpec,
}

/// What an image has besides its own layers: the `--debug` layer, the
/// `--base` image under them.
#[derive(Clone, Copy)]
pub(super) struct Extra<'a> {
    pub(super) debug: Option<&'a Tree>,
    pub(super) base: Option<&'a BaseImage>,
}

/// What [`write`](fn@write) stored.
pub(super) struct Written {
    /// The manifest's `index.json` entry (naming its referrers).
    pub(super) entry: Descriptor,
    pub(super) digest: Digest,
    pub(super) layers: Vec<BuiltLayer>,
    /// `--debug`: the debug image's references and manifest digest.
    pub(super) debug: Option<(Vec<String>, Digest)>,
    /// The SPDX document, as stored.
    pub(super) sbom: Vec<u8>,
}
