//! The compression stage of a layer: the tar stream goes in, gzip comes
//! out, compressed on several threads but byte-identical at any count.
//!
//! The stream is a multi-member gzip (RFC 1952 section 2.2: "a gzip file
//! consists of a series of members"): each 1 MiB chunk is its own member,
//! written whole by libdeflate. Every runtime and registry client reads
//! multi-member gzip (Go's gzip.Reader does by default; so do gzip(1),
//! GNU tar and Python); readers built on flate2 need `MultiGzDecoder`.
//!
//! A chunk whose bytes are already close to uniform (jars, jmods, archives,
//! images: data compressed before) is deflated at level 1 whatever the
//! level asked for. Measured on the JDK, whose jmods are such data: the
//! higher level saves 0.1% of their size for 30% more of their CPU. The
//! test is integer arithmetic on the chunk's bytes, so it decides the same
//! on every machine.
//!
//! ```text
//!            chunks               members, any order
//! write() ──────────► workers ─────────────────────► write() puts them
//!                     (threads)                      back in chunk order
//! ```
//!
//! The calling thread cuts chunks, hands them out and writes finished
//! members to the sink in chunk order, so the sink stays on one thread. At
//! most `2 * threads` chunks are in flight, so memory is bounded whatever
//! the stream's length. The workers live in the caller's scope, which joins
//! them.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Write};
use std::num::NonZeroUsize;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{Builder, Scope};

use libdeflater::{CompressionLvl, Compressor};

use super::LayerError;

/// Input is cut into chunks of this size, each compressed on its own into
/// one gzip member. The cut points depend only on this constant and the
/// stream's length, never on the thread count or on how callers write,
/// which is what makes the output reproducible. 1 MiB keeps the ratio
/// within 0.1% of one stream.
const CHUNK_SIZE: usize = 1024 * 1024;

/// A gzip level: libdeflate's 1 (fastest) to 12 (smallest). The level is
/// part of what makes a digest: changing it changes every layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Level(u8);

impl Level {
    /// libdeflate's (and zlib's) usual 6.
    pub const DEFAULT: Level = Level(6);
    /// What data compressed before gets.
    const FASTEST: Level = Level(1);
    const MAX: u32 = 12;

    /// `None` outside 1..=12.
    pub fn new(level: u32) -> Option<Level> {
        (1..=Self::MAX)
            .contains(&level)
            .then_some(Level(level as u8))
    }

    /// For clap: `--compression-level 1-12`.
    pub fn parse(s: &str) -> Result<Level, String> {
        s.parse::<u32>()
            .ok()
            .and_then(Level::new)
            .ok_or_else(|| format!("{s} is not a level from 1 to {}", Self::MAX))
    }

    pub fn get(self) -> u32 {
        u32::from(self.0)
    }

    fn compressor(self) -> Compressor {
        // 1..=12 is exactly libdeflate's range, which is all `new` rejects.
        let lvl = CompressionLvl::new(i32::from(self.0)).unwrap_or_default();
        Compressor::new(lvl)
    }
}

