//! The layer cache never changes a byte: after every way a user can change
//! the inputs, a cached build gives the digests a `--no-cache` build gives,
//! and the same SBOM, and it reuses exactly the layers whose inputs did
//! not change (as the build's summary line `cache   N of M layers reused
//! (...)` says).

use std::fs::{self, File, FileTimes};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::util::{self, check, index_entry, mkimage, tempdir};

const TAG: &str = "cached:latest";

/// An app tree and a sysroot holding its libraries, and a cache of its own.
struct Inputs {
    dir: tempfile::TempDir,
    app: PathBuf,
    sysroot: PathBuf,
    cache: PathBuf,
}

impl Inputs {
    fn new() -> Inputs {
        let dir = tempdir();
        let app = dir.path().join("app");
        fs::create_dir_all(app.join("sub")).expect("mkdir app");
        fs::copy("/usr/bin/true", app.join("true")).expect("copy true");
        fs::write(app.join("sub/a.txt"), "version 1\n").expect("write");
        fs::write(app.join("sub/b.txt"), "other\n").expect("write");
        std::os::unix::fs::symlink("a.txt", app.join("sub/link")).expect("symlink");
        // A root of just the loader and libc, as `/lib64` holds them (a
        // default directory, so no ld.so.cache is needed).
        let sysroot = dir.path().join("sysroot");
        fs::create_dir_all(sysroot.join("lib64")).expect("mkdir sysroot");
        for lib in [
            "/lib64/ld-linux-x86-64.so.2",
            "/lib/x86_64-linux-gnu/libc.so.6",
        ] {
            let name = Path::new(lib).file_name().expect("name");
            fs::copy(lib, sysroot.join("lib64").join(name)).expect("copy lib");
        }
        let cache = dir.path().join("xdg");
        Inputs {
            dir,
            app,
            sysroot,
            cache,
        }
    }

    /// `mkimage ... -o OUT EXTRA...` with this cache.
    fn build(&self, out: &Path, extra: &[&str]) -> util::Output {
        check(
            mkimage()
                .env("XDG_CACHE_HOME", &self.cache)
                .env_remove("SOURCE_DATE_EPOCH")
                .arg(format!("--sysroot={}", self.sysroot.display()))
                .arg(format!("--from-dir={}:/app", self.app.display()))
                .args(["--entrypoint", "/app/true", "--ca-certs", "none"])
                .args(["--tzdata", "none", "-t", TAG, "-o"])
                .arg(out)
                .args(extra),
        )
    }

    /// Builds with the cache into the same layout as every cached build,
    /// and cold into a new one; checks the digests agree and returns the
    /// names of the layers the cached build reused.
    #[track_caller]
    fn cached_equals_cold(&self, what: &str, extra: &[&str]) -> Vec<String> {
        let layout = self.dir.path().join("cached.oci");
        let cached = self.build(&layout, extra);
        let cold_layout = self
            .dir
            .path()
            .join(format!("cold-{}.oci", what.replace(' ', "-")));
        let mut cold_args = extra.to_vec();
        cold_args.push("--no-cache");
        let cold = self.build(&cold_layout, &cold_args);
        assert!(
            !cold.stdout.contains("  cache "),
            "--no-cache must not use the cache: {cold}"
        );
        // The index entry names the manifest and, in an annotation, the
        // referrers: the SBOM (whose file hashes the cache remembers too)
        // and the provenance.
        assert_eq!(
            index_entry(&layout, TAG),
            index_entry(&cold_layout, TAG),
            "after {what}: the cached build differs from a cold one\n{cached}"
        );
        assert!(!cached.stderr.contains("layer cache"), "{cached}");
        reused(&cached)
    }
}

/// The layers the summary says were reused.
#[track_caller]
fn reused(out: &util::Output) -> Vec<String> {
    let line = out
        .stdout
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("cache "))
        .unwrap_or_else(|| panic!("no cache line in the summary: {out}"));
    match line.split_once('(') {
        Some((_, names)) => names
            .trim_end_matches(')')
            .split(", ")
            .map(str::to_owned)
            .collect(),
        None => Vec::new(),
    }
}

/// Writes `bytes` over `path` keeping its size and mtime, as a tool that
/// restores timestamps would (`touch -r`); only the ctime moves.
fn rewrite_keeping_mtime(path: &Path, bytes: &[u8]) {
    let before = fs::metadata(path).expect("stat");
    assert_eq!(before.len(), bytes.len() as u64, "same size");
    fs::write(path, bytes).expect("rewrite");
    File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_times(FileTimes::new().set_modified(before.modified()?)))
        .expect("restore mtime");
}

