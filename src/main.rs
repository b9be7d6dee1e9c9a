//! The `mkimage` binary: parses arguments, runs the library, maps errors to
//! exit codes. Everything else lives in the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = mkimage::cli::parse();
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
            anstream::eprintln!(
                "mkimage: {} {}",
                mkimage::cli::style::error(),
                mkimage::cli::message(&e)
            );
            ExitCode::from(mkimage::cli::EXIT_ERROR)
        }
    }
}
