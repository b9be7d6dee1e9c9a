//! A view of the root directory being resolved against (`/` or a sysroot).
//! Paths are image paths (absolute, as the loader inside the image sees
//! them); symlinks are followed *inside* the root, so an absolute link in a
//! sysroot never escapes to the host, and every link crossed is recorded
//! so the image can reproduce it.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io;
use std::path::{Component, Path, PathBuf};

use crate::image_path::normalise;

/// Linux's limit on symlinks followed in one lookup (MAXSYMLINKS).
pub(super) const MAX_SYMLINKS: usize = 40;

/// A symlink crossed during a lookup: the image path of the link and its
/// target exactly as stored.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Link {
    pub at: PathBuf,
    pub target: PathBuf,
}

/// A file found in the root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    /// The path that was looked up, normalised.
    pub path: PathBuf,
    /// The final file, every symlink resolved (an image path).
    pub real: PathBuf,
    /// The links crossed, in order; reproducing them all makes `path`
    /// reach `real` in the image.
    pub links: Vec<Link>,
}

#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("{path}: too many levels of symbolic links")]
    Loop { path: PathBuf },
    #[error("cannot read {host}: {source}")]
    Io {
        host: PathBuf,
        #[source]
        source: io::Error,
    },
}

#[derive(Debug)]
pub struct Root {
    dir: PathBuf,
    /// Lookups of directories are repeated for every library searched.
    dir_cache: Map<PathBuf, Option<Located>>,
    /// Lookups of files too: the resolver, the package survey and its
    /// checks of each package's files ask about the same files again.
    /// The root is taken not to change while one build reads it.
    file_cache: Map<PathBuf, Option<Located>>,
    /// Directories' entries, read once a directory has been stepped into
    /// [`LIST_AFTER`] times: a search for libraries, or a package's file
    /// list, asks a directory for many names that are mostly not there,
    /// and one listing answers them all with no `lstat` each.
    listings: Map<PathBuf, Listing>,
    /// The real paths of the files [`read`](Root::read) has read.
    read: Vec<PathBuf>,
}

/// Steps into one directory after which it is listed instead of asked
/// name by name (a listing costs a few `getdents` and its names' memory).
const LIST_AFTER: u32 = 8;

#[derive(Debug)]
enum Listing {
    /// Stepped into this many times, not listed yet.
    Asked(u32),
    /// Each name and its type (`None`: the file system did not say, so the
    /// file is asked).
    Read(Names),
    /// Not listable (not a directory, no permission): asked name by name.
    Unlisted,
}

