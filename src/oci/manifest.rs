//! The image manifest (image-spec manifest.md): the config descriptor and the
//! layer descriptors, in order. Its digest is the image's identity.

use std::collections::{BTreeMap, HashMap};

use oci_spec::image::{Descriptor, ImageManifest, ImageManifestBuilder, MediaType, SCHEMA_VERSION};

use super::config::LayerInfo;
use super::{OciError, oci_digest};

/// Builds a schema-2 OCI manifest. `config` is the descriptor of the stored
/// config blob (as returned by `Layout::put_json`); `annotations` go on the
/// manifest itself and are left out when empty.
pub fn build_manifest(
    config: &Descriptor,
    layers: &[LayerInfo],
    annotations: &BTreeMap<String, String>,
) -> Result<ImageManifest, OciError> {
    let layers = layers
        .iter()
        .map(|l| {
            let mut d = Descriptor::new(l.media_type.clone(), l.size, oci_digest(&l.digest)?);
            if !l.annotations.is_empty() {
                d.set_annotations(Some(to_hash_map(&l.annotations)));
            }
            Ok(d)
        })
        .collect::<Result<Vec<_>, OciError>>()?;
    let mut manifest = ImageManifestBuilder::default()
        .schema_version(SCHEMA_VERSION)
        // Optional in the spec, but registries and tools match on it.
        .media_type(MediaType::ImageManifest)
        .config(config.clone())
        .layers(layers);
    if !annotations.is_empty() {
        manifest = manifest.annotations(to_hash_map(annotations));
    }
    manifest.build().map_err(|source| OciError::Spec {
        what: "manifest",
        source,
    })
}

/// oci-spec's annotation type; canonical_json sorts it again on the way out.
pub(crate) fn to_hash_map(m: &BTreeMap<String, String>) -> HashMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::{Digest, canonical_json};

    #[test]
    fn golden_manifest() {
        let config = Descriptor::new(
            MediaType::ImageConfig,
            321,
            oci_digest(&Digest::from_bytes([0xcc; 32])).expect("digest"),
        );
        let layers = [
            LayerInfo {
                diff_id: Digest::from_bytes([1; 32]),
                digest: Digest::from_bytes([0xa1; 32]),
                size: 1000,
                media_type: MediaType::ImageLayerGzip,
                created_by: "libs".to_owned(),
                annotations: BTreeMap::new(),
            },
            LayerInfo {
                diff_id: Digest::from_bytes([2; 32]),
                digest: Digest::from_bytes([0xa2; 32]),
                size: 20,
                media_type: MediaType::ImageLayerGzip,
                created_by: "app".to_owned(),
                annotations: [("z", "1"), ("a", "2")]
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
            },
        ];
        let annotations = [(
            "org.opencontainers.image.created".to_owned(),
            "1970-01-01T00:00:00Z".to_owned(),
        )]
        .into();
        let m = build_manifest(&config, &layers, &annotations).expect("manifest");
        let json = String::from_utf8(canonical_json(&m).expect("json")).expect("utf-8");
        let (c, l1, l2) = ("cc".repeat(32), "a1".repeat(32), "a2".repeat(32));
        assert_eq!(
            json,
            format!(
                concat!(
                    r#"{{"annotations":{{"org.opencontainers.image.created":"1970-01-01T00:00:00Z"}},"#,
                    r#""config":{{"digest":"sha256:{c}","mediaType":"application/vnd.oci.image.config.v1+json","size":321}},"#,
                    r#""layers":[{{"digest":"sha256:{l1}","mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":1000}},"#,
                    r#"{{"annotations":{{"a":"2","z":"1"}},"digest":"sha256:{l2}","mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":20}}],"#,
                    r#""mediaType":"application/vnd.oci.image.manifest.v1+json","schemaVersion":2}}"#
                ),
                c = c,
                l1 = l1,
                l2 = l2
            )
        );
        // No annotations: the key is absent, not `{}`.
        let bare = build_manifest(&config, &layers[..1], &BTreeMap::new()).expect("manifest");
        let bare = String::from_utf8(canonical_json(&bare).expect("json")).expect("utf-8");
        assert!(bare.starts_with(r#"{"config":"#), "{bare}");
    }
}
