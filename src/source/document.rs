//! The documents of an image, OCI and Docker alike, read into oci-spec's
//! types: an image index or Docker manifest list, an image manifest or
//! Docker schema 2 manifest. The shapes are the same (Docker's schema 2 is
//! what OCI's image-spec started from); only the media types differ, and
//! they are kept as the source has them, so a manifest's bytes and its
//! typed form always agree.

use oci_spec::image::{ImageIndex, ImageManifest, MediaType};
use serde::Deserialize;

use super::SourceError;
use crate::layer::Algorithm;
use crate::oci::names::{INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE};

/// Docker's schema 2 manifest (distribution's manifest/schema2).
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker's manifest list (distribution's manifest/manifestlist).
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker's layer media types.
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// BuildKit's zstd layers in Docker manifests.
pub const DOCKER_LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";

/// What a registry is asked for (`Accept`): every manifest and index type
/// we read, so it never has to convert (or refuse) one.
pub const ACCEPT: &[&str] = &[
    INDEX_MEDIA_TYPE,
    MANIFEST_MEDIA_TYPE,
    DOCKER_MANIFEST_LIST,
    DOCKER_MANIFEST,
];

/// A manifest or an index.
#[derive(Clone, Debug, PartialEq)]
pub enum Document {
    Index(Box<ImageIndex>),
    Manifest(Box<ImageManifest>),
}

/// The fields that tell an index from a manifest when the media type is
/// missing (it is optional in OCI documents).
#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
    #[serde(default)]
    config: Option<serde_json::Value>,
}

impl Document {
    /// Reads `bytes` (from `location`, whose descriptor said `hint`, if
    /// anything) as an index or a manifest: by the document's own media
    /// type, else the descriptor's, else by its shape.
    pub fn parse(
        bytes: &[u8],
        hint: Option<&MediaType>,
        location: &str,
    ) -> Result<Document, SourceError> {
        let probe: Probe = super::parse(bytes, location)?;
        let media_type = probe
            .media_type
            .clone()
            .or_else(|| hint.map(ToString::to_string));
        let is_index = match media_type.as_deref() {
            Some(INDEX_MEDIA_TYPE | DOCKER_MANIFEST_LIST) => true,
            Some(MANIFEST_MEDIA_TYPE | DOCKER_MANIFEST) => false,
            // Artifact manifests and indexes without a media type.
            _ if probe.manifests.is_some() => true,
            _ if probe.config.is_some() => false,
            Some(other) => {
                return Err(SourceError::NotAManifest {
                    location: location.to_owned(),
                    media_type: other.to_owned(),
                });
            }
            None => {
                return Err(SourceError::Json {
                    location: location.to_owned(),
                    reason: "neither a manifest (no config) nor an index (no manifests)".into(),
                });
            }
        };
        Ok(if is_index {
            Document::Index(Box::new(super::parse(bytes, location)?))
        } else {
            Document::Manifest(Box::new(super::parse(bytes, location)?))
        })
    }
}

/// Whether a media type names an index (OCI) or manifest list (Docker).
pub fn is_index(media_type: &MediaType) -> bool {
    matches!(media_type, MediaType::ImageIndex)
        || matches!(media_type, MediaType::Other(t) if t == DOCKER_MANIFEST_LIST)
}

/// How a layer of this media type is compressed (`Some(None)`: not at
/// all); `None` for media types that are not layers mkimage can read.
pub fn layer_compression(media_type: &MediaType) -> Option<Option<Algorithm>> {
    match media_type {
        MediaType::ImageLayer | MediaType::ImageLayerNonDistributable => Some(None),
        MediaType::ImageLayerGzip | MediaType::ImageLayerNonDistributableGzip => {
            Some(Some(Algorithm::Gzip))
        }
        MediaType::ImageLayerZstd | MediaType::ImageLayerNonDistributableZstd => {
            Some(Some(Algorithm::Zstd))
        }
        MediaType::Other(t) => match t.as_str() {
            DOCKER_LAYER => Some(None),
            DOCKER_LAYER_GZIP => Some(Some(Algorithm::Gzip)),
            DOCKER_LAYER_ZSTD => Some(Some(Algorithm::Zstd)),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_and_oci_documents() {
        let docker = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
            "config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},
            "layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":3,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"}]}"#;
        let Document::Manifest(m) = Document::parse(docker, None, "m").unwrap() else {
            panic!("a manifest");
        };
        assert_eq!(
            layer_compression(m.layers()[0].media_type()),
            Some(Some(Algorithm::Gzip))
        );
        let list = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json",
            "manifests":[{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":3,
            "digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
            "platform":{"architecture":"arm","os":"linux","variant":"v7"}}]}"#;
        let Document::Index(i) = Document::parse(list, None, "l").unwrap() else {
            panic!("an index");
        };
        assert_eq!(i.manifests().len(), 1);
        // No media type anywhere: the shape decides.
        let bare = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert!(matches!(
            Document::parse(bare, None, "b").unwrap(),
            Document::Index(_)
        ));
        let err = Document::parse(br#"{"mediaType":"text/plain"}"#, None, "t").unwrap_err();
        assert!(matches!(err, SourceError::NotAManifest { .. }), "{err:?}");
        let err = Document::parse(b"[]", None, "x").unwrap_err();
        assert!(matches!(err, SourceError::Json { .. }), "{err:?}");
    }
}
