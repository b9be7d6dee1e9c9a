//! `mkimage --from-binary` end to end: images built from real binaries (small
//! C programs, curl, id, date, mkimage itself) are run with runc and podman,
//! read with skopeo and oci-image-tool, and taken apart layer by layer; plus
//! output-directory handling, reproducibility, SOURCE_DATE_EPOCH and bad input.
//!
//! Tests that run containers or unpack images need root and runc and are
//! `#[ignore = "needs root/runc"]`; the rest read the layout directly.

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpStream;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use serde_json::json;

use crate::util::{
    Bundle, Kind, Layer, Output, RunOpts, cc, check, config, free_port, index, index_refs,
    layer_digests, layers, manifest, manifest_digest, merged, mkimage, podman_run, require_tool,
    resolve, run, run_image, skopeo_inspect, tempdir, validate_layout,
};

/// The tag most tests build, as stored in `org.opencontainers.image.ref.name`
/// and addressed by the tools (`oci:DIR:app:test`).
const TAG: &str = "app:test";

/// The image's /etc/passwd, byte for byte (the spec's).
const PASSWD: &str = "root:x:0:0:root:/root:/sbin/nologin\n\
                      nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n\
                      nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n";

/// The groups the image's /etc/group defines, with their ids.
const GROUPS: &[(&str, u32)] = &[
    ("root", 0),
    ("tty", 5),
    ("staff", 50),
    ("nonroot", 65532),
    ("nobody", 65534),
];

const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
const SSL_CERT_FILE: &str = "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt";
const PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The uid and gid images run as unless `--user` says otherwise.
const NONROOT: u32 = 65532;

/// What [`STATIC_C`] prints.
const STATIC_LINE: &str = "static hello from mkimage";
const STATIC_C: &str = r#"
#include <stdio.h>
int main(void) { puts("static hello from mkimage"); return 0; }
"#;

/// A dynamically linked program that needs only libc: prints `NAME`.
fn libc_program(dir: &Path, name: &str) -> PathBuf {
    let source = format!("#include <stdio.h>\nint main(void) {{ puts(\"{name}\"); return 0; }}\n");
    cc(dir, name, &source, &["-O2"])
}

/// `mkimage` without SOURCE_DATE_EPOCH from the test's environment, so
/// `created` is the documented default unless a test sets it.
fn mkimage_clean() -> Command {
    let mut cmd = mkimage();
    cmd.env_remove("SOURCE_DATE_EPOCH");
    cmd
}

/// `--from-binary=SRC` as one argument.
fn from_binary(src: &Path) -> String {
    format!("--from-binary={}", src.display())
}

/// `--from-binary=SRC:DST` as one argument.
fn from_binary_to(src: &Path, dst: &str) -> String {
    format!("--from-binary={}:{dst}", src.display())
}

/// `mkimage -o LAYOUT -t TAG ARGS...`; panics unless it succeeds.
fn build(layout: &Path, args: &[String]) -> Output {
    build_tagged(layout, TAG, args)
}

/// `mkimage -o LAYOUT -t tag ARGS...`; panics unless it succeeds.
fn build_tagged(layout: &Path, tag: &str, args: &[String]) -> Output {
    check(
        mkimage_clean()
            .arg("-o")
            .arg(layout)
            .args(["-t", tag])
            .args(args),
    )
}

// ---- host files -----------------------------------------------------------

/// A directory's contents: relative path → file bytes (None for a directory).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .map(|e| {
            let e = e.expect("walk directory");
            let rel = e.path().strip_prefix(dir).expect("under dir").to_owned();
            let data = e
                .file_type()
                .is_file()
                .then(|| std::fs::read(e.path()).expect("read file"));
            (rel, data)
        })
        .collect()
}

/// Copies `src` into `dir` (as `name`), executable.
fn copy_exe(src: &Path, dir: &Path, name: &str) -> PathBuf {
    let dst = dir.join(name);
    std::fs::copy(src, &dst).unwrap_or_else(|e| panic!("copy {}: {e}", src.display()));
    std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    dst
}

fn set_mtime(path: &Path, secs: u64) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs)))
        .unwrap_or_else(|e| panic!("set mtime of {}: {e}", path.display()));
}

// ---- running images (root, runc) -------------------------------------------

#[test]
#[ignore = "needs root/runc"]
fn static_binary_runs() {
    let dir = tempdir();
    let hello = cc(dir.path(), "hello", STATIC_C, &["-static", "-O2"]);
    let layout = dir.path().join("hello.oci");
    build(&layout, &[from_binary(&hello)]);

    let out = run_image(&layout, TAG, RunOpts::default());
    out.assert_success();
    assert_eq!(out.stdout, format!("{STATIC_LINE}\n"));
    assert_eq!(out.stderr, "");
}

