//! MD5 (RFC 1321) of up to eight messages at once. One MD5 is a chain of
//! 64-byte blocks, each step waiting on the last, so one message cannot
//! use a vector unit; eight independent messages can, one a lane. The
//! lanes are `wide`'s `u32x8`, vector instructions of the instruction set
//! the build targets (SSE2 on x86-64, NEON on arm64, AVX2 if asked for):
//! no unsafe code here, no CPU detection.
//!
//! mkimage checks every file an image takes from a Debian root against
//! the md5 dpkg recorded for it (`info/*.md5sums`). One file at a time
//! with the RustCrypto `md-5` crate that was 14% of the CPU of a cold
//! build of the JDK 17 tree. Measured here (x86-64, SSE2): `md-5` 0.6
//! GB/s, one lane 0.65, eight lanes 2.9.
//!
//! Why not a crate: `md5-many` (an alpha) and `md5-simd` (x86 assembly)
//! do this; this is 250 lines of safe code, checked against `md-5` by the
//! tests.

use std::ops::{BitAnd, BitOr, BitXor, Not};

use wide::u32x8;

/// Messages hashed at once.
pub const LANES: usize = 8;

/// Fewer lanes at work than this and they are hashed one at a time: eight
/// lanes' instructions for one or two messages would cost more than the
/// scalar steps.
const FEWEST_FOR_LANES: usize = 3;

const INIT: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];

/// The additive constants, `floor(abs(sin(i + 1)) * 2^32)`.
const K: [u32; 64] = [
    0xd76a_a478,
    0xe8c7_b756,
    0x2420_70db,
    0xc1bd_ceee,
    0xf57c_0faf,
    0x4787_c62a,
    0xa830_4613,
    0xfd46_9501,
    0x6980_98d8,
    0x8b44_f7af,
    0xffff_5bb1,
    0x895c_d7be,
    0x6b90_1122,
    0xfd98_7193,
    0xa679_438e,
    0x49b4_0821,
    0xf61e_2562,
    0xc040_b340,
    0x265e_5a51,
    0xe9b6_c7aa,
    0xd62f_105d,
    0x0244_1453,
    0xd8a1_e681,
    0xe7d3_fbc8,
    0x21e1_cde6,
    0xc337_07d6,
    0xf4d5_0d87,
    0x455a_14ed,
    0xa9e3_e905,
    0xfcef_a3f8,
    0x676f_02d9,
    0x8d2a_4c8a,
    0xfffa_3942,
    0x8771_f681,
    0x6d9d_6122,
    0xfde5_380c,
    0xa4be_ea44,
    0x4bde_cfa9,
    0xf6bb_4b60,
    0xbebf_bc70,
    0x289b_7ec6,
    0xeaa1_27fa,
    0xd4ef_3085,
    0x0488_1d05,
    0xd9d4_d039,
    0xe6db_99e5,
    0x1fa2_7cf8,
    0xc4ac_5665,
    0xf429_2244,
    0x432a_ff97,
    0xab94_23a7,
    0xfc93_a039,
    0x655b_59c3,
    0x8f0c_cc92,
    0xffef_f47d,
    0x8584_5dd1,
    0x6fa8_7e4f,
    0xfe2c_e6e0,
    0xa301_4314,
    0x4e08_11a1,
    0xf753_7e82,
    0xbd3a_f235,
    0x2ad7_d2bb,
    0xeb86_d391,
];

/// The left rotations, four a round.
const S: [[u32; 4]; 4] = [
    [7, 12, 17, 22],
    [5, 9, 14, 20],
    [4, 11, 16, 23],
    [6, 10, 15, 21],
];

/// Up to [`LANES`] messages being hashed: lane `i` is one message from
/// [`start`](Lanes::start) to [`finish`](Lanes::finish).
#[derive(Clone, Debug)]
pub struct Lanes {
    /// Word-major, so that each step is one operation on all lanes.
    words: [u32x8; 4],
    /// Bytes hashed so far, a lane.
    len: [u64; LANES],
}

impl Default for Lanes {
    fn default() -> Lanes {
        Lanes {
            words: INIT.map(u32x8::splat),
            len: [0; LANES],
        }
    }
}

impl Lanes {
    /// Begins a new message in `lane` (`lane < LANES`).
    pub fn start(&mut self, lane: usize) {
        self.set(lane, INIT);
        self.len[lane] = 0;
    }

