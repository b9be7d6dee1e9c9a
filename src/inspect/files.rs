//! The image's file tree as a container sees it: layer entries applied in
//! order, with whiteouts (image-spec layer.md, "Whiteouts"): `.wh.NAME`
//! deletes NAME and everything under it from lower layers, and
//! `.wh..wh..opq` empties its directory of everything lower layers put
//! there. Pure data; reading the layers is `super`'s job.

use std::collections::BTreeMap;

use serde::Serialize;

/// Prefix of a whiteout file's name.
const WHITEOUT: &str = ".wh.";
/// Name of an opaque-directory whiteout.
const OPAQUE: &str = ".wh..wh..opq";
/// Symlinks followed while resolving a path, as Linux's MAXSYMLINKS.
const MAX_SYMLINKS: usize = 40;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    Hardlink,
    /// Devices, FIFOs: listed, never followed.
    Other,
}

/// One path of the image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FileInfo {
    /// Absolute: `/etc/passwd`.
    pub path: String,
    #[serde(rename = "type")]
    pub kind: FileKind,
    /// Bytes of content (0 for all but regular files).
    pub size: u64,
    /// Permission bits.
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// A symlink's target as written, or a hard link's target path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The path's bytes in base64, when they are not UTF-8 (`path` then
    /// has U+FFFD in their place): JSON output stays lossless.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_base64: Option<String>,
    /// The layer it comes from (1 = bottom).
    pub layer: usize,
    /// The Debian package it comes from, as the image's own package
    /// records (`/var/lib/dpkg/status.d/*.md5sums`) say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
}

/// `s` fit for a terminal: control characters (a newline in a file name
/// would forge a line of the listing; an escape sequence could rewrite
/// the screen) and backslashes are escaped as Rust writes them (`\n`,
/// `\u{1b}`, `\\`); everything else is as it was.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(|c| c.is_control() || c == '\\') {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() || c == '\\' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// What one layer entry does to the tree.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    Put(FileInfo),
    /// `.wh.NAME`: the path to delete.
    Whiteout(String),
    /// `.wh..wh..opq`: the directory to empty.
    Opaque(String),
}

