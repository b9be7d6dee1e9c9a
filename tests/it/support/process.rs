//! Running host commands from tests: to completion, with a time limit, or
//! checked to succeed, with what they printed.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a container may run before it is killed. Generous: the machines
/// have two cores shared by parallel tests.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// How often a running child is polled for exit.
pub(super) const POLL: Duration = Duration::from_millis(10);

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

/// Waits for `child`, collecting its output. After `timeout`, calls `stop`,
/// then kills the child if it is still there, and returns the output so far
/// as the error.
pub(super) fn wait_timeout(
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
pub(super) fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut buf);
        }
        buf
    })
}

pub(super) fn join(reader: JoinHandle<Vec<u8>>) -> String {
    String::from_utf8_lossy(&reader.join().expect("pipe reader panicked")).into_owned()
}
