//! The `mkimage` binary: parses arguments, runs the library, and lets
//! [`mkimage::cli::finish`] print what the run says and map it to an exit
//! code. Everything else lives in the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = mkimage::cli::parse();
    mkimage::cli::finish(mkimage::cli::run(cli))
}
