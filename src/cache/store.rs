//! The layer cache on disk: a directory of records (one a key) and blobs
//! (one a digest), with the file-system moves both need: atomic writes,
//! hard links or copies between it and a layout, and eviction.
//!
//! ```text
//! $XDG_CACHE_HOME/mkimage/           (default ~/.cache/mkimage)
//!   CACHEDIR.TAG                     so backup tools skip it (bford.info/cachedir)
//!   layers-v1/
//!     lock                           flock(2)ed while evicting
//!     records/<key hex>              see record.rs
//!     blobs/sha256/<digest hex>      layer blobs
//!     tmp/                           files being written, and clock probes
//! ```
//!
//! Concurrent builds are safe without holding a lock while they build:
//! every file appears by rename(2) of a complete temporary file, so a
//! reader sees an old file, a new one or none; a blob evicted between a
//! lookup and its hard link makes the link fail, which is a miss. Only
//! eviction takes the lock, so two builds never evict at once.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use tempfile::NamedTempFile;

use super::key::FORMAT;
use crate::digest::Digest;

const CACHEDIR_TAG: &str = "Signature: 8a477f597d28d172789f06886806bc55\n\
# This file marks the directory as a cache made by mkimage (layer blobs).\n\
# Remove the directory to clear it; see https://bford.info/cachedir/\n";

/// Records beyond this many are evicted oldest first: each is a few
/// hundred bytes, but a directory of millions would slow every lookup.
const MAX_RECORDS: usize = 4096;

/// Temporary files are dot files, as in a layout.
const TEMP_PREFIX: &str = ".mkimage-tmp-";

/// The opened cache directory.
#[derive(Debug)]
pub(super) struct Store {
    root: PathBuf,
    max_bytes: u64,
}

impl Store {
    /// Creates the directories as needed and checks that we can write
    /// there (a read-only cache is no cache: it could never learn).
    pub(super) fn open(dir: &Path, max_bytes: u64) -> io::Result<Store> {
        let root = dir.join(format!("layers-v{FORMAT}"));
        for sub in ["records", "stamps", "used", "blobs/sha256", "tmp"] {
            fs::create_dir_all(root.join(sub))?;
        }
        let tag = dir.join("CACHEDIR.TAG");
        if !tag.exists() {
            write_atomic(&root.join("tmp"), &tag, CACHEDIR_TAG.as_bytes())?;
        }
        File::options()
            .create(true)
            .append(true)
            .open(root.join("lock"))?;
        Ok(Store { root, max_bytes })
    }

    pub(super) fn root(&self) -> &Path {
        &self.root
    }

    pub(super) fn memo_path(&self) -> PathBuf {
        self.root.join("hashes")
    }

    pub(super) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Where the stamp of the blob file at `blob` is kept: named by the
    /// hash of its absolute path.
    pub(super) fn stamp_path(&self, blob: &Path) -> PathBuf {
        let abs = fs::canonicalize(blob).unwrap_or_else(|_| blob.to_path_buf());
        let name = Digest::of(std::os::unix::ffi::OsStrExt::as_bytes(abs.as_os_str()));
        self.root.join("stamps").join(name.hex())
    }

    pub(super) fn write_stamp(&self, blob: &Path, text: &str) -> io::Result<()> {
        write_atomic(
            &self.root.join("tmp"),
            &self.stamp_path(blob),
            text.as_bytes(),
        )
    }

    pub(super) fn record_path(&self, key_hex: &str) -> PathBuf {
        self.root.join("records").join(key_hex)
    }

    pub(super) fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    /// The file system's clock now, as it will stamp a file written next
    /// (the coarse clock, at its granularity), in ns since the epoch: the
    /// mtime of a new file. Not `SystemTime::now()`, which runs ahead of
    /// the stamps the kernel gives files by up to a tick.
    pub(super) fn fs_now(&self) -> io::Result<i128> {
        let probe = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .tempfile_in(self.root.join("tmp"))?;
        ns_since_epoch(probe.as_file().metadata()?.modified()?)
    }

