//! The image as a whole: given stored layer blobs, write the config and the
//! manifest and point the tags at it. The last step of a build.

use std::collections::BTreeMap;

use oci_spec::image::{Descriptor, MediaType};

use super::OciError;
use super::config::{ImageSpec, LayerInfo, config_json};
use super::layout::{Layout, check_tag};
use super::manifest::build_manifest;

/// Writes the config and manifest for `layers` (already stored in
/// `layout`, e.g. through [`Layout::blob_writer`]) and tags the manifest.
/// Returns the manifest's descriptor.
///
/// Everything is checked before `index.json` changes: invalid tags, and
/// layer blobs missing from the layout or of the wrong size, fail the build
/// with the old tags intact.
pub fn write_image(
    layout: &Layout,
    spec: &ImageSpec,
    layers: &[LayerInfo],
    manifest_annotations: &BTreeMap<String, String>,
    tags: &[String],
) -> Result<Descriptor, OciError> {
    let manifest = write_untagged(layout, spec, layers, manifest_annotations, tags)?;
    layout.set_tags(&manifest, tags)?;
    Ok(manifest)
}

/// [`write_image`] without the tagging: the tags are checked, the config
/// and manifest stored, `index.json` untouched, so the caller can store
/// what refers to the manifest (its referrers) before tagging it.
pub fn write_untagged(
    layout: &Layout,
    spec: &ImageSpec,
    layers: &[LayerInfo],
    manifest_annotations: &BTreeMap<String, String>,
    tags: &[String],
) -> Result<Descriptor, OciError> {
    for tag in tags {
        check_tag(tag)?;
    }
    for layer in layers {
        layout.check_blob(&layer.digest, layer.size)?;
    }
    let config = layout.put_json(MediaType::ImageConfig, &config_json(spec, layers)?)?;
    let manifest = build_manifest(&config, layers, manifest_annotations)?;
    layout.put_json(MediaType::ImageManifest, &manifest)
}
