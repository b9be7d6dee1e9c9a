//! Command-line types (clap) and one file (or folder) per subcommand. Raw
//! arguments are turned into validated plans here; the library below never
//! sees clap.
//!
//! Every subcommand returns an [`Outcome`] (or an error); [`finish`],
//! which `main` alone calls, prints its warnings and its error in one
//! format and maps it to the exit status ([`outcome`] has the table).

mod build;
mod cache;
mod completions;
mod inspect;
mod ldd;
mod man;
pub mod outcome;
pub mod output;
mod platforms;
mod profiles;
mod push;
pub mod style;

use std::ffi::OsString;
use std::io::IsTerminal;
use std::time::Duration;

use clap::{ColorChoice, CommandFactory, FromArgMatches, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

pub use self::outcome::{NotFound, Outcome, finish, message};

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
    /// Colour in messages and help: auto (on a terminal, unless NO_COLOR
    /// is set or TERM=dumb), always or never
    #[arg(long, global = true, value_name = "WHEN", default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

/// Parses the process's arguments, with `--color` (or `NO_COLOR`) already
/// in force for clap's own help and errors, and for ours.
pub fn parse() -> Cli {
    let args: Vec<OsString> = std::env::args_os().collect();
    let choice = style::color_flag(&args).unwrap_or(ColorChoice::Auto);
    style::apply(choice);
    let matches = Cli::command().color(choice).get_matches_from(args);
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
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
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions(completions::CompletionsArgs),
    /// Print the manual page, or write every page into a directory
    Man(man::ManArgs),
}

/// Runs the subcommand `cli` names (the build without one); what it
/// returns is for [`finish`] to print.
pub fn run(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Some(Command::Ldd(args)) => ldd::run(args),
        Some(Command::Inspect(args)) => inspect::run(args),
        Some(Command::Profiles(args)) => profiles::run(args),
        Some(Command::Push(args)) => push::run(args),
        Some(Command::Completions(args)) => completions::run(args),
        Some(Command::Man(args)) => man::run(args),
        None => build::run(cli.build),
    }
}

/// A spinner on stderr showing `{elapsed} {prefix}{msg}`, starting at
/// `first`; hidden when `quiet`, and when stderr is not a terminal (a log
/// or a pipe gets no redrawn lines to pick apart).
pub(crate) fn spinner(quiet: bool, prefix: &str, first: &'static str) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
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

#[cfg(test)]
mod tests {
    #[test]
    fn human_sizes() {
        assert_eq!(super::human(512), "512 B");
        assert_eq!(super::human(1536), "1.5 KiB");
        assert_eq!(super::human(8_912_896), "8.5 MiB");
    }
}
