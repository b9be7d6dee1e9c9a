//! The image as a whole: given stored layer blobs, write the config and the
//! manifest and point the references at it. The last step of a build.

use std::collections::BTreeMap;

use oci_spec::image::{Descriptor, MediaType};

use super::OciError;
use super::config::{ImageSpec, LayerInfo, config_json};
use super::layout::{Layout, check_reference};
use super::manifest::build_manifest;

/// Writes the config and manifest for `layers` (already stored in
/// `layout`, e.g. through [`Layout::blob_writer`]) and tags the manifest.
/// Returns the manifest's descriptor.
///
/// Everything is checked before `index.json` changes: invalid references, and
/// layer blobs missing from the layout or of the wrong size, fail the build
/// with the old references intact.
pub fn write_image(
    layout: &Layout,
    spec: &ImageSpec,
    layers: &[LayerInfo],
    manifest_annotations: &BTreeMap<String, String>,
    references: &[String],
) -> Result<Descriptor, OciError> {
    let manifest = write_untagged(layout, spec, layers, manifest_annotations, references)?;
    layout.set_references(&manifest, references)?;
    Ok(manifest)
}

/// [`write_image`] without the tagging: the references are checked, the config
/// and manifest stored, `index.json` untouched, so the caller can store
/// what refers to the manifest (its referrers) before tagging it.
pub fn write_untagged(
    layout: &Layout,
    spec: &ImageSpec,
    layers: &[LayerInfo],
    manifest_annotations: &BTreeMap<String, String>,
    references: &[String],
) -> Result<Descriptor, OciError> {
    for reference in references {
        check_reference(reference)?;
    }
    for layer in layers {
        layout.check_blob(&layer.digest, layer.size)?;
    }
    let config = layout.put_json(MediaType::ImageConfig, &config_json(spec, layers)?)?;
    let manifest = build_manifest(&config, layers, manifest_annotations)?;
    layout.put_json(MediaType::ImageManifest, &manifest)
}
