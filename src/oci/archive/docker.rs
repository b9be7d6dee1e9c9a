//! docker-archive: the format `docker save` writes and `docker load`,
//! `podman load` and skopeo's `docker-archive:` read.
//!
//! ```text
//! manifest.json                 [{"Config":"<config hex>.json","RepoTags":["app:latest"],
//!                                 "Layers":["<diff_id hex>/layer.tar", …]}]
//! repositories                  {"app":{"latest":"<top diff_id hex>"}} (pre-1.10 Docker)
//! <config hex>.json             the image config, byte for byte
//! <provenance hex>.provenance.json   mkimage's provenance, when the image has one
//! <sbom hex>.spdx.json          the image's SPDX SBOM, when it has one
//! <diff_id hex>/layer.tar       each layer, uncompressed
//! ```
//!
//! Layers are stored uncompressed, as `docker save` stores them: each
//! `layer.tar` is then exactly what the config's `rootfs.diff_ids` name,
//! which every loader checks, including Docker before 1.10 and other tools
//! that do not sniff for gzip. The cost is size (the archive is a
//! transport; compress it whole if that matters). The uncompressed size
//! that the tar header needs is not in the manifest, so each layer is
//! decompressed (gzip or zstd) straight into the archive behind a
//! placeholder header that is patched afterwards: one pass, nothing in
//! memory, and the diff_id is verified on the way. So `--compression`
//! changes only how long the build takes, not the archive.
//!
//! The per-layer `VERSION` and `json` files of Docker's v1 format are left
//! out: loaders since Docker 1.10 read `manifest.json` instead.
//!
//! `manifest.json` has no media types, annotations or referrers, so the
//! provenance and the SBOM a layout attaches to the image are named by
//! extra keys, `org.mkimage.provenance` and `org.mkimage.sbom`
//! ([`DockerManifestItem::provenance`], [`DockerManifestItem::sbom`]); Docker and
//! containers/image decode it with Go's encoding/json, which ignores keys
//! it does not know.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Write};
use std::path::Path;

use oci_spec::image::{Descriptor, ImageManifest, MediaType};
use serde::{Deserialize, Serialize};

use super::tar::TarWriter;
use super::{ArchiveError, Output, flush, write_err};
use crate::digest::{Digest, HashingReader, HashingWriter};
use crate::layer::{Algorithm, decompress};
use crate::oci::{Layout, OciError, canonical_json, check_digest, from_oci_digest, io_err};
use crate::oci::{provenance, referrers};
use crate::reference::Tagged;

/// The index of a docker-archive.
pub const MANIFEST_JSON: &str = "manifest.json";
/// The legacy index, read by Docker before 1.10.
const REPOSITORIES: &str = "repositories";

/// The SBOM's artifact type (sbom::spdx names it; the archive writer sits
/// below the SBOM in the pipeline, so the string is repeated here).
const SBOM_MEDIA_TYPE: &str = "application/spdx+json";
const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

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

