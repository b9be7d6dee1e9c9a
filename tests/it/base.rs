//! `--base REF`: a build that starts from another image. Its layers are
//! reused by digest, the libraries it has are used from it (not copied),
//! its config is the starting point, and bad bases stop the build before
//! anything is written. Bases come from an OCI layout, an oci-archive, a
//! docker-archive and a registry (Debian's docker-registry).

use std::path::{Path, PathBuf};

use crate::registry::Registry;
use crate::util::{
    RunOpts, build, config, layer_digests, layers, mkimage, run, run_image, tempdir,
};

const BASE: &str = "base:1";

/// A base like a company's runtime image: busybox-static (as /bin/sh and
/// /bin/busybox) and a dynamically linked ls, so it holds glibc.
fn base_args(extra: &[&str]) -> Vec<String> {
    crate::util::require_tool("busybox");
    [
        "--from-binary",
        "/bin/ls",
        "--include",
        "/bin/busybox:/bin/busybox",
        "--include",
        "/bin/busybox:/bin/sh",
        "--label",
        "org.example.base=yes",
        "--env",
        "FROM_BASE=1",
    ]
    .iter()
    .chain(extra)
    .map(|s| s.to_string())
    .collect()
}

fn base_layout(dir: &Path) -> PathBuf {
    let layout = dir.join("base.oci");
    build(&layout, BASE, &base_args(&[]));
    layout
}

fn curl_on(base: &str, out: &Path) -> crate::util::Output {
    build(
        out,
        "app:1",
        &["--base", base, "--from-binary", "/usr/bin/curl"].map(String::from),
    )
}

/// Paths of the image's own layers (those after the base's).
fn own_paths(layout: &Path, tag: &str, skip: usize) -> Vec<String> {
    layers(layout, tag)
        .into_iter()
        .skip(skip)
        .flat_map(|l| l.into_keys())
        .collect()
}

#[test]
fn base_layers_config_and_libraries_are_reused() {
    let dir = tempdir();
    let base = base_layout(dir.path());
    let base_layers = layer_digests(&base, BASE);
    let app = dir.path().join("app.oci");
    let out = curl_on(&format!("{}:{BASE}", base.display()), &app);
    assert!(
        out.stdout.contains("libc.so.6 comes from the base image"),
        "{out}"
    );

    let layers_now = layer_digests(&app, "app:1");
    assert_eq!(
        layers_now[..base_layers.len()],
        base_layers[..],
        "base layers by digest"
    );
    assert!(layers_now.len() > base_layers.len());
    // The base's glibc is used, not copied; curl's own libraries are.
    let own = own_paths(&app, "app:1", base_layers.len());
    assert!(!own.iter().any(|p| p.ends_with("/libc.so.6")), "{own:?}");
    assert!(own.iter().any(|p| p.contains("libcurl.so.4")), "{own:?}");
    // The base's config is the starting point; the build's program is
    // the entrypoint.
    let cfg = config(&app, "app:1");
    let env: Vec<&str> = cfg["config"]["Env"]
        .as_array()
        .expect("Env")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(env.contains(&"FROM_BASE=1"), "{env:?}");
    assert_eq!(cfg["config"]["Labels"]["org.example.base"], "yes");
    assert_eq!(cfg["config"]["Entrypoint"][0], "/usr/local/bin/curl");
    assert_eq!(
        cfg["rootfs"]["diff_ids"].as_array().map(Vec::len),
        Some(layers_now.len())
    );
}

#[test]
fn archives_are_bases_too() {
    let dir = tempdir();
    let base = base_layout(dir.path());
    let want = layer_digests(&base, BASE);
    for format in ["oci-archive", "docker-archive"] {
        let tar = dir.path().join(format!("{format}.tar"));
        build(&tar, BASE, &base_args(&["--format", format]));
        let app = dir.path().join(format!("app-{format}.oci"));
        curl_on(&format!("{format}:{}", tar.display()), &app);
        let got = layer_digests(&app, "app:1");
        if format == "oci-archive" {
            assert_eq!(got[..want.len()], want[..], "{format}");
        } else {
            assert!(got.len() > want.len(), "{format}: {got:?}");
        }
        let own = own_paths(&app, "app:1", want.len());
        assert!(
            !own.iter().any(|p| p.ends_with("/libc.so.6")),
            "{format}: {own:?}"
        );
    }
}

