//! Debian package records in images: each file copied from the root is
//! matched to the package owning it in *that root's* dpkg database
//! (merged /usr, diversions), and written as distroless's
//! `/var/lib/dpkg/status.d/<package>` and `<package>.md5sums`, with
//! os-release and debian_version beside them. Bad databases give a
//! warning or an error naming the file, never a wrong record.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};

use crate::util::{self, Kind, Layer};

const OS_RELEASE: &str = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\n";

/// A sysroot with merged /usr, os-release, and a dpkg database whose
/// `status` is `status`; `lists` are (info file base, list text).
struct Sysroot {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Sysroot {
    fn new(status: &str, lists: &[(&str, &str)]) -> Sysroot {
        let dir = util::tempdir();
        let root = dir.path().join("root");
        for d in [
            "usr/lib/x86_64-linux-gnu",
            "usr/bin",
            "etc",
            "var/lib/dpkg/info",
        ] {
            std::fs::create_dir_all(root.join(d)).expect("fixture");
        }
        symlink("usr/lib", root.join("lib")).expect("fixture");
        symlink("usr/bin", root.join("bin")).expect("fixture");
        std::fs::write(root.join("usr/lib/os-release"), OS_RELEASE).expect("fixture");
        symlink("../usr/lib/os-release", root.join("etc/os-release")).expect("fixture");
        std::fs::write(root.join("etc/debian_version"), "12.12\n").expect("fixture");
        std::fs::write(root.join("var/lib/dpkg/status"), status).expect("fixture");
        for (key, list) in lists {
            std::fs::write(root.join(format!("var/lib/dpkg/info/{key}.list")), list)
                .expect("fixture");
        }
        Sysroot { _dir: dir, root }
    }

    fn file(&self, rel: &str, content: &[u8]) -> PathBuf {
        let p = self.root.join(rel);
        std::fs::create_dir_all(p.parent().expect("fixture")).expect("fixture");
        std::fs::write(&p, content).expect("fixture");
        p
    }

