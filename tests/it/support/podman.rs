//! Running an image with podman, rootful, with a store of its own per call.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use super::host::{require_root, require_tool, tempdir};
use super::process::{Output, check, run, wait_timeout};

/// podman copies the image into its store before running it, so it gets more.
const PODMAN_TIMEOUT: Duration = Duration::from_secs(120);

/// `podman run IMAGE ARGS...` (so `args` replace the image's cmd, keeping its
/// entrypoint); see [`podman_run_with`].
pub fn podman_run(layout: &Path, tag: &str, args: &[&str]) -> Output {
    podman_run_with(layout, tag, &[], args)
}

/// `podman run [FLAGS] oci:LAYOUT:TAG [ARGS]` as root, with `flags` (such as
/// `-e NAME=value`, `--user 1000`, `--entrypoint ...`) added to `podman run`.
///
/// Why these flags, on these machines (Debian 12's podman 4.3, as root, no
/// systemd, cgroup v1):
/// * `--root/--runroot/--tmpdir` in a temporary directory: podman names an
///   image pulled from `oci:DIR:TAG` after the directory (`localhost/DIR`),
///   not the tag, and copies it into its store on every run; a store of its
///   own per call keeps parallel tests apart and leaves nothing behind in
///   /var/lib/containers. The layout is reached through a symlink named
///   `image` in that directory (see below).
/// * `--storage-driver vfs`: the overlay driver (the default here) leaves its
///   store bind-mounted on itself after podman exits, so the temporary store
///   could not be removed; vfs mounts nothing and just copies the layers,
///   which costs little for test images.
/// * `--cgroup-manager cgroupfs`: there is no systemd to ask for cgroups
///   (/etc/containers/libpod.conf says systemd).
/// * `--runtime runc`: libpod.conf's default is crun, which is not installed.
/// * `--ulimit nofile/nproc`: without them podman asks for rlimits above this
///   machine's hard limits and runc fails with "error setting rlimit type 7:
///   operation not permitted".
/// * `--network host`: needs no netavark, bridge or firewall rules (which work
///   here but are slow and shared between parallel tests) and lets the
///   container reach servers on the host's 127.0.0.1.
/// * `--quiet`: keeps "Copying blob ..." out of the container's stderr.
pub fn podman_run_with(layout: &Path, tag: &str, flags: &[&str], args: &[&str]) -> Output {
    let podman = Podman::new();
    // podman 4.3 names an image pulled from oci:PATH after PATH, which must
    // then be a valid lowercase repository name; temporary directories have
    // mixed-case names, so run it as `oci:image:TAG` through a symlink.
    let layout = std::path::absolute(layout).expect("absolute layout path");
    std::os::unix::fs::symlink(&layout, podman.store.path().join("image"))
        .expect("symlink the layout");
    podman.run(&format!("oci:image:{tag}"), flags, args)
}

/// A podman with a store of its own in a temporary directory, removed on
/// drop; see [`podman_run_with`] for why each flag.
pub struct Podman {
    store: TempDir,
}

impl Podman {
    pub fn new() -> Podman {
        require_root();
        require_tool("podman");
        require_tool("runc");
        Podman { store: tempdir() }
    }

    /// `podman` with the store flags, run from the store directory.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new("podman");
        cmd.current_dir(self.store.path())
            .arg("--root")
            .arg(self.store.path().join("root"))
            .arg("--runroot")
            .arg(self.store.path().join("run"))
            .arg("--tmpdir")
            .arg(self.store.path().join("tmp"))
            .args(["--storage-driver", "vfs"])
            .args(["--cgroup-manager", "cgroupfs"])
            .args(["--runtime", "runc"]);
        cmd
    }

    /// `podman load -i ARCHIVE`; returns the names it loaded.
    pub fn load(&self, archive: &Path) -> Vec<String> {
        let out = check(self.command().args(["load", "--quiet", "-i"]).arg(archive));
        // "Loaded image: NAME" or "Loaded image(s): NAME,NAME".
        out.stdout
            .lines()
            .filter_map(|l| l.split_once(": ").map(|(_, names)| names))
            .flat_map(|names| names.split(','))
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .collect()
    }

    /// `podman run --rm [FLAGS] IMAGE [ARGS]`, killed after a timeout.
    pub fn run(&self, image: &str, flags: &[&str], args: &[&str]) -> Output {
        let child = self
            .command()
            .args(["run", "--rm", "--quiet", "--network", "host"])
            .args([
                "--ulimit",
                "nofile=1024:1024",
                "--ulimit",
                "nproc=1024:1024",
            ])
            .args(flags)
            .arg(image)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn podman: {e}"));
        let result = wait_timeout(child, PODMAN_TIMEOUT, || {
            let _ = run(self
                .command()
                .args(["rm", "--all", "--force", "--time", "0"]));
        });
        result.unwrap_or_else(|out| panic!("podman timed out after {PODMAN_TIMEOUT:?}: {out}"))
    }
}
