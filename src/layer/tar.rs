//! The archive stage of a layer: a file tree (`Tree`) becomes a deterministic
//! tar stream, entry by entry in tree order, host files streamed from disk.
//!
//! Every header is built field by field from the tree alone, so the bytes
//! depend on nothing but the tree and the clamp time: no host mtimes, owners,
//! user names, inode numbers or sparse maps. (tar's `HeaderMode::Deterministic`
//! is not used: it stamps a fixed 2006 mtime and rewrites modes.)
//!
//! Format: POSIX ustar headers, with a PAX extended header (POSIX.1-2001,
//! pax(1) "pax Extended Header") in front of an entry only when a value does
//! not fit its ustar field: names or link names over 100 bytes, ids over
//! 2097151, sizes or times of 8 GiB / year 2242 and beyond.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use ::tar::{Builder, EntryType, Header};

use super::LayerError;
#[cfg(test)]
use crate::digest::{Digest, HashingWriter};
use crate::rootfs::{Entry, ImagePath, Kind, Source, Tree};

/// Length of the ustar `name` and `linkname` fields.
const USTAR_NAME_MAX: usize = 100;
/// Largest value of the 8-byte octal `uid`/`gid` fields (7 digits and a NUL).
const USTAR_ID_MAX: u64 = 0o7_777_777;
/// Largest value of the 12-byte octal `size`/`mtime` fields (11 digits).
const USTAR_NUMBER_MAX: u64 = 0o77_777_777_777;

/// What an uncompressed layer tar came to.
#[cfg(test)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TarSummary {
    /// sha256 of the tar: the layer's `diff_id` in the image config, and its
    /// name in a docker-archive.
    pub diff_id: Digest,
    pub size: u64,
}

/// Writes `tree` as an uncompressed tar to `out`, every entry's mtime set to
/// `mtime` (SOURCE_DATE_EPOCH, or 0): the reference the compressing
/// writers are tested against.
#[cfg(test)]
pub fn write_tar<W: Write>(tree: &Tree, mtime: u64, out: W) -> Result<TarSummary, LayerError> {
    let mut out = HashingWriter::new(out);
    write_entries(tree, mtime, &mut out)?;
    let (_, diff_id, size) = out.finish();
    Ok(TarSummary { diff_id, size })
}

/// The tar stream itself, ending with the two zero blocks of end-of-archive.
pub(super) fn write_entries<W: Write>(tree: &Tree, mtime: u64, out: W) -> Result<(), LayerError> {
    let mut builder = Builder::new(out);
    for (path, entry) in tree.iter() {
        // The root is the directory the layer is extracted into, not an
        // entry of it (and has no name in a tar).
        if path.is_root() {
            continue;
        }
        if let Kind::Hardlink { target } = &entry.kind {
            check_hardlink(tree, path, target)?;
        }
        let (pax, header) = header_for(path, entry, mtime)?;
        if !pax.is_empty() {
            builder
                .append_pax_extensions(pax.iter().map(|(k, v)| (*k, v.as_slice())))
                .map_err(write_error)?;
        }
        match &entry.kind {
            Kind::File {
                source: Source::Host(host),
                size,
            } => append_host_file(&mut builder, &header, path, host, *size)?,
            Kind::File {
                source: Source::Bytes(data),
                size,
            } => {
                if data.len() as u64 != *size {
                    return Err(LayerError::BytesSize {
                        image: path.clone(),
                        planned: *size,
                        actual: data.len() as u64,
                    });
                }
                builder.append(&header, &data[..]).map_err(write_error)?;
            }
            Kind::Dir | Kind::Symlink { .. } | Kind::Hardlink { .. } => {
                builder.append(&header, io::empty()).map_err(write_error)?;
            }
        }
    }
    builder.into_inner().map_err(write_error)?;
    Ok(())
}

/// PAX records for one entry. Sorted by key, so the extended header's bytes
/// are as deterministic as the rest.
type PaxRecords = BTreeMap<&'static str, Vec<u8>>;

