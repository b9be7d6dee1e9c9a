//! Running an image as an OCI runtime would: `umoci unpack` into a bundle,
//! then `runc run`, once or as a server in the background.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use super::host::{require_root, require_tool, tempdir};
use super::layout::image_ref;
use super::process::{DEFAULT_TIMEOUT, Output, POLL, check, drain, join, run, wait_timeout};

/// How to run a container: every field overrides what the image says.
#[derive(Debug, Clone)]
pub struct RunOpts {
    /// Replaces `process.args` (entrypoint and cmd together).
    pub args: Option<Vec<String>>,
    /// `NAME=value` entries; each replaces the image's entry of that name or
    /// is appended (glibc's getenv returns the first match, so appending a
    /// duplicate would not override).
    pub env: Vec<String>,
    /// `(uid, gid)` for `process.user`.
    pub user: Option<(u32, u32)>,
    /// Replaces `process.cwd`.
    pub cwd: Option<String>,
    /// Share the host's network namespace, so the container can reach
    /// servers on the host's 127.0.0.1. Without it the container has a new
    /// namespace with only `lo`.
    pub host_network: bool,
    /// Killed (and the test fails) after this long.
    pub timeout: Duration,
}

impl Default for RunOpts {
    fn default() -> Self {
        RunOpts {
            args: None,
            env: Vec::new(),
            user: None,
            cwd: None,
            host_network: false,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl RunOpts {
    /// Options that only replace the command line.
    pub fn args<S: AsRef<str>>(args: &[S]) -> Self {
        RunOpts {
            args: Some(args.iter().map(|a| a.as_ref().to_owned()).collect()),
            ..RunOpts::default()
        }
    }
}

/// An image unpacked by umoci into an OCI runtime bundle, removed on drop.
pub struct Bundle {
    dir: TempDir,
    /// config.json as umoci wrote it; each run starts from it.
    config: Value,
}

impl Bundle {
    /// `umoci unpack --image LAYOUT:TAG`, as root so files keep their owners.
    /// `tag` is the `org.opencontainers.image.ref.name` in the layout's index.
    pub fn unpack(layout: &Path, tag: &str) -> Bundle {
        require_root();
        require_tool("umoci");
        let dir = tempdir();
        check(
            Command::new("umoci")
                .arg("unpack")
                .arg("--image")
                .arg(image_ref(layout, tag))
                .arg(dir.path().join("bundle")),
        );
        let text = std::fs::read_to_string(dir.path().join("bundle/config.json"))
            .expect("read the bundle's config.json");
        let config = serde_json::from_str(&text).expect("parse the bundle's config.json");
        Bundle { dir, config }
    }

    /// The bundle directory (config.json, rootfs/).
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("bundle")
    }

    /// The unpacked root filesystem, e.g. for
    /// `chroot ROOTFS /lib64/ld-linux-x86-64.so.2 --list BIN`.
    pub fn rootfs(&self) -> PathBuf {
        self.path().join("rootfs")
    }

    /// The runtime config umoci generated from the image config.
    pub fn config(&self) -> &Value {
        &self.config
    }

    /// Runs the bundle once with `runc run`, in a fresh container that is
    /// deleted afterwards. Panics if it outlives `opts.timeout`.
    pub fn run(&self, opts: &RunOpts) -> Output {
        let (id, child) = self.start(opts);
        let delete = || run(Command::new("runc").args(["delete", "--force", &id]));
        // On timeout, SIGKILL the container's init, which ends every process
        // in its pid namespace (and closes our pipes), and remove its state;
        // `runc run` then returns.
        let result = wait_timeout(child, opts.timeout, || drop(delete()));
        // `runc run` deletes the container when it exits normally; this
        // covers a runc that was itself killed.
        delete();
        result.unwrap_or_else(|out| {
            panic!("container {id} timed out after {:?}: {out}", opts.timeout)
        })
    }

    /// Writes config.json for `opts` and starts `runc run` on the bundle,
    /// with piped output; returns the container id and the runc process.
    fn start(&self, opts: &RunOpts) -> (String, Child) {
        require_tool("runc");
        let config = runtime_config(&self.config, opts);
        let json = serde_json::to_vec_pretty(&config).expect("serialize config.json");
        std::fs::write(self.path().join("config.json"), json).expect("write config.json");
        let id = container_id();
        let child = Command::new("runc")
            .arg("run")
            .arg("--bundle")
            .arg(self.path())
            .arg(&id)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn runc: {e}"));
        (id, child)
    }

    /// Starts the bundle with `runc run` and returns at once, for servers:
    /// the container is killed and deleted when the [`Running`] is stopped or
    /// dropped. `opts.timeout` does not apply.
    pub fn spawn(&self, opts: &RunOpts) -> Running {
        let (id, mut child) = self.start(opts);
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        Running {
            id,
            child: Some(Started {
                runc: child,
                stdout,
                stderr,
            }),
        }
    }
}

/// A container started by [`Bundle::spawn`]: `runc run` in the foreground,
/// its output collected on other threads.
pub struct Running {
    id: String,
    /// `None` once stopped.
    child: Option<Started>,
}

/// `runc run` and the threads reading its stdout and stderr.
struct Started {
    runc: Child,
    stdout: JoinHandle<Vec<u8>>,
    stderr: JoinHandle<Vec<u8>>,
}

impl Running {
    /// The host pid of the container's init process once runc has started
    /// it, or `None` while it is being created or after it has exited.
    pub fn pid(&self) -> Option<u32> {
        let out = run(Command::new("runc").args(["state", &self.id]));
        if !out.status.success() {
            return None;
        }
        let state: Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("runc state printed bad JSON ({e}): {out}"));
        if state["status"] != "running" {
            return None;
        }
        state["pid"]
            .as_u64()
            .and_then(|p| u32::try_from(p).ok())
            .filter(|&p| p != 0)
    }

    /// Panics, with the container's output, if `runc run` has exited.
    #[track_caller]
    pub fn assert_running(&mut self) {
        let started = self.child.as_mut().expect("the container was stopped");
        if started.runc.try_wait().expect("wait for runc").is_some() {
            let out = self.stop();
            panic!("container exited early: {out}");
        }
    }

    /// Kills the container (SIGKILL to every process in it) and returns what
    /// it printed; its exit status is then runc's, after the kill.
    pub fn stop(&mut self) -> Output {
        let Started {
            runc: mut child,
            stdout,
            stderr,
        } = self.child.take().expect("the container was stopped");
        // Removes the container whatever its state; `runc run` then returns.
        let _ = run(Command::new("runc").args(["delete", "--force", &self.id]));
        let grace = Instant::now() + Duration::from_secs(5);
        while child.try_wait().expect("wait for runc").is_none() && Instant::now() < grace {
            std::thread::sleep(POLL);
        }
        let _ = child.kill();
        let status = child.wait().expect("wait for runc");
        Output {
            status,
            stdout: join(stdout),
            stderr: join(stderr),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
    }
}

/// Unpacks `layout:tag` and runs it once with runc; see [`Bundle`] to look at
/// the root filesystem or run it more than once.
pub fn run_image(layout: &Path, tag: &str, opts: RunOpts) -> Output {
    Bundle::unpack(layout, tag).run(&opts)
}

/// umoci's config.json with `opts` applied.
fn runtime_config(base: &Value, opts: &RunOpts) -> Value {
    let mut config = base.clone();
    let process = &mut config["process"];
    // Our stdio are pipes; a terminal would need a console socket.
    process["terminal"] = Value::Bool(false);
    if let Some(args) = &opts.args {
        process["args"] = args.clone().into();
    }
    if let Some((uid, gid)) = opts.user {
        process["user"] = serde_json::json!({ "uid": uid, "gid": gid });
    }
    if let Some(cwd) = &opts.cwd {
        process["cwd"] = cwd.clone().into();
    }
    if !opts.env.is_empty() {
        let mut env: Vec<String> =
            serde_json::from_value(process["env"].take()).unwrap_or_default();
        for entry in &opts.env {
            let name = entry.split('=').next().unwrap_or(entry);
            match env.iter_mut().find(|e| e.split('=').next() == Some(name)) {
                Some(old) => old.clone_from(entry),
                None => env.push(entry.clone()),
            }
        }
        process["env"] = env.into();
    }
    if opts.host_network
        && let Some(namespaces) = config["linux"]["namespaces"].as_array_mut()
    {
        namespaces.retain(|ns| ns["type"] != "network");
    }
    config
}

/// A container id no other run on this host uses at the same time (runc's
/// state under /run/runc is global).
fn container_id() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("mkimage-it-{}-{n}", std::process::id())
}
