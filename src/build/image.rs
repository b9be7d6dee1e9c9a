//! From layer trees to an image: the config, the layer blobs, the
//! manifest, its referrers (SBOM and provenance), the tags, and archives.

use std::collections::BTreeMap;
use std::path::Path;

use crate::artifact::Context;
use crate::digest::Digest;
use crate::layer::{LayerOptions, write_layer};
use crate::oci::archive;
use crate::oci::provenance::{self, FileOrigin, Provenance};
use crate::oci::referrers::{self, Artifact};
use crate::oci::{self, Descriptor, ImageSpec, LayerInfo, Layout};
use crate::plan::{BuildPlan, OutputFormat};
use crate::rootfs::{ImagePath, base, certs};
use crate::sbom::Inventory;
use crate::sbom::spdx::{self, ImageInfo};

use super::artifacts::Defaults;
use super::{BuildError, BuiltLayer, Event};

/// Builds the image as a layout in a temporary directory beside the
/// archive (same filesystem, cleaned up however we leave), then converts
/// it.
pub(super) fn write_archive(
    plan: &BuildPlan,
    format: OutputFormat,
    cx: &Context,
    inventory: &Inventory,
    spec: &ImageSpec,
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
    let written = write(plan, cx, inventory, spec, tmp.path(), progress, true)?;
    progress(Event::Archive { format });
    let layout = Layout::open(tmp.path())?;
    match format {
        OutputFormat::OciArchive => archive::write_oci_archive(&layout, &plan.output, plan.epoch)?,
        _ => archive::write_docker_archive(
            &layout,
            &written.entry,
            &plan.tags,
            &plan.output,
            plan.epoch,
        )?,
    }
    Ok(written)
}

/// Every recorded path that is in a layer, with the layer holding it (the
/// topmost, if several do: that is the one a container sees).
pub(super) fn provenance(cx: &Context) -> Provenance {
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

pub(super) fn image_spec(
    plan: &BuildPlan,
    defaults: &Defaults,
    has_bundle: bool,
    platform: &oci::Platform,
    run_as: base::RunAs,
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
        user: run_as.to_string(),
        labels: plan.config.labels.clone(),
        exposed_ports,
        created_epoch: plan.epoch,
    }
}

/// Writes the image into the layout at `dir`: its manifest's descriptor
/// and digest, and the layers.
pub(super) fn write(
    plan: &BuildPlan,
    cx: &Context,
    inventory: &Inventory,
    spec: &ImageSpec,
    dir: &Path,
    progress: &dyn Fn(Event),
    tag: bool,
) -> Result<Written, BuildError> {
    let layout = Layout::open_or_create(dir)?;
    let opts = LayerOptions {
        mtime: plan.epoch,
        threads: plan.threads,
        compression: plan.compression,
    };
    let mut infos = Vec::new();
    let mut built = Vec::new();
    for (kind, tree) in cx.layers.layers() {
        let layer = kind.name();
        progress(Event::LayerStart {
            layer,
            bytes: tree.content_size(),
        });
        // write_layer hashes the compressed stream as it makes it; the
        // blob writer need not hash it again.
        let mut writer = layout.unhashed_blob_writer()?;
        let digests = write_layer(tree, &opts, &mut writer)
            .map_err(|source| BuildError::Layer { layer, source })?;
        let (digest, size) = (digests.digest, digests.size);
        writer.commit(&digest, size)?;
        progress(Event::LayerDone { layer, size });
        let mut annotations = BTreeMap::new();
        annotations.insert("org.mkimage.layer".to_string(), layer.to_string());
        infos.push(LayerInfo {
            diff_id: digests.diff_id,
            digest,
            size,
            media_type: plan.compression.media_type(),
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
    let manifest =
        oci::write_untagged(&layout, spec, &infos, &plan.config.annotations, &plan.tags)?;
    let digest = oci::from_oci_digest(manifest.digest(), layout.root())?;
    // The SBOM and the provenance refer to the manifest; its index.json
    // entry names them (see oci::referrers), then the tags point at it.
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
                bytes: provenance(cx).to_json()?,
            },
        ],
        if tag { &plan.tags } else { &[] },
    )?;
    Ok(Written {
        entry,
        digest,
        layers: built,
        sbom,
    })
}

/// What the SBOM says of the image itself.
fn image_info(plan: &BuildPlan, spec: &ImageSpec, manifest: Digest) -> ImageInfo {
    let name = plan
        .tags
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

/// What [`write`] stored.
pub(super) struct Written {
    /// The manifest's `index.json` entry (naming its referrers).
    pub(super) entry: Descriptor,
    pub(super) digest: Digest,
    pub(super) layers: Vec<BuiltLayer>,
    /// The SPDX document, as stored.
    pub(super) sbom: Vec<u8>,
}
