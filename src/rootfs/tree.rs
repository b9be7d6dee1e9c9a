//! The file tree: an ordered tree of image paths, each with its kind, mode and
//! owner. Artifacts add entries here; the layer writer turns a tree into a tar.
//!
//! Paths are kept sorted (`BTreeMap`) so that every walk, and so every layer,
//! is deterministic whatever order the artifacts were added in.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::image_path::{self, Parent};

/// An absolute, normalised path inside the image: starts with `/`, has no
/// `.`/`..` components, no empty components and no trailing slash.
/// The root itself is `/`.
///
/// Ordered as `Path` orders them (component by component), but by comparing
/// bytes: trees and layer sets look paths up hundreds of thousands of times
/// per build, and `Path`'s parsing comparison was a third of a warm rebuild.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ImagePath(PathBuf);

impl Ord for ImagePath {
    /// For normalised paths (no empty, `.` or `..` components, no trailing
    /// slash), comparing components is comparing bytes with `/` ranked below
    /// every other byte: at the first differing byte, a `/` means that
    /// path's component ended first, so it is the prefix and sorts first.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        use std::os::unix::ffi::OsStrExt;
        let (a, b) = (
            self.0.as_os_str().as_bytes(),
            other.0.as_os_str().as_bytes(),
        );
        let same = a.iter().zip(b).take_while(|(x, y)| x == y).count();
        let rank = |s: &[u8]| {
            s.get(same)
                .map(|&c| if c == b'/' { 0 } else { u16::from(c) + 1 })
        };
        rank(a).cmp(&rank(b))
    }
}

impl PartialOrd for ImagePath {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PathError {
    #[error("image path {0:?} must be absolute (start with '/')")]
    Relative(PathBuf),
    #[error("image path {0:?} must not contain '..'")]
    ParentDir(PathBuf),
}

impl ImagePath {
    pub fn root() -> Self {
        ImagePath(PathBuf::from("/"))
    }

    /// Validates and normalises `p` (`//a/./b/` becomes `/a/b`).
    pub fn new(p: impl AsRef<Path>) -> Result<Self, PathError> {
        let p = p.as_ref();
        if !p.is_absolute() {
            return Err(PathError::Relative(p.to_path_buf()));
        }
        let parts = image_path::components(p, Parent::Reject)
            .ok_or_else(|| PathError::ParentDir(p.to_path_buf()))?;
        let mut out = PathBuf::from("/");
        out.extend(parts);
        Ok(ImagePath(out))
    }

    /// Joins a relative path below this one, rejecting any `..` or absolute part.
    pub fn join(&self, rel: impl AsRef<Path>) -> Result<Self, PathError> {
        let rel = rel.as_ref();
        if rel.is_absolute() {
            return Err(PathError::ParentDir(rel.to_path_buf()));
        }
        ImagePath::new(self.0.join(rel))
    }

    pub fn as_path(&self) -> &Path {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0.as_os_str() == "/"
    }

    /// The path without its leading `/`, as written in tar headers.
    pub fn relative(&self) -> &Path {
        self.0.strip_prefix("/").unwrap_or(&self.0)
    }

    pub fn parent(&self) -> Option<ImagePath> {
        self.0.parent().map(|p| ImagePath(p.to_path_buf()))
    }

    pub fn file_name(&self) -> Option<&std::ffi::OsStr> {
        self.0.file_name()
    }

    /// Every proper ancestor, outermost first, excluding `/`.
    pub fn ancestors(&self) -> Vec<ImagePath> {
        let mut v: Vec<ImagePath> = self
            .0
            .ancestors()
            .skip(1)
            .filter(|a| a.as_os_str() != "/" && !a.as_os_str().is_empty())
            .map(|a| ImagePath(a.to_path_buf()))
            .collect();
        v.reverse();
        v
    }
}

impl fmt::Debug for ImagePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl fmt::Display for ImagePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.display())
    }
}

/// Where a regular file's bytes come from. Host files are read only when the
/// layer is written, so the tree stays small however large the inputs are.
#[derive(Clone, PartialEq, Eq)]
pub enum Source {
    Host(PathBuf),
    Bytes(Arc<[u8]>),
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Host(p) => write!(f, "Host({})", p.display()),
            Source::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Dir,
    /// `size` is the size seen when the file was added; the writer checks
    /// it again so a file that changes under us is an error, not a bad tar.
    File {
        source: Source,
        size: u64,
    },
    Symlink {
        target: PathBuf,
    },
    /// A hard link to another regular file of the same layer.
    Hardlink {
        target: ImagePath,
    },
}

#[derive(Clone, Debug)]
pub struct Entry {
    pub kind: Kind,
    /// Permission bits only (including sticky); setuid/setgid are stripped
    /// by whoever builds the entry.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// A host file's stat when it was planned, where the planner had one:
    /// the layer key and the hard-link pass read it instead of asking
    /// again (three stats a file for a JDK). Not part of what the entry
    /// is: entries are equal whatever their stats.
    pub stat: Option<Arc<std::fs::Metadata>>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (&self.kind, self.mode, self.uid, self.gid)
            == (&other.kind, other.mode, other.uid, other.gid)
    }
}

