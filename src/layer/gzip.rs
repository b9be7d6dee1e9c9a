//! The compression stage of a layer: the tar stream goes in, gzip comes
//! out, compressed on several threads but byte-identical at any count.
//!
//! The stream is a multi-member gzip (RFC 1952 section 2.2: "a gzip file
//! consists of a series of members"): each 1 MiB chunk is its own member,
//! deflated by libdeflate. Every runtime and registry client reads
//! multi-member gzip (Go's gzip.Reader does by default; so do gzip(1),
//! GNU tar and Python); readers built on flate2 need `MultiGzDecoder`.
//! Measured on a 271 MB JDK tar: 3.5x less CPU than zlib through gzp's
//! dictionary-chained `Gzip` format, and 0.6% smaller.

use std::io::{self, Write};
use std::thread::Scope;

use gzp::deflate::Mgzip;
use gzp::par::compress::{Compression, ParCompress, ParCompressBuilder};
use gzp::{GzpError, ZWriter};

use super::LayerError;

/// The default level (zlib's and libdeflate's usual 6). The level is part
/// of what makes a digest: changing it changes every layer.
pub const DEFAULT_LEVEL: u32 = 6;

/// Input is cut into chunks of this size, each compressed on its own into
/// one gzip member. The cut points depend only on this constant and the
/// stream's length, never on the thread count, which is what makes the
/// output reproducible. 1 MiB keeps the ratio within 0.1% of one stream;
/// pinned here so a gzp upgrade cannot move it.
const CHUNK_SIZE: usize = 1024 * 1024;

/// A parallel gzip writer (gzp's `ParCompress`, not `ZBuilder`, whose
/// single-thread path is a different encoder with different output).
///
/// Each member header is gzp's fixed one: no name, mtime 0, OS byte 255
/// ("unknown") and an extra field with the member's size, so nothing about
/// the build host leaks into the blob.
///
/// Compressor threads live inside `scope`, so the sink need not be
/// `'static`. Memory is bounded: gzp keeps at most `2 * threads` chunks in
/// flight whatever the stream's length.
pub struct ParGzip<'scope, W: Write> {
    /// `None` once finished, or once the pipeline has failed: gzp panics if
    /// used again after a failed write, so we must never touch it then.
    inner: Option<ParCompress<'scope, Mgzip, W>>,
}

impl<'scope, W: Write + Send + 'scope> ParGzip<'scope, W> {
    pub fn new<'env>(
        out: W,
        threads: usize,
        level: u32,
        scope: &'scope Scope<'scope, 'env>,
    ) -> Result<Self, LayerError> {
        let builder = ParCompressBuilder::<Mgzip>::new()
            .compression_level(Compression::new(level))
            .buffer_size(CHUNK_SIZE)
            .and_then(|b| b.num_threads(threads))
            .map_err(|source| LayerError::Compress { source })?;
        Ok(ParGzip {
            inner: Some(builder.from_borrowed_writer(out, scope)),
        })
    }

    /// Compresses what is buffered, writes the gzip trailer, waits for the
    /// threads and returns the sink.
    pub fn finish(mut self) -> Result<W, LayerError> {
        let Some(mut z) = self.inner.take() else {
            return Err(LayerError::Write {
                source: failed_earlier(),
            });
        };
        z.finish().map_err(|e| match e {
            GzpError::Io(source) => LayerError::Write { source },
            source => LayerError::Compress { source },
        })
    }
}

impl<W: Write> Write for ParGzip<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(z) = self.inner.as_mut() else {
            return Err(failed_earlier());
        };
        let result = z.write(buf);
        if result.is_err() {
            // gzp has already shut its pipeline down; dropping it now is a
            // no-op, while writing to it again could panic.
            self.inner = None;
        }
        result
    }

    /// Deliberately does nothing: a gzp flush ends the current chunk early,
    /// so chunk boundaries (and the output) would depend on when callers
    /// flush. `finish` is the only flush.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write> Drop for ParGzip<'_, W> {
    /// Dropped without `finish` (an error elsewhere in the pipeline): join
    /// the threads, ignoring the result, since the caller is already
    /// reporting the error that got us here. Left to itself gzp would
    /// `unwrap` that result.
    fn drop(&mut self) {
        if let Some(mut z) = self.inner.take() {
            let _ = z.finish();
        }
    }
}

