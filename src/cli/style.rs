//! Colour on the terminal: `--color auto|always|never` and `NO_COLOR`
//! (no-color.org) decide it once, before parsing, for clap's help and
//! errors and for mkimage's own `error:`/`warning:`/`note:` labels.
//!
//! Output goes through `anstream`, which drops the escapes unless the
//! choice says colour: `auto` means a terminal that is not `TERM=dumb`,
//! with `NO_COLOR` unset (or `CLICOLOR_FORCE` set); `always` and `never`
//! override the environment, as an explicit flag should.

use std::ffi::OsString;

use anstyle::{AnsiColor, Style};
use clap::ColorChoice;

const ERROR: Style = AnsiColor::Red.on_default().bold();
const WARNING: Style = AnsiColor::Yellow.on_default().bold();
const NOTE: Style = AnsiColor::Cyan.on_default().bold();

/// The `--color` value among raw arguments (the last one wins, as clap's
/// own parse will say), read before clap parses so that its help and
/// usage errors follow it too. `None` when absent or not one of the
/// three values (clap then rejects it).
pub(crate) fn color_flag(args: &[OsString]) -> Option<ColorChoice> {
    let mut choice = None;
    let mut args = args.iter().skip(1).map(|a| a.to_str().unwrap_or_default());
    while let Some(arg) = args.next() {
        let value = match arg {
            "--" => break,
            "--color" => args.next().unwrap_or_default(),
            a => match a.strip_prefix("--color=") {
                Some(v) => v,
                None => continue,
            },
        };
        choice = match value {
            "auto" => Some(ColorChoice::Auto),
            "always" => Some(ColorChoice::Always),
            "never" => Some(ColorChoice::Never),
            _ => choice,
        };
    }
    choice
}

/// Makes `choice` the one every `anstream` stream follows.
pub(crate) fn apply(choice: ColorChoice) {
    match choice {
        ColorChoice::Auto => anstream::ColorChoice::Auto,
        ColorChoice::Always => anstream::ColorChoice::Always,
        ColorChoice::Never => anstream::ColorChoice::Never,
    }
    .write_global();
}

/// `error:` in bold red (escapes the stream drops when colour is off).
pub fn error() -> String {
    label(ERROR, "error:")
}

/// `warning:` in bold yellow.
pub fn warning() -> String {
    label(WARNING, "warning:")
}

/// `note:` in bold cyan.
pub fn note() -> String {
    label(NOTE, "note:")
}

fn label(style: Style, text: &str) -> String {
    format!("{style}{text}{style:#}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_color_flag_before_a_double_dash_wins() {
        let args = |a: &[&str]| -> Vec<OsString> {
            std::iter::once("mkimage")
                .chain(a.iter().copied())
                .map(OsString::from)
                .collect()
        };
        for (given, want) in [
            (&[][..], None),
            (&["--color", "never"][..], Some(ColorChoice::Never)),
            (&["--color=always"][..], Some(ColorChoice::Always)),
            (
                &["inspect", "x", "--color", "always", "--color=auto"][..],
                Some(ColorChoice::Auto),
            ),
            (
                &["--color=never", "--color=purple"][..],
                Some(ColorChoice::Never),
            ),
            (&["--", "--color=never"][..], None),
            (&["--color"][..], None),
        ] {
            assert_eq!(color_flag(&args(given)), want, "{given:?}");
        }
    }

    #[test]
    fn labels_are_styled_and_strip_to_plain_text() {
        assert_eq!(error(), "\x1b[1m\x1b[31merror:\x1b[0m");
        let mut plain = anstream::StripStream::new(Vec::new());
        std::io::Write::write_all(&mut plain, warning().as_bytes()).unwrap();
        assert_eq!(plain.into_inner(), b"warning:");
    }
}
