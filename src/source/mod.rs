//! Where images are read from: THE image reader. An OCI layout, an
//! oci-archive, a docker-archive or a registry, each opened as an
//! [`ImageSource`] that hands out typed documents (oci-spec's index,
//! manifest and config, Docker schema 2 included) and blob streams checked
//! against their digest and size as they are read.
//!
//! Everything that reads an image goes through here: `inspect`, `push`
//! (which walks a layout's manifests to send them), the docker-archive
//! writer, and a build that starts from another image. One rule picks an
//! image by tag ([`select::by_tag`]) and one picks a platform out of an
//! index ([`select::by_platform`]).
//!
//! ```text
//! "DIR[:TAG]" ─► SourceRef::parse ─► open ─► Box<dyn ImageSource>
//!                                              ├─ top()      the tagged descriptor
//!                                              ├─ select()   one manifest + config
//!                                              └─ blob()     a verified stream
//! ```
//!
//! Names used here: the *top* document is what the reference names (a
//! manifest, or an index of several); the *selected image* is one manifest
//! with its config, picked from the top by platform.

mod docker_archive;
mod document;
mod layout;
pub mod name;
pub mod platform;
mod referrer;
mod registry;
pub mod select;
mod store;
mod verify;

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::PathBuf;

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType};

pub use self::document::{Document, layer_compression};
pub use self::layout::OciSource;
pub use self::name::SourceRef;
pub use self::referrer::Referrer;
pub use self::verify::{BlobCheckError, check_error};
use crate::digest::Digest;
use crate::oci::OciError;
use crate::oci::Platform;
use crate::reference::ReferenceError;
use crate::registry::RegistryError;

/// How to reach a registry: the options push takes (credentials and auth
/// files, plain-HTTP registries, CA certificates, retries, timeouts).
pub use crate::registry::RegistryOptions as SourceOptions;

/// The artifact type of an attached SBOM, as sbom::spdx writes it.
pub use crate::oci::names::SPDX_MEDIA_TYPE as SBOM_TYPE;

/// Largest JSON document read (index, manifest, config, attached
/// artifacts): far above any real one, low enough that a hostile source
/// cannot exhaust memory.
pub const DOCUMENT_LIMIT: u64 = crate::bounded::DOCUMENT_LIMIT;

/// What kind of source an image came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    OciLayout,
    OciArchive,
    DockerArchive,
    Registry,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::OciLayout => "oci layout",
            Kind::OciArchive => "oci-archive",
            Kind::DockerArchive => "docker-archive",
            Kind::Registry => "registry",
        }
    }
}

/// Everything that can go wrong while reading an image. Each names the
/// source (as the user wrote it) or the file or URL at fault.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{input}: no such file or directory")]
    NotFound { input: String },
    #[error("invalid image source {input:?}: {reason}")]
    BadSource { input: String, reason: String },
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Oci(#[from] OciError),
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
    #[error("{} is not a tar archive ({})", path.display(), .cause.to_string().escape_debug())]
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
    #[error("{location} is {found} bytes, but its descriptor says {expected}")]
    SizeMismatch {
        location: String,
        expected: u64,
        found: u64,
    },
    #[error("{location}: unsupported digest {digest:?} (only sha256 is supported)")]
    UnsupportedDigest { location: String, digest: String },
    #[error("{image} holds no image")]
    NoImage { image: String },
    #[error("{image} holds {} images; name one as {image}:TAG with TAG one of: {}", tags.len(), tags.join(", "))]
    ChooseTag { image: String, tags: Vec<String> },
    #[error("{image} has no image tagged {tag:?}; its tags: {}", list(tags))]
    TagNotFound {
        image: String,
        tag: String,
        tags: Vec<String>,
    },
    #[error(
        "{image} has no image for platform {want}; it has: {}",
        list(available)
    )]
    PlatformNotFound {
        image: String,
        want: String,
        available: Vec<String>,
    },
    #[error(
        "{image} is a multi-platform image without one for this machine ({host}); \
         name one with --platform, from: {}",
        list(available)
    )]
    ChoosePlatform {
        image: String,
        host: String,
        available: Vec<String>,
    },
    #[error("{location} has media type {media_type}, which is not an image manifest or index")]
    NotAManifest {
        location: String,
        media_type: String,
    },
    #[error("{location}: the config lists {diff_ids} diff_ids for {layers} layers")]
    DiffIdCount {
        location: String,
        diff_ids: usize,
        layers: usize,
    },
    #[error("{reference} pins digest {pinned}, but the registry's manifest is {found}")]
    PinnedDigest {
        reference: String,
        pinned: Digest,
        found: Digest,
    },
}