impl Eq for Entry {}

impl Entry {
    pub fn dir(mode: u32) -> Self {
        Entry {
            kind: Kind::Dir,
            mode,
            uid: 0,
            gid: 0,
            stat: None,
        }
    }

    pub fn file(source: Source, size: u64, mode: u32) -> Self {
        Entry {
            kind: Kind::File { source, size },
            mode,
            uid: 0,
            gid: 0,
            stat: None,
        }
    }

    pub fn bytes(data: impl Into<Arc<[u8]>>, mode: u32) -> Self {
        let data: Arc<[u8]> = data.into();
        let size = data.len() as u64;
        Entry::file(Source::Bytes(data), size, mode)
    }

    pub fn symlink(target: impl Into<PathBuf>) -> Self {
        Entry {
            kind: Kind::Symlink {
                target: target.into(),
            },
            mode: 0o777,
            uid: 0,
            gid: 0,
            stat: None,
        }
    }

    /// The stat of `host`, this entry's host file: the one taken when it
    /// was planned, else asked now.
    pub fn host_stat(&self, host: &Path) -> std::io::Result<Cow<'_, std::fs::Metadata>> {
        host_stat(self.stat.as_deref(), host)
    }

    /// The entry with the stat its host file had when planned.
    pub fn stated(mut self, stat: &std::fs::Metadata) -> Self {
        self.stat = Some(Arc::new(stat.clone()));
        self
    }

    pub fn owned(mut self, uid: u32, gid: u32) -> Self {
        self.uid = uid;
        self.gid = gid;
        self
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TreeError {
    #[error(
        "{path} is added twice with different contents: {} and {}; give one of the inputs another destination (SRC:DST) or leave one out",
        describe(first),
        describe(second)
    )]
    Conflict {
        path: ImagePath,
        first: Box<Kind>,
        second: Box<Kind>,
    },
    #[error("{path} is needed as a directory but {blocker} is not one")]
    NotADirectory { path: ImagePath, blocker: ImagePath },
}

/// The stat of host file `host`: `planned` where the planner kept one,
/// else asked now, following links as the writer's open(2) does (a
/// planned stat is of a regular file, where lstat and stat agree).
pub fn host_stat<'a>(
    planned: Option<&'a std::fs::Metadata>,
    host: &Path,
) -> std::io::Result<Cow<'a, std::fs::Metadata>> {
    match planned {
        Some(m) => Ok(Cow::Borrowed(m)),
        None => std::fs::metadata(host).map(Cow::Owned),
    }
}

/// A kind of entry in words, for messages.
pub fn describe(kind: &Kind) -> String {
    match kind {
        Kind::Dir => "a directory".into(),
        Kind::File {
            source: Source::Host(p),
            ..
        } => format!("the file {}", p.display()),
        Kind::File {
            source: Source::Bytes(b),
            ..
        } => format!("{} bytes written by mkimage", b.len()),
        Kind::Symlink { target } => format!("a symlink to {}", target.display()),
        Kind::Hardlink { target } => format!("a hard link to {target}"),
    }
}

/// Mode given to directories created implicitly as parents.
pub const IMPLICIT_DIR_MODE: u32 = 0o755;

/// A sorted set of entries. Parents are created implicitly (root-owned,
/// 0755) so that every layer is self-contained.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tree {
    entries: BTreeMap<ImagePath, Entry>,
    /// Directories that exist only as parents of other entries; their
    /// mode and owner may be taken from another layer (see
    /// `LayerSet::harmonise_dirs`).
    implicit: BTreeSet<ImagePath>,
}

impl Tree {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `entry` at `path`. Adding the same thing twice is fine; adding a
    /// different thing at a taken path is a conflict, except that an explicit
    /// directory replaces an implicit one's mode and owner.
    pub fn insert(&mut self, path: ImagePath, entry: Entry) -> Result<(), TreeError> {
        if path.is_root() {
            return Ok(());
        }
        for a in path.ancestors() {
            match self.entries.get(&a) {
                None => {
                    self.entries
                        .insert(a.clone(), Entry::dir(IMPLICIT_DIR_MODE));
                    self.implicit.insert(a);
                }
                Some(e) if e.kind == Kind::Dir => {}
                Some(_) => {
                    return Err(TreeError::NotADirectory {
                        path: path.clone(),
                        blocker: a,
                    });
                }
            }
        }
        match self.entries.get(&path) {
            None => {
                self.entries.insert(path, entry);
                Ok(())
            }
            Some(old) if old.kind == Kind::Dir && entry.kind == Kind::Dir => {
                self.implicit.remove(&path);
                self.entries.insert(path, entry);
                Ok(())
            }
            Some(old) if same_content(&old.kind, &entry.kind) => Ok(()),
            Some(old) => Err(TreeError::Conflict {
                path,
                first: Box::new(old.kind.clone()),
                second: Box::new(entry.kind),
            }),
        }
    }

    /// Replaces the entry at an existing path (used to turn duplicate
    /// host files into hard links).
    pub fn replace(&mut self, path: &ImagePath, entry: Entry) {
        if let Some(e) = self.entries.get_mut(path) {
            *e = entry;
        }
    }