#[test]
#[ignore = "needs root/runc"]
fn busybox_and_curl_run_on_the_base() {
    let dir = tempdir();
    let base = base_layout(dir.path());
    let app = dir.path().join("app.oci");
    curl_on(&format!("{}:{BASE}", base.display()), &app);
    let out = run_image(
        &app,
        "app:1",
        RunOpts::args(&[
            "/bin/sh",
            "-c",
            "busybox echo from-busybox && ls / >/dev/null && curl --version | busybox head -n 1",
        ]),
    );
    out.assert_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.first(), Some(&"from-busybox"), "{out}");
    assert!(
        lines.get(1).is_some_and(|l| l.starts_with("curl ")),
        "{out}"
    );
}

#[test]
fn bad_bases_write_nothing() {
    let dir = tempdir();
    let base = base_layout(dir.path());
    let out = dir.path().join("out.oci");
    let try_base = |args: &[&str]| {
        run(mkimage()
            .args(["--from-binary", "/usr/bin/curl", "-o"])
            .arg(&out)
            .args(args))
    };
    let base_ref = format!("{}:{BASE}", base.display());
    let no_tag = format!("{}:nosuchtag", base.display());
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["--base", "/nonexistent/base.oci"],
            "--base /nonexistent/base.oci:".into(),
        ),
        (
            vec!["--base", &base_ref, "--platform", "linux/arm64"],
            "has no image for platform linux/arm64/v8; it has: linux/amd64".into(),
        ),
        (vec!["--base", &no_tag], "nosuchtag".into()),
    ];
    for (args, want) in &cases {
        let o = try_base(args);
        assert!(!o.status.success(), "{args:?}: {o}");
        assert!(
            o.stderr.contains(want.as_str()),
            "{args:?}: want {want:?} in {o}"
        );
        assert!(!out.exists(), "{args:?} wrote the output");
    }
    // A layer whose bytes do not match its digest.
    let digest = layer_digests(&base, BASE).pop().expect("a layer");
    let blob = base
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    let mut bytes = std::fs::read(&blob).expect("read blob");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&blob, bytes).expect("tamper");
    let o = try_base(&["--base", &base_ref]);
    assert!(!o.status.success(), "{o}");
    assert!(
        o.stderr.contains("--base") && o.stderr.contains(&digest[7..19]),
        "{o}"
    );
    assert!(!out.exists(), "a tampered base wrote the output");
}

/// From a registry: the base's layers are in the new manifest unchanged,
/// and pushing the new image to the same registry uploads none of them
/// (they are mounted from the base's repository).
#[test]
#[ignore = "needs docker-registry"]
fn registry_base_is_mounted_not_uploaded() {
    let registry = Registry::http();
    let host = registry.host();
    let dir = tempdir();
    let base = base_layout(dir.path());
    let base_layers = layer_digests(&base, BASE);
    let pushed = crate::registry::push(
        dir.path(),
        &[
            &format!("{}:{BASE}", base.display()),
            &format!("{host}/base:1"),
            "--insecure-registry",
            &host,
        ],
    );
    pushed.assert_success();
    let app = dir.path().join("app.oci");
    let out = run(mkimage()
        .env_remove("SOURCE_DATE_EPOCH")
        .env("HOME", dir.path())
        .arg("-o")
        .arg(&app)
        .args(["-t", "app:1", "--from-binary", "/usr/bin/curl"])
        .args(["--base", &format!("docker://{host}/base:1")])
        .args([
            "--push",
            &format!("{host}/app:1"),
            "--insecure-registry",
            &host,
        ]));
    out.assert_success();
    assert_eq!(
        layer_digests(&app, "app:1")[..base_layers.len()],
        base_layers[..]
    );
    for d in &base_layers {
        let uploads = registry
            .log_lines()
            .into_iter()
            .filter(|l| l.contains("PUT /v2/app/blobs/uploads/") && l.contains(d.as_str()))
            .count();
        assert_eq!(uploads, 0, "base layer {d} was uploaded again");
    }
    assert!(registry.requests("POST /v2/app/blobs/uploads/?mount=") >= base_layers.len());
}

