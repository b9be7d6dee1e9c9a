//! Test harness: runs the built `mkimage`, then checks and runs the images it
//! writes with the reference tools (umoci + runc, podman, skopeo,
//! oci-image-tool), and reads the layouts it writes (index, manifests,
//! configs, layer tars) directly.
//!
//! Every helper that needs a tool calls [`require_tool`] first, so a missing
//! tool fails the test with a message naming the fix instead of skipping it.
//! Tests that need root or runc are `#[ignore = "needs root/runc"]`;
//! `scripts/test` installs the tools and runs them with `--include-ignored`.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mkimage::oci::Digest;
use serde_json::Value;
use tempfile::TempDir;

/// How long a container may run before it is killed. Generous: the machines
/// have two cores shared by parallel tests.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// podman copies the image into its store before running it, so it gets more.
const PODMAN_TIMEOUT: Duration = Duration::from_secs(120);

/// How often a running child is polled for exit.
const POLL: Duration = Duration::from_millis(10);

/// The built `mkimage` binary, with its layer cache under target/ (one
/// for every test, so they also run it concurrently), never the user's.
pub fn mkimage() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mkimage"));
    cmd.env(
        "XDG_CACHE_HOME",
        concat!(env!("CARGO_TARGET_TMPDIR"), "/xdg-cache"),
    )
    .env_remove("MKIMAGE_CACHE_SIZE");
    cmd
}

/// A new temporary directory, removed on drop.
pub fn tempdir() -> TempDir {
    tempfile::Builder::new()
        .prefix("mkimage-it-")
        .tempdir()
        .expect("create a temporary directory")
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Panics unless `name` is an executable on `PATH`. Tests fail, never skip,
/// when a tool is missing.
pub fn require_tool(name: &str) {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path).any(|dir| {
        std::fs::metadata(dir.join(name)).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0)
    });
    assert!(
        found,
        "{name} is not installed (not on PATH={}): run scripts/test, which installs it",
        path.to_string_lossy()
    );
}

/// Panics unless the test runs as root, which umoci unpack (to keep owners)
/// and runc need.
pub fn require_root() {
    // /proc/self belongs to the effective uid; this avoids `unsafe` geteuid.
    let uid = std::fs::metadata("/proc/self")
        .expect("stat /proc/self")
        .uid();
    assert_eq!(uid, 0, "this test needs root: run scripts/test as root");
}

/// What a process printed, and how it ended.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Panics, showing both streams, unless the process exited 0.
    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        assert!(self.status.success(), "{self}");
        self
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Runs a host command to completion (stdin closed) and returns its output.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    Output {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// [`run`], but the command is killed, and the test fails, if it is still
/// running after `timeout`: for commands whose bug would be a hang.
#[track_caller]
pub fn run_within(cmd: &mut Command, timeout: Duration) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    match wait_timeout(child, timeout, || {}) {
        Ok(out) => out,
        Err(out) => panic!("{cmd:?} still running after {timeout:?}, killed: {out}"),
    }
}

/// Runs a host command and panics, with its output, unless it exits 0.
#[track_caller]
pub fn check(cmd: &mut Command) -> Output {
    let out = run(cmd);
    assert!(out.status.success(), "{cmd:?} failed: {out}");
    out
}

/// Compiles one C file with gcc; `flags` such as `-static` go before the
/// source. Returns the executable's path, `dir/name`.
pub fn cc(dir: &Path, name: &str, source: &str, flags: &[&str]) -> PathBuf {
    require_tool("gcc");
    let src = dir.join(format!("{name}.c"));
    std::fs::write(&src, source).expect("write C source");
    let exe = dir.join(name);
    check(
        // Flags after the source, so that `-lfoo` can satisfy it.
        Command::new("gcc")
            .arg("-o")
            .arg(&exe)
            .arg(&src)
            .args(flags),
    );
    exe
}

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

/// `oci:`-style `DIR:TAG`, as umoci, skopeo and podman take it.
fn image_ref(layout: &Path, tag: &str) -> String {
    format!("{}:{tag}", layout.display())
}