/// The ustar header for `entry`, and the PAX records that must precede it
/// for values the header cannot hold.
fn header_for(
    path: &ImagePath,
    entry: &Entry,
    mtime: u64,
) -> Result<(PaxRecords, Header), LayerError> {
    let header_error = |source| LayerError::Header {
        image: path.clone(),
        source,
    };
    let mut pax = PaxRecords::new();
    let mut header = Header::new_ustar();

    let mut name = path.relative().as_os_str().as_bytes().to_vec();
    let (entry_type, size, link) = match &entry.kind {
        Kind::Dir => {
            // The trailing slash marks a directory for old readers that
            // ignore the type flag; GNU tar and Go write it too.
            name.push(b'/');
            (EntryType::Directory, 0, None)
        }
        Kind::File { size, .. } => (EntryType::Regular, *size, None),
        Kind::Symlink { target } => (
            EntryType::Symlink,
            0,
            // Written byte for byte: a symlink target is opaque text, and
            // normalising it (as `set_link_name` does) could change it.
            Some(target.as_os_str().as_bytes().to_vec()),
        ),
        Kind::Hardlink { target } => (
            EntryType::Link,
            0,
            Some(target.relative().as_os_str().as_bytes().to_vec()),
        ),
    };

    if name.len() <= USTAR_NAME_MAX {
        header
            .set_path(Path::new(std::ffi::OsStr::from_bytes(&name)))
            .map_err(header_error)?;
    } else {
        put_truncated(&mut header.as_old_mut().name, &name).map_err(header_error)?;
        pax.insert("path", name);
    }
    if let Some(link) = link {
        if link.len() <= USTAR_NAME_MAX {
            header.set_link_name_literal(&link).map_err(header_error)?;
        } else {
            put_truncated(&mut header.as_old_mut().linkname, &link).map_err(header_error)?;
            pax.insert("linkpath", link);
        }
    }

    header.set_entry_type(entry_type);
    // File type lives in the type flag; the mode field is permission bits.
    header.set_mode(entry.mode & 0o7777);
    // Past the ustar limits the tar crate falls back to GNU base-256
    // numbers, which GNU tar and Go read; the PAX record is the portable
    // form that other readers need.
    let uid = u64::from(entry.uid);
    let gid = u64::from(entry.gid);
    header.set_uid(uid);
    header.set_gid(gid);
    header.set_size(size);
    header.set_mtime(mtime);
    for (key, value, max) in [
        ("uid", uid, USTAR_ID_MAX),
        ("gid", gid, USTAR_ID_MAX),
        ("size", size, USTAR_NUMBER_MAX),
        ("mtime", mtime, USTAR_NUMBER_MAX),
    ] {
        if value > max {
            pax.insert(key, value.to_string().into_bytes());
        }
    }
    // uname/gname stay empty: ids are what runtimes use, and names would
    // come from the build host's passwd. ustar has no atime/ctime fields.
    header.set_cksum();
    Ok((pax, header))
}

/// Fills a fixed header field with as much of `value` as fits. Only used when
/// a PAX record carries the full value; the field is then a hint for
/// readers that do not understand PAX.
fn put_truncated(field: &mut [u8], value: &[u8]) -> io::Result<()> {
    if value.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "name contains a NUL byte",
        ));
    }
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
    Ok(())
}

/// A tar hard link names an entry that must already have been extracted, so
/// its target has to be an earlier regular file (or link to one) in the same
/// layer.
fn check_hardlink(tree: &Tree, path: &ImagePath, target: &ImagePath) -> Result<(), LayerError> {
    let target_ok = matches!(
        tree.get(target).map(|e| &e.kind),
        Some(Kind::File { .. } | Kind::Hardlink { .. })
    );
    if target_ok && target < path {
        Ok(())
    } else {
        Err(LayerError::Hardlink {
            image: path.clone(),
            target: target.clone(),
        })
    }
}

/// Streams a host file into the archive. The header, already built, promises
/// exactly `planned` bytes; a file that has changed size since planning is an
/// error naming it, never a short or overlong entry.
fn append_host_file<W: Write>(
    builder: &mut Builder<W>,
    header: &Header,
    image: &ImagePath,
    host: &Path,
    planned: u64,
) -> Result<(), LayerError> {
    let read_error = |source| LayerError::Read {
        host: host.to_path_buf(),
        image: image.clone(),
        source,
    };
    let size_changed = |found| LayerError::SizeChanged {
        host: host.to_path_buf(),
        image: image.clone(),
        planned,
        found,
    };
    let file = File::open(host).map_err(read_error)?;
    // Checked before the header goes out, so the common case (the file was
    // rebuilt between planning and writing) fails without a partial entry.
    let found = file.metadata().map_err(read_error)?.len();
    if found != planned {
        return Err(size_changed(found));
    }
    let mut reader = SizedReader::new(file, planned);
    match builder.append(header, &mut reader) {
        Ok(()) => Ok(()),
        Err(e) => Err(match reader.failure.take() {
            Some(Failure::Shrank) => size_changed(reader.read),
            Some(Failure::Grew) => {
                let now = reader.file.metadata().map_or(planned + 1, |m| m.len());
                size_changed(now)
            }
            Some(Failure::Io(source)) => read_error(source),
            // The reader was fine, so the error came from the sink.
            None => write_error(e),
        }),
    }
}

