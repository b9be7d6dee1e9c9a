//! `--format oci-archive|docker-archive`: archives built by the real CLI,
//! read by skopeo, loaded and run by podman, byte-identical across builds,
//! and refused early when they cannot be written.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::{Output, Podman, cc, check, mkimage, require_tool, run, tempdir};

/// A static program: `hello [ARGS]` prints "hello ARGS".
const HELLO_C: &str = r#"
#include <stdio.h>
int main(int argc, char **argv) {
    printf("hello");
    for (int i = 1; i < argc; i++) printf(" %s", argv[i]);
    printf("\n");
    return 0;
}
"#;

const TAG: &str = "hello:1";

/// `mkimage --from-binary BIN --format FORMAT -o OUT -t TAG` with no time
/// zones or certificates to keep it small; panics unless it succeeds.
fn build(bin: &Path, format: &str, out: &Path, tag: &str) -> Output {
    check(
        mkimage()
            .env_remove("SOURCE_DATE_EPOCH")
            .arg("--from-binary")
            .arg(bin)
            .args(["--format", format, "-t", tag, "--tzdata", "none"])
            .args(["--ca-certs", "none"])
            .arg("-o")
            .arg(out),
    )
}

fn hello(dir: &Path) -> PathBuf {
    cc(dir, "hello", HELLO_C, &["-static", "-O2"])
}

/// `skopeo inspect [--config] TRANSPORT:REF` as JSON.
fn skopeo(args: &[&str], reference: &str) -> Value {
    require_tool("skopeo");
    let out = check(Command::new("skopeo").args(args).arg(reference));
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("skopeo JSON ({e}): {out}"))
}

/// The `digest  sha256:...` line of the build summary.
fn printed_digest(out: &Output) -> String {
    out.stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("digest"))
        .map(|d| d.trim().to_owned())
        .unwrap_or_else(|| panic!("no digest line in {out}"))
}

fn no_temp_files(dir: &Path) {
    for e in std::fs::read_dir(dir).expect("read_dir") {
        let name = e.expect("entry").file_name();
        assert!(
            !name.to_string_lossy().starts_with(".mkimage-tmp-"),
            "{name:?} left in {}",
            dir.display()
        );
    }
}

#[test]
#[ignore = "needs skopeo/podman"]
fn skopeo_reads_the_oci_archive() {
    let dir = tempdir();
    let bin = hello(dir.path());
    let archive = dir.path().join("hello-oci.tar");
    let out = build(&bin, "oci-archive", &archive, TAG);
    let digest = printed_digest(&out);
    no_temp_files(dir.path());

    // One image in the archive: no tag needed; or named by its ref.name.
    for reference in [
        format!("oci-archive:{}", archive.display()),
        format!("oci-archive:{}:{TAG}", archive.display()),
    ] {
        let info = skopeo(&["inspect"], &reference);
        assert_eq!(info["Digest"], digest, "{reference}");
        assert_eq!(info["Architecture"], "amd64");
        assert_eq!(info["Os"], "linux");
        // A static binary: base files and the app, no libraries.
        assert_eq!(info["Layers"].as_array().map(Vec::len), Some(2), "{info}");
    }
    let config = skopeo(
        &["inspect", "--config"],
        &format!("oci-archive:{}", archive.display()),
    );
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/usr/local/bin/hello"])
    );
    // The SBOM and provenance are referrers named by the index.json entry,
    // which skopeo ignores (it saw one image above); mkimage reads them.
    let raw = skopeo(
        &["inspect", "--raw"],
        &format!("oci-archive:{}", archive.display()),
    );
    assert!(
        raw["annotations"]["org.mkimage.provenance"].is_null(),
        "{raw}"
    );
    let sbom = crate::util::check(
        crate::util::mkimage()
            .args(["inspect", "--sbom"])
            .arg(&archive),
    );
    let sbom: serde_json::Value = serde_json::from_str(&sbom.stdout).expect("SBOM is JSON");
    assert_eq!(sbom["spdxVersion"], "SPDX-2.3");
}