    /// Hashes whole 64-byte blocks of each lane's `data` (an empty slice
    /// for a lane with none) and says how many bytes of each it took:
    /// the same number of every lane that has a block, unless so few do
    /// that they are hashed one at a time, all their whole blocks each.
    pub fn update(&mut self, data: [&[u8]; LANES]) -> [usize; LANES] {
        let blocks = data.map(|d| d.len() / 64);
        let busy = blocks.iter().filter(|&&b| b > 0).count();
        let mut took = [0; LANES];
        if busy < FEWEST_FOR_LANES {
            for lane in (0..LANES).filter(|&l| blocks[l] > 0) {
                let mut words = self.get(lane);
                for block in data[lane].as_chunks::<64>().0 {
                    one_block(&mut words, block);
                }
                self.set(lane, words);
                took[lane] = blocks[lane] * 64;
            }
        } else {
            let n = blocks
                .iter()
                .filter(|&&b| b > 0)
                .min()
                .copied()
                .unwrap_or(0);
            // Idle lanes are hashed too (the lanes move together), on
            // zeros, and put back as they were.
            let idle = self.words;
            let zeros = [0u8; 64];
            for i in 0..n {
                let at = i * 64;
                let rows: [&[u8; 64]; LANES] = std::array::from_fn(|l| {
                    match data[l].get(at..).and_then(|d| d.first_chunk()) {
                        Some(block) if blocks[l] > 0 => block,
                        _ => &zeros,
                    }
                });
                let m: [u32x8; 16] =
                    std::array::from_fn(|w| u32x8::new(std::array::from_fn(|l| le32(rows[l], w))));
                step_all(&mut self.words, &m);
            }
            let hashed = u32x8::new(blocks.map(|b| if b > 0 { u32::MAX } else { 0 }));
            for (w, idle) in self.words.iter_mut().zip(idle) {
                *w = hashed.bitselect(*w, idle);
            }
            for (took, b) in took.iter_mut().zip(blocks) {
                if b > 0 {
                    *took = n * 64;
                }
            }
        }
        for (len, took) in self.len.iter_mut().zip(took) {
            *len += took as u64;
        }
        took
    }

    /// Ends `lane`'s message with `tail`, the rest of its bytes, and
    /// returns its MD5. The lane is then free for [`start`](Lanes::start).
    pub fn finish(&mut self, lane: usize, tail: &[u8]) -> [u8; 16] {
        let mut words = self.get(lane);
        let len = self.len[lane].wrapping_add(tail.len() as u64);
        let (whole, rest) = tail.as_chunks::<64>();
        for block in whole {
            one_block(&mut words, block);
        }
        // Padding: 0x80, zeros to 56 mod 64, the length in bits.
        let mut pad = [0u8; 128];
        pad[..rest.len()].copy_from_slice(rest);
        pad[rest.len()] = 0x80;
        let end = if rest.len() < 56 { 64 } else { 128 };
        pad[end - 8..end].copy_from_slice(&len.wrapping_mul(8).to_le_bytes());
        for block in pad[..end].as_chunks::<64>().0 {
            one_block(&mut words, block);
        }
        self.start(lane);
        let mut out = [0u8; 16];
        for (o, w) in out.chunks_exact_mut(4).zip(words) {
            o.copy_from_slice(&w.to_le_bytes());
        }
        out
    }

    fn get(&self, lane: usize) -> [u32; 4] {
        self.words.map(|w| w.to_array()[lane])
    }

    fn set(&mut self, lane: usize, words: [u32; 4]) {
        for (w, v) in self.words.iter_mut().zip(words) {
            let mut a = w.to_array();
            a[lane] = v;
            *w = u32x8::new(a);
        }
    }
}

/// The MD5 of `bytes`.
pub fn digest(bytes: &[u8]) -> [u8; 16] {
    Lanes::default().finish(0, bytes)
}

/// One block of one message, through the same steps as the lanes.
fn one_block(words: &mut [u32; 4], block: &[u8; 64]) {
    let m: [u32; 16] = std::array::from_fn(|w| le32(block, w));
    step_all(words, &m);
}

/// Word `w` of a 64-byte block, little-endian.
#[inline(always)]
fn le32(block: &[u8; 64], w: usize) -> u32 {
    u32::from_le_bytes([
        block[4 * w],
        block[4 * w + 1],
        block[4 * w + 2],
        block[4 * w + 3],
    ])
}

/// What a step works on: one message's word, or one of each lane's.
trait Word:
    Copy + BitAnd<Output = Self> + BitOr<Output = Self> + BitXor<Output = Self> + Not<Output = Self>
{
    fn splat(k: u32) -> Self;
    fn add(self, other: Self) -> Self;
    fn rotl(self, s: u32) -> Self;
}

impl Word for u32 {
    fn splat(k: u32) -> u32 {
        k
    }
    fn add(self, other: u32) -> u32 {
        self.wrapping_add(other)
    }
    fn rotl(self, s: u32) -> u32 {
        self.rotate_left(s)
    }
}

impl Word for u32x8 {
    fn splat(k: u32) -> u32x8 {
        u32x8::splat(k)
    }
    fn add(self, other: u32x8) -> u32x8 {
        self + other
    }
    fn rotl(self, s: u32) -> u32x8 {
        self.unbounded_shl_scalar(s) | self.unbounded_shr_scalar(32 - s)
    }
}

