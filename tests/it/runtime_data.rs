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
