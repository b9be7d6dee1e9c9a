//! The hashes a survey needs of the image's files: the md5 of each file a
//! Debian package owns (checked against its `md5sums`), the SHA-256 and
//! SHA-1 of each of the app's (the SPDX file records). A host file is read
//! once for all it needs. md5s are hashed eight files at a time, a lane of
//! `mkimage_md5` each: on the JDK tree one file at a time was 14% of a
//! cold build's CPU.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use mkimage_md5::{LANES, Lanes};
use sha1::Sha1;
use sha2::{Digest as _, Sha256};

use super::SbomError;
use super::inventory::{HashMemo, TreeFile};
use crate::rootfs::Source;

/// A file's hashes; those not asked for are zeros.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Hashes {
    pub md5: [u8; 16],
    pub sha256: [u8; 32],
    pub sha1: [u8; 20],
}

impl Hashes {
    pub(super) const LEN: usize = 16 + 32 + 20;

    pub(super) fn to_bytes(self) -> Vec<u8> {
        [&self.md5[..], &self.sha256, &self.sha1].concat()
    }

    pub(super) fn from_bytes(b: &[u8]) -> Option<Hashes> {
        if b.len() != Self::LEN {
            return None;
        }
        Some(Hashes {
            md5: b[..16].try_into().ok()?,
            sha256: b[16..48].try_into().ok()?,
            sha1: b[48..].try_into().ok()?,
        })
    }
}

/// A file to hash and what of it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Job {
    /// Its index in the survey's files.
    pub file: usize,
    pub md5: bool,
    /// SHA-256 and SHA-1.
    pub sha: bool,
}

/// A lane's read buffer: at 64 KiB, eight lanes on each of 16 threads
/// hold 8 MiB.
const PIECE: usize = 64 * 1024;

/// A file this large that needs its md5 and its SHAs is two jobs, so that
/// the md5, a chain of blocks no lane can shorten, and the SHAs run on two
/// threads. Smaller files are read once for both.
const SPLIT: u64 = 1024 * 1024;

/// Hashes the `jobs` on `threads` threads. md5s are one queue, hashed in
/// lanes, and SHAs of files that need no md5 (and of the large files'
/// split jobs) another, hashed a file at a time; half the threads start on
/// each and go on to the other when theirs is empty. Each queue is largest
/// first, so one big file (a JDK's 123 MB `lib/modules`) overlaps the
/// rest instead of leaving the other threads idle behind it. Results are
/// keyed by file, so they do not depend on which thread hashed what.
pub(super) fn hash_all(
    files: &[TreeFile],
    jobs: &[Job],
    threads: usize,
    memo: Option<&dyn HashMemo>,
) -> Result<HashMap<usize, Hashes>, SbomError> {
    let threads = threads.clamp(1, 16);
    let (mut md5s, mut shas) = (Vec::new(), Vec::new());
    for &job in jobs {
        if job.md5 && job.sha && files[job.file].size >= SPLIT {
            md5s.push(Job { sha: false, ..job });
            shas.push(Job { md5: false, ..job });
        } else if job.md5 {
            md5s.push(job);
        } else {
            shas.push(job);
        }
    }
    let queues = [Queue::new(md5s, files), Queue::new(shas, files)];
    let results: Vec<Result<Vec<(Job, Hashes)>, SbomError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let queues = &queues;
                s.spawn(move || {
                    let mut out = Vec::new();
                    for q in [t % 2, 1 - t % 2] {
                        if let Err(e) = hash_some(files, &queues[q], memo, &mut out) {
                            // The others need not hash what is lost.
                            queues.iter().for_each(Queue::close);
                            return Err(e);
                        }
                    }
                    Ok(out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(Err(SbomError::HashThread)))
            .collect()
    });
    let mut out: HashMap<usize, Hashes> = HashMap::new();
    for r in results {
        for (job, h) in r? {
            let e = out.entry(job.file).or_default();
            if job.md5 {
                e.md5 = h.md5;
            }
            if job.sha {
                (e.sha256, e.sha1) = (h.sha256, h.sha1);
            }
        }
    }
    Ok(out)
}

/// Jobs, largest file first, taken by any thread.
struct Queue {
    jobs: Vec<Job>,
    next: AtomicUsize,
}

impl Queue {
    fn new(mut jobs: Vec<Job>, files: &[TreeFile]) -> Queue {
        jobs.sort_by_key(|j| std::cmp::Reverse(files[j.file].size));
        Queue {
            jobs,
            next: AtomicUsize::new(0),
        }
    }

    fn take(&self) -> Option<Job> {
        self.jobs
            .get(self.next.fetch_add(1, Ordering::Relaxed))
            .copied()
    }

    fn close(&self) {
        self.next.store(self.jobs.len(), Ordering::Relaxed);
    }
}

