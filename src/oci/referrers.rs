//! OCI 1.1 referrers: artifacts about an image (its SBOM, its provenance)
//! stored as manifests whose `subject` is the image manifest and whose
//! `artifactType` says what they hold (image-spec manifest.md, "Guidelines
//! for Artifact Usage"; distribution-spec "Listing Referrers").
//!
//! How a layout keeps them, and why this way: a layout has no referrers
//! API, and listing the artifacts as further `index.json` entries would
//! break every tool that takes "the only image" of a layout (skopeo and
//! podman with `oci-archive:FILE`, syft with `oci-dir:`, which refuse an
//! index of more than one manifest). So the image's own `index.json`
//! entry carries the annotation [`ANNOTATION`]: the digest of an image
//! index that lists the referrers exactly as the referrers API answers
//! (descriptors with `artifactType`). Tools that do not know it see one
//! image; `push` sends the referrers with it; `inspect` reads them (both
//! through the image reader, `source`).

use oci_spec::image::{
    Descriptor, ImageIndex, ImageIndexBuilder, ImageManifest, ImageManifestBuilder, MediaType,
    SCHEMA_VERSION,
};

use super::layout::Layout;
use super::{Digest, OciError, oci_digest};

/// Annotation of an `index.json` entry naming its referrers' index.
pub const ANNOTATION: &str = "org.mkimage.referrers";
/// The content of the empty config an artifact manifest points at
/// (image-spec manifest.md, "Guidance for an Empty Descriptor"); a push
/// uploads it along with the artifact.
pub const EMPTY_JSON: &[u8] = b"{}";

/// One artifact to attach: its type (also its blob's media type) and bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Artifact {
    pub artifact_type: String,
    pub bytes: Vec<u8>,
}

/// The empty config's descriptor.
pub fn empty_descriptor() -> Result<Descriptor, OciError> {
    Ok(Descriptor::new(
        MediaType::EmptyJSON,
        EMPTY_JSON.len() as u64,
        oci_digest(&Digest::of(EMPTY_JSON))?,
    ))
}

/// The artifact manifest for `blob` about `subject`: the empty config, the
/// blob as its one layer, `artifactType` so the referrers API can filter
/// on it. Serialise it with `canonical_json` for stable bytes.
pub fn artifact_manifest(
    subject: &Descriptor,
    artifact_type: &str,
    blob: &Descriptor,
) -> Result<ImageManifest, OciError> {
    // Descriptors carry only what identifies the blob: a subject's references
    // (ref.name annotations from index.json) mean nothing in a registry.
    let subject = Descriptor::new(
        subject.media_type().clone(),
        subject.size(),
        subject.digest().clone(),
    );
    ImageManifestBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .media_type(MediaType::ImageManifest)
        .artifact_type(MediaType::Other(artifact_type.to_owned()))
        .config(empty_descriptor()?)
        .layers(vec![blob.clone()])
        .subject(subject)
        .build()
        .map_err(|source| OciError::Spec {
            what: "referrer manifest",
            source,
        })
}

/// Stores `artifacts` as referrers of `subject` (blob, artifact manifest,
/// then the index listing them, sorted by artifact type) and returns the
/// index's descriptor, for the [`ANNOTATION`] of `subject`'s entry.
pub fn write(
    layout: &Layout,
    subject: &Descriptor,
    artifacts: &[Artifact],
) -> Result<Descriptor, OciError> {
    layout.put_blob(MediaType::EmptyJSON, EMPTY_JSON)?;
    let mut sorted: Vec<&Artifact> = artifacts.iter().collect();
    sorted.sort_by(|a, b| a.artifact_type.cmp(&b.artifact_type));
    let mut listed = Vec::new();
    for a in sorted {
        let media_type = MediaType::Other(a.artifact_type.clone());
        let blob = layout.put_blob(media_type.clone(), &a.bytes)?;
        let manifest = artifact_manifest(subject, &a.artifact_type, &blob)?;
        let mut d = layout.put_json(MediaType::ImageManifest, &manifest)?;
        d.set_artifact_type(Some(media_type));
        listed.push(d);
    }
    let index = referrers_index(listed)?;
    layout.put_json(MediaType::ImageIndex, &index)
}

/// Stores `artifacts` as referrers of `manifest` and points `references` at it,
/// with the entry naming them; returns that `index.json` entry.
pub fn tag_with_referrers(
    layout: &Layout,
    manifest: &Descriptor,
    artifacts: &[Artifact],
    references: &[String],
) -> Result<Descriptor, OciError> {
    let index = write(layout, manifest, artifacts)?;
    let mut entry = manifest.clone();
    let mut annotations = entry.annotations().clone().unwrap_or_default();
    annotations.insert(ANNOTATION.to_owned(), index.digest().to_string());
    entry.set_annotations(Some(annotations));
    layout.set_references(&entry, references)?;
    Ok(entry)
}

/// An image index listing `manifests`, the shape of a referrers API
/// answer and of the tag fallback's index.
pub fn referrers_index(manifests: Vec<Descriptor>) -> Result<ImageIndex, OciError> {
    ImageIndexBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .media_type(MediaType::ImageIndex)
        .manifests(manifests)
        .build()
        .map_err(|source| OciError::Spec {
            what: "referrers index",
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::canonical_json;

    #[test]
    fn artifact_manifest_points_at_the_image() {
        let image = {
            let mut d = Descriptor::new(
                MediaType::ImageManifest,
                500,
                oci_digest(&Digest::from_bytes([1; 32])).unwrap(),
            );
            d.set_annotations(Some(
                [(
                    "org.opencontainers.image.ref.name".to_owned(),
                    "a:b".to_owned(),
                )]
                .into(),
            ));
            d
        };
        let blob = Descriptor::new(
            MediaType::Other("application/spdx+json".to_owned()),
            10,
            oci_digest(&Digest::from_bytes([2; 32])).unwrap(),
        );
        let m = artifact_manifest(&image, "application/spdx+json", &blob).unwrap();
        let json = String::from_utf8(canonical_json(&m).unwrap()).unwrap();
        let (one, two) = ("01".repeat(32), "02".repeat(32));
        assert_eq!(
            json,
            format!(
                concat!(
                    r#"{{"artifactType":"application/spdx+json","#,
                    r#""config":{{"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","mediaType":"application/vnd.oci.empty.v1+json","size":2}},"#,
                    r#""layers":[{{"digest":"sha256:{two}","mediaType":"application/spdx+json","size":10}}],"#,
                    r#""mediaType":"application/vnd.oci.image.manifest.v1+json","schemaVersion":2,"#,
                    r#""subject":{{"digest":"sha256:{one}","mediaType":"application/vnd.oci.image.manifest.v1+json","size":500}}}}"#
                ),
                one = one,
                two = two
            )
        );
    }
}
