//! Provenance: why each file is in the image (which artifact, which
//! dependency chain, which layer), decided at build time and stored as one
//! canonical-JSON blob that refers to the image manifest.
//!
//! How the blob travels: as an OCI 1.1 referrer of the image manifest
//! (artifact type [`MEDIA_TYPE`], see [`super::referrers`]), beside the
//! SBOM, so it is pushed with the image and survives a registry round
//! trip; it names the manifest, not the other way round. Images built
//! before named
//! it by the manifest annotation [`ANNOTATION`], which `inspect` still
//! reads. Copies that move only config and layers (`skopeo copy`) leave
//! it behind; `mkimage inspect --why` then says it is missing rather than
//! guessing.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{OciError, canonical_json};

/// Media type of the provenance blob (and artifact type of its referrer).
pub const MEDIA_TYPE: &str = "application/vnd.mkimage.provenance.v1+json";
/// Manifest annotation that named the provenance blob by digest in images
/// built before it became a referrer.
pub const ANNOTATION: &str = "org.mkimage.provenance";

/// The provenance blob.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// Always [`MEDIA_TYPE`]: the blob says what it is, as OCI JSON does.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// Image path → why it is there.
    pub files: BTreeMap<String, FileOrigin>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileOrigin {
    /// The layer holding the path: the `org.mkimage.layer` name.
    pub layer: String,
    /// For people, e.g. `libssl.so.3 (needed) of /lib/…/libcurl.so.4
    /// [--from-binary /usr/bin/curl]`.
    pub why: String,
    /// The image path of the file that needs this one, whose own entry
    /// continues the chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needed_by: Option<String>,
}

/// Where the chain behind a path stops being followed: far longer than
/// any real dependency chain, and a guard against a cycle in a blob
/// written by someone else.
const MAX_CHAIN: usize = 64;

impl Provenance {
    pub fn new(files: BTreeMap<String, FileOrigin>) -> Self {
        Provenance {
            media_type: MEDIA_TYPE.to_owned(),
            files,
        }
    }

    /// The blob's bytes: canonical JSON, so equal provenance gives equal
    /// digests (and so equal manifest digests).
    pub fn to_json(&self) -> Result<Vec<u8>, OciError> {
        canonical_json(self)
    }

    /// Parses a provenance blob read from `path` (for error messages).
    pub fn from_json(bytes: &[u8], path: &Path) -> Result<Self, OciError> {
        let p: Provenance =
            serde_json::from_slice(bytes).map_err(|source| OciError::ParseJson {
                path: path.to_path_buf(),
                source,
            })?;
        if p.media_type != MEDIA_TYPE {
            return Err(OciError::UnexpectedMediaType {
                path: path.to_path_buf(),
                expected: MEDIA_TYPE,
                found: p.media_type,
            });
        }
        Ok(p)
    }

    /// `path`'s entry and the entries of whatever needs it, in turn, up to
    /// the artifact itself.
    pub fn chain<'a>(&'a self, path: &'a str) -> Vec<(&'a str, &'a FileOrigin)> {
        let mut out: Vec<(&str, &FileOrigin)> = Vec::new();
        let mut next = Some(path);
        while let Some(p) = next {
            if out.len() >= MAX_CHAIN || out.iter().any(|(seen, _)| *seen == p) {
                break;
            }
            let Some((key, origin)) = self.files.get_key_value(p) else {
                break;
            };
            out.push((key.as_str(), origin));
            next = origin.needed_by.as_deref();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(layer: &str, why: &str, by: Option<&str>) -> FileOrigin {
        FileOrigin {
            layer: layer.to_owned(),
            why: why.to_owned(),
            needed_by: by.map(str::to_owned),
        }
    }

    fn sample() -> Provenance {
        Provenance::new(
            [
                ("/app", origin("app", "--from-binary app", None)),
                (
                    "/lib/a.so",
                    origin("libs", "a.so (needed) of /app", Some("/app")),
                ),
                (
                    "/lib/b.so",
                    origin("libs", "b.so (needed) of /lib/a.so", Some("/lib/a.so")),
                ),
                ("/loop1", origin("libs", "x", Some("/loop2"))),
                ("/loop2", origin("libs", "y", Some("/loop1"))),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        )
    }

    #[test]
    fn golden_json_and_round_trip() {
        let p = Provenance::new(
            [("/b".to_owned(), origin("libs", "w", Some("/a")))]
                .into_iter()
                .chain([("/a".to_owned(), origin("app", "--from-binary a", None))])
                .collect(),
        );
        let json = p.to_json().unwrap();
        assert_eq!(
            std::str::from_utf8(&json).unwrap(),
            r#"{"files":{"/a":{"layer":"app","why":"--from-binary a"},"/b":{"layer":"libs","neededBy":"/a","why":"w"}},"mediaType":"application/vnd.mkimage.provenance.v1+json"}"#
        );
        assert_eq!(Provenance::from_json(&json, Path::new("x")).unwrap(), p);
    }

    #[test]
    fn rejects_other_media_types_and_shapes() {
        let err = Provenance::from_json(br#"{"mediaType":"a/b","files":{}}"#, Path::new("p"))
            .unwrap_err();
        assert!(
            matches!(&err, OciError::UnexpectedMediaType { found, .. } if found == "a/b"),
            "{err:?}"
        );
        let err = Provenance::from_json(b"[]", Path::new("p")).unwrap_err();
        assert!(matches!(err, OciError::ParseJson { .. }), "{err:?}");
    }

    #[test]
    fn chain_walks_to_the_artifact_and_stops_on_cycles() {
        let p = sample();
        let paths = |path| p.chain(path).iter().map(|(k, _)| *k).collect::<Vec<_>>();
        assert_eq!(paths("/lib/b.so"), ["/lib/b.so", "/lib/a.so", "/app"]);
        assert_eq!(paths("/app"), ["/app"]);
        assert_eq!(paths("/loop1"), ["/loop1", "/loop2"]);
        assert!(paths("/nope").is_empty());
    }
}