/// Waits for `child`, collecting its output. After `timeout`, calls `stop`,
/// then kills the child if it is still there, and returns the output so far
/// as the error.
fn wait_timeout(
    mut child: Child,
    timeout: Duration,
    stop: impl FnOnce(),
) -> Result<Output, Output> {
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            break status;
        }
        if Instant::now() >= deadline {
            timed_out = true;
            stop();
            // Give the child a moment to exit on its own after `stop`.
            let grace = Instant::now() + Duration::from_secs(5);
            while child.try_wait().expect("wait for child").is_none() && Instant::now() < grace {
                std::thread::sleep(POLL);
            }
            let _ = child.kill();
            break child.wait().expect("wait for killed child");
        }
        std::thread::sleep(POLL);
    };
    let out = Output {
        status,
        stdout: join(stdout),
        stderr: join(stderr),
    };
    if timed_out { Err(out) } else { Ok(out) }
}

/// Reads a pipe to its end on another thread, so neither pipe can fill up
/// and block the child.
fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut buf);
        }
        buf
    })
}

fn join(reader: JoinHandle<Vec<u8>>) -> String {
    String::from_utf8_lossy(&reader.join().expect("pipe reader panicked")).into_owned()
}

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

/// `skopeo inspect oci:DIR:TAG`: digest, layers, architecture, env, labels.
pub fn skopeo_inspect(layout: &Path, tag: &str) -> Value {
    skopeo(&["inspect"], layout, tag)
}

/// `skopeo inspect --config oci:DIR:TAG`: the image config blob as written.
pub fn skopeo_inspect_config(layout: &Path, tag: &str) -> Value {
    skopeo(&["inspect", "--config"], layout, tag)
}

fn skopeo(args: &[&str], layout: &Path, tag: &str) -> Value {
    require_tool("skopeo");
    let out = check(
        Command::new("skopeo")
            .args(args)
            .arg(format!("oci:{}", image_ref(layout, tag))),
    );
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("skopeo printed bad JSON ({e}): {out}"))
}

/// Checks an image layout against the OCI image spec with oci-image-tool.
/// Debian's oci-image-tool 1.0.0-rc1 has `--type imageLayout` unimplemented;
/// `--type image` on a directory detects the layout and checks every ref in
/// its index (blobs, digests, sizes, media types), so no `--ref` is needed.
#[track_caller]
pub fn validate_layout(layout: &Path) {
    require_tool("oci-image-tool");
    check(
        Command::new("oci-image-tool")
            .args(["validate", "--type", "image"])
            .arg(layout),
    );
}

// ---- reading a layout -------------------------------------------------------
//
// Read straight from the layout's files (no tools, no root): every blob is
// checked against its digest and size as it is read.

/// The annotation an image layout's index names each image by.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The annotation mkimage puts on each layer descriptor of a manifest: base,
/// libs, runtime, deps or app.
pub const LAYER_ANNOTATION: &str = "org.mkimage.layer";

pub fn read_json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// The layout's index.json.
pub fn index(layout: &Path) -> Value {
    read_json(&layout.join("index.json"))
}

/// Every `(ref name, manifest digest)` in the index, in index order.
pub fn index_refs(layout: &Path) -> Vec<(String, String)> {
    index(layout)["manifests"]
        .as_array()
        .expect("index.json has a manifests array")
        .iter()
        .map(|m| {
            (
                m["annotations"][REF_NAME]
                    .as_str()
                    .unwrap_or_else(|| panic!("index entry without {REF_NAME}: {m}"))
                    .to_owned(),
                m["digest"].as_str().expect("index entry digest").to_owned(),
            )
        })
        .collect()
}

/// The blob `digest` names, checked against its digest and, when given, its
/// size.
pub fn blob(layout: &Path, descriptor: &Value) -> Vec<u8> {
    let digest: Digest = descriptor["digest"]
        .as_str()
        .unwrap_or_else(|| panic!("descriptor without digest: {descriptor}"))
        .parse()
        .expect("a sha256 digest");
    let path = layout.join("blobs/sha256").join(digest.hex());
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert_eq!(
        Digest::of(&bytes),
        digest,
        "{} has the wrong content",
        path.display()
    );
    assert_eq!(
        descriptor["size"].as_u64(),
        Some(bytes.len() as u64),
        "size of {digest}"
    );
    bytes
}