impl Default for Level {
    fn default() -> Self {
        Level::DEFAULT
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// True when the chunk's bytes are so close to uniform that deflate can
/// gain next to nothing: their collision entropy (Rényi order 2) is at
/// least 7.9 bits a byte, that is `256 * sum(count²) <= 2^0.1 * n²`.
/// Collision entropy never exceeds Shannon entropy, so the test errs
/// towards compressing. Chunks shorter than a page never pass it: too
/// few bytes to tell.
fn looks_compressed(chunk: &[u8]) -> bool {
    if chunk.len() < 4096 {
        return false;
    }
    // Four tables break the dependency between neighbouring bytes.
    let mut counts = [[0u32; 256]; 4];
    let mut quads = chunk.chunks_exact(4);
    for q in &mut quads {
        for (table, &b) in counts.iter_mut().zip(q) {
            table[usize::from(b)] += 1;
        }
    }
    for &b in quads.remainder() {
        counts[0][usize::from(b)] += 1;
    }
    let sum_sq: u128 = (0..256)
        .map(|i| {
            let c = counts.iter().map(|t| u128::from(t[i])).sum::<u128>();
            c * c
        })
        .sum();
    let n = chunk.len() as u128;
    // 2^0.1 = 1.0718 (rounded up: a shade more chunks pass).
    sum_sq * 256 * 10_000 <= n * n * 10_718
}

/// A chunk handed to a worker, with a buffer for its member.
struct Job {
    index: u64,
    data: Vec<u8>,
    member: Vec<u8>,
}

/// A worker's answer: the member, or why there is none. The chunk's
/// buffer comes back for reuse.
struct Done {
    index: u64,
    data: Vec<u8>,
    member: io::Result<Vec<u8>>,
}

/// A parallel multi-member gzip writer. Each member header is libdeflate's
/// fixed one (no name, mtime 0, OS byte 255 "unknown"), so nothing about
/// the build host leaks into the blob.
pub struct ParGzip<W: Write> {
    /// `None` once finished.
    out: Option<W>,
    /// The chunk being filled.
    chunk: Vec<u8>,
    /// `None` once finished or failed: dropping it lets the workers end.
    jobs: Option<Sender<Job>>,
    done: Receiver<Done>,
    /// Members that arrived before the ones in front of them.
    ready: BTreeMap<u64, Vec<u8>>,
    /// Chunks handed out, and members written: their difference is what
    /// is in flight.
    sent: u64,
    written: u64,
    max_in_flight: u64,
    /// Buffers back from the workers and the sink, for the next chunks.
    spare: Vec<Vec<u8>>,
    failed: bool,
}

impl<W: Write> ParGzip<W> {
    pub fn new<'scope>(
        out: W,
        threads: NonZeroUsize,
        level: Level,
        scope: &'scope Scope<'scope, '_>,
    ) -> Result<Self, LayerError> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (done_tx, done) = mpsc::channel();
        // std's receiver has one owner; the workers take turns on it. A
        // chunk takes milliseconds, so the lock is never contended long.
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads.get() {
            let (queue, done_tx) = (Arc::clone(&queue), done_tx.clone());
            Builder::new()
                .name(format!("gzip-{i}"))
                .spawn_scoped(scope, move || work(&queue, &done_tx, level))
                .map_err(|source| LayerError::Threads { source })?;
        }
        Ok(ParGzip {
            out: Some(out),
            chunk: Vec::with_capacity(CHUNK_SIZE),
            jobs: Some(jobs),
            done,
            ready: BTreeMap::new(),
            sent: 0,
            written: 0,
            max_in_flight: 2 * threads.get() as u64,
            spare: Vec::new(),
            failed: false,
        })
    }

    /// Compresses what is buffered, writes the last members, lets the
    /// workers end and returns the sink.
    pub fn finish(mut self) -> Result<W, LayerError> {
        let result = (|| {
            self.check()?;
            // A stream with no bytes still needs one (empty) member: an
            // empty file is not gzip.
            if !self.chunk.is_empty() || self.sent == 0 {
                self.send_chunk()?;
            }
            self.jobs = None;
            while self.written < self.sent {
                self.collect(true)?;
            }
            Ok(())
        })();
        result.map_err(|source| LayerError::Write { source })?;
        self.out.take().ok_or_else(|| LayerError::Write {
            source: failed_earlier(),
        })
    }

    fn check(&self) -> io::Result<()> {
        if self.failed || self.out.is_none() {
            Err(failed_earlier())
        } else {
            Ok(())
        }
    }

    /// Hands the full (or last) chunk to a worker, writes what is ready,
    /// and waits while too much is in flight.
    fn send_chunk(&mut self) -> io::Result<()> {
        let next = self.spare.pop().unwrap_or_default();
        let data = std::mem::replace(&mut self.chunk, next);
        let member = self.spare.pop().unwrap_or_default();
        let job = Job {
            index: self.sent,
            data,
            member,
        };
        self.jobs
            .as_ref()
            .and_then(|jobs| jobs.send(job).ok())
            .ok_or_else(workers_gone)?;
        self.sent += 1;
        self.collect(false)?;
        while self.sent - self.written > self.max_in_flight {
            self.collect(true)?;
        }
        Ok(())
    }

    /// Takes the members that have arrived (waiting for one if `block`)
    /// and writes those that are next in order.
    fn collect(&mut self, block: bool) -> io::Result<()> {
        if block {
            let done = self.done.recv().map_err(|_| workers_gone())?;
            self.arrived(done)?;
        }
        while let Ok(done) = self.done.try_recv() {
            self.arrived(done)?;
        }
        while let Some(member) = self.ready.remove(&self.written) {
            let out = self.out.as_mut().ok_or_else(failed_earlier)?;
            out.write_all(&member)?;
            self.written += 1;
            self.recycle(member);
        }
        Ok(())
    }

    fn arrived(&mut self, done: Done) -> io::Result<()> {
        self.recycle(done.data);
        self.ready.insert(done.index, done.member?);
        Ok(())
    }

    fn recycle(&mut self, mut buffer: Vec<u8>) {
        buffer.clear();
        self.spare.push(buffer);
    }
}

