//! The compression stage of a layer: the tar stream goes in, a compressed
//! stream comes out, made on several threads but byte-identical at any
//! count.
//!
//! The stream is cut into fixed-size chunks (see
//! [`Compression::chunk_size`]), each compressed on its own into one gzip
//! member (RFC 1952 section 2.2: "a gzip file consists of a series of
//! members") or one zstd frame (RFC 8878 section 3.1). Every runtime and
//! registry client reads such streams (Go's gzip.Reader does by default; so
//! do gzip(1), GNU tar and Python); readers built on flate2 need
//! `MultiGzDecoder`.
//!
//! ```text
//!            chunks               pieces, any order
//! write() ──────────► workers ─────────────────────► write() puts them
//!                     (threads)                      back in chunk order
//! ```
//!
//! The calling thread cuts chunks, hands them out and writes finished
//! pieces to the sink in chunk order, so the sink stays on one thread. At
//! most `2 * threads` chunks are in flight, so memory is bounded whatever
//! the stream's length. The workers live in the caller's scope, which joins
//! them.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::marker::PhantomData;
use std::num::NonZeroUsize;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{Builder, Scope};

use super::LayerError;
use super::compress::{Compression, Encoder};

/// A chunk handed to a worker, with a buffer for its compressed piece.
struct Job {
    index: u64,
    data: Vec<u8>,
    piece: Vec<u8>,
}

/// A worker's answer: the piece, or why there is none. The chunk's buffer
/// comes back for reuse.
struct Done {
    index: u64,
    data: Vec<u8>,
    piece: io::Result<Vec<u8>>,
}

/// More workers than this gain nothing: the one thread that makes the tar
/// and hashes it keeps about 16 gzip workers busy, and each worker holds
/// its own compressor (tens of MB at zstd's highest levels).
const MAX_THREADS: usize = 16;

/// A parallel compressing writer. Nothing about the build host reaches
/// the stream: gzip members carry libdeflate's fixed header (no name,
/// mtime 0, OS byte 255 "unknown"), zstd frames no host data at all.
///
/// It cannot leave the scope its workers run in (`'scope`): the scope
/// joins them, and they end only when this writer is gone.
pub struct ParCompress<'scope, W: Write> {
    /// `None` once finished.
    out: Option<W>,
    chunk_size: usize,
    /// The chunk being filled.
    chunk: Vec<u8>,
    /// `None` once finished or failed: dropping it lets the workers end.
    jobs: Option<Sender<Job>>,
    done: Receiver<Done>,
    /// Pieces that arrived before the ones in front of them.
    ready: BTreeMap<u64, Vec<u8>>,
    /// Chunks handed out, and pieces written: their difference is what is
    /// in flight.
    sent: u64,
    written: u64,
    max_in_flight: u64,
    /// Buffers back from the workers and the sink, for the next chunks.
    spare: Vec<Vec<u8>>,
    failed: bool,
    scope: PhantomData<&'scope ()>,
}

impl<'scope, W: Write> ParCompress<'scope, W> {
    /// Starts `threads` workers (at most 16) in `scope`.
    pub fn new(
        out: W,
        threads: NonZeroUsize,
        compression: Compression,
        scope: &'scope Scope<'scope, '_>,
    ) -> Result<Self, LayerError> {
        let encoder = || {
            compression
                .encoder()
                .map_err(|source| LayerError::Compressor {
                    compression,
                    source,
                })
        };
        Self::with_encoders(out, threads, compression.chunk_size(), encoder, scope)
    }

    fn with_encoders(
        out: W,
        threads: NonZeroUsize,
        chunk_size: usize,
        mut encoder: impl FnMut() -> Result<Encoder, LayerError>,
        scope: &'scope Scope<'scope, '_>,
    ) -> Result<Self, LayerError> {
        let threads = threads.get().min(MAX_THREADS);
        let (jobs, queue) = mpsc::channel::<Job>();
        let (done_tx, done) = mpsc::channel();
        // std's receiver has one owner; the workers take turns on it. A
        // chunk takes milliseconds, so the lock is never contended long.
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads {
            let encoder = encoder()?;
            let (queue, done_tx) = (Arc::clone(&queue), done_tx.clone());
            Builder::new()
                .name(format!("compress-{i}"))
                .spawn_scoped(scope, move || work(&queue, &done_tx, encoder))
                .map_err(|source| LayerError::Threads { source })?;
        }
        Ok(ParCompress {
            out: Some(out),
            chunk_size,
            chunk: Vec::with_capacity(chunk_size),
            jobs: Some(jobs),
            done,
            ready: BTreeMap::new(),
            sent: 0,
            written: 0,
            // Enough to keep every worker busy while the next piece in
            // order is still being made.
            max_in_flight: 2 * threads as u64,
            spare: Vec::new(),
            failed: false,
            scope: PhantomData,
        })
    }

