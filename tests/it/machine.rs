//! `--json` and `--digest-file`: what rules and CI scripts read instead of
//! the human summary, checked against the layout and archive themselves.

use std::path::Path;

use serde_json::Value;

use crate::util::{cc, config, manifest, manifest_digest, mkimage, run, tempdir};

const HELLO_C: &str = "int main(void) { return 0; }";

fn build(args: &[&str], bin: &Path, out: &Path) -> crate::util::Output {
    run(mkimage()
        .env_remove("SOURCE_DATE_EPOCH")
        .arg("--from-binary")
        .arg(bin)
        .args(["--tzdata", "none", "--ca-certs", "none", "-t", "hello:1"])
        .arg("-o")
        .arg(out)
        .args(args))
}

#[test]
fn json_summary_and_digest_file_match_the_layout() {
    let dir = tempdir();
    let bin = cc(dir.path(), "hello", HELLO_C, &["-static"]);
    let layout = dir.path().join("hello.oci");
    let digest_file = dir.path().join("digest");
    let d = digest_file.to_str().unwrap();
    let out = build(&["--json", "--digest-file", d], &bin, &layout);
    out.assert_success();
    // stdout is the JSON and nothing else; the human summary is on stderr.
    let json: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert!(out.stderr.contains("Wrote hello:1 to"), "{out}");
    let digest = manifest_digest(&layout, "hello:1");
    assert_eq!(std::fs::read_to_string(&digest_file).unwrap(), digest);
    assert_eq!(json["schema_version"], 1);
    assert_eq!(json["digest"], digest.as_str());
    assert_eq!(
        json["media_type"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let m = manifest(&layout, "hello:1");
    let blob = std::fs::read(layout.join("blobs/sha256").join(&digest[7..])).unwrap();
    assert_eq!(json["size"], blob.len() as u64);
    assert_eq!(json["tags"], serde_json::json!(["hello:1"]));
    assert_eq!(
        json["platform"],
        serde_json::json!({"os": "linux", "architecture": "amd64"})
    );
    assert_eq!(
        json["output"],
        serde_json::json!({"path": layout.to_str().unwrap(), "format": "oci"})
    );
    assert_eq!(json["pushed"], Value::Null);
    let layers = json["layers"].as_array().unwrap();
    let want = m["layers"].as_array().unwrap();
    let diff_ids = config(&layout, "hello:1")["rootfs"]["diff_ids"].clone();
    assert_eq!(layers.len(), want.len());
    for (i, (got, want)) in layers.iter().zip(want).enumerate() {
        assert_eq!(got["digest"], want["digest"], "layer {i}");
        assert_eq!(got["size"], want["size"], "layer {i}");
        assert_eq!(got["media_type"], want["mediaType"], "layer {i}");
        assert_eq!(got["diff_id"], diff_ids[i], "layer {i}");
        assert_eq!(
            got["kind"], want["annotations"]["org.mkimage.layer"],
            "layer {i}"
        );
        assert!(got["files"].as_u64().unwrap() > 0, "layer {i}");
    }

    // --quiet --json: the JSON alone, nothing on stderr.
    let out = build(&["--json", "--quiet"], &bin, &layout);
    out.assert_success();
    assert_eq!(out.stderr, "", "{out}");
    let again: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(again["digest"], json["digest"]);
}

#[test]
fn digest_file_of_an_archive_and_bad_paths() {
    let dir = tempdir();
    let bin = cc(dir.path(), "hello", HELLO_C, &["-static"]);
    let archive = dir.path().join("hello.tar");
    let digest_file = dir.path().join("digest");
    let d = digest_file.to_str().unwrap();
    let out = build(
        &["--format", "oci-archive", "--json", "--digest-file", d],
        &bin,
        &archive,
    );
    out.assert_success();
    let json: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["output"]["format"], "oci-archive");
    let digest = std::fs::read_to_string(&digest_file).unwrap();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    assert_eq!(json["digest"], digest.as_str());
    // The archive's index names the same manifest.
    let tar = std::fs::read(&archive).unwrap();
    let needle = format!("\"digest\":\"{digest}\"");
    assert!(
        tar.windows(needle.len()).any(|w| w == needle.as_bytes()),
        "the archive's index.json does not name {digest}"
    );

    // A digest file whose directory is missing fails before any work.
    let layout = dir.path().join("never.oci");
    let missing = dir.path().join("no/such/dir/digest");
    let out = build(&["--digest-file", missing.to_str().unwrap()], &bin, &layout);
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(
        out.stderr.contains("--digest-file") && out.stderr.contains("does not exist"),
        "{out}"
    );
    assert!(!layout.exists());

    // A failed build leaves the old digest file alone.
    let out = build(&["--digest-file", d], &dir.path().join("nope"), &layout);
    assert!(!out.status.success(), "{out}");
    assert_eq!(std::fs::read_to_string(&digest_file).unwrap(), digest);
}
