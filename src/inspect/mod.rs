//! `mkimage inspect`: reads an image back from a layout directory, an
//! oci-archive or a docker-archive, and reports its layers, its config, its
//! file tree (layers streamed: gzip or zstd decoded, tar listed, whiteouts
//! applied) and, for images mkimage built, why each file is there.
//!
//! Everything is read in place: JSON documents whole (with a size cap),
//! layers as streams, every blob checked against its digest on the way, so
//! `inspect` is also a verification of the image. Nothing is written.

mod files;
mod packages;
mod source;

use std::collections::BTreeMap;
use std::io::{self, BufRead, Read};
use std::path::{Path, PathBuf};

use oci_spec::image::ANNOTATION_REF_NAME;
use serde::Serialize;
use serde_json::Value;

pub use self::files::{Change, FileInfo, FileKind, FileTree, printable};
use self::packages::Records;
pub use self::packages::{PackageUsage, Packages};
use self::source::{GZIP_MAGIC, Store, ZSTD_MAGIC};
use crate::digest::{Digest, HashingReader};
use crate::layer::{Algorithm, decompress};
use crate::oci::OciError;
use crate::oci::archive::{DockerManifestItem, MANIFEST_JSON};
use crate::oci::provenance::{self, FileOrigin, Provenance};
use crate::oci::referrers;

