//! gzip members (RFC 1952), one a chunk, deflated by libdeflate: measured
//! on a 271 MB JDK tar, 3.5x less CPU than zlib, and 0.6% smaller.
//!
//! What a chunk is deflated with depends on how close to uniform its bytes
//! are, a test of integer arithmetic on them, so the same on every machine:
//! - Near uniform (jars, jmods, archives, images: data compressed before):
//!   stored, not deflated (libdeflate's level 0: stored blocks, a copy and
//!   a CRC), whatever the level asked for. Measured on the JDK 17 tree,
//!   whose 75 MB of jmods are such chunks: deflating them at level 1 took
//!   9% of the build's CPU to make the layer 1.4% smaller.
//! - Dense (most of the rest of a jmod, packed resources): at the fast
//!   levels (1 and 2), level 1. On the JDK tree, level 2 took 5% more of
//!   the deflating to make the layer 0.03% smaller; on
//!   /usr/lib/x86_64-linux-gnu and Python's stdlib no chunk is dense.
//! - Anything else: the level asked for.

use std::io;

use libdeflater::{CompressionLvl, Compressor};

pub(super) struct Encoder {
    asked: Compressor,
    /// For dense chunks: level 1 at the fast levels, else the asked one.
    dense: Compressor,
    store: Compressor,
}

impl Encoder {
    /// `level` is one of libdeflate's, 1 to 12 (`Compression` checks).
    pub(super) fn new(level: u8) -> Encoder {
        Encoder {
            asked: compressor(level),
            dense: compressor(if level <= 2 { 1 } else { level }),
            store: compressor(0),
        }
    }

    pub(super) fn encode(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        let c = match Spread::of(chunk) {
            Spread::Uniform => &mut self.store,
            Spread::Dense => &mut self.dense,
            Spread::Other => &mut self.asked,
        };
        out.clear();
        out.resize(c.gzip_compress_bound(chunk.len()), 0);
        match c.gzip_compress(chunk, out) {
            Ok(len) => {
                out.truncate(len);
                Ok(())
            }
            // Cannot happen: the buffer has libdeflate's own bound.
            Err(e) => Err(io::Error::other(format!("libdeflate: {e:?}"))),
        }
    }
}

fn compressor(level: u8) -> Compressor {
    // Out of libdeflate's range (0 to 12) only by a bug in `Compression`;
    // its default then beats a panic.
    Compressor::new(CompressionLvl::new(i32::from(level)).unwrap_or_default())
}

/// How evenly a chunk's bytes spread over the 256 values, by their
/// collision entropy (Rényi order 2): `-log2(sum p²)` bits a byte. It never
/// exceeds Shannon entropy, so the test errs towards compressing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Spread {
    /// At least 7.9 bits a byte: deflate can gain next to nothing.
    Uniform,
    /// 6.5 to 7.9 bits.
    Dense,
    Other,
}

