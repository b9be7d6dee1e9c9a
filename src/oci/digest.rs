//! SHA-256 content digests: the names of blobs in the layout and of layers in
//! the config.
//!
//! A stand-in with the same API as `layer::digest::Digest`; the two are to be
//! merged into one type.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// The algorithm prefix of every digest mkimage writes. The image spec
/// (descriptor.md) registers sha256 as the one every implementation must
/// support, so it is the only one we produce or accept.
const PREFIX: &str = "sha256:";

/// A SHA-256 digest, shown as `sha256:<64 lowercase hex digits>`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(pub [u8; 32]);

/// Why a string is not a `sha256:<hex>` digest.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{input:?} is not a digest of the form sha256:<64 lowercase hex digits>")]
pub struct DigestParseError {
    pub input: String,
}

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Digest(Sha256::digest(bytes).into())
    }

    /// The 64 lowercase hex digits, without the algorithm prefix: the blob's
    /// file name under `blobs/sha256/`.
    pub fn hex(&self) -> String {
        hex(&self.0)
    }
}

/// Lowercase hex of `bytes`. sha2 0.11's output type no longer implements
/// `LowerHex`, hence this helper.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Digest {
    type Err = DigestParseError;

    /// Accepts exactly `sha256:` followed by 64 lowercase hex digits: the
    /// spec's canonical form, so that one digest has one spelling.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || DigestParseError {
            input: s.to_owned(),
        };
        let hex = s.strip_prefix(PREFIX).ok_or_else(err)?.as_bytes();
        if hex.len() != 64 {
            return Err(err());
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
            let hi = nibble(pair[0]).ok_or_else(err)?;
            let lo = nibble(pair[1]).ok_or_else(err)?;
            *byte = (hi << 4) | lo;
        }
        Ok(Digest(out))
    }
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn digest_of_known_inputs() {
        assert_eq!(Digest::of(b"").to_string(), EMPTY);
        assert_eq!(
            Digest::of(b"abc").to_string(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Digest::of(b"").hex(), &EMPTY[7..]);
    }

    #[test]
    fn parse_round_trips() {
        let d: Digest = EMPTY.parse().expect("valid digest");
        assert_eq!(d, Digest::of(b""));
        assert_eq!(d.to_string(), EMPTY);
        assert_eq!(format!("{d:?}"), EMPTY);
    }

    #[test]
    fn parse_rejects_everything_else() {
        let upper = EMPTY.to_uppercase().replace("SHA256", "sha256");
        let bad = [
            "",
            "sha256:",
            &EMPTY[7..],
            &EMPTY[..EMPTY.len() - 1],
            &format!("{EMPTY}0"),
            &upper,
            &EMPTY.replace("sha256", "sha512"),
            &EMPTY.replace('e', "g"),
            &format!(" {EMPTY}"),
        ];
        for s in bad {
            assert_eq!(
                s.parse::<Digest>(),
                Err(DigestParseError {
                    input: s.to_owned()
                }),
                "{s:?}"
            );
        }
    }
}