impl Change {
    /// Classifies an entry at the (absolute, normalised) `info.path`.
    pub fn from_entry(info: FileInfo) -> Change {
        let (dir, name) = split(&info.path);
        if name == OPAQUE {
            Change::Opaque(dir.to_owned())
        } else if let Some(hidden) = name.strip_prefix(WHITEOUT) {
            Change::Whiteout(join(dir, hidden))
        } else {
            Change::Put(info)
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct FileTree {
    files: BTreeMap<String, FileInfo>,
}

impl FileTree {
    /// Applies one change of layer `layer`. Whiteouts only ever remove what
    /// lower layers put there, whatever order the layer's entries come in.
    pub fn apply(&mut self, layer: usize, change: Change) {
        match change {
            Change::Whiteout(path) => {
                if self.files.get(&path).is_some_and(|f| f.layer < layer) {
                    self.files.remove(&path);
                }
                self.remove_under(&path, layer);
            }
            Change::Opaque(dir) => self.remove_under(&dir, layer),
            Change::Put(info) => {
                // A non-directory replaces a directory with all it held.
                if info.kind != FileKind::Dir
                    && self
                        .files
                        .get(&info.path)
                        .is_some_and(|old| old.kind == FileKind::Dir)
                {
                    self.remove_under(&info.path, usize::MAX);
                }
                self.files.insert(info.path.clone(), info);
            }
        }
    }

    /// Removes everything below `dir` that came from a layer under `below`.
    fn remove_under(&mut self, dir: &str, below: usize) {
        let prefix = if dir == "/" {
            "/".to_owned()
        } else {
            format!("{dir}/")
        };
        let doomed: Vec<String> = self
            .files
            .range(prefix.clone()..)
            .take_while(|(p, _)| p.starts_with(&prefix))
            .filter(|(_, f)| f.layer < below)
            .map(|(p, _)| p.clone())
            .collect();
        for p in doomed {
            self.files.remove(&p);
        }
    }

    /// Whether anything is below `dir`.
    fn has_children(&self, dir: &str) -> bool {
        let prefix = format!("{dir}/");
        self.files
            .range(prefix.clone()..)
            .next()
            .is_some_and(|(p, _)| p.starts_with(&prefix))
    }

    /// Sets each listed path's package.
    pub fn set_packages(&mut self, owners: &BTreeMap<String, String>) {
        for (path, package) in owners {
            if let Some(f) = self.files.get_mut(path) {
                f.package = Some(package.clone());
            }
        }
    }

    pub fn get(&self, path: &str) -> Option<&FileInfo> {
        self.files.get(path)
    }

    /// Every path, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &FileInfo> {
        self.files.values()
    }

    pub fn into_vec(self) -> Vec<FileInfo> {
        self.files.into_values().collect()
    }

    /// `path` with every symlink on the way (the last component's too)
    /// resolved inside the image, as the kernel would in a container whose
    /// root is the image. `None` if a component is missing or the links
    /// loop.
    pub fn resolve(&self, path: &str) -> Option<String> {
        let mut pending: Vec<String> = components(path).rev().map(str::to_owned).collect();
        let mut current = String::from("/");
        let mut hops = 0;
        while let Some(part) = pending.pop() {
            if part == ".." {
                current = split(&current).0.to_owned();
                continue;
            }
            let next = join(&current, &part);
            let Some(info) = self.files.get(&next) else {
                // A layer need not list a directory to put files in it.
                if !self.has_children(&next) {
                    return None;
                }
                current = next;
                continue;
            };
            match (&info.kind, &info.target) {
                (FileKind::Symlink, Some(target)) => {
                    hops += 1;
                    if hops > MAX_SYMLINKS {
                        return None;
                    }
                    if target.starts_with('/') {
                        current = "/".to_owned();
                    }
                    pending.extend(components(target).rev().map(str::to_owned));
                }
                _ => current = next,
            }
        }
        Some(current)
    }
}

/// The non-empty, non-`.` components of a path.
fn components(path: &str) -> impl DoubleEndedIterator<Item = &str> {
    path.split('/').filter(|c| !c.is_empty() && *c != ".")
}

/// (`/a/b`, `c`) from `/a/b/c`; (`/`, `a`) from `/a`; (`/`, ``) from `/`.
fn split(path: &str) -> (&str, &str) {
    match path.rsplit_once('/') {
        Some(("", name)) => ("/", name),
        Some((dir, name)) => (dir, name),
        None => ("/", path),
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, kind: FileKind, layer: usize) -> FileInfo {
        FileInfo {
            path: path.to_owned(),
            kind,
            size: if kind == FileKind::File { 10 } else { 0 },
            mode: 0o644,
            uid: 0,
            gid: 0,
            target: None,
            path_base64: None,
            layer,
            package: None,
        }
    }

    fn link(path: &str, target: &str, layer: usize) -> FileInfo {
        FileInfo {
            target: Some(target.to_owned()),
            ..entry(path, FileKind::Symlink, layer)
        }
    }

    fn tree(layers: &[&[FileInfo]]) -> FileTree {
        let mut t = FileTree::default();
        for (i, entries) in layers.iter().enumerate() {
            for e in *entries {
                t.apply(i + 1, Change::from_entry(e.clone()));
            }
        }
        t
    }

    fn paths(t: &FileTree) -> Vec<(&str, usize)> {
        t.iter().map(|f| (f.path.as_str(), f.layer)).collect()
    }

    use FileKind::{Dir, File};

    #[test]
    fn whiteouts_table() {
        let base: &[FileInfo] = &[
            entry("/a", Dir, 1),
            entry("/a/x", File, 1),
            entry("/a/sub", Dir, 1),
            entry("/a/sub/y", File, 1),
            entry("/b", File, 1),
            entry("/bb", File, 1),
        ];
        /// (what the case shows, the upper layer, the tree: path and layer)
        type Case<'a> = (&'a str, Vec<FileInfo>, Vec<(&'a str, usize)>);
        let cases: Vec<Case> = vec![
            (
                "a whiteout removes a file",
                vec![entry("/.wh.b", File, 2)],
                vec![
                    ("/a", 1),
                    ("/a/sub", 1),
                    ("/a/sub/y", 1),
                    ("/a/x", 1),
                    ("/bb", 1),
                ],
            ),
            (
                "a whiteout removes a directory and its contents, not a sibling with the same prefix",
                vec![entry("/.wh.a", File, 2)],
                vec![("/b", 1), ("/bb", 1)],
            ),
            (
                "an opaque directory keeps the directory and this layer's entries, whatever their order",
                vec![entry("/a/new", File, 2), entry("/a/.wh..wh..opq", File, 2)],
                vec![("/a", 1), ("/a/new", 2), ("/b", 1), ("/bb", 1)],
            ),
            (
                "a file replaces a directory with all it held",
                vec![entry("/a", File, 2)],
                vec![("/a", 2), ("/b", 1), ("/bb", 1)],
            ),
            (
                "a directory over a directory merges",
                vec![entry("/a", Dir, 2), entry("/a/z", File, 2)],
                vec![
                    ("/a", 2),
                    ("/a/sub", 1),
                    ("/a/sub/y", 1),
                    ("/a/x", 1),
                    ("/a/z", 2),
                    ("/b", 1),
                    ("/bb", 1),
                ],
            ),
            (
                "a whiteout of a path that is not there changes nothing",
                vec![entry("/a/.wh.nope", File, 2)],
                vec![
                    ("/a", 1),
                    ("/a/sub", 1),
                    ("/a/sub/y", 1),
                    ("/a/x", 1),
                    ("/b", 1),
                    ("/bb", 1),
                ],
            ),
            (
                "a path whited out and re-added in the same layer stays",
                vec![entry("/b", File, 2), entry("/.wh.b", File, 2)],
                vec![
                    ("/a", 1),
                    ("/a/sub", 1),
                    ("/a/sub/y", 1),
                    ("/a/x", 1),
                    ("/b", 2),
                    ("/bb", 1),
                ],
            ),
        ];
        for (name, upper, want) in cases {
            let t = tree(&[base, &upper]);
            assert_eq!(paths(&t), want, "{name}");
        }
    }

    #[test]
    fn opaque_root_empties_the_image() {
        let t = tree(&[
            &[entry("/a", File, 1), entry("/d", Dir, 1)],
            &[entry("/.wh..wh..opq", File, 2), entry("/c", File, 2)],
        ]);
        assert_eq!(paths(&t), [("/c", 2)]);
    }

    #[test]
    fn resolves_symlinks_inside_the_image() {
        let t = tree(&[&[
            entry("/usr", Dir, 1),
            entry("/usr/lib", Dir, 1),
            entry("/usr/lib/libc.so.6", File, 1),
            link("/lib", "usr/lib", 1),
            link("/usr/lib/libc.so", "/lib/libc.so.6", 1),
            link("/usr/lib/up", "../lib/libc.so.6", 1),
            link("/loop", "loop", 1),
            entry("/implicit/dir/file", File, 1),
        ]]);
        for (path, want) in [
            ("/lib/libc.so.6", Some("/usr/lib/libc.so.6")),
            ("/usr/lib/libc.so", Some("/usr/lib/libc.so.6")),
            ("/lib/up", Some("/usr/lib/libc.so.6")),
            ("/usr/lib/../lib/./libc.so.6", Some("/usr/lib/libc.so.6")),
            ("/", Some("/")),
            ("/lib/missing", None),
            ("/loop", None),
            ("/implicit/dir/file", Some("/implicit/dir/file")),
            ("/implicit/dir", Some("/implicit/dir")),
            ("/implicit/di", None),
        ] {
            assert_eq!(t.resolve(path).as_deref(), want, "{path}");
        }
    }
}

#[cfg(test)]
mod printable_tests {
    use super::printable;

    #[test]
    fn control_characters_are_escaped() {
        let cases = [
            ("/etc/passwd", "/etc/passwd"),
            ("/a\nb", "/a\\nb"),
            ("/x\u{1b}[2J", "/x\\u{1b}[2J"),
            ("/back\\slash", "/back\\\\slash"),
            ("/tab\there", "/tab\\there"),
            ("/caf\u{e9}", "/caf\u{e9}"),
        ];
        for (raw, shown) in cases {
            assert_eq!(printable(raw), shown, "{raw:?}");
        }
    }
}