/// Longer than the kernel's coarse clock tick, which stamps files: a file
/// changed within the tick a build starts in is (rightly) not recorded.
fn tick() {
    std::thread::sleep(Duration::from_millis(30));
}

/// What a user changed, how, and the layers that should still be reused.
type Mutation<'a> = (&'static str, Box<dyn Fn() + 'a>, &'static [&'static str]);

#[test]
fn every_mutation_gives_the_cold_digests() {
    let i = Inputs::new();
    tick();
    let all = ["base", "libs", "app"];
    let none: [&str; 0] = [];
    // A first build records; a second reuses everything.
    assert_eq!(i.cached_equals_cold("first build", &[]), none);
    assert_eq!(i.cached_equals_cold("nothing", &[]), all);

    let a = i.app.join("sub/a.txt");
    let mut mutations: Vec<Mutation> = vec![
        (
            "content, same size and mtime",
            Box::new(|| rewrite_keeping_mtime(&a, b"version 2\n")),
            &["base", "libs"],
        ),
        (
            "mode",
            Box::new(|| fs::set_permissions(&a, fs::Permissions::from_mode(0o600)).expect("chmod")),
            &["base", "libs"],
        ),
        (
            "symlink retargeted",
            Box::new(|| {
                let link = i.app.join("sub/link");
                fs::remove_file(&link).expect("rm link");
                std::os::unix::fs::symlink("b.txt", &link).expect("symlink");
            }),
            &["base", "libs"],
        ),
        (
            "file added",
            Box::new(|| fs::write(i.app.join("sub/c.txt"), "new\n").expect("write")),
            &["base", "libs"],
        ),
        (
            "file removed",
            Box::new(|| fs::remove_file(i.app.join("sub/b.txt")).expect("rm")),
            &["base", "libs"],
        ),
        (
            "root library updated in place",
            Box::new(|| {
                let libc = i.sysroot.join("lib64/libc.so.6");
                let mut bytes = fs::read(&libc).expect("read libc");
                let mid = bytes.len() / 2;
                bytes[mid] ^= 0xff;
                rewrite_keeping_mtime(&libc, &bytes);
            }),
            &["base", "app"],
        ),
        (
            "root library replaced by a copy",
            Box::new(|| {
                let libc = i.sysroot.join("lib64/libc.so.6");
                fs::remove_file(&libc).expect("rm libc");
                fs::copy("/lib/x86_64-linux-gnu/libc.so.6", &libc).expect("copy libc");
            }),
            &["base", "app"],
        ),
    ];
    for (what, mutate, expect) in mutations.drain(..) {
        mutate();
        tick();
        assert_eq!(i.cached_equals_cold(what, &[]), expect, "after {what}");
        // And then it is all in the cache.
        assert_eq!(i.cached_equals_cold(what, &[]), all, "again after {what}");
    }

    // Flags: nothing is reused across them, then everything is.
    for flags in [
        &["--compression-level", "9"][..],
        &["--compression", "zstd"],
        &["--compression", "zstd", "--compression-level", "4"],
    ] {
        let what = flags.join(" ");
        assert_eq!(i.cached_equals_cold(&what, flags), none, "{what}");
        assert_eq!(i.cached_equals_cold(&what, flags), all, "{what} again");
    }
    // SOURCE_DATE_EPOCH: every entry's mtime.
    let epoch_build = |out: &Path, extra: &[&str]| {
        check(
            mkimage()
                .env("XDG_CACHE_HOME", &i.cache)
                .env("SOURCE_DATE_EPOCH", "1700000000")
                .arg(format!("--sysroot={}", i.sysroot.display()))
                .arg(format!("--from-dir={}:/app", i.app.display()))
                .args(["--entrypoint", "/app/true", "--ca-certs", "none"])
                .args(["--tzdata", "none", "-t", TAG, "-o"])
                .arg(out)
                .args(extra),
        )
    };
    let (warm, cold) = (i.dir.path().join("e.oci"), i.dir.path().join("e-cold.oci"));
    assert_eq!(reused(&epoch_build(&warm, &[])), none);
    assert_eq!(reused(&epoch_build(&warm, &[])), all);
    epoch_build(&cold, &["--no-cache"]);
    assert_eq!(index_entry(&warm, TAG), index_entry(&cold, TAG));
}

/// The per-user cache holds the blobs too: a build into a new layout or an
/// archive reuses them, and a damaged cache is one warning, not bad bytes.
#[test]
fn new_outputs_reuse_the_user_cache_and_damage_is_ignored() {
    let i = Inputs::new();
    tick();
    let first = i.dir.path().join("first.oci");
    assert!(reused(&i.build(&first, &[])).is_empty());
    let second = i.dir.path().join("second.oci");
    assert_eq!(reused(&i.build(&second, &[])).len(), 3);
    assert_eq!(index_entry(&first, TAG), index_entry(&second, TAG));

    let archive = |name: &str, extra: &[&str]| {
        let path = i.dir.path().join(name);
        let mut args = vec!["--format", "oci-archive"];
        args.extend_from_slice(extra);
        (
            i.build(&path, &args),
            fs::read(&path).expect("read archive"),
        )
    };
    let (out, warm) = archive("warm.tar", &[]);
    assert_eq!(reused(&out).len(), 3, "{out}");
    let (_, cold) = archive("cold.tar", &["--no-cache"]);
    assert!(warm == cold, "the archive built from the cache differs");

    // Every record garbled: one warning, and the cold bytes.
    let records = i.cache.join("mkimage/layers-v1/records");
    let mut n = 0;
    for e in fs::read_dir(&records).expect("read records") {
        fs::write(e.expect("entry").path(), "garbage\n").expect("garble");
        n += 1;
    }
    assert!(n >= 3, "{n} records");
    let third = i.dir.path().join("third.oci");
    let out = i.build(&third, &[]);
    assert_eq!(
        out.stderr.matches("warning: the layer cache").count(),
        1,
        "{out}"
    );
    assert!(reused(&out).is_empty(), "{out}");
    assert_eq!(index_entry(&third, TAG), index_entry(&first, TAG));

    // An unusable cache directory: one warning, the same image.
    let blocked = i.dir.path().join("blocked");
    fs::write(&blocked, "a file where the cache directory should be").expect("write");
    let fourth = i.dir.path().join("fourth.oci");
    let out = check(
        mkimage()
            .env("XDG_CACHE_HOME", &blocked)
            .env_remove("SOURCE_DATE_EPOCH")
            .arg(format!("--sysroot={}", i.sysroot.display()))
            .arg(format!("--from-dir={}:/app", i.app.display()))
            .args(["--entrypoint", "/app/true", "--ca-certs", "none"])
            .args(["--tzdata", "none", "-t", TAG, "-o"])
            .arg(&fourth),
    );
    assert_eq!(
        out.stderr
            .matches("warning: the layer cache is not used")
            .count(),
        1,
        "{out}"
    );
    assert_eq!(index_entry(&fourth, TAG), index_entry(&first, TAG));
}

/// A sysroot with a dpkg database owning its libc through a link
/// (`/lib` -> `lib64`, as the list names it), for the package survey the
/// cache remembers.
struct Packaged {
    inputs: Inputs,
}

impl Packaged {
    fn new() -> Packaged {
        let inputs = Inputs::new();
        let root = &inputs.sysroot;
        std::os::unix::fs::symlink("lib64", root.join("lib")).expect("symlink");
        fs::create_dir_all(root.join("other")).expect("mkdir");
        fs::create_dir_all(root.join("var/lib/dpkg/info")).expect("mkdir");
        fs::create_dir_all(root.join("usr/share/doc/libc6")).expect("mkdir");
        Packaged::status(root, "2.36-9");
        let libs = ["ld-linux-x86-64.so.2", "libc.so.6"];
        let mut list = String::from("/.\n/lib\n");
        let mut sums = String::new();
        for lib in libs {
            list.push_str(&format!("/lib/{lib}\n"));
            let bytes = fs::read(root.join("lib64").join(lib)).expect("read lib");
            let md5: String = <md5::Md5 as md5::Digest>::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            sums.push_str(&format!("{md5}  lib/{lib}\n"));
        }
        list.push_str("/usr\n/usr/share\n/usr/share/doc\n/usr/share/doc/libc6\n");
        list.push_str("/usr/share/doc/libc6/copyright\n/lib/libc.README\n");
        let info = root.join("var/lib/dpkg/info");
        fs::write(info.join("libc6:amd64.list"), list).expect("write list");
        fs::write(info.join("libc6:amd64.md5sums"), sums).expect("write md5sums");
        Packaged::copyright(root, "LGPL-2.1+");
        fs::write(root.join("lib64/libc.README"), "read me\n").expect("write");
        Packaged { inputs }
    }

    fn status(root: &Path, version: &str) {
        fs::write(
            root.join("var/lib/dpkg/status"),
            format!(
                "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nMulti-Arch: same\nSource: glibc\nVersion: {version}\nMaintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>\nDescription: GNU C Library: Shared libraries\n\n"
            ),
        )
        .expect("write status");
    }

    fn copyright(root: &Path, license: &str) {
        fs::write(
            root.join("usr/share/doc/libc6/copyright"),
            format!(
                "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: glibc\n\nFiles: *\nCopyright: 1991-2023 Free Software Foundation, Inc.\nLicense: {license}\n"
            ),
        )
        .expect("write copyright");
    }

    /// A cached build and a cold one: the same index entry (manifest and
    /// SBOM) and the same warnings. Returns the entry and the warnings.
    #[track_caller]
    fn cached_equals_cold(&self, what: &str) -> (serde_json::Value, Vec<String>) {
        let dir = self.inputs.dir.path();
        let layout = dir.join("packaged.oci");
        let cached = self.inputs.build(&layout, &[]);
        let cold_layout = dir.join(format!("packaged-cold-{}.oci", what.replace(' ', "-")));
        let cold = self.inputs.build(&cold_layout, &["--no-cache"]);
        let entry = index_entry(&cold_layout, TAG);
        assert_eq!(
            index_entry(&layout, TAG),
            entry,
            "after {what}: the cached build differs from a cold one\n{cached}"
        );
        let warnings = |out: &util::Output| -> Vec<String> {
            out.stderr
                .lines()
                .filter(|l| l.contains("warning:"))
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(warnings(&cached), warnings(&cold), "after {what}");
        (entry, warnings(&cold))
    }
}

/// What the package survey reads beyond the image's files (the package's
/// copyright and md5sums, its other listed files, the links its list is
/// read through, the status file) changes the SBOM, the records or the
/// warnings; the cached build follows each change as a cold one does.
#[test]
fn every_change_to_the_package_database_gives_the_cold_build() {
    let p = Packaged::new();
    let root = p.inputs.sysroot.clone();
    tick();
    let (mut entry, warnings) = p.cached_equals_cold("first build");
    assert!(
        !warnings.iter().any(|l| l.contains("libc6")),
        "{warnings:?}"
    );
    assert_eq!(p.cached_equals_cold("nothing").0, entry);

    type Change<'a> = (&'static str, Box<dyn Fn() + 'a>, bool, Option<&'static str>);
    let changes: Vec<Change> = vec![
        (
            "license changed",
            Box::new(|| Packaged::copyright(&root, "GPL-2+")),
            true,
            None,
        ),
        (
            "listed file removed",
            Box::new(|| fs::remove_file(root.join("lib64/libc.README")).expect("rm")),
            false,
            Some("names 1 file not in"),
        ),
        (
            "md5sums changed",
            Box::new(|| {
                let sums = root.join("var/lib/dpkg/info/libc6:amd64.md5sums");
                let text = fs::read_to_string(&sums).expect("read");
                let zeroed: String = text
                    .lines()
                    .map(|l| format!("{}{}\n", "0".repeat(32), &l[32..]))
                    .collect();
                fs::write(&sums, zeroed).expect("write");
            }),
            false,
            Some("differs from the copy libc6:amd64 installed"),
        ),
        (
            "version bumped",
            Box::new(|| Packaged::status(&root, "2.36-10")),
            true,
            None,
        ),
        (
            "link the list is read through retargeted",
            Box::new(|| {
                fs::remove_file(root.join("lib")).expect("rm link");
                std::os::unix::fs::symlink("other", root.join("lib")).expect("symlink");
            }),
            true,
            None,
        ),
    ];
    for (what, change, shows_in_image, warns) in changes {
        change();
        tick();
        let (now, warnings) = p.cached_equals_cold(what);
        assert_eq!(now != entry, shows_in_image, "{what}: {now} vs {entry}");
        if let Some(w) = warns {
            assert!(
                warnings.iter().any(|l| l.contains(w)),
                "{what}: {warnings:?}"
            );
        }
        entry = now;
        assert_eq!(p.cached_equals_cold(what).0, entry, "again after {what}");
    }
}
