//! The media types and annotation keys that more than one module spells:
//! the image writers (`pipeline`, `oci`), the readers (`source`, `inspect`) and
//! the registry client. Each is spelled here once, so a writer and its
//! reader cannot drift apart. Those owned by one document stay beside it
//! ([`super::provenance::MEDIA_TYPE`], [`super::provenance::ANNOTATION`],
//! [`super::referrers::ANNOTATION`]).

/// An OCI image index (image-spec media-types.md).
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// An OCI image manifest.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// An SPDX JSON document (IANA): the SBOM's media type and its referrer's
/// `artifactType`.
pub const SPDX_MEDIA_TYPE: &str = "application/spdx+json";
/// The layer descriptor annotation naming the layer of the file tree it
/// holds (`base`, `libs`, …, `from-base`): written by `pipeline`, read by
/// `inspect`.
pub const LAYER_ANNOTATION: &str = "org.mkimage.layer";

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::image::MediaType;

    /// The spellings oci-spec knows agree with ours.
    #[test]
    fn media_types_match_oci_spec() {
        assert_eq!(MediaType::ImageIndex.to_string(), INDEX_MEDIA_TYPE);
        assert_eq!(MediaType::ImageManifest.to_string(), MANIFEST_MEDIA_TYPE);
    }
}