#[test]
#[ignore = "needs root/runc"]
fn curl_runs() {
    let dir = tempdir();
    let layout = dir.path().join("curl.oci");
    build(&layout, &[from_binary(Path::new("/usr/bin/curl"))]);

    let out = run_image(
        &layout,
        TAG,
        RunOpts::args(&["/usr/local/bin/curl", "--version"]),
    );
    out.assert_success();
    assert!(out.stdout.starts_with("curl "), "{out}");
    assert_eq!(out.stderr, "");
}

#[test]
#[ignore = "needs root/runc"]
fn id_runs_as_nonroot() {
    let dir = tempdir();
    let layout = dir.path().join("id.oci");
    build(&layout, &[from_binary(Path::new("/usr/bin/id"))]);

    // The image's default user, and names from its /etc/passwd and /etc/group.
    let out = run_image(&layout, TAG, RunOpts::default());
    out.assert_success();
    assert_eq!(
        out.stdout,
        "uid=65532(nonroot) gid=65532(nonroot) groups=65532(nonroot)\n"
    );
    assert_eq!(out.stderr, "");
}

#[test]
#[ignore = "needs root/runc"]
fn date_uses_the_image_zone_data() {
    let dir = tempdir();
    let layout = dir.path().join("date.oci");
    let date = from_binary(Path::new("/usr/bin/date"));
    // Three images in one layout: all zones (the default), one zone, none.
    build_tagged(&layout, "date:all", std::slice::from_ref(&date));
    build_tagged(
        &layout,
        "date:tokyo",
        &[date.clone(), "--tzdata=Asia/Tokyo,Europe/Paris".to_owned()],
    );
    build_tagged(&layout, "date:none", &[date, "--tzdata=none".to_owned()]);

    for (tag, want) in [
        ("date:all", "+0900\n"),
        ("date:tokyo", "+0900\n"),
        // Without /usr/share/zoneinfo/Asia/Tokyo glibc falls back to UTC.
        ("date:none", "+0000\n"),
    ] {
        let out = run_image(
            &layout,
            tag,
            RunOpts {
                env: vec!["TZ=Asia/Tokyo".to_owned()],
                ..RunOpts::args(&["/usr/local/bin/date", "+%z"])
            },
        );
        out.assert_success();
        assert_eq!(out.stdout, want, "{tag}: {out}");
    }
}

/// A CA and a certificate for localhost and 127.0.0.1 signed by it.
struct TestPki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

/// openssl's config for the CA and server certificates: `-extensions ca` or
/// `-extensions server`.
const OPENSSL_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = mkimage test
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

fn test_pki(dir: &Path) -> TestPki {
    require_tool("openssl");
    let cnf = dir.join("openssl.cnf");
    std::fs::write(&cnf, OPENSSL_CNF).expect("write openssl.cnf");
    let (ca, ca_key) = (dir.join("ca.pem"), dir.join("ca.key"));
    let (cert, key, csr) = (
        dir.join("server.pem"),
        dir.join("server.key"),
        dir.join("server.csr"),
    );
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    check(
        Command::new("openssl")
            .args(["req", "-x509", "-nodes", "-days", "2", "-extensions", "ca"])
            .args(ec)
            .args(["-subj", "/CN=mkimage test CA", "-config"])
            .arg(&cnf)
            .arg("-keyout")
            .arg(&ca_key)
            .arg("-out")
            .arg(&ca),
    );
    check(
        Command::new("openssl")
            .args(["req", "-new", "-nodes"])
            .args(ec)
            .args(["-subj", "/CN=localhost", "-config"])
            .arg(&cnf)
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&csr),
    );
    check(
        Command::new("openssl")
            .args(["x509", "-req", "-set_serial", "2", "-days", "2"])
            .args(["-extensions", "server", "-extfile"])
            .arg(&cnf)
            .arg("-in")
            .arg(&csr)
            .arg("-CA")
            .arg(&ca)
            .arg("-CAkey")
            .arg(&ca_key)
            .arg("-out")
            .arg(&cert),
    );
    TestPki { ca, cert, key }
}

