//! `mkimage push` against a real registry: Debian's `docker-registry` (the
//! CNCF distribution server) on 127.0.0.1, over plain HTTP and over HTTPS
//! with a test CA and htpasswd basic auth. What was pushed is pulled back
//! with skopeo and podman, compared by digest, and run.
//!
//! The registry's access log is the witness for what was sent: a push that
//! says it skipped every blob must not have uploaded one.

use std::fs::File;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use tempfile::TempDir;

use crate::util::{
    Output, Podman, RunOpts, cc, check, free_port, mkimage, require_root, require_tool, run,
    run_image, skopeo_inspect, tempdir,
};

pub(crate) const USER: &str = "mkimage";
/// Distinctive, so a leak into any output is easy to spot.
pub(crate) const PASSWORD: &str = "Pa55-w0rd-Zq9x";
const GREETING: &str = "hello from the registry";

/// How long the registry may take to start listening.
const STARTUP: Duration = Duration::from_secs(30);

/// A registry process with its own storage, config and log, killed on drop.
pub(crate) struct Registry {
    child: Child,
    port: u16,
    dir: TempDir,
    tls: bool,
}

impl Registry {
    /// Plain HTTP, no auth.
    pub(crate) fn http() -> Registry {
        Registry::start(false)
    }

    /// HTTPS with a certificate from a fresh test CA, and basic auth for
    /// [`USER`]:[`PASSWORD`].
    pub(crate) fn https_with_auth() -> Registry {
        Registry::start(true)
    }

    fn start(tls: bool) -> Registry {
        require_tool("docker-registry");
        let dir = tempdir();
        let port = free_port();
        let storage = dir.path().join("storage");
        std::fs::create_dir(&storage).expect("create storage dir");
        let mut config = format!(
            "version: 0.1\n\
             log:\n  level: info\n  accesslog:\n    disabled: false\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: 127.0.0.1:{port}\n",
            storage.display()
        );
        if tls {
            make_certs(dir.path());
            let htpasswd = dir.path().join("htpasswd");
            require_tool("htpasswd");
            let out = check(Command::new("htpasswd").args(["-Bbn", USER, PASSWORD]));
            std::fs::write(&htpasswd, out.stdout).expect("write htpasswd");
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n\
                 auth:\n  htpasswd:\n    realm: mkimage-test\n    path: {}\n",
                dir.path().join("server.pem").display(),
                dir.path().join("server.key").display(),
                htpasswd.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("write registry config");
        let log = File::create(dir.path().join("registry.log")).expect("create log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log"))
            .stderr(log)
            .spawn()
            .expect("spawn docker-registry");
        let mut registry = Registry {
            child,
            port,
            dir,
            tls,
        };
        registry.wait_listening();
        registry
    }

