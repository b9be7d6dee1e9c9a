//! `mkimage inspect IMAGE --html FILE [--diff OTHER]` in a real browser:
//! headless Chromium runs the page's script, and the numbers it puts in
//! the DOM (totals, layers, packages, the comparison, a why-chain) must be
//! those of `inspect --json` and `inspect --why --json`; a screenshot
//! shows it drew something.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::util::{build, check, mkimage, require_tool, run, run_within, tempdir};

const LIBSSL: &str = "/usr/lib/x86_64-linux-gnu/libssl.so.3";

/// Headless Chromium with a profile of its own (parallel tests must not
/// share one), as root (hence no sandbox).
fn chromium(profile: &Path) -> Command {
    require_tool("chromium");
    let mut cmd = Command::new("chromium");
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    // Time for the script to run before the DOM is dumped or the
    // screenshot taken; virtual, so it costs no wall time when idle.
    .arg("--virtual-time-budget=10000");
    cmd
}

/// `inspect --json` of `image`.
fn inspect_json(image: &Path) -> Value {
    let out = check(mkimage().arg("inspect").arg(image).arg("--json"));
    serde_json::from_str(&out.stdout).expect("inspect --json is JSON")
}

/// The attributes of every element whose start tag begins with `start`
/// (e.g. `<tr class="package"`), in document order, entities decoded.
fn elements(dom: &str, start: &str) -> Vec<BTreeMap<String, String>> {
    let mut out = Vec::new();
    for (at, _) in dom.match_indices(start) {
        let tag = &dom[at..];
        let end = tag.find('>').unwrap_or(tag.len());
        let mut attrs = BTreeMap::new();
        let mut rest = &tag[1..end];
        while let Some(eq) = rest.find("=\"") {
            let name = rest[..eq].rsplit(' ').next().unwrap_or_default().to_owned();
            let value_at = &rest[eq + 2..];
            let close = value_at.find('"').unwrap_or(value_at.len());
            let value = value_at[..close]
                .replace("&quot;", "\"")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&");
            attrs.insert(name, value);
            rest = &value_at[(close + 1).min(value_at.len())..];
        }
        out.push(attrs);
    }
    out
}

fn one(dom: &str, start: &str) -> BTreeMap<String, String> {
    let all = elements(dom, start);
    assert_eq!(all.len(), 1, "{start}: {all:?}");
    all.into_iter().next().unwrap_or_default()
}

fn num(attrs: &BTreeMap<String, String>, name: &str) -> u64 {
    attrs
        .get(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} in {attrs:?}"))
}

/// Bytes of content as `inspect` counts them: regular files and hard links.
fn content(file: &Value) -> Option<u64> {
    matches!(file["type"].as_str(), Some("file" | "hardlink"))
        .then(|| file["size"].as_u64().unwrap_or(0))
}

