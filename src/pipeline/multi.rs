//! Multi-platform images: one build per platform into the same layout,
//! each untagged and byte-identical to a single-platform build of it,
//! then an OCI image index (image-index.md) listing their manifests with
//! their platforms, which the references point at.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::digest::Digest;
use crate::oci::{Layout, MediaType};
use crate::plan::{BuildPlan, OutputFormat};

use super::{BuildError, Built, Event, build_untagged};

/// What a multi-platform build wrote.
#[derive(Clone, Debug)]
pub struct BuiltIndex {
    pub output: PathBuf,
    pub references: Vec<String>,
    pub index_digest: Digest,
    /// One per platform, in the order given.
    pub images: Vec<Built>,
}

/// Builds every plan (one per platform, all into one layout with the
/// same references) and tags an index of them.
pub fn build_index(
    plans: &[BuildPlan],
    progress: &dyn Fn(Event),
) -> Result<BuiltIndex, BuildError> {
    let Some(first) = plans.first() else {
        return Err(BuildError::Empty);
    };
    if first.format != OutputFormat::Oci {
        return Err(BuildError::MultiPlatform {
            why: format!(
                "an image index is written to an OCI layout; leave out --format {}",
                first.format.name()
            ),
        });
    }
    let mut images: Vec<Built> = Vec::new();
    for plan in plans {
        let built = build_untagged(plan, progress)?;
        if let Some(other) = images.iter().find(|b| b.platform == built.platform) {
            return Err(BuildError::MultiPlatform {
                why: format!(
                    "two builds are for {} ({} and {}): give each platform once",
                    built.platform, other.manifest_digest, built.manifest_digest
                ),
            });
        }
        images.push(built);
    }
    // Each manifest's descriptor as its own build's index.json entry has
    // it (so the referrers annotation still names its SBOM and
    // provenance), with the platform the index needs.
    let manifests: Vec<Value> = images
        .iter()
        .map(|b| {
            let mut d = serde_json::to_value(&b.entry).map_err(|e| BuildError::MultiPlatform {
                why: format!("descriptor: {e}"),
            })?;
            let (architecture, variant) = b.platform.oci();
            let mut platform = json!({"architecture": architecture, "os": "linux"});
            if let Some(v) = variant {
                platform["variant"] = v.into();
            }
            d["platform"] = platform;
            Ok(d)
        })
        .collect::<Result<_, BuildError>>()?;
    let index = json!({
        "schemaVersion": 2,
        "mediaType": crate::oci::names::INDEX_MEDIA_TYPE,
        "manifests": manifests,
    });
    let layout = Layout::open(&first.output)?;
    let descriptor = layout.put_json(MediaType::ImageIndex, &index)?;
    layout.set_references(&descriptor, &first.references)?;
    let index_digest = crate::oci::from_oci_digest(descriptor.digest(), layout.root())?;
    Ok(BuiltIndex {
        output: first.output.clone(),
        references: first.references.clone(),
        index_digest,
        images,
    })
}