/// One thread's share of `queue`: jobs until there are none, up to
/// [`LANES`] files at once being read into md5's lanes.
fn hash_some(
    files: &[TreeFile],
    queue: &Queue,
    memo: Option<&dyn HashMemo>,
    out: &mut Vec<(Job, Hashes)>,
) -> Result<(), SbomError> {
    let mut md5 = Lanes::default();
    let mut lanes: [Option<Box<Reading>>; LANES] = std::array::from_fn(|_| None);
    let mut buffers: Vec<Vec<u8>> = Vec::new();
    let mut more = true;
    loop {
        for (lane, slot) in lanes.iter_mut().enumerate() {
            while more && slot.is_none() {
                let Some(job) = queue.take() else {
                    more = false;
                    break;
                };
                match begin(&files[job.file], job, memo, &mut buffers)? {
                    Begun::Done(hashes) => out.push((job, hashes)),
                    Begun::Reading(r) => {
                        md5.start(lane);
                        *slot = Some(r);
                    }
                }
            }
        }
        if lanes.iter().all(Option::is_none) {
            return Ok(());
        }
        for (lane, slot) in lanes.iter_mut().enumerate() {
            let Some(r) = slot else { continue };
            r.fill()?;
            if r.eof && r.pending().len() < 64 {
                let md5 = md5.finish(lane, r.pending());
                if let Some(r) = slot.take() {
                    let (job, hashes, buf) = r.done(md5, memo);
                    buffers.push(buf);
                    out.push((job, hashes));
                }
            }
        }
        let data: [&[u8]; LANES] =
            std::array::from_fn(|l| lanes[l].as_deref().map_or(&[][..], Reading::pending));
        let took = md5.update(data);
        for (slot, took) in lanes.iter_mut().zip(took) {
            if let Some(r) = slot {
                r.start += took;
            }
        }
    }
}

enum Begun<'a> {
    /// Hashed at once: remembered, in memory, or no md5 wanted.
    Done(Hashes),
    /// A host file opened for md5's lanes.
    Reading(Box<Reading<'a>>),
}

fn begin<'a>(
    f: &'a TreeFile,
    job: Job,
    memo: Option<&dyn HashMemo>,
    buffers: &mut Vec<Vec<u8>>,
) -> Result<Begun<'a>, SbomError> {
    let h = match &f.source {
        Source::Bytes(b) => {
            let mut sha = job.sha.then(Sha::default);
            if let Some(s) = &mut sha {
                s.update(b);
            }
            let md5 = if job.md5 {
                mkimage_md5::digest(b)
            } else {
                [0; 16]
            };
            return Ok(Begun::Done(hashes(md5, sha)));
        }
        Source::Host(h) => h,
    };
    let io = |source| SbomError::Io {
        path: h.clone(),
        source,
    };
    let what = [u8::from(job.md5), u8::from(job.sha)];
    // A remembered file is known by a stat of its path: opening each (a
    // thousand tzdata files) was a tenth of a warm build.
    if let Some(m) = memo
        && let Ok(stat) = crate::rootfs::tree::host_stat(f.stat.as_deref(), h)
        && let Ok(known) = m.lookup(h, &stat, &what)
        && let Some(hashes) = Hashes::from_bytes(&known)
    {
        return Ok(Begun::Done(hashes));
    }
    let mut handle = File::open(h).map_err(io)?;
    // What is stored is keyed by the open file's own stamps, so a file
    // replaced since the stat above is stored as what it is.
    let key = match (memo, handle.metadata()) {
        (Some(m), Ok(stat)) => m.lookup(h, &stat, &what).err().flatten(),
        _ => None,
    };
    let mut sha = job.sha.then(Sha::default);
    if !job.md5 {
        // No lane needed: SHA-256 and SHA-1 take any piece.
        let mut buf = buffer(buffers);
        loop {
            let n = read(&mut handle, &mut buf).map_err(io)?;
            if n == 0 {
                break;
            }
            if let Some(s) = &mut sha {
                s.update(&buf[..n]);
            }
        }
        buffers.push(buf);
        let hashes = hashes([0; 16], sha);
        if let (Some(m), Some(key)) = (memo, key) {
            m.store(key, hashes.to_bytes());
        }
        return Ok(Begun::Done(hashes));
    }
    Ok(Begun::Reading(Box::new(Reading {
        job,
        path: h,
        handle,
        key,
        sha,
        buf: buffer(buffers),
        start: 0,
        end: 0,
        eof: false,
    })))
}

/// A read buffer of [`PIECE`] bytes, one done with if there is one.
fn buffer(buffers: &mut Vec<Vec<u8>>) -> Vec<u8> {
    let mut buf = buffers.pop().unwrap_or_default();
    buf.resize(PIECE, 0);
    buf
}

/// A host file being read into an md5 lane.
struct Reading<'a> {
    job: Job,
    path: &'a Path,
    handle: File,
    /// Where the memo keeps its hashes, if it may.
    key: Option<[u8; 32]>,
    sha: Option<Sha>,
    /// `buf[start..end]` is read and not yet in the md5.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
}

