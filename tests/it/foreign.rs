//! Foreign roots: images and `mkimage ldd` for other architectures, checked
//! against that architecture's own glibc loader run under Debian's
//! qemu-user-static. Two kinds of root: Debian's cross sysroots
//! (/usr/<triplet> from the libc6-<arch>-cross packages) and a full arm64
//! root made by `mmdebstrap --variant=extract`, which runs nothing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::{Bundle, check, config, mkimage, require_root, require_tool, run, tempdir};

const TAG: &str = "foreign:1";

const HELLO_C: &str = r#"#include <stdio.h>
#include <math.h>
int main(int argc, char **argv) {
    (void)argv;
    printf("hello from %d-bit %s, sqrt(2)=%.3f\n", (int)(8 * sizeof(void *)),
           *(const char *)&(int){1} ? "LE" : "BE", sqrt(2.0 * argc));
    return 0;
}
"#;
pub(crate) const HELLO_CC: &str = r#"#include <iostream>
#include <string>
#include <vector>
int main() {
    std::vector<std::string> words{"hello", "from", "c++"};
    for (const auto &w : words) std::cout << w << ' ';
    std::cout << sizeof(void *) * 8 << std::endl;
}
"#;

/// One Debian cross architecture: compiler, sysroot, qemu, platform.
struct Cross {
    triplet: &'static str,
    qemu: &'static str,
    platform: (&'static str, Option<&'static str>),
    line: &'static str,
}

const CROSS: &[Cross] = &[
    Cross {
        triplet: "aarch64-linux-gnu",
        qemu: "qemu-aarch64-static",
        platform: ("arm64", Some("v8")),
        line: "hello from 64-bit LE, sqrt(2)=1.414",
    },
    Cross {
        triplet: "arm-linux-gnueabihf",
        qemu: "qemu-arm-static",
        platform: ("arm", Some("v7")),
        line: "hello from 32-bit LE, sqrt(2)=1.414",
    },
    Cross {
        triplet: "powerpc64le-linux-gnu",
        qemu: "qemu-ppc64le-static",
        platform: ("ppc64le", None),
        line: "hello from 64-bit LE, sqrt(2)=1.414",
    },
    Cross {
        triplet: "s390x-linux-gnu",
        qemu: "qemu-s390x-static",
        platform: ("s390x", None),
        line: "hello from 64-bit BE, sqrt(2)=1.414",
    },
];

/// `mkimage -o LAYOUT -t TAG --sysroot ROOT --from-binary=PROG:/usr/local/bin/NAME`.
fn build(layout: &Path, root: &Path, prog: &Path, extra: &[&str]) -> crate::util::Output {
    let name = prog.file_name().expect("a file name").to_string_lossy();
    run(mkimage()
        .env("SOURCE_DATE_EPOCH", "0")
        .arg("-o")
        .arg(layout)
        .args(["-t", TAG])
        // A cross sysroot has no CA bundle or tzdata: they are the same
        // files on every architecture, so the host's serve.
        .args([
            "--ca-certs",
            "/etc/ssl/certs/ca-certificates.crt",
            "--tzdata",
            "none",
        ])
        .arg("--sysroot")
        .arg(root)
        .arg(format!(
            "--from-binary={}:/usr/local/bin/{name}",
            prog.display()
        ))
        .args(extra))
}

/// The unpacked image runs its program under qemu with the image's own
/// loader and libraries only (`-L ROOTFS`).
pub(crate) fn run_in_rootfs(qemu: &str, bundle: &Bundle, prog: &str) -> crate::util::Output {
    let rootfs = bundle.rootfs();
    run(Command::new(qemu)
        .arg("-L")
        .arg(&rootfs)
        .arg(rootfs.join(prog.trim_start_matches('/')))
        .env_remove("QEMU_LD_PREFIX"))
}

