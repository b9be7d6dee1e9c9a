//! The image reader (`src/source/`) through `mkimage inspect`, on every
//! kind of source: an image pushed to Debian's docker-registry reads back
//! with the digests the layout has, skopeo's own docker-archive and
//! oci-archive of it read back alike, and bad sources (missing, a platform
//! that is not there, a tampered blob, registries answering 401, 404, 500
//! or nothing) fail with a clear error and a non-zero exit.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::registry::{PASSWORD, Registry, USER, build_image, push};
use crate::registry_faults::{Handler, Server, WATCHDOG, answering, silent};
use crate::util::{Output, check, mkimage, require_tool, run_within, tempdir};

/// `mkimage inspect ARGS` with no saved logins.
fn inspect(home: &Path, args: &[&str]) -> Output {
    run_within(
        mkimage()
            .current_dir(home)
            .arg("inspect")
            .args(args)
            .env("HOME", home)
            .env("XDG_RUNTIME_DIR", home)
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("DOCKER_CONFIG"),
        WATCHDOG,
    )
}

fn json(out: &Output) -> Value {
    assert!(out.status.success(), "{out}");
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("JSON ({e}): {out}"))
}

/// What must agree between two readings of one image: manifest and
/// config digests, each layer's digest, diff_id and file count, and the
/// file list.
fn identity(v: &Value) -> Value {
    let layers: Vec<Value> = v["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| serde_json::json!([l["digest"], l["diff_id"], l["files"], l["size"]]))
        .collect();
    serde_json::json!({
        "manifest": v["manifest"]["digest"],
        "config": v["config"]["digest"],
        "layers": layers,
        "files": v["files"],
        "provenance": v["provenance"],
        "sbom": v["sbom"],
    })
}

#[test]
#[ignore = "needs docker-registry"]
fn an_image_pushed_to_a_registry_inspects_as_its_layout_does() {
    let registry = Registry::http();
    let host = registry.host();
    let tmp = tempdir();
    build_image(tmp.path());
    push(
        tmp.path(),
        &[
            "app.oci",
            &format!("{host}/team/app:v1"),
            "--insecure-registry",
            &host,
        ],
    )
    .assert_success();
    let local = json(&inspect(tmp.path(), &["app.oci", "--json"]));
    let remote_ref = format!("docker://{host}/team/app:v1");
    let remote = json(&inspect(
        tmp.path(),
        &[&remote_ref, "--insecure-registry", &host, "--json"],
    ));
    assert_eq!(remote["format"], "registry");
    assert!(local["manifest"]["digest"].is_string(), "{local}");
    assert_eq!(identity(&remote), identity(&local));
    // Every layer was streamed (and checked) to list its files.
    assert!(registry.requests("GET /v2/team/app/blobs/") >= 3);

    // By digest; --why reads the provenance attached under the fallback
    // tag; --sbom prints the SBOM byte for byte.
    let digest = local["manifest"]["digest"].as_str().expect("digest");
    let pinned = format!("docker://{host}/team/app@{digest}");
    let by_digest = json(&inspect(
        tmp.path(),
        &[
            &pinned,
            "--insecure-registry",
            &host,
            "--json",
            "--no-files",
        ],
    ));
    assert_eq!(by_digest["config"], local["config"]);
    let why = inspect(
        tmp.path(),
        &[
            &remote_ref,
            "--insecure-registry",
            &host,
            "--why",
            "/usr/local/bin/hello",
        ],
    );
    assert!(
        why.status.success() && why.stdout.contains("--from-binary"),
        "{why}"
    );
    let sbom = inspect(
        tmp.path(),
        &[&remote_ref, "--insecure-registry", &host, "--sbom"],
    );
    let local_sbom = inspect(tmp.path(), &["app.oci", "--sbom"]);
    assert!(sbom.status.success(), "{sbom}");
    assert_eq!(sbom.stdout, local_sbom.stdout);

    // A tag the registry does not have: not found, exit 1.
    let out = inspect(
        tmp.path(),
        &[
            &format!("docker://{host}/team/app:v9"),
            "--insecure-registry",
            &host,
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(out.stderr.contains("MANIFEST_UNKNOWN"), "{out}");
}

#[test]
#[ignore = "needs docker-registry, openssl, htpasswd"]
fn a_registry_with_tls_and_basic_auth_is_read_with_the_push_options() {
    let registry = Registry::https_with_auth();
    let host = registry.host();
    let tmp = tempdir();
    build_image(tmp.path());
    let ca = registry.ca();
    let ca = ca.to_str().expect("utf-8 path");
    let creds = format!("{USER}:{PASSWORD}");
    push(
        tmp.path(),
        &[
            "app.oci",
            &format!("{host}/app:v1"),
            "--ca-cert",
            ca,
            "--creds",
            &creds,
        ],
    )
    .assert_success();
    let reference = format!("docker://{host}/app:v1");
    let remote = json(&inspect(
        tmp.path(),
        &[
            &reference,
            "--ca-cert",
            ca,
            "--creds",
            &creds,
            "--json",
            "--no-files",
        ],
    ));
    let local = json(&inspect(tmp.path(), &["app.oci", "--json", "--no-files"]));
    assert_eq!(remote["manifest"]["digest"], local["manifest"]["digest"]);

    // No credentials, wrong ones, no CA: each says what to do.
    for (args, want) in [
        (vec!["--ca-cert", ca], "requires credentials: pass --creds"),
        (
            vec!["--ca-cert", ca, "--creds", "mkimage:wrong"],
            "rejected the credentials from --creds",
        ),
        (vec![], "--ca-cert CA.pem"),
    ] {
        let mut all = vec![reference.as_str(), "--no-files"];
        all.extend(&args);
        let out = inspect(tmp.path(), &all);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out}");
        assert!(out.stderr.contains(want), "{args:?}: {out}");
        assert!(!out.stderr.contains(PASSWORD), "{out}");
    }
}

#[test]
#[ignore = "needs skopeo"]
fn skopeos_archives_read_back_as_the_layout() {
    require_tool("skopeo");
    let tmp = tempdir();
    build_image(tmp.path());
    let local = json(&inspect(tmp.path(), &["app.oci", "--json"]));
    for (transport, file) in [("docker-archive", "docker.tar"), ("oci-archive", "oci.tar")] {
        check(
            Command::new("skopeo")
                .current_dir(tmp.path())
                .args(["copy", "--quiet", "oci:app.oci:app:latest"])
                .arg(format!("{transport}:{file}:app:latest")),
        );
        let named = format!("{transport}:{file}:app:latest");
        for name in [named.as_str(), file] {
            let v = json(&inspect(tmp.path(), &[name, "--json"]));
            assert_eq!(v["format"], transport, "{name}");
            assert_eq!(v["config"]["digest"], local["config"]["digest"], "{name}");
            let diff_ids = |v: &Value| -> Vec<Value> {
                v["layers"]
                    .as_array()
                    .expect("layers")
                    .iter()
                    .map(|l| l["diff_id"].clone())
                    .collect()
            };
            assert_eq!(diff_ids(&v), diff_ids(&local), "{name}");
            assert_eq!(v["files"], local["files"], "{name}");
        }
    }
}

#[test]
fn bad_sources_fail_clearly() {
    let tmp = tempdir();
    build_image(tmp.path());

    // Not there: exit 1, named.
    let out = inspect(tmp.path(), &["no-such.oci:app:latest"]);
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(
        out.stderr
            .contains("no-such.oci:app:latest: no such file or directory"),
        "{out}"
    );
    let out = inspect(tmp.path(), &["docker-archive:no-such.tar"]);
    assert_eq!(out.status.code(), Some(1), "{out}");

    // A platform the image is not for: the error lists what it has.
    let out = inspect(tmp.path(), &["app.oci", "--platform", "linux/s390x"]);
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(
        out.stderr
            .contains("has no image for platform linux/s390x; it has: linux/amd64"),
        "{out}"
    );

    // A layer blob with other bytes of the same size: refused as it is
    // read, with or without the file list, and nothing on stdout.
    let layout = tmp.path().join("app.oci");
    let v = json(&inspect(tmp.path(), &["app.oci", "--json", "--no-files"]));
    let digest = v["layers"][0]["digest"].as_str().expect("layer digest");
    let blob = layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    let mut bytes = std::fs::read(&blob).expect("read blob");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&blob, &bytes).expect("tamper");
    for flags in [&[][..], &["--no-files"][..], &["--json"][..]] {
        let mut args = vec!["app.oci"];
        args.extend(flags);
        let out = inspect(tmp.path(), &args);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {out}");
        assert!(
            out.stderr.contains(&format!("expected {digest}")) && out.stderr.contains("has digest"),
            "{flags:?}: {out}"
        );
        assert!(!out.stdout.contains("Files ("), "{flags:?}: {out}");
    }
}

/// A registry that answers the ping, then `status` to everything.
fn answers(status: &'static str) -> Handler {
    match status {
        "401" => |s| {
            answering(s, |_, _| {
                reply(
                    "401 Unauthorized",
                    "Www-Authenticate: Basic realm=\"x\"\r\n",
                )
            })
        },
        "404" => |s| {
            answering(s, |_, p| {
                if p == "/v2/" {
                    reply("200 OK", "")
                } else {
                    reply("404 Not Found", "")
                }
            })
        },
        _ => |s| {
            answering(s, |_, p| {
                if p == "/v2/" {
                    reply("200 OK", "")
                } else {
                    reply("500 Internal Server Error", "")
                }
            })
        },
    }
}

fn reply(status: &str, headers: &str) -> String {
    let body = r#"{"errors":[{"code":"TEST","message":"as the test wants"}]}"#;
    format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[test]
fn registries_that_refuse_or_hang_fail_promptly() {
    let tmp = tempdir();
    for (status, code, want) in [
        ("401", 2, "requires credentials: pass --creds"),
        (
            "404",
            1,
            "answered HTTP 404 to GET /v2/app/manifests/v1: TEST",
        ),
        (
            "500",
            2,
            "answered HTTP 500 to GET /v2/app/manifests/v1: TEST",
        ),
    ] {
        let server = Server::start(answers(status));
        let host = server.host();
        let out = inspect(
            tmp.path(),
            &[
                &format!("docker://{host}/app:v1"),
                "--insecure-registry",
                &host,
                "--timeout",
                "5",
            ],
        );
        assert_eq!(out.status.code(), Some(code), "{status}: {out}");
        assert!(out.stderr.contains(want), "{status}: {out}");
    }
    // A 500 is retried (the push's policy: 4 tries), a 404 is not.
    let server = Server::start(answers("500"));
    let host = server.host();
    let start = std::time::Instant::now();
    inspect(
        tmp.path(),
        &[
            &format!("docker://{host}/app:v1"),
            "--insecure-registry",
            &host,
        ],
    );
    assert!(
        start.elapsed() >= Duration::from_millis(3500),
        "{:?}",
        start.elapsed()
    );

    // One that accepts and never answers: --timeout ends it.
    let server = Server::start(silent);
    let host = server.host();
    let start = std::time::Instant::now();
    let out = inspect(
        tmp.path(),
        &[
            &format!("docker://{host}/app:v1"),
            "--insecure-registry",
            &host,
            "--timeout",
            "2",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(
        out.stderr.contains(&format!("registry {host} timed out")),
        "{out}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(server.connections(), 1);
}
