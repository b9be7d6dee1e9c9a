//! The layer cache's key: one sha256 over everything that decides a
//! layer's bytes, so that equal keys can only mean equal blobs.
//!
//! What goes in, each field length-prefixed so that no two different
//! inputs hash the same stream:
//!
//! * mkimage itself: its version and the identity (device, inode, size,
//!   mtime, ctime) of the running executable, so a rebuilt mkimage, whose
//!   tar writer or compressor may differ, never reads another's records;
//! * the layer options: algorithm, level, chunk size and the entries'
//!   mtime (SOURCE_DATE_EPOCH). The thread count is left out: the output
//!   does not depend on it;
//! * every entry of the tree in order: image path, type, mode, owner, link
//!   target, and for a regular file its size and where its bytes come
//!   from. In-memory bytes (passwd, the CA bundle) are hashed. A host file
//!   is recognised as git's index recognises a clean file (git's
//!   Documentation/technical/racy-git.adoc): its path, device, inode, size,
//!   mtime and ctime, all in nanoseconds. Restoring an mtime (`touch -r`)
//!   still moves the ctime, which no user can set.
//!
//! The stat data proves nothing about a file changed again within the
//! same timestamp granule: the newest mtime/ctime is kept with the key so
//! the store can refuse to record a layer whose files were that fresh
//! (see `LayerCache::record`).

use std::fs::Metadata;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use sha2::{Digest as _, Sha256};

use crate::digest::Digest;
use crate::layer::LayerOptions;
use crate::rootfs::{Kind, Source, Tree};

/// Bumped whenever the key's stream or the record format changes.
pub(super) const FORMAT: u32 = 1;

/// A layer's cache key, and how fresh its host files were.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerKey {
    pub(super) digest: Digest,
    /// The newest mtime or ctime of the tree's host files, in ns since the
    /// epoch; `None` when it has none.
    pub(super) newest: Option<i128>,
    /// Some host file's stamps have no sub-second part: it may live on a
    /// file system with whole-second (or FAT's 2 s) timestamps.
    pub(super) coarse: bool,
}

impl LayerKey {
    /// The key as 64 hex digits (a record's file name).
    pub fn hex(&self) -> String {
        self.digest.hex()
    }
}

/// Who is writing layers: mkimage's version and its executable's identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Writer {
    version: &'static str,
    exe: [i128; 5],
}

impl Writer {
    /// The running mkimage.
    pub(super) fn current() -> io::Result<Writer> {
        let exe = std::env::current_exe()?;
        let m = std::fs::metadata(&exe)?;
        Ok(Writer {
            version: env!("CARGO_PKG_VERSION"),
            exe: identity(&m),
        })
    }

    pub(super) fn version(&self) -> &'static str {
        self.version
    }
}

/// Device, inode, size, mtime and ctime (ns).
pub(super) fn identity(m: &Metadata) -> [i128; 5] {
    [
        i128::from(m.dev()),
        i128::from(m.ino()),
        i128::from(m.size()),
        mtime_ns(m),
        ctime_ns(m),
    ]
}

fn mtime_ns(m: &Metadata) -> i128 {
    i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec())
}

fn ctime_ns(m: &Metadata) -> i128 {
    i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec())
}

/// Feeds length-prefixed fields to sha256.
struct Stream(Sha256);

impl Stream {
    fn bytes(&mut self, b: &[u8]) {
        self.0.update((b.len() as u64).to_le_bytes());
        self.0.update(b);
    }

    fn num(&mut self, n: i128) {
        self.0.update(n.to_le_bytes());
    }

    fn path(&mut self, p: &Path) {
        self.bytes(p.as_os_str().as_bytes());
    }
}