#[test]
#[ignore = "needs the -cross gcc packages, qemu-user-static, umoci and root"]
fn cross_sysroot_images_run_under_qemu() {
    require_root();
    for arch in CROSS {
        let gcc = format!("{}-gcc", arch.triplet);
        require_tool(&gcc);
        require_tool(arch.qemu);
        let sysroot = PathBuf::from("/usr").join(arch.triplet);
        let dir = tempdir();
        let src = dir.path().join("hello.c");
        std::fs::write(&src, HELLO_C).expect("write hello.c");
        let prog = dir.path().join("hello");
        check(
            Command::new(&gcc)
                .arg("-O2")
                .arg("-o")
                .arg(&prog)
                .arg(&src)
                .arg("-lm"),
        );

        let layout = dir.path().join("img.oci");
        build(&layout, &sysroot, &prog, &[]).assert_success();
        let cfg = config(&layout, TAG);
        assert_eq!(
            (cfg["architecture"].as_str(), cfg["variant"].as_str()),
            (Some(arch.platform.0), arch.platform.1),
            "{}: {cfg}",
            arch.triplet
        );
        let bundle = Bundle::unpack(&layout, TAG);
        let out = run_in_rootfs(arch.qemu, &bundle, "/usr/local/bin/hello");
        out.assert_success();
        assert_eq!(out.stdout, format!("{}\n", arch.line), "{}", arch.triplet);

        // --platform is checked against the program.
        let wrong = if arch.platform.0 == "s390x" {
            "linux/amd64"
        } else {
            "linux/s390x"
        };
        let layout2 = dir.path().join("wrong.oci");
        let out = build(&layout2, &sysroot, &prog, &["--platform", wrong]);
        assert!(!out.status.success(), "{out}");
        assert!(
            out.stderr.contains(&format!("--platform says {wrong}"))
                && out.stderr.contains(&prog.display().to_string()),
            "{out}"
        );
    }
}

#[test]
#[ignore = "needs g++-aarch64-linux-gnu, libstdc++6-arm64-cross, qemu-user-static, umoci and root"]
fn arm64_cxx_image_runs_under_qemu() {
    require_root();
    require_tool("aarch64-linux-gnu-g++");
    require_tool("qemu-aarch64-static");
    let dir = tempdir();
    let src = dir.path().join("hello.cc");
    std::fs::write(&src, HELLO_CC).expect("write hello.cc");
    let prog = dir.path().join("hellocc");
    check(
        Command::new("aarch64-linux-gnu-g++")
            .arg("-O2")
            .arg("-o")
            .arg(&prog)
            .arg(&src),
    );
    let layout = dir.path().join("img.oci");
    build(
        &layout,
        Path::new("/usr/aarch64-linux-gnu"),
        &prog,
        &["--platform", "linux/arm64"],
    )
    .assert_success();
    let bundle = Bundle::unpack(&layout, TAG);
    for lib in ["libstdc++.so.6", "libgcc_s.so.1", "libm.so.6", "libc.so.6"] {
        assert!(
            bundle.rootfs().join("lib").join(lib).exists(),
            "/lib/{lib} missing from the image"
        );
    }
    let out = run_in_rootfs("qemu-aarch64-static", &bundle, "/usr/local/bin/hellocc");
    out.assert_success();
    assert_eq!(out.stdout, "hello from c++ 64\n");
}

