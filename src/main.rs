//! The `mkimage` binary: parses arguments, runs the library, maps errors to
//! exit codes. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = mkimage::cli::Cli::parse();
    match mkimage::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            // A closed pipe (`mkimage ldd ... | head`) is not an error.
            if e.chain()
                .filter_map(|c| c.downcast_ref::<std::io::Error>())
                .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            {
                return ExitCode::SUCCESS;
            }
            eprintln!("mkimage: error: {}", mkimage::cli::message(&e));
            ExitCode::from(mkimage::cli::EXIT_ERROR)
        }
    }
}
