//! `mkimage inspect` on images the real CLI built from /usr/bin/curl, in all
//! three formats: `--why` walks the dependency chain, `--json` parses and
//! lists the files, and images mkimage did not build say so.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::Value;

use crate::util::{Output, check, mkimage, run};

/// Where Debian 12 keeps libssl (its /lib is a symlink to usr/lib).
const LIBSSL: &str = "/usr/lib/x86_64-linux-gnu/libssl.so.3";
const LIBSSL_VIA_LIB: &str = "/lib/x86_64-linux-gnu/libssl.so.3";

/// curl built once per test run into the three formats: (layout,
/// oci-archive, docker-archive).
fn curl_images() -> &'static (PathBuf, PathBuf, PathBuf) {
    static IMAGES: OnceLock<(PathBuf, PathBuf, PathBuf)> = OnceLock::new();
    IMAGES.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("inspect-curl");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the image directory");
        let images = (
            dir.join("curl.oci"),
            dir.join("curl-oci.tar"),
            dir.join("curl-docker.tar"),
        );
        for (format, out) in [
            ("oci", &images.0),
            ("oci-archive", &images.1),
            ("docker-archive", &images.2),
        ] {
            check(
                mkimage()
                    .env_remove("SOURCE_DATE_EPOCH")
                    .args(["--from-binary", "/usr/bin/curl", "-q", "--format", format])
                    .arg("-o")
                    .arg(out),
            );
        }
        images
    })
}

fn all_formats() -> [&'static Path; 3] {
    let (a, b, c) = curl_images();
    [a, b, c]
}

fn inspect(image: &Path, args: &[&str]) -> Output {
    run(mkimage().arg("inspect").arg(image).args(args))
}

fn json(out: &Output) -> Value {
    assert!(out.status.success(), "{out}");
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("bad JSON ({e}): {out}"))
}

#[test]
fn why_libssl_names_libcurl_and_the_binary() {
    assert!(
        Path::new(LIBSSL).is_file() && !Path::new(LIBSSL).is_symlink(),
        "{LIBSSL} is not a regular file on this machine"
    );
    for image in all_formats() {
        let out = inspect(image, &["--why", LIBSSL]);
        assert!(out.status.success(), "{out}");
        assert!(out.stdout.starts_with(LIBSSL), "{out}");
        assert!(out.stdout.contains("libcurl.so.4"), "{out}");
        assert!(out.stdout.contains("--from-binary curl"), "{out}");
        assert!(out.stdout.contains("(layer libs)"), "{out}");
        assert!(
            out.stdout
                .contains("needed by /usr/local/bin/curl (layer app)"),
            "{out}"
        );

        // The same file through the /lib symlink.
        let out = inspect(image, &["--why", LIBSSL_VIA_LIB]);
        assert!(out.status.success(), "{out}");
        assert!(
            out.stdout
                .starts_with(&format!("{LIBSSL_VIA_LIB} is {LIBSSL} (through symlinks)")),
            "{out}"
        );

        let v = json(&inspect(image, &["--why", LIBSSL, "--json"]));
        let chain = v["chain"].as_array().expect("chain");
        assert_eq!(chain[0]["path"], LIBSSL);
        assert_eq!(chain[0]["layer"], "libs");
        assert_eq!(chain.last().expect("a step")["why"], "--from-binary curl");
    }
}

#[test]
fn why_covers_base_files_time_zones_and_absent_paths() {
    let (layout, _, _) = curl_images();
    let out = inspect(layout, &["--why", "/etc/passwd"]);
    assert!(out.stdout.contains("base files"), "{out}");
    let out = inspect(layout, &["--why", "/etc/ssl/certs/ca-certificates.crt"]);
    assert!(out.stdout.contains("CA certificates"), "{out}");
    let out = inspect(layout, &["--why", "/usr/share/zoneinfo/Europe/Paris"]);
    assert!(out.status.success(), "{out}");
    assert!(out.stdout.contains("--tzdata all"), "{out}");

    let out = inspect(layout, &["--why", "/usr/bin/wget"]);
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(out.stderr.contains("not in the image"), "{out}");
}