/// The index entry tagged `tag`; panics unless there is exactly one.
pub fn index_entry(layout: &Path, tag: &str) -> Value {
    let index = index(layout);
    let entries: Vec<&Value> = index["manifests"]
        .as_array()
        .expect("index.json has a manifests array")
        .iter()
        .filter(|m| m["annotations"][REF_NAME] == tag)
        .collect();
    assert_eq!(entries.len(), 1, "entries tagged {tag} in {index}");
    entries[0].clone()
}

/// The manifest digest tagged `tag`.
pub fn manifest_digest(layout: &Path, tag: &str) -> String {
    index_entry(layout, tag)["digest"]
        .as_str()
        .expect("digest")
        .to_owned()
}

/// The manifest tagged `tag`.
pub fn manifest(layout: &Path, tag: &str) -> Value {
    let entry = index_entry(layout, tag);
    assert_eq!(
        entry["mediaType"], "application/vnd.oci.image.manifest.v1+json",
        "{entry}"
    );
    serde_json::from_slice(&blob(layout, &entry)).expect("manifest is JSON")
}

/// The image config tagged `tag`.
pub fn config(layout: &Path, tag: &str) -> Value {
    let manifest = manifest(layout, tag);
    serde_json::from_slice(&blob(layout, &manifest["config"])).expect("config is JSON")
}

/// The layer digests of the image tagged `tag`, bottom first.
pub fn layer_digests(layout: &Path, tag: &str) -> Vec<String> {
    manifest(layout, tag)["layers"]
        .as_array()
        .expect("manifest layers")
        .iter()
        .map(|l| l["digest"].as_str().expect("layer digest").to_owned())
        .collect()
}

/// One entry of a layer tar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File(Vec<u8>),
    Dir,
    Symlink(String),
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

/// A layer's entries by path, normalized to `etc/passwd` (no `./`, no
/// leading or trailing `/`).
pub type Layer = BTreeMap<String, Entry>;

/// Every layer of the image tagged `tag`, bottom first.
pub fn layers(layout: &Path, tag: &str) -> Vec<Layer> {
    let manifest = manifest(layout, tag);
    manifest["layers"]
        .as_array()
        .expect("manifest layers")
        .iter()
        .map(|descriptor| {
            let bytes = blob(layout, descriptor);
            match descriptor["mediaType"].as_str() {
                Some("application/vnd.oci.image.layer.v1.tar+gzip") => {
                    read_tar(flate2::read::MultiGzDecoder::new(&bytes[..]))
                }
                Some("application/vnd.oci.image.layer.v1.tar+zstd") => {
                    read_tar(zstd::stream::read::Decoder::new(&bytes[..]).expect("zstd decoder"))
                }
                Some("application/vnd.oci.image.layer.v1.tar") => read_tar(&bytes[..]),
                other => panic!("unexpected layer media type {other:?}"),
            }
        })
        .collect()
}

fn read_tar(reader: impl Read) -> Layer {
    let mut archive = tar::Archive::new(reader);
    let mut layer = Layer::new();
    for entry in archive.entries().expect("read layer tar") {
        let mut entry = entry.expect("layer tar entry");
        let path = entry
            .path()
            .expect("entry path")
            .to_string_lossy()
            .into_owned();
        let path = path.trim_start_matches("./").trim_matches('/').to_owned();
        let header = entry.header();
        let (mode, uid, gid) = (
            header.mode().expect("mode"),
            header.uid().expect("uid"),
            header.gid().expect("gid"),
        );
        let kind = match header.entry_type() {
            tar::EntryType::Regular => {
                let mut data = Vec::new();
                entry.read_to_end(&mut data).expect("read entry");
                Kind::File(data)
            }
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Symlink => Kind::Symlink(
                entry
                    .link_name()
                    .expect("link name")
                    .expect("symlink target")
                    .to_string_lossy()
                    .into_owned(),
            ),
            other => Kind::Other(format!("{other:?}")),
        };
        let old = layer.insert(
            path.clone(),
            Entry {
                kind,
                mode,
                uid,
                gid,
            },
        );
        assert!(old.is_none(), "{path} appears twice in one layer");
    }
    layer
}

/// The layers stacked: later layers replace earlier entries.
pub fn merged(layers: &[Layer]) -> Layer {
    let mut all = Layer::new();
    for layer in layers {
        for (path, entry) in layer {
            assert!(
                !path.rsplit('/').next().unwrap_or("").starts_with(".wh."),
                "unexpected whiteout {path}"
            );
            all.insert(path.clone(), entry.clone());
        }
    }
    all
}

