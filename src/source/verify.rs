//! A blob stream checked against its descriptor as it is read: every
//! source's [`super::ImageSource::blob`] hands one out, so no reader of an
//! image can take bytes that are not the ones the manifest names.

use std::io::{self, Read};

use sha2::{Digest as _, Sha256};

use crate::digest::Digest;

/// Why a blob's bytes are not the ones its descriptor names. Carried
/// inside the `io::Error` a read returns (kind `InvalidData`); find it
/// with [`check_error`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlobCheckError {
    #[error("the blob has digest {found}, expected {expected}")]
    Digest { expected: Digest, found: Digest },
    /// `found` is what was read: at EOF, or the first count past
    /// `expected` (the stream is cut there).
    #[error("the blob is {found} bytes or more, but its descriptor says {expected}")]
    Size { expected: u64, found: u64 },
}

/// The [`BlobCheckError`] inside `e`, if that is why a read failed.
pub fn check_error(e: &io::Error) -> Option<&BlobCheckError> {
    e.get_ref()?.downcast_ref::<BlobCheckError>()
}

/// Reads `inner`, hashing and counting; fails at the first byte past
/// `size`, and at EOF unless exactly `size` bytes hashing to `digest`
/// came. After a failure every read fails again.
pub struct VerifiedReader<R> {
    inner: R,
    hasher: Option<Sha256>,
    expected: Digest,
    size: u64,
    read: u64,
    failed: Option<BlobCheckError>,
}

impl<R: Read> VerifiedReader<R> {
    pub fn new(inner: R, expected: Digest, size: u64) -> Self {
        VerifiedReader {
            inner,
            hasher: Some(Sha256::new()),
            expected,
            size,
            read: 0,
            failed: None,
        }
    }

    fn fail(&mut self, e: BlobCheckError) -> io::Error {
        self.failed = Some(e.clone());
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

impl<R: Read> Read for VerifiedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = &self.failed {
            return Err(io::Error::new(io::ErrorKind::InvalidData, e.clone()));
        }
        let Some(hasher) = self.hasher.as_mut() else {
            // Checked at EOF already.
            return Ok(0);
        };
        if buf.is_empty() {
            return Ok(0);
        }
        // Read at most one byte past the size: enough to see an overrun
        // without taking more of a stream that never ends.
        let room = self.size.saturating_sub(self.read).saturating_add(1);
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        let got = buf
            .get(..n)
            .ok_or_else(|| io::Error::other("reader returned more bytes than the buffer holds"))?;
        hasher.update(got);
        self.read += n as u64;
        if self.read > self.size {
            let found = self.read;
            return Err(self.fail(BlobCheckError::Size {
                expected: self.size,
                found,
            }));
        }
        if n == 0 {
            if self.read != self.size {
                let found = self.read;
                return Err(self.fail(BlobCheckError::Size {
                    expected: self.size,
                    found,
                }));
            }
            let found = self
                .hasher
                .take()
                .map(|h| Digest::from_bytes(h.finalize().into()));
            if let Some(found) = found
                && found != self.expected
            {
                return Err(self.fail(BlobCheckError::Digest {
                    expected: self.expected,
                    found,
                }));
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(r: impl Read) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut r = r;
        r.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn passes_the_right_bytes_and_stops_the_wrong_ones() {
        let data = b"layer bytes".to_vec();
        let d = Digest::of(&data);
        let n = data.len() as u64;
        assert_eq!(
            read_all(VerifiedReader::new(&data[..], d, n)).unwrap(),
            data
        );

        let bad = b"layer bytez";
        let e = read_all(VerifiedReader::new(&bad[..], d, n)).unwrap_err();
        assert_eq!(
            check_error(&e),
            Some(&BlobCheckError::Digest {
                expected: d,
                found: Digest::of(bad)
            })
        );
        // Short, and long: the size is checked too, and a stream that
        // goes on is cut one byte past the size.
        let e = read_all(VerifiedReader::new(&data[..5], d, n)).unwrap_err();
        assert_eq!(
            check_error(&e),
            Some(&BlobCheckError::Size {
                expected: n,
                found: 5
            })
        );
        let e = read_all(VerifiedReader::new(io::repeat(b'x'), d, n)).unwrap_err();
        assert_eq!(
            check_error(&e),
            Some(&BlobCheckError::Size {
                expected: n,
                found: n + 1
            })
        );
        // Once failed, always failed.
        let mut r = VerifiedReader::new(&bad[..], d, n);
        assert!(read_all(&mut r).is_err());
        assert!(r.read(&mut [0; 8]).is_err());
    }
}
