//! The `mkimage` binary under test, and a build with it.

use std::path::Path;
use std::process::Command;

use super::process::{Output, check};

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