#[test]
#[ignore = "needs skopeo/podman"]
fn skopeo_reads_the_docker_archive() {
    let dir = tempdir();
    let bin = hello(dir.path());
    let archive = dir.path().join("hello-docker.tar");
    build(&bin, "docker-archive", &archive, TAG);
    no_temp_files(dir.path());

    let layout = dir.path().join("hello.oci");
    build(&bin, "oci", &layout, TAG);
    let oci_config = skopeo(
        &["inspect", "--config"],
        &format!("oci:{}:{TAG}", layout.display()),
    );

    for reference in [
        format!("docker-archive:{}", archive.display()),
        format!("docker-archive:{}:{TAG}", archive.display()),
    ] {
        let info = skopeo(&["inspect"], &reference);
        // Uncompressed layers: each is named by its diff_id.
        assert_eq!(
            info["Layers"], oci_config["rootfs"]["diff_ids"],
            "{reference}: {info}"
        );
        assert_eq!(info["Architecture"], "amd64");
        // The same config blob, byte for byte, as the layout's.
        let config = skopeo(&["inspect", "--config"], &reference);
        assert_eq!(config, oci_config, "{reference}");
    }
}

#[test]
#[ignore = "needs root/runc"]
fn podman_loads_and_runs_both_archives() {
    let dir = tempdir();
    let bin = hello(dir.path());
    for format in ["docker-archive", "oci-archive"] {
        let archive = dir.path().join(format!("{format}.tar"));
        build(&bin, format, &archive, TAG);
        let podman = Podman::new();
        let names = podman.load(&archive);
        assert_eq!(names.len(), 1, "{format}: loaded {names:?}");
        assert!(
            names[0].ends_with(TAG),
            "{format}: loaded as {names:?}, expected a name ending in {TAG}"
        );
        let out = podman.run(&names[0], &[], &["from", format]);
        out.assert_success();
        assert_eq!(out.stdout, format!("hello from {format}\n"), "{out}");
    }
}

#[test]
fn archives_are_byte_identical_across_builds() {
    // curl: a library layer of many compression chunks, which is where
    // nondeterministic parallel gzip would show.
    let dir = tempdir();
    for format in ["oci-archive", "docker-archive"] {
        let a = dir.path().join(format!("a-{format}.tar"));
        let b = dir.path().join(format!("b-{format}.tar"));
        // Cold both times: the layer cache would hand the second the
        // first's blobs.
        for out in [&a, &b] {
            check(
                mkimage()
                    .env_remove("SOURCE_DATE_EPOCH")
                    .arg("--no-cache")
                    .arg("--from-binary=/usr/bin/curl")
                    .args(["--format", format, "-t", "curl:latest", "--tzdata", "none"])
                    .args(["--ca-certs", "none", "-o"])
                    .arg(out),
            );
        }
        let (a, b) = (
            std::fs::read(&a).expect("read a"),
            std::fs::read(&b).expect("read b"),
        );
        assert!(a == b, "{format}: two builds differ");
    }
    no_temp_files(dir.path());
}

#[test]
fn the_archive_goes_to_name_tar_by_default_and_replaces_a_file() {
    let dir = tempdir();
    let bin = hello(dir.path());
    let out = check(
        mkimage()
            .current_dir(dir.path())
            .arg("--from-binary")
            .arg(&bin)
            .args(["--format", "docker-archive", "--tzdata", "none"]),
    );
    let archive = dir.path().join("hello.tar");
    assert!(archive.is_file(), "{out}");
    assert!(out.stdout.contains("docker-archive"), "{out}");
    assert!(out.stdout.contains("docker load -i hello.tar"), "{out}");
    let first = std::fs::read(&archive).expect("read");

    std::fs::write(&archive, b"old").expect("write");
    build(&bin, "docker-archive", &archive, "hello:latest");
    assert_ne!(std::fs::read(&archive).expect("read"), b"old");
    assert!(first.len() > 1024);
    no_temp_files(dir.path());
}

#[test]
fn an_archive_in_a_missing_directory_fails_before_any_work() {
    let dir = tempdir();
    let target = dir.path().join("no/such/dir/app.tar");
    let out = run(mkimage()
        .args(["--from-binary", "/usr/bin/curl", "--format", "oci-archive"])
        .arg("-o")
        .arg(&target));
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(
        out.stderr.contains("does not exist") && out.stderr.contains("no/such/dir"),
        "{out}"
    );
    assert!(
        std::fs::read_dir(dir.path())
            .expect("read_dir")
            .next()
            .is_none()
    );

    // A directory where the file should go.
    let out = run(mkimage()
        .args([
            "--from-binary",
            "/usr/bin/curl",
            "--format",
            "docker-archive",
        ])
        .arg("-o")
        .arg(dir.path()));
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(out.stderr.contains("is a directory"), "{out}");
}
