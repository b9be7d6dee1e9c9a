//! What scanners need to see in an image: the Debian package each file
//! came from (read from the root's own dpkg database), written into the
//! image as distroless-style package records, and an SPDX SBOM of the
//! whole image. Sits between the file tree and the layers: it reads the
//! layer trees and the root, and adds record files to the trees.
//!
//! ```text
//! file tree + root (+ its os-release) ──► inventory ──► records (status.d) ──► layers
//!                          └──────► SPDX document ──► referrer of the manifest
//! ```

mod codec;
pub mod copyright;
pub mod deb822;
pub mod dpkg;
mod hashing;
pub mod inventory;
pub mod lang;
pub mod records;
mod settled;
pub mod spdx;

use std::path::PathBuf;

pub use inventory::{HashMemo, Inventory, Opened, survey};
pub use records::{add_os_release, add_records};

use crate::resolve::LookupError;

#[derive(Debug, thiserror::Error)]
pub enum SbomError {
    #[error(
        "{}: {why} (line {line}); dpkg would refuse this database too: repair it (dpkg --audit), or build from a root whose database is intact",
        path.display()
    )]
    Status {
        path: PathBuf,
        line: usize,
        why: String,
    },
    #[error("{}: {why}", path.display())]
    Diversions { path: PathBuf, why: String },
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is larger than {limit} bytes; it is not what its name says", path.display())]
    TooLarge { path: PathBuf, limit: usize },
    #[error(transparent)]
    Lookup(#[from] LookupError),
    #[error(transparent)]
    Rootfs(#[from] crate::rootfs::RootfsError),
    #[error("a thread hashing the image's files panicked")]
    HashThread,
}

/// Percent-encodes a purl component (purl-spec: every character but
/// `A-Za-z0-9.-_~` is encoded, so a Debian epoch's `:` and `+` are too).
pub fn purl_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b".-_~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purl_components_are_encoded() {
        assert_eq!(purl_encode("1:2.36-9+deb12u4"), "1%3A2.36-9%2Bdeb12u4");
        assert_eq!(purl_encode("@types"), "%40types");
        assert_eq!(purl_encode("a_b.c~d"), "a_b.c~d");
    }
}