/// The symbol-version check against the base's own libc: a base whose
/// libc.so.6 defines only GLIBC_2.2.5 (made by the test) cannot run a
/// program built on Debian 12, and the build says so, writing nothing.
#[test]
fn too_old_base_libc_fails_the_build() {
    let dir = tempdir();
    let src = dir.path().join("libc.c");
    std::fs::write(&src, "int puts(const char *s) { (void)s; return 0; }\n").expect("write");
    let map = dir.path().join("libc.map");
    std::fs::write(&map, "GLIBC_2.2.5 { global: *; };\n").expect("write");
    let libc = dir.path().join("libc.so.6");
    crate::util::check(
        std::process::Command::new("gcc")
            .args(["-shared", "-nostdlib", "-fPIC", "-Wl,-soname,libc.so.6"])
            .arg(format!("-Wl,--version-script={}", map.display()))
            .arg("-o")
            .arg(&libc)
            .arg(&src),
    );
    let base = dir.path().join("old.oci");
    build(
        &base,
        "old:1",
        &[
            "--include".to_string(),
            format!("{}:/lib/x86_64-linux-gnu/libc.so.6", libc.display()),
        ],
    );
    let prog = crate::util::cc(
        dir.path(),
        "hello",
        "#include <stdio.h>\nint main(void) { puts(\"hi\"); return 0; }\n",
        &[],
    );
    let out = dir.path().join("out.oci");
    let o = run(mkimage()
        .arg("--base")
        .arg(format!("{}:old:1", base.display()))
        .arg("--from-binary")
        .arg(&prog)
        .arg("-o")
        .arg(&out));
    assert!(!o.status.success(), "{o}");
    assert!(
        o.stderr.contains(
            "version GLIBC_2.34 of libc.so.6 not found (needed by /usr/local/bin/hello): \
             /lib/x86_64-linux-gnu/libc.so.6 (the --base image) defines only GLIBC_2.2.5"
        ),
        "{o}"
    );
    assert!(!out.exists());
}

/// A busybox image whose /bin/wget is a link to busybox, as busybox
/// images have their applets.
fn busybox_image(dir: &Path) -> PathBuf {
    crate::util::require_tool("busybox");
    let tree = dir.join("bbtree");
    std::fs::create_dir_all(&tree).expect("mkdir");
    std::fs::copy("/bin/busybox", tree.join("busybox")).expect("copy busybox");
    std::os::unix::fs::symlink("busybox", tree.join("wget")).expect("link wget");
    let layout = dir.join("bb.oci");
    build(
        &layout,
        "bb:1",
        &[
            "--from-dir".to_string(),
            format!("{}:/bin", tree.display()),
            "--entrypoint".into(),
            "/bin/busybox".into(),
        ],
    );
    layout
}