impl SourceError {
    /// Whether the image asked for is not there (exit 1, as for a missing
    /// file in a build), rather than broken or unreachable.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            SourceError::NotFound { .. } | SourceError::TagNotFound { .. }
        ) || matches!(
            self,
            SourceError::Registry(RegistryError::Status { status: 404, action, .. })
                if action.contains("/manifests/")
        )
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// One image, chosen by tag and platform, with its documents read and
/// checked: what a build starting from it, or `inspect`, needs before it
/// streams layers.
#[derive(Clone, Debug)]
pub struct SelectedImage {
    pub manifest_digest: Digest,
    /// The manifest, Docker schema 2 read into oci-spec's type (media
    /// types are kept as the source has them: see [`layer_compression`]).
    pub manifest: ImageManifest,
    /// The manifest's bytes as the source holds them, for re-pushing it
    /// unchanged (its digest is `manifest_digest`).
    pub manifest_bytes: Vec<u8>,
    /// Its media type: the descriptor's, else the document's own.
    pub manifest_media_type: MediaType,
    /// A docker-archive has no manifest: `manifest` and `manifest_bytes`
    /// were then made by the reader (canonical JSON of an OCI manifest),
    /// and are not the source's.
    pub synthetic: bool,
    pub config_digest: Digest,
    pub config: ImageConfiguration,
    /// The config's bytes as stored (its digest is `config_digest`).
    pub config_bytes: Vec<u8>,
    /// The manifest's layers, bottom first.
    pub layers: Vec<Descriptor>,
    /// The config's `rootfs.diff_ids`, one per layer (checked).
    pub diff_ids: Vec<Digest>,
    /// From the config (`os`/`architecture`/`variant`).
    pub platform: Platform,
    /// The descriptor the image was reached by: the tagged `index.json`
    /// entry, or the index's entry for this platform (annotations kept).
    pub descriptor: Descriptor,
}

/// An artifact attached to an image (OCI 1.1 referrers: its SBOM, its
/// provenance), by artifact type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attachment {
    /// Its blob, to read with [`ImageSource::blob`].
    Present(Box<Descriptor>),
    /// Named, but not in the source (a digest or a name, for messages).
    Missing(String),
}

/// An opened image source. Every method reads in place: nothing is
/// extracted or written, and no layer is held in memory.
pub trait ImageSource: Send + Sync {
    /// The source as the user named it, for messages.
    fn name(&self) -> &str;

    fn kind(&self) -> Kind;

    /// The descriptor the reference names: a manifest, or an index of
    /// several (per platform). Its tag is resolved by [`select::by_tag`]
    /// for layouts and archives, by the registry for `docker://`.
    fn top(&self) -> Result<Descriptor, SourceError>;

    /// Every tag the source lists (a layout's `ref.name`s, a
    /// docker-archive's RepoTags, a registry repository's tags), sorted.
    fn tags(&self) -> Result<Vec<String>, SourceError>;

    /// The tags that name the descriptor `top` returned.
    fn tags_of_top(&self) -> Result<Vec<String>, SourceError>;

    /// A layout's or oci-archive's `index.json`; `None` for the others.
    fn index(&self) -> Result<Option<ImageIndex>, SourceError>;

    /// A JSON document (manifest, index, config, artifact) whole, checked
    /// against the descriptor's digest and size; at most
    /// [`DOCUMENT_LIMIT`] bytes.
    fn document(&self, d: &Descriptor) -> Result<Vec<u8>, SourceError>;

    /// A stream of the blob `d` describes, checked as it is read: past
    /// `d.size()` bytes, or at EOF with another size or digest, a read
    /// fails with a [`BlobCheckError`] (see [`check_error`]). A reader
    /// must read to EOF to have the check.
    fn blob(&self, d: &Descriptor) -> Result<Box<dyn Read + Send>, SourceError>;

    /// The artifacts attached to `image`, by artifact type.
    fn attachments(
        &self,
        image: &SelectedImage,
    ) -> Result<BTreeMap<String, Attachment>, SourceError>;

    /// Where the user will read about this source's blobs: `DIR/blobs/…`,
    /// `ARCHIVE:member`, or a URL.
    fn locate(&self, d: &Descriptor) -> String;

