//! Hostile and careless input (issue 9): trees whose links lead to host
//! secrets, flags that would silently run as root, files that are not
//! what their names say, layouts tampered with or raced on. Each test
//! reads what mkimage wrote (or did not write) directly.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::util::{Kind, Output, layers, merged, mkimage, run, tempdir};

const TAG: &str = "hostile:test";

/// `mkimage -o LAYOUT -t TAG ARGS...`, however it ends.
fn build(layout: &Path, args: &[&str]) -> Output {
    run(mkimage()
        .env_remove("SOURCE_DATE_EPOCH")
        .arg("-o")
        .arg(layout)
        .args(["-t", TAG, "--tzdata", "none"])
        .args(args))
}

fn write_mode(path: &Path, data: &str, mode: u32) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, data).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn symlink(target: impl AsRef<Path>, at: &Path) {
    std::os::unix::fs::symlink(target.as_ref(), at)
        .unwrap_or_else(|e| panic!("symlink {}: {e}", at.display()));
}

/// A user's tree with links to the host's secrets: to `/etc/shadow` by a
/// relative path climbing out, to a directory holding a 0600 key, to
/// `/etc`, to `/` and to `/proc`. None of their targets gets in; the
/// links stay links and the build says how to add a target on purpose.
#[test]
fn links_out_of_a_user_tree_add_no_host_file() {
    let dir = tempdir();
    let ssh = dir.path().join("home/.ssh");
    write_mode(&ssh.join("id_rsa"), "PRIVATE KEY\n", 0o600);
    let app = dir.path().join("app");
    write_mode(&app.join("index.html"), "<h1>hi</h1>\n", 0o600);
    let up = "../".repeat(app.components().count() + 3);
    symlink(format!("{up}etc/shadow"), &app.join("x"));
    symlink(&ssh, &app.join("keys"));
    symlink("/etc", &app.join("etc"));
    symlink("/", &app.join("root"));
    symlink("/proc/self/environ", &app.join("env"));
    let layout = dir.path().join("out.oci");
    let out = build(&layout, &["--from-dir", &format!("{}:/app", app.display())]);
    out.assert_success();
    let all = merged(&layers(&layout, TAG));
    let leaked: Vec<&String> = all
        .keys()
        .filter(|p| {
            p.starts_with("etc/shadow")
                || p.ends_with("id_rsa")
                || p.starts_with("proc")
                || p.starts_with(ssh.to_str().expect("UTF-8").trim_start_matches('/'))
        })
        .collect();
    assert!(leaked.is_empty(), "host files in the image: {leaked:?}");
    for (at, to) in [
        ("app/x", format!("{up}etc/shadow")),
        ("app/keys", ssh.display().to_string()),
        ("app/etc", "/etc".into()),
        ("app/root", "/".into()),
    ] {
        assert_eq!(
            all.get(at).map(|e| &e.kind),
            Some(&Kind::Symlink(to.clone())),
            "{at}"
        );
    }
    // Inside the tree the user named, the owner's read bit is shared.
    assert_eq!(all["app/index.html"].mode & 0o777, 0o644);
    assert!(
        out.stderr.contains(&format!(
            "/app/keys -> {} leads out of the tree and its target is not in the image: \
             kept as a dangling link; add the target with --include {}[:DST]",
            ssh.display(),
            ssh.display()
        )),
        "{out}"
    );
    // /etc is in the image (base files): that link is fine and quiet.
    assert!(!out.stderr.contains("/app/etc ->"), "{out}");
}

