//! After the output: pushing an image from an OCI layout to a registry that
//! speaks the OCI distribution API, with no daemon.
//!
//! * [`reference`](mod@reference) parses `[HOST[:PORT]/]NAME[:TAG][@DIGEST]` as docker does.
//! * [`auth`] finds credentials: `--creds`, podman's and docker's auth files,
//!   credential helpers.
//! * [`RegistryOptions`] say how to reach a registry (credentials, CAs,
//!   plain-HTTP hosts, retries, time limits), for a push or a pull.
//! * [`transport`] is the HTTP client: TLS, auth challenges, retries, and
//!   streamed answers for pulls (`crate::source`'s `docker://`).
//! * [`timeouts`] are its limits, from `--timeout`, so a registry that
//!   stalls or trickles cannot hold a push forever.
//! * [`push`](mod@push) walks the image and uploads what the registry lacks;
//!   [`referrers`] then attaches its SBOM and provenance.

pub mod auth;
mod options;
pub mod push;
pub mod referrers;
pub mod timeouts;
pub mod transport;

/// The reference grammar is a leaf that the output also uses (image names
/// in layouts and docker-archives); it is re-exported here, where it began.
pub(crate) use crate::reference;

use std::io;
use std::path::PathBuf;

pub use auth::{AuthEnv, AuthError, Credential};
pub use options::RegistryOptions;
pub use push::{PushEvent, PushOptions, PushReport, open_layout, push, push_with_events};
pub use reference::{Reference, ReferenceError};
pub use timeouts::Timeouts;

use crate::digest::Digest;
use crate::oci::OciError;

/// Everything that can go wrong while pushing. Messages name the registry
/// and what to do; none ever contains a password or token.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Layout(#[from] OciError),
    /// What the image reader found wrong with the image to push.
    #[error(transparent)]
    Source(Box<crate::source::SourceError>),
    #[error("{} is not an OCI image layout (it has no oci-layout file)", path.display())]
    NotALayout { path: PathBuf },
    #[error(
        "{} holds {} images; say which to push as {}:TAG (tags: {})",
        layout.display(), count, layout.display(), list(tags)
    )]
    TagRequired {
        layout: PathBuf,
        count: usize,
        tags: Vec<String>,
    },
    #[error("tag {tag:?} is not in {}; its tags are: {}", layout.display(), list(available))]
    TagNotFound {
        layout: PathBuf,
        tag: String,
        available: Vec<String>,
    },
    #[error("{reference} pins digest {pinned}, but the image to push is {image}")]
    PinnedDigest {
        reference: String,
        pinned: Digest,
        image: Digest,
    },
    #[error("manifest {digest} in the layout: {reason}")]
    Manifest { digest: Digest, reason: String },
    #[error("cannot {action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("cannot read --ca-cert {}", path.display())]
    CaCertRead { path: PathBuf, source: io::Error },
    #[error("--ca-cert {}: {reason}", path.display())]
    CaCert { path: PathBuf, reason: String },
    #[error("cannot reach registry {registry}")]
    Unreachable { registry: String, source: io::Error },
    #[error("the connection to registry {registry} failed")]
    Connection { registry: String, source: io::Error },
    #[error("cannot resolve the host of registry {registry}: {message}")]
    HostNotFound { registry: String, message: String },
    #[error(
        "registry {registry} timed out: {what} (--timeout {}; raise it if \
         the registry is only slow)",
        timeouts::show(*timeout)
    )]
    Timeout {
        registry: String,
        what: String,
        timeout: std::time::Duration,
    },
    #[error(
        "TLS with registry {registry} failed: {message}. If it uses a private CA, pass \
         --ca-cert CA.pem; if it serves plain HTTP, pass --insecure-registry {registry}"
    )]
    Tls { registry: String, message: String },
    #[error("talking to registry {registry}: {message}")]
    Http { registry: String, message: String },
    #[error(
        "registry {registry} rejected the credentials from {origin}{}: {message}",
        username.as_ref().map(|u| format!(" (user {u:?})")).unwrap_or_default()
    )]
    CredentialsRejected {
        registry: String,
        origin: String,
        username: Option<String>,
        message: String,
    },
    #[error(
        "registry {registry} requires credentials: pass --creds USER:PASS, or log in \
         with `podman login {registry}` or `docker login {registry}`"
    )]
    CredentialsMissing { registry: String },
    #[error(
        "registry {registry} denied access (are these credentials allowed to push here?): {message}"
    )]
    Denied { registry: String, message: String },
    #[error("cannot get a token for registry {registry} from {realm}: {message}")]
    Token {
        registry: String,
        realm: String,
        message: String,
    },
    #[error(
        "{registry} does not serve the registry API (GET /v2/ answered HTTP {status}: {message})"
    )]
    NotARegistry {
        registry: String,
        status: u16,
        message: String,
    },
    #[error("registry {registry} answered HTTP {status} to {action}: {message}")]
    Status {
        registry: String,
        action: String,
        status: u16,
        message: String,
    },
    #[error("registry {registry}: {message}")]
    Protocol { registry: String, message: String },
    #[error("registry {registry} stored {what} as {found}, but its digest is {expected}")]
    DigestMismatch {
        registry: String,
        what: String,
        expected: Digest,
        found: String,
    },
}

impl RegistryError {
    /// Whether the image to push was not found (exit 1, as for a missing
    /// file in a build).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            RegistryError::TagNotFound { .. } | RegistryError::NotALayout { .. }
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
