//! Reading small files whole, with a cap: every file mkimage reads into
//! memory (profiles, PEM files, auth files, ld.so.cache, JSON blobs) is
//! one a user or a root hands it, and `/dev/zero` or a 5 GB file given by
//! mistake must fail with a message instead of eating the machine. The
//! reader itself, and the cap for a root's and an image's documents, are
//! the resolver crate's (it reads ld.so.cache with them); the caps here
//! are for the files only mkimage reads.

pub use mkimage_ld::bounded::{DOCUMENT_LIMIT, read, read_to_string};

/// The cap for text a person writes: profiles, pyvenv.cfg, auth files.
pub const TEXT_LIMIT: u64 = 1 << 20;
/// The cap for certificate bundles (Debian's is 220 KB).
pub const PEM_LIMIT: u64 = 16 << 20;
