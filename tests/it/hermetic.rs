//! Hermetic builds, as Bazel's sandbox, a remote executor or the Nix
//! sandbox run them: the static mkimage under bubblewrap, seeing only its
//! declared inputs, the sysroot, its output directory and $TMPDIR (no
//! /usr, no /etc, no network), writes the very image an open build on
//! this machine writes, for every kind of artifact. And what a build with
//! `--sysroot` would need from this machine is an error naming the flag
//! that declares it.
//!
//! The sysroot is made from this machine's own files (hard links, so it
//! costs no copy) once per run under target/hermetic. The static binary
//! comes from `MKIMAGE_STATIC`, which scripts/test builds and sets.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::util::{Output, cc, check, mkimage, require_tool, run, tempdir};

/// The JDK the sysroot holds (Debian's openjdk-17-jdk-headless).
const JAVA_HOME: &str = "/usr/lib/jvm/java-17-openjdk-amd64";

/// What the sysroot holds, from this machine: libraries, Python 3.11 and
/// its standard library, the JDK with the /etc files its links lead to,
/// the C.utf8 locale and time zones.
const SYSROOT_PATHS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib64",
    "/usr/lib/locale/C.utf8",
    "/usr/lib/python3.11",
    "/usr/bin/python3.11",
    "/usr/lib/jvm/java-17-openjdk-amd64",
    "/etc/java-17-openjdk",
    "/etc/ssl/certs/java",
    "/usr/share/zoneinfo",
];

/// The static mkimage scripts/test built; panics unless it is one (a
/// dynamic one could not start without /usr).
pub fn static_mkimage() -> PathBuf {
    let path = std::env::var_os("MKIMAGE_STATIC").map(PathBuf::from).expect(
        "MKIMAGE_STATIC is not set: run scripts/test, which builds the static mkimage and sets it",
    );
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let elf = goblin::elf::Elf::parse(&bytes).expect("MKIMAGE_STATIC is an ELF file");
    assert!(
        elf.interpreter.is_none() && elf.libraries.is_empty(),
        "{} is dynamically linked: build it with RUSTFLAGS='-C target-feature=+crt-static'",
        path.display()
    );
    path
}

/// The sysroot, made once per run (hard links into this machine's /usr).
fn sysroot() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/hermetic");
        let root = base.join("sysroot");
        if root.join(".complete").exists() {
            return root;
        }
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("usr/bin")).expect("create the sysroot");
        // Debian's merged /usr.
        for (link, target) in [
            ("bin", "usr/bin"),
            ("lib", "usr/lib"),
            ("lib64", "usr/lib64"),
            ("sbin", "usr/sbin"),
        ] {
            std::os::unix::fs::symlink(target, root.join(link)).expect("symlink");
        }
        std::os::unix::fs::symlink("python3.11", root.join("usr/bin/python3")).expect("symlink");
        for path in SYSROOT_PATHS {
            let dst = root.join(&path[1..]);
            std::fs::create_dir_all(dst.parent().expect("a parent")).expect("mkdir");
            check(Command::new("cp").arg("-al").arg(path).arg(&dst));
        }
        std::fs::create_dir_all(root.join("etc")).expect("mkdir etc");
        std::fs::copy("/etc/ld.so.cache", root.join("etc/ld.so.cache")).expect("ld.so.cache");
        std::fs::write(root.join(".complete"), b"").expect("mark the sysroot complete");
        root
    })
}

