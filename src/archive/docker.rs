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
use std::io::{self, BufReader, Write};
use std::path::Path;

use oci_spec::image::Descriptor;

use super::tar::TarWriter;
use super::{ArchiveError, Output, flush, write_err};
use crate::digest::{Digest, HashingWriter};
use crate::layer::{Algorithm, decompress};
pub use crate::oci::docker_manifest::{DockerManifestItem, MANIFEST_JSON};
use crate::oci::provenance;
use crate::oci::{Layout, canonical_json, from_oci_digest};
use crate::reference::Tagged;
use crate::source::{
    Attachment, ImageSource, OciSource, SBOM_TYPE, SourceError, check_error, layer_compression,
    read_error, select,
};

/// The legacy index, read by Docker before 1.10.
const REPOSITORIES: &str = "repositories";

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
    // Read through the image reader: the manifest and config checked
    // against their digests, the diff_ids counted against the layers,
    // every layer streamed and checked as it is copied.
    let source = OciSource::layout(&layout.root().display().to_string(), layout.root(), None)?;
    let image = select::image_at(&source, manifest.clone(), None)?;
    let config = &image.config_bytes;
    let config_digest = image.config_digest;
    let diff_ids = &image.diff_ids;
    let mut layers = Vec::new();
    for (d, diff_id) in image.layers.iter().zip(diff_ids) {
        let digest = from_oci_digest(d.digest(), layout.root())?;
        let compression =
            layer_compression(d.media_type()).ok_or_else(|| ArchiveError::UnsupportedLayer {
                digest,
                media_type: d.media_type().to_string(),
            })?;
        // Before the first byte is written: a missing blob is found here.
        layout.check_blob(&digest, d.size())?;
        layers.push((d, digest, compression, *diff_id));
    }
    // The provenance and SBOM the layout attaches to the image (its
    // index.json entry names them, see oci::referrers).
    let mut provenance = None;
    let mut sbom = None;
    for (kind, found) in source.attachments(&image)? {
        let slot = match kind.as_str() {
            provenance::MEDIA_TYPE => &mut provenance,
            SBOM_TYPE => &mut sbom,
            _ => continue,
        };
        let d = match found {
            Attachment::Present(d) => d,
            Attachment::Missing(what) => {
                return Err(SourceError::Missing {
                    location: format!("{kind} {what}"),
                }
                .into());
            }
        };
        let digest = from_oci_digest(d.digest(), layout.root())?;
        *slot = Some((digest, source.document(&d)?));
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
    tar.bytes(&item.config, config).map_err(&w)?;
    for (name, blob) in [(&item.provenance, &provenance), (&item.sbom, &sbom)] {
        if let (Some(name), Some((_, bytes))) = (name, blob) {
            tar.bytes(name, bytes).map_err(&w)?;
        }
    }
    let mut written = std::collections::BTreeSet::new();
    for (d, digest, compression, diff_id) in layers {
        // Two identical layers are one file, named twice in `Layers`.
        if !written.insert(diff_id) {
            continue;
        }
        tar.dir(&format!("{}/", diff_id.hex())).map_err(&w)?;
        let blob = source.blob(d)?;
        let location = source.locate(d);
        tar.stream(&format!("{}/layer.tar", diff_id.hex()), |out| {
            copy_layer(blob, &location, digest, compression, diff_id, out)
        })
        .map_err(&w)??;
    }
    flush(tar.finish().map_err(&w)?, &tmp)?;
    output.commit()
}

/// Streams the layer `blob` (a checked stream from the reader) into `out`
/// uncompressed, checking the result against its diff_id.
fn copy_layer(
    blob: Box<dyn io::Read + Send>,
    location: &str,
    digest: Digest,
    compression: Option<Algorithm>,
    diff_id: Digest,
    out: &mut dyn Write,
) -> Result<(), ArchiveError> {
    let mut blob = blob;
    let mut tar = HashingWriter::new(out);
    let copied = decompress(compression, BufReader::new(&mut blob))
        .and_then(|mut layer| io::copy(&mut layer, &mut tar));
    // Whatever follows the compressed stream counts for the digest: read
    // to the end so the reader checks it, and report a blob that is not
    // the manifest's as that, before any decoder's symptom of it.
    let drained = io::copy(&mut blob, &mut io::sink());
    match (drained, copied) {
        (Err(e), _) if check_error(&e).is_some() => return Err(read_error(location, e).into()),
        (_, Err(e)) | (Err(e), _) => return Err(read_error(location, e).into()),
        _ => {}
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