fn failed_earlier() -> io::Error {
    io::Error::other("the gzip stream failed earlier")
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use flate2::read::MultiGzDecoder;

    use super::*;

    fn compress(data: &[u8], threads: usize, write_size: usize) -> Vec<u8> {
        std::thread::scope(|scope| {
            let mut z = ParGzip::new(Vec::new(), threads, DEFAULT_LEVEL, scope).unwrap();
            for piece in data.chunks(write_size) {
                z.write_all(piece).unwrap();
                // Flushing must not move chunk boundaries.
                z.flush().unwrap();
            }
            z.finish().unwrap()
        })
    }

    /// Compressible but not trivial: text-like, with long-range repeats so
    /// the dictionary carried across chunks matters.
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

    #[test]
    fn identical_at_any_thread_count_and_decodes() {
        // Empty, one partial chunk, exactly one chunk, several chunks plus a
        // tail: every shape of the last chunk.
        for len in [0, 1000, CHUNK_SIZE, 5 * CHUNK_SIZE + 777] {
            let data = sample(len);
            let one = compress(&data, 1, 4096);
            for (threads, write_size) in [(1, 1 << 20), (2, 511), (4, 4096), (4, 1 << 20)] {
                assert_eq!(
                    compress(&data, threads, write_size),
                    one,
                    "len {len}, {threads} threads, writes of {write_size}"
                );
            }
            let mut decoded = Vec::new();
            MultiGzDecoder::new(&one[..])
                .read_to_end(&mut decoded)
                .unwrap();
            assert_eq!(decoded, data, "len {len}");
        }
    }

    /// Real machine code: with zlib-rs 0.6 as flate2's backend, a
    /// compressor reused after reset() encoded some chunks of this kind of
    /// data differently from a fresh one, so the output depended on which
    /// thread took which chunk. The C zlib backend does not.
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
        let compress_at = |level| {
            std::thread::scope(|scope| {
                let mut z = ParGzip::new(Vec::new(), 2, level, scope).unwrap();
                z.write_all(&data).unwrap();
                z.finish().unwrap()
            })
        };
        let (fast, small) = (compress_at(1), compress_at(12));
        assert!(
            small.len() < fast.len(),
            "{} vs {}",
            small.len(),
            fast.len()
        );
        for blob in [fast, small] {
            let mut decoded = Vec::new();
            MultiGzDecoder::new(&blob[..])
                .read_to_end(&mut decoded)
                .unwrap();
            assert!(decoded == data);
        }
    }

    #[test]
    fn header_is_fixed() {
        let out = compress(b"hello", 2, 5);
        // magic, CM=deflate, FLG=FEXTRA (no name or comment), MTIME=0,
        // XFL=0 (neither fastest nor best), OS=255 (unknown), then the
        // extra field: subfield "IG" of 4 bytes holding the member size.
        // RFC 1952 section 2.3.
        assert_eq!(out[..10], [0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 255]);
        assert_eq!(out[10..16], [8, 0, b'I', b'G', 4, 0]);
    }

    #[test]
    fn zero_threads_is_an_error_not_a_panic() {
        let err =
            std::thread::scope(|scope| ParGzip::new(Vec::new(), 0, DEFAULT_LEVEL, scope).err());
        assert!(
            matches!(
                err,
                Some(LayerError::Compress {
                    source: GzpError::NumThreads(0)
                })
            ),
            "{err:?}"
        );
    }

    /// A sink that fails: its error comes back from `write` or `finish`
    /// (which one depends on thread timing), and nothing panics afterwards,
    /// though gzp itself would on a second use.
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
            let mut z = ParGzip::new(Broken, 2, DEFAULT_LEVEL, scope).unwrap();
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
}