/// An arm64 Debian 12 root with a few real packages, made once and kept
/// under target/ (mmdebstrap downloads a few tens of MB). Its ld.so.cache
/// is written by the root's own ldconfig under qemu, as a booted system
/// would have it.
fn arm64_root() -> PathBuf {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/foreign");
    let root = base.join("arm64-bookworm");
    if root.join("etc/ld.so.cache").exists() {
        return root;
    }
    require_tool("mmdebstrap");
    std::fs::create_dir_all(&base).expect("create target/foreign");
    let tmp = base.join("arm64-bookworm.tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    if !root.exists() {
        check(
            Command::new("mmdebstrap")
                .args(["--quiet", "--variant=extract", "--architectures=arm64"])
                .arg("--include=libc6,libc-bin,curl,python3-minimal,openssl")
                .arg("bookworm")
                .arg(&tmp)
                .arg("http://deb.debian.org/debian"),
        );
        std::fs::rename(&tmp, &root).expect("move the root into place");
    }
    // ldconfig is static: it runs under qemu and chroots into the root.
    // Debian's /sbin/ldconfig is a shell wrapper around ldconfig.real.
    let ldconfig = ["sbin/ldconfig.real", "sbin/ldconfig"]
        .iter()
        .map(|p| root.join(p))
        .find(|p| p.exists())
        .expect("libc-bin's ldconfig in the root");
    check(
        Command::new("qemu-aarch64-static")
            .arg(ldconfig)
            .arg("-r")
            .arg(&root),
    );
    root
}

/// Every ELF file of `root` under `dirs`, by image path.
fn elf_files(root: &Path, dirs: &[&str]) -> Vec<PathBuf> {
    let mut out = BTreeSet::new();
    for d in dirs {
        for e in walkdir::WalkDir::new(root.join(d))
            .follow_links(false)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
        {
            let mut magic = [0u8; 4];
            let is_elf = std::fs::File::open(e.path())
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
                .is_ok()
                && &magic == b"\x7fELF";
            if is_elf && let Ok(rel) = e.path().strip_prefix(root) {
                out.insert(Path::new("/").join(rel));
            }
        }
    }
    out.into_iter().collect()
}

/// What the root's own loader opens for `file` (an image path), run under
/// qemu with the root as its prefix: paths it opens, names not found.
/// `None` when it is no dynamic program to the loader.
fn loader_list(
    root: &Path,
    file: &Path,
    qemu: &str,
    loader: &str,
) -> Option<(BTreeSet<String>, BTreeSet<String>)> {
    let out = run(Command::new(qemu)
        .arg(root.join(loader))
        .arg("--list")
        .arg(file)
        .env("QEMU_LD_PREFIX", root));
    let mut found = BTreeSet::new();
    let mut missing = BTreeSet::new();
    // Paths compare as the real files inside the root: the loader names
    // itself by PT_INTERP or its soname, mkimage by the path it finds.
    let real = |p: &str| {
        // The loader prints its own path as qemu was given it (on the host).
        let p = Path::new(p)
            .strip_prefix(root)
            .map_or(p.to_string(), |r| format!("/{}", r.display()));
        let host = root.join(p.trim_start_matches('/'));
        std::fs::canonicalize(&host)
            .unwrap_or(host)
            .display()
            .to_string()
    };
    for line in out.stdout.lines().map(str::trim) {
        match line.split_once(" => ") {
            Some((name, rest)) if rest.starts_with("not found") => {
                missing.insert(name.to_string());
            }
            // The interpreter: the loader prints its host path after =>.
            Some((name, _)) if name.starts_with('/') => {
                found.insert(real(name));
            }
            Some((_, rest)) => {
                found.insert(real(rest.split(" (").next().unwrap_or(rest)));
            }
            // The loader itself, needed by a library: "/lib/ld-... (0x...)".
            None if line.starts_with('/') => {
                found.insert(real(line.split(" (").next().unwrap_or(line)));
            }
            None => {} // the vDSO line "(0x...)", "statically linked"
        }
    }
    (!found.is_empty() || !missing.is_empty()).then_some((found, missing))
}

