//! Test fixture for the layer writer: one tree with every kind of entry and
//! every header edge case, and the archive it must turn into.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use ::tar::{Archive, EntryType};
use tempfile::TempDir;

use crate::rootfs::{Entry, ImagePath, Kind, Source, Tree};

/// 2023-11-14 22:13:20 UTC, a typical SOURCE_DATE_EPOCH.
pub const MTIME: u64 = 1_700_000_000;

pub struct Fixture {
    /// Holds the host file; dropped with the fixture.
    pub _dir: TempDir,
    pub tree: Tree,
    pub host_file: PathBuf,
    pub host_data: Vec<u8>,
}

/// One expected archive entry, in archive order.
pub struct Want {
    pub name: String,
    pub kind: EntryType,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub link: Option<String>,
    pub data: Vec<u8>,
    /// PAX records expected before the entry, sorted by key.
    pub pax: Vec<(&'static str, String)>,
}

fn p(s: &str) -> ImagePath {
    ImagePath::new(s).unwrap()
}

fn long_dir() -> String {
    format!("/opt/{}/{}", "a".repeat(80), "b".repeat(30))
}

fn long_target() -> String {
    format!("../{}target", "x/".repeat(60))
}

/// Deterministic, compressible, larger than four gzip chunks (and two
/// zstd ones) so that compression really runs in parallel.
fn host_data() -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..(4 << 20) + 700_000u32)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            if i % 5 == 0 {
                (x >> 24) as u8
            } else {
                b"ELF\x7f"[(i % 4) as usize]
            }
        })
        .collect()
}

pub fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let host_file = dir.path().join("app");
    let host_data = host_data();
    std::fs::write(&host_file, &host_data).unwrap();

    let mut t = Tree::new();
    t.insert(p("/etc"), Entry::dir(0o755)).unwrap();
    t.insert(p("/etc/empty"), Entry::bytes(&b""[..], 0o600))
        .unwrap();
    t.insert(
        p("/etc/hosts"),
        Entry::bytes(&b"127.0.0.1 localhost\n"[..], 0o644),
    )
    .unwrap();
    t.insert(p(&long_dir()), Entry::dir(0o750)).unwrap();
    t.insert(
        p(&format!("{}/data.bin", long_dir())),
        Entry::bytes(&b"data"[..], 0o640).owned(3_000_000, 3_000_001),
    )
    .unwrap();
    t.insert(p("/tmp"), Entry::dir(0o1777)).unwrap();
    let app = Entry::file(
        Source::Host(host_file.clone()),
        host_data.len() as u64,
        0o755,
    )
    .owned(1000, 1000);
    t.insert(p("/usr/bin/app"), app).unwrap();
    let hard = Entry {
        kind: Kind::Hardlink {
            target: p("/usr/bin/app"),
        },
        mode: 0o755,
        uid: 1000,
        gid: 1000,
        stat: None,
    };
    t.insert(p("/usr/bin/app.hard"), hard).unwrap();
    t.insert(p("/usr/bin/sh"), Entry::symlink("app")).unwrap();
    t.insert(p("/usr/lib/long"), Entry::symlink(long_target()))
        .unwrap();
    Fixture {
        _dir: dir,
        tree: t,
        host_file,
        host_data,
    }
}

pub fn expected(host_data: &[u8]) -> Vec<Want> {
    let dir = |name: &str, mode| Want {
        name: name.into(),
        kind: EntryType::Directory,
        mode,
        uid: 0,
        gid: 0,
        link: None,
        data: vec![],
        pax: vec![],
    };
    let file = |name: &str, mode, data: &[u8]| Want {
        kind: EntryType::Regular,
        data: data.to_vec(),
        ..dir(name, mode)
    };
    let symlink = |name: &str, target: &str| Want {
        kind: EntryType::Symlink,
        link: Some(target.into()),
        ..dir(name, 0o777)
    };
    let long_dir = format!("{}/", &long_dir()[1..]);
    let long_file = format!("{long_dir}data.bin");
    let long_target = long_target();
    vec![
        dir("etc/", 0o755),
        file("etc/empty", 0o600, b""),
        file("etc/hosts", 0o644, b"127.0.0.1 localhost\n"),
        dir("opt/", 0o755),
        dir(&format!("opt/{}/", "a".repeat(80)), 0o755),
        Want {
            pax: vec![("path", long_dir.clone())],
            ..dir(&long_dir, 0o750)
        },
        Want {
            uid: 3_000_000,
            gid: 3_000_001,
            pax: vec![
                ("gid", "3000001".into()),
                ("path", long_file.clone()),
                ("uid", "3000000".into()),
            ],
            ..file(&long_file, 0o640, b"data")
        },
        dir("tmp/", 0o1777),
        dir("usr/", 0o755),
        dir("usr/bin/", 0o755),
        Want {
            uid: 1000,
            gid: 1000,
            ..file("usr/bin/app", 0o755, host_data)
        },
        Want {
            kind: EntryType::Link,
            link: Some("usr/bin/app".into()),
            uid: 1000,
            gid: 1000,
            ..dir("usr/bin/app.hard", 0o755)
        },
        symlink("usr/bin/sh", "app"),
        dir("usr/lib/", 0o755),
        Want {
            pax: vec![("linkpath", long_target.clone())],
            ..symlink("usr/lib/long", &long_target)
        },
    ]
}

