//! A layer cache record: what a key's layer came to (its blob's digest and
//! size, diff-id, tar size and media type), as a few lines of text that end
//! with a checksum of the others. Parsing is strict: a record that is not
//! exactly what [`Record::encode`] writes is corrupt, never half-trusted.

use crate::digest::Digest;
use crate::layer::LayerDigests;

use super::key::FORMAT;

/// The first line names the format, so a reader of another format's
/// record can say so instead of calling it corrupt.
const MAGIC: &str = "mkimage layer cache record";

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Record {
    /// The mkimage version that wrote it.
    pub(super) version: String,
    /// The key it answers, as hex: a record renamed to another key's file
    /// name is caught.
    pub(super) key: String,
    pub(super) digests: LayerDigests,
    pub(super) media_type: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(super) enum RecordError {
    #[error("it was written by another cache format ({found:?})")]
    Format { found: String },
    #[error("it is not a valid record ({why})")]
    Corrupt { why: &'static str },
}

impl Record {
    pub(super) fn encode(&self) -> Vec<u8> {
        let body = format!(
            "{MAGIC} v{FORMAT}\nversion {}\nkey {}\ndigest {}\ndiff_id {}\nsize {}\nuncompressed_size {}\nmedia_type {}\n",
            self.version,
            self.key,
            self.digests.digest,
            self.digests.diff_id,
            self.digests.size,
            self.digests.uncompressed_size,
            self.media_type,
        );
        let check = Digest::of(body.as_bytes());
        format!("{body}check {check}\n").into_bytes()
    }

    pub(super) fn parse(bytes: &[u8]) -> Result<Record, RecordError> {
        let corrupt = |why| RecordError::Corrupt { why };
        let text = std::str::from_utf8(bytes).map_err(|_| corrupt("not UTF-8"))?;
        let first = text.lines().next().unwrap_or_default();
        if first != format!("{MAGIC} v{FORMAT}") {
            return match first.strip_prefix(MAGIC) {
                Some(v) => Err(RecordError::Format {
                    found: v.trim().to_owned(),
                }),
                None => Err(corrupt("no header line")),
            };
        }
        let body_end = text.rfind("check ").ok_or(corrupt("no checksum"))?;
        let (body, check) = text.split_at(body_end);
        let check = check
            .strip_prefix("check ")
            .and_then(|c| c.strip_suffix('\n'))
            .and_then(|c| c.parse::<Digest>().ok())
            .ok_or(corrupt("bad checksum line"))?;
        if Digest::of(body.as_bytes()) != check {
            return Err(corrupt("checksum mismatch"));
        }
        let mut lines = body.lines().skip(1);
        let mut field = |name: &str| {
            lines
                .next()
                .and_then(|l| l.strip_prefix(name))
                .and_then(|l| l.strip_prefix(' '))
                .map(str::to_owned)
                .ok_or(corrupt("missing field"))
        };
        let version = field("version")?;
        let key = field("key")?;
        let blob = field("digest")?;
        let diff_id = field("diff_id")?;
        let size = field("size")?;
        let uncompressed_size = field("uncompressed_size")?;
        let media_type = field("media_type")?;
        if lines.next().is_some() {
            return Err(corrupt("extra lines"));
        }
        let digest = |s: &str| s.parse::<Digest>().map_err(|_| corrupt("bad digest"));
        let number = |s: &str| s.parse::<u64>().map_err(|_| corrupt("bad number"));
        Ok(Record {
            version,
            key,
            digests: LayerDigests {
                digest: digest(&blob)?,
                diff_id: digest(&diff_id)?,
                size: number(&size)?,
                uncompressed_size: number(&uncompressed_size)?,
            },
            media_type,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        Record {
            version: "0.1.0".into(),
            key: "ab".repeat(32),
            digests: LayerDigests {
                digest: Digest::of(b"blob"),
                diff_id: Digest::of(b"tar"),
                size: 1234,
                uncompressed_size: 10240,
            },
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
        }
    }

    #[test]
    fn round_trip() {
        let r = record();
        assert_eq!(Record::parse(&r.encode()), Ok(r));
    }

    #[test]
    fn every_damage_is_caught() {
        let good = record().encode();
        // Truncated anywhere.
        for n in 0..good.len() {
            assert!(Record::parse(&good[..n]).is_err(), "truncated to {n}");
        }
        // Any one byte changed.
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x01;
            assert!(Record::parse(&bad).is_err(), "byte {i} flipped");
        }
        let mut longer = good.clone();
        longer.extend_from_slice(b"more\n");
        assert!(Record::parse(&longer).is_err());
    }

    #[test]
    fn another_format_says_so() {
        let text = String::from_utf8(record().encode()).unwrap();
        let other = text.replacen(&format!("v{FORMAT}"), "v99", 1);
        assert_eq!(
            Record::parse(other.as_bytes()),
            Err(RecordError::Format {
                found: "v99".into()
            })
        );
        assert_eq!(
            Record::parse(b"\x00\x01garbage"),
            Err(RecordError::Corrupt {
                why: "no header line"
            })
        );
    }
}
