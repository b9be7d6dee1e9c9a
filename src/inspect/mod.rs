//! `mkimage inspect`: reads an image back from any source (see
//! [`crate::source`]: a layout directory, an oci-archive, a
//! docker-archive, a registry) and reports its layers, its config, its
//! file tree (layers streamed: gzip or zstd decoded, tar listed, whiteouts
//! applied) and, for images mkimage built, why each file is there.
//!
//! Everything is read in place: JSON documents whole (with a size cap),
//! layers as streams, every blob checked against its digest on the way, so
//! `inspect` is also a verification of the image. Nothing is written.

pub mod diff;
mod files;
pub mod html;
mod packages;

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::Path;

use serde::Serialize;

pub use self::files::{Change, FileInfo, FileKind, FileTree, printable};
pub use self::packages::Packages;
use self::packages::Records;
use crate::digest::{Digest, HashingReader};
use crate::image_path::archive_member;
use crate::layer::decompress;
use crate::oci::names::LAYER_ANNOTATION;
use crate::oci::provenance::{self, FileOrigin, Provenance};
use crate::oci::{Descriptor, OciError};
use crate::source::{
    Attachment, ImageSource, SBOM_TYPE, SelectedImage, SourceError, SourceOptions, SourceRef,
    check_error, layer_compression,
};

/// Where an image was read from.
use crate::oci::Platform;
pub use crate::source::Kind as Format;

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error(transparent)]
    Source(SourceError),
    #[error("{location} has digest {found}, expected {expected}")]
    DigestMismatch {
        location: String,
        expected: Digest,
        found: Digest,
    },
    #[error(transparent)]
    Oci(#[from] OciError),
    #[error("cannot read {location}")]
    Read { location: String, source: io::Error },
    #[error("layer {index} ({location}) has media type {media_type}, which inspect cannot read")]
    UnsupportedLayer {
        index: usize,
        location: String,
        media_type: String,
    },
    #[error("cannot read layer {index} ({location}) as a tar stream")]
    Layer {
        index: usize,
        location: String,
        source: io::Error,
    },
    #[error(
        "{image} was not built by mkimage: it has no provenance attached \
         (no org.mkimage.referrers annotation in its index.json entry)"
    )]
    NotBuiltByMkimage { image: String },
    #[error(
        "{image} names provenance blob {digest}, but the blob is not there \
         (was the image copied by a tool that moves only config and layers?)"
    )]
    ProvenanceMissing { image: String, digest: String },
    #[error(
        "{image} has no SBOM attached: it was built by another tool or an older \
         mkimage, or copied by one that moves only config and layers"
    )]
    NoSbom { image: String },
    #[error(
        "{image} names an SBOM ({what}), but it is not there \
         (was the image copied by a tool that moves only config and layers?)"
    )]
    SbomMissing { image: String, what: String },
    #[error("{path:?} is not an absolute path in the image")]
    BadPath { path: String },
    #[error("{path} is not in the image")]
    NotInImage { path: String },
    #[error(
        "{path} is in the image{}, but mkimage recorded no reason for it: \
         it is a directory created to hold other files",
        layer.map(|l| format!(" (layer {l})")).unwrap_or_default()
    )]
    NotRecorded { path: String, layer: Option<usize> },
}

impl From<SourceError> for InspectError {
    /// The source's errors, except a digest mismatch, which inspect's
    /// own layer checks report too.
    fn from(e: SourceError) -> InspectError {
        match e {
            SourceError::DigestMismatch {
                location,
                expected,
                found,
            } => InspectError::DigestMismatch {
                location,
                expected,
                found,
            },
            e => InspectError::Source(e),
        }
    }
}

impl InspectError {
    /// Whether the image (or the path asked about) is not there.
    pub fn is_not_found(&self) -> bool {
        match self {
            InspectError::NotInImage { .. } => true,
            InspectError::Source(e) => e.is_not_found(),
            _ => false,
        }
    }
}