/// The key of `tree` written with `opts` by `writer`; `None` when a host
/// file cannot be examined or no longer has the size or type its tree
/// recorded (the layer writer then reports it, naming the file).
pub(super) fn layer_key(writer: &Writer, tree: &Tree, opts: &LayerOptions) -> Option<LayerKey> {
    let mut s = Stream(Sha256::new());
    s.bytes(b"mkimage layer");
    s.num(i128::from(FORMAT));
    s.bytes(writer.version.as_bytes());
    for n in writer.exe {
        s.num(n);
    }
    let c = opts.compression;
    s.bytes(c.algorithm().to_string().as_bytes());
    s.num(i128::from(c.level()));
    s.num(c.chunk_size() as i128);
    s.num(i128::from(opts.mtime));

    let mut newest: Option<i128> = None;
    let mut coarse = false;
    let mut count = 0u64;
    for (path, entry) in tree.iter() {
        count += 1;
        s.path(path.as_path());
        s.num(i128::from(entry.mode));
        s.num(i128::from(entry.uid));
        s.num(i128::from(entry.gid));
        match &entry.kind {
            Kind::Dir => s.bytes(b"dir"),
            Kind::Symlink { target } => {
                s.bytes(b"symlink");
                s.path(target);
            }
            Kind::Hardlink { target } => {
                s.bytes(b"hardlink");
                s.path(target.as_path());
            }
            Kind::File {
                source: Source::Bytes(data),
                size,
            } => {
                s.bytes(b"bytes");
                s.num(i128::from(*size));
                s.bytes(Digest::of(data).as_bytes());
            }
            Kind::File {
                source: Source::Host(host),
                size,
            } => {
                s.bytes(b"host");
                s.num(i128::from(*size));
                s.path(host);
                let m = entry.host_stat(host).ok()?;
                let m = m.as_ref();
                if !m.is_file() || m.len() != *size {
                    return None;
                }
                for n in identity(m) {
                    s.num(n);
                }
                let stamp = mtime_ns(m).max(ctime_ns(m));
                newest = Some(newest.map_or(stamp, |n| n.max(stamp)));
                coarse |= m.mtime_nsec() == 0 || m.ctime_nsec() == 0;
            }
        }
    }
    s.num(i128::from(count));
    Some(LayerKey {
        digest: Digest::from_bytes(s.0.finalize().into()),
        newest,
        coarse,
    })
}

#[cfg(test)]
mod tests {
    use std::fs::{File, FileTimes};
    use std::os::unix::fs::PermissionsExt;
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::layer::{Algorithm, Compression};
    use crate::rootfs::{Entry, ImagePath};

    fn writer() -> Writer {
        Writer::current().unwrap()
    }

    fn tree_of(host: &Path) -> Tree {
        let mut t = Tree::new();
        let size = std::fs::metadata(host).unwrap().len();
        t.insert(
            ImagePath::new("/app/file").unwrap(),
            Entry::file(Source::Host(host.to_path_buf()), size, 0o644),
        )
        .unwrap();
        t.insert(ImagePath::new("/app/link").unwrap(), Entry::symlink("file"))
            .unwrap();
        t.insert(
            ImagePath::new("/etc/passwd").unwrap(),
            Entry::bytes(b"root:x:0:0::/:/sbin/nologin\n".to_vec(), 0o644),
        )
        .unwrap();
        t
    }

    fn key(tree: &Tree, opts: &LayerOptions) -> Digest {
        layer_key(&writer(), tree, opts).unwrap().digest
    }

    /// Every input that decides the bytes moves the key; nothing else does.
    #[test]
    fn every_input_moves_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("file");
        std::fs::write(&host, b"0123456789").unwrap();
        let opts = LayerOptions::default();
        let tree = tree_of(&host);
        let base = key(&tree, &opts);
        assert_eq!(key(&tree, &opts), base, "same inputs");
        let threads = LayerOptions {
            threads: std::num::NonZeroUsize::new(7).unwrap(),
            ..opts
        };
        assert_eq!(key(&tree, &threads), base, "threads do not matter");