/// Writes the image whose manifest is `manifest` (stored in `layout`) to
/// `dest` as a docker-archive tagged `repo_tags` (`name[:tag]`; no tag
/// means `latest`), every entry stamped with `mtime`.
pub fn write_docker_archive(
    layout: &Layout,
    manifest: &Descriptor,
    repo_tags: &[String],
    dest: &Path,
    mtime: u64,
) -> Result<(), ArchiveError> {
    // What `docker load` reads, by docker's own grammar: `repo:tag/x` is
    // refused here, not written as a repository named `repo:tag/x`.
    let tags = repo_tags
        .iter()
        .map(|t| {
            Tagged::parse(t).map_err(|source| ArchiveError::BadRepoTag {
                tag: t.clone(),
                source,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let root = layout.root();
    let entry = manifest;
    let manifest_digest = from_oci_digest(manifest.digest(), root)?;
    let manifest_path = layout.blob_path(&manifest_digest);
    let manifest: ImageManifest = serde_json::from_slice(&layout.read_blob(&manifest_digest)?)
        .map_err(|source| OciError::ParseJson {
            path: manifest_path,
            source,
        })?;

    let config_digest = from_oci_digest(manifest.config().digest(), root)?;
    let config = layout.read_blob(&config_digest)?;
    let diff_ids = diff_ids(&config, &config_digest)?;
    if diff_ids.len() != manifest.layers().len() {
        return Err(ArchiveError::DiffIdCount {
            config: config_digest,
            diff_ids: diff_ids.len(),
            layers: manifest.layers().len(),
        });
    }
    let mut layers = Vec::new();
    for (d, diff_id) in manifest.layers().iter().zip(&diff_ids) {
        let digest = from_oci_digest(d.digest(), root)?;
        let compression =
            compression(d.media_type()).ok_or_else(|| ArchiveError::UnsupportedLayer {
                digest,
                media_type: d.media_type().to_string(),
            })?;
        layout.check_blob(&digest, d.size())?;
        layers.push((digest, d.size(), compression, *diff_id));
    }
    // The provenance and SBOM the layout attaches to the image (its
    // index.json entry names them, see oci::referrers).
    let mut provenance = None;
    let mut sbom = None;
    for r in referrers::list(layout, entry)? {
        let slot = match r.artifact_type.as_str() {
            provenance::MEDIA_TYPE => &mut provenance,
            SBOM_MEDIA_TYPE => &mut sbom,
            _ => continue,
        };
        let digest = from_oci_digest(r.blob.digest(), root)?;
        *slot = Some((digest, layout.read_blob(&digest)?));
    }
    let item = DockerManifestItem {
        config: format!("{}.json", config_digest.hex()),
        repo_tags: Some(tags.iter().map(Tagged::to_string).collect()),
        layers: diff_ids
            .iter()
            .map(|d| format!("{}/layer.tar", d.hex()))
            .collect(),
        provenance: provenance
            .as_ref()
            .map(|(d, _)| format!("{}.provenance.json", d.hex())),
        sbom: sbom.as_ref().map(|(d, _)| format!("{}.spdx.json", d.hex())),
    };
    let mut repositories: BTreeMap<&str, BTreeMap<&str, String>> = BTreeMap::new();
    if let Some(top) = diff_ids.last() {
        for t in &tags {
            repositories
                .entry(t.name())
                .or_default()
                .insert(t.tag(), top.hex());
        }
    }

    let output = Output::create(dest)?;
    let tmp = output.tmp_path();
    let mut tar = TarWriter::new(output.writer(), mtime);
    let w = write_err(&tmp);
    tar.bytes(MANIFEST_JSON, &canonical_json(&[&item])?)
        .map_err(&w)?;
    if !repositories.is_empty() {
        tar.bytes(REPOSITORIES, &canonical_json(&repositories)?)
            .map_err(&w)?;
    }
    tar.bytes(&item.config, &config).map_err(&w)?;
    for (name, blob) in [(&item.provenance, &provenance), (&item.sbom, &sbom)] {
        if let (Some(name), Some((_, bytes))) = (name, blob) {
            tar.bytes(name, bytes).map_err(&w)?;
        }
    }
    let mut written = std::collections::BTreeSet::new();
    for (digest, size, compression, diff_id) in layers {
        // Two identical layers are one file, named twice in `Layers`.
        if !written.insert(diff_id) {
            continue;
        }
        tar.dir(&format!("{}/", diff_id.hex())).map_err(&w)?;
        let path = layout.blob_path(&digest);
        tar.stream(&format!("{}/layer.tar", diff_id.hex()), |out| {
            copy_layer(&path, (digest, size), compression, diff_id, out)
        })
        .map_err(&w)??;
    }
    flush(tar.finish().map_err(&w)?, &tmp)?;
    output.commit()
}

/// Streams the layer blob at `path` into `out` uncompressed, checking the
/// blob against its descriptor and the result against its diff_id.
fn copy_layer(
    path: &Path,
    (digest, size): (Digest, u64),
    compression: Option<Algorithm>,
    diff_id: Digest,
    out: &mut dyn Write,
) -> Result<(), ArchiveError> {
    let file = File::open(path).map_err(io_err("read", path))?;
    let mut blob = HashingReader::new(file);
    let mut tar = HashingWriter::new(out);
    decompress(compression, BufReader::new(&mut blob))
        .and_then(|mut layer| io::copy(&mut layer, &mut tar))
        .map_err(io_err("uncompress", path))?;
    let (found, read) = blob.finish();
    check_digest(path, &digest, found)?;
    if read != size {
        return Err(OciError::SizeMismatch {
            digest,
            expected: size,
            found: read,
        }
        .into());
    }
    let (_, found, _) = tar.finish();
    if found != diff_id {
        return Err(ArchiveError::DiffIdMismatch {
            digest,
            expected: diff_id,
            found,
        });
    }
    Ok(())
}

/// How a layer of this media type is compressed (`Some(None)`: not at
/// all); `None` for media types that are not layers mkimage can read.
fn compression(media_type: &MediaType) -> Option<Option<Algorithm>> {
    match media_type {
        MediaType::ImageLayer => Some(None),
        MediaType::ImageLayerGzip => Some(Some(Algorithm::Gzip)),
        MediaType::ImageLayerZstd => Some(Some(Algorithm::Zstd)),
        MediaType::Other(t) if t == DOCKER_LAYER => Some(None),
        MediaType::Other(t) if t == DOCKER_LAYER_GZIP => Some(Some(Algorithm::Gzip)),
        _ => None,
    }
}

/// The config's `rootfs.diff_ids`.
fn diff_ids(config: &[u8], digest: &Digest) -> Result<Vec<Digest>, ArchiveError> {
    let bad = |reason: String| ArchiveError::BadConfig {
        config: *digest,
        reason,
    };
    let value: serde_json::Value =
        serde_json::from_slice(config).map_err(|e| bad(format!("not JSON: {e}")))?;
    let list = value["rootfs"]["diff_ids"]
        .as_array()
        .ok_or_else(|| bad("no rootfs.diff_ids list".into()))?;
    list.iter()
        .map(|d| {
            d.as_str()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| bad(format!("diff_id {d} is not a sha256 digest")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_item_json() {
        let item = DockerManifestItem {
            config: "c.json".into(),
            repo_tags: Some(vec!["a:b".into()]),
            layers: vec!["l/layer.tar".into()],
            provenance: None,
            sbom: None,
        };
        assert_eq!(
            String::from_utf8(canonical_json(&[&item]).unwrap()).unwrap(),
            r#"[{"Config":"c.json","Layers":["l/layer.tar"],"RepoTags":["a:b"]}]"#
        );
        // What Docker writes for an untagged image.
        let parsed: Vec<DockerManifestItem> =
            serde_json::from_str(r#"[{"Config":"c","RepoTags":null,"Layers":[],"Parent":""}]"#)
                .unwrap();
        assert_eq!(parsed[0].repo_tags, None);
    }
}