    fn wait_listening(&mut self) {
        let deadline = Instant::now() + STARTUP;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self.child.try_wait().expect("poll docker-registry") {
                panic!("docker-registry exited ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry not listening on {} after {STARTUP:?}:\n{}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `127.0.0.1:PORT`
    pub(crate) fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The test CA's certificate.
    pub(crate) fn ca(&self) -> PathBuf {
        assert!(self.tls);
        self.dir.path().join("ca.pem")
    }

    /// A directory with the CA as `ca.crt`, as containers-certs.d(5) wants
    /// for skopeo's and podman's `--cert-dir`.
    fn cert_dir(&self) -> PathBuf {
        let d = self.dir.path().join("certs.d");
        if !d.exists() {
            std::fs::create_dir(&d).expect("create cert dir");
            std::fs::copy(self.ca(), d.join("ca.crt")).expect("copy ca");
        }
        d
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Access-log lines for requests starting with `request`, e.g.
    /// `PUT /v2/app/blobs/uploads/`.
    pub(crate) fn log_lines(&self) -> Vec<String> {
        self.log().lines().map(str::to_owned).collect()
    }

    pub(crate) fn requests(&self, request: &str) -> usize {
        let needle = format!("\"{request}");
        self.log().lines().filter(|l| l.contains(&needle)).count()
    }

    /// Waits until the access log shows `n` requests starting with
    /// `request`: the registry logs a request after answering it.
    fn wait_requests(&self, request: &str, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.requests(request) < n {
            assert!(
                Instant::now() < deadline,
                "expected {n} {request:?} in the registry log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA and a server certificate for 127.0.0.1 and localhost, by the
/// openssl CLI. rustls (webpki) is strict: the CA needs CA:TRUE and
/// keyCertSign, the leaf a subjectAltName and serverAuth.
fn make_certs(dir: &Path) {
    require_tool("openssl");
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    check(
        Command::new("openssl")
            .current_dir(dir)
            .args(["req", "-x509"])
            .args(ec)
            .args(["-keyout", "ca.key", "-out", "ca.pem", "-days", "2"])
            .args(["-subj", "/CN=mkimage test CA"])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]),
    );
    check(
        Command::new("openssl")
            .current_dir(dir)
            .arg("req")
            .args(ec)
            .args(["-keyout", "server.key", "-out", "server.csr"])
            .args(["-subj", "/CN=localhost"]),
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n\
         basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\n\
         extendedKeyUsage=serverAuth\n",
    )
    .expect("write ext.cnf");
    check(
        Command::new("openssl")
            .current_dir(dir)
            .args(["x509", "-req", "-in", "server.csr", "-CA", "ca.pem"])
            .args(["-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem"])
            .args(["-days", "2", "-extfile", "ext.cnf"]),
    );
}

/// An image built by the real CLI from a static program that prints
/// [`GREETING`]: `DIR/app.oci`, tagged `app:latest`.
pub(crate) fn build_image(dir: &Path) -> PathBuf {
    build_image_with(dir, &[])
}

/// [`build_image`] with more flags for `mkimage`.
fn build_image_with(dir: &Path, flags: &[&str]) -> PathBuf {
    let src = format!("#include <stdio.h>\nint main(void) {{ puts(\"{GREETING}\"); return 0; }}\n");
    let exe = cc(dir, "hello", &src, &["-static"]);
    let layout = dir.join("app.oci");
    check(
        mkimage()
            .arg("--from-binary")
            .arg(&exe)
            .arg("-o")
            .arg(&layout)
            .args(["-t", "app:latest", "--quiet"])
            .args(flags),
    );
    layout
}

/// `mkimage push ARGS` in `home`, with no saved logins from the machine:
/// HOME and XDG_RUNTIME_DIR point into `home`, the auth variables are unset.
pub(crate) fn push(home: &Path, args: &[&str]) -> Output {
    run(&mut push_command(home, args))
}

/// The command [`push`] runs.
pub(crate) fn push_command(home: &Path, args: &[&str]) -> Command {
    let run_dir = home.join("run");
    std::fs::create_dir_all(&run_dir).expect("create XDG_RUNTIME_DIR");
    let mut cmd = mkimage();
    cmd.current_dir(home)
        .arg("push")
        .args(args)
        .env("HOME", home)
        .env("XDG_RUNTIME_DIR", &run_dir)
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("DOCKER_CONFIG");
    cmd
}

/// The digest in `Pushed REF@sha256:… (…)`.
fn pushed_digest(out: &Output) -> String {
    let start = out
        .stdout
        .find("@sha256:")
        .unwrap_or_else(|| panic!("no digest in the output: {out}"));
    out.stdout[start + 1..start + 1 + 71].to_owned()
}

/// The manifest digest of `tag` in a layout, as skopeo sees it.
fn layout_digest(layout: &Path, tag: &str) -> String {
    skopeo_inspect(layout, tag)["Digest"]
        .as_str()
        .expect("a Digest in skopeo inspect")
        .to_owned()
}

/// `skopeo copy docker://REF oci:OUT:app:latest` with `flags`; returns OUT.
fn skopeo_pull(dir: &Path, reference: &str, flags: &[&str]) -> PathBuf {
    require_tool("skopeo");
    let out = dir.join("pulled.oci");
    check(
        Command::new("skopeo")
            .args(["copy", "--quiet"])
            .args(flags)
            .arg(format!("docker://{reference}"))
            .arg(format!("oci:{}:app:latest", out.display())),
    );
    out
}

#[test]
#[ignore = "needs docker-registry, skopeo, root/runc"]
fn push_over_http_then_pull_back_and_run() {
    let registry = Registry::http();
    let tmp = tempdir();
    let host = registry.host();
    let reference = format!("{host}/app:latest");
    let (out, digest) = build_and_push(tmp.path(), &[], &reference, &host);
    assert!(
        out.stdout.starts_with(&format!(
            "Pushed {reference}@{digest} (3 blobs uploaded, 0 skipped, "
        )),
        "{out}"
    );
    registry.wait_requests("PUT /v2/app/manifests/latest", 1);
    // The image's 3, then its referrers': the empty config, the SBOM and
    // the provenance.
    assert_eq!(registry.requests("PUT /v2/app/blobs/uploads/"), 3 + 3);

    let pulled = skopeo_pull(tmp.path(), &reference, &["--src-tls-verify=false"]);
    assert_eq!(layout_digest(&pulled, "app:latest"), digest);
    require_root();
    let ran = run_image(&pulled, "app:latest", RunOpts::default());
    ran.assert_success();
    assert_eq!(ran.stdout.trim(), GREETING, "{ran}");

    // Again: the registry has every blob, so nothing is uploaded, and the
    // registry's own log agrees.
    let uploads = registry.requests("PUT /v2/app/blobs/uploads/");
    let posts = registry.requests("POST /v2/app/blobs/uploads/");
    let again = push(
        tmp.path(),
        &[
            "app.oci:app:latest",
            &reference,
            "--insecure-registry",
            &host,
        ],
    );
    again.assert_success();
    assert!(
        again.stdout.contains("(0 blobs uploaded, 3 skipped, 0 B)"),
        "{again}"
    );
    assert_eq!(pushed_digest(&again), digest);
    registry.wait_requests("PUT /v2/app/manifests/latest", 2);
    assert_eq!(registry.requests("PUT /v2/app/blobs/uploads/"), uploads);
    assert_eq!(registry.requests("POST /v2/app/blobs/uploads/"), posts);
}

/// Builds the hello image with `flags` in `dir`, pushes it over plain HTTP
/// to `reference` and checks the pushed digest is the layout's; returns the
/// push's output and that digest.
fn build_and_push(dir: &Path, flags: &[&str], reference: &str, host: &str) -> (Output, String) {
    let layout = build_image_with(dir, flags);
    let out = push(dir, &["app.oci", reference, "--insecure-registry", host]);
    out.assert_success();
    let digest = pushed_digest(&out);
    assert_eq!(digest, layout_digest(&layout, "app:latest"));
    (out, digest)
}

/// zstd layers go up with their media type, and podman (which reads zstd,
/// unlike umoci) pulls the image back and runs it.
#[test]
#[ignore = "needs docker-registry, skopeo, podman, root/runc"]
fn push_zstd_layers_then_pull_back_and_run_with_podman() {
    let registry = Registry::http();
    let tmp = tempdir();
    let host = registry.host();
    let reference = format!("{host}/zstd:1");
    build_and_push(tmp.path(), &["--compression", "zstd"], &reference, &host);

    // The manifest as the registry serves it.
    let manifest = skopeo_inspect_raw(&reference);
    let types = manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["mediaType"].as_str().expect("mediaType").to_owned())
        .collect::<Vec<_>>();
    assert!(
        !types.is_empty()
            && types
                .iter()
                .all(|t| t == "application/vnd.oci.image.layer.v1.tar+zstd"),
        "{types:?}"
    );
    let podman = Podman::new();
    let ran = podman.run(
        &format!("docker://{reference}"),
        &["--tls-verify=false"],
        &[],
    );
    ran.assert_success();
    assert_eq!(ran.stdout.trim(), GREETING, "{ran}");
}

/// `skopeo inspect --raw docker://REF` on a plain-HTTP registry: the
/// manifest as served.
fn skopeo_inspect_raw(reference: &str) -> serde_json::Value {
    require_tool("skopeo");
    let out = check(
        Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{reference}")),
    );
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("skopeo JSON ({e}): {out}"))
}

#[test]
#[ignore = "needs docker-registry, skopeo"]
fn mount_from_another_repository_uploads_nothing() {
    let registry = Registry::http();
    let tmp = tempdir();
    let layout_dir = build_image(tmp.path());
    let layout = mkimage::open_layout(&layout_dir).expect("open layout");
    let opts = mkimage::PushOptions {
        registry: mkimage::RegistryOptions {
            insecure_registries: vec![registry.host()],
            ..Default::default()
        },
        ..Default::default()
    };
    let to = |repo: &str| {
        mkimage::Reference::parse(&format!("{}/{repo}:v1", registry.host())).expect("reference")
    };
    let first = mkimage::push(&layout, None, &to("base"), &opts).expect("push base");
    assert_eq!((first.blobs_uploaded, first.blobs_mounted), (3, 0));
    let mounting = mkimage::PushOptions {
        mount_from: Some("base".into()),
        ..opts
    };
    let second = mkimage::push(&layout, None, &to("team/app"), &mounting).expect("push app");
    assert_eq!(
        (
            second.blobs_uploaded,
            second.blobs_mounted,
            second.blobs_skipped
        ),
        (0, 3, 0)
    );
    assert_eq!(second.bytes_uploaded, 0);
    registry.wait_requests("PUT /v2/team/app/manifests/v1", 1);
    // The image's 3 and its referrers' 3.
    assert_eq!(
        registry.requests("POST /v2/team/app/blobs/uploads/?mount="),
        3 + 3
    );
    assert_eq!(registry.requests("PUT /v2/team/app/blobs/"), 0);
    let pulled = skopeo_pull(
        tmp.path(),
        &format!("{}/team/app:v1", registry.host()),
        &["--src-tls-verify=false"],
    );
    assert_eq!(
        layout_digest(&pulled, "app:latest"),
        second.digest.to_string()
    );
}

#[test]
#[ignore = "needs docker-registry, openssl, htpasswd, skopeo, podman, root/runc"]
fn push_over_https_with_basic_auth() {
    let registry = Registry::https_with_auth();
    let tmp = tempdir();
    let layout = build_image(tmp.path());
    let reference = format!("{}/app:latest", registry.host());
    let ca = registry.ca();
    let creds = format!("{USER}:{PASSWORD}");

    let out = push(
        tmp.path(),
        &[
            "app.oci",
            &reference,
            "--ca-cert",
            ca.to_str().expect("utf-8 path"),
            "--creds",
            &creds,
        ],
    );
    out.assert_success();
    let digest = pushed_digest(&out);
    assert_eq!(digest, layout_digest(&layout, "app:latest"));
    assert!(!out.stdout.contains(PASSWORD) && !out.stderr.contains(PASSWORD));

    let cert_dir = registry.cert_dir();
    let cert_dir = cert_dir.to_str().expect("utf-8 path");
    let pulled = skopeo_pull(
        tmp.path(),
        &reference,
        &["--src-cert-dir", cert_dir, "--src-creds", &creds],
    );
    assert_eq!(layout_digest(&pulled, "app:latest"), digest);

    let ran = podman_pull_and_run(&reference, &["--cert-dir", cert_dir, "--creds", &creds]);
    assert_eq!(ran.stdout.trim(), GREETING, "{ran}");
}

/// `podman pull FLAGS REF` then `podman run REF`, as root in a store of its
/// own (util::Podman, whose flags util::podman_run_with explains).
fn podman_pull_and_run(reference: &str, pull_flags: &[&str]) -> Output {
    let podman = Podman::new();
    check(
        podman
            .command()
            .args(["pull", "--quiet"])
            .args(pull_flags)
            .arg(reference),
    );
    let out = podman.run(reference, &[], &[]);
    out.assert_success();
    out
}

#[test]
#[ignore = "needs docker-registry, openssl, htpasswd"]
fn credentials_from_saved_logins() {
    let registry = Registry::https_with_auth();
    let tmp = tempdir();
    build_image(tmp.path());
    let ca = registry.ca();
    let ca = ca.to_str().expect("utf-8 path");
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let host = registry.host();

    // docker's ~/.docker/config.json, as `docker login` writes it.
    let home = tmp.path().join("home");
    std::fs::create_dir_all(home.join(".docker")).expect("mkdir");
    std::fs::write(
        home.join(".docker/config.json"),
        format!(r#"{{"auths": {{"{host}": {{"auth": "{auth}"}}}}}}"#),
    )
    .expect("write config.json");
    let out = push(
        &home,
        &[
            tmp.path().join("app.oci").to_str().expect("utf-8"),
            &format!("{host}/from-docker-config"),
            "--ca-cert",
            ca,
        ],
    );
    out.assert_success();
    assert!(out.stdout.contains("(3 blobs uploaded"), "{out}");

    // A credential helper named by credHelpers, found on PATH.
    let bin = home.join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let helper = bin.join("docker-credential-mkimage-test");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread -r url\n[ \"$1 $url\" = \"get {host}\" ] || exit 1\n\
             echo '{{\"ServerURL\":\"{host}\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}'\n"
        ),
    )
    .expect("write helper");
    check(Command::new("chmod").arg("755").arg(&helper));
    std::fs::write(
        home.join(".docker/config.json"),
        format!(r#"{{"auths": {{}}, "credHelpers": {{"{host}": "mkimage-test"}}}}"#),
    )
    .expect("write config.json");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run_dir = home.join("run");
    let out = run(mkimage()
        .arg("push")
        .arg(tmp.path().join("app.oci"))
        .arg(format!("{host}/from-helper"))
        .args(["--ca-cert", ca])
        .env("HOME", &home)
        .env("XDG_RUNTIME_DIR", &run_dir)
        .env("PATH", path)
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("DOCKER_CONFIG"));
    out.assert_success();

    // podman's REGISTRY_AUTH_FILE, ahead of docker's file.
    std::fs::write(home.join(".docker/config.json"), "{}").expect("write config.json");
    let auth_file = tmp.path().join("auth.json");
    std::fs::write(
        &auth_file,
        format!(r#"{{"auths": {{"{host}": {{"auth": "{auth}"}}}}}}"#),
    )
    .expect("write auth.json");
    let out = run(mkimage()
        .arg("push")
        .arg(tmp.path().join("app.oci"))
        .arg(format!("{host}/from-auth-file"))
        .args(["--ca-cert", ca])
        .env("HOME", &home)
        .env("REGISTRY_AUTH_FILE", &auth_file)
        .env_remove("DOCKER_CONFIG"));
    out.assert_success();
    registry.wait_requests("PUT /v2/from-auth-file/manifests/latest", 1);
    for repo in ["from-docker-config", "from-helper", "from-auth-file"] {
        assert_eq!(
            registry.requests(&format!("PUT /v2/{repo}/manifests/latest")),
            1,
            "{repo}"
        );
    }
}

#[test]
#[ignore = "needs docker-registry, openssl, htpasswd"]
fn rejected_or_missing_credentials_and_untrusted_tls() {
    let registry = Registry::https_with_auth();
    let tmp = tempdir();
    build_image(tmp.path());
    let host = registry.host();
    let reference = format!("{host}/app");
    let ca = registry.ca();
    let ca = ca.to_str().expect("utf-8 path");
    let wrong = "Wr0ng-Secret-Kq7";

    let out = push(
        tmp.path(),
        &[
            "app.oci",
            &reference,
            "--ca-cert",
            ca,
            "--creds",
            &format!("{USER}:{wrong}"),
        ],
    );
    assert!(!out.status.success(), "{out}");
    assert!(
        out.stderr.contains(&format!(
            "registry {host} rejected the credentials from --creds"
        )),
        "{out}"
    );
    assert!(
        !out.stdout.contains(wrong) && !out.stderr.contains(wrong),
        "{out}"
    );

    let out = push(tmp.path(), &["app.oci", &reference, "--ca-cert", ca]);
    assert!(!out.status.success(), "{out}");
    assert!(
        out.stderr
            .contains(&format!("registry {host} requires credentials")),
        "{out}"
    );

    // Without the CA: the TLS error, with what to do about it.
    let out = push(
        tmp.path(),
        &[
            "app.oci",
            &reference,
            "--creds",
            &format!("{USER}:{PASSWORD}"),
        ],
    );
    assert!(!out.status.success(), "{out}");
    assert!(
        out.stderr.contains("UnknownIssuer") && out.stderr.contains("--ca-cert"),
        "{out}"
    );
    assert!(!out.stderr.contains(PASSWORD), "{out}");
    assert_eq!(registry.requests("PUT /v2/app/"), 0, "nothing was stored");
}

#[test]
fn unreachable_registry_bad_reference_and_missing_tag() {
    let tmp = tempdir();
    build_image(tmp.path());

    // Nothing listens on a port that was just free.
    let host = format!("127.0.0.1:{}", free_port());
    let out = push(
        tmp.path(),
        &[
            "app.oci",
            &format!("{host}/app"),
            "--insecure-registry",
            &host,
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(
        out.stderr
            .contains(&format!("cannot reach registry {host}: Connection refused")),
        "{out}"
    );

    let out = push(tmp.path(), &["app.oci", "localhost:5000/Bad Name"]);
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(
        out.stderr
            .contains("invalid reference \"localhost:5000/Bad Name\""),
        "{out}"
    );

    let out = push(tmp.path(), &["app.oci:nope", "localhost:5000/app"]);
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(
        out.stderr
            .contains("tag \"nope\" is not in app.oci; its tags are: app:latest"),
        "{out}"
    );

    let out = push(tmp.path(), &["missing.oci", "localhost:5000/app"]);
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(
        out.stderr
            .contains("missing.oci is not an OCI image layout"),
        "{out}"
    );
}

#[test]
#[ignore = "needs docker-registry"]
fn build_with_push_pushes_what_it_built() {
    let registry = Registry::http();
    let tmp = tempdir();
    let src = format!("#include <stdio.h>\nint main(void) {{ puts(\"{GREETING}\"); return 0; }}\n");
    let exe = cc(tmp.path(), "hello", &src, &["-static"]);
    let host = registry.host();
    let reference = format!("{host}/built/app:v1");
    let run_dir = tmp.path().join("run");
    std::fs::create_dir_all(&run_dir).expect("create XDG_RUNTIME_DIR");
    let out = run(mkimage()
        .current_dir(tmp.path())
        .arg("--from-binary")
        .arg(&exe)
        .args(["-o", "app.oci", "-t", "app:v1", "--push", &reference])
        .args(["--insecure-registry", &host])
        .env("HOME", tmp.path())
        .env("XDG_RUNTIME_DIR", &run_dir)
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("DOCKER_CONFIG"));
    out.assert_success();
    let digest = pushed_digest(&out);
    assert_eq!(digest, layout_digest(&tmp.path().join("app.oci"), "app:v1"));
    assert!(
        out.stdout.contains(&format!("Pushed {reference}@{digest}")),
        "{out}"
    );
    assert!(
        out.stdout
            .contains("with its SBOM and provenance (2 referrers, listed under tag sha256-"),
        "{out}"
    );
    let pulled = skopeo_pull(tmp.path(), &reference, &["--src-tls-verify=false"]);
    assert_eq!(layout_digest(&pulled, "app:latest"), digest);

    // A reference that does not parse fails before anything is built.
    let bad = run(mkimage()
        .current_dir(tmp.path())
        .arg("--from-binary")
        .arg(&exe)
        .args(["-o", "bad.oci", "--push", "UPPER/Case::x"]));
    assert_eq!(bad.status.code(), Some(2), "{bad}");
    assert!(!tmp.path().join("bad.oci").exists());
}

#[test]
#[ignore = "needs docker-registry, skopeo"]
fn sbom_and_provenance_survive_a_registry_round_trip() {
    let registry = Registry::http();
    let tmp = tempdir();
    let host = registry.host();
    let layout = build_image(tmp.path());
    let reference = format!("{host}/attached/app:v1");
    let out = push(
        tmp.path(),
        &[
            &layout.display().to_string(),
            &reference,
            "--insecure-registry",
            &host,
        ],
    );
    out.assert_success();
    let digest = pushed_digest(&out);
    // docker-registry 2.8 has no referrers API, so they are listed under
    // the tag schema's sha256-<hex> tag.
    let fallback = format!("sha256-{}", &digest["sha256:".len()..]);
    assert!(
        out.stdout
            .contains(&format!("2 referrers, listed under tag {fallback}")),
        "{out}"
    );
    let listed = skopeo_inspect_raw(&format!("{host}/attached/app:{fallback}"));
    let types: Vec<&str> = listed["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .filter_map(|m| m["artifactType"].as_str())
        .collect();
    assert_eq!(
        types,
        [
            "application/spdx+json",
            "application/vnd.mkimage.provenance.v1+json"
        ]
    );

    // Pulled back with skopeo, image and referrers into one layout.
    let back = tmp.path().join("back.oci");
    for (src, tag, all) in [
        ("v1", "app:v1", false),
        (fallback.as_str(), fallback.as_str(), true),
    ] {
        let mut copy = Command::new("skopeo");
        copy.args(["copy", "--quiet", "--src-tls-verify=false"]);
        if all {
            copy.arg("--all");
        }
        check(
            copy.arg(format!("docker://{host}/attached/app:{src}"))
                .arg(format!("oci:{}:{tag}", back.display())),
        );
    }
    assert_eq!(layout_digest(&back, "app:v1"), digest);
    let inspect = |image: &Path, args: &[&str]| {
        let mut name = image.as_os_str().to_owned();
        name.push(":app:");
        name.push(if image == back { "v1" } else { "latest" });
        check(mkimage().arg("inspect").arg(name).args(args)).stdout
    };
    assert_eq!(
        inspect(&back, &["--sbom"]),
        inspect(&layout, &["--sbom"]),
        "the SBOM came back byte for byte"
    );
    let why = inspect(&back, &["--why", "/usr/local/bin/hello"]);
    assert!(why.contains("--from-binary hello"), "{why}");

    // Pushed again: everything is there, the tag's index is left alone.
    let again = push(
        tmp.path(),
        &[
            &layout.display().to_string(),
            &reference,
            "--insecure-registry",
            &host,
        ],
    );
    again.assert_success();
    let put_index = format!("PUT /v2/attached/app/manifests/{fallback}");
    registry.wait_requests(&put_index, 1);
    assert_eq!(registry.requests(&put_index), 1, "{}", registry.log());
}

/// The loop users live in: change the app, rebuild, push. The second push
/// uploads only blobs the first image did not have (the app layer, the
/// config, the SBOM and provenance that name the new app); the base and
/// libs layers stay where they are.
#[test]
#[ignore = "needs docker-registry"]
fn push_after_an_app_change_uploads_only_what_changed() {
    let registry = Registry::http();
    let tmp = tempdir();
    let host = registry.host();
    let reference = format!("{host}/loop/app:v1");
    let layout = tmp.path().join("app.oci");
    let blobs = |layout: &Path| -> std::collections::BTreeMap<String, u64> {
        std::fs::read_dir(layout.join("blobs/sha256"))
            .expect("read blobs")
            .map(|e| {
                let e = e.expect("blob entry");
                let size = e.metadata().expect("blob metadata").len();
                (e.file_name().to_string_lossy().into_owned(), size)
            })
            .collect()
    };
    let build_and_push = |greeting: &str| -> serde_json::Value {
        let src =
            format!("#include <stdio.h>\nint main(void) {{ puts(\"{greeting}\"); return 0; }}\n");
        let exe = cc(tmp.path(), "hello", &src, &[]);
        let out = run(mkimage()
            .arg("--from-binary")
            .arg(&exe)
            .arg("-o")
            .arg(&layout)
            .args(["-t", "app:v1", "--json", "--push", &reference])
            .args(["--insecure-registry", &host])
            .env("HOME", tmp.path())
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("DOCKER_CONFIG"));
        out.assert_success();
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("--json ({e}): {out}"))
    };
    let layers = |json: &serde_json::Value| -> Vec<(String, String)> {
        json["layers"]
            .as_array()
            .expect("layers")
            .iter()
            .map(|l| {
                (
                    l["kind"].as_str().unwrap().to_owned(),
                    l["digest"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };

    let first = build_and_push("first");
    let before = blobs(&layout);
    let puts = registry.requests("PUT /v2/loop/app/blobs/");
    assert!(puts > 0, "the first push uploads: {first}");
    let second = build_and_push("second");
    let new: std::collections::BTreeMap<String, u64> = blobs(&layout)
        .into_iter()
        .filter(|(name, _)| !before.contains_key(name))
        .collect();

    // Only the app layer changed; the others are the same blobs.
    let (l1, l2) = (layers(&first), layers(&second));
    assert_eq!(l1.len(), l2.len());
    assert!(l1.len() >= 3, "base, libs and app: {l1:?}");
    for (a, b) in l1.iter().zip(&l2) {
        assert_eq!(a.0, b.0);
        assert_eq!(a.1 == b.1, a.0 != "app", "{a:?} {b:?}");
    }
    let pushed = &second["pushed"];
    let uploaded = pushed["blobs_uploaded"].as_u64().expect("blobs_uploaded");
    let bytes = pushed["bytes_uploaded"].as_u64().expect("bytes_uploaded");
    assert!(pushed["blobs_skipped"].as_u64().expect("blobs_skipped") >= (l1.len() - 1) as u64);
    // Uploaded: the new app layer and config at least, and nothing the
    // first image had (manifests go up as manifests, not blobs).
    let app = l2
        .last()
        .expect("app layer")
        .1
        .trim_start_matches("sha256:")
        .to_owned();
    assert!(new.contains_key(&app), "the app layer is new: {new:?}");
    assert!(
        uploaded >= 2 && uploaded as usize <= new.len(),
        "{uploaded} of {new:?}"
    );
    assert!(
        bytes >= new[&app] && bytes <= new.values().sum::<u64>(),
        "{bytes} bytes, new blobs {new:?}"
    );
    // The registry saw those uploads and no others: none of an old blob.
    registry.wait_requests("PUT /v2/loop/app/blobs/", puts + uploaded as usize);
    let log = registry.log();
    let later: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("\"PUT /v2/loop/app/blobs/"))
        .skip(puts)
        .collect();
    assert!(later.len() <= new.len(), "{later:#?}");
    // The log names the digest uploaded, so the check below can fail.
    assert!(later.iter().any(|l| l.contains(app.as_str())), "{later:#?}");
    for old in before.keys() {
        assert!(
            !later.iter().any(|l| l.contains(old.as_str())),
            "{old} uploaded again: {later:#?}"
        );
    }
}
