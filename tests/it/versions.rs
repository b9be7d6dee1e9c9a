//! The symbol-version check: a program built against Debian 12's glibc
//! (it needs `__libc_start_main@GLIBC_2.34`) packaged with a root whose
//! libc is older fails the build, naming the version, the library and
//! what it defines, before anything is written. The old libc is made by
//! the test: a tiny libc.so.6 with a version script.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{cc, check, mkimage, run, tempdir};

const HELLO: &str = "#include <stdio.h>\nint main(void) { puts(\"hi\"); return 0; }\n";

/// A root with the host's loader, a libc.so.6 that defines only the
/// versions of `script`, and a stand-in libgcc_s.so.1 (glibc's companion,
/// which the build always adds).
fn old_root(dir: &Path, script: &str) -> PathBuf {
    let root = dir.join("root");
    let lib = root.join("lib/x86_64-linux-gnu");
    std::fs::create_dir_all(&lib).expect("mkdir lib");
    std::fs::create_dir_all(root.join("lib64")).expect("mkdir lib64");
    std::fs::copy(
        "/lib64/ld-linux-x86-64.so.2",
        root.join("lib64/ld-linux-x86-64.so.2"),
    )
    .expect("copy the loader");
    let src = dir.join("libc.c");
    std::fs::write(
        &src,
        "int puts(const char *s) { (void)s; return 0; }\nint __libc_start_main(void) { return 0; }\n",
    )
    .expect("write libc.c");
    let map = dir.join("libc.map");
    std::fs::write(&map, script).expect("write the version script");
    crate::util::require_tool("gcc");
    check(
        Command::new("gcc")
            .args(["-shared", "-nostdlib", "-fPIC", "-Wl,-soname,libc.so.6"])
            .arg(format!("-Wl,--version-script={}", map.display()))
            .arg("-o")
            .arg(lib.join("libc.so.6"))
            .arg(&src),
    );
    check(
        Command::new("gcc")
            .args(["-shared", "-nostdlib", "-fPIC", "-Wl,-soname,libgcc_s.so.1"])
            .arg("-o")
            .arg(lib.join("libgcc_s.so.1"))
            .arg(&src),
    );
    root
}

fn build_with(root: &Path, prog: &Path, out: &Path) -> crate::util::Output {
    run(mkimage()
        .arg("-o")
        .arg(out)
        .args(["--ca-certs", "none", "--tzdata", "none", "--sysroot"])
        .arg(root)
        .arg("--from-binary")
        .arg(prog))
}

#[test]
fn too_old_libc_fails_naming_the_version() {
    let dir = tempdir();
    let prog = cc(dir.path(), "hello", HELLO, &[]);
    let root = old_root(dir.path(), "GLIBC_2.2.5 { global: *; };\n");
    let out = dir.path().join("out.oci");
    let o = build_with(&root, &prog, &out);
    assert!(!o.status.success(), "built against a too-old libc: {o}");
    let want = format!(
        "version GLIBC_2.34 of libc.so.6 not found (needed by /usr/local/bin/hello): \
         /lib/x86_64-linux-gnu/libc.so.6 ({}) defines only GLIBC_2.2.5",
        root.join("lib/x86_64-linux-gnu/libc.so.6").display()
    );
    assert!(o.stderr.contains(&want), "want {want:?} in {o}");
    assert!(o.stderr.contains("built against newer libraries"), "{o}");
    assert!(!out.exists(), "a failed build wrote {}", out.display());
}

#[test]
fn libc_with_the_version_passes() {
    let dir = tempdir();
    let prog = cc(dir.path(), "hello", HELLO, &[]);
    let root = old_root(
        dir.path(),
        "GLIBC_2.2.5 { global: puts; };\nGLIBC_2.34 { global: __libc_start_main; } GLIBC_2.2.5;\n",
    );
    let out = dir.path().join("out.oci");
    build_with(&root, &prog, &out).assert_success();
}
