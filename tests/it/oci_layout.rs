//! The layouts `mkimage::oci` writes, checked by the reference tools:
//! `oci-image-tool validate` (the image-spec's own validator) and `skopeo`
//! (which verifies every blob's digest as it copies).
//!
//! These need the tools installed (`apt-get install -y oci-image-tool
//! skopeo`), so they are ignored by default; a missing tool fails the test
//! rather than skipping it. Run with `cargo test -- --include-ignored`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

use flate2::Compression;
use flate2::write::GzEncoder;
use mkimage::{Digest, ImageSpec, LayerInfo, Layout, write_image};

/// Runs `tool args…`, failing the test if the tool is missing or fails.
fn run(tool: &str, args: &[&str]) -> Output {
    let out = Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!("cannot run {tool} ({e}); install it: apt-get install -y oci-image-tool skopeo")
    });
    assert!(
        out.status.success(),
        "{tool} {args:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A one-file tar, gzipped: (uncompressed tar, gzip bytes).
fn tiny_layer(path: &str, content: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, path, content)
        .expect("append to tar");
    let tar = tar.into_inner().expect("finish tar");
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(&tar).expect("gzip");
    (tar, gz.finish().expect("finish gzip"))
}

/// Stores a layer the way the layer writer will: streamed through a
/// `BlobWriter`.
fn store_layer(layout: &Layout, path: &str, content: &[u8]) -> LayerInfo {
    let (tar, gz) = tiny_layer(path, content);
    let mut w = layout.blob_writer().expect("blob writer");
    for chunk in gz.chunks(100) {
        w.write_all(chunk).expect("write blob");
    }
    let (digest, size) = w.commit().expect("commit blob");
    assert_eq!(digest, Digest::of(&gz));
    LayerInfo {
        diff_id: Digest::of(&tar),
        digest,
        size,
        media_type: oci_spec::image::MediaType::ImageLayerGzip,
        created_by: format!("mkimage: {path}"),
        annotations: BTreeMap::new(),
    }
}

fn spec() -> ImageSpec {
    ImageSpec {
        architecture: "amd64".to_owned(),
        os: "linux".to_owned(),
        env: vec!["PATH=/bin".to_owned()],
        entrypoint: vec!["/bin/hello".to_owned()],
        labels: [(
            "org.opencontainers.image.title".to_owned(),
            "hello".to_owned(),
        )]
        .into(),
        exposed_ports: ["8080/tcp".to_owned()].into(),
        created_epoch: 1_700_000_000,
        ..ImageSpec::default()
    }
}

/// Two images, three tags, one of them moved: the layout a second build
/// into the same directory leaves.
fn two_image_layout(dir: &Path) -> (String, String) {
    let layout = Layout::open_or_create(dir).expect("create layout");
    let base = store_layer(&layout, "etc/base", b"base\n");
    let app1 = store_layer(&layout, "bin/hello", b"one\n");
    let first = write_image(
        &layout,
        &spec(),
        &[base.clone(), app1],
        &BTreeMap::new(),
        &["v1".to_owned(), "latest".to_owned()],
    )
    .expect("first image");

    let layout = Layout::open_or_create(dir).expect("reopen layout");
    let app2 = store_layer(&layout, "bin/hello", b"two\n");
    let second = write_image(
        &layout,
        &spec(),
        &[base, app2],
        &BTreeMap::new(),
        &["v2".to_owned(), "latest".to_owned()],
    )
    .expect("second image");
    (first.digest().to_string(), second.digest().to_string())
}

