//! Test programs compiled on the spot (no binary fixtures are committed).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::host::require_tool;
use super::process::check;

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
