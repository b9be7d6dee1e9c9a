//! Command-line types (clap) and one file per subcommand. Raw arguments are
//! turned into validated plans here; the library below never sees clap.

mod build;
mod inspect;
mod ldd;
mod profiles;
mod push;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

/// Exit code when a needed file is not found.
pub const EXIT_NOT_FOUND: u8 = 1;
/// Exit code for bad input, bad usage or an I/O failure.
pub const EXIT_ERROR: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "mkimage",
    version,
    about = "Build minimal OCI container images straight from build artifacts: \
             no daemon, no root, no Dockerfile",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub build: build::BuildArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the shared libraries each ELF file needs, as glibc's loader finds them
    Ldd(ldd::LddArgs),
    /// Show an image's layers, config and files, and why a file is in it
    Inspect(inspect::InspectArgs),
    /// List the built-in runtime profiles, or print one
    Profiles(profiles::ProfilesArgs),
    /// Push an image from an OCI layout to a registry, without a daemon
    Push(push::PushArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Some(Command::Ldd(args)) => ldd::run(args),
        Some(Command::Inspect(args)) => inspect::run(args),
        Some(Command::Profiles(args)) => profiles::run(args),
        Some(Command::Push(args)) => push::run(args),
        None => build::run(cli.build),
    }
}

/// A spinner on stderr showing `{elapsed} {prefix}{msg}`, starting at
/// `first`; hidden when `quiet`.
pub(crate) fn spinner(quiet: bool, prefix: &str, first: &'static str) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) =
        ProgressStyle::with_template(&format!("{{spinner}} {{elapsed}} {prefix}{{msg}}"))
    {
        bar.set_style(style);
    }
    bar.set_message(first);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// A size for people: `1.5 KiB`.
pub(crate) fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}