/// Why a `SizedReader` stopped early.
#[derive(Debug)]
enum Failure {
    /// End of file before the planned size.
    Shrank,
    /// More bytes after the planned size.
    Grew,
    Io(io::Error),
}

/// Reads exactly `planned` bytes of a file, failing if it ends early or goes
/// on after them (it changed while being read). The cause is kept in
/// `failure`, since `Builder::append` only hands back an `io::Error` and
/// could not tell a reader's failure from the sink's.
struct SizedReader {
    file: File,
    planned: u64,
    read: u64,
    failure: Option<Failure>,
}

impl SizedReader {
    fn new(file: File, planned: u64) -> Self {
        SizedReader {
            file,
            planned,
            read: 0,
            failure: None,
        }
    }

    fn fail(&mut self, failure: Failure) -> io::Error {
        self.failure = Some(failure);
        io::Error::other("the host file changed or could not be read")
    }
}

impl Read for SizedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let remaining = self.planned - self.read;
        if remaining == 0 {
            // Everything planned has been read; one more byte means the
            // file grew.
            let mut probe = [0u8; 1];
            return match self.file.read(&mut probe) {
                Ok(0) => Ok(0),
                Ok(_) => Err(self.fail(Failure::Grew)),
                // `io::copy` retries these.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
                Err(e) => Err(self.fail(Failure::Io(e))),
            };
        }
        let want = usize::try_from(remaining).map_or(buf.len(), |r| r.min(buf.len()));
        match self.file.read(&mut buf[..want]) {
            Ok(0) => Err(self.fail(Failure::Shrank)),
            Ok(n) => {
                self.read += n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => Err(self.fail(Failure::Io(e))),
        }
    }
}