/// A child process killed (and reaped) when the test ends, pass or fail.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `openssl s_server -www` on 127.0.0.1:`port`, once it accepts connections.
fn https_server(pki: &TestPki, port: u16) -> KillOnDrop {
    let mut server = KillOnDrop(
        Command::new("openssl")
            .args(["s_server", "-quiet", "-www", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(&pki.cert)
            .arg("-key")
            .arg(&pki.key)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn openssl s_server"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = server.0.try_wait().expect("wait for s_server") {
            panic!("openssl s_server exited early: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "s_server never listened on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

#[test]
#[ignore = "needs root/runc"]
fn curl_trusts_an_added_ca_cert() {
    let dir = tempdir();
    let pki = test_pki(dir.path());
    let port = free_port();
    let _server = https_server(&pki, port);

    let layout = dir.path().join("curl.oci");
    let curl = from_binary(Path::new("/usr/bin/curl"));
    build_tagged(
        &layout,
        "curl:ca",
        &[curl.clone(), format!("--ca-cert={}", pki.ca.display())],
    );
    build_tagged(&layout, "curl:plain", &[curl]);

    let url = format!("https://localhost:{port}/");
    let opts = RunOpts {
        host_network: true,
        ..RunOpts::args(&["/usr/local/bin/curl", "-sS", &url])
    };
    let out = run_image(&layout, "curl:ca", opts.clone());
    out.assert_success();
    assert!(out.stdout.contains("s_server -quiet -www"), "{out}");

    // The host's bundle alone does not know the test CA: curl's
    // CURLE_PEER_FAILED_VERIFICATION.
    let out = run_image(&layout, "curl:plain", opts);
    assert_eq!(out.status.code(), Some(60), "{out}");
    assert!(out.stderr.contains("certificate"), "{out}");
}

#[test]
#[ignore = "needs root/runc"]
fn mkimage_runs_in_its_own_image() {
    let dir = tempdir();
    let layout = dir.path().join("mkimage.oci");
    build(
        &layout,
        &[
            from_binary(Path::new(env!("CARGO_BIN_EXE_mkimage"))),
            "--cmd=--version".to_owned(),
        ],
    );

    let out = run_image(&layout, TAG, RunOpts::default());
    out.assert_success();
    assert!(out.stdout.starts_with("mkimage "), "{out}");
}

#[test]
#[ignore = "needs root/runc"]
fn podman_skopeo_and_the_validator_accept_the_image() {
    let dir = tempdir();
    let hello = cc(dir.path(), "hello", STATIC_C, &["-static", "-O2"]);
    let layout = dir.path().join("hello.oci");
    build(&layout, &[from_binary(&hello)]);

    let out = podman_run(&layout, TAG, &[]);
    out.assert_success();
    assert_eq!(out.stdout, format!("{STATIC_LINE}\n"));

    let inspect = skopeo_inspect(&layout, TAG);
    assert_eq!(inspect["Architecture"], "amd64", "{inspect}");
    assert_eq!(inspect["Os"], "linux", "{inspect}");
    assert_eq!(
        inspect["Digest"],
        manifest_digest(&layout, TAG),
        "{inspect}"
    );
    let env: Vec<&str> = inspect["Env"]
        .as_array()
        .expect("Env")
        .iter()
        .map(|e| e.as_str().expect("env entry"))
        .collect();
    assert!(env.contains(&SSL_CERT_FILE), "{env:?}");
    assert!(env.contains(&PATH), "{env:?}");

    validate_layout(&layout);
}

#[test]
#[ignore = "needs root/runc"]
fn unpacked_rootfs_has_the_closure_and_base_files() {
    require_tool("chroot");
    let dir = tempdir();
    let layout = dir.path().join("curl.oci");
    build(&layout, &[from_binary(Path::new("/usr/bin/curl"))]);
    let bundle = Bundle::unpack(&layout, TAG);
    let rootfs = bundle.rootfs();

    // The image's own loader finds every library curl needs in the image.
    let out = check(Command::new("chroot").arg(&rootfs).args([
        "/lib64/ld-linux-x86-64.so.2",
        "--list",
        "/usr/local/bin/curl",
    ]));
    assert!(!out.stdout.contains("not found"), "{out}");
    assert!(out.stdout.contains("libcurl.so.4 => "), "{out}");

    // /lib64 is reproduced as the same symlink as on the host.
    assert_eq!(
        std::fs::read_link(rootfs.join("lib64")).expect("/lib64 is a symlink"),
        std::fs::read_link("/lib64").expect("host /lib64 is a symlink")
    );

    assert_eq!(
        std::fs::read_to_string(rootfs.join("etc/passwd")).expect("read /etc/passwd"),
        PASSWD
    );
    for (path, mode, owner) in [
        ("root", 0o700, 0),
        ("home", 0o755, 0),
        ("home/nonroot", 0o700, NONROOT),
        ("tmp", 0o1777, 0),
    ] {
        let meta = std::fs::symlink_metadata(rootfs.join(path))
            .unwrap_or_else(|e| panic!("stat /{path}: {e}"));
        assert!(meta.is_dir(), "/{path} is not a directory");
        assert_eq!(meta.mode() & 0o7777, mode, "mode of /{path}");
        assert_eq!((meta.uid(), meta.gid()), (owner, owner), "owner of /{path}");
    }
    let certs = std::fs::read_to_string(rootfs.join(CA_BUNDLE.trim_start_matches('/')))
        .expect("read the CA bundle");
    assert!(certs.contains("-----BEGIN CERTIFICATE-----"));
}

// ---- the layout, read directly (no root) -----------------------------------

#[test]
fn layers_hold_base_files_libraries_and_app_in_order() {
    let dir = tempdir();
    let hello = libc_program(dir.path(), "hello");
    let layout = dir.path().join("hello.oci");
    build(&layout, &[from_binary(&hello)]);

    let layers = layers(&layout, TAG);
    assert!(layers.len() >= 3, "{} layers", layers.len());
    let (base, libs, app) = (&layers[0], &layers[1], &layers[layers.len() - 1]);

    // Base files.
    let file = |layer: &Layer, path: &str| match layer.get(path).map(|e| &e.kind) {
        Some(Kind::File(data)) => String::from_utf8_lossy(data).into_owned(),
        other => panic!("{path}: expected a regular file, found {other:?}"),
    };
    assert_eq!(file(base, "etc/passwd"), PASSWD);
    let groups: BTreeSet<(String, u32)> = file(base, "etc/group")
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            assert_eq!(fields.len(), 4, "/etc/group line {line:?}");
            (fields[0].to_owned(), fields[2].parse().expect("gid"))
        })
        .collect();
    let want: BTreeSet<(String, u32)> = GROUPS.iter().map(|&(n, g)| (n.to_owned(), g)).collect();
    assert_eq!(groups, want);
    assert!(file(base, "etc/nsswitch.conf").contains("passwd:"));
    for (path, mode, owner) in [
        ("root", 0o700, 0),
        ("home", 0o755, 0),
        ("home/nonroot", 0o700, u64::from(NONROOT)),
        ("tmp", 0o1777, 0),
    ] {
        let entry = base
            .get(path)
            .unwrap_or_else(|| panic!("/{path} not in the base layer"));
        assert_eq!(entry.kind, Kind::Dir, "/{path}");
        assert_eq!(entry.mode & 0o7777, mode, "mode of /{path}");
        assert_eq!((entry.uid, entry.gid), (owner, owner), "owner of /{path}");
    }

    // System libraries: the loader and libc, reached through the same
    // symlinks as on the host (/lib64 -> usr/lib64, /lib -> usr/lib ...).
    let all = merged(&layers);
    for path in [
        "lib64/ld-linux-x86-64.so.2",
        "lib/x86_64-linux-gnu/libc.so.6",
    ] {
        let host = std::fs::canonicalize(Path::new("/").join(path)).expect("host library");
        let real = resolve(&all, path);
        assert_eq!(
            Path::new("/").join(&real),
            host,
            "{path} resolves like on the host"
        );
        match libs.get(&real).map(|e| &e.kind) {
            Some(Kind::File(data)) => assert_eq!(
                data,
                &std::fs::read(&host).expect("read host library"),
                "{real}"
            ),
            other => panic!("{real} not a file in the library layer: {other:?}"),
        }
    }
    assert_eq!(
        all.get("lib64").map(|e| &e.kind),
        Some(&Kind::Symlink(
            std::fs::read_link("/lib64")
                .expect("host /lib64 is a symlink")
                .to_string_lossy()
                .into_owned()
        ))
    );
    assert!(!libs.contains_key("etc/passwd"));
    assert!(!base.keys().any(|p| p.ends_with("libc.so.6")));

    // The app layer holds the app and nothing else.
    let app_files: Vec<&String> = app
        .iter()
        .filter(|(_, e)| e.kind != Kind::Dir)
        .map(|(p, _)| p)
        .collect();
    assert_eq!(app_files, ["usr/local/bin/hello"]);
    assert_eq!(
        app["usr/local/bin/hello"].kind,
        Kind::File(std::fs::read(&hello).expect("read hello"))
    );
    assert_eq!(app["usr/local/bin/hello"].mode & 0o111, 0o111, "executable");

    // Certificates and zone data are there by default.
    assert!(file(&all, CA_BUNDLE.trim_start_matches('/')).contains("BEGIN CERTIFICATE"));
    assert!(matches!(
        all.get(&resolve(&all, "usr/share/zoneinfo/Asia/Tokyo"))
            .map(|e| &e.kind),
        Some(Kind::File(_))
    ));
}

#[test]
fn config_reflects_the_flags() {
    let dir = tempdir();
    let hello = libc_program(dir.path(), "hello");
    let other = libc_program(dir.path(), "other");
    let layout = dir.path().join("app.oci");
    build(
        &layout,
        &[
            from_binary(&hello),
            from_binary_to(&other, "/opt/other"),
            r#"--cmd=["a b", "c"]"#.to_owned(),
            "--env=FOO=bar=baz".to_owned(),
            "--workdir=/srv".to_owned(),
            "--label=org.example.team=infra".to_owned(),
            "--annotation=org.example.note=hi".to_owned(),
            "--expose=8080".to_owned(),
            "--expose=53/udp".to_owned(),
        ],
    );
    let cfg = config(&layout, TAG);
    assert_eq!(cfg["architecture"], "amd64");
    assert_eq!(cfg["os"], "linux");
    let c = &cfg["config"];
    // The first binary is the entrypoint.
    assert_eq!(c["Entrypoint"], json!(["/usr/local/bin/hello"]));
    assert_eq!(c["Cmd"], json!(["a b", "c"]));
    assert_eq!(c["User"], "65532:65532");
    assert_eq!(c["WorkingDir"], "/srv");
    assert_eq!(c["ExposedPorts"], json!({"8080/tcp": {}, "53/udp": {}}));
    assert_eq!(c["Labels"]["org.example.team"], "infra", "{c}");
    let env: Vec<&str> = c["Env"]
        .as_array()
        .expect("Env")
        .iter()
        .map(|e| e.as_str().expect("env entry"))
        .collect();
    for want in [PATH, SSL_CERT_FILE, "FOO=bar=baz"] {
        assert!(env.contains(&want), "{want} not in {env:?}");
    }
    assert_eq!(
        manifest(&layout, TAG)["annotations"]["org.example.note"],
        "hi"
    );
    let app = layers(&layout, TAG).pop().expect("an app layer");
    assert!(matches!(
        app.get("opt/other").map(|e| &e.kind),
        Some(Kind::File(_))
    ));

    // --entrypoint picks another binary; --cmd as words; --user.
    build_tagged(
        &layout,
        "app:entry",
        &[
            from_binary(&hello),
            from_binary_to(&other, "/opt/other"),
            "--entrypoint=/opt/other".to_owned(),
            "--cmd=x  y".to_owned(),
            "--user=1000:1000".to_owned(),
        ],
    );
    let c = &config(&layout, "app:entry")["config"];
    assert_eq!(c["Entrypoint"], json!(["/opt/other"]));
    assert_eq!(c["Cmd"], json!(["x", "y"]));
    assert_eq!(c["User"], "1000:1000");
}

#[test]
fn success_output_says_where_and_what() {
    let dir = tempdir();
    let hello = libc_program(dir.path(), "hello");
    let layout = dir.path().join("hello.oci");
    let out = build(&layout, &[from_binary(&hello)]);
    let digest = manifest_digest(&layout, TAG);
    assert!(out.stdout.contains(&layout.display().to_string()), "{out}");
    assert!(out.stdout.contains(&digest), "{digest} not in {out}");
    assert!(!out.stderr.contains("panicked"), "{out}");
}

#[test]
fn default_output_dir_and_tag_come_from_the_binary_name() {
    let dir = tempdir();
    let hello = libc_program(dir.path(), "hello");
    let work = dir.path().join("work");
    std::fs::create_dir(&work).expect("mkdir work");
    check(mkimage_clean().current_dir(&work).arg(from_binary(&hello)));
    let layout = work.join("hello.oci");
    let refs: Vec<String> = index_refs(&layout).into_iter().map(|(r, _)| r).collect();
    assert_eq!(refs, ["hello:latest"]);
    manifest(&layout, "hello:latest");
}

#[test]
fn source_date_epoch_sets_created() {
    let dir = tempdir();
    let hello = libc_program(dir.path(), "hello");
    let layout = dir.path().join("hello.oci");
    check(
        mkimage()
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .arg(from_binary(&hello))
            .arg("-o")
            .arg(&layout)
            .args(["-t", "hello:epoch"]),
    );
    build_tagged(&layout, "hello:zero", &[from_binary(&hello)]);
    assert_eq!(
        config(&layout, "hello:epoch")["created"],
        "2023-11-14T22:13:20Z"
    );
    assert_eq!(
        config(&layout, "hello:zero")["created"],
        "1970-01-01T00:00:00Z"
    );
}

// ---- reproducibility --------------------------------------------------------

#[test]
fn same_inputs_give_the_same_digest() {
    let dir = tempdir();
    // curl: a closure of some 30 libraries, so each layer is compressed in
    // many chunks, on several threads.
    let curl = copy_exe(Path::new("/usr/bin/curl"), dir.path(), "curl");
    let mut digests = Vec::new();
    for (i, mtime) in [1_000_000_000, 1_600_000_000, 1_700_000_000]
        .into_iter()
        .enumerate()
    {
        set_mtime(&curl, mtime);
        let layout = dir.path().join(format!("build-{i}.oci"));
        // Cold: the layer cache would hand later builds the first's blobs.
        build(&layout, &[from_binary(&curl), "--no-cache".into()]);
        let index = index(&layout);
        let digest = index["manifests"][0]["digest"]
            .as_str()
            .expect("manifests[0].digest")
            .to_owned();
        digests.push((digest, layer_digests(&layout, TAG)));
    }
    for (i, other) in digests.iter().enumerate().skip(1) {
        assert_eq!(other, &digests[0], "build {i} differs from build 0");
    }
}

/// Where the build runs (a CI checkout, a Bazel sandbox) is not an input:
/// the same binary copied to two directories gives the same image.
#[test]
fn build_location_does_not_change_the_digest() {
    let dir = tempdir();
    let mut digests = Vec::new();
    for sub in ["checkout-a", "some/other/sandbox"] {
        let at = dir.path().join(sub);
        std::fs::create_dir_all(&at).expect("create dir");
        let curl = copy_exe(Path::new("/usr/bin/curl"), &at, "curl");
        let layout = at.join("out.oci");
        build(&layout, &[from_binary(&curl), "--no-cache".into()]);
        digests.push(index(&layout)["manifests"][0]["digest"].clone());
    }
    assert_eq!(digests[0], digests[1]);
}

#[test]
fn apps_share_base_and_library_layers() {
    let dir = tempdir();
    let one = libc_program(dir.path(), "one");
    let two = libc_program(dir.path(), "two");
    let layout = dir.path().join("apps.oci");
    build_tagged(&layout, "apps:one", &[from_binary(&one)]);
    build_tagged(&layout, "apps:two", &[from_binary(&two)]);

    let one = layer_digests(&layout, "apps:one");
    let two = layer_digests(&layout, "apps:two");
    assert!(one.len() >= 3 && two.len() >= 3, "{one:?} {two:?}");
    assert_eq!(one[0], two[0], "base layers");
    assert_eq!(one[1], two[1], "library layers");
    assert_ne!(one.last(), two.last(), "app layers");
}

// ---- output directory -------------------------------------------------------

#[test]
fn new_tags_are_added_to_an_existing_layout() {
    let dir = tempdir();
    let one = libc_program(dir.path(), "one");
    let two = libc_program(dir.path(), "two");
    let layout = dir.path().join("apps.oci");
    check(
        mkimage_clean()
            .arg(from_binary(&one))
            .arg("-o")
            .arg(&layout)
            .args(["-t", "apps:one", "-t", "apps:first"])
            // A registry's port is not a tag: this one gets `latest`.
            .args(["-t", "localhost:5000/apps"]),
    );
    let first = manifest_digest(&layout, "apps:one");
    assert_eq!(manifest_digest(&layout, "apps:first"), first);

    build_tagged(&layout, "apps:two", &[from_binary(&two)]);
    let second = manifest_digest(&layout, "apps:two");
    assert_ne!(first, second);

    let refs: BTreeSet<(String, String)> = index_refs(&layout).into_iter().collect();
    let want: BTreeSet<(String, String)> = [
        ("apps:one".to_owned(), first.clone()),
        ("apps:first".to_owned(), first.clone()),
        ("localhost:5000/apps:latest".to_owned(), first),
        ("apps:two".to_owned(), second),
    ]
    .into();
    assert_eq!(refs, want);
    // Every blob of both images is still there and intact.
    layers(&layout, "apps:one");
    layers(&layout, "apps:two");
}

#[test]
fn an_existing_tag_is_moved() {
    let dir = tempdir();
    let one = libc_program(dir.path(), "one");
    let two = libc_program(dir.path(), "two");
    let layout = dir.path().join("apps.oci");
    // One build, two tags (so this does not depend on reproducibility).
    check(
        mkimage_clean()
            .arg(from_binary(&one))
            .arg("-o")
            .arg(&layout)
            .args(["-t", "apps:latest", "-t", "apps:keep"]),
    );
    let first = manifest_digest(&layout, "apps:latest");
    assert_eq!(manifest_digest(&layout, "apps:keep"), first);

    build_tagged(&layout, "apps:latest", &[from_binary(&two)]);
    let refs = index_refs(&layout);
    let latest: Vec<&String> = refs
        .iter()
        .filter(|(r, _)| r == "apps:latest")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(latest.len(), 1, "{refs:?}");
    assert_ne!(*latest[0], first, "apps:latest still names the old image");
    assert_eq!(manifest_digest(&layout, "apps:keep"), first);
    assert_eq!(refs.len(), 2, "{refs:?}");
    let app = layers(&layout, "apps:latest").pop().expect("app layer");
    assert!(app.contains_key("usr/local/bin/two"), "{:?}", app.keys());
}

#[test]
fn a_directory_that_is_not_a_layout_is_left_alone() {
    let dir = tempdir();
    let hello = libc_program(dir.path(), "hello");
    let out_dir = dir.path().join("not-a-layout");
    std::fs::create_dir_all(out_dir.join("sub")).expect("mkdir");
    std::fs::write(out_dir.join("notes.txt"), "keep me\n").expect("write");
    std::fs::write(out_dir.join("sub/data"), "data\n").expect("write");
    let before = snapshot(&out_dir);

    let out = run(mkimage_clean()
        .arg(from_binary(&hello))
        .arg("-o")
        .arg(&out_dir));
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(
        out.stderr.contains(&out_dir.display().to_string()),
        "message does not name the directory: {out}"
    );
    assert!(!out.stderr.contains("panicked"), "{out}");
    assert_eq!(snapshot(&out_dir), before);
}

#[test]
fn quiet_prints_nothing_and_certs_and_zones_can_be_left_out() {
    let dir = tempdir();
    let hello = libc_program(dir.path(), "hello");
    let layout = dir.path().join("hello.oci");
    let out = build(
        &layout,
        &[
            from_binary(&hello),
            "--quiet".to_owned(),
            "--ca-certs=none".to_owned(),
            "--tzdata=none".to_owned(),
        ],
    );
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("", ""));

    let all = merged(&layers(&layout, TAG));
    let unwanted: Vec<&String> = all
        .keys()
        .filter(|p| p.starts_with("etc/ssl/") || p.starts_with("usr/share/zoneinfo/"))
        .collect();
    assert!(unwanted.is_empty(), "{unwanted:?}");
    let env = &config(&layout, TAG)["config"]["Env"];
    assert_eq!(env, &json!([PATH]), "no SSL_CERT_FILE without a bundle");
}

/// The first certificate of the host's CA bundle, as PEM.
fn first_host_cert() -> String {
    let bundle = std::fs::read_to_string(CA_BUNDLE).expect("read the host's CA bundle");
    let end = "-----END CERTIFICATE-----\n";
    let stop = bundle.find(end).expect("a certificate in the host bundle") + end.len();
    let start = bundle.find("-----BEGIN CERTIFICATE-----").expect("BEGIN");
    bundle[start..stop].to_owned()
}

#[test]
fn ca_certs_file_replaces_the_bundle_and_ca_cert_appends() {
    let dir = tempdir();
    let hello = libc_program(dir.path(), "hello");
    let bundle = dir.path().join("bundle.pem");
    let cert = first_host_cert();
    std::fs::write(&bundle, &cert).expect("write bundle");
    let extra = dir.path().join("extra.pem");
    let pki = test_pki(dir.path());
    std::fs::copy(&pki.ca, &extra).expect("copy the test CA");
    let extra_pem = std::fs::read_to_string(&extra).expect("read the test CA");
    let layout = dir.path().join("hello.oci");
    build(
        &layout,
        &[
            from_binary(&hello),
            format!("--ca-certs={}", bundle.display()),
            format!("--ca-cert={}", extra.display()),
        ],
    );

    let all = merged(&layers(&layout, TAG));
    let path = resolve(&all, CA_BUNDLE.trim_start_matches('/'));
    let Some(Kind::File(data)) = all.get(&path).map(|e| &e.kind) else {
        panic!("no CA bundle at {path}");
    };
    let data = String::from_utf8_lossy(data);
    assert!(data.starts_with(&cert), "{data}");
    assert!(data.contains(extra_pem.trim()), "{data}");
    assert_eq!(data.matches("BEGIN CERTIFICATE").count(), 2, "{data}");
}

#[test]
fn sysroot_supplies_libraries_certs_and_zones() {
    let dir = tempdir();
    let sysroot = dir.path().join("sysroot");
    let certs = sysroot.join("etc/ssl/certs");
    std::fs::create_dir_all(&certs).expect("mkdir certs");
    let cert = first_host_cert();
    std::fs::write(certs.join("ca-certificates.crt"), &cert).expect("write bundle");
    let zones = sysroot.join("usr/share/zoneinfo/Europe");
    std::fs::create_dir_all(&zones).expect("mkdir zoneinfo");
    std::fs::copy("/usr/share/zoneinfo/Europe/Paris", zones.join("Paris")).expect("copy zone");

    // A static program needs nothing else from the sysroot.
    let hello = cc(dir.path(), "hello", STATIC_C, &["-static", "-O2"]);
    let layout = dir.path().join("hello.oci");
    let sysroot_arg = format!("--sysroot={}", sysroot.display());
    build(&layout, &[from_binary(&hello), sysroot_arg.clone()]);
    let all = merged(&layers(&layout, TAG));
    let path = resolve(&all, CA_BUNDLE.trim_start_matches('/'));
    assert_eq!(
        all.get(&path).map(|e| &e.kind),
        Some(&Kind::File(cert.into_bytes())),
        "the bundle comes from the sysroot"
    );
    let zoneinfo: Vec<&String> = all
        .iter()
        .filter(|(p, e)| p.starts_with("usr/share/zoneinfo/") && e.kind != Kind::Dir)
        .map(|(p, _)| p)
        .collect();
    assert_eq!(zoneinfo, ["usr/share/zoneinfo/Europe/Paris"]);

    // Libraries come from the sysroot too, and this one has no libc.
    let dynamic = libc_program(dir.path(), "dynamic");
    let layout = dir.path().join("dynamic.oci");
    let out = run(mkimage_clean()
        .arg(from_binary(&dynamic))
        .arg(&sysroot_arg)
        .arg("-o")
        .arg(&layout));
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(out.stderr.contains("libc.so.6"), "{out}");
    assert!(!layout.exists());
}

// ---- bad input --------------------------------------------------------------

#[test]
fn bad_input_is_refused_and_nothing_is_written() {
    let dir = tempdir();
    let d = dir.path();
    let hello = libc_program(d, "hello");
    let other = libc_program(d, "other");
    let text = d.join("notes.txt");
    std::fs::write(&text, "just some text, not a program\n").expect("write");
    std::fs::set_permissions(&text, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let script = d.join("run.sh");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").expect("write");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    // A program linked against a library that is then deleted.
    let soname = "libmkimagegone.so.1";
    cc(
        d,
        "libmkimagegone.so",
        "int gone(void) { return 7; }\n",
        &["-shared", "-fPIC", &format!("-Wl,-soname,{soname}")],
    );
    let orphan = cc(
        d,
        "orphan",
        "int gone(void);\nint main(void) { return gone(); }\n",
        &["-L", &d.display().to_string(), "-lmkimagegone"],
    );
    std::fs::remove_file(d.join("libmkimagegone.so")).expect("delete the library");
    let missing = d.join("no-such-file");

    let s = |p: &Path| p.display().to_string();
    let cases: Vec<(&str, Vec<String>, i32, Vec<String>)> = vec![
        (
            "missing file",
            vec![from_binary(&missing)],
            2,
            vec![s(&missing)],
        ),
        (
            "not ELF",
            vec![from_binary(&text)],
            2,
            vec![s(&text), "ELF".into()],
        ),
        (
            "script",
            vec![from_binary(&script)],
            2,
            vec![s(&script), "script".into()],
        ),
        (
            "relative DST",
            vec![from_binary_to(&hello, "relative/path")],
            2,
            vec!["relative/path".into(), "absolute".into()],
        ),
        (
            "DST with ..",
            vec![from_binary_to(&hello, "/usr/../etc/hello")],
            2,
            vec!["/usr/../etc/hello".into()],
        ),
        (
            "two files, one DST",
            vec![
                from_binary_to(&hello, "/usr/bin/app"),
                from_binary_to(&other, "/usr/bin/app"),
            ],
            2,
            vec!["/usr/bin/app".into()],
        ),
        (
            "env without =",
            vec![from_binary(&hello), "--env=NOEQUALS".into()],
            2,
            vec!["NOEQUALS".into()],
        ),
        (
            "label without =",
            vec![from_binary(&hello), "--label=NOLABELVALUE".into()],
            2,
            vec!["NOLABELVALUE".into()],
        ),
        (
            "port out of range",
            vec![from_binary(&hello), "--expose=70000".into()],
            2,
            vec!["70000".into()],
        ),
        (
            "invalid tag",
            vec![from_binary(&hello), "--tag=BAD TAG!".into()],
            2,
            vec!["BAD TAG!".into()],
        ),
        (
            "a tag with a '/' after its ':'",
            vec![from_binary(&hello), "--tag=repo:tag/with/slash".into()],
            2,
            vec![
                "repo:tag/with/slash".into(),
                "a tag goes after the last '/'".into(),
            ],
        ),
        (
            "a docker-archive tag with a '/' after its ':'",
            vec![
                from_binary(&hello),
                "--format=docker-archive".into(),
                "-t".into(),
                "repo:tag/with/slash".into(),
            ],
            2,
            vec!["repo:tag/with/slash".into()],
        ),
        (
            "a tag with a digest",
            vec![
                from_binary(&hello),
                format!("--tag=app@sha256:{}", "ab".repeat(32)),
            ],
            2,
            vec!["a digest names content".into()],
        ),
        (
            "library not found",
            vec![from_binary(&orphan)],
            1,
            vec![soname.into()],
        ),
    ];

    for (i, (name, args, code, needles)) in cases.into_iter().enumerate() {
        // A parent of its own, to see that no staging files are left either.
        let parent = d.join(format!("out-{i}"));
        std::fs::create_dir(&parent).expect("mkdir");
        let layout = parent.join("image.oci");
        let out = run(mkimage_clean().arg("-o").arg(&layout).args(&args));
        assert_eq!(out.status.code(), Some(code), "{name}: {out}");
        for needle in &needles {
            assert!(
                out.stderr.contains(needle.as_str()),
                "{name}: no {needle:?} in {out}"
            );
        }
        assert!(!out.stderr.contains("panicked"), "{name}: {out}");
        assert_eq!(out.stdout, "", "{name}: {out}");
        assert!(!layout.exists(), "{name}: {} was created", layout.display());
        let left: Vec<_> = std::fs::read_dir(&parent)
            .expect("read parent")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert!(left.is_empty(), "{name}: left behind {left:?}");
    }
}

#[test]
fn version_names_the_program() {
    let out = check(mkimage().arg("--version"));
    assert!(out.stdout.starts_with("mkimage "), "{out}");
}
