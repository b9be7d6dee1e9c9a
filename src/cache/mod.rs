//! The layer cache: a layer whose inputs are unchanged is not tarred and
//! compressed again; its blob, diff-id and size come from a record.
//!
//! ```text
//! layer tree ─► key (key.rs) ─► record (record.rs) ─► blob in the layout,
//!                                                     or in the cache (store.rs)
//! ```
//!
//! It must never give bytes a cold build would not: the key covers all
//! that decides them (see key.rs), a record is written only for layers
//! whose host files were older than the build's start by the file
//! system's own clock (so a file changed again within the same timestamp
//! granule, the race of git's racy-git.adoc, is never recorded as clean),
//! and a blob is used only when it has the recorded size. Anything wrong
//! with the cache (corrupt, truncated, another format, unwritable) turns it
//! off for the build with one warning; the build goes on cold.
//!
//! The cache sees layer trees and blob paths only: the build step asks it
//! and writes what it says; it knows nothing of artifacts or images.

mod key;
mod memo;
mod record;
mod store;

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

pub use self::key::LayerKey;
use self::key::Writer;
pub use self::memo::FileMemo;
use self::record::{Record, RecordError};
use self::store::Store;
use crate::digest::Digest;
use crate::layer::{LayerDigests, LayerOptions};
use crate::rootfs::Tree;

/// Where the cache lives and how big it may grow (`BuildPlan::cache`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheSettings {
    /// `$XDG_CACHE_HOME/mkimage`, or `~/.cache/mkimage`.
    pub dir: PathBuf,
    /// Blobs beyond this many bytes are evicted, least recently used first.
    pub max_bytes: u64,
}

/// The default size cap: room for a few JDK-sized images.
pub const DEFAULT_MAX_BYTES: u64 = 2 << 30;

/// A record is a few hundred bytes; more than this is not one.
const RECORD_LIMIT: u64 = 4096;

/// Slack for stamps with no sub-second part: FAT keeps mtimes to 2 s, so
/// a file stamped `t` there may have been written until `t + 2 s`.
const COARSE_SLACK_NS: i128 = 2_000_000_000;

#[derive(Debug, thiserror::Error)]
enum CacheError {
    #[error("cannot use {}: {source}", dir.display())]
    Open { dir: PathBuf, source: io::Error },
    #[error("cannot tell which mkimage is running: {source}")]
    Writer { source: io::Error },
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{}: {source}", path.display())]
    Record { path: PathBuf, source: RecordError },
    #[error("{} was written by mkimage {found}, not this one", path.display())]
    Version { path: PathBuf, found: String },
    #[error("{} says {key}, not its own key", path.display())]
    Key { path: PathBuf, key: String },
    #[error("{} has {found} bytes, its record says {expected}", path.display())]
    Truncated {
        path: PathBuf,
        found: u64,
        expected: u64,
    },
    #[error("{} does not hold the blob {digest} it is named for", path.display())]
    Damaged { path: PathBuf, digest: Digest },
    #[error("cannot store in {}: {source}", dir.display())]
    Write { dir: PathBuf, source: io::Error },
}

/// An opened layer cache, for one build.
pub struct LayerCache {
    store: Store,
    writer: Writer,
    /// The file system's clock when the build began to look at layer
    /// inputs: host files stamped at or after it may change unseen.
    start: i128,
    /// Something was wrong: no more lookups or records this build.
    off: bool,
    warning: Option<String>,
    /// `None` when its file could not be trusted.
    memo: Option<FileMemo>,
}

impl LayerCache {
    /// Opens (creating) the cache; the error is the warning to give.
    /// Call it before the layers' host files are examined: its clock
    /// reading is what they must be older than to be recorded.
    pub fn open(settings: &CacheSettings) -> Result<LayerCache, String> {
        let warn = |e: CacheError| format!("the layer cache is not used: {e}");
        let writer = Writer::current().map_err(|source| warn(CacheError::Writer { source }))?;
        let open = |source| {
            warn(CacheError::Open {
                dir: settings.dir.clone(),
                source,
            })
        };
        let store = Store::open(&settings.dir, settings.max_bytes).map_err(open)?;
        let start = store.fs_now().map_err(open)?;
        let (memo, warning) = match FileMemo::load(store.memo_path(), writer.version(), start) {
            Ok(m) => (Some(m), None),
            Err(why) => {
                // Gone, so the next build starts a good one.
                let _ = std::fs::remove_file(store.memo_path());
                (None, Some(format!("the file hash memo is ignored: {why}")))
            }
        };
        Ok(LayerCache {
            store,
            writer,
            start,
            off: false,
            warning,
            memo,
        })
    }

    /// The hashes of host files known from earlier builds.
    pub fn memo(&self) -> Option<&FileMemo> {
        self.memo.as_ref().filter(|_| !self.off)
    }

    /// Stores what the memo learnt; call once, after the layers.
    pub fn finish(&mut self) {
        let saved = match &self.memo {
            Some(m) if !self.off => m.save(&self.store.tmp_dir()),
            _ => Ok(()),
        };
        if let Err(source) = saved {
            self.fail(CacheError::Write {
                dir: self.store.root().to_path_buf(),
                source,
            });
        }
    }

    /// The one warning the cache has for this build, if any.
    pub fn take_warning(&mut self) -> Option<String> {
        self.warning.take()
    }

    /// Turns the cache off for the rest of the build, with its warning.
    fn fail(&mut self, e: CacheError) {
        if !self.off {
            self.off = true;
            self.warning = self.warning.take().or(Some(format!(
                "the layer cache is ignored for this build: {e}; building without it (remove {} to clear it)",
                self.store.root().display()
            )));
        }
    }