/// What the image says about itself, without reading its layers.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// The image as the user named it.
    pub image: String,
    pub format: Format,
    /// Every tag naming this image.
    pub tags: Vec<String>,
    /// Absent in a docker-archive, which has no manifest.
    pub manifest: Option<ManifestSummary>,
    pub config: ConfigSummary,
    pub layers: Vec<LayerSummary>,
    /// The provenance blob, if the image has one (built by mkimage).
    pub provenance: Option<String>,
    /// The SPDX SBOM attached to the image, if any.
    pub sbom: Option<String>,
    /// The files by Debian package, once the layers have been read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packages: Option<Packages>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ManifestSummary {
    pub digest: Digest,
    pub media_type: String,
    pub annotations: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ConfigSummary {
    pub digest: Digest,
    pub architecture: String,
    pub os: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    pub created: Option<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub exposed_ports: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LayerSummary {
    /// 1 = bottom.
    pub index: usize,
    /// What it holds: the `org.mkimage.layer` annotation, else `layer N`.
    pub what: String,
    /// The blob digest (OCI); a docker-archive's layers are named by
    /// `diff_id` alone.
    pub digest: Option<Digest>,
    pub diff_id: Option<Digest>,
    pub media_type: Option<String>,
    /// Bytes as stored: compressed in a layout or oci-archive.
    pub size: u64,
    /// Set once the layer has been read (see [`Image::files`]).
    pub uncompressed_size: Option<u64>,
    /// Entries other than directories (files, links), once read.
    pub files: Option<usize>,
}

/// Why a path is in the image: the provenance entry and the chain of
/// files that needed it, up to the artifact.
#[derive(Clone, Debug, Serialize)]
pub struct Why {
    /// As asked.
    pub path: String,
    /// With symlinks resolved inside the image.
    pub resolved: String,
    /// The recorded path: `resolved`, or the directory holding it when only
    /// the directory was recorded (time zones).
    pub recorded: String,
    pub chain: Vec<WhyStep>,
}

#[derive(Clone, Debug, Serialize)]
pub struct WhyStep {
    pub path: String,
    pub layer: String,
    pub why: String,
}

/// For the summary: an attached blob's digest, else what names it.
fn describe(a: Option<&Attachment>) -> Option<String> {
    match a? {
        Attachment::Present(d) => Some(d.digest().to_string()),
        Attachment::Missing(what) => Some(what.clone()),
    }
}

/// An opened image: its documents read and checked, its layers not yet.
pub struct Image {
    source: Box<dyn ImageSource>,
    selected: SelectedImage,
    summary: Summary,
    provenance: Option<Attachment>,
    sbom: Option<Attachment>,
}

impl std::fmt::Debug for Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Image")
            .field("summary", &self.summary)
            .finish_non_exhaustive()
    }
}

impl Image {
    /// Opens `reference` (any [`SourceRef`]: `DIR[:TAG]`,
    /// `ARCHIVE[:TAG]`, `oci-archive:…`, `docker-archive:…`), with the
    /// default registry options; a multi-platform image gives the host's
    /// platform.
    pub fn open(reference: &str) -> Result<Image, InspectError> {
        Image::open_with(reference, &SourceOptions::default(), None)
    }

    /// [`Image::open`] with registry options, and the platform to pick
    /// from a multi-platform image.
    pub fn open_with(
        reference: &str,
        opts: &SourceOptions,
        platform: Option<&Platform>,
    ) -> Result<Image, InspectError> {
        Image::from_source(reference, Image::source(reference, opts)?, platform)
    }

    /// The source `reference` names, opened (a registry is contacted only
    /// by the first request).
    pub fn source(
        reference: &str,
        opts: &SourceOptions,
    ) -> Result<Box<dyn ImageSource>, InspectError> {
        Ok(crate::source::open(&SourceRef::parse(reference)?, opts)?)
    }

    /// [`Image::open_with`] of a source already open (`reference` names
    /// it in the summary), so a caller that looked at its top document
    /// first does not open it twice.
    pub fn from_source(
        reference: &str,
        source: Box<dyn ImageSource>,
        platform: Option<&Platform>,
    ) -> Result<Image, InspectError> {
        let selected = source.select(platform)?;
        let mut attached = source.attachments(&selected)?;
        let provenance = attached.remove(provenance::MEDIA_TYPE);
        let sbom = attached.remove(SBOM_TYPE);
        let mut summary = summarise(reference, source.as_ref(), &selected)?;
        summary.provenance = describe(provenance.as_ref());
        summary.sbom = describe(sbom.as_ref());
        Ok(Image {
            source,
            selected,
            summary,
            provenance,
            sbom,
        })
    }

    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// The image as the reader selected it: documents, layers, platform.
    pub fn selected(&self) -> &SelectedImage {
        &self.selected
    }

