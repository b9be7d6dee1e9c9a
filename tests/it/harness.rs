//! Tests of the harness itself, on an image built by hand with umoci, so the
//! runners are known to work before mkimage writes images of its own.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{
    Bundle, RunOpts, cc, check, podman_run, podman_run_with, require_tool, run, run_image,
    skopeo_inspect, skopeo_inspect_config, tempdir, validate_layout,
};

const TAG: &str = "test";

/// A static test program: `hello [ARGS]` prints "hello ARGS"; the first
/// argument picks another behaviour.
const HELLO_C: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc > 2 && strcmp(argv[1], "env") == 0) {
        const char *v = getenv(argv[2]);
        printf("%s=%s\n", argv[2], v ? v : "(unset)");
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "id") == 0) {
        char cwd[4096];
        printf("%u:%u %s\n", getuid(), getgid(), getcwd(cwd, sizeof cwd));
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "sleep") == 0) {
        sleep(600);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "interfaces") == 0) {
        /* /proc/net/dev: two header lines, then one line per interface. */
        FILE *f = fopen("/proc/net/dev", "r");
        char line[512];
        int n = 0;
        while (f && fgets(line, sizeof line, f)) n++;
        printf("%d\n", n - 2);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "fail") == 0) {
        fprintf(stderr, "failing\n");
        return 3;
    }
    printf("hello");
    for (int i = 1; i < argc; i++) printf(" %s", argv[i]);
    printf("\n");
    return 0;
}
"#;

/// An image layout in `dir` holding one static binary, /hello, with
/// entrypoint ["/hello"], cmd ["world"] and GREETING=hi, tagged [`TAG`].
fn hello_layout(dir: &Path) -> PathBuf {
    require_tool("umoci");
    let hello = cc(dir, "hello", HELLO_C, &["-static", "-O2"]);
    let layout = dir.join("layout");
    let image = format!("{}:{TAG}", layout.display());
    check(
        Command::new("umoci")
            .args(["init", "--layout"])
            .arg(&layout),
    );
    check(Command::new("umoci").args(["new", "--image", &image]));
    check(
        Command::new("umoci")
            .args(["insert", "--image", &image])
            .arg(&hello)
            .arg("/hello"),
    );
    check(Command::new("umoci").args([
        "config",
        "--image",
        &image,
        "--config.entrypoint",
        "/hello",
        "--config.cmd",
        "world",
        "--config.env",
        "GREETING=hi",
    ]));
    // umoci config leaves the replaced manifest and config behind.
    check(Command::new("umoci").args(["gc", "--layout"]).arg(&layout));
    layout
}

#[test]
#[should_panic(expected = "mkimage-no-such-tool is not installed")]
fn missing_tool_fails_the_test() {
    require_tool("mkimage-no-such-tool");
}

#[test]
#[ignore = "needs root/runc"]
fn runc_runs_a_hand_built_image() {
    let dir = tempdir();
    let layout = hello_layout(dir.path());

    let out = run_image(&layout, TAG, RunOpts::default());
    out.assert_success();
    assert_eq!(out.stdout, "hello world\n");
    assert_eq!(out.stderr, "");

    let bundle = Bundle::unpack(&layout, TAG);
    let meta = std::fs::metadata(bundle.rootfs().join("hello")).expect("stat /hello");
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (0, 0, 0o755)
    );
    assert_eq!(
        bundle.config()["process"]["args"],
        serde_json::json!(["/hello", "world"])
    );

    let cases: &[(RunOpts, &str)] = &[
        (RunOpts::args(&["/hello", "a", "b"]), "hello a b\n"),
        (
            RunOpts::args(&["/hello", "env", "GREETING"]),
            "GREETING=hi\n",
        ),
        (
            RunOpts {
                env: vec!["GREETING=bye".into(), "OTHER=1".into()],
                ..RunOpts::args(&["/hello", "env", "GREETING"])
            },
            "GREETING=bye\n",
        ),
        (
            RunOpts {
                env: vec!["OTHER=1".into()],
                ..RunOpts::args(&["/hello", "env", "OTHER"])
            },
            "OTHER=1\n",
        ),
        (
            RunOpts {
                user: Some((1000, 1001)),
                cwd: Some("/proc".into()),
                ..RunOpts::args(&["/hello", "id"])
            },
            "1000:1001 /proc\n",
        ),
        (RunOpts::args(&["/hello", "interfaces"]), "1\n"),
    ];
    for (opts, want) in cases {
        let out = bundle.run(opts);
        out.assert_success();
        assert_eq!(out.stdout, *want, "{opts:?}");
    }

    let out = bundle.run(&RunOpts::args(&["/hello", "fail"]));
    assert_eq!(out.status.code(), Some(3), "{out}");
    assert_eq!(out.stderr, "failing\n");
}

