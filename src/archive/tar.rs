//! The tar writer both archives use: ustar headers built field by field,
//! content streamed, and one trick for content whose size is only known
//! once it has been written (a layer being decompressed into a
//! docker-archive): a placeholder header, patched afterwards.
//!
//! Every name is short (a digest plus a few bytes, under ustar's 100), so no
//! PAX headers are needed. A size of 8 GiB or more is written in the GNU
//! base-256 form, which Go's archive/tar (Docker, podman, skopeo), GNU tar
//! and bsdtar read.

use std::io::{self, Read, Seek, SeekFrom, Write};

use ::tar::{EntryType, Header};

/// tar works in 512-byte blocks (POSIX.1 ustar).
const BLOCK: u64 = 512;
/// Modes of the entries. The archive is a transport, unpacked by tools
/// that set their own modes; these are what `docker save` writes.
const FILE_MODE: u32 = 0o644;
const DIR_MODE: u32 = 0o755;

pub(super) struct TarWriter<W> {
    out: W,
    /// Bytes written so far: where the next header goes.
    pos: u64,
    mtime: u64,
}

impl<W: Write + Seek> TarWriter<W> {
    /// A writer stamping every entry with `mtime` (SOURCE_DATE_EPOCH).
    pub(super) fn new(out: W, mtime: u64) -> Self {
        TarWriter { out, pos: 0, mtime }
    }

    /// A directory entry; `name` ends in `/`.
    pub(super) fn dir(&mut self, name: &str) -> io::Result<()> {
        let header = self.header(name, EntryType::Directory, 0, DIR_MODE)?;
        self.put(header.as_bytes())
    }

    /// A file held in memory (small JSON documents).
    pub(super) fn bytes(&mut self, name: &str, data: &[u8]) -> io::Result<()> {
        self.file(name, data.len() as u64, data)
    }

    /// A file of `size` bytes read from `content`, which must hold exactly
    /// that many: a blob that changes under us is an error, not a corrupt
    /// archive.
    pub(super) fn file(&mut self, name: &str, size: u64, mut content: impl Read) -> io::Result<()> {
        let header = self.header(name, EntryType::Regular, size, FILE_MODE)?;
        self.put(header.as_bytes())?;
        let copied = io::copy(&mut (&mut content).take(size), &mut self.out)?;
        self.pos += copied;
        if copied != size || content.read(&mut [0u8; 1])? != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{name}: expected {size} bytes, the file changed while it was archived"),
            ));
        }
        self.pad(size)
    }

    /// A file whose content `fill` writes and whose size is known only
    /// afterwards: a zeroed placeholder header goes first and is rewritten
    /// once the size is known. Returns the size, or `fill`'s error (the
    /// outer error is the archive's own).
    pub(super) fn stream<E>(
        &mut self,
        name: &str,
        fill: impl FnOnce(&mut dyn Write) -> Result<(), E>,
    ) -> io::Result<Result<u64, E>> {
        let start = self.pos;
        self.put(&[0; BLOCK as usize])?;
        let mut counting = Counting {
            inner: &mut self.out,
            count: 0,
        };
        if let Err(e) = fill(&mut counting) {
            return Ok(Err(e));
        }
        let size = counting.count;
        self.pos += size;
        self.pad(size)?;
        let header = self.header(name, EntryType::Regular, size, FILE_MODE)?;
        self.out.seek(SeekFrom::Start(start))?;
        self.out.write_all(header.as_bytes())?;
        self.out.seek(SeekFrom::Start(self.pos))?;
        Ok(Ok(size))
    }

    /// Writes the end-of-archive marker (two zero blocks) and returns the
    /// output.
    pub(super) fn finish(mut self) -> io::Result<W> {
        self.put(&[0; 2 * BLOCK as usize])?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn header(&self, name: &str, kind: EntryType, size: u64, mode: u32) -> io::Result<Header> {
        let mut h = Header::new_ustar();
        h.set_path(name)?;
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(self.mtime);
        // uname/gname stay empty: ids are what loaders use.
        h.set_cksum();
        Ok(h)
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.pos += bytes.len() as u64;
        Ok(())
    }

    /// Zeros up to the next block boundary after `size` content bytes.
    fn pad(&mut self, size: u64) -> io::Result<()> {
        let rem = size % BLOCK;
        if rem == 0 {
            return Ok(());
        }
        // `BLOCK - rem` is below 512, so the cast cannot truncate.
        let n = (BLOCK - rem) as usize;
        self.put(&[0; BLOCK as usize][..n])
    }
}

