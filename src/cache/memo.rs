//! Hashes of host files remembered across builds (the SBOM survey's md5,
//! sha256 and sha1 of every packaged file: on the JDK, most of a warm
//! rebuild's time), keyed as the layer key knows a host file (path,
//! device, inode, size, mtime, ctime) and refused for files too fresh to
//! be told apart later, as layer records are.
//!
//! One file, `layers-v1/hashes`: a header line, then entries of a 32-byte
//! key, a length byte and the value, then the sha256 of all before it.
//! Rewritten (through a temporary file and a rename) only when a build
//! learnt something; at most [`MAX_ENTRIES`] are kept, this build's first.
//!
//! Larger answers (the dpkg file-list lines a survey needs) are kept one a
//! file in `layers-v1/results/`, named by the key their asker computed,
//! their bytes followed by their sha256; at most [`MAX_RESULTS`], the
//! least recently used removed first.

use std::collections::{HashMap, HashSet};
use std::fs::{File, Metadata};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest as _, Sha256};

use super::key::FORMAT;

const MAGIC: &[u8] = b"mkimage file hashes v";
/// About 7 MB of entries: the packaged files of many images.
const MAX_ENTRIES: usize = 100_000;
/// Larger than [`MAX_ENTRIES`] entries can be.
const FILE_LIMIT: u64 = 32 << 20;
/// Result files kept: one per root and set of file names asked about.
const MAX_RESULTS: usize = 64;
/// A result larger than this is not kept (nor read back).
const RESULT_LIMIT: usize = 16 << 20;

type Key = [u8; 32];

pub struct FileMemo {
    path: PathBuf,
    version: &'static str,
    /// The file system's clock at the build's start (see `LayerCache`).
    start: i128,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    known: HashMap<Key, Vec<u8>>,
    used: HashSet<Key>,
    learnt: HashMap<Key, Vec<u8>>,
    /// Results to write at [`FileMemo::save`].
    results: HashMap<Key, Vec<u8>>,
}