    /// The key of `tree` written with `opts`; `None` when it has none
    /// (a host file changed under us: the layer writer will say so).
    pub fn key(&self, tree: &Tree, opts: &LayerOptions) -> Option<LayerKey> {
        if self.off {
            return None;
        }
        key::layer_key(&self.writer, tree, opts)
    }

    /// The layer `key` names, if the cache knows it and its blob is at
    /// hand: then the blob is at `dest(digest)` when this returns (linked
    /// or copied from the cache if it was not there already).
    pub fn lookup(
        &mut self,
        key: &LayerKey,
        media_type: &str,
        dest: &dyn Fn(&Digest) -> PathBuf,
    ) -> Option<LayerDigests> {
        if self.off {
            return None;
        }
        match self.try_lookup(key, media_type, dest) {
            Ok(found) => found,
            Err(e) => {
                self.fail(e);
                None
            }
        }
    }

    fn try_lookup(
        &mut self,
        key: &LayerKey,
        media_type: &str,
        dest: &dyn Fn(&Digest) -> PathBuf,
    ) -> Result<Option<LayerDigests>, CacheError> {
        let path = self.store.record_path(&key.hex());
        let bytes = match crate::bounded::read(&path, RECORD_LIMIT) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            r => r.map_err(|source| CacheError::Read {
                path: path.clone(),
                source,
            })?,
        };
        let record = match Record::parse(&bytes) {
            Ok(r) => r,
            Err(source) => {
                // Gone, so the next build records this layer afresh.
                let _ = std::fs::remove_file(&path);
                return Err(CacheError::Record { path, source });
            }
        };
        if record.version != self.writer.version() {
            return Err(CacheError::Version {
                path,
                found: record.version,
            });
        }
        if record.key != key.hex() || record.media_type != media_type {
            let _ = std::fs::remove_file(&path);
            return Err(CacheError::Key {
                path,
                key: record.key,
            });
        }
        let d = record.digests;
        let at = dest(&d.digest);
        let read = |p: &Path| {
            Store::size_of(p).map_err(|source| CacheError::Read {
                path: p.to_path_buf(),
                source,
            })
        };
        let cached = self.store.blob_path(&d.digest);
        if read(&at)? != Some(d.size) || !self.verified(&at, &d.digest) {
            // Not in the layout as it should be: from the cache, checked.
            match read(&cached)? {
                None => return Ok(None),
                Some(found) if found != d.size => {
                    let _ = std::fs::remove_file(&cached);
                    return Err(CacheError::Truncated {
                        path: cached,
                        found,
                        expected: d.size,
                    });
                }
                Some(_) => {
                    if store::link_or_copy(&cached, &at, d.size).is_err() {
                        // Evicted by another build meanwhile.
                        return Ok(None);
                    }
                    if !self.verified(&at, &d.digest) {
                        // Never again; the layer is written afresh.
                        let _ = std::fs::remove_file(&cached);
                        let _ = std::fs::remove_file(&at);
                        return Err(CacheError::Damaged {
                            path: cached,
                            digest: d.digest,
                        });
                    }
                }
            }
        }
        store::touch(&path);
        self.store.mark_used(&d.digest);
        Ok(Some(d))
    }

    /// Whether the file at `blob` holds the blob `digest` names: known from
    /// its stamp (its identity when last checked) if that still matches,
    /// else hashed, and stamped unless too fresh to be told apart later
    /// (as layer records are). A layout blob damaged in place (a disk
    /// error, a hand edit) has a new ctime, so it is hashed and refused.
    fn verified(&self, blob: &Path, digest: &Digest) -> bool {
        let Ok(m) = std::fs::metadata(blob) else {
            return false;
        };
        let id = key::identity(&m);
        let stamp = format!(
            "{digest} {} {} {} {} {}\n",
            id[0], id[1], id[2], id[3], id[4]
        );
        let stamp_path = self.store.stamp_path(blob);
        if std::fs::read_to_string(&stamp_path).is_ok_and(|s| s == stamp) {
            return true;
        }
        if !store::hash_file(blob).is_ok_and(|h| h == *digest) {
            return false;
        }
        let coarse = m.mtime_nsec() == 0 || m.ctime_nsec() == 0;
        let slack = if coarse { COARSE_SLACK_NS } else { 0 };
        if id[3].max(id[4]) + slack < self.start {
            // Best effort: without it the next build hashes again.
            let _ = self.store.write_stamp(blob, &stamp);
        }
        true
    }

    /// Records that `key`'s layer is `digests`, its blob at `blob`: the
    /// blob goes into the cache too (a hard link where it can), for builds
    /// into other layouts and archives. Returns whether it was recorded:
    /// not when a host file in the layer is too fresh to be recognised by
    /// its stamps later (it changed at or after the build's start).
    pub fn record(
        &mut self,
        key: &LayerKey,
        digests: &LayerDigests,
        media_type: &str,
        blob: &Path,
    ) -> bool {
        if self.off {
            return false;
        }
        if let Some(newest) = key.newest {
            let slack = if key.coarse { COARSE_SLACK_NS } else { 0 };
            if newest + slack >= self.start {
                return false;
            }
        }
        let record = Record {
            version: self.writer.version().to_owned(),
            key: key.hex(),
            digests: *digests,
            media_type: media_type.to_owned(),
        };
        let stored = self
            .store
            .put_blob(blob, &digests.digest, digests.size)
            .and_then(|()| self.store.write_record(&key.hex(), &record.encode()))
            .and_then(|()| self.store.evict());
        match stored {
            Ok(()) => true,
            Err(source) => {
                self.fail(CacheError::Write {
                    dir: self.store.root().to_path_buf(),
                    source,
                });
                false
            }
        }
    }
}

#[cfg(test)]
mod tests;