#[test]
fn json_lists_files_with_sizes_and_layers() {
    let mut listings = Vec::new();
    for image in all_formats() {
        let v = json(&inspect(image, &["--json"]));
        let files = v["files"].as_array().expect("files");
        let passwd = files
            .iter()
            .find(|f| f["path"] == "/etc/passwd")
            .unwrap_or_else(|| panic!("no /etc/passwd in {}", image.display()));
        assert_eq!(passwd["type"], "file");
        assert_eq!(passwd["size"].as_u64(), Some(mkimage::PASSWD.len() as u64));
        assert_eq!(passwd["layer"], 1);
        let libssl = files
            .iter()
            .find(|f| f["path"] == LIBSSL)
            .expect("libssl listed");
        assert_eq!(
            libssl["size"].as_u64(),
            Some(std::fs::metadata(LIBSSL).expect("stat libssl").len())
        );
        let layers = v["layers"].as_array().expect("layers");
        assert_eq!(layers.len(), 3);
        for l in layers {
            assert!(l["files"].as_u64().is_some_and(|n| n > 0), "{l}");
        }
        assert_eq!(
            v["config"]["entrypoint"],
            serde_json::json!(["/usr/local/bin/curl"])
        );
        assert_eq!(v["config"]["user"], "65532:65532");
        assert_eq!(v["tags"], serde_json::json!(["curl:latest"]));
        assert!(v["provenance"].as_str().is_some(), "{v}");
        let listing: BTreeMap<String, (Value, Value)> = files
            .iter()
            .map(|f| {
                (
                    f["path"].as_str().expect("path").to_owned(),
                    (f["size"].clone(), f["mode"].clone()),
                )
            })
            .collect();
        listings.push(listing);
    }
    assert_eq!(listings[0], listings[1], "layout and oci-archive");
    assert_eq!(listings[0], listings[2], "layout and docker-archive");
    let (layout, _, docker) = curl_images();
    let v = json(&inspect(layout, &["--json", "--no-files"]));
    assert!(v.get("files").is_none());
    let whats: Vec<&str> = v["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["what"].as_str().expect("what"))
        .collect();
    assert_eq!(whats, ["base", "libs", "app"]);
    let v = json(&inspect(docker, &["--json", "--no-files"]));
    assert_eq!(v["format"], "docker-archive");
}

#[test]
fn text_output_shows_config_layers_and_files() {
    let (_, oci_archive, _) = curl_images();
    let out = inspect(oci_archive, &[]);
    assert!(out.status.success(), "{out}");
    for want in [
        "(oci-archive)",
        "Platform    linux/amd64",
        "Entrypoint  [\"/usr/local/bin/curl\"]",
        "User        65532:65532",
        "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
        "Layers:",
        " base ",
        " libs ",
        " app ",
        "Files (",
        " /etc/passwd\n",
        " /lib -> usr/lib\n",
        "drwxrwxrwt",
    ] {
        assert!(out.stdout.contains(want), "{want:?} not in {out}");
    }
}

#[test]
fn images_not_built_by_mkimage_say_so() {
    use mkimage::{ImageSpec, Layout, MediaType, write_image};
    let dir = crate::util::tempdir();
    let layout_dir = dir.path().join("plain.oci");
    let layout = Layout::open_or_create(&layout_dir).expect("layout");
    // An empty tar (two zero blocks), gzipped.
    let empty = vec![0u8; 1024];
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &empty).expect("gzip");
    let d = layout
        .put_blob(MediaType::ImageLayerGzip, &gz.finish().expect("gzip"))
        .expect("layer");
    let layer = mkimage::LayerInfo {
        diff_id: mkimage::Digest::of(&empty),
        digest: d.digest().to_string().parse().expect("digest"),
        size: d.size(),
        media_type: MediaType::ImageLayerGzip,
        created_by: "empty".into(),
        annotations: BTreeMap::new(),
    };
    write_image(
        &layout,
        &ImageSpec::default(),
        &[layer],
        &BTreeMap::new(),
        &["plain:1".to_owned()],
    )
    .expect("image");
    let out = inspect(&layout_dir, &["--why", "/etc/passwd"]);
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(out.stderr.contains("not built by mkimage"), "{out}");
    let v = json(&inspect(&layout_dir, &["--json"]));
    assert_eq!(v["provenance"], Value::Null);
    assert_eq!(v["layers"][0]["what"], "layer 1");
    assert_eq!(v["layers"][0]["files"], 0);
    assert_eq!(v["files"], serde_json::json!([]));
}