/// Largest JSON document read (index, manifest, config, provenance): far
/// above any real one, low enough that a hostile archive cannot exhaust
/// memory.
const JSON_LIMIT: u64 = crate::bounded::DOCUMENT_LIMIT;
/// The SBOM's artifact type (IANA's SPDX JSON media type).
const SBOM_TYPE: &str = "application/spdx+json";
/// The layer annotation `build` writes: `base`, `libs`, `app`, …
const LAYER_ANNOTATION: &str = "org.mkimage.layer";
/// Media types of an image index (OCI) or manifest list (Docker): a
/// multi-platform image, not one we can list.
const INDEX_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("{}: no such file or directory", path.display())]
    NotFound { path: PathBuf },
    #[error("cannot {action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("cannot read {location}")]
    Read { location: String, source: io::Error },
    #[error("{} is compressed; uncompress it first (mkimage reads .tar archives in place)", path.display())]
    CompressedArchive { path: PathBuf },
    /// The tar reader's own words can quote the file's raw bytes: they
    /// are shown escaped, and not as a separate cause.
    #[error("{} is not a tar archive ({})", path.display(), files::printable(&.cause.to_string()))]
    NotATar { path: PathBuf, cause: io::Error },
    #[error(
        "{} is neither an OCI layout directory (no oci-layout file) nor an archive",
        path.display()
    )]
    NotAnImage { path: PathBuf },
    #[error(
        "{} is neither an oci-archive (no oci-layout) nor a docker-archive (no manifest.json)",
        path.display()
    )]
    UnknownArchive { path: PathBuf },
    #[error("{location} is missing")]
    Missing { location: String },
    #[error("{location} is {size} bytes, more than the {limit} a JSON document may have")]
    TooLarge {
        location: String,
        size: u64,
        limit: u64,
    },
    #[error("{location} is not valid JSON of the expected shape: {reason}")]
    Json { location: String, reason: String },
    #[error("{location} has digest {found}, expected {expected}")]
    DigestMismatch {
        location: String,
        expected: Digest,
        found: Digest,
    },
    #[error(transparent)]
    Oci(#[from] OciError),
    #[error("{image} holds no image")]
    NoImage { image: String },
    #[error("{image} holds {} images; name one as {image}:TAG with TAG one of: {}", tags.len(), tags.join(", "))]
    ChooseTag { image: String, tags: Vec<String> },
    #[error("{image} has no image tagged {tag:?}; its tags: {}", if tags.is_empty() { "none".to_owned() } else { tags.join(", ") })]
    TagNotFound {
        image: String,
        tag: String,
        tags: Vec<String>,
    },
    #[error("{image} is a multi-platform image ({media_type}){}; pick one with --platform", platform_list(.platforms))]
    MultiPlatform {
        image: String,
        media_type: String,
        /// (platform, manifest digest) of each entry of the index, when
        /// it could be read.
        platforms: Vec<(String, String)>,
    },
    #[error("{image} has no image for {platform}: it has {}", platform_list(.platforms).trim_start_matches(" for "))]
    PlatformNotFound {
        image: String,
        platform: String,
        platforms: Vec<(String, String)>,
    },
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

/// The three things inspect reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    OciLayout,
    OciArchive,
    DockerArchive,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::OciLayout => "oci layout",
            Format::OciArchive => "oci-archive",
            Format::DockerArchive => "docker-archive",
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

/// Where an attached blob (the provenance, the SBOM) is, if anywhere.
#[derive(Clone, Debug)]
enum Attached {
    None,
    Missing(String),
    At {
        name: String,
        digest: Option<Digest>,
    },
}

impl Attached {
    /// For the summary: the blob's digest, else its name in the archive.
    fn describe(&self) -> Option<String> {
        match self {
            Attached::None => None,
            Attached::At {
                digest: Some(d), ..
            } => Some(d.to_string()),
            Attached::At { name, .. } | Attached::Missing(name) => Some(name.clone()),
        }
    }
}

/// An opened image: its JSON read and checked, its layers not yet.
#[derive(Debug)]
pub struct Image {
    store: Store,
    summary: Summary,
    /// Where each layer is in the store, in `summary.layers`' order.
    layer_names: Vec<String>,
    provenance: Attached,
    sbom: Attached,
}

impl Image {
    /// Opens `reference`: `DIR`, `DIR:TAG`, `ARCHIVE` or `ARCHIVE:TAG`.
    /// The longest existing path before a `:` wins, so paths with colons
    /// work; TAG is the layout's `org.opencontainers.image.ref.name`, or a
    /// docker-archive's RepoTag.
    pub fn open(reference: &str) -> Result<Image, InspectError> {
        Image::open_platform(reference, None)
    }

    /// [`Image::open`], taking `platform`'s image when the tag names a
    /// multi-platform image index (`None`: the error lists them).
    pub fn open_platform(reference: &str, platform: Option<&str>) -> Result<Image, InspectError> {
        let (path, tag) = split_reference(reference)?;
        let meta = std::fs::metadata(&path).map_err(|source| InspectError::Io {
            action: "inspect",
            path: path.clone(),
            source,
        })?;
        if meta.is_dir() {
            if !path.join("oci-layout").is_file() {
                return Err(InspectError::NotAnImage { path });
            }
            return open_oci(
                Store::Dir(path),
                Format::OciLayout,
                reference,
                tag.as_deref(),
                platform,
            );
        }
        let store = Store::tar(&path)?;
        if store.has("oci-layout") && store.has("index.json") {
            open_oci(
                store,
                Format::OciArchive,
                reference,
                tag.as_deref(),
                platform,
            )
        } else if store.has(MANIFEST_JSON) {
            open_docker(store, reference, tag.as_deref())
        } else {
            Err(InspectError::UnknownArchive { path })
        }
    }

    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Reads every layer in order (streamed, each blob verified) and
    /// returns the merged file tree; fills in each layer's file count and
    /// uncompressed size in the summary.
    pub fn files(&mut self) -> Result<FileTree, InspectError> {
        let mut tree = FileTree::default();
        let mut records = Records::new();
        for i in 0..self.layer_names.len() {
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

    /// Checks every layer blob against its digest, reading it once
    /// without decoding it (for a listing without files).
    pub fn verify_layers(&self) -> Result<(), InspectError> {
        for (name, summary) in self.layer_names.iter().zip(&self.summary.layers) {
            let Some(expected) = summary.digest else {
                continue;
            };
            let location = self.store.describe(name);
            let mut blob = HashingReader::new(self.store.open(name)?);
            io::copy(&mut blob, &mut io::sink()).map_err(|source| InspectError::Read {
                location: location.clone(),
                source,
            })?;
            check_digest(&location, expected, blob.finish().0)?;
        }
        Ok(())
    }

    /// The provenance blob, or why there is none.
    pub fn provenance(&self) -> Result<Provenance, InspectError> {
        let image = self.summary.image.clone();
        let (name, digest) = match &self.provenance {
            Attached::None => return Err(InspectError::NotBuiltByMkimage { image }),
            Attached::Missing(digest) => {
                return Err(InspectError::ProvenanceMissing {
                    image,
                    digest: digest.clone(),
                });
            }
            Attached::At { name, digest } => (name, digest),
        };
        let bytes = self.store.read_json(name, digest.as_ref())?;
        Ok(Provenance::from_json(
            &bytes,
            Path::new(&self.store.describe(name)),
        )?)
    }

    /// The SPDX SBOM attached to the image, as stored.
    pub fn sbom(&self) -> Result<Vec<u8>, InspectError> {
        let image = self.summary.image.clone();
        match &self.sbom {
            Attached::None => Err(InspectError::NoSbom { image }),
            Attached::Missing(what) => Err(InspectError::SbomMissing {
                image,
                what: what.clone(),
            }),
            Attached::At { name, digest } => self.store.read_json(name, digest.as_ref()),
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
        let name = &self.layer_names[i];
        let summary = &self.summary.layers[i];
        let location = self.store.describe(name);
        let index = i + 1;
        let layer_err = |source| InspectError::Layer {
            index,
            location: location.clone(),
            source,
        };
        let mut blob = HashingReader::new(self.store.open(name)?);
        let listed = (|| {
            let mut buffered = io::BufReader::new(&mut blob);
            // From the media type or, in a docker-archive, which has none,
            // sniffed.
            let algorithm = match summary.media_type.as_deref() {
                Some(t) if t.ends_with("+gzip") || t.ends_with(".tar.gzip") => {
                    Some(Algorithm::Gzip)
                }
                Some(t) if t.ends_with("+zstd") => Some(Algorithm::Zstd),
                Some(t) if t.ends_with(".tar") => None,
                Some(t) => {
                    return Err(InspectError::UnsupportedLayer {
                        index,
                        location: location.clone(),
                        media_type: t.to_owned(),
                    });
                }
                // A docker-archive says nothing: look.
                None => {
                    let head = buffered.fill_buf().map_err(layer_err)?;
                    if head.starts_with(ZSTD_MAGIC) {
                        Some(Algorithm::Zstd)
                    } else if head.starts_with(GZIP_MAGIC) {
                        Some(Algorithm::Gzip)
                    } else {
                        None
                    }
                }
            };
            let stream = decompress(algorithm, buffered).map_err(layer_err)?;
            let mut tar_stream = HashingReader::new(stream);
            let files = list_tar(&mut tar_stream, index, tree, records).map_err(layer_err)?;
            // The end-of-archive blocks and any padding count for diff_id.
            io::copy(&mut tar_stream, &mut io::sink()).map_err(layer_err)?;
            let (diff_id, size) = tar_stream.finish();
            Ok((files, diff_id, size))
        })();
        // Anything after the compressed stream counts for the blob digest.
        // A blob that does not decode is hashed to the end too: when its
        // digest is wrong, that is the error to report (the blob is
        // corrupt), not the decoder's symptom of it.
        let drained = io::copy(&mut blob, &mut io::sink()).map_err(layer_err);
        let (digest, _) = blob.finish();
        if let Some(expected) = summary.digest {
            check_digest(&location, expected, digest)?;
        }
        drained?;
        let (files, diff_id, size) = listed?;
        if let Some(expected) = summary.diff_id {
            check_digest(&format!("{location} (uncompressed)"), expected, diff_id)?;
        }
        Ok((files, size))
    }
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
        let Some(rel) = source::normalize(&raw) else {
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
                .and_then(|t| source::normalize(&t.to_string_lossy()))
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

fn check_digest(location: &str, expected: Digest, found: Digest) -> Result<(), InspectError> {
    if expected == found {
        Ok(())
    } else {
        Err(InspectError::DigestMismatch {
            location: location.to_owned(),
            expected,
            found,
        })
    }
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
    Ok(crate::resolve::root::normalise(Path::new(path))
        .to_string_lossy()
        .into_owned())
}

/// `PATH` or `PATH:TAG`, where PATH is the longest prefix before a `:`
/// that exists.
fn split_reference(reference: &str) -> Result<(PathBuf, Option<String>), InspectError> {
    if Path::new(reference).exists() {
        return Ok((PathBuf::from(reference), None));
    }
    for (i, _) in reference
        .match_indices(':')
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
    {
        let path = Path::new(&reference[..i]);
        if !reference[..i].is_empty() && path.exists() {
            let tag = &reference[i + 1..];
            return Ok((
                path.to_path_buf(),
                (!tag.is_empty()).then(|| tag.to_owned()),
            ));
        }
    }
    Err(InspectError::NotFound {
        path: PathBuf::from(reference),
    })
}

/// Parses a JSON document read from `location`.
fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8], location: &str) -> Result<T, InspectError> {
    serde_json::from_slice(bytes).map_err(|e| InspectError::Json {
        location: location.to_owned(),
        reason: e.to_string(),
    })
}

fn blob_name(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

/// A digest from a descriptor, or a clear error naming where it was.
fn descriptor_digest(d: &Value, location: &str) -> Result<Digest, InspectError> {
    let s = d["digest"].as_str().ok_or_else(|| InspectError::Json {
        location: location.to_owned(),
        reason: "a descriptor has no digest".to_owned(),
    })?;
    s.parse().map_err(|_| {
        OciError::UnsupportedDigest {
            path: PathBuf::from(location),
            digest: s.to_owned(),
        }
        .into()
    })
}

fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

fn string_list(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn opt_string(v: &Value) -> Option<String> {
    v.as_str().filter(|s| !s.is_empty()).map(str::to_owned)
}

/// The config's summary and diff_ids.
fn config_summary(
    bytes: &[u8],
    digest: Digest,
    location: &str,
) -> Result<(ConfigSummary, Vec<Option<Digest>>), InspectError> {
    let v: Value = parse(bytes, location)?;
    let c = &v["config"];
    let summary = ConfigSummary {
        digest,
        architecture: v["architecture"].as_str().unwrap_or_default().to_owned(),
        os: v["os"].as_str().unwrap_or_default().to_owned(),
        variant: opt_string(&v["variant"]),
        created: opt_string(&v["created"]),
        entrypoint: string_list(&c["Entrypoint"]),
        cmd: string_list(&c["Cmd"]),
        env: string_list(&c["Env"]),
        user: opt_string(&c["User"]),
        workdir: opt_string(&c["WorkingDir"]),
        exposed_ports: c["ExposedPorts"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default(),
        labels: string_map(&c["Labels"]),
    };
    let diff_ids = v["rootfs"]["diff_ids"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|d| d.as_str().and_then(|s| s.parse().ok()))
                .collect()
        })
        .unwrap_or_default();
    Ok((summary, diff_ids))
}

/// ", for linux/amd64, linux/arm64/v8" for an error message.
fn platform_list(platforms: &[(String, String)]) -> String {
    if platforms.is_empty() {
        return String::new();
    }
    let names: Vec<&str> = platforms.iter().map(|(p, _)| p.as_str()).collect();
    format!(" for {}", names.join(", "))
}

/// The `os/architecture[/variant]` of an index entry.
fn entry_platform(d: &Value) -> String {
    let p = &d["platform"];
    let mut s = format!(
        "{}/{}",
        p["os"].as_str().unwrap_or("?"),
        p["architecture"].as_str().unwrap_or("?")
    );
    if let Some(v) = p["variant"].as_str() {
        s.push('/');
        s.push_str(v);
    }
    s
}

/// The entry of the image index `index_digest` names for `platform`
/// (compared as `--platform` parses them, so `linux/arm64` is
/// `linux/arm64/v8`); without a platform, the error that lists them.
fn pick_platform(
    store: &Store,
    image: &str,
    media_type: String,
    index_digest: &Digest,
    platform: Option<&str>,
) -> Result<Value, InspectError> {
    let name = blob_name(index_digest);
    let loc = store.describe(&name);
    let index: Value = parse(&store.read_json(&name, Some(index_digest))?, &loc)?;
    let entries: Vec<Value> = index["manifests"].as_array().cloned().unwrap_or_default();
    let platforms: Vec<(String, String)> = entries
        .iter()
        .map(|d| {
            (
                entry_platform(d),
                d["digest"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let Some(wanted) = platform else {
        return Err(InspectError::MultiPlatform {
            image: image.to_owned(),
            media_type,
            platforms,
        });
    };
    let same = |a: &str, b: &str| match (
        crate::elf::Arch::from_platform(a),
        crate::elf::Arch::from_platform(b),
    ) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    };
    entries
        .into_iter()
        .find(|d| same(&entry_platform(d), wanted))
        .ok_or_else(|| InspectError::PlatformNotFound {
            image: image.to_owned(),
            platform: wanted.to_owned(),
            platforms,
        })
}

/// A layout directory or an oci-archive.
fn open_oci(
    store: Store,
    format: Format,
    image: &str,
    tag: Option<&str>,
    platform: Option<&str>,
) -> Result<Image, InspectError> {
    let index_loc = store.describe("index.json");
    let index: Value = parse(&store.read_json("index.json", None)?, &index_loc)?;
    let entries: Vec<&Value> = index["manifests"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let ref_name = |d: &Value| {
        d["annotations"][ANNOTATION_REF_NAME]
            .as_str()
            .map(str::to_owned)
    };
    let all_tags: Vec<String> = entries.iter().filter_map(|d| ref_name(d)).collect();
    let chosen: &Value = match tag {
        Some(t) => entries
            .iter()
            .find(|d| ref_name(d).as_deref() == Some(t))
            .copied()
            .ok_or_else(|| InspectError::TagNotFound {
                image: image.to_owned(),
                tag: t.to_owned(),
                tags: all_tags.clone(),
            })?,
        None => {
            let mut digests: Vec<&str> = entries
                .iter()
                .filter_map(|d| d["digest"].as_str())
                .collect();
            digests.sort_unstable();
            digests.dedup();
            match (digests.len(), entries.first()) {
                (1, Some(first)) => first,
                (0, _) | (_, None) => {
                    return Err(InspectError::NoImage {
                        image: image.to_owned(),
                    });
                }
                _ => {
                    return Err(InspectError::ChooseTag {
                        image: image.to_owned(),
                        tags: all_tags,
                    });
                }
            }
        }
    };
    let mut media_type = chosen["mediaType"].as_str().unwrap_or_default().to_owned();
    let picked;
    let mut chosen = chosen;
    if INDEX_TYPES.contains(&media_type.as_str()) {
        let index_digest = descriptor_digest(chosen, &index_loc)?;
        picked = pick_platform(&store, image, media_type, &index_digest, platform)?;
        chosen = &picked;
        media_type = chosen["mediaType"].as_str().unwrap_or_default().to_owned();
    }
    let manifest_digest = descriptor_digest(chosen, &index_loc)?;
    let tags: Vec<String> = entries
        .iter()
        .filter(|d| d["digest"].as_str() == Some(&manifest_digest.to_string()))
        .filter_map(|d| ref_name(d))
        .collect();

    let manifest_name = blob_name(&manifest_digest);
    let manifest_loc = store.describe(&manifest_name);
    let bytes = store.read_json(&manifest_name, Some(&manifest_digest))?;
    let manifest: Value = parse(&bytes, &manifest_loc)?;
    let media_type = manifest["mediaType"]
        .as_str()
        .map_or(media_type, str::to_owned);
    if INDEX_TYPES.contains(&media_type.as_str()) || manifest["manifests"].is_array() {
        return Err(InspectError::MultiPlatform {
            image: image.to_owned(),
            media_type,
            platforms: Vec::new(),
        });
    }
    let annotations = string_map(&manifest["annotations"]);

    let config_digest = descriptor_digest(&manifest["config"], &manifest_loc)?;
    let config_name = blob_name(&config_digest);
    let config_loc = store.describe(&config_name);
    let config_bytes = store.read_json(&config_name, Some(&config_digest))?;
    let (config, diff_ids) = config_summary(&config_bytes, config_digest, &config_loc)?;

    let mut layer_names = Vec::new();
    let mut summaries = Vec::new();
    for (i, d) in manifest["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let digest = descriptor_digest(d, &manifest_loc)?;
        summaries.push(LayerSummary {
            index: i + 1,
            what: d["annotations"][LAYER_ANNOTATION]
                .as_str()
                .map_or_else(|| format!("layer {}", i + 1), str::to_owned),
            digest: Some(digest),
            diff_id: diff_ids.get(i).copied().flatten(),
            media_type: d["mediaType"].as_str().map(str::to_owned),
            size: d["size"].as_u64().unwrap_or_default(),
            uncompressed_size: None,
            files: None,
        });
        layer_names.push(blob_name(&digest));
    }

    let mut attached = referrers(&store, chosen, &entries, &manifest_digest, &index_loc)?;
    let sbom = attached.remove(SBOM_TYPE).unwrap_or(Attached::None);
    // Images built before provenance became a referrer name it by a
    // manifest annotation.
    let provenance = match attached.remove(provenance::MEDIA_TYPE) {
        Some(found) => found,
        None => match annotations.get(provenance::ANNOTATION) {
            None => Attached::None,
            Some(d) => match d.parse::<Digest>() {
                Ok(digest) if store.has(&blob_name(&digest)) => Attached::At {
                    name: blob_name(&digest),
                    digest: Some(digest),
                },
                _ => Attached::Missing(d.clone()),
            },
        },
    };
    let summary = Summary {
        image: image.to_owned(),
        format,
        tags,
        manifest: Some(ManifestSummary {
            digest: manifest_digest,
            media_type,
            annotations,
        }),
        config,
        layers: summaries,
        provenance: provenance.describe(),
        sbom: sbom.describe(),
        packages: None,
    };
    Ok(Image {
        store,
        summary,
        layer_names,
        provenance,
        sbom,
    })
}

/// The artifacts attached to the image `chosen` names, by artifact type:
/// those its entry's `org.mkimage.referrers` annotation lists (mkimage's
/// layouts, see oci::referrers), else other `index.json` entries (or the
/// children of an index entry: the `sha256-<hex>` tag a registry without
/// the referrers API lists them under) whose manifest's `subject` is the
/// image, as `skopeo copy` and ORAS leave them in a layout. A listed
/// index or manifest that is not in the store makes the artifacts
/// missing, not absent.
fn referrers(
    store: &Store,
    chosen: &Value,
    entries: &[&Value],
    image: &Digest,
    index_loc: &str,
) -> Result<BTreeMap<String, Attached>, InspectError> {
    let mut out = BTreeMap::new();
    let missing = |out: &mut BTreeMap<String, Attached>, what: &str| {
        for t in [SBOM_TYPE, provenance::MEDIA_TYPE] {
            out.entry(t.to_owned())
                .or_insert_with(|| Attached::Missing(what.to_owned()));
        }
    };
    let (candidates, loc, want_subject): (Vec<Value>, String, bool) =
        match chosen["annotations"][referrers::ANNOTATION].as_str() {
            Some(named) => {
                let Ok(digest) = named.parse::<Digest>() else {
                    return Err(InspectError::Json {
                        location: index_loc.to_owned(),
                        reason: format!("{} is not a digest: {named:?}", referrers::ANNOTATION),
                    });
                };
                let name = blob_name(&digest);
                if !store.has(&name) {
                    missing(&mut out, named);
                    return Ok(out);
                }
                let loc = store.describe(&name);
                let index: Value = parse(&store.read_json(&name, Some(&digest))?, &loc)?;
                let listed = index["manifests"].as_array().cloned().unwrap_or_default();
                (listed, loc, false)
            }
            None => {
                let mut listed = Vec::new();
                for e in entries {
                    if e["digest"] == chosen["digest"] {
                        continue;
                    }
                    if !INDEX_TYPES.contains(&e["mediaType"].as_str().unwrap_or_default()) {
                        listed.push((*e).clone());
                        continue;
                    }
                    let d = descriptor_digest(e, index_loc)?;
                    if !store.has(&blob_name(&d)) {
                        continue;
                    }
                    let loc = store.describe(&blob_name(&d));
                    let index: Value = parse(&store.read_json(&blob_name(&d), Some(&d))?, &loc)?;
                    listed.extend(index["manifests"].as_array().cloned().unwrap_or_default());
                }
                (listed, index_loc.to_owned(), true)
            }
        };
    for d in &candidates {
        let m_digest = descriptor_digest(d, &loc)?;
        let m_name = blob_name(&m_digest);
        if !store.has(&m_name) {
            if !want_subject {
                missing(&mut out, &m_digest.to_string());
            }
            continue;
        }
        let m_loc = store.describe(&m_name);
        let manifest: Value = parse(&store.read_json(&m_name, Some(&m_digest))?, &m_loc)?;
        if want_subject && manifest["subject"]["digest"].as_str() != Some(&image.to_string()) {
            continue;
        }
        let Some(kind) = manifest["artifactType"]
            .as_str()
            .or(d["artifactType"].as_str())
        else {
            continue;
        };
        let Some(layer) = manifest["layers"].get(0) else {
            continue;
        };
        let blob = descriptor_digest(layer, &m_loc)?;
        let found = if store.has(&blob_name(&blob)) {
            Attached::At {
                name: blob_name(&blob),
                digest: Some(blob),
            }
        } else {
            Attached::Missing(blob.to_string())
        };
        out.insert(kind.to_owned(), found);
    }
    Ok(out)
}

/// A docker-archive: `manifest.json` instead of index and manifest.
fn open_docker(store: Store, image: &str, tag: Option<&str>) -> Result<Image, InspectError> {
    let loc = store.describe(MANIFEST_JSON);
    let items: Vec<DockerManifestItem> = parse(&store.read_json(MANIFEST_JSON, None)?, &loc)?;
    let tags_of = |item: &DockerManifestItem| item.repo_tags.clone().unwrap_or_default();
    let all_tags: Vec<String> = items.iter().flat_map(tags_of).collect();
    let item = match tag {
        Some(t) => items
            .iter()
            .find(|i| tags_of(i).iter().any(|r| r == t))
            .ok_or_else(|| InspectError::TagNotFound {
                image: image.to_owned(),
                tag: t.to_owned(),
                tags: all_tags.clone(),
            })?,
        None => match items.as_slice() {
            [one] => one,
            [] => {
                return Err(InspectError::NoImage {
                    image: image.to_owned(),
                });
            }
            _ => {
                return Err(InspectError::ChooseTag {
                    image: image.to_owned(),
                    tags: all_tags,
                });
            }
        },
    };
    // Names are `<hex>.json` and `<hex>.provenance.json` when we (and
    // Docker) write them: check content against them when they are.
    let named_digest = |name: &str| {
        let hex = name.split('.').next().unwrap_or_default();
        format!("sha256:{hex}").parse::<Digest>().ok()
    };
    let config_loc = store.describe(&item.config);
    let config_bytes = store.read_json(&item.config, named_digest(&item.config).as_ref())?;
    let config_digest = Digest::of(&config_bytes);
    let (config, diff_ids) = config_summary(&config_bytes, config_digest, &config_loc)?;
    let mut layer_names = Vec::new();
    let mut summaries = Vec::new();
    for (i, name) in item.layers.iter().enumerate() {
        summaries.push(LayerSummary {
            index: i + 1,
            what: format!("layer {}", i + 1),
            digest: None,
            diff_id: diff_ids.get(i).copied().flatten(),
            media_type: None,
            size: store.size(name)?,
            uncompressed_size: None,
            files: None,
        });
        layer_names.push(name.clone());
    }
    let provenance = match &item.provenance {
        None => Attached::None,
        Some(name) if store.has(name) => Attached::At {
            name: name.clone(),
            digest: named_digest(name),
        },
        Some(name) => Attached::Missing(name.clone()),
    };
    let sbom = match &item.sbom {
        None => Attached::None,
        Some(name) if store.has(name) => Attached::At {
            name: name.clone(),
            digest: named_digest(name),
        },
        Some(name) => Attached::Missing(name.clone()),
    };
    let summary = Summary {
        image: image.to_owned(),
        format: Format::DockerArchive,
        tags: tags_of(item),
        manifest: None,
        config,
        layers: summaries,
        provenance: provenance.describe(),
        sbom: sbom.describe(),
        packages: None,
    };
    Ok(Image {
        store,
        summary,
        layer_names,
        provenance,
        sbom,
    })
}

#[cfg(test)]
mod tests;