    /// Compresses what is buffered, writes the last pieces, lets the
    /// workers end and returns the sink.
    pub fn finish(mut self) -> Result<W, LayerError> {
        let result = (|| {
            self.check()?;
            // A stream with no bytes still needs one (empty) piece: an
            // empty file is neither gzip nor zstd.
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
        let piece = self.spare.pop().unwrap_or_default();
        let job = Job {
            index: self.sent,
            data,
            piece,
        };
        let sent = self.jobs.as_ref().map(|jobs| jobs.send(job));
        if !matches!(sent, Some(Ok(()))) {
            // The workers are gone; an error one of them sent says why.
            self.collect(false)?;
            return Err(workers_gone());
        }
        self.sent += 1;
        self.collect(false)?;
        while self.sent - self.written > self.max_in_flight {
            self.collect(true)?;
        }
        Ok(())
    }

    /// Takes the pieces that have arrived (waiting for one if `block`) and
    /// writes those that are next in order.
    fn collect(&mut self, block: bool) -> io::Result<()> {
        if block {
            let done = self.done.recv().map_err(|_| workers_gone())?;
            self.arrived(done)?;
        }
        while let Ok(done) = self.done.try_recv() {
            self.arrived(done)?;
        }
        while let Some(piece) = self.ready.remove(&self.written) {
            let out = self.out.as_mut().ok_or_else(failed_earlier)?;
            out.write_all(&piece)?;
            self.written += 1;
            self.recycle(piece);
        }
        Ok(())
    }

    fn arrived(&mut self, done: Done) -> io::Result<()> {
        self.recycle(done.data);
        self.ready.insert(done.index, done.piece?);
        Ok(())
    }

    fn recycle(&mut self, mut buffer: Vec<u8>) {
        buffer.clear();
        self.spare.push(buffer);
    }
}

/// A worker: compresses chunks until the queue closes or nobody listens.
/// A panic while compressing becomes that chunk's error and ends the
/// worker; left to unwind, it would leave the writer waiting forever for
/// the chunk, and the scope for the other workers.
fn work(queue: &Mutex<Receiver<Job>>, done: &Sender<Done>, mut encoder: Encoder) {
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
            mut piece,
        }) = job
        else {
            return;
        };
        let result = catch_unwind(AssertUnwindSafe(|| encoder.encode(&data, &mut piece)));
        let panicked = result.is_err();
        let piece = match result {
            Ok(Ok(())) => Ok(piece),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(io::Error::other("the compressor panicked")),
        }
        .map_err(|e| io::Error::new(e.kind(), format!("cannot compress chunk {index}: {e}")));
        if done.send(Done { index, data, piece }).is_err() || panicked {
            return;
        }
    }
}

impl<W: Write> Write for ParCompress<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.check()?;
        let n = buf.len().min(self.chunk_size - self.chunk.len());
        self.chunk.extend_from_slice(&buf[..n]);
        if self.chunk.len() == self.chunk_size
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
    io::Error::other("the compressed stream failed earlier")
}

fn workers_gone() -> io::Error {
    io::Error::other("the compression threads stopped")
}

#[cfg(test)]
pub(super) mod tests {
    use std::io::Read;

    use flate2::read::MultiGzDecoder;

    use super::*;
    use crate::layer::compress::Algorithm;

