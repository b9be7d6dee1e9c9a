//! What the test host provides: scratch directories, free ports, the tools
//! a test needs, root. A missing tool or root fails the test with a message
//! naming the fix, never skips it.

use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;

use tempfile::TempDir;

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