    /// Builds an image of `includes` (paths relative to the root, placed
    /// at the same image path) against this sysroot.
    fn build(&self, includes: &[&Path], out: &Path) -> util::Output {
        let mut cmd = util::mkimage();
        cmd.arg("--sysroot")
            .arg(&self.root)
            .args(["--ca-certs", "none", "--tzdata", "none", "-t", "t:1"])
            .args(["--entrypoint", "/bin/true", "-o"])
            .arg(out);
        for rel in includes {
            let mut arg = self.root.join(rel).into_os_string();
            arg.push(":/");
            arg.push(rel.as_os_str());
            cmd.arg("--include").arg(arg);
        }
        util::run(&mut cmd)
    }
}

fn stanza(name: &str, extra: &str) -> String {
    format!(
        "Package: {name}\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0-1\nMaintainer: Jane <jane@example.org>\n{extra}Description: {name} things\n long text\n\n"
    )
}

fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn merged(out: &Path) -> Layer {
    util::merged(&util::layers(out, "t:1"))
}

fn text(tree: &Layer, path: &str) -> String {
    match &tree
        .get(path)
        .unwrap_or_else(|| panic!("{path} not in image"))
        .kind
    {
        Kind::File(b) => String::from_utf8_lossy(b).into_owned(),
        other => panic!("{path}: {other:?}"),
    }
}

#[test]
fn records_come_from_the_sysroots_database_with_merged_usr() {
    let root = Sysroot::new(
        &(stanza(
            "libfoo1",
            "Multi-Arch: same\nSource: foo (1.0-1)\nConffiles:\n /etc/foo.conf 0123\n",
        ) + &stanza("unrelated", "")),
        &[
            // Listed under /lib: the image holds it at its real /usr path.
            (
                "libfoo1:amd64",
                "/.\n/lib\n/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu/libfoo.so.1\n",
            ),
            ("unrelated", "/.\n/usr/bin/unrelated\n"),
        ],
    );
    root.file("usr/lib/x86_64-linux-gnu/libfoo.so.1", b"foo bytes");
    root.file("usr/bin/unrelated", b"u");
    // The host's dpkg owns /usr/bin/true (coreutils); the sysroot's copy
    // is listed by nobody there, so it gets no record: the host's
    // database is never read with --sysroot.
    std::fs::copy("/usr/bin/true", root.root.join("usr/bin/true")).expect("fixture");
    let dir = util::tempdir();
    let out = dir.path().join("out.oci");
    let built = root.build(
        &[
            Path::new("usr/lib/x86_64-linux-gnu/libfoo.so.1"),
            Path::new("usr/bin/true"),
        ],
        &out,
    );
    built.assert_success();
    let tree = merged(&out);
    let status_d: Vec<&String> = tree
        .keys()
        .filter(|p| p.starts_with("var/lib/dpkg/status.d/"))
        .collect();
    assert_eq!(
        status_d,
        [
            "var/lib/dpkg/status.d/libfoo1",
            "var/lib/dpkg/status.d/libfoo1.md5sums"
        ],
        "one package, no coreutils from the host, no unrelated one"
    );
    assert_eq!(
        text(&tree, "var/lib/dpkg/status.d/libfoo1"),
        "Package: libfoo1\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0-1\nMaintainer: Jane <jane@example.org>\nMulti-Arch: same\nSource: foo (1.0-1)\nDescription: libfoo1 things\n"
    );
    assert_eq!(
        text(&tree, "var/lib/dpkg/status.d/libfoo1.md5sums"),
        format!(
            "{}  usr/lib/x86_64-linux-gnu/libfoo.so.1\n",
            md5_hex(b"foo bytes")
        )
    );
    assert_eq!(text(&tree, "usr/lib/os-release"), OS_RELEASE);
    assert!(matches!(
        &tree["etc/os-release"].kind,
        Kind::Symlink(t) if t == "../usr/lib/os-release"
    ));
    assert_eq!(text(&tree, "etc/debian_version"), "12.12\n");
    // The records sit in the layer of the files they describe.
    let named = util::named_layers(&out, "t:1");
    assert!(named["app"].contains_key("var/lib/dpkg/status.d/libfoo1"));
    assert!(named["base"].contains_key("usr/lib/os-release"));

    // inspect reads them back: each file's package, bytes by package.
    let json = util::check(util::mkimage().args(["inspect", "--json"]).arg(&out));
    let report: serde_json::Value = serde_json::from_str(&json.stdout).expect("inspect JSON");
    let lib = report["files"]
        .as_array()
        .expect("files")
        .iter()
        .find(|f| f["path"] == "/usr/lib/x86_64-linux-gnu/libfoo.so.1")
        .expect("libfoo in the listing");
    assert_eq!(lib["package"], "libfoo1");
    assert_eq!(
        report["packages"]["packages"],
        serde_json::json!([{"name": "libfoo1", "version": "1.0-1", "files": 1, "size": 9}])
    );
    let text = util::check(util::mkimage().arg("inspect").arg(&out)).stdout;
    assert!(text.contains("libfoo1 1.0-1"), "{text}");
    assert!(
        text.contains("/usr/lib/x86_64-linux-gnu/libfoo.so.1  [libfoo1]"),
        "{text}"
    );
}

#[test]
fn a_root_without_a_database_builds_and_says_so_once() {
    let dir = util::tempdir();
    let root = dir.path().join("bare");
    std::fs::create_dir_all(root.join("usr/bin")).expect("fixture");
    std::fs::write(root.join("usr/bin/a"), b"a").expect("fixture");
    std::fs::write(root.join("usr/bin/b"), b"b").expect("fixture");
    // The entrypoint must be executable (the build checks it).
    std::fs::set_permissions(
        root.join("usr/bin/a"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("fixture");
    let out = dir.path().join("out.oci");
    let run = util::run(
        util::mkimage()
            .arg("--sysroot")
            .arg(&root)
            .args(["--ca-certs", "none", "--tzdata", "none", "-t", "t:1"])
            .args(["--entrypoint", "/usr/bin/a", "-o"])
            .arg(&out)
            .arg("--include")
            .arg(format!("{}:/usr/bin", root.join("usr/bin").display())),
    );
    run.assert_success();
    assert_eq!(
        run.stdout.matches("no Debian package records").count(),
        1,
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("/var/lib/dpkg/status"),
        "{}",
        run.stdout
    );
    let tree = merged(&out);
    assert!(!tree.keys().any(|p| p.starts_with("var/lib/dpkg")));
    assert!(!tree.contains_key("usr/lib/os-release"));
}

#[test]
fn a_corrupt_status_fails_naming_file_and_line_and_writes_nothing() {
    let root = Sysroot::new(
        &format!("{}this line is not a field\n", stanza("libfoo1", "")),
        &[("libfoo1", "/usr/bin/foo\n")],
    );
    root.file("usr/bin/foo", b"f");
    let dir = util::tempdir();
    let out = dir.path().join("out.oci");
    let run = root.build(&[Path::new("usr/bin/foo")], &out);
    assert!(!run.status.success(), "{}", run.stdout);
    let status = root.root.join("var/lib/dpkg/status");
    assert!(
        run.stderr.contains(&status.display().to_string()) && run.stderr.contains("line 9"),
        "{}",
        run.stderr
    );
    assert!(!out.exists(), "a failed build leaves no output");
}

#[test]
fn a_list_naming_a_missing_file_is_a_warning_naming_both() {
    let root = Sysroot::new(
        &stanza("libfoo1", ""),
        &[(
            "libfoo1",
            "/usr/bin/foo\n/usr/lib/x86_64-linux-gnu/gone.so\n",
        )],
    );
    root.file("usr/bin/foo", b"f");
    let dir = util::tempdir();
    let out = dir.path().join("out.oci");
    let run = root.build(&[Path::new("usr/bin/foo")], &out);
    run.assert_success();
    assert!(
        run.stderr.contains("libfoo1")
            && run.stderr.contains("/usr/lib/x86_64-linux-gnu/gone.so")
            && run.stderr.contains("1 file not in"),
        "{}",
        run.stderr
    );
    // The record lists what the image holds, nothing more.
    assert_eq!(
        text(&merged(&out), "var/lib/dpkg/status.d/libfoo1.md5sums"),
        format!("{}  usr/bin/foo\n", md5_hex(b"f"))
    );
}

#[test]
fn a_file_claimed_under_both_aliases_goes_to_the_package_whose_md5_matches() {
    // libold lists it under /lib (before the /usr merge), libnew under
    // /usr/lib; they are one file, and only libnew shipped these bytes.
    let root = Sysroot::new(
        &(stanza("libnew", "") + &stanza("libold", "")),
        &[
            ("libnew", "/usr/lib/x86_64-linux-gnu/libx.so.1\n"),
            ("libold", "/lib/x86_64-linux-gnu/libx.so.1\n"),
        ],
    );
    let lib = "usr/lib/x86_64-linux-gnu/libx.so.1";
    root.file(lib, b"new");
    let info = root.root.join("var/lib/dpkg/info");
    std::fs::write(
        info.join("libnew.md5sums"),
        format!("{}  {lib}\n", md5_hex(b"new")),
    )
    .expect("fixture");
    std::fs::write(
        info.join("libold.md5sums"),
        format!("{}  lib/x86_64-linux-gnu/libx.so.1\n", md5_hex(b"old")),
    )
    .expect("fixture");
    let dir = util::tempdir();
    let out = dir.path().join("out.oci");
    root.build(&[Path::new(lib)], &out).assert_success();
    let tree = merged(&out);
    assert!(tree.contains_key("var/lib/dpkg/status.d/libnew.md5sums"));
    assert!(!tree.contains_key("var/lib/dpkg/status.d/libold"));

    // Neither md5 matches: a warning naming the file and both packages.
    std::fs::write(root.root.join(lib), b"changed").expect("fixture");
    let out2 = dir.path().join("out2.oci");
    let run = root.build(&[Path::new(lib)], &out2);
    run.assert_success();
    assert!(
        run.stderr.contains("libx.so.1")
            && run.stderr.contains("libnew and libold")
            && run.stderr.contains("recorded as libnew's"),
        "{}",
        run.stderr
    );
}

#[test]
fn diverted_files_belong_to_the_right_package_and_say_so() {
    // pkgb diverts /usr/bin/tool to /usr/bin/tool.distrib and ships its own
    // /usr/bin/tool; pkga's tool is installed at /usr/bin/tool.distrib.
    let root = Sysroot::new(
        &(stanza("pkga", "") + &stanza("pkgb", "")),
        &[("pkga", "/usr/bin/tool\n"), ("pkgb", "/usr/bin/tool\n")],
    );
    root.file("usr/bin/tool", b"b's tool");
    root.file("usr/bin/tool.distrib", b"a's tool");
    std::fs::write(
        root.root.join("var/lib/dpkg/diversions"),
        "/usr/bin/tool\n/usr/bin/tool.distrib\npkgb\n",
    )
    .expect("fixture");
    let dir = util::tempdir();
    let out = dir.path().join("out.oci");
    let run = root.build(
        &[Path::new("usr/bin/tool"), Path::new("usr/bin/tool.distrib")],
        &out,
    );
    run.assert_success();
    let tree = merged(&out);
    assert_eq!(
        text(&tree, "var/lib/dpkg/status.d/pkga.md5sums"),
        format!("{}  usr/bin/tool.distrib\n", md5_hex(b"a's tool"))
    );
    assert_eq!(
        text(&tree, "var/lib/dpkg/status.d/pkgb.md5sums"),
        format!("{}  usr/bin/tool\n", md5_hex(b"b's tool"))
    );
    assert!(
        run.stderr.contains("dpkg-divert") && run.stderr.contains("recorded as pkga's"),
        "{}",
        run.stderr
    );

    // A truncated diversions file is an error naming it.
    std::fs::write(
        root.root.join("var/lib/dpkg/diversions"),
        "/usr/bin/tool\n/usr/bin/tool.distrib\n",
    )
    .expect("fixture");
    let run = root.build(&[Path::new("usr/bin/tool")], &dir.path().join("x.oci"));
    assert!(!run.status.success());
    assert!(run.stderr.contains("diversions"), "{}", run.stderr);
}

#[test]
fn non_utf8_file_names_keep_their_bytes_in_md5sums() {
    let name: &[u8] = b"usr/share/foo/caf\xe9";
    let mut list = b"/".to_vec();
    list.extend_from_slice(name);
    list.push(b'\n');
    let root = Sysroot::new(&stanza("foo", ""), &[]);
    std::fs::write(root.root.join("var/lib/dpkg/info/foo.list"), &list).expect("fixture");
    let rel = Path::new(OsStr::from_bytes(name));
    std::fs::create_dir_all(root.root.join("usr/share/foo")).expect("fixture");
    std::fs::write(root.root.join(rel), b"x").expect("fixture");
    let dir = util::tempdir();
    let out = dir.path().join("out.oci");
    let mut cmd = util::mkimage();
    let mut include = root.root.join("usr/share/foo").into_os_string();
    include.push(":/usr/share/foo");
    cmd.arg("--sysroot")
        .arg(&root.root)
        .args(["--ca-certs", "none", "--tzdata", "none", "-t", "t:1"])
        .args(["--entrypoint", "/x", "-o"])
        .arg(&out)
        .arg("--include")
        .arg(include);
    let run = util::run(&mut cmd);
    run.assert_success();
    assert!(run.stderr.contains("not UTF-8"), "{}", run.stderr);
    let tree = merged(&out);
    let Kind::File(sums) = &tree["var/lib/dpkg/status.d/foo.md5sums"].kind else {
        panic!("no md5sums");
    };
    let mut want = md5_hex(b"x").into_bytes();
    want.extend_from_slice(b"  ");
    want.extend_from_slice(name);
    want.push(b'\n');
    assert_eq!(sums, &want);
}