#[test]
#[ignore = "needs oci-image-tool/skopeo"]
fn oci_image_tool_validates_every_tag() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("layout");
    two_image_layout(&dir);
    let entries = Layout::open_or_create(&dir)
        .expect("open")
        .read_index()
        .expect("index")
        .manifests()
        .len();
    assert_eq!(entries, 3);
    let dir = dir.to_str().expect("utf-8 path");
    for tag in ["v1", "v2", "latest"] {
        // oci-image-tool 1.0.0-rc1's `--ref name=` filter deletes from the
        // list it is iterating over, so it skips the entry after each one it
        // drops, and with [latest, v1, v2] "name=v2" keeps v1 too ("not
        // unique"). Each repetition of the filter drops at least one more
        // non-matching entry, so one per index entry leaves the right one.
        // (`--type imageLayout` is "unimplemented" in that version; `image`
        // autodetects a layout directory.)
        let name = format!("name={tag}");
        let mut args = vec!["validate", "--type", "image"];
        for _ in 0..entries {
            args.extend(["--ref", &name]);
        }
        args.push(dir);
        let out = run("oci-image-tool", &args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(&format!(
                "reference [{}]: OK",
                vec![name; entries].join(" ")
            )) && stdout.contains("Validation succeeded"),
            "{tag}: {stdout}"
        );
    }
}

#[test]
#[ignore = "needs oci-image-tool/skopeo"]
fn skopeo_reads_and_copies_every_tag() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("layout");
    let (first, second) = two_image_layout(&dir);
    let layout = Layout::open_or_create(&dir).expect("open");
    let dir = dir.to_str().expect("utf-8 path");

    for (tag, want) in [("v1", &first), ("v2", &second), ("latest", &second)] {
        let out = run("skopeo", &["inspect", &format!("oci:{dir}:{tag}")]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("skopeo json");
        assert_eq!(v["Digest"], **want, "{tag}");
        assert_eq!(v["Architecture"], "amd64", "{tag}");
        assert_eq!(v["Os"], "linux", "{tag}");
        assert_eq!(v["Created"], "2023-11-14T22:13:20Z", "{tag}");
        assert_eq!(v["Labels"]["org.opencontainers.image.title"], "hello");
        assert_eq!(v["Env"], serde_json::json!(["PATH=/bin"]));
        assert_eq!(v["Layers"].as_array().map(Vec::len), Some(2), "{tag}");

        // --raw gives the manifest exactly as stored.
        let raw = run("skopeo", &["inspect", "--raw", &format!("oci:{dir}:{tag}")]);
        let digest: Digest = want.parse().expect("digest");
        assert_eq!(
            raw.stdout,
            layout.read_blob(&digest).expect("manifest blob")
        );

        // A copy re-reads every blob and checks it against its digest.
        let copy = tmp.path().join(format!("copy-{tag}"));
        run(
            "skopeo",
            &[
                "copy",
                "--quiet",
                &format!("oci:{dir}:{tag}"),
                &format!("dir:{}", copy.display()),
            ],
        );
        assert_eq!(
            std::fs::read(copy.join("manifest.json")).expect("copied manifest"),
            raw.stdout,
            "{tag}: copy kept the manifest byte for byte"
        );
    }
}

/// The checks above mean something only if the tools notice damage.
#[test]
#[ignore = "needs oci-image-tool/skopeo"]
fn tools_reject_a_corrupted_layer() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("layout");
    let layout = Layout::open_or_create(&dir).expect("create layout");
    let layer = store_layer(&layout, "etc/x", b"x\n");
    write_image(
        &layout,
        &spec(),
        std::slice::from_ref(&layer),
        &BTreeMap::new(),
        &["t".to_owned()],
    )
    .expect("image");
    // Same size, different content: only a digest check can tell.
    let path = layout.blob_path(&layer.digest);
    let mut bytes = std::fs::read(&path).expect("read layer");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, bytes).expect("corrupt layer");

    let dir = dir.to_str().expect("utf-8 path");
    let (source, target) = (format!("oci:{dir}:t"), format!("dir:{dir}-copy"));
    for (tool, args, complaint) in [
        (
            "oci-image-tool",
            vec!["validate", "--type", "image", "--ref", "name=t", dir],
            "layer validation failed: digest mismatch",
        ),
        (
            "skopeo",
            vec!["copy", "--quiet", &source, &target],
            "Digest did not match",
        ),
    ] {
        let out = Command::new(tool).args(&args).output().unwrap_or_else(|e| {
            panic!("cannot run {tool} ({e}); install it: apt-get install -y oci-image-tool skopeo")
        });
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{tool} accepted a corrupted layer");
        assert!(stderr.contains(complaint), "{tool}: {stderr}");
    }
}
