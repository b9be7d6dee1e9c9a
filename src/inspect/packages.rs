//! Which Debian package each file of an image comes from, as the image's
//! own package records say (distroless's `/var/lib/dpkg/status.d`: a
//! `<package>` stanza and a `<package>.md5sums` listing its files), and
//! how many bytes each package takes. Pure data: the layer reader hands
//! over the records' bytes as it meets them.

use std::collections::BTreeMap;

use serde::Serialize;

use super::files::{FileKind, FileTree};

/// Where the records live.
pub const STATUS_D: &str = "/var/lib/dpkg/status.d/";
/// Largest record read: a package's md5sums is kilobytes (tzdata's, the
/// largest in Debian 12, is 150 kB).
pub const RECORD_LIMIT: u64 = 4 * 1024 * 1024;

/// Record files met while reading the layers: path → (layer, bytes).
pub type Records = BTreeMap<String, (usize, Vec<u8>)>;

/// One package's share of the image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PackageUsage {
    /// As the record names it (`libc6`, or `libc6:amd64`).
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Its regular files in the image, and their bytes.
    pub files: usize,
    pub size: u64,
}

/// The image's files by package, largest first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Packages {
    pub packages: Vec<PackageUsage>,
    /// Regular files no record lists (the app, generated files, the
    /// records themselves).
    pub other_files: usize,
    pub other_size: u64,
}

/// Whether a layer entry at `path` is a record to keep.
pub fn is_record(path: &str) -> bool {
    path.strip_prefix(STATUS_D)
        .is_some_and(|name| !name.is_empty() && !name.contains('/'))
}

/// Path → package, from the records still in `tree` (a later layer may
/// have deleted or replaced one).
pub fn owners(tree: &FileTree, records: &Records) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (path, (_, bytes)) in live(tree, records) {
        let Some(package) = path
            .strip_prefix(STATUS_D)
            .and_then(|n| n.strip_suffix(".md5sums"))
        else {
            continue;
        };
        for line in String::from_utf8_lossy(bytes).lines() {
            // deb-md5sums(5): the digest, two spaces, the path without `/`.
            if let Some((_, file)) = line.split_once("  ") {
                out.insert(format!("/{file}"), package.to_owned());
            }
        }
    }
    out
}

/// Each file's package and the size each package takes.
pub fn usage(tree: &FileTree, records: &Records) -> (BTreeMap<String, String>, Packages) {
    let owners = owners(tree, records);
    let mut versions: BTreeMap<&str, String> = BTreeMap::new();
    for (path, (_, bytes)) in live(tree, records) {
        let Some(name) = path.strip_prefix(STATUS_D) else {
            continue;
        };
        if name.ends_with(".md5sums") {
            continue;
        }
        let text = String::from_utf8_lossy(bytes);
        if let Some(v) = text.lines().find_map(|l| l.strip_prefix("Version:")) {
            versions.insert(name, v.trim().to_owned());
        }
    }
    let mut by: BTreeMap<&str, (usize, u64)> = BTreeMap::new();
    let mut other = (0, 0);
    // Regular files only: records list no symlinks (deb-md5sums(5)).
    for f in tree.iter() {
        if !matches!(f.kind, FileKind::File | FileKind::Hardlink) {
            continue;
        }
        let slot = match owners.get(&f.path) {
            Some(p) => by.entry(p.as_str()).or_default(),
            None => &mut other,
        };
        slot.0 += 1;
        slot.1 += f.size;
    }
    let mut packages: Vec<PackageUsage> = by
        .into_iter()
        .map(|(name, (files, size))| PackageUsage {
            name: name.to_owned(),
            version: versions.get(name).cloned(),
            files,
            size,
        })
        .collect();
    packages.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.name.cmp(&b.name)));
    let summary = Packages {
        packages,
        other_files: other.0,
        other_size: other.1,
    };
    (owners, summary)
}

/// The records the merged tree still holds, from the layer it holds them from.
fn live<'a>(
    tree: &'a FileTree,
    records: &'a Records,
) -> impl Iterator<Item = (&'a String, &'a (usize, Vec<u8>))> {
    records.iter().filter(|(path, (layer, _))| {
        tree.get(path)
            .is_some_and(|f| f.layer == *layer && f.kind == FileKind::File)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::files::{Change, FileInfo};

    fn file(path: &str, size: u64, layer: usize) -> Change {
        Change::from_entry(FileInfo {
            path: path.into(),
            kind: FileKind::File,
            size,
            mode: 0o644,
            uid: 0,
            gid: 0,
            target: None,
            path_base64: None,
            layer,
            package: None,
        })
    }

    #[test]
    fn files_sized_by_the_package_their_record_names() {
        let mut tree = FileTree::default();
        for c in [
            file("/usr/lib/libc.so.6", 1000, 1),
            file("/usr/lib/libz.so.1", 100, 1),
            file("/app", 7, 2),
            file("/var/lib/dpkg/status.d/libc6", 30, 1),
            file("/var/lib/dpkg/status.d/libc6.md5sums", 40, 1),
            file("/var/lib/dpkg/status.d/zlib1g.md5sums", 40, 1),
            // A later layer deletes zlib1g's record: its files are no
            // package's any more.
            file("/var/lib/dpkg/status.d/.wh.zlib1g.md5sums", 0, 2),
        ] {
            let layer = match &c {
                Change::Put(f) => f.layer,
                _ => 2,
            };
            tree.apply(layer, c);
        }
        let records: Records = [
            ("libc6", 1, "Package: libc6\nVersion: 2.36-9\n"),
            ("libc6.md5sums", 1, "00  usr/lib/libc.so.6\n"),
            ("zlib1g.md5sums", 1, "00  usr/lib/libz.so.1\n"),
        ]
        .into_iter()
        .map(|(n, l, t)| (format!("{STATUS_D}{n}"), (l, t.as_bytes().to_vec())))
        .collect();
        let (owners, summary) = usage(&tree, &records);
        assert_eq!(
            owners.get("/usr/lib/libc.so.6").map(String::as_str),
            Some("libc6")
        );
        assert!(!owners.contains_key("/usr/lib/libz.so.1"));
        assert_eq!(
            summary.packages,
            [PackageUsage {
                name: "libc6".into(),
                version: Some("2.36-9".into()),
                files: 1,
                size: 1000
            }]
        );
        assert_eq!(
            (summary.other_files, summary.other_size),
            (4, 100 + 7 + 30 + 40)
        );
        assert!(is_record("/var/lib/dpkg/status.d/x.md5sums"));
        assert!(!is_record("/var/lib/dpkg/status.d/"));
        assert!(!is_record("/var/lib/dpkg/status"));
    }
}