    pub(super) fn write_record(&self, key_hex: &str, bytes: &[u8]) -> io::Result<()> {
        write_atomic(&self.root.join("tmp"), &self.record_path(key_hex), bytes)
    }

    /// Puts the blob at `from` into the cache, unless it is larger than
    /// the whole cache may be.
    pub(super) fn put_blob(&self, from: &Path, digest: &Digest, size: u64) -> io::Result<()> {
        if size > self.max_bytes {
            return Ok(());
        }
        let to = self.blob_path(digest);
        self.mark_used(digest);
        if fs::metadata(&to).is_ok_and(|m| m.len() == size) {
            return Ok(());
        }
        link_or_copy(from, &to, size)
    }

    /// Marks a blob as just used, for eviction (least recently used
    /// first), in a file of its own: changing the blob's own times would
    /// change those of the layout's hard link to it, and so its stamp.
    /// Best effort.
    pub(super) fn mark_used(&self, digest: &Digest) {
        let marker = self.root.join("used").join(digest.hex());
        if let Ok(f) = File::options().create(true).append(true).open(marker) {
            let _ = f.set_modified(SystemTime::now());
        }
    }

    /// Size of a file, `None` when it is not there.
    pub(super) fn size_of(path: &Path) -> io::Result<Option<u64>> {
        match fs::metadata(path) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Removes the least recently used blobs until the cache is within
    /// its size, and the oldest records beyond [`MAX_RECORDS`]. Skipped
    /// when another build is evicting.
    pub(super) fn evict(&self) -> io::Result<()> {
        let lock = File::open(self.root.join("lock"))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Ok(()),
            Err(fs::TryLockError::Error(e)) => return Err(e),
        }
        let mut blobs = listing(&self.root.join("blobs/sha256"))?;
        let markers = self.root.join("used");
        for b in &mut blobs {
            if let Some(name) = b.path.file_name()
                && let Ok(used) = fs::metadata(markers.join(name)).and_then(|m| m.modified())
            {
                b.used = b.used.max(used);
            }
        }
        let mut total: u64 = blobs.iter().map(|f| f.size).sum();
        blobs.sort_by_key(|f| f.used);
        for f in &blobs {
            if total <= self.max_bytes {
                break;
            }
            remove(&f.path)?;
            if let Some(name) = f.path.file_name() {
                remove(&markers.join(name))?;
            }
            total -= f.size;
        }
        for dir in ["records", "stamps"] {
            let mut records = listing(&self.root.join(dir))?;
            if records.len() > MAX_RECORDS {
                records.sort_by_key(|f| f.used);
                for f in &records[..records.len() - MAX_RECORDS] {
                    remove(&f.path)?;
                }
            }
        }
        Ok(())
    }
}

/// A cached file and when it was last used (its mtime: see [`touch`]).
struct Listed {
    path: PathBuf,
    size: u64,
    used: SystemTime,
}

fn listing(dir: &Path) -> io::Result<Vec<Listed>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        // Evicted by another build meanwhile: nothing to count.
        let Ok(m) = entry.metadata() else { continue };
        out.push(Listed {
            path: entry.path(),
            size: m.len(),
            used: m.modified().unwrap_or(UNIX_EPOCH),
        });
    }
    Ok(out)
}