impl FileMemo {
    /// Reads the memo at `path` (none yet is an empty one); an error
    /// says why it cannot be trusted.
    pub(super) fn load(
        path: PathBuf,
        version: &'static str,
        start: i128,
    ) -> Result<FileMemo, String> {
        let known = match crate::bounded::read(&path, FILE_LIMIT) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => HashMap::new(),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
            Ok(bytes) => parse(&bytes)
                .ok_or_else(|| format!("{} is not a valid hash memo", path.display()))?,
        };
        Ok(FileMemo {
            path,
            version,
            start,
            state: Mutex::new(State {
                known,
                ..State::default()
            }),
        })
    }

    /// What was stored for `what` of `host`, whose metadata is `m`; else
    /// the key to store it under, or `None` if the file is too fresh to
    /// store.
    pub fn lookup(&self, host: &Path, m: &Metadata, what: &[u8]) -> Result<Vec<u8>, Option<Key>> {
        let mut h = Sha256::new();
        for field in [
            b"mkimage file hash".as_slice(),
            &FORMAT.to_le_bytes(),
            self.version.as_bytes(),
            host.as_os_str().as_bytes(),
            what,
        ] {
            h.update((field.len() as u64).to_le_bytes());
            h.update(field);
        }
        for n in super::key::identity(m) {
            h.update(n.to_le_bytes());
        }
        let key: Key = h.finalize().into();
        let mut state = self.state.lock().map_err(|_| None)?;
        if let Some(v) = state.known.get(&key).cloned() {
            state.used.insert(key);
            return Ok(v);
        }
        match self.stamps(m) {
            Some(_) => Err(Some(key)),
            None => Err(None),
        }
    }

    /// The identity the layer key knows a file by (device, inode, size,
    /// mtime, ctime: `key::identity`), when the file is old enough
    /// (stamped before this build started, by more than the granule of
    /// coarse stamps) that a later change to it must show in them: git's
    /// racy-file rule. `None` for a file too fresh to be told apart later.
    pub fn stamps(&self, m: &std::fs::Metadata) -> Option<[i128; 5]> {
        let id = super::key::identity(m);
        let coarse = m.mtime_nsec() == 0 || m.ctime_nsec() == 0;
        let slack = if coarse { super::COARSE_SLACK_NS } else { 0 };
        (id[3].max(id[4]) + slack < self.start).then_some(id)
    }

    /// The result an earlier build remembered under `key`, if it is
    /// there whole. The asker's key must cover all the result depends on.
    pub fn recall(&self, key: &Key) -> Option<Vec<u8>> {
        let path = self.results_dir().join(crate::digest::hex(key));
        let mut bytes = crate::bounded::read(&path, RESULT_LIMIT as u64 + 32).ok()?;
        let split = bytes.len().checked_sub(32)?;
        if Sha256::digest(&bytes[..split]).as_slice() != &bytes[split..] {
            let _ = std::fs::remove_file(&path);
            return None;
        }
        bytes.truncate(split);
        // Its mtime says when it was last used, for eviction.
        if let Ok(f) = File::options().append(true).open(&path) {
            let _ = f.set_modified(std::time::SystemTime::now());
        }
        Some(bytes)
    }

    /// Keeps `value` under `key` for later builds (written by `save`).
    pub fn remember(&self, key: Key, value: Vec<u8>) {
        if value.len() <= RESULT_LIMIT
            && let Ok(mut state) = self.state.lock()
        {
            state.results.insert(key, value);
        }
    }

    fn results_dir(&self) -> PathBuf {
        self.path.with_file_name("results")
    }

    /// Writes the results learnt, then trims the oldest beyond the cap.
    fn save_results(&self, tmp_dir: &Path, results: &HashMap<Key, Vec<u8>>) -> io::Result<()> {
        if results.is_empty() {
            return Ok(());
        }
        let dir = self.results_dir();
        std::fs::create_dir_all(&dir)?;
        for (key, value) in results {
            let check: [u8; 32] = Sha256::digest(value).into();
            let bytes = [value.as_slice(), &check].concat();
            super::store::write_atomic(tmp_dir, &dir.join(crate::digest::hex(key)), &bytes)?;
        }
        let mut all: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&dir)?
            .filter_map(|e| {
                let e = e.ok()?;
                Some((e.metadata().ok()?.modified().ok()?, e.path()))
            })
            .collect();
        if all.len() > MAX_RESULTS {
            all.sort();
            for (_, old) in &all[..all.len() - MAX_RESULTS] {
                let _ = std::fs::remove_file(old);
            }
        }
        Ok(())
    }

    pub fn store(&self, key: Key, value: Vec<u8>) {
        if value.len() <= usize::from(u8::MAX)
            && let Ok(mut state) = self.state.lock()
        {
            state.learnt.insert(key, value);
        }
    }

    /// Writes the memo back if this build learnt anything.
    pub(super) fn save(&self, tmp_dir: &Path) -> io::Result<()> {
        let state = self
            .state
            .lock()
            .map_err(|_| io::Error::other("a hashing thread panicked"))?;
        self.save_results(tmp_dir, &state.results)?;
        if state.learnt.is_empty() {
            return Ok(());
        }
        // This build's entries first, then the others, up to the cap.
        let mut keep: Vec<(&Key, &Vec<u8>)> = state.learnt.iter().collect();
        keep.extend(state.known.iter().filter(|(k, _)| state.used.contains(*k)));
        keep.extend(
            state
                .known
                .iter()
                .filter(|(k, _)| !state.used.contains(*k) && !state.learnt.contains_key(*k)),
        );
        keep.truncate(MAX_ENTRIES);
        let mut out = Vec::with_capacity(keep.len() * 70 + 64);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(format!("{FORMAT}\n").as_bytes());
        for (k, v) in keep {
            out.extend_from_slice(k);
            out.push(v.len() as u8);
            out.extend_from_slice(v);
        }
        let check: [u8; 32] = Sha256::digest(&out).into();
        out.extend_from_slice(&check);
        super::store::write_atomic(tmp_dir, &self.path, &out)
    }
}