fn sizes(json: &Value) -> BTreeMap<String, u64> {
    json["files"]
        .as_array()
        .map(|files| {
            files
                .iter()
                .filter_map(|f| Some((f["path"].as_str()?.to_owned(), content(f)?)))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
#[ignore = "needs chromium"]
fn html_report_in_chromium_matches_inspect_json() {
    let dir = tempdir();
    let old = dir.path().join("old.oci");
    let new = dir.path().join("new.oci");
    let lean = ["--tzdata", "none", "-q", "--from-binary", "/usr/bin/gzip"].map(String::from);
    build(&old, "app:1", &lean);
    let mut more = lean.to_vec();
    more.extend(["--from-binary", "/usr/bin/curl"].map(String::from));
    build(&new, "app:2", &more);

    let page = dir.path().join("report.html");
    let out = check(
        mkimage()
            .arg("inspect")
            .arg(&new)
            .arg("--html")
            .arg(&page)
            .arg("--diff")
            .arg(&old),
    );
    assert!(
        out.stdout.starts_with(&format!("Wrote {}", page.display())),
        "{out}"
    );
    let html = std::fs::read_to_string(&page).expect("read the page");
    // Self-contained: nothing to fetch, and a policy that forbids fetching.
    for reference in [
        "src=",
        "href=",
        "url(",
        "@import",
        "fetch(",
        "XMLHttpRequest",
        "http://",
        "https://",
    ] {
        assert!(
            !html.contains(reference),
            "the page refers to something: {reference}"
        );
    }
    assert!(
        html.contains("default-src 'none'"),
        "no Content-Security-Policy"
    );
    // Same inputs, same page.
    let again = dir.path().join("again.html");
    check(
        mkimage()
            .arg("inspect")
            .arg(&new)
            .arg("--html")
            .arg(&again)
            .arg("--diff")
            .arg(&old),
    );
    assert!(
        std::fs::read(&again).expect("read") == html.as_bytes(),
        "the page is not deterministic"
    );

    let profile = tempdir();
    let url = format!("file://{}#file={LIBSSL}", page.display());
    let dump = run_within(
        chromium(profile.path()).arg("--dump-dom").arg(&url),
        Duration::from_secs(90),
    );
    assert!(dump.status.success(), "{dump}");
    let dom = dump.stdout;
    assert!(
        dom.contains("data-ready=\"1\""),
        "the script did not finish: {}",
        &dom[..dom.len().min(2000)]
    );

    let json = inspect_json(&new);
    let files = json["files"].as_array().expect("files");
    let new_sizes = sizes(&json);
    let total: u64 = new_sizes.values().sum();
    let bytes = one(&dom, "<span id=\"total-bytes\"");
    assert_eq!(num(&bytes, "data-bytes"), total);
    let counts = one(&dom, "<span id=\"total-files\"");
    assert_eq!(num(&counts, "data-entries"), files.len() as u64);
    assert_eq!(num(&counts, "data-files"), new_sizes.len() as u64);

    // Layers: the summary's numbers, and the bytes each holds in the tree.
    let layers = elements(&dom, "<tr class=\"layer\"");
    let summary_layers = json["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), summary_layers.len());
    for (row, l) in layers.iter().zip(summary_layers) {
        let index = l["index"].as_u64().expect("index");
        assert_eq!(num(row, "data-index"), index);
        assert_eq!(num(row, "data-size"), l["size"].as_u64().expect("size"));
        assert_eq!(num(row, "data-files"), l["files"].as_u64().expect("files"));
        assert_eq!(
            num(row, "data-unpacked"),
            l["uncompressed_size"].as_u64().expect("unpacked")
        );
        let in_tree: u64 = files
            .iter()
            .filter(|f| f["layer"].as_u64() == Some(index))
            .filter_map(content)
            .sum();
        assert_eq!(num(row, "data-bytes"), in_tree, "layer {index}");
    }

    // Packages: inspect's bytes and files per package, and the rest.
    let rows: BTreeMap<String, (u64, u64)> = elements(&dom, "<tr class=\"package\"")
        .iter()
        .map(|r| {
            (
                r["data-name"].clone(),
                (num(r, "data-bytes"), num(r, "data-files")),
            )
        })
        .collect();
    let packages = &json["packages"];
    let mut want: BTreeMap<String, (u64, u64)> = packages["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| {
            let name = p["name"].as_str().expect("name").to_owned();
            (
                name,
                (
                    p["size"].as_u64().expect("size"),
                    p["files"].as_u64().expect("files"),
                ),
            )
        })
        .collect();
    want.insert(
        "(no package)".into(),
        (
            packages["other_size"].as_u64().expect("other"),
            packages["other_files"].as_u64().expect("other"),
        ),
    );
    assert!(
        want.contains_key("libcurl4") && want.contains_key("libssl3"),
        "{want:?}"
    );
    assert_eq!(rows, want);

    // The treemap drew cells, libssl's among them.
    let map = one(&dom, "<div id=\"map\"");
    assert!(num(&map, "data-cells") > 20, "{map:?}");
    assert!(
        dom.contains(&format!("data-path=\"{LIBSSL}\"")),
        "no cell for libssl"
    );

    // The why-chain the URL asked for is `inspect --why`'s.
    let why: Value = serde_json::from_str(
        &check(
            mkimage()
                .arg("inspect")
                .arg(&new)
                .args(["--why", LIBSSL, "--json"]),
        )
        .stdout,
    )
    .expect("--why --json is JSON");
    assert_eq!(
        one(&dom, "<div class=\"path\" id=\"details-path\"")["data-path"],
        LIBSSL
    );
    let steps: Vec<(String, String)> = elements(&dom, "<li class=\"step\"")
        .into_iter()
        .map(|s| (s["data-path"].clone(), s["data-layer"].clone()))
        .collect();
    let want_steps: Vec<(String, String)> = why["chain"]
        .as_array()
        .expect("chain")
        .iter()
        .map(|s| {
            (
                s["path"].as_str().unwrap_or_default().into(),
                s["layer"].as_str().unwrap_or_default().into(),
            )
        })
        .collect();
    assert!(want_steps.len() >= 3, "{why}");
    assert_eq!(steps, want_steps);

    // The comparison: what was added, per file and per package.
    let old_sizes = sizes(&inspect_json(&old));
    let diff = one(&dom, "<p id=\"diff\"");
    assert_eq!(
        num(&diff, "data-old-bytes"),
        old_sizes.values().sum::<u64>()
    );
    assert_eq!(num(&diff, "data-new-bytes"), total);
    let added = new_sizes
        .keys()
        .filter(|p| !old_sizes.contains_key(*p))
        .count();
    let removed = old_sizes
        .keys()
        .filter(|p| !new_sizes.contains_key(*p))
        .count();
    let changed = new_sizes
        .iter()
        .filter(|(p, s)| old_sizes.get(*p).is_some_and(|o| o != *s))
        .count();
    assert!(added > 10, "curl brings its libraries: {added}");
    assert_eq!(
        (
            num(&diff, "data-added"),
            num(&diff, "data-removed"),
            num(&diff, "data-changed")
        ),
        (added as u64, removed as u64, changed as u64)
    );
    let curl_pkg = elements(&dom, "<tr class=\"pkgdiff\"")
        .into_iter()
        .find(|r| r["data-name"] == "libcurl4")
        .expect("libcurl4 in the package comparison");
    assert_eq!(
        (num(&curl_pkg, "data-old"), num(&curl_pkg, "data-new")),
        (0, want["libcurl4"].0)
    );
    let file_rows = elements(&dom, "<tr class=\"filediff\"");
    let ssl = file_rows
        .iter()
        .find(|r| r["data-path"] == LIBSSL)
        .expect("libssl in the file comparison");
    assert_eq!(
        (ssl["data-old"].as_str(), num(ssl, "data-new")),
        ("", new_sizes[LIBSSL])
    );

    // `--diff` alone says the same, as JSON and as text.
    let rust: Value = serde_json::from_str(
        &check(
            mkimage()
                .arg("inspect")
                .arg(&new)
                .arg("--diff")
                .arg(&old)
                .arg("--json"),
        )
        .stdout,
    )
    .expect("--diff --json is JSON");
    for (key, attr) in [
        ("old_bytes", "data-old-bytes"),
        ("new_bytes", "data-new-bytes"),
        ("added", "data-added"),
        ("removed", "data-removed"),
        ("changed", "data-changed"),
    ] {
        assert_eq!(rust[key].as_u64(), Some(num(&diff, attr)), "{key}");
    }
    let page_packages: Vec<(String, u64, u64)> = elements(&dom, "<tr class=\"pkgdiff\"")
        .iter()
        .map(|r| {
            (
                r["data-name"].clone(),
                num(r, "data-old"),
                num(r, "data-new"),
            )
        })
        .collect();
    let rust_packages: Vec<(String, u64, u64)> = rust["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| {
            let n = |k: &str| p[k].as_u64().unwrap_or(u64::MAX);
            (
                p["name"].as_str().unwrap_or_default().to_owned(),
                n("old_bytes"),
                n("new_bytes"),
            )
        })
        .collect();
    assert_eq!(page_packages, rust_packages);
    let first = rust["files"][0].clone();
    assert_eq!(
        first["old_size"],
        Value::Null,
        "the largest growth is a new file: {first}"
    );
    let text = check(mkimage().arg("inspect").arg(&new).arg("--diff").arg(&old)).stdout;
    assert!(
        text.contains(&format!(
            "{added} files added, {removed} removed, {changed} changed in size"
        )),
        "{text}"
    );
    assert!(text.contains("libcurl4"), "{text}");
    assert!(
        text.contains("(needed) of /usr/local/bin/curl [--from-binary curl]"),
        "no why in: {text}"
    );

    // And a screenshot: a PNG of the window's size, with a picture in it.
    let shot = dir.path().join("report.png");
    let out = run_within(
        chromium(profile.path())
            .arg("--window-size=1280,900")
            .arg(format!("--screenshot={}", shot.display()))
            .arg(format!("file://{}", page.display())),
        Duration::from_secs(90),
    );
    assert!(out.status.success(), "{out}");
    let (width, height, colours) = png_colours(&std::fs::read(&shot).expect("read the screenshot"));
    assert_eq!((width, height), (1280, 900));
    assert!(colours > 50, "a blank screenshot: {colours} colours");
}

/// Width, height and the number of distinct colours of an 8-bit RGB or
/// RGBA, non-interlaced PNG (what Chromium writes): its IDAT chunks
/// inflated and unfiltered (PNG spec, section 9).
fn png_colours(png: &[u8]) -> (u32, u32, usize) {
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let (mut at, mut idat) = (8, Vec::new());
    let (mut width, mut height, mut bpp) = (0u32, 0u32, 0usize);
    while at + 8 <= png.len() {
        let len = u32::from_be_bytes(png[at..at + 4].try_into().expect("4 bytes")) as usize;
        let kind = &png[at + 4..at + 8];
        let data = &png[at + 8..at + 8 + len];
        match kind {
            b"IHDR" => {
                width = u32::from_be_bytes(data[0..4].try_into().expect("4 bytes"));
                height = u32::from_be_bytes(data[4..8].try_into().expect("4 bytes"));
                assert_eq!((data[8], data[12]), (8, 0), "8-bit, not interlaced");
                bpp = match data[9] {
                    2 => 3,
                    6 => 4,
                    other => panic!("colour type {other}"),
                };
            }
            b"IDAT" => idat.extend_from_slice(data),
            _ => {}
        }
        at += 12 + len;
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..])
        .read_to_end(&mut raw)
        .expect("inflate IDAT");
    let stride = width as usize * bpp;
    assert_eq!(raw.len(), (stride + 1) * height as usize, "image data size");
    let mut prev = vec![0u8; stride];
    let mut colours = std::collections::HashSet::new();
    for row in raw.chunks(stride + 1) {
        let (filter, line) = (row[0], &row[1..]);
        let mut cur = vec![0u8; stride];
        for i in 0..stride {
            let a = if i >= bpp { cur[i - bpp] as i16 } else { 0 };
            let b = prev[i] as i16;
            let c = if i >= bpp { prev[i - bpp] as i16 } else { 0 };
            let pred = match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => (a + b) / 2,
                4 => {
                    let p = a + b - c;
                    let (pa, pb, pc) = ((p - a).abs(), (p - b).abs(), (p - c).abs());
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    }
                }
                other => panic!("filter {other}"),
            };
            cur[i] = line[i].wrapping_add(pred as u8);
        }
        for px in cur.chunks(bpp) {
            colours.insert(px[..3].to_vec());
        }
        prev = cur;
    }
    (width, height, colours.len())
}