/// A worker: compresses chunks until the queue closes or nobody listens.
fn work(queue: &Mutex<Receiver<Job>>, done: &Sender<Done>, level: Level) {
    let mut asked = level.compressor();
    let mut fastest = Level::FASTEST.compressor();
    loop {
        // A poisoned lock means another worker panicked; the scope will
        // report that panic.
        let job = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok(Job {
            index,
            data,
            mut member,
        }) = job
        else {
            return;
        };
        let compressor = if looks_compressed(&data) {
            &mut fastest
        } else {
            &mut asked
        };
        member.resize(compressor.gzip_compress_bound(data.len()), 0);
        let member = match compressor.gzip_compress(&data, &mut member) {
            Ok(len) => {
                member.truncate(len);
                Ok(member)
            }
            // Cannot happen: the buffer has libdeflate's own bound.
            Err(e) => Err(io::Error::other(format!("libdeflate: {e:?}"))),
        };
        if done
            .send(Done {
                index,
                data,
                member,
            })
            .is_err()
        {
            return;
        }
    }
}

impl<W: Write> Write for ParGzip<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.check()?;
        let n = buf.len().min(CHUNK_SIZE - self.chunk.len());
        self.chunk.extend_from_slice(&buf[..n]);
        if self.chunk.len() == CHUNK_SIZE
            && let Err(e) = self.send_chunk()
        {
            // Later calls report that this one failed; the workers end.
            self.failed = true;
            self.jobs = None;
            return Err(e);
        }
        Ok(n)
    }

    /// Deliberately does nothing: flushing early would end a chunk early,
    /// so chunk boundaries (and the output) would depend on when callers
    /// flush. `finish` is the only flush.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn failed_earlier() -> io::Error {
    io::Error::other("the gzip stream failed earlier")
}

