//! The file view of a base image (`--base`): what exists in it after its
//! layers are applied in order, whiteouts and opaque directories honoured
//! (image-spec layer.md, "Whiteouts"), read from the layer tar streams
//! without unpacking them. Paths, types, modes and link targets are
//! indexed; the few files the build must read (shared libraries, for
//! their ELF headers and symbol versions, and /etc/passwd, /etc/group)
//! are extracted to a temporary directory.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::image_path::absolute_str;

/// A whiteout's name prefix, and the opaque-directory marker.
const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";
/// Symlinks followed in one lookup before giving up (the kernel's
/// limit, path_resolution(7)).
const MAX_LINKS: usize = 40;
/// Most entries a base may have: far above any real image.
const MAX_ENTRIES: usize = 4_000_000;

#[derive(Debug, thiserror::Error)]
pub enum BaseViewError {
    #[error("reading layer {layer} of the base: {source}")]
    Read {
        layer: String,
        #[source]
        source: std::io::Error,
    },
    #[error("layer {layer} of the base has an entry {path:?} that leaves the root")]
    BadPath { layer: String, path: String },
    #[error("the base has more than {MAX_ENTRIES} entries")]
    TooMany,
    #[error("cannot extract {path} from the base to {}: {source}", dir.display())]
    Extract {
        path: String,
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One path of the base.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BaseKind {
    File { size: u64 },
    Dir,
    Symlink { target: PathBuf },
    Hardlink { target: String },
    Other,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseEntry {
    pub kind: BaseKind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

/// The merged view of the base's layers.
#[derive(Debug, Default)]
pub struct BaseView {
    /// Absolute, normalised paths (`/usr/lib/x`).
    entries: BTreeMap<String, BaseEntry>,
    /// Extracted files: image path → file under the temporary directory.
    extracted: BTreeMap<String, PathBuf>,
}

/// Whether the build needs the bytes of the base file at `path`.
pub fn wanted(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    path == "/etc/passwd"
        || path == "/etc/group"
        || name.contains(".so")
        || name.starts_with("ld-linux")
        || name.starts_with("ld64")
}

fn is_below(path: &str, dir: &str) -> bool {
    dir == "/" && path != "/"
        || path.starts_with(dir) && path.as_bytes().get(dir.len()) == Some(&b'/')
}

impl BaseView {
    /// Applies one layer (an uncompressed tar stream) over what is there,
    /// extracting the [`wanted`] files into `extract_dir`.
    pub fn apply(
        &mut self,
        layer: &str,
        tar: impl Read,
        extract_dir: &Path,
        extract: &dyn Fn(&str) -> bool,
    ) -> Result<(), BaseViewError> {
        let read = |source| BaseViewError::Read {
            layer: layer.to_owned(),
            source,
        };
        let mut archive = tar::Archive::new(tar);
        // What this layer itself added: an opaque marker or whiteout
        // hides lower layers only.
        let mut added: BTreeSet<String> = BTreeSet::new();
        for entry in archive.entries().map_err(read)? {
            let mut entry = entry.map_err(read)?;
            let raw = entry.path().map_err(read)?.into_owned();
            let path = absolute_str(&raw).ok_or_else(|| BaseViewError::BadPath {
                layer: layer.to_owned(),
                path: raw.display().to_string(),
            })?;
            let (dir, name) = path.rsplit_once('/').unwrap_or(("", &path));
            let dir = if dir.is_empty() { "/" } else { dir };
            if name == OPAQUE {
                self.remove_below(dir, &added);
                continue;
            }
            if let Some(hidden) = name.strip_prefix(WHITEOUT) {
                let target = if dir == "/" {
                    format!("/{hidden}")
                } else {
                    format!("{dir}/{hidden}")
                };
                self.remove(&target, &added);
                continue;
            }
            let header = entry.header();
            let mode = header.mode().map_err(read)? & 0o7777;
            let uid = header.uid().map_err(read)?;
            let gid = header.gid().map_err(read)?;
            let kind = match header.entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => BaseKind::File {
                    size: header.size().map_err(read)?,
                },
                tar::EntryType::Directory => BaseKind::Dir,
                tar::EntryType::Symlink => BaseKind::Symlink {
                    target: entry
                        .link_name()
                        .map_err(read)?
                        .unwrap_or_default()
                        .into_owned(),
                },
                tar::EntryType::Link => {
                    let target = entry.link_name().map_err(read)?.unwrap_or_default();
                    BaseKind::Hardlink {
                        target: absolute_str(&target).unwrap_or_default(),
                    }
                }
                _ => BaseKind::Other,
            };
            // A non-directory replaces a directory and all below it.
            if kind != BaseKind::Dir {
                self.remove_below(&path, &added);
            }
            self.extracted.remove(&path);
            match &kind {
                BaseKind::File { .. } if extract(&path) => {
                    let dest = extract_dir.join(path.trim_start_matches('/'));
                    let fail = |source| BaseViewError::Extract {
                        path: path.clone(),
                        dir: extract_dir.to_path_buf(),
                        source,
                    };
                    if let Some(parent) = dest.parent() {
                        std::fs::create_dir_all(parent).map_err(fail)?;
                    }
                    let mut out = std::fs::File::create(&dest).map_err(fail)?;
                    std::io::copy(&mut entry, &mut out).map_err(read)?;
                    self.extracted.insert(path.clone(), dest);
                }
                BaseKind::Hardlink { target } if extract(&path) => {
                    if let Some(src) = self.extracted.get(target).cloned() {
                        self.extracted.insert(path.clone(), src);
                    }
                }
                _ => {}
            }
            if self.entries.len() >= MAX_ENTRIES {
                return Err(BaseViewError::TooMany);
            }
            self.entries.insert(
                path.clone(),
                BaseEntry {
                    kind,
                    mode,
                    uid,
                    gid,
                },
            );
            added.insert(path);
        }
        Ok(())
    }

    fn remove(&mut self, path: &str, keep: &BTreeSet<String>) {
        if !keep.contains(path) {
            self.entries.remove(path);
            self.extracted.remove(path);
        }
        self.remove_below(path, keep);
    }

    fn remove_below(&mut self, dir: &str, keep: &BTreeSet<String>) {
        let below: Vec<String> = self
            .entries
            .range(dir.to_owned()..)
            .map(|(k, _)| k)
            .skip_while(|k| k.as_str() == dir)
            .take_while(|k| is_below(k, dir) || k.as_str() == dir)
            .filter(|k| is_below(k, dir) && !keep.contains(k.as_str()))
            .cloned()
            .collect();
        for k in below {
            self.entries.remove(&k);
            self.extracted.remove(&k);
        }
    }

    /// Every entry at or below `dir`, in path order.
    pub fn below<'a>(&'a self, dir: &'a str) -> impl Iterator<Item = (&'a String, &'a BaseEntry)> {
        self.entries
            .range(dir.to_owned()..)
            .take_while(move |(k, _)| k.as_str() == dir || is_below(k, dir))
    }

    /// The extracted copy of the file at exactly `path`.
    pub fn extracted_at(&self, path: &str) -> Option<&Path> {
        self.extracted.get(path).map(PathBuf::as_path)
    }

    /// The entry at `path` exactly (no symlink followed).
    pub fn get(&self, path: &str) -> Option<&BaseEntry> {
        self.entries.get(path)
    }

    /// `path` with every symlink among its components resolved within the
    /// base, as the kernel would in a container; `None` if a link loops or
    /// a component does not exist (the last one may be missing: then the
    /// path it would have).
    pub fn real_path(&self, path: &str) -> Option<String> {
        let mut todo: Vec<String> = absolute_str(Path::new(path))?
            .split('/')
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .rev()
            .collect();
        let mut cur = String::new();
        let mut links = 0;
        while let Some(c) = todo.pop() {
            if c == ".." {
                cur = cur
                    .rsplit_once('/')
                    .map_or(String::new(), |(p, _)| p.to_owned());
                continue;
            }
            let next = format!("{cur}/{c}");
            match self.entries.get(&next).map(|e| &e.kind) {
                Some(BaseKind::Symlink { target }) => {
                    links += 1;
                    if links > MAX_LINKS {
                        return None;
                    }
                    let t = target.to_string_lossy();
                    if t.starts_with('/') {
                        cur.clear();
                    }
                    for part in t.split('/').filter(|p| !p.is_empty() && *p != ".").rev() {
                        todo.push(part.to_owned());
                    }
                }
                Some(_) => cur = next,
                None if todo.is_empty() => return Some(next),
                None => return None,
            }
        }
        Some(if cur.is_empty() { "/".into() } else { cur })
    }

    /// The base's entry a container sees at `path` (symlinks followed).
    pub fn lookup(&self, path: &str) -> Option<(String, &BaseEntry)> {
        let real = self.real_path(path)?;
        self.entries.get(&real).map(|e| (real, e))
    }

    /// The extracted copy of the file a container sees at `path`.
    pub fn extracted(&self, path: &str) -> Option<&Path> {
        let real = self.real_path(path)?;
        let real = match self.entries.get(&real).map(|e| &e.kind) {
            Some(BaseKind::Hardlink { target }) => target.clone(),
            _ => real,
        };
        self.extracted.get(&real).map(PathBuf::as_path)
    }

    /// The directories at which the base has a symlink: a build that
    /// writes below one writes into its target.
    pub fn symlinked_dir(&self, path: &str) -> Option<String> {
        let path = absolute_str(Path::new(path))?;
        let (parent, name) = path.rsplit_once('/')?;
        let real_parent = self.real_path(if parent.is_empty() { "/" } else { parent })?;
        let real = if real_parent == "/" {
            format!("/{name}")
        } else {
            format!("{real_parent}/{name}")
        };
        let is_link = self
            .entries
            .get(&path)
            .is_some_and(|e| matches!(e.kind, BaseKind::Symlink { .. }));
        // A directory the base has as a link: the link's target.
        match (real != path, is_link) {
            (true, _) => Some(real),
            (false, true) => self.real_path(&path).filter(|r| *r != path),
            (false, false) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(entries: &[(&str, Option<&str>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o755);
            h.set_size(0);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            match link {
                Some(t) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    b.append_link(&mut h, path, t).expect("link");
                }
                None if path.ends_with('/') => {
                    h.set_entry_type(tar::EntryType::Directory);
                    b.append_data(&mut h, path, std::io::empty()).expect("dir");
                }
                None => {
                    h.set_entry_type(tar::EntryType::Regular);
                    b.append_data(&mut h, path, std::io::empty()).expect("file");
                }
            }
        }
        b.into_inner().expect("tar")
    }

    #[test]
    fn whiteouts_opaque_dirs_and_links() {
        let tmp = tempfile::tempdir().expect("tmp");
        let mut v = BaseView::default();
        v.apply(
            "1",
            &layer(&[
                ("usr/", None),
                ("usr/lib/", None),
                ("usr/lib/libc.so.6", None),
                ("usr/lib/gone", None),
                ("lib", Some("usr/lib")),
                ("etc/", None),
                ("etc/a/", None),
                ("etc/a/old", None),
                ("bin/", None),
                ("bin/sh", None),
            ])[..],
            tmp.path(),
            &wanted,
        )
        .expect("layer 1");
        v.apply(
            "2",
            &layer(&[
                ("usr/lib/.wh.gone", None),
                ("etc/a/", None),
                ("etc/a/.wh..wh..opq", None),
                ("etc/a/new", None),
                (".wh.bin", None),
            ])[..],
            tmp.path(),
            &wanted,
        )
        .expect("layer 2");
        assert!(v.get("/usr/lib/gone").is_none());
        assert!(v.get("/etc/a/old").is_none());
        assert!(v.get("/etc/a/new").is_some());
        assert!(v.get("/bin/sh").is_none() && v.get("/bin").is_none());
        assert_eq!(
            v.real_path("/lib/libc.so.6").as_deref(),
            Some("/usr/lib/libc.so.6")
        );
        assert_eq!(
            v.lookup("/lib/libc.so.6").map(|(p, _)| p),
            Some("/usr/lib/libc.so.6".into())
        );
        assert!(v.extracted("/lib/libc.so.6").is_some_and(|p| p.exists()));
        assert_eq!(
            v.symlinked_dir("/lib/x86_64").as_deref(),
            Some("/usr/lib/x86_64")
        );
        assert_eq!(v.symlinked_dir("/usr/lib/x"), None);
        // A loop is no path.
        let mut l = BaseView::default();
        l.apply(
            "l",
            &layer(&[("a", Some("b")), ("b", Some("a"))])[..],
            tmp.path(),
            &wanted,
        )
        .expect("loop layer");
        assert_eq!(l.real_path("/a/x"), None);
        // An entry with `..` is refused.
        let mut bad = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mode(0o644);
        h.as_gnu_mut().expect("gnu").name[..8].copy_from_slice(b"../evil\0");
        h.set_cksum();
        bad.append(&h, std::io::empty()).expect("append");
        let bytes = bad.into_inner().expect("tar");
        assert!(matches!(
            BaseView::default().apply("x", &bytes[..], tmp.path(), &wanted),
            Err(BaseViewError::BadPath { .. })
        ));
    }
}