        let mut keys = vec![base];
        let mut differs = |k: Digest, what: &str| {
            assert!(!keys.contains(&k), "{what} did not move the key");
            keys.push(k);
        };
        differs(key(&tree, &LayerOptions { mtime: 1, ..opts }), "mtime");
        for compression in [
            Compression::new(Algorithm::Gzip, Some(9)).unwrap(),
            Compression::new(Algorithm::Zstd, None).unwrap(),
        ] {
            differs(
                key(
                    &tree,
                    &LayerOptions {
                        compression,
                        ..opts
                    },
                ),
                "compression",
            );
        }
        let edit = |f: &dyn Fn(&mut Tree)| {
            let mut t = tree.clone();
            f(&mut t);
            key(&t, &opts)
        };
        let link = ImagePath::new("/app/link").unwrap();
        differs(
            edit(&|t| t.replace(&link, Entry::symlink("other"))),
            "link target",
        );
        differs(
            edit(&|t| t.replace(&link, Entry::symlink("file").owned(1, 0))),
            "owner",
        );
        let passwd = ImagePath::new("/etc/passwd").unwrap();
        differs(
            edit(&|t| {
                t.replace(
                    &passwd,
                    Entry::bytes(b"root:x:0:0::/:/bin/sh\n".to_vec(), 0o644),
                )
            }),
            "in-memory bytes",
        );
        differs(
            edit(&|t| {
                t.replace(
                    &passwd,
                    Entry::bytes(b"root:x:0:0::/:/sbin/nologin\n".to_vec(), 0o600),
                )
            }),
            "mode",
        );
        differs(
            edit(&|t| {
                t.insert(ImagePath::new("/app/new").unwrap(), Entry::dir(0o755))
                    .unwrap()
            }),
            "an added entry",
        );
        differs(
            edit(&|t| {
                t.remove(&link);
            }),
            "a removed entry",
        );

        // Same size, mtime restored: the ctime still moves.
        let m = std::fs::metadata(&host).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(&host, b"9876543210").unwrap();
        File::options()
            .write(true)
            .open(&host)
            .unwrap()
            .set_times(FileTimes::new().set_modified(m.modified().unwrap()))
            .unwrap();
        assert_eq!(
            std::fs::metadata(&host).unwrap().modified().unwrap(),
            m.modified().unwrap()
        );
        differs(key(&tree, &opts), "content with a restored mtime");
        std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o600)).unwrap();
        differs(key(&tree, &opts), "a chmod of the host file (ctime)");
    }

    #[test]
    fn a_file_that_changed_size_or_vanished_has_no_key() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("file");
        std::fs::write(&host, b"0123456789").unwrap();
        let tree = tree_of(&host);
        std::fs::write(&host, b"longer than before").unwrap();
        assert_eq!(layer_key(&writer(), &tree, &LayerOptions::default()), None);
        std::fs::remove_file(&host).unwrap();
        assert_eq!(layer_key(&writer(), &tree, &LayerOptions::default()), None);
    }

    #[test]
    fn newest_stamp_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("file");
        std::fs::write(&host, b"x").unwrap();
        let when = SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 5);
        File::options()
            .write(true)
            .open(&host)
            .unwrap()
            .set_times(FileTimes::new().set_modified(when))
            .unwrap();
        let k = layer_key(&writer(), &tree_of(&host), &LayerOptions::default()).unwrap();
        // The ctime (now) is newer than the mtime set.
        assert!(k.newest.unwrap() > 1_700_000_000 * 1_000_000_000 + 5);
        let mut only_bytes = Tree::new();
        only_bytes
            .insert(
                ImagePath::new("/a").unwrap(),
                Entry::bytes(b"a".to_vec(), 0o644),
            )
            .unwrap();
        let k = layer_key(&writer(), &only_bytes, &LayerOptions::default()).unwrap();
        assert_eq!((k.newest, k.coarse), (None, false));
    }
}
