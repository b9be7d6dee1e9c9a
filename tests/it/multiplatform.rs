//! Multi-platform images: one command builds an amd64 and an arm64 image
//! of a C++ program and an index of them; the index goes to a real
//! registry (Debian's docker-registry) and comes back with skopeo; the
//! arm64 image runs under qemu-user-static.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::foreign::{HELLO_CC, run_in_rootfs};
use crate::registry::Registry;
use crate::util::{
    Bundle, RunOpts, check, index_entry, manifest_digest, mkimage, read_json, require_root,
    require_tool, run_image, tempdir,
};

const TAG: &str = "hello:1";

/// `mkimage` with the flags every build here shares: `--platform` and
/// `--sysroot` are the caller's.
fn build(dir: &Path, layout: &str, tag: &str, platform: &[&str]) -> crate::util::Output {
    check(
        mkimage()
            .current_dir(dir)
            .env("SOURCE_DATE_EPOCH", "0")
            .args(["-o", layout, "-t", tag])
            .args(["--from-binary", "out/{arch}/hellocc:/usr/local/bin/hellocc"])
            .args([
                "--ca-certs",
                "/etc/ssl/certs/ca-certificates.crt",
                "--tzdata",
                "none",
            ])
            .args(["--sysroot", "linux/arm64=/usr/aarch64-linux-gnu"])
            .args(platform),
    )
}

