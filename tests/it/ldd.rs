//! `mkimage ldd` against glibc's own loader (`ldd`) on the machine's real
//! binaries, and its behaviour on bad input.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::{cc, check, mkimage, require_tool, run, tempdir};

/// Directories whose ELF files are compared (the corpus).
const CORPUS: &[&str] = &[
    "/usr/bin",
    "/usr/sbin",
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/jvm",
];
const MIN_FILES: usize = 300;

/// Every regular ELF file under the corpus directories, by real path.
fn corpus() -> Vec<PathBuf> {
    let mut files = BTreeSet::new();
    for dir in CORPUS {
        for e in walkdir::WalkDir::new(dir)
            .follow_links(false)
            .into_iter()
            .filter_map(Result::ok)
        {
            if !e.file_type().is_file() {
                continue;
            }
            let mut magic = [0u8; 4];
            let is_elf = std::fs::File::open(e.path())
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
                .is_ok()
                && &magic == b"\x7fELF";
            if is_elf && let Ok(real) = std::fs::canonicalize(e.path()) {
                files.insert(real);
            }
        }
    }
    files.into_iter().collect()
}

/// What `ldd FILE` resolves: real paths of found files, names not found.
fn system_ldd(file: &Path) -> (BTreeSet<PathBuf>, BTreeSet<String>) {
    let out = Command::new("ldd").arg(file).output().expect("run ldd");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut found = BTreeSet::new();
    let mut missing = BTreeSet::new();
    for line in text.lines().map(str::trim) {
        let path = if let Some((name, rest)) = line.split_once("=>") {
            let rest = rest.trim();
            if rest.starts_with("not found") {
                missing.insert(name.trim().to_string());
                continue;
            }
            rest.split(" (").next().unwrap_or(rest)
        } else if line.starts_with('/') {
            line.split(" (").next().unwrap_or(line)
        } else {
            continue; // linux-vdso, "statically linked", "not a dynamic executable"
        };
        found.insert(std::fs::canonicalize(path).unwrap_or_else(|_| PathBuf::from(path)));
    }
    (found, missing)
}

#[test]
#[ignore = "slow: runs ldd on every ELF file under /usr"]
fn agrees_with_glibc_ldd_on_real_binaries() {
    require_tool("ldd");
    let files = corpus();
    assert!(
        files.len() >= MIN_FILES,
        "only {} ELF files found under {CORPUS:?}",
        files.len()
    );
    let out = mkimage()
        .args(["ldd", "--json", "--no-companions"])
        .args(&files)
        .output()
        .expect("run mkimage ldd");
    let ours: Value = serde_json::from_slice(&out.stdout).expect("mkimage ldd --json output");
    let ours = ours.as_array().expect("a JSON array");
    assert_eq!(ours.len(), files.len());

    let mut compared = 0;
    let mut mismatches = Vec::new();
    for (file, mine) in files.iter().zip(ours) {
        let (want, want_missing) = system_ldd(file);
        if let Some(err) = mine.get("error") {
            // Only files the loader cannot handle either may fail here.
            if !want.is_empty() {
                mismatches.push(format!("{}: mkimage failed: {err}", file.display()));
            }
            continue;
        }
        let got: BTreeSet<PathBuf> = mine["objects"]
            .as_array()
            .expect("objects")
            .iter()
            .map(|o| PathBuf::from(o["host"].as_str().expect("host")))
            .collect();
        let got_missing: BTreeSet<String> = mine["missing"]
            .as_array()
            .expect("missing")
            .iter()
            .map(|m| m["name"].as_str().expect("name").to_string())
            .collect();
        compared += 1;
        if got != want || got_missing != want_missing {
            mismatches.push(format!(
                "{}:\n  only ldd: {:?}\n  only mkimage: {:?}\n  not found by ldd: {:?}, by mkimage: {:?}",
                file.display(),
                want.difference(&got).collect::<Vec<_>>(),
                got.difference(&want).collect::<Vec<_>>(),
                want_missing,
                got_missing
            ));
        }
    }
    println!(
        "compared mkimage ldd with ldd on {compared} ELF files ({} total)",
        files.len()
    );
    assert!(compared >= MIN_FILES, "compared only {compared}");
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[test]
fn prints_closure_with_companions_and_reasons() {
    let out = check(mkimage().args(["ldd", "/usr/bin/curl"]));
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0].contains("/lib64/ld-linux-x86-64.so.2") && lines[0].ends_with("(interpreter)"),
        "{}",
        out.stdout
    );
    assert!(
        lines.iter().any(|l| l
            .trim_start()
            .starts_with("libcurl.so.4 => /lib/x86_64-linux-gnu/libcurl.so.4")),
        "{}",
        out.stdout
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("libgcc_s.so.1 =>") && l.contains("companion: glibc dlopens it")),
        "{}",
        out.stdout
    );
}