#[test]
fn html_report_refuses_bad_input_without_writing() {
    let dir = tempdir();
    let image = dir.path().join("app.oci");
    build(
        &image,
        "app:1",
        &["--tzdata", "none", "-q", "--from-binary", "/usr/bin/gzip"].map(String::from),
    );
    // A bad OTHER and an unwritable page fail, naming them.
    let out = run(mkimage()
        .arg("inspect")
        .arg(&image)
        .args(["--diff", "/no/such/image"]));
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(out.stderr.contains("--diff /no/such/image"), "{out}");
    let out = run(mkimage()
        .arg("inspect")
        .arg(&image)
        .args(["--diff", "x", "--no-files"]));
    assert_eq!(out.status.code(), Some(2), "{out}");
    let missing = dir.path().join("no-such-dir/report.html");
    let out = run(mkimage()
        .arg("inspect")
        .arg(&image)
        .arg("--html")
        .arg(&missing));
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(out.stderr.contains(&missing.display().to_string()), "{out}");
    let page = dir.path().join("report.html");
    std::fs::write(&page, "old page").expect("write");
    let other = dir.path().join("not-an-image");
    let out = run(mkimage()
        .arg("inspect")
        .arg(&image)
        .arg("--html")
        .arg(&page)
        .arg("--diff")
        .arg(&other));
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(
        out.stderr.contains("--diff") && out.stderr.contains("not-an-image"),
        "{out}"
    );
    assert_eq!(std::fs::read_to_string(&page).expect("read"), "old page");
}