#[test]
#[ignore = "needs root/runc"]
fn host_network_shares_the_hosts_interfaces() {
    let dir = tempdir();
    let layout = hello_layout(dir.path());
    let host = std::fs::read_to_string("/proc/net/dev").expect("read /proc/net/dev");
    let host_interfaces = host.lines().count() - 2;

    let opts = RunOpts {
        host_network: true,
        ..RunOpts::args(&["/hello", "interfaces"])
    };
    let out = run_image(&layout, TAG, opts);
    out.assert_success();
    assert_eq!(out.stdout, format!("{host_interfaces}\n"));
}

#[test]
#[ignore = "needs root/runc"]
fn a_container_that_outlives_its_timeout_is_killed_and_deleted() {
    let dir = tempdir();
    let layout = hello_layout(dir.path());
    let bundle = Bundle::unpack(&layout, TAG);
    let opts = RunOpts {
        timeout: std::time::Duration::from_secs(1),
        ..RunOpts::args(&["/hello", "sleep"])
    };

    let started = std::time::Instant::now();
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| bundle.run(&opts)))
        .expect_err("run should panic on timeout");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    let message = panic
        .downcast_ref::<String>()
        .expect("panic message is a String");
    let id = message
        .strip_prefix("container ")
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("unexpected panic message: {message}"));
    assert!(message.contains("timed out after 1s"), "{message}");

    let state = run(Command::new("runc").args(["state", id]));
    assert!(
        !state.status.success(),
        "container {id} is still there: {state}"
    );
}

#[test]
#[ignore = "needs root/runc"]
fn podman_runs_a_hand_built_image() {
    let dir = tempdir();
    let layout = hello_layout(dir.path());

    let out = podman_run(&layout, TAG, &[]);
    out.assert_success();
    assert_eq!(out.stdout, "hello world\n");
    assert_eq!(out.stderr, "");

    // Arguments replace the cmd and keep the entrypoint.
    let out = podman_run(&layout, TAG, &["a", "b"]);
    out.assert_success();
    assert_eq!(out.stdout, "hello a b\n");

    let out = podman_run_with(&layout, TAG, &["-e", "GREETING=bye"], &["env", "GREETING"]);
    out.assert_success();
    assert_eq!(out.stdout, "GREETING=bye\n");

    let out = podman_run(&layout, TAG, &["fail"]);
    assert_eq!(out.status.code(), Some(3), "{out}");
}

#[test]
#[ignore = "needs root/runc"]
fn skopeo_and_oci_image_tool_read_a_hand_built_image() {
    let dir = tempdir();
    let layout = hello_layout(dir.path());

    validate_layout(&layout);
    let inspect = skopeo_inspect(&layout, TAG);
    assert_eq!(inspect["Architecture"], "amd64");
    assert_eq!(inspect["Os"], "linux");
    assert_eq!(inspect["Layers"].as_array().map(Vec::len), Some(1));
    let config = skopeo_inspect_config(&layout, TAG);
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/hello"])
    );
    assert_eq!(config["config"]["Cmd"], serde_json::json!(["world"]));

    // A corrupt blob fails validation.
    let blobs = layout.join("blobs/sha256");
    let mut names: Vec<_> = std::fs::read_dir(&blobs)
        .expect("list blobs")
        .map(|e| e.expect("blob entry").path())
        .collect();
    names.sort();
    let blob = &names[0];
    std::fs::write(blob, b"corrupt").expect("overwrite a blob");
    let panic = std::panic::catch_unwind(|| validate_layout(&layout));
    assert!(panic.is_err(), "oci-image-tool accepted a corrupt blob");
}