fn parse(bytes: &[u8]) -> Option<HashMap<Key, Vec<u8>>> {
    let header = [MAGIC, format!("{FORMAT}\n").as_bytes()].concat();
    let body = bytes.strip_prefix(header.as_slice())?;
    let split = bytes.len().checked_sub(32)?;
    if split < header.len() {
        return None;
    }
    let (all, check) = bytes.split_at(split);
    if Sha256::digest(all).as_slice() != check {
        return None;
    }
    let mut rest = &body[..body.len() - 32];
    let mut out = HashMap::new();
    while !rest.is_empty() {
        let key: Key = rest.get(..32)?.try_into().ok()?;
        let len = usize::from(*rest.get(32)?);
        let value = rest.get(33..33 + len)?.to_vec();
        out.insert(key, value);
        rest = &rest[33 + len..];
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn remembers_old_files_and_refuses_fresh_ones() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("f");
        std::fs::write(&host, b"data").unwrap();
        std::thread::sleep(Duration::from_millis(30));
        let now = super::super::store::ns_since_epoch(std::time::SystemTime::now()).unwrap();
        let path = dir.path().join("hashes");
        let memo = FileMemo::load(path.clone(), "1", now).unwrap();
        let f = File::open(&host).unwrap();
        let key = memo
            .lookup(&host, &f.metadata().unwrap(), b"x")
            .unwrap_err()
            .unwrap();
        memo.store(key, b"hashes".to_vec());
        memo.save(dir.path()).unwrap();

        let again = FileMemo::load(path.clone(), "1", now).unwrap();
        assert_eq!(
            again.lookup(&host, &f.metadata().unwrap(), b"x"),
            Ok(b"hashes".to_vec())
        );
        // Another question, another version: not known.
        assert!(again.lookup(&host, &f.metadata().unwrap(), b"y").is_err());
        let other = FileMemo::load(path.clone(), "2", now).unwrap();
        assert!(other.lookup(&host, &f.metadata().unwrap(), b"x").is_err());
        // A file stamped after the start is never stored.
        let early = FileMemo::load(path.clone(), "1", now - 10_000_000_000).unwrap();
        assert_eq!(early.lookup(&host, &f.metadata().unwrap(), b"z"), Err(None));

        // Any damage to the file makes it untrusted.
        let good = std::fs::read(&path).unwrap();
        for i in [0, good.len() / 2, good.len() - 1] {
            let mut bad = good.clone();
            bad[i] ^= 1;
            std::fs::write(&path, &bad).unwrap();
            assert!(FileMemo::load(path.clone(), "1", now).is_err(), "byte {i}");
        }
        std::fs::write(&path, &good[..good.len() - 1]).unwrap();
        assert!(FileMemo::load(path, "1", now).is_err());
    }

    #[test]
    fn results_survive_builds_and_damage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hashes");
        let memo = FileMemo::load(path.clone(), "1", 0).unwrap();
        assert_eq!(memo.recall(&[1; 32]), None);
        memo.remember([1; 32], b"answer".to_vec());
        memo.save(dir.path()).unwrap();
        let again = FileMemo::load(path.clone(), "1", 0).unwrap();
        assert_eq!(again.recall(&[1; 32]), Some(b"answer".to_vec()));
        assert_eq!(again.recall(&[2; 32]), None);

        let file = dir
            .path()
            .join("results")
            .join(crate::digest::hex(&[1; 32]));
        let mut bad = std::fs::read(&file).unwrap();
        bad[0] ^= 1;
        std::fs::write(&file, &bad).unwrap();
        assert_eq!(again.recall(&[1; 32]), None);
        // Removed, so the next build computes and keeps it again.
        assert!(!file.exists());

        // At most MAX_RESULTS files are kept.
        for i in 0..=MAX_RESULTS as u8 {
            again.remember([i; 32], vec![i]);
        }
        again.save(dir.path()).unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path().join("results"))
                .unwrap()
                .count(),
            MAX_RESULTS
        );
    }
}
