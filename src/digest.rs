//! Content digests for layers and blobs (shared by `layer` and `oci`): the sha256 `Digest` that names every
//! blob in the image, and a writer and a reader that compute one while bytes stream past.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// The only algorithm we write. The OCI image spec (descriptor.md) registers
/// sha256 and sha512; every registry and runtime accepts sha256.
const ALGORITHM: &str = "sha256";

/// Bytes in a sha256 digest.
const LEN: usize = 32;

/// A sha256 content digest. Displays as `sha256:<64 lowercase hex digits>`,
/// the form used in OCI descriptors, configs and blob paths.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; LEN]);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DigestError {
    #[error("digest {input:?} has no algorithm prefix (expected sha256:<64 hex digits>)")]
    NoAlgorithm { input: String },
    #[error("digest {input:?} uses algorithm {algorithm:?}; only sha256 is supported")]
    Algorithm { input: String, algorithm: String },
    #[error("digest {input:?} must have exactly 64 lowercase hex digits after \"sha256:\"")]
    Hex { input: String },
}

impl Digest {
    pub fn from_bytes(bytes: [u8; LEN]) -> Self {
        Digest(bytes)
    }

    /// The digest of `data`, for small in-memory blobs (configs, manifests).
    pub fn of(data: &[u8]) -> Self {
        Digest(Sha256::digest(data).into())
    }

    pub fn as_bytes(&self) -> &[u8; LEN] {
        &self.0
    }

    /// The hex part alone, as used in blob paths (`blobs/sha256/<hex>`).
    pub fn hex(&self) -> String {
        hex(&self.0)
    }

    pub fn algorithm(&self) -> &'static str {
        ALGORITHM
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{ALGORITHM}:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Serialised in its display form, as in OCI descriptors (for `--json`
/// reports).
impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    /// Accepts only the canonical form: the OCI spec requires lowercase hex
    /// for sha256, and accepting anything else would let two strings name
    /// one blob.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some((algorithm, encoded)) = s.split_once(':') else {
            return Err(DigestError::NoAlgorithm { input: s.into() });
        };
        if algorithm != ALGORITHM {
            return Err(DigestError::Algorithm {
                input: s.into(),
                algorithm: algorithm.into(),
            });
        }
        let hex_err = || DigestError::Hex { input: s.into() };
        let encoded = encoded.as_bytes();
        if encoded.len() != 2 * LEN {
            return Err(hex_err());
        }
        let mut out = [0u8; LEN];
        for (byte, pair) in out.iter_mut().zip(encoded.chunks_exact(2)) {
            let hi = nibble(pair[0]).ok_or_else(hex_err)?;
            let lo = nibble(pair[1]).ok_or_else(hex_err)?;
            *byte = (hi << 4) | lo;
        }
        Ok(Digest(out))
    }
}

/// Lowercase hex. sha2 0.11's output type no longer implements `LowerHex`,
/// and this is all we need of a hex crate.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// Passes writes through to `inner`, hashing and counting exactly the bytes
/// `inner` accepted, so the digest always describes what was really written.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Bytes written so far.
    #[cfg(test)]
    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// The inner writer, the digest of everything written and its length.
    pub fn finish(self) -> (W, Digest, u64) {
        (
            self.inner,
            Digest(self.hasher.finalize().into()),
            self.count,
        )
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        // `n <= buf.len()` is the `Write` contract; a writer that breaks it
        // is an error, not a panic or a digest of bytes it never took.
        let written = buf
            .get(..n)
            .ok_or_else(|| io::Error::other("writer accepted more bytes than it was given"))?;
        self.hasher.update(written);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Passes reads through from `inner`, hashing and counting every byte
/// returned, so that a blob can be verified while it is streamed.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// The digest of everything read and its length.
    pub fn finish(self) -> (Digest, u64) {
        (Digest(self.hasher.finalize().into()), self.count)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let read = buf
            .get(..n)
            .ok_or_else(|| io::Error::other("reader returned more bytes than the buffer holds"))?;
        self.hasher.update(read);
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABC: &str = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn known_vectors() {
        assert_eq!(Digest::of(b"abc").to_string(), ABC);
        assert_eq!(Digest::of(b"").to_string(), EMPTY);
        assert_eq!(
            Digest::of(b"abc").hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(format!("{:?}", Digest::of(b"abc")), ABC);
    }

    #[test]
    fn display_from_str_round_trip() {
        for s in [ABC, EMPTY] {
            let d: Digest = s.parse().unwrap();
            assert_eq!(d.to_string(), s);
        }
        let d = Digest::from_bytes([0xa5; 32]);
        assert_eq!(d.to_string().parse::<Digest>(), Ok(d));
    }

    #[test]
    fn from_str_rejects() {
        let hex64 = &ABC["sha256:".len()..];
        let cases: Vec<(String, DigestError)> = vec![
            (
                hex64.to_string(),
                DigestError::NoAlgorithm {
                    input: hex64.into(),
                },
            ),
            (
                format!("sha512:{hex64}"),
                DigestError::Algorithm {
                    input: format!("sha512:{hex64}"),
                    algorithm: "sha512".into(),
                },
            ),
            (
                format!("sha256:{}", hex64.to_uppercase()),
                DigestError::Hex {
                    input: format!("sha256:{}", hex64.to_uppercase()),
                },
            ),
            (
                format!("sha256:{}", &hex64[1..]),
                DigestError::Hex {
                    input: format!("sha256:{}", &hex64[1..]),
                },
            ),
            (
                format!("sha256:{hex64}0"),
                DigestError::Hex {
                    input: format!("sha256:{hex64}0"),
                },
            ),
            (
                format!("sha256:{}g", &hex64[1..]),
                DigestError::Hex {
                    input: format!("sha256:{}g", &hex64[1..]),
                },
            ),
            (
                "sha256:".into(),
                DigestError::Hex {
                    input: "sha256:".into(),
                },
            ),
        ];
        for (input, want) in cases {
            assert_eq!(input.parse::<Digest>(), Err(want), "{input}");
        }
    }

    #[test]
    fn hashing_writer_hashes_and_counts() {
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"a").unwrap();
        w.write_all(b"").unwrap();
        w.write_all(b"bc").unwrap();
        assert_eq!(w.count(), 3);
        let (inner, digest, count) = w.finish();
        assert_eq!(inner, b"abc");
        assert_eq!(digest.to_string(), ABC);
        assert_eq!(count, 3);
    }

    /// A writer that takes at most 2 bytes per call: only accepted bytes may
    /// be hashed, or the digest would describe bytes that were never written.
    #[test]
    fn hashing_writer_counts_only_accepted_bytes() {
        struct Short(Vec<u8>);
        impl Write for Short {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                let n = buf.len().min(2);
                self.0.extend_from_slice(&buf[..n]);
                Ok(n)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut w = HashingWriter::new(Short(Vec::new()));
        assert_eq!(w.write(b"abc").unwrap(), 2);
        w.write_all(b"c").unwrap();
        let (inner, digest, count) = w.finish();
        assert_eq!(inner.0, b"abc");
        assert_eq!((digest.to_string(), count), (ABC.to_string(), 3));
    }

    #[test]
    fn hashing_reader_hashes_and_counts() {
        let mut r = HashingReader::new(&b"abc"[..]);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abc");
        assert_eq!(r.finish(), (ABC.parse().unwrap(), 3));
    }

    #[test]
    fn serialises_as_display() {
        let d: Digest = ABC.parse().unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), format!("\"{ABC}\""));
    }
}
