//! The encoding of the survey's answers kept in the memo: counts and
//! lengths as 8 little-endian bytes, fields as their length and bytes,
//! optional fields after a 0 or 1. What is read back is never trusted:
//! any cut, extra byte or bad flag reads as nothing.

pub(super) struct Writer(Vec<u8>);

impl Writer {
    pub(super) fn new() -> Writer {
        Writer(Vec::new())
    }

    pub(super) fn count(&mut self, n: usize) {
        self.0.extend_from_slice(&(n as u64).to_le_bytes());
    }

    pub(super) fn field(&mut self, b: &[u8]) {
        self.count(b.len());
        self.0.extend_from_slice(b);
    }

    pub(super) fn optional(&mut self, b: Option<&[u8]>) {
        match b {
            None => self.0.push(0),
            Some(b) => {
                self.0.push(1);
                self.field(b);
            }
        }
    }

    pub(super) fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

pub(super) struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader(bytes)
    }

    pub(super) fn count(&mut self) -> Option<usize> {
        let (n, rest) = self.0.split_first_chunk::<8>()?;
        self.0 = rest;
        usize::try_from(u64::from_le_bytes(*n)).ok()
    }

    pub(super) fn field(&mut self) -> Option<&'a [u8]> {
        let len = self.count()?;
        let b = self.0.get(..len)?;
        self.0 = &self.0[len..];
        Some(b)
    }

    pub(super) fn text(&mut self) -> Option<String> {
        String::from_utf8(self.field()?.to_vec()).ok()
    }

    pub(super) fn optional(&mut self) -> Option<Option<&'a [u8]>> {
        let (flag, rest) = self.0.split_first()?;
        self.0 = rest;
        match flag {
            0 => Some(None),
            1 => self.field().map(Some),
            _ => None,
        }
    }

    /// Whether every byte has been read.
    pub(super) fn is_done(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_damage() {
        let mut w = Writer::new();
        w.count(3);
        w.field(b"abc");
        w.optional(None);
        w.optional(Some(b"\xff"));
        let bytes = w.into_bytes();
        let read = |bytes: &[u8]| {
            let mut r = Reader::new(bytes);
            let got = (r.count()?, r.text()?, r.optional()?, r.optional()?);
            r.is_done()
                .then_some((got.0, got.1, got.2.is_none(), got.3 == Some(b"\xff")))
        };
        assert_eq!(read(&bytes), Some((3, "abc".to_owned(), true, true)));
        for cut in 0..bytes.len() {
            assert_eq!(read(&bytes[..cut]), None, "cut at {cut}");
        }
        assert_eq!(read(&[&bytes[..], b"x"].concat()), None);
        // A flag other than 0 or 1, and a length past the end.
        let mut bad = bytes.clone();
        bad[8 + 8 + 3] = 2;
        assert_eq!(read(&bad), None);
        assert_eq!(Reader::new(&u64::MAX.to_le_bytes()).field(), None);
    }
}