    /// One image of the top document: the top manifest itself, or the
    /// index's entry for `want` (see [`select::by_platform`] for the rule
    /// when `want` is `None`), with its config.
    fn select(&self, want: Option<&Platform>) -> Result<SelectedImage, SourceError> {
        select::image(self, want)
    }
}

/// Opens `source` for reading: checks that it exists and reads what
/// identifies it (a layout's `oci-layout` and `index.json`, an archive's
/// index of members); a registry is contacted only by the first request.
pub fn open(source: &SourceRef, opts: &SourceOptions) -> Result<Box<dyn ImageSource>, SourceError> {
    match source {
        SourceRef::Layout { dir, tag } => Ok(Box::new(layout::OciSource::layout(
            &source.to_string(),
            dir,
            tag.clone(),
        )?)),
        SourceRef::OciArchive { file, tag } => Ok(Box::new(layout::OciSource::archive(
            &source.to_string(),
            file,
            tag.clone(),
        )?)),
        SourceRef::DockerArchive { file, reference } => Ok(Box::new(
            docker_archive::DockerArchive::open(&source.to_string(), file, reference.clone())?,
        )),
        SourceRef::Archive { file, tag } => {
            let store = store::Store::tar(file)?;
            let name = source.to_string();
            if layout::OciSource::is_oci(&store) {
                Ok(Box::new(layout::OciSource::from_store(
                    &name,
                    store,
                    Kind::OciArchive,
                    tag.clone(),
                )?))
            } else if docker_archive::DockerArchive::is_docker(&store) {
                Ok(Box::new(docker_archive::DockerArchive::from_store(
                    &name,
                    store,
                    tag.clone(),
                )?))
            } else {
                Err(SourceError::UnknownArchive { path: file.clone() })
            }
        }
        SourceRef::Registry(reference) => Ok(Box::new(registry::RegistrySource::open(
            &source.to_string(),
            reference,
            opts,
        )?)),
    }
}

/// Parses and opens `input` (see [`SourceRef::parse`]).
pub fn open_str(input: &str, opts: &SourceOptions) -> Result<Box<dyn ImageSource>, SourceError> {
    open(&SourceRef::parse(input)?, opts)
}

/// Reads all of `blob` (a stream from [`ImageSource::blob`]) to check it,
/// discarding the bytes.
pub fn verify(mut blob: impl Read, location: &str) -> Result<u64, SourceError> {
    io::copy(&mut blob, &mut io::sink()).map_err(|e| read_error(location, e))
}

/// A failed read of `location`: a digest or size mismatch as its own
/// error, anything else as a read error.
pub fn read_error(location: &str, e: io::Error) -> SourceError {
    match check_error(&e) {
        Some(BlobCheckError::Digest { expected, found }) => SourceError::DigestMismatch {
            location: location.to_owned(),
            expected: *expected,
            found: *found,
        },
        Some(BlobCheckError::Size { expected, found }) => SourceError::SizeMismatch {
            location: location.to_owned(),
            expected: *expected,
            found: *found,
        },
        None => SourceError::Read {
            location: location.to_owned(),
            source: e,
        },
    }
}

/// Parses a JSON document read from `location`.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    location: &str,
) -> Result<T, SourceError> {
    serde_json::from_slice(bytes).map_err(|e| SourceError::Json {
        location: location.to_owned(),
        reason: e.to_string(),
    })
}

/// A descriptor's digest as ours (only sha256 is supported).
pub fn digest_of(d: &Descriptor, location: &str) -> Result<Digest, SourceError> {
    d.digest()
        .to_string()
        .parse()
        .map_err(|_| SourceError::UnsupportedDigest {
            location: location.to_owned(),
            digest: d.digest().to_string(),
        })
}

/// Checks bytes read whole against their descriptor.
pub(crate) fn check_document(
    bytes: &[u8],
    d: &Descriptor,
    location: &str,
) -> Result<(), SourceError> {
    let expected = digest_of(d, location)?;
    let found = Digest::of(bytes);
    if found != expected {
        return Err(SourceError::DigestMismatch {
            location: location.to_owned(),
            expected,
            found,
        });
    }
    if bytes.len() as u64 != d.size() {
        return Err(SourceError::SizeMismatch {
            location: location.to_owned(),
            expected: d.size(),
            found: bytes.len() as u64,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