/// The 64 steps of one block, message words `m`, then the sum.
#[inline(always)]
fn step_all<W: Word>(words: &mut [W; 4], m: &[W; 16]) {
    let before = *words;
    let [mut a, mut b, mut c, mut d] = before;
    // Four steps, the variables rotating, from step `$i` of round `$r`.
    macro_rules! four {
        ($r:literal, $i:literal) => {
            a = step::<W, $r>(a, b, c, d, m, $i);
            d = step::<W, $r>(d, a, b, c, m, $i + 1);
            c = step::<W, $r>(c, d, a, b, m, $i + 2);
            b = step::<W, $r>(b, c, d, a, m, $i + 3);
        };
    }
    four!(0, 0);
    four!(0, 4);
    four!(0, 8);
    four!(0, 12);
    four!(1, 16);
    four!(1, 20);
    four!(1, 24);
    four!(1, 28);
    four!(2, 32);
    four!(2, 36);
    four!(2, 40);
    four!(2, 44);
    four!(3, 48);
    four!(3, 52);
    four!(3, 56);
    four!(3, 60);
    for (w, (new, old)) in words.iter_mut().zip([a, b, c, d].into_iter().zip(before)) {
        *w = old.add(new);
    }
}

/// Step `i` (0 to 63), of round `R`: the new value of `a`.
#[inline(always)]
fn step<W: Word, const R: usize>(a: W, b: W, c: W, d: W, m: &[W; 16], i: usize) -> W {
    let word = match R {
        0 => i,
        1 => (5 * i + 1) % 16,
        2 => (3 * i + 5) % 16,
        _ => (7 * i) % 16,
    };
    // What does not wait on `b`, the step before's result, is summed first.
    let early = a.add(W::splat(K[i])).add(m[word]);
    let sum = match R {
        0 => early.add(d ^ (b & (c ^ d))),
        // G's two terms share no bit, so they can be added: `c & !d`
        // then joins the early sum, and `b` waits on one AND, not three.
        1 => early.add(c & !d).add(b & d),
        2 => early.add(b ^ c ^ d),
        _ => early.add(c ^ (b | !d)),
    };
    b.add(sum.rotl(S[R][i % 4]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use md5::{Digest as _, Md5};

    fn reference(bytes: &[u8]) -> [u8; 16] {
        Md5::digest(bytes).into()
    }

    /// Bytes that are not a pattern a bug could hide in (xorshift).
    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn rfc_1321_test_suite() {
        let hex = |d: [u8; 16]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(hex(digest(b"")), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(hex(digest(b"abc")), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            hex(digest(
                b"12345678901234567890123456789012345678901234567890123456789012345678901234567890"
            )),
            "57edf4a22be3c955ac49da2e2107b67a"
        );
    }

    /// Every length around the padding's edges (55, 56, 63, 64, ...).
    #[test]
    fn one_message_matches_md_5_at_every_length() {
        let data = noise(1000, 1);
        for len in 0..=data.len() {
            assert_eq!(
                digest(&data[..len]),
                reference(&data[..len]),
                "length {len}"
            );
        }
    }

    /// Eight messages of different lengths, fed in uneven pieces, lanes
    /// finishing and starting again at different times, with every number
    /// of busy lanes (the one-at-a-time path included).
    #[test]
    fn lanes_match_md_5_whatever_the_feeding() {
        let messages: Vec<Vec<u8>> = (0..40)
            .map(|i| noise((i * 997 + i * i * 131) % 9000, i as u64 + 7))
            .collect();
        let mut lanes = Lanes::default();
        let mut next = 0;
        // (message, bytes fed so far), a lane.
        let mut at: [Option<(usize, usize)>; LANES] = [None; LANES];
        let mut done = 0;
        let mut round = 0usize;
        while done < messages.len() {
            round += 1;
            for (lane, slot) in at.iter_mut().enumerate() {
                // Leave some lanes idle now and then.
                if slot.is_none() && next < messages.len() && !(round + lane).is_multiple_of(5) {
                    lanes.start(lane);
                    *slot = Some((next, 0));
                    next += 1;
                }
            }
            let data: [&[u8]; LANES] = std::array::from_fn(|lane| match at[lane] {
                Some((m, fed)) => {
                    let piece = 64 * ((round * 7 + lane * 3) % 11);
                    let m = &messages[m];
                    &m[fed..m.len().min(fed + piece)]
                }
                None => &[],
            });
            let took = lanes.update(data);
            for lane in 0..LANES {
                let Some((m, fed)) = at[lane] else {
                    assert_eq!(took[lane], 0);
                    continue;
                };
                assert_eq!(took[lane] % 64, 0);
                let fed = fed + took[lane];
                let message = &messages[m];
                if message.len() - fed < 64 || round % 3 == lane % 3 {
                    assert_eq!(lanes.finish(lane, &message[fed..]), reference(message));
                    at[lane] = None;
                    done += 1;
                } else {
                    at[lane] = Some((m, fed));
                }
            }
        }
    }
}