fn write_error(source: io::Error) -> LayerError {
    LayerError::Write { source }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::fixture::{self, Fixture};

    fn p(s: &str) -> ImagePath {
        ImagePath::new(s).unwrap()
    }

    #[test]
    fn round_trip_every_header_field() {
        let Fixture { tree, .. } = &fixture::fixture();
        let mut out = Vec::new();
        let summary = write_tar(tree, fixture::MTIME, &mut out).unwrap();
        assert_eq!(summary.size, out.len() as u64);
        assert_eq!(summary.diff_id, Digest::of(&out));
        fixture::check_tar(&out, fixture::MTIME);
    }

    #[test]
    fn default_mtime_is_zero() {
        let Fixture { tree, .. } = &fixture::fixture();
        let mut out = Vec::new();
        write_tar(tree, 0, &mut out).unwrap();
        fixture::check_tar(&out, 0);
    }

    #[test]
    fn big_values_get_pax_records() {
        struct Case {
            name: &'static str,
            entry: Entry,
            mtime: u64,
            want: &'static [(&'static str, &'static str)],
        }
        let big_file = Entry {
            kind: Kind::File {
                source: Source::Bytes(Vec::new().into()),
                size: 1 << 34,
            },
            mode: 0o644,
            uid: 0,
            gid: 0,
            stat: None,
        };
        let cases = [
            Case {
                name: "ids at the ustar limit",
                entry: Entry::dir(0o755).owned(2_097_151, 2_097_151),
                mtime: USTAR_NUMBER_MAX,
                want: &[],
            },
            Case {
                name: "ids past the ustar limit",
                entry: Entry::dir(0o755).owned(2_097_152, u32::MAX),
                mtime: 0,
                want: &[("gid", "4294967295"), ("uid", "2097152")],
            },
            Case {
                name: "16 GiB file in year 2514",
                entry: big_file,
                mtime: 1 << 34,
                want: &[("mtime", "17179869184"), ("size", "17179869184")],
            },
        ];
        for case in cases {
            let (pax, header) = header_for(&p("/x"), &case.entry, case.mtime).unwrap();
            let got: Vec<(&str, String)> = pax
                .iter()
                .map(|(k, v)| (*k, String::from_utf8(v.clone()).unwrap()))
                .collect();
            let want: Vec<(&str, String)> =
                case.want.iter().map(|(k, v)| (*k, v.to_string())).collect();
            assert_eq!(got, want, "{}", case.name);
            // The ustar fields still decode (base-256 past the limit).
            assert_eq!(
                header.uid().unwrap(),
                u64::from(case.entry.uid),
                "{}",
                case.name
            );
            assert_eq!(
                header.gid().unwrap(),
                u64::from(case.entry.gid),
                "{}",
                case.name
            );
            assert_eq!(header.mtime().unwrap(), case.mtime, "{}", case.name);
        }
    }

    #[test]
    fn name_of_exactly_100_bytes_needs_no_pax() {
        let name = format!("/{}", "n".repeat(100));
        let (pax, header) = header_for(&p(&name), &Entry::bytes(&b""[..], 0o644), 0).unwrap();
        assert!(pax.is_empty());
        assert_eq!(&*header.path_bytes(), &name.as_bytes()[1..]);
        // A directory of 99 bytes gets its slash and still fits; of 100 it
        // does not.
        let (pax, _) = header_for(&p(&name[..100]), &Entry::dir(0o755), 0).unwrap();
        assert!(pax.is_empty());
        let (pax, _) = header_for(&p(&name), &Entry::dir(0o755), 0).unwrap();
        assert_eq!(
            pax.get("path").map(Vec::as_slice),
            Some(format!("{}/", &name[1..]).as_bytes())
        );
    }

    #[test]
    fn hardlinks_must_point_back_to_a_file() {
        let cases = [
            ("/a/link", "/b/file", "/b/file"), // target sorts later
            ("/b/link", "/a/missing", "/a/file"),
            ("/b/link", "/a", "/a/file"), // a directory
        ];
        for (link, target, file) in cases {
            let mut tree = Tree::new();
            tree.insert(p(file), Entry::bytes(&b"x"[..], 0o644))
                .unwrap();
            let hardlink = Entry {
                kind: Kind::Hardlink { target: p(target) },
                mode: 0o644,
                uid: 0,
                gid: 0,
                stat: None,
            };
            tree.insert(p(link), hardlink).unwrap();
            match write_tar(&tree, 0, Vec::new()) {
                Err(LayerError::Hardlink { image, target: t }) => {
                    assert_eq!((image, t), (p(link), p(target)));
                }
                other => panic!("{link} -> {target}: {other:?}"),
            }
        }
    }

    #[test]
    fn bytes_with_wrong_size_are_rejected() {
        let mut tree = Tree::new();
        let entry = Entry::file(Source::Bytes(b"abc".to_vec().into()), 4, 0o644);
        tree.insert(p("/f"), entry).unwrap();
        match write_tar(&tree, 0, Vec::new()) {
            Err(LayerError::BytesSize {
                image,
                planned: 4,
                actual: 3,
            }) => assert_eq!(image, p("/f")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn host_file_changed_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("bin");
        for (planned, actual) in [(10u64, 5usize), (5, 10), (1, 0)] {
            std::fs::write(&host, vec![b'x'; actual]).unwrap();
            let mut tree = Tree::new();
            let entry = Entry::file(Source::Host(host.clone()), planned, 0o755);
            tree.insert(p("/usr/bin/y"), entry).unwrap();
            let err = write_tar(&tree, 0, Vec::new()).unwrap_err();
            let want = format!(
                "{} changed size after planning: planned as /usr/bin/y with {planned} bytes, \
                 it now has {actual}",
                host.display()
            );
            assert_eq!(err.to_string(), want);
            assert!(
                matches!(&err, LayerError::SizeChanged { host: h, planned: pl, found, .. }
                    if *h == host && *pl == planned && *found == actual as u64),
                "{err:?}"
            );
        }
    }

    #[test]
    fn unreadable_host_file_names_both_paths() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("gone");
        let mut tree = Tree::new();
        let entry = Entry::file(Source::Host(host.clone()), 3, 0o755);
        tree.insert(p("/usr/bin/y"), entry).unwrap();
        let err = write_tar(&tree, 0, Vec::new()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("cannot read {} (planned as /usr/bin/y)", host.display())
        );
        match err {
            LayerError::Read { source, .. } => {
                assert_eq!(source.kind(), io::ErrorKind::NotFound)
            }
            other => panic!("{other:?}"),
        }
    }

    /// The reader catches a size change that happens after the `fstat`
    /// check, while the file is being copied.
    #[test]
    fn sized_reader_detects_changes_while_reading() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("f");
        std::fs::write(&host, vec![7u8; 20_000]).unwrap();
        for (planned, want_read, want) in [
            (20_000, 20_000, "ok"),
            (30_000, 20_000, "shrank"),
            (10_000, 10_000, "grew"),
            (0, 0, "grew"),
        ] {
            let mut r = SizedReader::new(File::open(&host).unwrap(), planned);
            let result = io::copy(&mut r, &mut io::sink());
            let got = match (&result, &r.failure) {
                (Ok(n), None) => {
                    assert_eq!(*n, planned);
                    "ok"
                }
                (Err(_), Some(Failure::Shrank)) => "shrank",
                (Err(_), Some(Failure::Grew)) => "grew",
                other => panic!("{other:?}"),
            };
            assert_eq!((got, r.read), (want, want_read), "planned {planned}");
        }
    }
}