/// Reads `tar` back with the tar crate and checks every entry against
/// `expected`, header field by header field.
pub fn check_tar(tar: &[u8], mtime: u64) {
    assert_eq!(tar.len() % 512, 0, "whole blocks");
    assert!(
        tar[tar.len() - 1024..].iter().all(|&b| b == 0),
        "ends with two zero blocks"
    );
    let f_data = host_data();
    let want = expected(&f_data);
    let mut archive = Archive::new(tar);
    let mut n = 0;
    for (entry, w) in archive.entries().unwrap().zip(&want) {
        let mut entry = entry.unwrap();
        let name = &w.name;
        let pax: Vec<(String, String)> = match entry.pax_extensions().unwrap() {
            None => vec![],
            Some(records) => records
                .map(|r| {
                    let r = r.unwrap();
                    (r.key().unwrap().to_string(), r.value().unwrap().to_string())
                })
                .collect(),
        };
        let want_pax: Vec<(String, String)> = w
            .pax
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        assert_eq!(pax, want_pax, "{name}: pax records");
        assert_eq!(&*entry.path_bytes(), name.as_bytes(), "path");
        assert_eq!(
            entry.link_name_bytes().map(|l| l.into_owned()),
            w.link.as_ref().map(|l| l.clone().into_bytes()),
            "{name}: link name"
        );

        let h = entry.header();
        assert!(h.as_ustar().is_some(), "{name}: ustar magic");
        assert_eq!(h.entry_type(), w.kind, "{name}: type");
        assert_eq!(h.mode().unwrap(), w.mode, "{name}: mode");
        assert_eq!(h.uid().unwrap(), w.uid, "{name}: uid");
        assert_eq!(h.gid().unwrap(), w.gid, "{name}: gid");
        assert_eq!(h.mtime().unwrap(), mtime, "{name}: mtime");
        assert_eq!(h.username_bytes(), Some(&b""[..]), "{name}: uname");
        assert_eq!(h.groupname_bytes(), Some(&b""[..]), "{name}: gname");
        assert_eq!(h.size().unwrap(), w.data.len() as u64, "{name}: size");
        // Without PAX, the ustar name field holds the whole name; with it, a
        // truncated hint.
        let raw_name = &h.as_old().name;
        let n_raw = name.len().min(100);
        assert_eq!(
            &raw_name[..n_raw],
            &name.as_bytes()[..n_raw],
            "{name}: raw name"
        );
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        assert!(data == w.data, "{name}: contents differ");
        n += 1;
    }
    assert_eq!(n, want.len(), "entry count");
}

/// What `tar -tv` prints for the fixture, as columns without the date:
/// mode string, uid/gid, size, name, link.
pub fn gnu_tar_listing() -> Vec<Vec<String>> {
    expected(&host_data())
        .into_iter()
        .map(|w| {
            let type_char = match w.kind {
                EntryType::Directory => 'd',
                EntryType::Symlink => 'l',
                EntryType::Link => 'h',
                _ => '-',
            };
            let mut mode: String = [type_char].into_iter().collect();
            for (shift, special) in [(6, None), (3, None), (0, Some('t'))] {
                let bits = (w.mode >> shift) & 7;
                mode.push(if bits & 4 != 0 { 'r' } else { '-' });
                mode.push(if bits & 2 != 0 { 'w' } else { '-' });
                mode.push(match (bits & 1 != 0, special, w.mode & 0o1000 != 0) {
                    (true, Some(t), true) => t,
                    (true, _, _) => 'x',
                    (false, _, _) => '-',
                });
            }
            let size = match w.kind {
                EntryType::Regular => w.data.len(),
                _ => 0,
            };
            let mut cols = vec![
                mode,
                format!("{}/{}", w.uid, w.gid),
                size.to_string(),
                w.name.clone(),
            ];
            match (w.kind, &w.link) {
                (EntryType::Symlink, Some(l)) => cols.extend(["->".into(), l.clone()]),
                (EntryType::Link, Some(l)) => cols.extend(["link".into(), "to".into(), l.clone()]),
                _ => {}
            }
            cols
        })
        .collect()
}

/// Checks a tree extracted by GNU tar: contents, links and long names.
pub fn check_extracted(root: &Path, f: &Fixture) {
    for w in expected(&f.host_data) {
        let path = root.join(&w.name);
        let meta = std::fs::symlink_metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", w.name));
        match w.kind {
            EntryType::Directory => assert!(meta.is_dir(), "{}", w.name),
            EntryType::Regular => {
                assert!(meta.is_file(), "{}", w.name);
                assert!(std::fs::read(&path).unwrap() == w.data, "{}", w.name);
            }
            EntryType::Symlink => {
                let target = std::fs::read_link(&path).unwrap();
                assert_eq!(target.to_str(), w.link.as_deref(), "{}", w.name);
            }
            EntryType::Link => {
                let target = root.join(w.link.as_deref().unwrap());
                let target_meta = std::fs::metadata(target).unwrap();
                assert_eq!(meta.ino(), target_meta.ino(), "{}: same inode", w.name);
                assert_eq!(meta.nlink(), 2, "{}", w.name);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
