//! The `mkimage` binary under test, and a build with it.

use std::path::Path;
use std::process::Command;

use super::process::{Output, check};

/// The built `mkimage` binary.
pub fn mkimage() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mkimage"))
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
