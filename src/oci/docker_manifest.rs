//! The index of a docker-archive, `manifest.json` (Docker's
//! `image/tarexport`): written by [`crate::archive`], read by the image
//! reader. The format's vocabulary sits here, below both.

use serde::{Deserialize, Serialize};

/// The index of a docker-archive.
pub const MANIFEST_JSON: &str = "manifest.json";

/// One image in `manifest.json` (Docker's `image/tarexport` manifestItem).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerManifestItem {
    /// Path of the config in the archive.
    #[serde(rename = "Config")]
    pub config: String,
    /// `name:tag` references; Docker writes `null` for an untagged image.
    #[serde(rename = "RepoTags", default)]
    pub repo_tags: Option<Vec<String>>,
    /// Paths of the layer tars, bottom first.
    #[serde(rename = "Layers")]
    pub layers: Vec<String>,
    /// Path of mkimage's provenance blob.
    #[serde(
        rename = "org.mkimage.provenance",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub provenance: Option<String>,
    /// Path of the image's SPDX SBOM.
    #[serde(
        rename = "org.mkimage.sbom",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub sbom: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// serde's renames must be literals: this ties the provenance key to
    /// the annotation of the same name the layout writes.
    #[test]
    fn the_provenance_key_is_the_annotation() {
        let item = DockerManifestItem {
            config: "c.json".into(),
            repo_tags: None,
            layers: Vec::new(),
            provenance: Some("p.json".into()),
            sbom: None,
        };
        let json = serde_json::to_value(&item).unwrap();
        assert_eq!(json[super::super::provenance::ANNOTATION], "p.json");
    }
}
