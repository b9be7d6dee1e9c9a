//! `--compression zstd`: layers made of zstd frames (`tar+zstd`), holding
//! the very tars gzip's layers hold, read and run by podman, and turned
//! into a docker-archive podman loads. (Debian's oci-image-tool 1.0.0-rc1
//! predates zstd layers and refuses their media type, so skopeo checks
//! the layout instead.)

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::util::{
    Output, Podman, check, config, layers, manifest, manifest_digest, mkimage, podman_run,
    read_json, require_tool, run, tempdir,
};

const TAG: &str = "curl:1";
const ZSTD_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// curl with its 20-odd libraries and the CA certificates: several layers,
/// the libraries' one of many chunks.
fn build(out: &Path, flags: &[&str]) -> Output {
    check(
        mkimage()
            .env_remove("SOURCE_DATE_EPOCH")
            .args(["--from-binary", "/usr/bin/curl", "--tzdata", "none"])
            .args(["-t", TAG, "-q", "-o"])
            .arg(out)
            .args(flags),
    )
}

#[test]
fn zstd_layers_hold_the_same_tars_as_gzip() {
    let dir = tempdir();
    let (gz, zst) = (dir.path().join("gzip.oci"), dir.path().join("zstd.oci"));
    build(&gz, &[]);
    build(&zst, &["--compression", "zstd"]);

    let m = manifest(&zst, TAG);
    let types: Vec<&str> = m["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["mediaType"].as_str().expect("mediaType"))
        .collect();
    assert!(
        types.len() >= 3 && types.iter().all(|t| *t == ZSTD_LAYER),
        "{types:?}"
    );
    // Same tars: the same diff_ids, and the same entries read back.
    assert_eq!(
        config(&zst, TAG)["rootfs"],
        config(&gz, TAG)["rootfs"],
        "diff_ids"
    );
    assert!(
        layers(&zst, TAG) == layers(&gz, TAG),
        "layer contents differ"
    );

    // Reproducible, and a level is part of the digest.
    let again = dir.path().join("again.oci");
    build(&again, &["--compression", "zstd"]);
    assert_eq!(manifest_digest(&again, TAG), manifest_digest(&zst, TAG));
    let level9 = dir.path().join("level9.oci");
    build(
        &level9,
        &["--compression", "zstd", "--compression-level", "9"],
    );
    assert_ne!(manifest_digest(&level9, TAG), manifest_digest(&zst, TAG));

    // inspect reads zstd layers too.
    let out = check(mkimage().arg("inspect").arg(&zst).arg("--json"));
    let v: Value = serde_json::from_str(&out.stdout).expect("inspect JSON");
    let files = v["files"].as_array().expect("files");
    let curl = files.iter().find(|f| f["path"] == "/usr/local/bin/curl");
    assert_eq!(
        curl.map(|f| &f["size"]),
        Some(&Value::from(
            std::fs::metadata("/usr/bin/curl").expect("curl").len()
        )),
        "{} files listed",
        files.len()
    );
}

#[test]
fn levels_outside_the_algorithms_range_are_refused() {
    let dir = tempdir();
    for (args, message) in [
        (
            ["--compression", "zstd", "--compression-level", "20"],
            "zstd has levels 1 to 19, not 20",
        ),
        (
            ["--compression", "gzip", "--compression-level", "13"],
            "gzip has levels 1 to 12, not 13",
        ),
    ] {
        let out_dir = dir.path().join("out.oci");
        let out = run(mkimage()
            .args(["--from-binary", "/usr/bin/curl", "-o"])
            .arg(&out_dir)
            .args(args));
        assert!(!out.status.success(), "{out}");
        assert!(out.stderr.contains(message), "{out}");
        assert!(!out_dir.exists(), "{out}");
    }
}

#[test]
#[ignore = "needs root/runc, podman, skopeo"]
fn podman_runs_zstd_images_from_a_layout_and_a_docker_archive() {
    let dir = tempdir();
    let layout = dir.path().join("zstd.oci");
    build(&layout, &["--compression", "zstd"]);
    // skopeo reads every blob, checking its digest and size, and copies
    // the layers as they are.
    require_tool("skopeo");
    let copy = dir.path().join("copy");
    check(
        Command::new("skopeo")
            .args(["copy", "--quiet"])
            .arg(format!("oci:{}:{TAG}", layout.display()))
            .arg(format!("dir:{}", copy.display())),
    );
    assert_eq!(
        manifest(&layout, TAG),
        read_json(&copy.join("manifest.json")),
        "skopeo changed the manifest"
    );
    let out = podman_run(&layout, TAG, &["--version"]);
    out.assert_success();
    assert!(out.stdout.starts_with("curl "), "{out}");

    // A docker-archive holds uncompressed tars, whatever the layers were.
    let archive = dir.path().join("curl.tar");
    build(
        &archive,
        &["--compression", "zstd", "--format", "docker-archive"],
    );
    let podman = Podman::new();
    let names = podman.load(&archive);
    assert_eq!(names.len(), 1, "{names:?}");
    let out = podman.run(&names[0], &[], &["--version"]);
    out.assert_success();
    assert!(out.stdout.starts_with("curl "), "{out}");
}