fn remove(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Marks a cached file as just used, for eviction (least recently used
/// first): its mtime, since atime is often not kept (`noatime`,
/// `relatime`). Best effort: a file another build just evicted has no
/// use to mark.
pub(super) fn touch(path: &Path) {
    if let Ok(f) = File::open(path) {
        let _ = f.set_modified(SystemTime::now());
    }
}

pub(super) fn ns_since_epoch(t: SystemTime) -> io::Result<i128> {
    let d = t
        .duration_since(UNIX_EPOCH)
        .map_err(|_| io::Error::other("the clock is before 1970"))?;
    Ok(d.as_nanos() as i128)
}

/// Makes `to` hold the `size` bytes of `from`: a hard link when both are
/// on one file system (no bytes move; blobs are never written in place,
/// only replaced by rename, so sharing an inode is safe), else a copy
/// (copy_file_range(2), a reflink where the file system has them). Either
/// way through a temporary name beside `to` and a rename, so `to` is
/// whole or absent.
pub(crate) fn link_or_copy(from: &Path, to: &Path, size: u64) -> io::Result<()> {
    let dir = to
        .parent()
        .ok_or_else(|| io::Error::other("a blob path has no directory"))?;
    let tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .make_in(dir, |p| fs::hard_link(from, p));
    let tmp = match tmp {
        Ok(t) => t.into_temp_path(),
        Err(_) => {
            let t = tempfile::Builder::new()
                .prefix(TEMP_PREFIX)
                .tempfile_in(dir)?;
            fs::copy(from, t.path())?;
            t.as_file().sync_all()?;
            // tempfile makes 0600 files; blobs are for every reader.
            fs::set_permissions(
                t.path(),
                std::os::unix::fs::PermissionsExt::from_mode(0o644),
            )?;
            t.into_temp_path()
        }
    };
    let found = fs::metadata(&tmp)?.len();
    if found != size {
        return Err(io::Error::other(format!(
            "{} has {found} bytes, not the {size} recorded",
            from.display()
        )));
    }
    tmp.persist(to).map_err(|e| e.error)?;
    Ok(())
}

/// The sha256 of the file at `path`, read through.
pub(super) fn hash_file(path: &Path) -> io::Result<Digest> {
    let mut w = crate::digest::HashingWriter::new(io::sink());
    // A blob is often tens of MB: io::copy's 8 KiB reads were 8,000
    // syscalls for the JDK's layer.
    let mut r = io::BufReader::with_capacity(1 << 20, File::open(path)?);
    io::copy(&mut r, &mut w)?;
    Ok(w.finish().1)
}

/// Replaces `to` with `bytes`, through a temporary file in `tmp`. Not
/// fsynced: everything the cache writes ends in a checksum that is
/// checked when read, so a file a crash tore is found out and ignored,
/// and an fsync costs a journal commit (milliseconds each on a loaded
/// disk, several per build).
pub(super) fn write_atomic(tmp: &Path, to: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = NamedTempFile::with_prefix_in(TEMP_PREFIX, tmp)?;
    f.write_all(bytes)?;
    f.persist(to).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn eviction_keeps_the_most_recently_used_within_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 250).unwrap();
        let src = dir.path().join("src");
        let mut digests = Vec::new();
        for i in 0..3u8 {
            std::fs::write(&src, vec![i; 100]).unwrap();
            let d = Digest::of(&[i]);
            store.put_blob(&src, &d, 100).unwrap();
            // Distinct times of use, oldest first.
            for p in [store.blob_path(&d), store.root.join("used").join(d.hex())] {
                let f = File::open(p).unwrap();
                f.set_modified(UNIX_EPOCH + Duration::from_secs(1_000 + u64::from(i)))
                    .unwrap();
            }
            digests.push(d);
        }
        // The oldest is used again.
        store.mark_used(&digests[0]);
        store.evict().unwrap();
        let there: Vec<bool> = digests
            .iter()
            .map(|d| store.blob_path(d).exists())
            .collect();
        assert_eq!(there, [true, false, true]);
        // A blob larger than the cap is never stored.
        std::fs::write(&src, vec![9; 300]).unwrap();
        let big = Digest::of(b"big");
        store.put_blob(&src, &big, 300).unwrap();
        assert!(!store.blob_path(&big).exists());
    }

    #[test]
    fn a_copy_of_the_wrong_size_is_refused_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("from");
        std::fs::write(&from, b"12345").unwrap();
        let to = dir.path().join("to");
        assert!(link_or_copy(&from, &to, 6).is_err());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["from"]);
        link_or_copy(&from, &to, 5).unwrap();
        assert_eq!(std::fs::read(&to).unwrap(), b"12345");
    }

    #[test]
    fn the_fs_clock_is_not_ahead_of_now() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let fs = store.fs_now().unwrap();
        let now = ns_since_epoch(SystemTime::now()).unwrap();
        assert!(fs <= now && now - fs < 1_000_000_000, "{fs} vs {now}");
        assert!(dir.path().join("CACHEDIR.TAG").exists());
    }
}
