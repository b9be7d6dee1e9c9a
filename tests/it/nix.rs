//! examples/nix: the derivation builds an image with the static mkimage
//! inside the Nix sandbox (Debian's nix-bin, single-user as root,
//! `sandbox = true`, no substituters), of a program whose PT_INTERP and
//! DT_RUNPATH are /nix/store paths, and rebuilding it (`--check`) gives
//! the same bytes, so the same store path and image digest.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{Output, cc, check, index_refs, require_tool, run, tempdir};

/// nix-build with this run's configuration: the sandbox on, no binary
/// caches (no network), the builder not run as a nixbld user (single-user
/// as root: Debian creates no such group).
fn nix(cmd: &str, conf: &Path) -> Command {
    let mut c = Command::new(cmd);
    c.env("NIX_CONF_DIR", conf).env_remove("NIX_PATH");
    c
}

fn nix_conf(dir: &Path) -> PathBuf {
    let conf = dir.join("nix-conf");
    std::fs::create_dir_all(&conf).expect("mkdir nix-conf");
    std::fs::write(
        conf.join("nix.conf"),
        "sandbox = true\nsandbox-fallback = false\nbuild-users-group =\nsubstituters =\n",
    )
    .expect("write nix.conf");
    conf
}

#[test]
#[ignore = "needs root, nix-bin, patchelf and the static mkimage (scripts/test)"]
fn derivation_builds_the_same_image_twice_in_the_sandbox() {
    crate::util::require_root();
    for tool in ["nix-build", "nix-store", "patchelf"] {
        require_tool(tool);
    }
    let mkimage = crate::hermetic::static_mkimage();
    let dir = tempdir();
    let conf = nix_conf(dir.path());
    let show = check(nix("nix", &conf).args([
        "--extra-experimental-features",
        "nix-command",
        "show-config",
    ]));
    assert!(
        show.stdout.lines().any(|l| l.trim() == "sandbox = true"),
        "{show}"
    );

    // A "glibc" in the store: this machine's loader and libc, under a
    // /nix/store path, as Nix's own glibc is.
    let libs = dir.path().join("libs");
    std::fs::create_dir_all(&libs).unwrap();
    // libgcc_s.so.1: glibc opens it by itself, from its own directory.
    for lib in ["ld-linux-x86-64.so.2", "libc.so.6", "libgcc_s.so.1"] {
        std::fs::copy(
            Path::new("/usr/lib/x86_64-linux-gnu").join(lib),
            libs.join(lib),
        )
        .unwrap();
    }
    let store_libs = check(nix("nix-store", &conf).arg("--add").arg(&libs))
        .stdout
        .trim()
        .to_owned();
    assert!(store_libs.starts_with("/nix/store/"), "{store_libs}");

    let app = cc(
        dir.path(),
        "app",
        "#include <stdio.h>\nint main(void) { puts(\"hello from nix\"); return 0; }\n",
        &["-O2"],
    );
    check(
        Command::new("patchelf")
            .arg("--set-interpreter")
            .arg(format!("{store_libs}/ld-linux-x86-64.so.2"))
            .arg("--set-rpath")
            .arg(&store_libs)
            .arg("--force-rpath")
            .arg(&app),
    );
    // --force-rpath writes DT_RPATH; make it DT_RUNPATH, what Nix's ld
    // wrapper writes.
    check(
        Command::new("patchelf")
            .arg("--set-rpath")
            .arg(&store_libs)
            .arg(&app),
    );

    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/nix");
    let build = |extra: &[&str]| -> Output {
        run(nix("nix-build", &conf)
            .arg(&example)
            .arg("--arg")
            .arg("mkimage")
            .arg(&mkimage)
            .arg("--arg")
            .arg("app")
            .arg(&app)
            .arg("--argstr")
            .arg("libs")
            .arg(&store_libs)
            .args(["--argstr", "name", "hello", "--no-out-link", "-A", "all"])
            .args(extra))
    };
    let first = build(&[]);
    first.assert_success();
    let out = PathBuf::from(first.stdout.lines().next().expect("the out path").trim());
    let digest_out = PathBuf::from(first.stdout.lines().nth(1).expect("the digest path").trim());
    let digest = std::fs::read_to_string(&digest_out).expect("the digest output");
    assert_eq!(
        index_refs(&out),
        [("hello:latest".to_string(), digest.clone())]
    );
    // The loader and libc came from the store path DT_RUNPATH names.
    let layers = crate::util::merged(&crate::util::layers(&out, "hello:latest"));
    for lib in ["ld-linux-x86-64.so.2", "libc.so.6", "libgcc_s.so.1"] {
        let path = format!("{}/{lib}", &store_libs[1..]);
        assert!(layers.contains_key(&path), "/{path} not in the image");
    }

    // Built again from scratch: Nix fails --check if one byte differs.
    let again = build(&["--check"]);
    again.assert_success();
    assert_eq!(again.stdout, first.stdout, "{again}");
    assert_eq!(std::fs::read_to_string(&digest_out).unwrap(), digest);
}