#[test]
fn missing_library_names_requester_and_every_directory() {
    let d = tempdir();
    let lib = cc(
        d.path(),
        "libgone.so",
        "int gone(void){return 1;}",
        &["-shared", "-fPIC", "-Wl,-soname,libgone.so"],
    );
    let exe = cc(
        d.path(),
        "app",
        "int gone(void); int main(void){return gone();}",
        &[
            &format!("-L{}", d.path().display()),
            "-lgone",
            "-Wl,-rpath,/nonexistent/rpath",
        ],
    );
    std::fs::remove_file(&lib).expect("remove lib");
    let out = run(mkimage().arg("ldd").arg(&exe));
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(out.stdout.contains("libgone.so => not found"), "{out}");
    for want in [
        "libgone.so (needed by ",
        "/nonexistent/rpath (RUNPATH of ",
        "/etc/ld.so.cache (ld.so.cache)",
        "/lib/x86_64-linux-gnu (system search path)",
        "/usr/lib (system search path)",
    ] {
        assert!(out.stderr.contains(want), "missing {want:?} in:\n{out}");
    }
}

#[test]
fn bad_inputs_give_clear_messages_and_exit_codes() {
    let d = tempdir();
    let script = d.path().join("tool.py");
    std::fs::write(&script, "#!/usr/bin/python3\nprint('hi')\n").expect("write");
    let text = d.path().join("notes.txt");
    std::fs::write(&text, "hello").expect("write");
    let trunc = d.path().join("trunc");
    let bytes = std::fs::read("/usr/bin/curl").expect("read curl");
    std::fs::write(&trunc, &bytes[..100]).expect("write");
    let loop_a = d.path().join("loop-a");
    std::os::unix::fs::symlink(d.path().join("loop-b"), &loop_a).expect("symlink");
    std::os::unix::fs::symlink(&loop_a, d.path().join("loop-b")).expect("symlink");
    let static_exe = cc(
        d.path(),
        "static",
        "int main(void){return 0;}",
        &["-static"],
    );

    let cases: Vec<(PathBuf, i32, &str)> = vec![
        (d.path().join("nope"), 2, "cannot read"),
        (d.path().to_path_buf(), 2, "is a directory"),
        (
            script,
            2,
            "is a script (#!/usr/bin/python3), not an ELF file; package it with --from-venv",
        ),
        (text, 2, "is not an ELF file"),
        (trunc, 2, "truncated or corrupt ELF"),
        (loop_a, 2, "symbolic links"),
        (static_exe, 0, "statically linked"),
    ];
    for (path, code, want) in cases {
        let out = run(mkimage().arg("ldd").arg(&path));
        assert_eq!(out.status.code(), Some(code), "{}: {out}", path.display());
        let all = format!("{}{}", out.stdout, out.stderr);
        assert!(
            all.contains(want),
            "{}: want {want:?} in {out}",
            path.display()
        );
        assert!(!all.contains("panicked"), "{out}");
    }
}

/// How many of /usr/bin's programs go into one image for the in-image
/// loader check (every Nth, so the sample spans the alphabet).
const IN_IMAGE_SAMPLE: usize = 80;

/// The loader inside the image agrees: for a broad sample of the
/// machine's programs packed into one image, `ld.so --list` run in the
/// unpacked rootfs finds every library.
#[test]
#[ignore = "needs root/umoci"]
fn loader_inside_the_image_finds_everything() {
    use crate::util::Bundle;
    require_tool("ldd");
    let mut programs: Vec<PathBuf> = corpus()
        .into_iter()
        .filter(|p| p.starts_with("/usr/bin") || p.starts_with("/usr/sbin"))
        .filter(|p| {
            let out = Command::new("ldd").arg(p).output().expect("run ldd");
            let text = String::from_utf8_lossy(&out.stdout);
            out.status.success() && text.contains("ld-linux") && !text.contains("not found")
        })
        .collect();
    assert!(
        programs.len() >= IN_IMAGE_SAMPLE,
        "only {} programs",
        programs.len()
    );
    let step = programs.len() / IN_IMAGE_SAMPLE;
    programs = programs
        .into_iter()
        .step_by(step)
        .take(IN_IMAGE_SAMPLE)
        .collect();

    let d = tempdir();
    let layout = d.path().join("many.oci");
    let mut cmd = mkimage();
    for (i, p) in programs.iter().enumerate() {
        cmd.arg("--from-binary")
            .arg(format!("{}:/bins/{i}", p.display()));
    }
    check(cmd.arg("-o").arg(&layout).args(["-t", "many:latest", "-q"]));
    let bundle = Bundle::unpack(&layout, "many:latest");
    let rootfs = bundle.rootfs();
    for (i, p) in programs.iter().enumerate() {
        let out = Command::new("chroot")
            .arg(&rootfs)
            .args([
                "/lib64/ld-linux-x86-64.so.2",
                "--list",
                &format!("/bins/{i}"),
            ])
            .output()
            .expect("run chroot");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && !text.contains("not found"),
            "{} (/bins/{i}) inside the image:\n{text}{}",
            p.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    println!(
        "the loader inside the image resolved {} programs",
        programs.len()
    );
}
