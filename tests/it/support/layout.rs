//! Reading a layout straight from its files (no tools, no root): the index,
//! manifests, configs and referrers, every blob checked against its digest
//! and size as it is read.

use std::path::Path;

use mkimage::Digest;
use serde_json::Value;

/// The annotation an image layout's index names each image by.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The annotation mkimage puts on each layer descriptor of a manifest: base,
/// libs, runtime, deps or app.
pub const LAYER_ANNOTATION: &str = "org.mkimage.layer";

pub fn read_json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// The layout's index.json.
pub fn index(layout: &Path) -> Value {
    read_json(&layout.join("index.json"))
}

/// Every `(ref name, manifest digest)` in the index, in index order.
pub fn index_refs(layout: &Path) -> Vec<(String, String)> {
    index(layout)["manifests"]
        .as_array()
        .expect("index.json has a manifests array")
        .iter()
        .map(|m| {
            (
                m["annotations"][REF_NAME]
                    .as_str()
                    .unwrap_or_else(|| panic!("index entry without {REF_NAME}: {m}"))
                    .to_owned(),
                m["digest"].as_str().expect("index entry digest").to_owned(),
            )
        })
        .collect()
}

/// The blob `digest` names, checked against its digest and, when given, its
/// size.
pub fn blob(layout: &Path, descriptor: &Value) -> Vec<u8> {
    let digest: Digest = descriptor["digest"]
        .as_str()
        .unwrap_or_else(|| panic!("descriptor without digest: {descriptor}"))
        .parse()
        .expect("a sha256 digest");
    let path = layout.join("blobs/sha256").join(digest.hex());
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert_eq!(
        Digest::of(&bytes),
        digest,
        "{} has the wrong content",
        path.display()
    );
    assert_eq!(
        descriptor["size"].as_u64(),
        Some(bytes.len() as u64),
        "size of {digest}"
    );
    bytes
}

/// The index entry tagged `tag`; panics unless there is exactly one.
pub fn index_entry(layout: &Path, tag: &str) -> Value {
    let index = index(layout);
    let entries: Vec<&Value> = index["manifests"]
        .as_array()
        .expect("index.json has a manifests array")
        .iter()
        .filter(|m| m["annotations"][REF_NAME] == tag)
        .collect();
    assert_eq!(entries.len(), 1, "entries tagged {tag} in {index}");
    entries[0].clone()
}

/// The manifest digest tagged `tag`.
pub fn manifest_digest(layout: &Path, tag: &str) -> String {
    index_entry(layout, tag)["digest"]
        .as_str()
        .expect("digest")
        .to_owned()
}

/// The manifest tagged `tag`.
pub fn manifest(layout: &Path, tag: &str) -> Value {
    let entry = index_entry(layout, tag);
    assert_eq!(
        entry["mediaType"], "application/vnd.oci.image.manifest.v1+json",
        "{entry}"
    );
    serde_json::from_slice(&blob(layout, &entry)).expect("manifest is JSON")
}

/// The image config tagged `tag`.
pub fn config(layout: &Path, tag: &str) -> Value {
    let manifest = manifest(layout, tag);
    serde_json::from_slice(&blob(layout, &manifest["config"])).expect("config is JSON")
}

/// The layer digests of the image tagged `tag`, bottom first.
pub fn layer_digests(layout: &Path, tag: &str) -> Vec<String> {
    manifest(layout, tag)["layers"]
        .as_array()
        .expect("manifest layers")
        .iter()
        .map(|l| l["digest"].as_str().expect("layer digest").to_owned())
        .collect()
}

/// The referrers the index entry tagged `tag` names (mkimage's
/// `org.mkimage.referrers` annotation): (artifact type, artifact
/// manifest, its blob), each checked against its digest, sorted by type.
pub fn referrers(layout: &Path, tag: &str) -> Vec<(String, Value, Vec<u8>)> {
    let entry = index_entry(layout, tag);
    let digest = entry["annotations"]["org.mkimage.referrers"]
        .as_str()
        .unwrap_or_else(|| panic!("no referrers annotation on {entry}"));
    let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
    let size = std::fs::metadata(layout.join("blobs/sha256").join(hex))
        .expect("the referrers index is in the layout")
        .len();
    let index: Value = serde_json::from_slice(&blob(
        layout,
        &serde_json::json!({"digest": digest, "size": size}),
    ))
    .expect("referrers index is JSON");
    index["manifests"]
        .as_array()
        .expect("referrers index manifests")
        .iter()
        .map(|d| {
            let manifest: Value =
                serde_json::from_slice(&blob(layout, d)).expect("artifact manifest is JSON");
            let data = blob(layout, &manifest["layers"][0]);
            (
                d["artifactType"].as_str().expect("artifactType").to_owned(),
                manifest,
                data,
            )
        })
        .collect()
}

/// `oci:`-style `DIR:TAG`, as umoci, skopeo and podman take it.
pub(super) fn image_ref(layout: &Path, tag: &str) -> String {
    format!("{}:{tag}", layout.display())
}