/// `mkimage ldd --json` on `files` (image paths of `root`) against the
/// root's own loader under `qemu`: how many were compared, and each
/// mismatch described.
fn compare_with_loader(
    root: &Path,
    files: &[PathBuf],
    qemu: &str,
    loader: &str,
) -> (usize, Vec<String>) {
    let out = mkimage()
        .args(["ldd", "--json", "--no-companions", "--sysroot"])
        .arg(root)
        .args(
            files
                .iter()
                .map(|f| root.join(f.strip_prefix("/").unwrap_or(f))),
        )
        .output()
        .expect("run mkimage ldd");
    let ours: Value = serde_json::from_slice(&out.stdout).expect("mkimage ldd --json output");
    let ours = ours.as_array().expect("a JSON array");
    assert_eq!(ours.len(), files.len());

    let (mut compared, mut mismatches) = (0, Vec::new());
    for (file, mine) in files.iter().zip(ours) {
        let want = loader_list(root, file, qemu, loader);
        if let Some(err) = mine.get("error") {
            if want.is_some() {
                mismatches.push(format!("{}: mkimage failed: {err}", file.display()));
            }
            continue;
        }
        let strings = |key: &str, field: &str| -> BTreeSet<String> {
            mine[key]
                .as_array()
                .expect("array")
                .iter()
                .map(|o| o[field].as_str().expect("string").to_string())
                .collect()
        };
        let got = (strings("objects", "host"), strings("missing", "name"));
        let want = want.unwrap_or_default();
        compared += 1;
        if got != want {
            mismatches.push(format!(
                "{}:\n  only the loader: {:?} {:?}\n  only mkimage: {:?} {:?}",
                file.display(),
                want.0.difference(&got.0).collect::<Vec<_>>(),
                want.1.difference(&got.1).collect::<Vec<_>>(),
                got.0.difference(&want.0).collect::<Vec<_>>(),
                got.1.difference(&want.1).collect::<Vec<_>>(),
            ));
        }
    }
    (compared, mismatches)
}

#[test]
#[ignore = "needs mmdebstrap (Debian's mirror, once) and qemu-user-static"]
fn ldd_agrees_with_the_arm64_loader_on_an_arm64_root() {
    require_tool("qemu-aarch64-static");
    let root = arm64_root();
    let files = elf_files(&root, &["usr/bin", "usr/sbin", "usr/lib/aarch64-linux-gnu"]);
    assert!(files.len() >= 150, "only {} ELF files", files.len());
    let (compared, mismatches) = compare_with_loader(
        &root,
        &files,
        "qemu-aarch64-static",
        "lib/ld-linux-aarch64.so.1",
    );
    println!(
        "arm64 root: compared mkimage ldd with the arm64 loader on {compared} ELF files, {} mismatches",
        mismatches.len()
    );
    assert!(compared >= 150, "compared only {compared}");
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

/// Each cross sysroot's libraries, resolved by mkimage and by that
/// architecture's own loader under qemu: the same files.
#[test]
#[ignore = "needs the -cross libc packages and qemu-user-static"]
fn ldd_agrees_with_each_cross_loader_on_its_sysroot() {
    let loaders = [
        ("aarch64-linux-gnu", "lib/ld-linux-aarch64.so.1"),
        ("arm-linux-gnueabihf", "lib/ld-linux-armhf.so.3"),
        ("powerpc64le-linux-gnu", "lib/ld64.so.2"),
        ("s390x-linux-gnu", "lib/ld64.so.1"),
    ];
    let mut failures = Vec::new();
    for (arch, (triplet, loader)) in CROSS.iter().zip(loaders) {
        assert_eq!(arch.triplet, triplet);
        require_tool(arch.qemu);
        let root = PathBuf::from("/usr").join(triplet);
        let files = elf_files(&root, &["lib"]);
        assert!(
            files.len() >= 15,
            "{triplet}: only {} ELF files",
            files.len()
        );
        let (compared, mismatches) = compare_with_loader(&root, &files, arch.qemu, loader);
        println!(
            "{triplet} sysroot: compared mkimage ldd with its loader on {compared} ELF files, {} mismatches",
            mismatches.len()
        );
        assert!(compared >= 15, "{triplet}: compared only {compared}");
        failures.extend(mismatches);
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
