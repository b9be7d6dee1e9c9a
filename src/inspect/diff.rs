//! `mkimage inspect NEW --diff OLD`: what changed between two images'
//! merged file trees, in bytes of content (regular files and hard links,
//! as the package sizes count them): per package, per file, and why each
//! changed file is there (the newer image's provenance, or the older one's
//! for a removed file). Pure: two trees in, the differences out.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::{FileKind, FileTree};
use crate::oci::provenance::Provenance;

/// What a package's files are filed under when no package owns them.
pub const NO_PACKAGE: &str = "(no package)";

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diff {
    pub old_bytes: u64,
    pub new_bytes: u64,
    pub added: usize,
    pub removed: usize,
    pub changed: usize,
    /// Packages whose bytes changed, largest growth first.
    pub packages: Vec<PackageDelta>,
    /// Files added, removed or resized, largest growth first.
    pub files: Vec<FileDelta>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PackageDelta {
    pub name: String,
    pub old_bytes: u64,
    pub new_bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FileDelta {
    pub path: String,
    /// `None`: not in that image.
    pub old_size: Option<u64>,
    pub new_size: Option<u64>,
    /// Why it is there: the first step of its why-chain, when recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

impl FileDelta {
    pub fn delta(&self) -> i128 {
        i128::from(self.new_size.unwrap_or(0)) - i128::from(self.old_size.unwrap_or(0))
    }
}

/// One image as the diff sees it.
pub struct Side<'a> {
    pub tree: &'a FileTree,
    pub provenance: Option<&'a Provenance>,
}

/// Content bytes by path, and the package of each.
fn contents(tree: &FileTree) -> BTreeMap<&str, (u64, &str)> {
    tree.iter()
        .filter(|f| matches!(f.kind, FileKind::File | FileKind::Hardlink))
        .map(|f| {
            let package = f.package.as_deref().unwrap_or(NO_PACKAGE);
            (f.path.as_str(), (f.size, package))
        })
        .collect()
}

pub fn diff(new: &Side<'_>, old: &Side<'_>) -> Diff {
    let (n, o) = (contents(new.tree), contents(old.tree));
    let mut packages: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for (size, package) in o.values() {
        packages.entry(package).or_default().0 += size;
    }
    for (size, package) in n.values() {
        packages.entry(package).or_default().1 += size;
    }
    let mut packages: Vec<PackageDelta> = packages
        .into_iter()
        .filter(|(_, (a, b))| a != b)
        .map(|(name, (old_bytes, new_bytes))| PackageDelta {
            name: name.to_owned(),
            old_bytes,
            new_bytes,
        })
        .collect();
    let growth = |d: &PackageDelta| i128::from(d.new_bytes) - i128::from(d.old_bytes);
    packages.sort_by(|a, b| growth(b).cmp(&growth(a)).then_with(|| a.name.cmp(&b.name)));

    let paths: BTreeSet<&str> = n.keys().chain(o.keys()).copied().collect();
    let mut files: Vec<FileDelta> = paths
        .into_iter()
        .filter_map(|path| {
            let (new_size, old_size) = (n.get(path).map(|e| e.0), o.get(path).map(|e| e.0));
            if new_size == old_size {
                return None;
            }
            let side = if new_size.is_some() { new } else { old };
            Some(FileDelta {
                path: path.to_owned(),
                old_size,
                new_size,
                why: why(side, path),
            })
        })
        .collect();
    files.sort_by(|a, b| b.delta().cmp(&a.delta()).then_with(|| a.path.cmp(&b.path)));
    Diff {
        old_bytes: o.values().map(|e| e.0).sum(),
        new_bytes: n.values().map(|e| e.0).sum(),
        added: files.iter().filter(|f| f.old_size.is_none()).count(),
        removed: files.iter().filter(|f| f.new_size.is_none()).count(),
        changed: files
            .iter()
            .filter(|f| f.old_size.is_some() && f.new_size.is_some())
            .count(),
        packages,
        files,
    }
}

/// The recorded reason for `path` (or the nearest recorded directory
/// above it), as `inspect --why` would start its answer.
fn why(side: &Side<'_>, path: &str) -> Option<String> {
    let p = side.provenance?;
    let mut at = Some(path);
    while let Some(here) = at {
        if let Some(o) = p.files.get(here) {
            return Some(o.why.clone());
        }
        at = here
            .rsplit_once('/')
            .map(|(d, _)| d)
            .filter(|d| !d.is_empty());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::{Change, FileInfo};
    use crate::oci::provenance::FileOrigin;

    fn tree(files: &[(&str, u64, Option<&str>)]) -> FileTree {
        let mut t = FileTree::default();
        for (path, size, _) in files {
            t.apply(
                1,
                Change::from_entry(FileInfo {
                    path: (*path).into(),
                    kind: FileKind::File,
                    size: *size,
                    mode: 0o644,
                    uid: 0,
                    gid: 0,
                    target: None,
                    path_base64: None,
                    layer: 1,
                    package: None,
                }),
            );
        }
        let owners = files
            .iter()
            .filter_map(|(p, _, pkg)| Some(((*p).to_owned(), (*pkg)?.to_owned())))
            .collect();
        t.set_packages(&owners);
        t
    }

    #[test]
    fn growth_first_with_packages_and_reasons() {
        let old = tree(&[
            ("/a", 10, Some("liba")),
            ("/b", 5, None),
            ("/gone", 7, Some("libg")),
        ]);
        let new = tree(&[
            ("/a", 30, Some("liba")),
            ("/b", 5, None),
            ("/n/x", 100, None),
        ]);
        let prov = Provenance::new(BTreeMap::from([(
            "/n".to_owned(),
            FileOrigin {
                layer: "app".into(),
                why: "--from-dir n".into(),
                needed_by: None,
            },
        )]));
        let d = diff(
            &Side {
                tree: &new,
                provenance: Some(&prov),
            },
            &Side {
                tree: &old,
                provenance: None,
            },
        );
        assert_eq!((d.old_bytes, d.new_bytes), (22, 135));
        assert_eq!((d.added, d.removed, d.changed), (1, 1, 1));
        let files: Vec<(&str, i128, Option<&str>)> = d
            .files
            .iter()
            .map(|f| (f.path.as_str(), f.delta(), f.why.as_deref()))
            .collect();
        assert_eq!(
            files,
            [
                ("/n/x", 100, Some("--from-dir n")),
                ("/a", 20, None),
                ("/gone", -7, None)
            ]
        );
        let packages: Vec<(&str, u64, u64)> = d
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p.old_bytes, p.new_bytes))
            .collect();
        assert_eq!(
            packages,
            [(NO_PACKAGE, 5, 105), ("liba", 10, 30), ("libg", 7, 0)]
        );
    }
}