    /// Reads every layer in order (streamed, each blob verified) and
    /// returns the merged file tree; fills in each layer's file count and
    /// uncompressed size in the summary.
    pub fn files(&mut self) -> Result<FileTree, InspectError> {
        let mut tree = FileTree::default();
        let mut records = Records::new();
        for i in 0..self.selected.layers.len() {
            let (files, size) = self.read_layer(i, &mut tree, &mut records)?;
            let summary = &mut self.summary.layers[i];
            summary.files = Some(files);
            summary.uncompressed_size = Some(size);
        }
        let (owners, by_package) = packages::usage(&tree, &records);
        tree.set_packages(&owners);
        self.summary.packages = Some(by_package);
        Ok(tree)
    }

    /// Checks every layer blob against its digest and size, reading it
    /// once without decoding it (for a listing without files).
    pub fn verify_layers(&self) -> Result<(), InspectError> {
        for d in &self.selected.layers {
            let location = self.source.locate(d);
            crate::source::verify(self.source.blob(d)?, &location)?;
        }
        Ok(())
    }

    /// The blob an attachment names, read whole (it is a JSON document).
    fn attached(&self, d: &Descriptor) -> Result<Vec<u8>, InspectError> {
        Ok(self.source.document(d)?)
    }

    /// The provenance blob, or why there is none.
    pub fn provenance(&self) -> Result<Provenance, InspectError> {
        let image = self.summary.image.clone();
        let d = match &self.provenance {
            None => return Err(InspectError::NotBuiltByMkimage { image }),
            Some(Attachment::Missing(digest)) => {
                return Err(InspectError::ProvenanceMissing {
                    image,
                    digest: digest.clone(),
                });
            }
            Some(Attachment::Present(d)) => d,
        };
        let bytes = self.attached(d)?;
        Ok(Provenance::from_json(
            &bytes,
            Path::new(&self.source.locate(d)),
        )?)
    }

    /// The SPDX SBOM attached to the image, as stored.
    pub fn sbom(&self) -> Result<Vec<u8>, InspectError> {
        let image = self.summary.image.clone();
        match &self.sbom {
            None => Err(InspectError::NoSbom { image }),
            Some(Attachment::Missing(what)) => Err(InspectError::SbomMissing {
                image,
                what: what.clone(),
            }),
            Some(Attachment::Present(d)) => self.attached(d),
        }
    }

    /// Why `path` is in the image. Reads the layers only when the path is
    /// not recorded as asked (to resolve symlinks, or to tell a directory
    /// from a path that is not there).
    pub fn why(&mut self, path: &str) -> Result<Why, InspectError> {
        let provenance = self.provenance()?;
        let asked = clean_image_path(path)?;
        if provenance.files.contains_key(&asked) {
            return Ok(why_from(&provenance, &asked, &asked, &asked));
        }
        let tree = self.files()?;
        let resolved = tree
            .resolve(&asked)
            .ok_or_else(|| InspectError::NotInImage {
                path: asked.clone(),
            })?;
        // A directory no layer lists (but files are in) has no entry.
        let layer = tree.get(&resolved).map(|f| f.layer);
        let mut recorded = Some(resolved.as_str());
        while let Some(p) = recorded {
            if provenance.files.contains_key(p) {
                return Ok(why_from(&provenance, &asked, &resolved, p));
            }
            recorded = p
                .rsplit_once('/')
                .map(|(dir, _)| dir)
                .filter(|d| !d.is_empty());
        }
        Err(InspectError::NotRecorded {
            path: resolved,
            layer,
        })
    }

