//! The last stage of the pipeline: layers become an OCI image (config,
//! manifest) in an OCI image layout directory.
//!
//! Every JSON blob goes through [`canonical_json`], so the same inputs give
//! the same digests; the layout writes blobs first and `index.json` last, each
//! by rename, so an interrupted build leaves the previous layout valid.

pub mod config;
pub mod docker_manifest;
pub mod healthcheck;
pub mod image;
pub mod json;
pub mod layout;
pub mod manifest;
pub mod names;
pub mod platform;
pub mod provenance;
pub mod referrers;
pub mod time;
mod writeback;

use std::io;
use std::path::PathBuf;

pub use crate::digest::Digest;
pub use config::{ImageSpec, LayerInfo};
pub use healthcheck::{HealthTest, Healthcheck};
pub use image::{write_image, write_untagged};
pub use json::canonical_json;
pub use layout::{Layout, check_reference, ref_name};
pub use platform::Platform;
pub use time::rfc3339_utc;

/// Re-exported so callers name descriptors and media types without depending
/// on oci-spec themselves.
pub use oci_spec::image::{Descriptor, MediaType};

/// Everything that can go wrong while building or reading an OCI image.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("cannot {action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("cannot serialise JSON")]
    Serialize { source: serde_json::Error },
    #[error("{} is not valid JSON of the expected shape", path.display())]
    ParseJson {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot build the image {what}")]
    Spec {
        what: &'static str,
        source: oci_spec::OciSpecError,
    },
    #[error("{} exists and is not a directory", path.display())]
    NotADirectory { path: PathBuf },
    #[error(
        "{} is neither empty nor an OCI image layout (it has no oci-layout file); \
         refusing to write into it",
        path.display()
    )]
    NotALayout { path: PathBuf },
    #[error("{}: unsupported imageLayoutVersion {found:?} (expected \"1.0.0\")", path.display())]
    LayoutVersion { path: PathBuf, found: String },
    #[error(
        "invalid tag {reference:?}: expected components of [A-Za-z0-9] joined by \
         one of -._:@+ or \"--\", separated by '/'"
    )]
    InvalidReference { reference: String },
    #[error("blob {digest} not found at {}", path.display())]
    BlobNotFound { digest: Digest, path: PathBuf },
    #[error("blob {} has digest {found}, expected {expected}", path.display())]
    DigestMismatch {
        path: PathBuf,
        expected: Digest,
        found: Digest,
    },
    #[error("blob {digest} is {found} bytes, expected {expected}")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        found: u64,
    },
    #[error("unsupported digest {digest:?} in {}: only sha256 is supported", path.display())]
    UnsupportedDigest { path: PathBuf, digest: String },
    #[error(
        "SOURCE_DATE_EPOCH {epoch} is after 9999-12-31T23:59:59Z, \
         the last instant RFC 3339 can express"
    )]
    EpochOutOfRange { epoch: u64 },
    #[error("invalid {field} {value:?}: {reason}")]
    InvalidPlatform {
        field: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("invalid exposed port {port:?}: expected <1-65535>[/tcp|/udp|/sctp]")]
    InvalidPort { port: String },
    #[error("invalid environment entry {entry:?}: expected NAME=value")]
    InvalidEnv { entry: String },
    #[error("{}: media type {found:?}, expected {expected}", path.display())]
    UnexpectedMediaType {
        path: PathBuf,
        expected: &'static str,
        found: String,
    },
}

/// Builds the `map_err` closure for a failed filesystem operation.
pub(crate) fn io_err(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(io::Error) -> OciError {
    let path = path.into();
    move |source| OciError::Io {
        action,
        path,
        source,
    }
}

/// Our digest as oci-spec's. Cannot fail for a well-formed `Digest`; kept
/// fallible rather than panicking because oci-spec's parser is the judge.
pub(crate) fn oci_digest(d: &Digest) -> Result<oci_spec::image::Digest, OciError> {
    d.to_string().parse().map_err(|source| OciError::Spec {
        what: "digest",
        source,
    })
}

/// The blob at `path`, whose content hashed to `found`, is the one named
/// `expected`.
pub(crate) fn check_digest(
    path: &std::path::Path,
    expected: &Digest,
    found: Digest,
) -> Result<(), OciError> {
    if *expected != found {
        return Err(OciError::DigestMismatch {
            path: path.to_path_buf(),
            expected: *expected,
            found,
        });
    }
    Ok(())
}

/// oci-spec's digest as ours, for a descriptor read from `path`; only
/// sha256 is supported.
pub(crate) fn from_oci_digest(
    d: &oci_spec::image::Digest,
    path: &std::path::Path,
) -> Result<Digest, OciError> {
    d.to_string()
        .parse()
        .map_err(|_| OciError::UnsupportedDigest {
            path: path.to_path_buf(),
            digest: d.to_string(),
        })
}