/// `--follow-links` brings the targets back, but keeps their host
/// permissions (the key stays 0600, unreadable to the image's user), and
/// never reads the kernel's file systems.
#[test]
fn followed_links_keep_host_permissions_and_never_reach_proc() {
    let dir = tempdir();
    let ssh = dir.path().join("home/.ssh");
    write_mode(&ssh.join("id_rsa"), "PRIVATE KEY\n", 0o600);
    write_mode(&ssh.join("config"), "Host *\n", 0o640);
    let app = dir.path().join("app");
    write_mode(&app.join("run.sh"), "#!/bin/sh\n", 0o700);
    symlink(&ssh, &app.join("keys"));
    symlink("/proc/self", &app.join("me"));
    symlink("/sys/kernel", &app.join("kernel"));
    let layout = dir.path().join("out.oci");
    let out = build(
        &layout,
        &[
            "--from-dir",
            &format!("{}:/app", app.display()),
            "--follow-links",
        ],
    );
    out.assert_success();
    let all = merged(&layers(&layout, TAG));
    let key = ssh.join("id_rsa");
    let key = key.to_str().expect("UTF-8").trim_start_matches('/');
    assert_eq!(all[key].mode & 0o777, 0o600, "the key keeps its mode");
    let config = ssh.join("config");
    let config = config.to_str().expect("UTF-8").trim_start_matches('/');
    assert_eq!(all[config].mode & 0o777, 0o600, "group bits are not kept");
    assert_eq!(all["app/run.sh"].mode & 0o777, 0o755, "the user's own file");
    assert!(
        !all.keys()
            .any(|p| p.starts_with("proc") || p.starts_with("sys")),
        "{:?}",
        all.keys()
            .filter(|p| p.starts_with("proc"))
            .collect::<Vec<_>>()
    );
    assert!(
        out.stderr
            .contains("/app/me -> /proc/self leads into /proc"),
        "{out}"
    );
    assert!(
        out.stderr
            .contains("/app/kernel -> /sys/kernel leads into /sys"),
        "{out}"
    );
}

/// A file of the kernel's file systems named directly is refused with a
/// message saying why, not added with a size that lies.
#[test]
fn kernel_files_named_directly_are_refused() {
    let dir = tempdir();
    let layout = dir.path().join("out.oci");
    for path in ["/proc/cpuinfo", "/proc/self", "/dev/null"] {
        let out = build(&layout, &["--include", &format!("{path}:/x")]);
        assert!(!out.status.success(), "{path}: {out}");
        assert!(
            out.stderr.contains(path) && out.stderr.contains("the kernel makes up"),
            "{path}: {out}"
        );
        assert!(!layout.exists(), "{path}: nothing is written");
    }
}

/// A FIFO in a tree (a leftover of a running program) is left out with a
/// warning instead of failing the whole tree.
#[test]
fn a_fifo_in_a_tree_is_left_out() {
    let dir = tempdir();
    let app = dir.path().join("app");
    write_mode(&app.join("a.txt"), "a\n", 0o644);
    let fifo = app.join("pipe");
    let made = run(std::process::Command::new("mkfifo").arg(&fifo));
    made.assert_success();
    let layout = dir.path().join("out.oci");
    let out = build(&layout, &["--from-dir", &format!("{}:/app", app.display())]);
    out.assert_success();
    let all = merged(&layers(&layout, TAG));
    assert!(all.contains_key("app/a.txt"));
    assert!(!all.contains_key("app/pipe"));
    assert!(
        out.stderr.contains(&format!(
            "{} is a device, socket or FIFO: left out",
            fifo.display()
        )),
        "{out}"
    );
}

/// `--user` is checked before any work and resolved against the image's
/// own /etc/passwd: nothing silently runs as root.
#[test]
fn user_is_validated_and_names_are_resolved() {
    let dir = tempdir();
    let layout = dir.path().join("out.oci");
    let bin = "/usr/bin/true";
    for (user, why) in [
        (":", "the user is empty"),
        ("1:", "the group is empty"),
        ("1:2:3", "with one ':'"),
        ("99999999999", "out of range"),
        ("abc", "user \"abc\" is not in the image's /etc/passwd"),
        (
            "nonroot:wheel",
            "group \"wheel\" is not in the image's /etc/group",
        ),
    ] {
        let out = build(&layout, &["--from-binary", bin, "--user", user]);
        assert!(!out.status.success(), "--user {user}: {out}");
        assert!(out.stderr.contains(why), "--user {user}: {out}");
        assert!(!layout.exists(), "--user {user}: nothing is written");
    }
    for (user, want) in [
        ("nonroot", "65532:65532"),
        ("nobody:tty", "65534:5"),
        ("1000", "1000"),
    ] {
        build(&layout, &["--from-binary", bin, "--user", user]).assert_success();
        let config = crate::util::config(&layout, TAG);
        assert_eq!(config["config"]["User"], want, "--user {user}");
    }
    let out = build(&layout, &["--from-binary", bin, "--user", "root"]);
    out.assert_success();
    assert!(
        out.stderr
            .contains("--user root: the image runs as root (uid 0)"),
        "{out}"
    );
}