    /// Streams layer `i` into `tree`: blob digest and diff_id verified.
    /// Returns (non-directory entries, uncompressed size).
    fn read_layer(
        &self,
        i: usize,
        tree: &mut FileTree,
        records: &mut Records,
    ) -> Result<(usize, u64), InspectError> {
        let d = &self.selected.layers[i];
        let location = self.source.locate(d);
        let index = i + 1;
        // A read that failed because the blob is not what the manifest
        // names is reported as that, whatever decoder saw it.
        let layer_err = |source: io::Error| match check_error(&source) {
            Some(_) => InspectError::from(crate::source::read_error(&location, source)),
            None => InspectError::Layer {
                index,
                location: location.clone(),
                source,
            },
        };
        let mut blob = self.source.blob(d)?;
        let listed = (|| {
            let compression = layer_compression(d.media_type()).ok_or_else(|| {
                InspectError::UnsupportedLayer {
                    index,
                    location: location.clone(),
                    media_type: d.media_type().to_string(),
                }
            })?;
            let buffered = io::BufReader::new(&mut blob);
            let stream = decompress(compression, buffered).map_err(layer_err)?;
            let mut tar_stream = HashingReader::new(stream);
            let files = list_tar(&mut tar_stream, index, tree, records).map_err(layer_err)?;
            // The end-of-archive blocks and any padding count for diff_id.
            io::copy(&mut tar_stream, &mut io::sink()).map_err(layer_err)?;
            let (diff_id, size) = tar_stream.finish();
            Ok((files, diff_id, size))
        })();
        // Anything after the compressed stream counts for the blob digest.
        // A blob that does not decode is read to the end too: when its
        // digest is wrong, that is the error to report (the blob is
        // corrupt), not the decoder's symptom of it.
        let drained = io::copy(&mut blob, &mut io::sink());
        match (drained, listed) {
            (Err(e), _) if check_error(&e).is_some() => Err(layer_err(e)),
            (_, Err(e)) => Err(e),
            (Err(e), _) => Err(layer_err(e)),
            (Ok(_), Ok((files, diff_id, size))) => {
                if let Some(expected) = self.selected.diff_ids.get(i)
                    && *expected != diff_id
                {
                    return Err(InspectError::DigestMismatch {
                        location: format!("{location} (uncompressed)"),
                        expected: *expected,
                        found: diff_id,
                    });
                }
                Ok((files, size))
            }
        }
    }
}

/// What the image says about itself, from its documents.
fn summarise(
    image: &str,
    source: &dyn ImageSource,
    s: &SelectedImage,
) -> Result<Summary, InspectError> {
    let c = s.config.config().clone().unwrap_or_default();
    let config = ConfigSummary {
        digest: s.config_digest,
        architecture: s.config.architecture().to_string(),
        os: s.config.os().to_string(),
        variant: s.config.variant().clone().filter(|v| !v.is_empty()),
        created: s.config.created().clone().filter(|v| !v.is_empty()),
        entrypoint: c.entrypoint().clone().unwrap_or_default(),
        cmd: c.cmd().clone().unwrap_or_default(),
        env: c.env().clone().unwrap_or_default(),
        user: c.user().clone().filter(|v| !v.is_empty()),
        workdir: c.working_dir().clone().filter(|v| !v.is_empty()),
        exposed_ports: {
            let mut p = c.exposed_ports().clone().unwrap_or_default();
            p.sort();
            p
        },
        labels: c.labels().clone().unwrap_or_default().into_iter().collect(),
    };
    let layers = s
        .layers
        .iter()
        .enumerate()
        .map(|(i, d)| LayerSummary {
            index: i + 1,
            what: d
                .annotations()
                .as_ref()
                .and_then(|a| a.get(LAYER_ANNOTATION))
                .map_or_else(|| format!("layer {}", i + 1), Clone::clone),
            // A docker-archive's layers are named by diff_id alone.
            digest: (!s.synthetic)
                .then(|| crate::source::digest_of(d, image).ok())
                .flatten(),
            diff_id: s.diff_ids.get(i).copied(),
            media_type: (!s.synthetic).then(|| d.media_type().to_string()),
            size: d.size(),
            uncompressed_size: None,
            files: None,
        })
        .collect();
    let manifest = (!s.synthetic).then(|| ManifestSummary {
        digest: s.manifest_digest,
        media_type: s.manifest_media_type.to_string(),
        annotations: s
            .manifest
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
    });
    Ok(Summary {
        image: image.to_owned(),
        format: source.kind(),
        tags: source.tags_of_top()?,
        manifest,
        config,
        layers,
        provenance: None,
        sbom: None,
        packages: None,
    })
}

