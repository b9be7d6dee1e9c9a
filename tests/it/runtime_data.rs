//! What programs open at run time without a DT_NEEDED: glibc's iconv
//! modules (`--gconv`) and compiled locales (`--locale`).

use crate::util::{RunOpts, build, cc, layers, merged, mkimage, run, run_image, tempdir};

const TAG: &str = "runtime-data:1";

/// Converts ISO-8859-1 bytes to UTF-8 with iconv(3) and prints them.
const ICONV_C: &str = r#"#include <iconv.h>
#include <stdio.h>
#include <string.h>
int main(void) {
    iconv_t cd = iconv_open("UTF-8", "ISO-8859-1");
    if (cd == (iconv_t)-1) { perror("iconv_open"); return 1; }
    char in[] = "caf\xe9 \xfc" "ber", out[64];
    char *ip = in, *op = out;
    size_t il = strlen(in), ol = sizeof out;
    if (iconv(cd, &ip, &il, &op, &ol) == (size_t)-1) { perror("iconv"); return 2; }
    fwrite(out, 1, sizeof out - ol, stdout);
    putchar('\n');
    return 0;
}
"#;

const GCONV: &str = "usr/lib/x86_64-linux-gnu/gconv";

fn args(prog: &std::path::Path, extra: &[&str]) -> Vec<String> {
    let mut a = vec![format!("--from-binary={}", prog.display())];
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

#[test]
fn iconv_users_get_the_gconv_modules_they_ask_for() {
    let dir = tempdir();
    let prog = cc(dir.path(), "latin1", ICONV_C, &[]);
    let plain = cc(dir.path(), "plain", "int main(void){return 0;}\n", &[]);
    let has = |layout: &std::path::Path, file: &str| {
        merged(&layers(layout, TAG)).contains_key(&format!("{GCONV}/{file}"))
    };
    // auto: the program imports iconv_open, so every module is there.
    let auto = dir.path().join("auto.oci");
    build(&auto, TAG, &args(&prog, &[]));
    for f in [
        "gconv-modules",
        "gconv-modules.d/gconv-modules-extra.conf",
        "gconv-modules.cache",
        "ISO8859-1.so",
        "EUC-JP.so",
        "libJIS.so",
    ] {
        assert!(has(&auto, f), "--gconv auto: {f} missing");
    }
    // A list: that charset's module only; EUC-JP brings libJIS.so by $ORIGIN.
    let list = dir.path().join("list.oci");
    build(&list, TAG, &args(&prog, &["--gconv", "latin1,UTF-8"]));
    assert!(has(&list, "ISO8859-1.so") && has(&list, "gconv-modules"));
    assert!(!has(&list, "EUC-JP.so") && !has(&list, "libJIS.so"));
    let jp = dir.path().join("jp.oci");
    build(&jp, TAG, &args(&prog, &["--gconv", "EUC-JP"]));
    assert!(has(&jp, "EUC-JP.so") && has(&jp, "libJIS.so"));
    // A program that does not convert gets none; nor does --gconv none.
    let none = dir.path().join("none.oci");
    build(&none, TAG, &args(&plain, &[]));
    assert!(!has(&none, "gconv-modules"));
    let off = dir.path().join("off.oci");
    build(&off, TAG, &args(&prog, &["--gconv", "none"]));
    assert!(!has(&off, "gconv-modules") && !has(&off, "ISO8859-1.so"));
    // An unknown charset is refused, naming it.
    let out = run(mkimage()
        .arg("-o")
        .arg(dir.path().join("bad.oci"))
        .args(args(&prog, &["--gconv", "KLINGON"])));
    assert!(!out.status.success(), "{out}");
    assert!(out.stderr.contains("--gconv KLINGON"), "{out}");
}

#[test]
fn locales_are_added_by_name() {
    let dir = tempdir();
    let prog = cc(dir.path(), "plain", "int main(void){return 0;}\n", &[]);
    let layout = dir.path().join("img.oci");
    build(&layout, TAG, &args(&prog, &["--locale", "C.UTF-8"]));
    let tree = merged(&layers(&layout, TAG));
    assert!(tree.contains_key("usr/lib/locale/C.utf8/LC_CTYPE"));
    let out = run(mkimage()
        .arg("-o")
        .arg(dir.path().join("bad.oci"))
        .args(args(&prog, &["--locale", "xx_YY.UTF-8"])));
    assert!(!out.status.success(), "{out}");
    assert!(
        out.stderr.contains("/usr/lib/locale/xx_YY.utf8") && out.stderr.contains("localedef"),
        "{out}"
    );
}

#[test]
#[ignore = "needs root/runc"]
fn an_iconv_program_converts_latin1_in_the_image() {
    let dir = tempdir();
    let prog = cc(dir.path(), "latin1", ICONV_C, &[]);
    for (gconv, ok) in [("auto", true), ("ISO-8859-1", true), ("none", false)] {
        let layout = dir.path().join(format!("{gconv}.oci"));
        build(&layout, TAG, &args(&prog, &["--gconv", gconv]));
        let out = run_image(&layout, TAG, RunOpts::default());
        if ok {
            out.assert_success();
            assert_eq!(out.stdout.as_bytes(), "café über\n".as_bytes(), "{gconv}");
        } else {
            // Without the module iconv_open fails: the test can tell.
            assert_eq!(out.status.code(), Some(1), "{gconv}: {out}");
            assert!(out.stderr.contains("iconv_open"), "{out}");
        }
    }
}

/// An FDO dlopen note (the spec's ELF note: owner `FDO`, type
/// 0x407c0c0a, a JSON array), as a note section's bytes.
fn dlopen_note(json: &str) -> Vec<u8> {
    let mut desc = json.as_bytes().to_vec();
    desc.push(0);
    desc.resize(desc.len().next_multiple_of(4), 0);
    let mut out = Vec::new();
    out.extend_from_slice(&4u32.to_le_bytes());
    out.extend_from_slice(&(desc.len() as u32).to_le_bytes());
    out.extend_from_slice(&0x407c_0c0au32.to_le_bytes());
    out.extend_from_slice(b"FDO\0");
    out.extend_from_slice(&desc);
    out
}

/// A gcc-built program with `note` added as `.note.dlopen` by objcopy
/// (in no segment, as with systemd's tools on a linked file), its
/// libraries below `$ORIGIN/lib`.
fn noted_program(dir: &std::path::Path, name: &str, json: &str) -> std::path::PathBuf {
    crate::util::require_tool("objcopy");
    let plain = cc(
        dir,
        &format!("{name}-plain"),
        "int main(void){return 0;}\n",
        &["-Wl,-rpath,$ORIGIN/lib"],
    );
    let note = dir.join(format!("{name}.note"));
    std::fs::write(&note, dlopen_note(json)).expect("write the note");
    let prog = dir.join(name);
    crate::util::check(
        std::process::Command::new("objcopy")
            .arg(format!("--add-section=.note.dlopen={}", note.display()))
            .arg("--set-section-flags=.note.dlopen=readonly")
            .arg(&plain)
            .arg(&prog),
    );
    prog
}

#[test]
fn dlopen_notes_add_required_and_recommended_libraries() {
    let dir = tempdir();
    let lib = dir.path().join("lib");
    std::fs::create_dir(&lib).expect("mkdir lib");
    for soname in ["libreq.so.1", "librec.so.2", "libsug.so.3"] {
        let src = dir.path().join("l.c");
        std::fs::write(&src, "int f(void){return 1;}\n").expect("write l.c");
        crate::util::check(
            std::process::Command::new("gcc")
                .args(["-shared", "-fPIC", "-o"])
                .arg(lib.join(soname))
                .arg(&src)
                .arg(format!("-Wl,-soname,{soname}")),
        );
    }
    let json = r#"[{"feature":"req","description":"needed","priority":"required","soname":["libreq.so.1"]},
        {"feature":"rec","soname":["libnope.so.9","librec.so.2"]},
        {"feature":"sug","priority":"suggested","soname":["libsug.so.3"]}]"#;
    let prog = noted_program(dir.path(), "noted", json);

    let out = run(mkimage().args(["ldd", "--json"]).arg(&prog));
    out.assert_success();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("ldd --json");
    let reasons: Vec<(String, String)> = v[0]["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .filter(|o| {
            o["reason"]
                .as_str()
                .is_some_and(|r| r.starts_with("dlopen note"))
        })
        .map(|o| {
            (
                o["name"].as_str().unwrap_or("").into(),
                o["reason"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        [
            (
                "libreq.so.1".to_string(),
                "dlopen note: req, required".to_string()
            ),
            ("librec.so.2".into(), "dlopen note: rec, recommended".into()),
        ],
        "{}",
        out.stdout
    );
    // The first alternative was not found, the second was: no report.
    assert_eq!(v[0]["missing"], serde_json::json!([]), "{}", out.stdout);
    assert_eq!(
        v[0]["suggested"][0]["sonames"],
        serde_json::json!(["libsug.so.3"])
    );
    let text = run(mkimage().arg("ldd").arg(&prog));
    assert!(
        text.stdout
            .contains("libsug.so.3 (suggested by the dlopen note of"),
        "{text}"
    );

    // In an image: required and recommended, beside the program.
    let layout = dir.path().join("img.oci");
    build(&layout, TAG, &args(&prog, &[]));
    let tree = merged(&layers(&layout, TAG));
    assert!(tree.contains_key("usr/local/bin/lib/libreq.so.1"));
    assert!(tree.contains_key("usr/local/bin/lib/librec.so.2"));
    assert!(!tree.contains_key("usr/local/bin/lib/libsug.so.3"));

    // A required library nobody has fails the build, naming it; a
    // recommended one is a note, and a note that is not JSON a warning.
    let missing = noted_program(
        dir.path(),
        "missing",
        r#"[{"priority":"required","soname":["libgone.so.1"]}]"#,
    );
    let out = run(mkimage()
        .arg("-o")
        .arg(dir.path().join("bad.oci"))
        .args(args(&missing, &[])));
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(out.stderr.contains("libgone.so.1"), "{out}");
    let broken = noted_program(dir.path(), "broken", "[{\"soname\": 7}]");
    let out = run(mkimage()
        .arg("-o")
        .arg(dir.path().join("broken.oci"))
        .args(args(&broken, &[])));
    out.assert_success();
    assert!(
        out.stderr.contains("dlopen note is not the spec's JSON"),
        "{out}"
    );
}

/// Opens libfoo.so.1 by soname at run time (no DT_NEEDED, no RPATH).
const DLOPEN_C: &str = r#"#include <dlfcn.h>
#include <stdio.h>
int main(void) {
    void *h = dlopen("libfoo.so.1", RTLD_NOW);
    if (!h) { fprintf(stderr, "dlopen: %s\n", dlerror()); return 1; }
    int (*f)(void) = (int (*)(void))dlsym(h, "foo");
    printf("foo=%d\n", f());
    return 0;
}
"#;

/// A program that dlopens libfoo.so.1, and a tree `lib/` holding it
/// (with its `.so` link, which ldconfig also caches).
fn dlopen_fixture(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let prog = cc(dir, "opener", DLOPEN_C, &["-ldl"]);
    let lib = dir.join("foolib");
    std::fs::create_dir(&lib).expect("mkdir foolib");
    let src = dir.join("foo.c");
    std::fs::write(&src, "int foo(void){return 42;}\n").expect("write foo.c");
    crate::util::check(
        std::process::Command::new("gcc")
            .args(["-shared", "-fPIC", "-Wl,-soname,libfoo.so.1", "-o"])
            .arg(lib.join("libfoo.so.1.0.0"))
            .arg(&src),
    );
    std::os::unix::fs::symlink("libfoo.so.1.0.0", lib.join("libfoo.so.1")).expect("symlink");
    std::os::unix::fs::symlink("libfoo.so.1", lib.join("libfoo.so")).expect("symlink");
    (prog, lib)
}

/// `ldconfig -p -C FILE`'s entries: its first line names the file and
/// the last says which ldconfig wrote it, so both are left out.
fn ldconfig_p(cache: &std::path::Path) -> Vec<String> {
    crate::util::require_tool("ldconfig");
    let out = crate::util::check(
        std::process::Command::new("ldconfig")
            .arg("-p")
            .arg("-C")
            .arg(cache),
    );
    out.stdout
        .lines()
        .skip(1)
        .filter(|l| !l.starts_with("Cache generated by"))
        .map(String::from)
        .collect()
}

#[test]
fn included_library_directories_get_an_ld_so_cache() {
    let dir = tempdir();
    let (prog, lib) = dlopen_fixture(dir.path());
    let include = format!("--include={}:/opt/foo/lib", lib.display());
    let layout = dir.path().join("img.oci");
    build(&layout, TAG, &args(&prog, &[&include]));
    let tree = merged(&layers(&layout, TAG));
    assert_eq!(
        crate::util::file_in(&tree, "etc/ld.so.conf"),
        b"# Written by mkimage: the directories /etc/ld.so.cache covers besides the default ones.\n/opt/foo/lib\n"
    );
    let cache = dir.path().join("ld.so.cache");
    std::fs::write(&cache, crate::util::file_in(&tree, "etc/ld.so.cache")).expect("write cache");
    let lines = ldconfig_p(&cache);
    for want in [
        "\tlibfoo.so.1 (libc6,x86-64) => /opt/foo/lib/libfoo.so.1",
        "\tlibfoo.so (libc6,x86-64) => /opt/foo/lib/libfoo.so",
        "\tlibc.so.6 (libc6,x86-64) => /lib/x86_64-linux-gnu/libc.so.6",
    ] {
        assert!(
            lines.iter().any(|l| l == want),
            "{want:?} not in {lines:#?}"
        );
    }
    // The same build twice: the same bytes.
    let again = dir.path().join("again.oci");
    build(&again, TAG, &args(&prog, &[&include]));
    assert_eq!(
        crate::util::manifest_digest(&layout, TAG),
        crate::util::manifest_digest(&again, TAG)
    );
    // Nothing outside the default directories: no cache, as before.
    let plain = dir.path().join("plain.oci");
    build(&plain, TAG, &args(&prog, &[]));
    assert!(!merged(&layers(&plain, TAG)).contains_key("etc/ld.so.cache"));
}

#[test]
#[ignore = "needs root/runc"]
fn dlopen_by_soname_finds_an_included_library_and_matches_ldconfig() {
    let dir = tempdir();
    let (prog, lib) = dlopen_fixture(dir.path());
    let include = format!("--include={}:/opt/foo/lib", lib.display());
    for (mode, ok) in [("auto", true), ("none", false)] {
        let layout = dir.path().join(format!("{mode}.oci"));
        build(&layout, TAG, &args(&prog, &[&include, "--ld-cache", mode]));
        let bundle = crate::util::Bundle::unpack(&layout, TAG);
        let out = bundle.run(&RunOpts::default());
        if !ok {
            // Without the cache the loader cannot find it: the test can tell.
            assert_eq!(out.status.code(), Some(1), "{out}");
            assert!(out.stderr.contains("libfoo.so.1"), "{out}");
            continue;
        }
        out.assert_success();
        assert_eq!(out.stdout, "foo=42\n");
        // ldconfig's own cache for the same tree lists the same entries.
        let rootfs = bundle.rootfs();
        crate::util::check(
            std::process::Command::new("ldconfig")
                .arg("-r")
                .arg(&rootfs)
                .args(["-X", "-C", "/etc/theirs.cache"]),
        );
        let ours = ldconfig_p(&rootfs.join("etc/ld.so.cache"));
        let theirs = ldconfig_p(&rootfs.join("etc/theirs.cache"));
        assert!(ours.len() > 5, "{ours:#?}");
        assert_eq!(ours, theirs);
    }
}
