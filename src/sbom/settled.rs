//! The survey of every layer but the app's, remembered across builds. A
//! rebuild after an app change asks that question again, and on a JDK
//! answering it is half of a warm rebuild: each file matched to its
//! package through the root's links, each package's file list checked
//! against the root, its md5sums and copyright read.
//!
//! The answer is kept in the memo under a key that covers the question
//! (mkimage's version, the root, the database's stamps, and each file's
//! index, layer, image path, size and source, a host file with its
//! stamps), with the stamps of every directory the survey looked into and
//! every file it read ([`Root::consulted`]); it is taken only while each
//! still has them. A name added to a directory, removed, renamed or
//! retargeted changes the directory's stamps. Stamps too fresh to show a
//! later change ([`HashMemo::stamps`], git's racy-file rule) are never
//! kept, so neither is an answer that depends on them.

use std::collections::BTreeSet;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::SbomError;
use super::codec::{Reader, Writer};
use super::dpkg::Database;
use super::hashing::Hashes;
use super::inventory::{
    Ask, HashMemo, Part, PartDeb, TreeFile, check_packages, path_bytes, survey_part,
};
use crate::resolve::Root;
use crate::rootfs::Source;

/// Changes whenever the encoding or what the key covers does.
const FORMAT: &[u8] = b"mkimage survey of settled layers 1";

/// Surveys `ask.which` (every layer's files but the app's) as
/// [`survey_part`] and [`check_packages`] do, with the os-release of the
/// root at `dir`, answering from the memo when it holds an answer still
/// true. It reads through a [`Root`] of its own, so that it can run on a
/// thread beside the app's part, and so that what it consulted is this
/// question's alone (the build's root has also looked up the app's files,
/// whose directories change with every rebuild).
pub(super) fn survey(ask: &Ask, dir: &Path) -> Result<Part, SbomError> {
    let Ask {
        files,
        which,
        db,
        threads,
        memo,
    } = *ask;
    let mut own = Root::new(dir.to_path_buf());
    let (Some(m), Some(db)) = (memo, db) else {
        return fresh(ask, &mut own);
    };
    let Some(key) = key(files, which, dir, db, m) else {
        return fresh(ask, &mut own);
    };
    if let Some(bytes) = m.recall(&key)
        && let Some(answer) = Answer::decode(&bytes, files.len())
        && unchanged(&answer.consulted, m, threads)
    {
        return Ok(answer.part);
    }
    let part = fresh(ask, &mut own)?;
    let consulted: Option<Vec<(PathBuf, [i128; 5])>> = own
        .consulted()
        .into_iter()
        .map(|path| {
            let stamps = stamps_of(&path, m)?;
            Some((path, stamps))
        })
        .collect();
    if let Some(consulted) = consulted {
        let answer = Answer { consulted, part };
        m.remember(key, answer.encode());
        return Ok(answer.part);
    }
    Ok(part)
}

/// The part worked out, every package in it checked.
fn fresh(ask: &Ask, root: &mut Root) -> Result<Part, SbomError> {
    let mut part = survey_part(ask, root, true)?;
    if let Some(db) = ask.db {
        check_packages(&mut part, db, root, &BTreeSet::new())?;
    }
    Ok(part)
}

/// Whether every path still has its stamps, asked on `threads` threads:
/// a JDK's survey consults ~1,500 paths, and a stat of a long path is
/// a few microseconds.
fn unchanged(consulted: &[(PathBuf, [i128; 5])], memo: &dyn HashMemo, threads: usize) -> bool {
    let same = |part: &[(PathBuf, [i128; 5])]| {
        part.iter()
            .all(|(path, stamps)| stamps_of(path, memo) == Some(*stamps))
    };
    let per = consulted.len().div_ceil(threads.clamp(1, 8)).max(256);
    std::thread::scope(|s| {
        let others: Vec<_> = consulted
            .chunks(per)
            .skip(1)
            .map(|part| s.spawn(move || same(part)))
            .collect();
        let first = same(consulted.chunks(per).next().unwrap_or_default());
        // A thread that panicked answers no.
        others.into_iter().all(|h| h.join().unwrap_or(false)) && first
    })
}

/// The stamps of the file at `path` itself (a link is not followed: the
/// root follows links itself), when old enough to be kept.
fn stamps_of(path: &Path, memo: &dyn HashMemo) -> Option<[i128; 5]> {
    memo.stamps(&std::fs::symlink_metadata(path).ok()?)
}

