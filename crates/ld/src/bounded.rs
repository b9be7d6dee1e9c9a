//! Reading small files whole, with a cap: every file mkimage reads into
//! memory (profiles, PEM files, auth files, ld.so.cache, JSON blobs) is
//! one a user or a root hands it, and `/dev/zero` or a 5 GB file given by
//! mistake must fail with a message instead of eating the machine. The
//! resolver reads a root's ld.so.cache with it; mkimage's `bounded`
//! re-exports it with the caps of the files only mkimage reads.

use std::io::Read;
use std::path::Path;

/// The cap for JSON documents of an image (index, manifests, configs) and
/// for the small files of a root read whole (ld.so.cache, CA bundles).
pub const DOCUMENT_LIMIT: u64 = 64 << 20;

/// Reads `path` whole, or fails with [`std::io::ErrorKind::FileTooLarge`]
/// when it holds more than `limit` bytes (without reading more than
/// `limit + 1` of them).
pub fn read(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    // Sized from the file's length, so a file is read in one or two calls
    // instead of read_to_end's doubling from 32 bytes (`take` hides the
    // size hint): thousands of dpkg lists a build.
    let len = file.metadata().map_or(0, |m| m.len()).min(limit);
    let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0).saturating_add(1));
    file.take(limit.saturating_add(1)).read_to_end(&mut out)?;
    if out.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!(
                "larger than {} MiB, the most mkimage reads of such a file (is it the right file?)",
                limit >> 20
            ),
        ));
    }
    Ok(out)
}

/// [`read`] as UTF-8 text.
pub fn read_to_string(path: &Path, limit: u64) -> std::io::Result<String> {
    String::from_utf8(read(path, limit)?)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_endless_and_large_files() {
        let err = read(Path::new("/dev/zero"), 1 << 20).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::FileTooLarge);
        assert!(err.to_string().contains("larger than 1 MiB"), "{err}");
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("f");
        std::fs::write(&f, vec![b'x'; 4096]).unwrap();
        assert_eq!(read(&f, 4096).unwrap().len(), 4096);
        assert!(read(&f, 4095).is_err());
        std::fs::write(&f, [0xff, 0xfe]).unwrap();
        assert!(read_to_string(&f, 10).is_err());
    }
}