#[test]
fn copy_from_follows_links_and_keeps_trees() {
    let dir = tempdir();
    let bb = busybox_image(dir.path());
    let app = dir.path().join("app.oci");
    build(
        &app,
        "wget:1",
        &[
            "--copy-from".to_string(),
            format!("{}:bb:1:/bin/wget:/usr/local/bin/wget", bb.display()),
            "--copy-from".into(),
            format!("{}:bb:1:/bin:/opt/bb", bb.display()),
            "--entrypoint".into(),
            "/usr/local/bin/wget".into(),
        ],
    );
    let merged = crate::util::merged(&layers(&app, "wget:1"));
    let busybox = std::fs::read("/bin/busybox").expect("read busybox");
    // SRC, a link in that image, is copied as the file it leads to.
    assert_eq!(crate::util::file_in(&merged, "usr/local/bin/wget"), busybox);
    assert_eq!(merged["usr/local/bin/wget"].mode & 0o777, 0o755);
    // A tree keeps its links.
    assert_eq!(
        merged["opt/bb/wget"].kind,
        crate::util::Kind::Symlink("busybox".into())
    );
    assert_eq!(crate::util::file_in(&merged, "opt/bb/busybox"), busybox);

    let out = dir.path().join("x.oci");
    let o = run(mkimage()
        .arg("--copy-from")
        .arg(format!("{}:bb:1:/bin/nothere", bb.display()))
        .arg("-o")
        .arg(&out));
    assert!(!o.status.success(), "{o}");
    assert!(
        o.stderr
            .contains("/bin/nothere: no such file or directory in the image"),
        "{o}"
    );
    assert!(!out.exists());
}

#[test]
#[ignore = "needs root/runc"]
fn copied_wget_runs() {
    let dir = tempdir();
    let bb = busybox_image(dir.path());
    let app = dir.path().join("app.oci");
    build(
        &app,
        "wget:1",
        &[
            "--copy-from".to_string(),
            format!("{}:bb:1:/bin/wget:/usr/local/bin/wget", bb.display()),
            "--entrypoint".into(),
            "/usr/local/bin/wget".into(),
        ],
    );
    // Nothing listens on port 1: busybox's wget applet says so.
    let out = run_image(
        &app,
        "wget:1",
        RunOpts::args(&[
            "/usr/local/bin/wget",
            "-O",
            "/dev/null",
            "http://127.0.0.1:1/",
        ]),
    );
    assert!(!out.status.success(), "{out}");
    assert!(
        out.stderr.contains("wget: can't connect to remote host"),
        "{out}"
    );
}

/// A base with `/lib -> usr/lib` (merged /usr): what the build writes
/// below /lib goes to /usr/lib, and the base's link stays, as it would
/// have to for the base's own programs to keep working.
#[test]
fn paths_below_a_base_symlink_go_to_its_target() {
    let dir = tempdir();
    let tree = dir.path().join("t");
    std::fs::create_dir_all(tree.join("usr/lib")).expect("mkdir");
    std::os::unix::fs::symlink("usr/lib", tree.join("lib")).expect("link");
    let base = dir.path().join("b.oci");
    build(
        &base,
        "b:1",
        &[
            "--include".to_string(),
            format!("{}:/lib", tree.join("lib").display()),
        ],
    );
    let app = dir.path().join("a.oci");
    let note = dir.path().join("note.txt");
    std::fs::write(&note, "hi\n").expect("write");
    build(
        &app,
        "a:1",
        &[
            "--base".to_string(),
            format!("{}:b:1", base.display()),
            "--include".into(),
            format!("{}:/lib/custom/note.txt", note.display()),
        ],
    );
    let merged = crate::util::merged(&layers(&app, "a:1"));
    assert_eq!(
        merged["lib"].kind,
        crate::util::Kind::Symlink("usr/lib".into())
    );
    assert_eq!(
        crate::util::file_in(&merged, "usr/lib/custom/note.txt"),
        b"hi\n"
    );
}

/// `mkimage ldd --base REF` says which side each library comes from.
#[test]
fn ldd_shows_the_side_of_each_library() {
    let dir = tempdir();
    let base = base_layout(dir.path());
    let out = crate::util::check(
        mkimage()
            .args(["ldd", "--base"])
            .arg(format!("{}:{BASE}", base.display()))
            .arg("/usr/bin/curl"),
    );
    let line = |name: &str| {
        out.stdout
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("{name}: {out}"))
            .to_owned()
    };
    assert!(line("libc.so.6 =>").ends_with("[base]"), "{out}");
    assert!(line("libcurl.so.4 =>").ends_with("[root]"), "{out}");
}