/// Counts the bytes `inner` accepted.
struct Counting<'a, W> {
    inner: &'a mut W,
    count: u64,
}

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    /// (path, type, size, mtime, uid, gid, mode, content) of each entry.
    type Listed = (String, EntryType, u64, u64, u64, u64, u32, Vec<u8>);

    fn list(bytes: &[u8]) -> Vec<Listed> {
        let mut archive = ::tar::Archive::new(bytes);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let h = e.header().clone();
                let mut content = Vec::new();
                e.read_to_end(&mut content).unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    h.entry_type(),
                    h.size().unwrap(),
                    h.mtime().unwrap(),
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                    h.mode().unwrap(),
                    content,
                )
            })
            .collect()
    }

    #[test]
    fn entries_are_fixed_and_streamed_sizes_are_patched() {
        let mut w = TarWriter::new(Cursor::new(Vec::new()), 1_700_000_000);
        w.dir("d/").unwrap();
        w.bytes("d/a.json", b"{}").unwrap();
        w.file("b", 600, &[7u8; 600][..]).unwrap();
        let size = w
            .stream::<io::Error>("d/layer.tar", |out| {
                out.write_all(&[1; 1000])?;
                out.write_all(&[2; 24])
            })
            .unwrap()
            .unwrap();
        assert_eq!(size, 1024);
        w.bytes("last", b"x").unwrap();
        let bytes = w.finish().unwrap().into_inner();
        // Headers + content rounded up to blocks + two zero blocks.
        assert_eq!(bytes.len(), 512 * (1 + 2 + 3 + 3 + 2) + 1024);
        let want: Vec<Listed> = vec![
            (
                "d/".into(),
                EntryType::Directory,
                0,
                1_700_000_000,
                0,
                0,
                0o755,
                vec![],
            ),
            (
                "d/a.json".into(),
                EntryType::Regular,
                2,
                1_700_000_000,
                0,
                0,
                0o644,
                b"{}".to_vec(),
            ),
            (
                "b".into(),
                EntryType::Regular,
                600,
                1_700_000_000,
                0,
                0,
                0o644,
                vec![7; 600],
            ),
            (
                "d/layer.tar".into(),
                EntryType::Regular,
                1024,
                1_700_000_000,
                0,
                0,
                0o644,
                [vec![1; 1000], vec![2; 24]].concat(),
            ),
            (
                "last".into(),
                EntryType::Regular,
                1,
                1_700_000_000,
                0,
                0,
                0o644,
                b"x".to_vec(),
            ),
        ];
        assert_eq!(list(&bytes), want);
    }

    #[test]
    fn a_file_that_changed_size_is_an_error() {
        let mut w = TarWriter::new(Cursor::new(Vec::new()), 0);
        let err = w.file("short", 10, &[0u8; 9][..]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let mut w = TarWriter::new(Cursor::new(Vec::new()), 0);
        let err = w.file("long", 10, &[0u8; 11][..]).unwrap_err();
        assert!(err.to_string().contains("changed"), "{err}");
    }

    #[test]
    fn a_failed_stream_passes_its_error_on() {
        let mut w = TarWriter::new(Cursor::new(Vec::new()), 0);
        let err = w
            .stream("x", |_| Err(io::Error::other("boom")))
            .unwrap()
            .unwrap_err();
        assert_eq!(err.to_string(), "boom");
    }
}