/// The same build twice: open (the debug mkimage, on this machine) and
/// sealed (the static one under bubblewrap, with `inputs` bound read-only
/// at their own paths, and nothing else but the output directory and
/// TMPDIR); returns both digests after checking they agree.
fn same_image(inputs: &[&Path], args: &[OsString]) -> String {
    require_tool("bwrap");
    let bin = static_mkimage();
    let dir = tempdir();
    let open = dir.path().join("open");
    let sealed = dir.path().join("sealed");
    let tmp = sealed.join("tmp");
    std::fs::create_dir_all(&open).expect("mkdir open");
    std::fs::create_dir_all(&tmp).expect("mkdir sealed/tmp");
    let common = |out: &Path| -> Vec<OsString> {
        let mut a: Vec<OsString> = vec!["--sysroot".into(), sysroot().into()];
        a.extend(args.iter().cloned());
        // Level 1: the JDK's layer takes seconds, not tens of them.
        a.extend(["--compression-level".into(), "1".into()]);
        a.extend(["-t".into(), "hermetic:1".into(), "-o".into()]);
        a.push(out.join("image.oci").into());
        a.push("--digest-file".into());
        a.push(out.join("digest").into());
        a
    };
    let out = run(mkimage()
        .env_remove("SOURCE_DATE_EPOCH")
        .current_dir(&open)
        .args(common(&open)));
    out.assert_success();
    let want = std::fs::read_to_string(open.join("digest")).expect("the open build's digest");

    let mut bwrap = Command::new("bwrap");
    bwrap
        .args(["--unshare-all", "--die-with-parent", "--clearenv"])
        .arg("--setenv")
        .arg("TMPDIR")
        .arg(&tmp)
        .arg("--ro-bind")
        .arg(&bin)
        .arg("/mkimage")
        .arg("--ro-bind")
        .arg(sysroot())
        .arg(sysroot());
    for input in inputs {
        bwrap.arg("--ro-bind").arg(input).arg(input);
    }
    bwrap
        .arg("--bind")
        .arg(&sealed)
        .arg(&sealed)
        .arg("--chdir")
        .arg(&sealed)
        .arg("/mkimage")
        .args(common(&sealed));
    let out = run(&mut bwrap);
    assert!(
        out.status.success(),
        "the sandboxed build failed (a read outside its inputs?): {out}"
    );
    let got = std::fs::read_to_string(sealed.join("digest")).expect("the sandboxed digest");
    assert_eq!(got, want, "sandboxed and open builds differ");
    // The sandbox really was empty: no /usr, no /etc.
    let probe = run(Command::new("bwrap")
        .args(["--unshare-all", "--ro-bind"])
        .arg(&bin)
        .arg("/mkimage")
        .args(["/mkimage", "ldd", "/usr/bin/python3.11"]));
    assert!(!probe.status.success(), "{probe}");
    got
}

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

/// A CA bundle of this machine's, as a declared input file.
fn ca_bundle(dir: &Path) -> PathBuf {
    let path = dir.join("ca.crt");
    std::fs::copy("/etc/ssl/certs/ca-certificates.crt", &path).expect("copy the CA bundle");
    path
}

#[test]
#[ignore = "needs bubblewrap and the static mkimage (scripts/test)"]
fn binary_built_sealed_is_the_open_build() {
    let dir = tempdir();
    let bin = cc(
        dir.path(),
        "hello",
        "#include <stdio.h>\nint main(void) { puts(\"hi\"); return 0; }\n",
        &["-O2"],
    );
    let ca = ca_bundle(dir.path());
    let mut args = vec!["--from-binary".into(), bin.clone().into_os_string()];
    args.extend(os(&["--tzdata", "UTC", "--ca-certs"]));
    args.push(ca.clone().into());
    same_image(&[&bin, &ca], &args);
}

#[test]
#[ignore = "needs bubblewrap and the static mkimage (scripts/test)"]
fn dir_built_sealed_is_the_open_build() {
    let dir = tempdir();
    let app = dir.path().join("app");
    std::fs::create_dir_all(app.join("bin")).unwrap();
    cc(
        &app.join("bin"),
        "server",
        "int main(void) { return 0; }\n",
        &[],
    );
    std::fs::write(app.join("index.html"), "<h1>hi</h1>\n").unwrap();
    // Links leading out of the tree stay links: nothing is read there.
    std::os::unix::fs::symlink("/etc/hostname", app.join("hostname")).unwrap();
    std::os::unix::fs::symlink("../../outside", app.join("up")).unwrap();
    let mut args = vec![
        "--from-dir".into(),
        format!("{}:/app", app.display()).into(),
    ];
    args.extend(os(&["--tzdata", "none", "--ca-certs", "none"]));
    args.extend(os(&["--entrypoint", "/app/bin/server"]));
    same_image(&[&app], &args);
}