/// Follows symlinks through the stacked layers the way the kernel would
/// inside the image, and returns the path `path` ends at.
pub fn resolve(tree: &Layer, path: &str) -> String {
    let mut pending: Vec<String> = path
        .split('/')
        .filter(|c| !c.is_empty())
        .rev()
        .map(str::to_owned)
        .collect();
    let mut done: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(component) = pending.pop() {
        match component.as_str() {
            "." => continue,
            ".." => {
                done.pop();
                continue;
            }
            _ => {}
        }
        done.push(component);
        let here = done.join("/");
        if let Some(Entry {
            kind: Kind::Symlink(target),
            ..
        }) = tree.get(&here)
        {
            hops += 1;
            assert!(hops < 40, "too many symlinks resolving {path}");
            done.pop();
            if target.starts_with('/') {
                done.clear();
            }
            pending.extend(
                target
                    .split('/')
                    .filter(|c| !c.is_empty())
                    .rev()
                    .map(str::to_owned),
            );
        }
    }
    done.join("/")
}

/// The `org.mkimage.layer` name of each layer of the image tagged `tag`,
/// bottom first.
pub fn layer_names(layout: &Path, tag: &str) -> Vec<String> {
    manifest(layout, tag)["layers"]
        .as_array()
        .expect("manifest layers")
        .iter()
        .map(|l| {
            l["annotations"][LAYER_ANNOTATION]
                .as_str()
                .unwrap_or_else(|| panic!("layer without {LAYER_ANNOTATION}: {l}"))
                .to_owned()
        })
        .collect()
}

/// The layers of the image tagged `tag` by their `org.mkimage.layer` name;
/// panics if a name appears twice.
pub fn named_layers(layout: &Path, tag: &str) -> BTreeMap<String, Layer> {
    let names = layer_names(layout, tag);
    let mut named = BTreeMap::new();
    for (name, layer) in names.iter().zip(layers(layout, tag)) {
        let old = named.insert(name.clone(), layer);
        assert!(old.is_none(), "two {name} layers in {names:?}");
    }
    named
}

/// The referrers the index entry tagged `tag` names (mkimage's
/// `org.mkimage.referrers` annotation): (artifact type, artifact
/// manifest, its blob), each checked against its digest, sorted by type.
pub fn referrers(layout: &Path, tag: &str) -> Vec<(String, Value, Vec<u8>)> {
    let entry = index_entry(layout, tag);
    let digest = entry["annotations"]["org.mkimage.referrers"]
        .as_str()
        .unwrap_or_else(|| panic!("no referrers annotation on {entry}"));
    let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
    let size = std::fs::metadata(layout.join("blobs/sha256").join(hex))
        .expect("the referrers index is in the layout")
        .len();
    let index: Value = serde_json::from_slice(&blob(
        layout,
        &serde_json::json!({"digest": digest, "size": size}),
    ))
    .expect("referrers index is JSON");
    index["manifests"]
        .as_array()
        .expect("referrers index manifests")
        .iter()
        .map(|d| {
            let manifest: Value =
                serde_json::from_slice(&blob(layout, d)).expect("artifact manifest is JSON");
            let data = blob(layout, &manifest["layers"][0]);
            (
                d["artifactType"].as_str().expect("artifactType").to_owned(),
                manifest,
                data,
            )
        })
        .collect()
}

/// `mkimage -o LAYOUT -t TAG ARGS...` without SOURCE_DATE_EPOCH from the
/// test's environment; panics unless it succeeds.
pub fn build(layout: &Path, tag: &str, args: &[String]) -> Output {
    check(
        mkimage()
            .env_remove("SOURCE_DATE_EPOCH")
            .arg("-o")
            .arg(layout)
            .args(["-t", tag])
            .args(args),
    )
}

/// The contents of the regular file `path` in `layer`; panics otherwise.
#[track_caller]
pub fn file_in(layer: &Layer, path: &str) -> Vec<u8> {
    match layer.get(path).map(|e| &e.kind) {
        Some(Kind::File(data)) => data.clone(),
        other => panic!("{path}: expected a regular file, found {other:?}"),
    }
}
