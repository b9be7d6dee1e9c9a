//! Where a layout's or archive's files are: a directory, or a tar archive
//! read in place (an index of entry offsets, then seeks), so that no blob
//! is extracted or held in memory.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::SourceError;
use crate::image_path::archive_member;

/// Symlinks followed inside an archive before giving up (skopeo's
/// docker-archives link `<id>/layer.tar` to `../<diff_id>.tar`).
const MAX_LINKS: usize = 8;

/// gzip (RFC 1952) and zstd (RFC 8878) magic numbers.
pub(crate) const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
pub(crate) const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

#[derive(Clone, Debug)]
pub(super) enum Item {
    File {
        offset: u64,
        size: u64,
    },
    /// A symlink, its target already made an archive path.
    Link(String),
}

#[derive(Debug)]
pub(super) enum Store {
    Dir(PathBuf),
    Tar {
        file: PathBuf,
        items: BTreeMap<String, Item>,
    },
}

impl Store {
    /// Indexes the tar at `file`: one pass over its headers, seeking over
    /// content.
    pub(super) fn tar(file: &Path) -> Result<Store, SourceError> {
        let io = |action| {
            let path = file.to_path_buf();
            move |source| SourceError::Io {
                action,
                path,
                source,
            }
        };
        let mut f = File::open(file).map_err(io("open"))?;
        let mut magic = Vec::new();
        (&mut f)
            .take(ZSTD_MAGIC.len() as u64)
            .read_to_end(&mut magic)
            .map_err(io("read"))?;
        if magic.starts_with(GZIP_MAGIC) || magic.starts_with(ZSTD_MAGIC) {
            return Err(SourceError::CompressedArchive {
                path: file.to_path_buf(),
            });
        }
        f.seek(SeekFrom::Start(0)).map_err(io("read"))?;
        let mut archive = tar::Archive::new(f);
        let mut items = BTreeMap::new();
        let bad = |cause| SourceError::NotATar {
            path: file.to_path_buf(),
            cause,
        };
        for entry in archive.entries_with_seek().map_err(bad)? {
            let entry = entry.map_err(bad)?;
            let Some(name) = entry
                .path()
                .ok()
                .and_then(|p| archive_member(&p.to_string_lossy()))
            else {
                continue;
            };
            let item = match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => Item::File {
                    offset: entry.raw_file_position(),
                    size: entry.size(),
                },
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    let Some(target) = entry.link_name().ok().flatten() else {
                        continue;
                    };
                    let target = target.to_string_lossy();
                    // A symlink is relative to its directory; a hard link
                    // names an archive path.
                    let joined = match (entry.header().entry_type(), name.rsplit_once('/')) {
                        (tar::EntryType::Symlink, Some((dir, _))) => format!("{dir}/{target}"),
                        _ => target.into_owned(),
                    };
                    match archive_member(&joined) {
                        Some(t) => Item::Link(t),
                        None => continue,
                    }
                }
                _ => continue,
            };
            items.insert(name, item);
        }
        Ok(Store::Tar {
            file: file.to_path_buf(),
            items,
        })
    }

    /// Whether the archive or directory has a file at `name`.
    pub(super) fn has(&self, name: &str) -> bool {
        match self {
            Store::Dir(root) => root.join(name).is_file(),
            Store::Tar { .. } => self.span(name).is_some(),
        }
    }

    /// Where `name` is, for messages: a path, or `archive:name`.
    pub(super) fn describe(&self, name: &str) -> String {
        match self {
            Store::Dir(root) => root.join(name).display().to_string(),
            Store::Tar { file, .. } => format!("{}:{name}", file.display()),
        }
    }

    /// The size of the file at `name`.
    pub(super) fn size(&self, name: &str) -> Result<u64, SourceError> {
        match self {
            Store::Dir(root) => {
                let path = root.join(name);
                std::fs::metadata(&path)
                    .map(|m| m.len())
                    .map_err(|source| self.missing_or(name, source))
            }
            Store::Tar { .. } => {
                self.span(name)
                    .map(|(_, size)| size)
                    .ok_or_else(|| SourceError::Missing {
                        location: self.describe(name),
                    })
            }
        }
    }

    /// A buffered reader of the file at `name`.
    pub(super) fn open(&self, name: &str) -> Result<Box<dyn BufRead + Send>, SourceError> {
        match self {
            Store::Dir(root) => {
                let f = File::open(root.join(name)).map_err(|e| self.missing_or(name, e))?;
                Ok(Box::new(BufReader::new(f)))
            }
            Store::Tar { file, .. } => {
                let (offset, size) = self.span(name).ok_or_else(|| SourceError::Missing {
                    location: self.describe(name),
                })?;
                let io = |source| SourceError::Io {
                    action: "read",
                    path: file.clone(),
                    source,
                };
                let mut f = File::open(file).map_err(io)?;
                f.seek(SeekFrom::Start(offset)).map_err(io)?;
                Ok(Box::new(BufReader::new(f.take(size))))
            }
        }
    }

    /// The whole file at `name`, refused if larger than `limit`: for JSON
    /// documents, which must not exhaust memory however the archive lies.
    pub(super) fn read(&self, name: &str, limit: u64) -> Result<Vec<u8>, SourceError> {
        let size = self.size(name)?;
        if size > limit {
            return Err(SourceError::TooLarge {
                location: self.describe(name),
                size,
                limit,
            });
        }
        let mut out = Vec::new();
        self.open(name)?
            .take(limit)
            .read_to_end(&mut out)
            .map_err(|source| SourceError::Read {
                location: self.describe(name),
                source,
            })?;
        Ok(out)
    }

    fn missing_or(&self, name: &str, source: io::Error) -> SourceError {
        if source.kind() == io::ErrorKind::NotFound {
            SourceError::Missing {
                location: self.describe(name),
            }
        } else {
            SourceError::Read {
                location: self.describe(name),
                source,
            }
        }
    }

    /// Offset and size of a regular file in the archive, links followed.
    fn span(&self, name: &str) -> Option<(u64, u64)> {
        let Store::Tar { items, .. } = self else {
            return None;
        };
        let mut name = archive_member(name)?;
        for _ in 0..=MAX_LINKS {
            match items.get(&name)? {
                Item::File { offset, size } => return Some((*offset, *size)),
                Item::Link(target) => name = target.clone(),
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn reads_files_and_follows_links_in_a_tar() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a.tar");
        let mut b = tar::Builder::new(File::create(&path).unwrap());
        let mut h = tar::Header::new_ustar();
        h.set_size(5);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h.clone(), "./x.tar", &b"hello"[..])
            .unwrap();
        let mut big = h.clone();
        big.set_size(2000);
        b.append_data(&mut big, "big.json", &[b' '; 2000][..])
            .unwrap();
        let mut l = tar::Header::new_ustar();
        l.set_entry_type(tar::EntryType::Symlink);
        l.set_size(0);
        b.append_link(&mut l, "id/layer.tar", "../x.tar").unwrap();
        b.append_link(&mut l.clone(), "loop", "loop").unwrap();
        b.into_inner().unwrap().flush().unwrap();

        let s = Store::tar(&path).unwrap();
        let mut out = String::new();
        s.open("id/layer.tar")
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "hello");
        assert_eq!(s.size("x.tar").unwrap(), 5);
        assert!(s.has("x.tar") && !s.has("loop") && !s.has("nope"));
        assert!(matches!(
            s.read("big.json", 1000),
            Err(SourceError::TooLarge { size: 2000, .. })
        ));
        assert!(matches!(s.open("loop"), Err(SourceError::Missing { .. })));
    }

    #[test]
    fn compressed_archives_are_named_as_such() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a.tar.gz");
        std::fs::write(&path, [0x1f, 0x8b, 8, 0]).unwrap();
        assert!(matches!(
            Store::tar(&path),
            Err(SourceError::CompressedArchive { .. })
        ));
    }
}