impl Reading<'_> {
    fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Reads until a whole block is pending or the file has ended.
    fn fill(&mut self) -> Result<(), SbomError> {
        if self.eof || self.end - self.start >= 64 {
            return Ok(());
        }
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        while self.end < 64 {
            let n = read(&mut self.handle, &mut self.buf[self.end..]).map_err(|source| {
                SbomError::Io {
                    path: self.path.to_path_buf(),
                    source,
                }
            })?;
            if n == 0 {
                self.eof = true;
                break;
            }
            if let Some(s) = &mut self.sha {
                s.update(&self.buf[self.end..self.end + n]);
            }
            self.end += n;
        }
        Ok(())
    }

    /// The job and its hashes (stored in `memo` if it may), and the
    /// buffer for the next file.
    fn done(self, md5: [u8; 16], memo: Option<&dyn HashMemo>) -> (Job, Hashes, Vec<u8>) {
        let hashes = hashes(md5, self.sha);
        if let (Some(m), Some(key)) = (memo, self.key) {
            m.store(key, hashes.to_bytes());
        }
        (self.job, hashes, self.buf)
    }
}

/// SHA-256 and SHA-1, fed together.
#[derive(Default)]
struct Sha {
    sha256: Sha256,
    sha1: Sha1,
}

impl Sha {
    fn update(&mut self, bytes: &[u8]) {
        self.sha256.update(bytes);
        self.sha1.update(bytes);
    }
}

fn hashes(md5: [u8; 16], sha: Option<Sha>) -> Hashes {
    let (sha256, sha1) = match sha {
        Some(s) => (s.sha256.finalize().into(), s.sha1.finalize().into()),
        None => ([0; 32], [0; 20]),
    };
    Hashes { md5, sha256, sha1 }
}

/// `read`, again when a signal interrupted it.
fn read(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match file.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rootfs::{ImagePath, LayerKind};
    use md5::Md5;

    /// Bytes with no pattern at block edges: a multiplicative hash of
    /// the position, different for each `seed`.
    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let at = |i: u64| {
            (i.wrapping_add(seed << 40)
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                >> 56) as u8
        };
        (0..len as u64).map(at).collect()
    }

    fn reference(bytes: &[u8], job: Job) -> Hashes {
        Hashes {
            md5: if job.md5 {
                Md5::digest(bytes).into()
            } else {
                [0; 16]
            },
            sha256: if job.sha {
                Sha256::digest(bytes).into()
            } else {
                [0; 32]
            },
            sha1: if job.sha {
                Sha1::digest(bytes).into()
            } else {
                [0; 20]
            },
        }
    }

    /// Files of every awkward size (empty, around a block, around a
    /// piece, several pieces, split), on disk and in memory, asking for
    /// each mix of hashes, on 1 to 3 threads: the same hashes as one file
    /// at a time with the RustCrypto crates.
    #[test]
    fn hashes_match_one_file_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let sizes = [
            0,
            1,
            55,
            56,
            63,
            64,
            65,
            127,
            128,
            1000,
            PIECE - 1,
            PIECE,
            PIECE + 1,
            3 * PIECE + 17,
            200_000,
            // Split into an md5 job and a SHA job when both are asked.
            SPLIT as usize + 1,
            2 * SPLIT as usize + 100,
        ];
        let mut files = Vec::new();
        let mut contents = Vec::new();
        for (i, size) in sizes.iter().chain(&sizes).enumerate() {
            let bytes = noise(*size, i as u64 + 3);
            let source = if i % 4 == 3 {
                Source::Bytes(bytes.clone().into())
            } else {
                let host = dir.path().join(format!("f{i}"));
                std::fs::write(&host, &bytes).unwrap();
                Source::Host(host)
            };
            files.push(TreeFile {
                layer: LayerKind::App,
                path: ImagePath::new(format!("/f{i}")).unwrap(),
                source,
                size: *size as u64,
                stat: None,
            });
            contents.push(bytes);
        }
        let jobs: Vec<Job> = (0..files.len())
            .map(|file| Job {
                file,
                md5: file % 3 != 2,
                sha: file % 3 != 0,
            })
            .collect();
        for threads in 1..=3 {
            let got = hash_all(&files, &jobs, threads, None).unwrap();
            assert_eq!(got.len(), jobs.len());
            for job in &jobs {
                assert_eq!(
                    got[&job.file],
                    reference(&contents[job.file], *job),
                    "file {} ({} bytes), {threads} threads",
                    job.file,
                    contents[job.file].len()
                );
            }
        }
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone");
        let files = vec![TreeFile {
            layer: LayerKind::Libs,
            path: ImagePath::new("/gone").unwrap(),
            source: Source::Host(gone.clone()),
            size: 10,
            stat: None,
        }];
        let job = Job {
            file: 0,
            md5: true,
            sha: false,
        };
        match hash_all(&files, &[job], 2, None) {
            Err(SbomError::Io { path, .. }) => assert_eq!(path, gone),
            other => panic!("{other:?}"),
        }
    }
}