fn workers_gone() -> io::Error {
    io::Error::other("the compression threads stopped")
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use flate2::read::MultiGzDecoder;

    use super::*;

    fn threads(n: usize) -> NonZeroUsize {
        NonZeroUsize::new(n).unwrap()
    }

    fn compress_at(data: &[u8], threads_: usize, write_size: usize, level: Level) -> Vec<u8> {
        std::thread::scope(|scope| {
            let mut z = ParGzip::new(Vec::new(), threads(threads_), level, scope).unwrap();
            for piece in data.chunks(write_size) {
                z.write_all(piece).unwrap();
                // Flushing must not move chunk boundaries.
                z.flush().unwrap();
            }
            z.finish().unwrap()
        })
    }

    fn compress(data: &[u8], threads: usize, write_size: usize) -> Vec<u8> {
        compress_at(data, threads, write_size, Level::DEFAULT)
    }

    fn gunzip(blob: &[u8]) -> Vec<u8> {
        let mut decoded = Vec::new();
        MultiGzDecoder::new(blob).read_to_end(&mut decoded).unwrap();
        decoded
    }

    /// Compressible but not trivial: text-like, with long-range repeats.
    fn sample(len: usize) -> Vec<u8> {
        let mut x: u32 = 0x1234_5678;
        (0..len)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                if i % 7 == 0 {
                    b"abcdefgh"[(x % 8) as usize]
                } else {
                    b'a' + (i % 23) as u8
                }
            })
            .collect()
    }

    /// Uniform bytes, like data compressed before.
    fn noise(len: usize) -> Vec<u8> {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect()
    }

    #[test]
    fn identical_at_any_thread_count_and_decodes() {
        // Empty, one partial chunk, exactly one chunk, several chunks plus a
        // tail (one of them noise): every shape of the last chunk.
        let mixed = [sample(3 * CHUNK_SIZE), noise(CHUNK_SIZE), sample(777)].concat();
        for data in [
            Vec::new(),
            sample(1000),
            sample(CHUNK_SIZE),
            sample(CHUNK_SIZE + 1),
            mixed,
        ] {
            let len = data.len();
            let one = compress(&data, 1, 4096);
            for (threads, write_size) in [(1, 1 << 20), (2, 511), (4, 4096), (4, 3 << 20)] {
                assert!(
                    compress(&data, threads, write_size) == one,
                    "len {len}, {threads} threads, writes of {write_size}"
                );
            }
            assert!(gunzip(&one) == data, "len {len}");
        }
    }

    /// With zlib-rs 0.6 as a backend, a compressor reused after reset()
    /// encoded some chunks of real machine code differently from a fresh
    /// one, so the output depended on which thread took which chunk. Kept
    /// for any backend: real binaries, compressed by reused compressors.
    #[test]
    fn identical_on_real_binaries_at_any_thread_count() {
        let mut data = Vec::new();
        for f in [
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
            "/usr/lib/x86_64-linux-gnu/libcrypto.so.3",
        ] {
            data.extend(std::fs::read(f).unwrap());
        }
        let one = compress(&data, 1, 1 << 20);
        for threads in [2, 3, 4, 2] {
            assert!(
                compress(&data, threads, 1 << 16) == one,
                "{threads} threads differ from 1"
            );
        }
    }

    #[test]
    fn levels_trade_size_for_speed_and_all_decode() {
        let data = sample(3 * CHUNK_SIZE);
        let (fast, small) = (
            compress_at(&data, 2, 1 << 16, Level::FASTEST),
            compress_at(&data, 2, 1 << 16, Level::new(12).unwrap()),
        );
        assert!(
            small.len() < fast.len(),
            "{} vs {}",
            small.len(),
            fast.len()
        );
        for blob in [fast, small] {
            assert!(gunzip(&blob) == data);
        }
    }

    /// Noise is deflated at level 1 whatever the level: the same member
    /// at 6 and 12. Text is not.
    #[test]
    fn compressed_data_gets_the_fastest_level() {
        let data = noise(CHUNK_SIZE);
        assert!(looks_compressed(&data));
        let at = |level| compress_at(&data, 1, CHUNK_SIZE, Level::new(level).unwrap());
        assert!(at(6) == at(12) && at(6) == at(1));
        // XFL 4: "compressor used fastest algorithm".
        assert_eq!(at(6)[8], 4);

        let text = sample(CHUNK_SIZE);
        assert!(!looks_compressed(&text));
        assert!(compress_at(&text, 1, CHUNK_SIZE, Level::new(12).unwrap())[8] == 2);
    }

    #[test]
    fn what_looks_compressed() {
        // Real compressed data: libc, gzipped.
        let libc = std::fs::read("/usr/lib/x86_64-linux-gnu/libc.so.6").unwrap();
        let gz = compress(&libc, 1, 1 << 16);
        assert!(looks_compressed(&gz[..gz.len().min(CHUNK_SIZE)]));
        assert!(!looks_compressed(&libc[..CHUNK_SIZE]));
        // Short inputs never do: too few bytes to be near uniform.
        assert!(!looks_compressed(&noise(64)));
        assert!(!looks_compressed(b""));
        // Every byte value equally often is as uniform as it gets.
        let all: Vec<u8> = (0..=255).cycle().take(4096).collect();
        assert!(looks_compressed(&all));
        assert!(!looks_compressed(&vec![7; 4096]));
    }

    #[test]
    fn header_is_fixed() {
        let out = compress(b"hello", 2, 5);
        // magic, CM=deflate, FLG=0 (no name or comment), MTIME=0, XFL=0
        // (level 6: neither fastest nor slowest), OS=255 (unknown).
        // RFC 1952 section 2.3.
        assert_eq!(out[..10], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
    }

    #[test]
    fn level_bounds() {
        assert_eq!(Level::new(0), None);
        assert_eq!(Level::new(13), None);
        assert_eq!(Level::new(12).map(Level::get), Some(12));
        assert_eq!(Level::parse("1"), Ok(Level::FASTEST));
        assert_eq!(
            Level::parse("13").unwrap_err(),
            "13 is not a level from 1 to 12"
        );
        assert!(Level::parse("six").is_err());
        assert_eq!(Level::DEFAULT.to_string(), "6");
    }

    /// A sink that fails: its error comes back from `write` or `finish`
    /// (which one depends on thread timing), and later calls say the
    /// stream failed earlier.
    #[test]
    fn sink_error_is_reported() {
        #[derive(Debug)]
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::BrokenPipe, "gone"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let data = sample(8 * CHUNK_SIZE);
        let first = std::thread::scope(|scope| {
            let mut z = ParGzip::new(Broken, threads(2), Level::DEFAULT, scope).unwrap();
            for piece in data.chunks(1000) {
                if let Err(e) = z.write_all(piece) {
                    let again = z.write_all(&data).unwrap_err();
                    assert_eq!(again.to_string(), "the gzip stream failed earlier");
                    assert!(matches!(z.finish(), Err(LayerError::Write { .. })));
                    return e;
                }
            }
            match z.finish() {
                Err(LayerError::Write { source }) => source,
                other => panic!("expected a write error, got {other:?}"),
            }
        });
        assert_eq!(first.kind(), io::ErrorKind::BrokenPipe, "{first:?}");
        assert_eq!(first.to_string(), "gone");
    }

    /// Dropped half-way (an error elsewhere in the pipeline): the workers
    /// end and the scope returns.
    #[test]
    fn dropped_mid_stream_ends_the_workers() {
        let data = sample(5 * CHUNK_SIZE + 3);
        std::thread::scope(|scope| {
            let mut z = ParGzip::new(Vec::new(), threads(2), Level::DEFAULT, scope).unwrap();
            z.write_all(&data).unwrap();
            drop(z);
        });
    }
}