impl Root {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Root {
            dir: dir.into(),
            dir_cache: Map::default(),
            file_cache: Map::default(),
            listings: Map::default(),
            read: Vec::new(),
        }
    }

    /// The host paths of every directory this root has looked into (its
    /// steps) and every file it has read, each once, in
    /// no order. Its answers depend on these alone: a name added to a
    /// directory, removed, renamed or retargeted (a link is replaced, not
    /// changed) changes the directory's mtime, so a caller that stamps
    /// these may reuse answers while the stamps hold.
    pub fn consulted(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = self.listings.keys().map(|d| self.host(d)).collect();
        out.extend(self.read.iter().map(|f| self.host(f)));
        out.sort();
        out.dedup();
        out
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The host path of an already resolved image path.
    pub fn host(&self, image: &Path) -> PathBuf {
        let rel = image.strip_prefix("/").unwrap_or(image);
        if rel.as_os_str().is_empty() {
            self.dir.clone()
        } else {
            self.dir.join(rel)
        }
    }

    /// The image path of a host path inside the root, if it is inside.
    pub fn image_of(&self, host: &Path) -> Option<PathBuf> {
        let rel = host.strip_prefix(&self.dir).ok()?;
        Some(Path::new("/").join(rel))
    }

    /// Reads a file inside the root, following symlinks inside it.
    pub fn read(&mut self, image: &Path) -> Result<Option<Vec<u8>>, LookupError> {
        let Some(found) = self.lookup(image)? else {
            return Ok(None);
        };
        let host = self.host(&found.real);
        self.read.push(found.real);
        match crate::bounded::read(&host, crate::bounded::DOCUMENT_LIMIT) {
            Ok(b) => Ok(Some(b)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(source) => Err(LookupError::Io { host, source }),
        }
    }

    /// Whether `image` names a directory (through symlinks).
    pub fn is_dir(&mut self, image: &Path) -> Result<bool, LookupError> {
        if let Some(hit) = self.dir_cache.get(image) {
            return Ok(hit.is_some());
        }
        Ok(self.lookup_dir(image)?.is_some())
    }

    /// [`lookup_dir`](Root::lookup_dir)'s real path alone, with no copy of
    /// the links: asked once per line of a package list that matters.
    pub fn real_dir(&mut self, image: &Path) -> Result<Option<PathBuf>, LookupError> {
        if let Some(hit) = self.dir_cache.get(image) {
            return Ok(hit.as_ref().map(|l| l.real.clone()));
        }
        Ok(self.lookup_dir(image)?.map(|l| l.real))
    }

    /// Looks up a directory, caching the answer.
    pub fn lookup_dir(&mut self, image: &Path) -> Result<Option<Located>, LookupError> {
        if let Some(hit) = self.dir_cache.get(image) {
            return Ok(hit.clone());
        }
        let found = self.lookup(image)?.filter(|l| self.is_real_dir(&l.real));
        self.dir_cache.insert(image.to_path_buf(), found.clone());
        Ok(found)
    }

    /// Whether `real` (an image path with every link resolved) is a
    /// directory: from its parent's listing when there is one.
    fn is_real_dir(&self, real: &Path) -> bool {
        if let (Some(dir), Some(name)) = (real.parent(), real.file_name())
            && let Some(Listing::Read(names)) = self.listings.get(dir)
            && let Some(Some(t)) = names.get(name)
        {
            return t.is_dir();
        }
        std::fs::metadata(self.host(real)).is_ok_and(|m| m.is_dir())
    }

    /// Resolves `image` (absolute; a relative path is taken from `/`) to
    /// the file it names, or `None` when it does not exist.
    pub fn lookup(&mut self, image: &Path) -> Result<Option<Located>, LookupError> {
        let path = normalise(image);
        if let Some(hit) = self.file_cache.get(&path) {
            return Ok(hit.clone());
        }
        let found = self.locate(&path)?;
        self.file_cache.insert(path, found.clone());
        Ok(found)
    }

    /// Whether `image` names a file (of any type), as [`lookup`] finds it,
    /// without a copy of the answer: a package's thousands of listed files
    /// are only asked whether they are there.
    ///
    /// [`lookup`]: Root::lookup
    pub fn exists(&mut self, image: &Path) -> Result<bool, LookupError> {
        let path = normalise(image);
        if let Some(hit) = self.file_cache.get(&path) {
            return Ok(hit.is_some());
        }
        let found = self.locate(&path)?;
        let there = found.is_some();
        self.file_cache.insert(path, found);
        Ok(there)
    }

    /// [`lookup`](Root::lookup)'s work for a normalised path not cached.
    fn locate(&mut self, path: &Path) -> Result<Option<Located>, LookupError> {
        // The directory part is usually a cached directory: walk on from
        // there, with the links that reached it.
        Ok(match (path.parent(), path.file_name()) {
            (Some(parent), Some(name)) => match self.lookup_dir(parent)? {
                Some(dir) => self.walk(Path::new(name), dir.links, dir.real, path)?,
                None => None,
            },
            _ => self.walk(path, Vec::new(), PathBuf::from("/"), path)?,
        })
    }

    /// The general walk: resolves `rest` component by component from
    /// `cur`, following links, starting with `links` already crossed.
    fn walk(
        &mut self,
        rest: &Path,
        mut links: Vec<Link>,
        mut cur: PathBuf,
        original: &Path,
    ) -> Result<Option<Located>, LookupError> {
        let mut todo: Vec<PathBuf> = components_rev(rest);
        while let Some(c) = todo.pop() {
            match c.as_os_str().to_str() {
                Some("/") => cur = PathBuf::from("/"),
                Some("..") => {
                    cur.pop();
                }
                Some(".") => {}
                _ => match self.step(&cur, c.as_os_str())? {
                    None => return Ok(None),
                    Some(Step::Plain(p)) => cur = p,
                    Some(Step::Link(link)) => {
                        if links.len() >= MAX_SYMLINKS {
                            return Err(LookupError::Loop {
                                path: original.to_path_buf(),
                            });
                        }
                        todo.extend(components_rev(&link.target));
                        links.push(link);
                    }
                },
            }
        }
        Ok(Some(Located {
            path: normalise(original),
            real: cur,
            links,
        }))
    }

    fn step(&mut self, dir: &Path, name: &OsStr) -> Result<Option<Step>, LookupError> {
        let is_link = match self.listed(dir, name) {
            Some(Some(known)) => known.is_symlink(),
            Some(None) => return Ok(None),
            None => {
                let host = self.host(&dir.join(name));
                match std::fs::symlink_metadata(&host) {
                    Ok(m) => m.file_type().is_symlink(),
                    Err(e) if is_not_found(&e) => return Ok(None),
                    Err(source) => return Err(LookupError::Io { host, source }),
                }
            }
        };
        let image = dir.join(name);
        if is_link {
            let host = self.host(&image);
            let target =
                std::fs::read_link(&host).map_err(|source| LookupError::Io { host, source })?;
            return Ok(Some(Step::Link(Link { at: image, target })));
        }
        Ok(Some(Step::Plain(image)))
    }

    /// What `dir`'s listing says of `name`: `Some(None)` when it is not
    /// there, `Some(Some(type))` when it is, `None` when there is no
    /// listing (yet) or it does not know the entry's type: ask the file.
    fn listed(&mut self, dir: &Path, name: &OsStr) -> Option<Option<std::fs::FileType>> {
        // Looked up before inserting: most steps are into a directory
        // already known, and the key would be a new allocation each.
        if !self.listings.contains_key(dir) {
            self.listings.insert(dir.to_path_buf(), Listing::Asked(0));
        }
        let state = self.listings.get_mut(dir)?;
        if let Listing::Asked(n) = state {
            *n += 1;
            if *n <= LIST_AFTER {
                return None;
            }
            *state = match list(&self.dir, dir) {
                Some(names) => Listing::Read(names),
                None => Listing::Unlisted,
            };
        }
        match state {
            Listing::Read(names) => match names.get(name) {
                None => Some(None),
                Some(Some(t)) => Some(Some(*t)),
                Some(None) => None,
            },
            _ => None,
        }
    }
}

/// A directory's names, each with its type as the directory entry says
/// (`None` where the file system did not say and asking failed).
pub(super) type Names = Map<std::ffi::OsString, Option<std::fs::FileType>>;

/// The root's caches are asked about paths tens of thousands of times a
/// build: hashed with foldhash, several times cheaper than std's SipHash
/// on short keys. Its seed is random per process, as std's is, so names
/// in a hostile root cannot be chosen to collide.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The entries of image directory `dir` of the root at `root`; `None`
/// when it cannot be listed.
fn list(root: &Path, dir: &Path) -> Option<Names> {
    let rel = dir.strip_prefix("/").unwrap_or(dir);
    read_names(&root.join(rel)).ok()
}

/// The names in host directory `dir`.
pub(super) fn read_names(dir: &Path) -> io::Result<Names> {
    let mut names = Names::default();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        // `file_type` is the entry's d_type where the file system gives
        // one; it asks the file where not, and an error leaves it unknown.
        names.insert(entry.file_name(), entry.file_type().ok());
    }
    Ok(names)
}