/// An entrypoint nobody (or not the image's user) may execute is refused;
/// one the image lacks is a warning.
#[test]
fn an_entrypoint_the_user_cannot_run_is_refused() {
    let dir = tempdir();
    let layout = dir.path().join("out.oci");
    let exe = dir.path().join("app");
    std::fs::copy("/usr/bin/true", &exe).expect("copy");
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o000)).expect("chmod");
    let out = build(&layout, &["--from-binary", exe.to_str().expect("UTF-8")]);
    assert!(!out.status.success(), "{out}");
    assert!(
        out.stderr
            .contains("the entrypoint /usr/local/bin/app (/usr/local/bin/app) has mode 0000: nobody may run it"),
        "{out}"
    );
    assert!(!layout.exists());
    let out = build(
        &layout,
        &[
            "--from-binary",
            "/usr/bin/true",
            "--entrypoint",
            "/etc/passwd",
        ],
    );
    assert!(!out.status.success(), "{out}");
    assert!(
        out.stderr.contains("has mode 0644: nobody may run it"),
        "{out}"
    );
    let out = build(
        &layout,
        &[
            "--from-binary",
            "/usr/bin/true",
            "--entrypoint",
            "/bin/sh -c x",
        ],
    );
    out.assert_success();
    assert!(
        out.stderr
            .contains("the entrypoint /bin/sh is not in the image"),
        "{out}"
    );
}

/// Inputs may not silently replace the files mkimage generates: a user's
/// /etc/passwd, a directory or a symlink where it goes.
#[test]
fn inputs_over_generated_base_files_are_refused() {
    let dir = tempdir();
    let layout = dir.path().join("out.oci");
    let passwd = dir.path().join("passwd");
    std::fs::write(&passwd, "root:x:0:0::/:/bin/sh\n").expect("write");
    let link = dir.path().join("passwd-link");
    symlink("/etc/hostname", &link);
    let passwd_dir = dir.path().join("pw");
    std::fs::create_dir(&passwd_dir).expect("mkdir");
    for (input, why) in [
        (
            format!("{}:/etc/passwd", passwd.display()),
            "/etc/passwd is generated by mkimage (the users and groups); leave it out of the inputs and use --user UID:GID",
        ),
        (
            format!("{}:/etc/passwd", passwd_dir.display()),
            "/etc/passwd is generated by mkimage",
        ),
        (
            format!("{}:/etc/passwd", link.display()),
            "/etc/passwd is generated by mkimage",
        ),
        (
            format!("{}:/etc/nsswitch.conf", passwd.display()),
            "/etc/nsswitch.conf is generated by mkimage (a base file or directory)",
        ),
    ] {
        let out = build(
            &layout,
            &["--from-binary", "/usr/bin/true", "--include", &input],
        );
        assert!(!out.status.success(), "{input}: {out}");
        assert!(out.stderr.contains(why), "{input}: {out}");
        assert!(!layout.exists(), "{input}: nothing is written");
    }
}

/// Every PEM block of `--ca-cert`/`--ca-certs` must parse as a
/// certificate, or the image's whole bundle would fail to load.
#[test]
fn a_pem_block_that_is_not_a_certificate_is_refused() {
    let dir = tempdir();
    let layout = dir.path().join("out.oci");
    let bad = dir.path().join("corp.pem");
    std::fs::write(
        &bad,
        "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n",
    )
    .expect("write");
    for flag in ["--ca-cert", "--ca-certs"] {
        let out = build(
            &layout,
            &[
                "--from-binary",
                "/usr/bin/true",
                flag,
                bad.to_str().expect("UTF-8"),
            ],
        );
        assert!(!out.status.success(), "{flag}: {out}");
        assert!(
            out.stderr.contains(&format!(
                "{}: PEM block 1 (line 1) is not an X.509 certificate",
                bad.display()
            )),
            "{flag}: {out}"
        );
        assert!(!layout.exists());
    }
}

/// Files read whole are capped: `--profile /dev/zero` fails at once.
#[test]
fn files_read_whole_are_capped() {
    let dir = tempdir();
    let layout = dir.path().join("out.oci");
    for flag in ["--profile", "--ca-cert", "--ca-certs"] {
        let started = std::time::Instant::now();
        let out = build(
            &layout,
            &["--from-binary", "/usr/bin/true", flag, "/dev/zero"],
        );
        assert!(!out.status.success(), "{flag}: {out}");
        assert!(
            out.stderr.contains("/dev/zero") && out.stderr.contains("larger than"),
            "{flag}: {out}"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{flag}"
        );
    }
}