    /// Runs `f` on a thread of its own and fails if it takes over a
    /// minute: a pipeline that hangs must fail its test, not stall the run.
    fn within<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(std::time::Duration::from_secs(60))
            .expect("the pipeline hung (or the test panicked)")
    }

    pub(crate) fn zstd() -> Compression {
        Compression::new(Algorithm::Zstd, None).unwrap()
    }

    pub(crate) fn compress(
        data: &[u8],
        threads: usize,
        write_size: usize,
        compression: Compression,
    ) -> Vec<u8> {
        std::thread::scope(|scope| {
            let threads = NonZeroUsize::new(threads).unwrap();
            let mut z = ParCompress::new(Vec::new(), threads, compression, scope).unwrap();
            for piece in data.chunks(write_size) {
                z.write_all(piece).unwrap();
                // Flushing must not move chunk boundaries.
                z.flush().unwrap();
            }
            z.finish().unwrap()
        })
    }

    pub(crate) fn decompress(blob: &[u8], compression: Compression) -> Vec<u8> {
        let mut decoded = Vec::new();
        match compression.algorithm() {
            Algorithm::Gzip => MultiGzDecoder::new(blob).read_to_end(&mut decoded),
            Algorithm::Zstd => ::zstd::stream::read::Decoder::new(blob)
                .unwrap()
                .read_to_end(&mut decoded),
        }
        .unwrap();
        decoded
    }

    /// Compressible but not trivial: text-like, with long-range repeats.
    pub(crate) fn sample(len: usize) -> Vec<u8> {
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
    pub(crate) fn noise(len: usize) -> Vec<u8> {
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
        for compression in [Compression::DEFAULT, zstd()] {
            let chunk = compression.chunk_size();
            // Empty, one partial chunk, exactly one chunk, several chunks
            // plus a tail (one of them noise): every shape of the last one.
            let mixed = [sample(2 * chunk), noise(chunk), sample(777)].concat();
            for data in [
                Vec::new(),
                sample(1000),
                sample(chunk),
                sample(chunk + 1),
                mixed,
            ] {
                let len = data.len();
                let one = compress(&data, 1, 4096, compression);
                for (threads, write_size) in [(2, 511), (4, 4096), (4, 3 << 20)] {
                    assert!(
                        compress(&data, threads, write_size, compression) == one,
                        "{compression}: len {len}, {threads} threads, writes of {write_size}"
                    );
                }
                assert!(decompress(&one, compression) == data, "len {len}");
            }
        }
    }

    /// With zlib-rs 0.6 as a backend, a compressor reused after reset()
    /// encoded some chunks of real machine code differently from a fresh
    /// one, so the output depended on which thread took which chunk. Kept
    /// for every backend: real binaries, compressed by reused compressors.
    #[test]
    fn identical_on_real_binaries_at_any_thread_count() {
        let mut data = Vec::new();
        for f in [
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
            "/usr/lib/x86_64-linux-gnu/libcrypto.so.3",
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
        ] {
            data.extend(std::fs::read(f).unwrap());
        }
        for compression in [Compression::DEFAULT, zstd()] {
            let one = compress(&data, 1, 1 << 20, compression);
            for threads in [2, 3, 4, 2] {
                assert!(
                    compress(&data, threads, 1 << 16, compression) == one,
                    "{compression}: {threads} threads differ from 1"
                );
            }
        }
    }

    #[test]
    fn levels_trade_size_for_speed_and_all_decode() {
        let data = sample(3 << 20);
        for (algorithm, fast, small) in [(Algorithm::Gzip, 1, 12), (Algorithm::Zstd, 1, 19)] {
            let at = |level| Compression::new(algorithm, Some(level)).unwrap();
            let fast_blob = compress(&data, 2, 1 << 16, at(fast));
            let small_blob = compress(&data, 2, 1 << 16, at(small));
            assert!(
                small_blob.len() < fast_blob.len(),
                "{algorithm}: {} vs {}",
                small_blob.len(),
                fast_blob.len()
            );
            assert!(decompress(&fast_blob, at(fast)) == data);
            assert!(decompress(&small_blob, at(small)) == data);
        }
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
        let data = sample(8 << 20);
        let first = within(move || {
            std::thread::scope(|scope| {
                let threads = NonZeroUsize::new(2).unwrap();
                let mut z = ParCompress::new(Broken, threads, Compression::DEFAULT, scope).unwrap();
                for piece in data.chunks(1000) {
                    if let Err(e) = z.write_all(piece) {
                        let again = z.write_all(&data).unwrap_err();
                        assert_eq!(again.to_string(), "the compressed stream failed earlier");
                        assert!(matches!(z.finish(), Err(LayerError::Write { .. })));
                        return e;
                    }
                }
                match z.finish() {
                    Err(LayerError::Write { source }) => source,
                    other => panic!("expected a write error, got {other:?}"),
                }
            })
        });
        assert_eq!(first.kind(), io::ErrorKind::BrokenPipe, "{first:?}");
        assert_eq!(first.to_string(), "gone");
    }

    /// Dropped half-way (an error elsewhere in the pipeline): the workers
    /// end and the scope returns.
    #[test]
    fn dropped_mid_stream_ends_the_workers() {
        let data = sample(5 << 20);
        within(move || {
            std::thread::scope(|scope| {
                let threads = NonZeroUsize::new(2).unwrap();
                let mut z = ParCompress::new(Vec::new(), threads, zstd(), scope).unwrap();
                z.write_all(&data).unwrap();
                drop(z);
            })
        });
    }

    /// A compressor that panics (a bug) fails the layer with the chunk it
    /// was on, at any thread count, instead of leaving the writer waiting
    /// for that chunk forever.
    #[test]
    fn a_panicking_compressor_is_an_error_not_a_hang() {
        for threads in [1, 2, 3] {
            let err = within(move || {
                std::thread::scope(|scope| {
                    let threads = NonZeroUsize::new(threads).unwrap();
                    let panics = || Ok(Encoder::Panic);
                    let mut z =
                        ParCompress::with_encoders(Vec::new(), threads, 1 << 20, panics, scope)
                            .unwrap();
                    match z.write_all(&sample(6 << 20)) {
                        Err(e) => e,
                        Ok(()) => match z.finish() {
                            Err(LayerError::Write { source }) => source,
                            other => panic!("expected an error, got {other:?}"),
                        },
                    }
                })
            });
            let message = err.to_string();
            assert!(
                message.starts_with("cannot compress chunk ")
                    && message.ends_with(": the compressor panicked"),
                "{threads} threads: {message}"
            );
        }
    }
}