    /// Takes the entry at `path` out (a file a user's input replaces);
    /// entries below it, if any, stay.
    pub fn remove(&mut self, path: &ImagePath) -> Option<Entry> {
        self.implicit.remove(path);
        self.entries.remove(path)
    }

    /// Whether `path` is a directory that exists only as a parent.
    pub fn is_implicit(&self, path: &ImagePath) -> bool {
        self.implicit.contains(path)
    }

    /// Gives an implicit directory the mode and owner of an explicit one
    /// elsewhere; it stays implicit.
    pub fn set_implicit_dir(&mut self, path: &ImagePath, mode: u32, uid: u32, gid: u32) {
        if self.implicit.contains(path)
            && let Some(e) = self.entries.get_mut(path)
        {
            e.mode = mode;
            e.uid = uid;
            e.gid = gid;
        }
    }

    pub fn get(&self, path: &ImagePath) -> Option<&Entry> {
        self.entries.get(path)
    }

    pub fn contains(&self, path: &ImagePath) -> bool {
        self.entries.contains_key(path)
    }

    /// Entries in path order (parents before children).
    pub fn iter(&self) -> impl Iterator<Item = (&ImagePath, &Entry)> {
        self.entries.iter()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sum of regular file sizes, for progress and reports.
    pub fn content_size(&self) -> u64 {
        self.entries
            .values()
            .map(|e| match &e.kind {
                Kind::File { size, .. } => *size,
                _ => 0,
            })
            .sum()
    }
}

/// Two file entries for one path are the same when they come from the same
/// host file or carry the same bytes. (Different host paths with equal
/// content are compared by the caller, who can read them.)
fn same_content(a: &Kind, b: &Kind) -> bool {
    a == b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> ImagePath {
        ImagePath::new(s).unwrap()
    }

    #[test]
    fn image_paths_sort_as_paths_do() {
        // Every path of up to three components over names that straddle
        // '/' in byte order ('-' and '.' below it, 'a' and 0xff above).
        use std::os::unix::ffi::OsStrExt;
        let names: Vec<&[u8]> = vec![b"a", b"a-", b"a.b", b"-", b"aa", b"\xff", b"a\xff"];
        let mut all = vec![ImagePath::root()];
        for depth in 1..=3u32 {
            for n in 0..names.len().pow(depth) {
                let mut path = Vec::new();
                let mut n = n;
                for _ in 0..depth {
                    path.push(b'/');
                    path.extend_from_slice(names[n % names.len()]);
                    n /= names.len();
                }
                all.push(p(std::ffi::OsStr::from_bytes(&path)
                    .to_str()
                    .unwrap_or("/x")));
                all.push(ImagePath(PathBuf::from(std::ffi::OsStr::from_bytes(&path))));
            }
        }
        for a in &all {
            for b in &all {
                assert_eq!(a.cmp(b), a.as_path().cmp(b.as_path()), "{a:?} vs {b:?}");
                assert_eq!(a == b, a.as_path() == b.as_path());
            }
        }
    }

    #[test]
    fn image_path_normalises_and_rejects() {
        assert_eq!(p("//usr/./bin/").to_string(), "/usr/bin");
        assert_eq!(
            ImagePath::new("usr/bin"),
            Err(PathError::Relative("usr/bin".into()))
        );
        assert_eq!(
            ImagePath::new("/usr/../etc"),
            Err(PathError::ParentDir("/usr/../etc".into()))
        );
        assert_eq!(p("/a/b/c").ancestors(), vec![p("/a"), p("/a/b")]);
        assert_eq!(p("/a").join("b/c").unwrap(), p("/a/b/c"));
        assert!(p("/a").join("../b").is_err());
        assert_eq!(p("/a/b").relative(), Path::new("a/b"));
    }

    #[test]
    fn insert_creates_parents_and_detects_conflicts() {
        let mut t = Tree::new();
        t.insert(p("/usr/bin/x"), Entry::bytes(&b"1"[..], 0o755))
            .unwrap();
        assert_eq!(t.get(&p("/usr")).unwrap().kind, Kind::Dir);
        assert_eq!(t.len(), 3);
        // Same content twice is fine.
        t.insert(p("/usr/bin/x"), Entry::bytes(&b"1"[..], 0o755))
            .unwrap();
        let err = t
            .insert(p("/usr/bin/x"), Entry::bytes(&b"2"[..], 0o755))
            .unwrap_err();
        assert!(matches!(err, TreeError::Conflict { .. }));
        let err = t.insert(p("/usr/bin/x/y"), Entry::dir(0o755)).unwrap_err();
        assert!(matches!(err, TreeError::NotADirectory { .. }));
        // An explicit directory overrides an implicit one's mode and owner.
        t.insert(p("/usr"), Entry::dir(0o700).owned(1, 1)).unwrap();
        assert_eq!(t.get(&p("/usr")).unwrap().uid, 1);
        let order: Vec<String> = t.iter().map(|(k, _)| k.to_string()).collect();
        assert_eq!(order, ["/usr", "/usr/bin", "/usr/bin/x"]);
    }
}