/// Lists one layer's tar into `tree`, keeping the package records it
/// holds in `records`; returns the count of entries other than
/// directories and whiteouts.
fn list_tar(
    stream: impl Read,
    layer: usize,
    tree: &mut FileTree,
    records: &mut Records,
) -> io::Result<usize> {
    let mut archive = tar::Archive::new(stream);
    let mut count = 0;
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw_bytes = entry.path_bytes().into_owned();
        let raw = String::from_utf8_lossy(&raw_bytes).into_owned();
        let path_base64 = std::str::from_utf8(&raw_bytes).is_err().then(|| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(&raw_bytes)
        });
        let Some(rel) = archive_member(&raw) else {
            continue;
        };
        let header = entry.header();
        let kind = match header.entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => FileKind::File,
            tar::EntryType::Directory => FileKind::Dir,
            tar::EntryType::Symlink => FileKind::Symlink,
            tar::EntryType::Link => FileKind::Hardlink,
            _ => FileKind::Other,
        };
        let target = match kind {
            FileKind::Symlink => entry.link_name()?.map(|t| t.to_string_lossy().into_owned()),
            FileKind::Hardlink => entry
                .link_name()?
                .and_then(|t| archive_member(&t.to_string_lossy()))
                .map(|t| format!("/{t}")),
            _ => None,
        };
        // An empty numeric field reads as 0, as Go's archive/tar (and so
        // every container runtime) reads it.
        let mode = header.mode().unwrap_or(0) & 0o7777;
        let (mut uid, mut gid) = (header.uid().unwrap_or(0), header.gid().unwrap_or(0));
        // Ids too large for the header travel in PAX records.
        if let Some(pax) = entry.pax_extensions()? {
            for ext in pax.flatten() {
                let value = ext.value().ok().and_then(|v| v.parse().ok());
                match (ext.key(), value) {
                    (Ok("uid"), Some(v)) => uid = v,
                    (Ok("gid"), Some(v)) => gid = v,
                    _ => {}
                }
            }
        }
        let info = FileInfo {
            path: format!("/{rel}"),
            kind,
            size: if kind == FileKind::File {
                entry.size()
            } else {
                0
            },
            mode,
            uid,
            gid,
            target,
            path_base64,
            layer,
            package: None,
        };
        if kind == FileKind::File
            && packages::is_record(&info.path)
            && info.size <= packages::RECORD_LIMIT
        {
            let mut bytes = Vec::new();
            (&mut entry)
                .take(packages::RECORD_LIMIT)
                .read_to_end(&mut bytes)?;
            records.insert(info.path.clone(), (layer, bytes));
        }
        let change = Change::from_entry(info);
        if matches!(&change, Change::Put(f) if f.kind != FileKind::Dir) {
            count += 1;
        }
        tree.apply(layer, change);
    }
    Ok(count)
}

fn why_from(p: &Provenance, asked: &str, resolved: &str, recorded: &str) -> Why {
    Why {
        path: asked.to_owned(),
        resolved: resolved.to_owned(),
        recorded: recorded.to_owned(),
        chain: p
            .chain(recorded)
            .into_iter()
            .map(|(path, FileOrigin { layer, why, .. })| WhyStep {
                path: path.to_owned(),
                layer: layer.clone(),
                why: why.clone(),
            })
            .collect(),
    }
}

/// An absolute image path, lexically cleaned: `/a/./b/` → `/a/b`.
fn clean_image_path(path: &str) -> Result<String, InspectError> {
    if !path.starts_with('/') {
        return Err(InspectError::BadPath {
            path: path.to_owned(),
        });
    }
    // As the kernel resolves it: `..` at `/` stays there. (An archive
    // member's name, by contrast, may not climb out at all.)
    Ok(crate::image_path::normalise(Path::new(path))
        .to_string_lossy()
        .into_owned())
}

#[cfg(test)]
mod tests;
