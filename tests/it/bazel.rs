//! examples/bazel with Debian's Bazel 4.2 (bazel-bootstrap): the
//! `mkimage_image` rule builds under `--spawn_strategy=sandboxed`, a
//! rebuild of nothing changed runs no action, changing one input file of
//! the image reruns exactly its one mkimage action, the image runs under
//! runc, and `bazel aquery` shows every path the action's command line
//! names among its declared inputs and outputs (what a remote executor
//! would ship it). The output base lives under target/bazel, so runs
//! reuse its cache and `cargo clean` removes it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{Output, RunOpts, check, require_root, require_tool, run, run_image};

const TAG: &str = "hello:latest";

/// A Bazel server for one workspace, shut down when dropped.
struct Bazel {
    workspace: PathBuf,
    output_base: PathBuf,
}

impl Bazel {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("bazel");
        c.current_dir(&self.workspace)
            .arg(format!("--output_base={}", self.output_base.display()))
            // No ~/.bazelrc of whoever runs the tests.
            .arg("--nohome_rc")
            .args(args);
        c
    }

    /// `bazel build TARGETS` in the sandbox; returns how many actions ran
    /// in it (Bazel's "N processes: ... M linux-sandbox" line).
    fn build(&self, targets: &[&str]) -> usize {
        let mut args = vec!["build", "--spawn_strategy=sandboxed", "--color=no"];
        args.extend(targets);
        let out = run(&mut self.command(&args));
        assert!(out.status.success(), "bazel build failed: {out}");
        sandboxed_actions(&out)
    }
}

impl Drop for Bazel {
    fn drop(&mut self) {
        let _ = run(&mut self.command(&["shutdown"]));
    }
}

/// The count of `linux-sandbox` processes in Bazel's summary line, 0 when
/// everything came from the cache (`1 process: 1 internal.`).
fn sandboxed_actions(out: &Output) -> usize {
    let line = out
        .stderr
        .lines()
        .rfind(|l| l.starts_with("INFO:") && l.contains(" process"))
        .unwrap_or_else(|| panic!("no process summary from bazel: {out}"));
    line.split([':', ','])
        .map(str::trim)
        .find_map(|part| {
            part.strip_suffix(" linux-sandbox")
                .or(part.strip_suffix(" linux-sandbox."))
        })
        .map(|n| n.parse().unwrap_or_else(|_| panic!("count in {line:?}")))
        .unwrap_or(0)
}

/// A fresh copy of examples/bazel under target/bazel with the static
/// mkimage in tools/.
fn workspace() -> Bazel {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bazel");
    let ws = base.join("workspace");
    let _ = std::fs::remove_dir_all(&ws);
    std::fs::create_dir_all(&base).expect("create target/bazel");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/bazel");
    check(Command::new("cp").arg("-r").arg(&example).arg(&ws));
    for link in [
        "bazel-bin",
        "bazel-out",
        "bazel-testlogs",
        "bazel-workspace",
    ] {
        let _ = std::fs::remove_file(ws.join(link));
    }
    std::fs::copy(crate::hermetic::static_mkimage(), ws.join("tools/mkimage"))
        .expect("copy the static mkimage into the workspace");
    Bazel {
        workspace: ws,
        output_base: base.join("output_base"),
    }
}

#[test]
#[ignore = "needs root, runc, bazel-bootstrap and the static mkimage (scripts/test)"]
fn rule_builds_caches_and_declares_everything() {
    require_root();
    require_tool("bazel");
    let bazel = workspace();
    let all = ["//:image", "//:image_tar", "//:push"];
    bazel.build(&all);
    assert_eq!(
        bazel.build(&all),
        0,
        "a rebuild of nothing changed ran actions"
    );

    // One input of //:image changes: its one mkimage action reruns, and
    // nothing else (the app, //:image_tar).
    std::fs::write(
        bazel.workspace.join("site/index.html"),
        "<h1>changed</h1>\n",
    )
    .unwrap();
    assert_eq!(
        bazel.build(&all),
        1,
        "a changed site file reran more than the image"
    );

    let bin = bazel.workspace.join("bazel-bin");
    let layout = bin.join("image.oci");
    let digest = std::fs::read_to_string(bin.join("image.digest")).unwrap();
    assert_eq!(crate::util::manifest_digest(&layout, TAG), digest);
    let out = run_image(&layout, TAG, RunOpts::default());
    out.assert_success();
    assert_eq!(out.stdout, "hello from a Bazel-built image\n", "{out}");
    let files = crate::util::merged(&crate::util::layers(&layout, TAG));
    assert_eq!(
        crate::util::file_in(&files, "srv/www/index.html"),
        b"<h1>changed</h1>\n"
    );
    assert!(bin.join("image_tar.tar").is_file());

    // mkimage_push runs mkimage from its runfiles on the layout.
    let push = run(&mut bazel.command(&["run", "--color=no", "//:push", "--", "--help"]));
    assert!(push.status.success(), "{push}");
    assert!(push.stdout.contains("Push an image"), "{push}");

    check_aquery(&bazel);
}

/// Every path the mkimage action's command line names is one of its
/// declared inputs or outputs (or inside one, for tree artifacts), and it
/// names no absolute host path: it runs as is on a remote executor.
fn check_aquery(bazel: &Bazel) {
    let out = run(&mut bazel.command(&[
        "aquery",
        "--color=no",
        "mnemonic(\"MkimageImage\", //:image)",
    ]));
    assert!(out.status.success(), "{out}");
    let list = |key: &str| -> BTreeSet<String> {
        let line = out
            .stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in {out}"));
        line.trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .split(", ")
            .map(|s| s.trim_end_matches(" (TreeArtifact)").to_string())
            .collect()
    };
    let declared: BTreeSet<String> = list("Inputs:").union(&list("Outputs:")).cloned().collect();
    let command = out
        .stdout
        .split("Command Line: (exec ")
        .nth(1)
        .unwrap_or_else(|| panic!("no command line in {out}"));
    let words: Vec<String> = command
        .lines()
        .map(|l| {
            l.trim()
                .trim_end_matches('\\')
                .trim_end_matches(')')
                .trim()
                .trim_matches('\'')
                .to_string()
        })
        .filter(|w| !w.is_empty())
        .collect();
    assert!(
        declared.contains(&words[0]),
        "mkimage itself is not an input: {out}"
    );
    let path_flags = [
        "--sysroot",
        "--from-binary",
        "--include",
        "--ca-certs",
        "-o",
        "--digest-file",
    ];
    let mut checked = 0;
    for pair in words.windows(2) {
        if !path_flags.contains(&pair[0].as_str()) || pair[1] == "none" {
            continue;
        }
        let path = pair[1].split(':').next().unwrap_or_default();
        assert!(!path.starts_with('/'), "{path}: an absolute host path");
        assert!(
            declared
                .iter()
                .any(|d| path == d || path.starts_with(&format!("{d}/"))),
            "{} {path} is not a declared input or output: {out}",
            pair[0]
        );
        checked += 1;
    }
    assert!(checked >= 5, "too few paths checked ({checked}): {out}");
}