/// What the answer is remembered under; `None` when a stamp it needs is
/// too fresh.
fn key(
    files: &[TreeFile],
    which: &[usize],
    root: &Path,
    db: &Database,
    memo: &dyn HashMemo,
) -> Option<[u8; 32]> {
    let mut h = Sha256::new();
    let mut field = |b: &[u8]| {
        h.update((b.len() as u64).to_le_bytes());
        h.update(b);
    };
    field(FORMAT);
    field(env!("CARGO_PKG_VERSION").as_bytes());
    field(root.as_os_str().as_bytes());
    db.identity(&mut field, memo)?;
    for &i in which {
        let f = files.get(i)?;
        field(&(i as u64).to_le_bytes());
        field(f.layer.name().as_bytes());
        field(path_bytes(&f.path));
        field(&f.size.to_le_bytes());
        match &f.source {
            Source::Host(host) => {
                field(b"host");
                field(host.as_os_str().as_bytes());
                let stat = crate::rootfs::tree::host_stat(f.stat.as_deref(), host).ok()?;
                for n in memo.stamps(&stat)? {
                    field(&n.to_le_bytes());
                }
            }
            Source::Bytes(bytes) => {
                field(b"bytes");
                field(&Sha256::digest(bytes));
            }
        }
    }
    Some(h.finalize().into())
}

/// An answer as remembered.
#[derive(Debug, PartialEq)]
struct Answer {
    /// Host paths and their stamps when the answer was found.
    consulted: Vec<(PathBuf, [i128; 5])>,
    part: Part,
}

impl Answer {
    /// Length-prefixed fields, counts before lists.
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.count(self.consulted.len());
        for (path, stamps) in &self.consulted {
            w.field(path.as_os_str().as_bytes());
            let bytes: Vec<u8> = stamps.iter().flat_map(|n| n.to_le_bytes()).collect();
            w.field(&bytes);
        }
        w.optional(self.part.os.as_deref());
        w.count(self.part.debs.len());
        for (key, deb) in &self.part.debs {
            w.field(key.as_bytes());
            w.optional(deb.license.as_deref().map(str::as_bytes));
            w.count(deb.files.len());
            for (i, md5) in &deb.files {
                w.count(*i);
                w.field(md5);
            }
        }
        w.count(self.part.app.len());
        for (i, hashes, deb) in &self.part.app {
            w.count(*i);
            w.field(&hashes.to_bytes());
            w.optional(deb.as_deref().map(str::as_bytes));
        }
        w.count(self.part.warnings.len());
        for warning in &self.part.warnings {
            w.field(warning.as_bytes());
        }
        w.into_bytes()
    }

    /// `None` unless `bytes` is an encoding whole, naming files below
    /// `files`.
    fn decode(bytes: &[u8], files: usize) -> Option<Answer> {
        let mut r = Reader::new(bytes);
        let index = |i: usize| (i < files).then_some(i);
        let mut consulted = Vec::new();
        for _ in 0..r.count()? {
            let path = PathBuf::from(std::ffi::OsString::from_vec(r.field()?.to_vec()));
            let mut stamps = [0i128; 5];
            let raw = r.field()?;
            if raw.len() != 16 * stamps.len() {
                return None;
            }
            for (n, b) in stamps.iter_mut().zip(raw.chunks_exact(16)) {
                *n = i128::from_le_bytes(b.try_into().ok()?);
            }
            consulted.push((path, stamps));
        }
        let mut part = Part {
            os: r.optional()?.map(<[u8]>::to_vec),
            ..Part::default()
        };
        for _ in 0..r.count()? {
            let key = r.text()?;
            let mut deb = PartDeb {
                license: r
                    .optional()?
                    .map(|b| String::from_utf8(b.to_vec()))
                    .transpose()
                    .ok()?,
                files: Vec::new(),
            };
            for _ in 0..r.count()? {
                let i = index(r.count()?)?;
                deb.files.push((i, r.field()?.try_into().ok()?));
            }
            part.debs.insert(key, deb);
        }
        for _ in 0..r.count()? {
            let i = index(r.count()?)?;
            let hashes = Hashes::from_bytes(r.field()?)?;
            let deb = r
                .optional()?
                .map(|b| String::from_utf8(b.to_vec()))
                .transpose()
                .ok()?;
            part.app.push((i, hashes, deb));
        }
        for _ in 0..r.count()? {
            part.warnings.push(r.text()?);
        }
        r.is_done().then_some(Answer { consulted, part })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_decodes_to_itself_and_damage_to_nothing() {
        let mut part = Part {
            os: Some(b"ID=debian\n".to_vec()),
            warnings: vec!["w".into()],
            ..Part::default()
        };
        part.debs.insert(
            "libc6:amd64".into(),
            PartDeb {
                files: vec![(0, [1; 16]), (2, [2; 16])],
                license: Some("LGPL-2.1-or-later".into()),
            },
        );
        part.debs.insert("tzdata".into(), PartDeb::default());
        let answer = Answer {
            consulted: vec![(PathBuf::from("/usr/lib"), [1, 2, 3, -4, i128::MAX])],
            part,
        };
        let bytes = answer.encode();
        assert_eq!(Answer::decode(&bytes, 3), Some(answer));
        // A file index past the list, a cut, a byte more: not an answer.
        assert_eq!(Answer::decode(&bytes, 2), None);
        for len in 0..bytes.len() {
            assert_eq!(Answer::decode(&bytes[..len], 3), None, "cut at {len}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(Answer::decode(&longer, 3), None);
    }
}
