//! `--healthcheck` and `--stop-signal`: written where Docker and podman
//! read them, checked before anything is written, and run by podman.

use serde_json::json;

use crate::util::{Podman, build, check, config, mkimage, run, tempdir};

/// busybox-static's busybox: a program that can both idle and be a check.
const BUSYBOX: &str = "/bin/busybox";

fn busybox_args(check_cmd: &str, extra: &[&str]) -> Vec<String> {
    [
        "--from-binary",
        "/bin/busybox:/bin/busybox",
        "--entrypoint",
        "/bin/busybox sleep 60",
        "--healthcheck",
        check_cmd,
    ]
    .iter()
    .chain(extra)
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn healthcheck_and_stop_signal_in_the_config() {
    crate::util::require_tool("busybox");
    let dir = tempdir();
    let layout = dir.path().join("hc.oci");
    build(
        &layout,
        "hc:1",
        &busybox_args(
            r#"["/bin/busybox", "wget", "-q", "http://127.0.0.1/"]"#,
            &[
                "--health-interval",
                "1m30s",
                "--health-timeout",
                "500ms",
                "--health-start-period",
                "2s",
                "--health-retries",
                "4",
                "--stop-signal",
                "quit",
            ],
        ),
    );
    let cfg = config(&layout, "hc:1");
    assert_eq!(
        cfg["config"]["Healthcheck"],
        json!({
            "Test": ["CMD", "/bin/busybox", "wget", "-q", "http://127.0.0.1/"],
            "Interval": 90_000_000_000u64,
            "Timeout": 500_000_000,
            "StartPeriod": 2_000_000_000,
            "Retries": 4,
        })
    );
    assert_eq!(cfg["config"]["StopSignal"], "SIGQUIT");

    build(
        &layout,
        "off:1",
        &busybox_args("none", &["--stop-signal", "9"]),
    );
    let cfg = config(&layout, "off:1");
    assert_eq!(cfg["config"]["Healthcheck"], json!({"Test": ["NONE"]}));
    assert_eq!(cfg["config"]["StopSignal"], "9");
}

#[test]
fn bad_health_flags_write_nothing() {
    let dir = tempdir();
    let out = dir.path().join("out.oci");
    let cases: [(&[&str], &str); 6] = [
        (
            &["--healthcheck", "/x", "--health-interval", "30"],
            "expected a number and a unit",
        ),
        (
            &["--healthcheck", "/x", "--health-timeout", "0s"],
            "at least 1ms",
        ),
        (
            &["--healthcheck", "/x", "--health-retries", "0"],
            "at least 1",
        ),
        (
            &["--healthcheck", "none", "--health-retries", "2"],
            "turns the check off",
        ),
        (&["--health-interval", "5s"], "--healthcheck"),
        (&["--stop-signal", "SIGFOO"], "not a Linux signal"),
    ];
    for (flags, want) in cases {
        let o = run(mkimage()
            .arg("--from-binary")
            .arg(BUSYBOX)
            .arg("-o")
            .arg(&out)
            .args(flags));
        assert!(!o.status.success(), "{flags:?} succeeded: {o}");
        assert!(o.stderr.contains(want), "{flags:?}: want {want:?} in {o}");
        assert!(!out.exists(), "{flags:?} wrote {}", out.display());
    }
}

/// `podman inspect` shows the check of a Docker-format image, and
/// `podman healthcheck run` runs it in the container: healthy when it
/// exits 0, unhealthy when it fails.
#[test]
#[ignore = "needs root/runc/podman"]
fn podman_runs_the_healthcheck() {
    crate::util::require_tool("busybox");
    let dir = tempdir();
    let podman = Podman::new();
    for (name, cmd, healthy) in [
        ("good", "/bin/busybox true", true),
        ("bad", "/bin/busybox false", false),
    ] {
        let archive = dir.path().join(format!("{name}.tar"));
        let tag = format!("hc-{name}:1");
        let mut args = busybox_args(
            cmd,
            &["--health-interval", "1h", "--stop-signal", "SIGKILL"],
        );
        args.extend(["--format".into(), "docker-archive".into()]);
        build(&archive, &tag, &args);
        let loaded = podman.load(&archive);
        assert_eq!(loaded.len(), 1, "{loaded:?}");
        let inspect = check(podman.command().args([
            "inspect",
            &loaded[0],
            "--format",
            "{{json .HealthCheck}} {{json .Config.StopSignal}}",
        ]));
        let want_test = std::iter::once("CMD")
            .chain(cmd.split(' '))
            .collect::<Vec<_>>();
        let (health, signal) = inspect
            .stdout
            .trim()
            .split_once(' ')
            .unwrap_or_else(|| panic!("podman inspect: {inspect}"));
        let health: serde_json::Value =
            serde_json::from_str(health).unwrap_or_else(|e| panic!("{e}: {inspect}"));
        assert_eq!(
            health,
            json!({"Test": want_test, "Interval": 3_600_000_000_000u64}),
            "{inspect}"
        );
        assert_eq!(signal, "\"SIGKILL\"", "{inspect}");

        let container = format!("c-{name}");
        check(podman.command().args([
            "run",
            "-d",
            "--name",
            &container,
            "--network",
            "host",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
            &loaded[0],
        ]));
        let out = run(podman.command().args(["healthcheck", "run", &container]));
        let _ = run(podman
            .command()
            .args(["rm", "--force", "--time", "0", &container]));
        if healthy {
            out.assert_success();
        } else {
            assert!(!out.status.success(), "a failing check passed: {out}");
            assert!(out.stdout.contains("unhealthy"), "{out}");
        }
    }
}