#[test]
#[ignore = "needs bubblewrap and the static mkimage (scripts/test)"]
fn venv_built_sealed_is_the_open_build() {
    let dir = tempdir();
    let venv = dir.path().join("venv");
    check(
        Command::new("/usr/bin/python3")
            .args(["-m", "venv", "--without-pip"])
            .arg(&venv),
    );
    let site = venv.join("lib/python3.11/site-packages");
    std::fs::write(site.join("hello.py"), "print('hi')\n").unwrap();
    let mut args = vec!["--from-venv".into(), venv.clone().into_os_string()];
    args.extend(os(&["--tzdata", "none", "--ca-certs", "none"]));
    same_image(&[&venv], &args);
}

#[test]
#[ignore = "needs bubblewrap, a JDK and the static mkimage (scripts/test)"]
fn jar_on_the_sysroot_jre_built_sealed_is_the_open_build() {
    require_tool("javac");
    let dir = tempdir();
    let src = dir.path().join("Main.java");
    std::fs::write(
        &src,
        "public class Main { public static void main(String[] a) { System.out.println(\"hi\"); } }\n",
    )
    .unwrap();
    check(Command::new("javac").arg("-d").arg(dir.path()).arg(&src));
    let jar = dir.path().join("app.jar");
    check(
        Command::new("jar")
            .arg("cfe")
            .arg(&jar)
            .arg("Main")
            .arg("-C")
            .arg(dir.path())
            .arg("Main.class"),
    );
    let mut args = vec!["--from-jar".into(), jar.clone().into_os_string()];
    args.extend(os(&["--java-home", JAVA_HOME]));
    args.extend(os(&["--tzdata", "none", "--ca-certs", "none"]));
    same_image(&[&jar], &args);
}

/// Without a sandbox: what `--sysroot` keeps out is refused by name.
#[test]
fn sysroot_builds_name_the_flag_for_what_they_lack() {
    let dir = tempdir();
    let empty = dir.path().join("root");
    std::fs::create_dir_all(&empty).unwrap();
    let jar = dir.path().join("app.jar");
    std::fs::write(&jar, b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0").unwrap();
    let build = |extra: &[&str]| -> Output {
        run(mkimage()
            .arg("--sysroot")
            .arg(&empty)
            .arg("--from-jar")
            .arg(&jar)
            .args(["--tzdata", "none", "--ca-certs", "none", "-o"])
            .arg(dir.path().join("out.oci"))
            .env("JAVA_HOME", JAVA_HOME)
            .args(extra))
    };
    // JAVA_HOME is this machine's: not taken with a sysroot.
    let out = build(&[]);
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(
        out.stderr.contains("--java-home") && out.stderr.contains("JAVA_HOME"),
        "{out}"
    );
    // --java-home is a path in the sysroot.
    let out = build(&["--java-home", JAVA_HOME]);
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(
        out.stderr.contains(JAVA_HOME) && out.stderr.contains("not a directory in the sysroot"),
        "{out}"
    );
    // --jlink would run a program of the sysroot here.
    let out = build(&["--java-home", JAVA_HOME, "--jlink"]);
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(
        out.stderr.contains("--jlink") && out.stderr.contains("--sysroot"),
        "{out}"
    );
    assert!(!dir.path().join("out.oci").exists());
}

/// Bazel hands an action its inputs as symlinks into its execroot: an
/// `--include` of one is the file, or the image would depend on where
/// the sandbox was.
#[test]
fn include_of_a_symlink_adds_the_file() {
    let dir = tempdir();
    std::fs::write(dir.path().join("real.html"), "<h1>hi</h1>\n").unwrap();
    let link = dir.path().join("index.html");
    std::os::unix::fs::symlink(dir.path().join("real.html"), &link).unwrap();
    let layout = dir.path().join("out.oci");
    crate::util::build(
        &layout,
        "site:1",
        &[
            "--include".into(),
            format!("{}:/srv/index.html", link.display()),
            "--tzdata".into(),
            "none".into(),
            "--ca-certs".into(),
            "none".into(),
        ],
    );
    let files = crate::util::merged(&crate::util::layers(&layout, "site:1"));
    assert_eq!(
        crate::util::file_in(&files, "srv/index.html"),
        b"<h1>hi</h1>\n"
    );
}