enum Step {
    Plain(PathBuf),
    Link(Link),
}

pub(super) fn is_not_found(e: &io::Error) -> bool {
    // ENOTDIR: a path component is a file, so the path does not exist.
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(20)
}

/// Components of `p` in reverse, so that popping yields them in order.
/// An absolute path starts with a "/" marker that resets the walk.
fn components_rev(p: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = p
        .components()
        .map(|c| match c {
            Component::RootDir => PathBuf::from("/"),
            Component::CurDir => PathBuf::from("."),
            Component::ParentDir => PathBuf::from(".."),
            Component::Normal(n) => PathBuf::from(n),
            Component::Prefix(p) => PathBuf::from(p.as_os_str()),
        })
        .collect();
    v.reverse();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn a_listed_directory_answers_as_asking_each_name_does() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        let lib = r.join("usr/lib");
        std::fs::create_dir_all(lib.join("sub")).unwrap();
        std::fs::write(lib.join("libc.so.6"), b"x").unwrap();
        symlink("libc.so.6", lib.join("libc.so")).unwrap();
        symlink("nowhere", lib.join("dangling")).unwrap();
        symlink("/usr/lib/sub", lib.join("abs")).unwrap();
        std::fs::write(lib.join("sub/f"), b"y").unwrap();
        let names = [
            "libc.so.6",
            "libc.so",
            "dangling",
            "abs",
            "abs/f",
            "sub",
            "sub/f",
            "missing",
            "libc.so.6/x",
            "a",
            "b",
            "c",
            "d",
            "e",
            "f",
            "g",
            "h",
        ];
        // One root asks every name many times (so it lists /usr/lib after
        // a few); a fresh root per question never lists.
        let mut listing = Root::new(r);
        for round in 0..3 {
            for name in names {
                let path = Path::new("/usr/lib").join(name);
                let fresh = Root::new(r).lookup(&path).unwrap();
                listing.file_cache.clear();
                assert_eq!(
                    listing.lookup(&path).unwrap(),
                    fresh,
                    "{name}, round {round}"
                );
                let fresh_dir = Root::new(r).lookup_dir(&path).unwrap();
                listing.dir_cache.clear();
                assert_eq!(listing.lookup_dir(&path).unwrap(), fresh_dir, "{name}/");
            }
        }
        assert!(matches!(
            listing.listings.get(Path::new("/usr/lib")),
            Some(Listing::Read(_))
        ));
    }

    #[test]
    fn consulted_names_each_directory_looked_into_and_file_read() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("usr/share/doc/p")).unwrap();
        std::fs::write(r.join("usr/share/doc/p/copyright"), b"c").unwrap();
        symlink("usr/share", r.join("share")).unwrap();
        let mut root = Root::new(r);
        assert!(
            root.read(Path::new("/share/doc/p/copyright"))
                .unwrap()
                .is_some()
        );
        assert!(
            !root
                .exists(Path::new("/usr/share/doc/q/copyright"))
                .unwrap()
        );
        let got = root.consulted();
        let want: Vec<PathBuf> = [
            "",
            "usr",
            "usr/share",
            "usr/share/doc",
            "usr/share/doc/p",
            "usr/share/doc/p/copyright",
        ]
        .iter()
        .map(|p| {
            if p.is_empty() {
                r.to_path_buf()
            } else {
                r.join(p)
            }
        })
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn follows_links_inside_the_root_and_records_them() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("usr/lib/x86_64-linux-gnu")).unwrap();
        std::fs::create_dir_all(r.join("usr/lib64")).unwrap();
        std::fs::write(r.join("usr/lib/x86_64-linux-gnu/ld-2.36.so"), b"x").unwrap();
        symlink("usr/lib", r.join("lib")).unwrap();
        symlink("usr/lib64", r.join("lib64")).unwrap();
        // Absolute target: must resolve inside the root, not the host.
        symlink(
            "/lib/x86_64-linux-gnu/ld-2.36.so",
            r.join("usr/lib64/ld-linux-x86-64.so.2"),
        )
        .unwrap();
        let mut root = Root::new(r);
        let found = root
            .lookup(Path::new("/lib64/ld-linux-x86-64.so.2"))
            .unwrap()
            .unwrap();
        assert_eq!(
            found.real,
            Path::new("/usr/lib/x86_64-linux-gnu/ld-2.36.so")
        );
        let links: Vec<(String, String)> = found
            .links
            .iter()
            .map(|l| (l.at.display().to_string(), l.target.display().to_string()))
            .collect();
        assert_eq!(
            links,
            [
                ("/lib64".into(), "usr/lib64".into()),
                (
                    "/usr/lib64/ld-linux-x86-64.so.2".into(),
                    "/lib/x86_64-linux-gnu/ld-2.36.so".into()
                ),
                ("/lib".into(), "usr/lib".into()),
            ]
        );
        assert!(root.lookup(Path::new("/lib/nope")).unwrap().is_none());
        assert!(
            root.lookup(Path::new("/usr/lib/x86_64-linux-gnu/ld-2.36.so/x"))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn symlink_loop_is_an_error_not_a_hang() {
        let d = tempfile::tempdir().unwrap();
        symlink("b", d.path().join("a")).unwrap();
        symlink("a", d.path().join("b")).unwrap();
        let mut root = Root::new(d.path());
        let err = root.lookup(Path::new("/a")).unwrap_err();
        assert!(err.to_string().contains("too many levels"), "{err}");
    }

    #[test]
    fn dotdot_cannot_escape_the_root() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(d.path().join("etc/x"), b"in").unwrap();
        symlink("../../../../etc/x", d.path().join("etc/up")).unwrap();
        let mut root = Root::new(d.path());
        let found = root.lookup(Path::new("/etc/up")).unwrap().unwrap();
        assert_eq!(found.real, Path::new("/etc/x"));
    }
}