/// An image another tool wrote (no provenance, no package records): the
/// page still draws its files and says it has no why-chains.
#[test]
#[ignore = "needs chromium"]
fn html_report_of_an_image_without_provenance() {
    use mkimage::{ImageSpec, LayerInfo, Layout, MediaType, write_image};
    let dir = tempdir();
    let layout_dir = dir.path().join("plain.oci");
    let layout = Layout::open_or_create(&layout_dir).expect("layout");
    let mut tar = tar::Builder::new(Vec::new());
    for (path, data) in [
        ("etc/hello", &b"hello"[..]),
        ("usr/bin/tool", &[7u8; 3000][..]),
    ] {
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o755);
        header.set_cksum();
        tar.append_data(&mut header, path, data).expect("tar entry");
    }
    let tar = tar.into_inner().expect("tar");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &tar).expect("gzip");
    let blob = layout
        .put_blob(MediaType::ImageLayerGzip, &gz.finish().expect("gzip"))
        .expect("layer");
    let layer = LayerInfo {
        diff_id: mkimage::Digest::of(&tar),
        digest: blob.digest().to_string().parse().expect("digest"),
        size: blob.size(),
        media_type: MediaType::ImageLayerGzip,
        created_by: "another tool".into(),
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

    let page = dir.path().join("plain.html");
    check(
        mkimage()
            .arg("inspect")
            .arg(&layout_dir)
            .arg("--html")
            .arg(&page),
    );
    let profile = tempdir();
    let url = format!("file://{}#file=/usr/bin/tool", page.display());
    let dump = run_within(
        chromium(profile.path()).arg("--dump-dom").arg(&url),
        Duration::from_secs(90),
    );
    assert!(dump.status.success(), "{dump}");
    let dom = dump.stdout;
    assert!(
        dom.contains("data-ready=\"1\""),
        "the script did not finish"
    );
    assert_eq!(
        num(&one(&dom, "<span id=\"total-bytes\""), "data-bytes"),
        3005
    );
    assert!(
        dom.contains("no provenance (not built by mkimage)"),
        "{dom}"
    );
    assert!(
        dom.contains("data-path=\"/usr/bin/tool\""),
        "no cell for the file"
    );
    assert!(
        dom.contains("The image has no provenance"),
        "the details say why there is no chain"
    );
    let rows = elements(&dom, "<tr class=\"package\"");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (rows[0]["data-name"].as_str(), num(&rows[0], "data-files")),
        ("(no package)", 2)
    );
}