#[test]
#[ignore = "needs g++-aarch64-linux-gnu, qemu-user-static, docker-registry, skopeo, umoci and root"]
fn an_amd64_and_arm64_index_goes_to_a_registry_and_back() {
    for tool in [
        "g++",
        "aarch64-linux-gnu-g++",
        "qemu-aarch64-static",
        "skopeo",
    ] {
        require_tool(tool);
    }
    require_root();
    let dir = tempdir();
    let d = dir.path();
    std::fs::write(d.join("hello.cc"), HELLO_CC).expect("write hello.cc");
    for (arch, cxx) in [("amd64", "g++"), ("arm64", "aarch64-linux-gnu-g++")] {
        std::fs::create_dir_all(d.join("out").join(arch)).expect("mkdir out");
        check(
            Command::new(cxx)
                .current_dir(d)
                .args(["-O2", "-o"])
                .arg(format!("out/{arch}/hellocc"))
                .arg("hello.cc"),
        );
    }
    let out = build(
        d,
        "img.oci",
        TAG,
        &["--platform", "linux/amd64,linux/arm64"],
    );
    assert!(out.stdout.contains("an index of 2 platforms"), "{out}");
    let layout = d.join("img.oci");
    let entry = index_entry(&layout, TAG);
    assert_eq!(
        entry["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let index_digest = entry["digest"].as_str().expect("digest").to_string();
    let index = read_json(&layout.join("blobs/sha256").join(&index_digest[7..]));
    let platforms: Vec<(String, String)> = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|m| {
            (
                format!(
                    "{}/{}",
                    m["platform"]["os"].as_str().unwrap_or(""),
                    m["platform"]["architecture"].as_str().unwrap_or("")
                ),
                m["digest"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        platforms.iter().map(|p| p.0.as_str()).collect::<Vec<_>>(),
        ["linux/amd64", "linux/arm64"]
    );
    // Each manifest is the one a single-platform build makes.
    for (i, p) in ["linux/amd64", "linux/arm64"].iter().enumerate() {
        let single = format!("single-{i}.oci");
        build(d, &single, TAG, &["--platform", p]);
        assert_eq!(
            manifest_digest(&d.join(&single), TAG),
            platforms[i].1,
            "{p}"
        );
    }

    // mkimage inspect lists the platforms and opens one.
    let listed = check(
        mkimage()
            .arg("inspect")
            .arg(format!("{}:{TAG}", layout.display())),
    );
    assert!(listed.stdout.contains("linux/arm64/v8") && listed.stdout.contains(&platforms[1].1));
    let one = check(
        mkimage()
            .arg("inspect")
            .arg(format!("{}:{TAG}", layout.display()))
            .args(["--platform", "linux/arm64", "--json", "--no-files"]),
    );
    let v: Value = serde_json::from_str(&one.stdout).expect("inspect --json");
    assert_eq!(v["manifest"]["digest"], platforms[1].1.as_str(), "{v}");
    assert!(v["sbom"].is_string(), "the arm64 image keeps its SBOM: {v}");

    // Pushed (every manifest, then the index), read raw and copied back.
    let registry = Registry::http();
    let host = registry.host();
    let reference = format!("{host}/hello:1");
    let pushed = check(
        mkimage()
            .arg("push")
            .arg(format!("{}:{TAG}", layout.display()))
            .arg(&reference)
            .args(["--insecure-registry", &host]),
    );
    assert!(pushed.stdout.contains(&index_digest), "{pushed}");
    let raw = check(
        Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{reference}")),
    );
    let raw: Value = serde_json::from_str(&raw.stdout).expect("skopeo inspect --raw");
    assert_eq!(raw, index);
    // Each platform's SBOM and provenance went with it (the registry has
    // no referrers API: the sha256-<hex> tag lists them).
    for (p, digest) in &platforms {
        let tag = digest.replace(':', "-");
        let listed = check(
            Command::new("skopeo")
                .args(["inspect", "--raw", "--tls-verify=false"])
                .arg(format!("docker://{host}/hello:{tag}")),
        );
        let listed: Value = serde_json::from_str(&listed.stdout).expect("referrers index");
        let types: Vec<&str> = listed["manifests"]
            .as_array()
            .expect("manifests")
            .iter()
            .filter_map(|m| m["artifactType"].as_str())
            .collect();
        assert_eq!(types.len(), 2, "{p}: {listed}");
    }
    let back = d.join("back.oci");
    check(
        Command::new("skopeo")
            .args(["copy", "--all", "--src-tls-verify=false"])
            .arg(format!("docker://{reference}"))
            .arg(format!("oci:{}:{TAG}", back.display())),
    );
    assert_eq!(index_entry(&back, TAG)["digest"], index_digest.as_str());

    // The arm64 image, as a runtime on an arm64 machine would pick it,
    // runs under qemu; the amd64 one under runc.
    for (arch, name) in [("arm64", "arm"), ("amd64", "amd")] {
        let single = d.join(format!("{name}.oci"));
        check(
            Command::new("skopeo")
                .args(["--override-arch", arch, "copy"])
                .arg(format!("oci:{}:{TAG}", back.display()))
                .arg(format!("oci:{}:{name}", single.display())),
        );
        let want = &platforms[usize::from(arch == "arm64")].1;
        assert_eq!(&manifest_digest(&single, name), want, "{arch}");
        // --platform on a single image checks it.
        let other = if arch == "arm64" {
            "linux/amd64"
        } else {
            "linux/arm64"
        };
        let wrong = crate::util::run(
            mkimage()
                .arg("inspect")
                .arg(format!("{}:{name}", single.display()))
                .args(["--platform", other, "--no-files"]),
        );
        assert_eq!(wrong.status.code(), Some(2), "{wrong}");
        assert!(
            wrong
                .stderr
                .contains(&format!("has no image for platform {other}")),
            "{wrong}"
        );
        let out = if arch == "arm64" {
            let bundle = Bundle::unpack(&single, name);
            run_in_rootfs("qemu-aarch64-static", &bundle, "/usr/local/bin/hellocc")
        } else {
            run_image(&single, name, RunOpts::default())
        };
        out.assert_success();
        assert_eq!(out.stdout, "hello from c++ 64\n", "{arch}");
    }
}

/// The kernel's binfmt_misc entry that hands arm64 ELF executables to
/// qemu: magic and mask as Debian's qemu-user-static registers them (its
/// /usr/share/binfmts/qemu-aarch64), with `F` so the interpreter is opened
/// now and works inside the container's root, where it does not exist.
const BINFMT_AARCH64: &str = ":mkimage-test-aarch64:M::\\x7fELF\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\xb7\\x00:\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff:/usr/bin/qemu-aarch64-static:F";

/// binfmt_misc mounted and an arm64 entry registered (by the system's
/// qemu-user-static, or here); dropping it removes only what it added.
struct Binfmt {
    added: Option<std::path::PathBuf>,
    mounted: bool,
}

impl Binfmt {
    fn aarch64() -> Binfmt {
        let root = Path::new("/proc/sys/fs/binfmt_misc");
        let mut mounted = false;
        if !root.join("register").exists() {
            check(
                Command::new("mount")
                    .args(["-t", "binfmt_misc", "binfmt_misc"])
                    .arg(root),
            );
            mounted = true;
        }
        let system = ["qemu-aarch64", "mkimage-test-aarch64"]
            .iter()
            .any(|n| root.join(n).exists());
        let mut added = None;
        if !system {
            std::fs::write(root.join("register"), BINFMT_AARCH64)
                .expect("register qemu-aarch64-static with binfmt_misc");
            added = Some(root.join("mkimage-test-aarch64"));
        }
        Binfmt { added, mounted }
    }
}

impl Drop for Binfmt {
    fn drop(&mut self) {
        if let Some(entry) = &self.added {
            let _ = std::fs::write(entry, "-1");
        }
        if self.mounted {
            let _ = Command::new("umount")
                .arg("/proc/sys/fs/binfmt_misc")
                .status();
        }
    }
}

#[test]
#[ignore = "needs g++-aarch64-linux-gnu, qemu-user-static, runc, umoci and root (binfmt_misc)"]
fn an_arm64_image_runs_under_runc_through_binfmt_misc() {
    for tool in [
        "aarch64-linux-gnu-g++",
        "qemu-aarch64-static",
        "runc",
        "umoci",
    ] {
        require_tool(tool);
    }
    require_root();
    let dir = tempdir();
    let d = dir.path();
    std::fs::write(d.join("hello.cc"), HELLO_CC).expect("write hello.cc");
    std::fs::create_dir_all(d.join("out/arm64")).expect("mkdir out");
    check(Command::new("aarch64-linux-gnu-g++").current_dir(d).args([
        "-O2",
        "-o",
        "out/arm64/hellocc",
        "hello.cc",
    ]));
    build(d, "arm.oci", "arm:1", &["--platform", "linux/arm64"]);
    let _binfmt = Binfmt::aarch64();
    // runc executes the image's own arm64 program; the kernel runs it
    // through qemu. The default entrypoint is the program itself.
    let out = run_image(&d.join("arm.oci"), "arm:1", RunOpts::default());
    out.assert_success();
    assert_eq!(out.stdout, "hello from c++ 64\n");
}
