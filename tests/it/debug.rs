//! `--debug`: the `<tag>-debug` image shares every production layer by
//! digest, adds one with busybox at /busybox, and gives a shell that can
//! reach both busybox's applets and the image's own programs.

use crate::util::{
    Kind, RunOpts, build, config, layer_digests, layers, mkimage, run, run_image, tempdir,
};

#[test]
fn debug_image_shares_the_layers_and_adds_busybox() {
    crate::util::require_tool("busybox");
    let dir = tempdir();
    let layout = dir.path().join("curl.oci");
    let out = build(
        &layout,
        "curl:8",
        &[
            "--from-binary",
            "/usr/bin/curl",
            "--debug",
            "--cmd=--version",
        ]
        .map(String::from),
    );
    assert!(out.stdout.contains("debug   curl:8-debug sha256:"), "{out}");
    let prod = layer_digests(&layout, "curl:8");
    let debug = layer_digests(&layout, "curl:8-debug");
    assert_eq!(debug.len(), prod.len() + 1, "{debug:?}");
    assert_eq!(
        debug[..prod.len()],
        prod[..],
        "production layers shared by digest"
    );

    let top = layers(&layout, "curl:8-debug")
        .pop()
        .expect("the debug layer");
    assert!(matches!(top["busybox/busybox"].kind, Kind::File(_)));
    assert_eq!(top["busybox/busybox"].mode & 0o777, 0o755);
    for applet in ["sh", "ls", "wget"] {
        assert_eq!(
            top[&format!("busybox/{applet}")].kind,
            Kind::Symlink("busybox".into()),
            "{applet}"
        );
    }
    let cfg = config(&layout, "curl:8-debug");
    assert_eq!(
        cfg["config"]["Entrypoint"],
        serde_json::json!(["/busybox/sh"])
    );
    assert!(cfg["config"]["Cmd"].is_null(), "{cfg}");
    let path = cfg["config"]["Env"]
        .as_array()
        .and_then(|e| e.iter().find_map(|v| v.as_str()?.strip_prefix("PATH=")))
        .expect("PATH");
    assert!(path.ends_with(":/busybox"), "{path}");
    // The production image is untouched by --debug.
    let prod_cfg = config(&layout, "curl:8");
    assert!(
        prod_cfg["config"]["Entrypoint"][0] == "/usr/local/bin/curl",
        "{prod_cfg}"
    );
}

#[test]
#[ignore = "needs root/runc"]
fn debug_shell_runs_under_runc() {
    crate::util::require_tool("busybox");
    let dir = tempdir();
    let layout = dir.path().join("curl.oci");
    build(
        &layout,
        "curl:8",
        &["--from-binary", "/usr/bin/curl", "--debug"].map(String::from),
    );
    let out = run_image(
        &layout,
        "curl:8-debug",
        RunOpts::args(&[
            "/busybox/sh",
            "-c",
            "id -u && ls /busybox/wget && curl --version | head -n 1",
        ]),
    );
    out.assert_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[0], "65532", "runs as the image's user: {out}");
    assert_eq!(lines[1], "/busybox/wget", "{out}");
    assert!(lines[2].starts_with("curl "), "{out}");
}

#[test]
fn debug_refuses_what_it_cannot_do() {
    let dir = tempdir();
    // A docker-archive holds one image.
    let tar = dir.path().join("x.tar");
    let o = run(mkimage()
        .args([
            "--from-binary",
            "/usr/bin/curl",
            "--debug",
            "--format",
            "docker-archive",
            "-o",
        ])
        .arg(&tar));
    assert!(
        !o.status.success() && o.stderr.contains("--debug writes two images"),
        "{o}"
    );
    assert!(!tar.exists());
    // A root without busybox: named, with the package to install, and
    // nothing written.
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).expect("mkdir root");
    let out = dir.path().join("x.oci");
    let o = run(mkimage()
        .args([
            "--from-dir",
            "/etc/apt:/etc/apt",
            "--ca-certs",
            "none",
            "--tzdata",
            "none",
            "--debug",
            "--sysroot",
        ])
        .arg(&root)
        .arg("-o")
        .arg(&out));
    assert!(!o.status.success(), "{o}");
    assert!(
        o.stderr
            .contains("bin/busybox, which does not exist: apt-get install busybox-static"),
        "{o}"
    );
    assert!(!out.exists());
}