impl Spread {
    /// Counted on the first 64 bytes (a cache line) of every 256, which
    /// decides as the whole chunk does on every chunk of the JDK, /usr/lib
    /// and Python trees but one, and reads a quarter of the memory. Chunks
    /// shorter than a page are `Other`: too few bytes to tell.
    fn of(chunk: &[u8]) -> Spread {
        if chunk.len() < 4096 {
            return Spread::Other;
        }
        // Four tables break the dependency between neighbouring bytes.
        let mut counts = [[0u32; 256]; 4];
        let mut n: u128 = 0;
        for block in chunk.chunks(256) {
            let sample = &block[..block.len().min(64)];
            let mut quads = sample.chunks_exact(4);
            for q in &mut quads {
                for (table, &b) in counts.iter_mut().zip(q) {
                    table[usize::from(b)] += 1;
                }
            }
            for &b in quads.remainder() {
                counts[0][usize::from(b)] += 1;
            }
            n += sample.len() as u128;
        }
        let pairs: u128 = (0..256)
            .map(|i| {
                let c = counts.iter().map(|t| u128::from(t[i])).sum::<u128>();
                c * c.saturating_sub(1)
            })
            .sum();
        // sum c(c-1) / n(n-1) estimates sum p² without the bias a sample
        // of 1,024 bytes would have with c². H2 >= 7.9 is then
        // 256 * pairs <= 2^0.1 * n(n-1), and 2^0.1 = 1.0718; H2 >= 6.5 is
        // pairs <= n(n-1) / 2^6.5, and 2^6.5 = 90.51. Both are rounded so
        // that a shade more chunks pass.
        let all = n * n.saturating_sub(1);
        if pairs * 256 * 10_000 <= all * 10_718 {
            Spread::Uniform
        } else if pairs * 905 <= all * 10 {
            Spread::Dense
        } else {
            Spread::Other
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::layer::compress::{Algorithm, Compression};
    use crate::layer::parallel::tests::{compress, decompress, noise, sample};

    const CHUNK: usize = 1 << 20;

    fn gzip(level: u32) -> Compression {
        Compression::new(Algorithm::Gzip, Some(level)).unwrap()
    }

    /// Noise is stored whatever the level: the same member at 1, 6 and
    /// 12, made of stored blocks. Text is deflated.
    #[test]
    fn compressed_data_is_stored() {
        let data = noise(CHUNK);
        assert_eq!(Spread::of(&data), Spread::Uniform);
        let at = |level| compress(&data, 1, CHUNK, gzip(level));
        assert!(at(6) == at(12) && at(6) == at(1));
        let member = at(6);
        // XFL 4: "compressor used fastest algorithm" (RFC 1952 2.3.1).
        assert_eq!(member[8], 4);
        // The first block's BTYPE (bits 1-2 after BFINAL) is 00, "no
        // compression" (RFC 1951 3.2.3); stored blocks hold at most 65535
        // bytes, each with 5 bytes of header, and the member ends with
        // 8 bytes of CRC and size.
        assert_eq!((member[10] >> 1) & 3, 0);
        assert_eq!(member.len(), 10 + CHUNK + 5 * CHUNK.div_ceil(65535) + 8);
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&member[..])
            .read_to_end(&mut back)
            .unwrap();
        assert!(back == data);

        let text = sample(CHUNK);
        assert_eq!(Spread::of(&text), Spread::Other);
        assert_ne!((compress(&text, 1, CHUNK, gzip(1))[10] >> 1) & 3, 0);
        // XFL 2: "maximum compression, slowest algorithm".
        assert_eq!(compress(&text, 1, CHUNK, gzip(12))[8], 2);
    }

    /// Dense bytes (noise over half the values: 7 bits a byte) are
    /// deflated at level 1 at the fast levels, at the asked one above.
    #[test]
    fn dense_data_is_deflated_fast_at_the_fast_levels() {
        let data: Vec<u8> = noise(CHUNK).iter().map(|b| b & 0x7f).collect();
        assert_eq!(Spread::of(&data), Spread::Dense);
        let at = |level| compress(&data, 1, CHUNK, gzip(level));
        let (one, two, six) = (at(1), at(2), at(6));
        assert!(one == two);
        // XFL 4 is level 1 ("fastest"), 0 the levels between; and the
        // block is deflated, not stored (BTYPE is not 00).
        assert_eq!((one[8], six[8]), (4, 0));
        assert_ne!((one[10] >> 1) & 3, 0);
        assert!(decompress(&one, gzip(2)) == data && decompress(&six, gzip(6)) == data);
    }

    #[test]
    fn spread_of_real_and_edge_cases() {
        // Real compressed data: libc, gzipped; and libc itself.
        let libc = std::fs::read("/usr/lib/x86_64-linux-gnu/libc.so.6").unwrap();
        let gz = compress(&libc, 1, 1 << 16, gzip(6));
        assert_eq!(Spread::of(&gz[..gz.len().min(CHUNK)]), Spread::Uniform);
        assert_eq!(Spread::of(&libc[..CHUNK]), Spread::Other);
        // Short inputs never do: too few bytes to tell.
        assert_eq!(Spread::of(&noise(4095)), Spread::Other);
        assert_eq!(Spread::of(b""), Spread::Other);
        assert_eq!(Spread::of(&noise(4096)), Spread::Uniform);
        assert_eq!(Spread::of(&vec![7; 4096]), Spread::Other);
        // Only the sample counts: bytes 64 to 255 of every 256 do not.
        let mut half = noise(CHUNK);
        for block in half.chunks_mut(256) {
            block[64..].fill(0);
        }
        assert_eq!(Spread::of(&half), Spread::Uniform);
    }

    #[test]
    fn header_is_fixed() {
        let out = compress(b"hello", 2, 5, gzip(6));
        // magic, CM=deflate, FLG=0 (no name or comment), MTIME=0, XFL=0
        // (level 6: neither fastest nor slowest), OS=255 (unknown).
        // RFC 1952 section 2.3.
        assert_eq!(out[..10], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
    }
}