/// The biggest layer blob of the image tagged `TAG`, flipped in one byte
/// in the middle: same name, same size, wrong bytes.
fn corrupt_biggest_layer(layout: &Path) -> std::path::PathBuf {
    let manifest = crate::util::manifest(layout, TAG);
    let layer = manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .max_by_key(|l| l["size"].as_u64())
        .expect("a layer")
        .clone();
    let digest = layer["digest"].as_str().expect("digest");
    let path = layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    let mut bytes = std::fs::read(&path).expect("read blob");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&path, bytes).expect("corrupt");
    path
}

/// A corrupt blob of the right size is not reused by the next build,
/// and inspect reports it as a digest mismatch (exit 2), with or without
/// the file listing.
#[test]
fn a_corrupt_blob_is_reported_and_not_reused() {
    let dir = tempdir();
    let layout = dir.path().join("out.oci");
    build(&layout, &["--from-binary", "/usr/bin/true"]).assert_success();
    let blob = corrupt_biggest_layer(&layout);
    for args in [
        &["inspect"][..],
        &["inspect", "--no-files"],
        &["inspect", "--json"],
    ] {
        let out = run(mkimage().args(args).arg(&layout));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out}");
        assert!(
            out.stderr
                .contains(&format!("{} has digest sha256:", blob.display())),
            "{args:?}: {out}"
        );
    }
    build(&layout, &["--from-binary", "/usr/bin/true"]).assert_success();
    let out = run(mkimage().arg("inspect").arg(&layout));
    out.assert_success();
}

/// A file whose EI_CLASS was flipped gets one verdict from `ldd` and the
/// build: a corrupt ELF, exit 2; not "statically linked".
#[test]
fn a_corrupt_elf_gets_one_verdict() {
    let dir = tempdir();
    let flipped = dir.path().join("flipped");
    let mut bytes = std::fs::read("/usr/bin/true").expect("read");
    bytes[4] = 1; // ELFCLASS32
    std::fs::write(&flipped, bytes).expect("write");
    let ldd = run(mkimage().arg("ldd").arg(&flipped));
    let built = build(
        &dir.path().join("out.oci"),
        &["--from-binary", flipped.to_str().expect("UTF-8")],
    );
    for out in [&ldd, &built] {
        assert_eq!(out.status.code(), Some(2), "{out}");
        assert!(out.stderr.contains("truncated or corrupt ELF"), "{out}");
        assert!(!out.stdout.contains("statically linked"), "{out}");
    }
}

/// File names with control characters cannot forge lines of the human
/// listing; `--json` keeps names that are not UTF-8 lossless.
#[test]
fn inspect_escapes_names_and_keeps_raw_bytes() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempdir();
    let app = dir.path().join("app");
    std::fs::create_dir(&app).expect("mkdir");
    std::fs::write(app.join("evil\n-rw-r--r--  0:0  1  1  FORGED"), "x").expect("write");
    let raw: &[u8] = b"caf\xe9";
    std::fs::write(app.join(std::ffi::OsStr::from_bytes(raw)), "y").expect("write");
    let layout = dir.path().join("out.oci");
    build(&layout, &["--from-dir", &format!("{}:/app", app.display())]).assert_success();
    let out = run(mkimage().arg("inspect").arg(&layout));
    out.assert_success();
    assert!(
        out.stdout
            .contains("/app/evil\\n-rw-r--r--  0:0  1  1  FORGED"),
        "{out}"
    );
    assert!(
        !out.stdout
            .lines()
            .any(|l| l.ends_with("FORGED") && !l.contains("evil")),
        "{out}"
    );
    let json = run(mkimage().args(["inspect", "--json"]).arg(&layout));
    json.assert_success();
    let report: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    let files = report["files"].as_array().expect("files");
    let cafe = files
        .iter()
        .find(|f| {
            f["path"]
                .as_str()
                .is_some_and(|p| p.starts_with("/app/caf"))
        })
        .expect("the non-UTF-8 file");
    use base64::Engine as _;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(cafe["path_base64"].as_str().expect("path_base64"))
        .expect("base64");
    assert!(decoded.ends_with(raw), "{decoded:?}");
}
