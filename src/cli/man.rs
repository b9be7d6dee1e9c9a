//! `mkimage man [SUBCOMMAND] [--dir DIR]`: manual pages in roff, generated
//! from the clap definitions (the same text as `--help`, examples
//! included), so they never fall behind a flag.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::CommandFactory;

const EXAMPLES: &str = "Examples:
  mkimage man | man -l -
  mkimage man inspect | man -l -
  mkimage man --dir /usr/local/share/man/man1 && mandb -q

With --dir, writes mkimage.1 and one page per subcommand (mkimage-inspect.1, ...).";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct ManArgs {
    /// The subcommand whose page to print (e.g. inspect) [default:
    /// mkimage's own]
    #[arg(conflicts_with = "dir")]
    subcommand: Option<String>,
    /// Write every page (mkimage.1, mkimage-SUBCOMMAND.1) into DIR instead
    /// of printing one; DIR must exist
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

pub fn run(args: ManArgs) -> anyhow::Result<super::Outcome> {
    let pages = pages();
    if let Some(dir) = &args.dir {
        for (name, text) in &pages {
            write_page(dir, name, text)?;
        }
        return Ok(super::Outcome::success());
    }
    let want = match &args.subcommand {
        Some(sub) => format!("mkimage-{sub}.1"),
        None => "mkimage.1".to_owned(),
    };
    let Some((_, text)) = pages.iter().find(|(name, _)| *name == want) else {
        // Checked here, not by clap, so the list is never one to keep
        // in step with the subcommands by hand.
        let names: Vec<&str> = pages
            .iter()
            .filter_map(|(n, _)| n.strip_prefix("mkimage-")?.strip_suffix(".1"))
            .collect();
        bail!(
            "no manual page {want}: the subcommands are {}",
            names.join(", ")
        );
    };
    let mut out = io::stdout().lock();
    out.write_all(text)?;
    out.flush()?;
    Ok(super::Outcome::success())
}

/// Every page as (file name, roff): mkimage.1 first, then one per
/// subcommand in the order `--help` lists them.
fn pages() -> Vec<(String, Vec<u8>)> {
    // The built-in `help` subcommand has no page of its own: `--help` is
    // on every page's synopsis.
    let mut cmd = super::Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut commands = vec![cmd.clone()];
    commands.extend(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    commands.into_iter().map(page).collect()
}

/// One page: clap_mangen's sections, but the `after_help` text (examples,
/// notes, exit status) as man-pages(7) sections instead of clap_mangen's
/// one filled "EXTRA", which would reflow the examples' lines.
fn page(cmd: clap::Command) -> (String, Vec<u8>) {
    let after = cmd.get_after_help().map(|h| h.to_string());
    let has_args = cmd.get_arguments().any(|a| !a.is_hide_set());
    let has_subcommands = cmd.get_subcommands().any(|s| !s.is_hide_set());
    let man = clap_mangen::Man::new(cmd)
        .source(format!("mkimage {}", env!("CARGO_PKG_VERSION")))
        .manual("User Commands");
    let mut text = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = man.render_title(&mut text);
    let _ = man.render_name_section(&mut text);
    let _ = man.render_synopsis_section(&mut text);
    let _ = man.render_description_section(&mut text);
    if has_args {
        let _ = man.render_options_section(&mut text);
    }
    if has_subcommands {
        let _ = man.render_subcommands_section(&mut text);
    }
    if let Some(after) = after {
        text.extend(after_help(&after).render().into_bytes());
    }
    (man.get_filename(), text)
}

/// The `after_help` text: paragraphs split at blank lines. A paragraph of
/// a heading line ("Examples:") and indented lines is kept line for line
/// (`.nf`, as man-pages(7) asks of examples); "Exit status: ..." is the
/// EXIT STATUS section; other paragraphs are NOTES, filled.
fn after_help(text: &str) -> roff::Roff {
    let mut examples = Vec::new();
    let mut notes = Vec::new();
    let mut exit = Vec::new();
    for para in text
        .split("\n\n")
        .map(str::trim_end)
        .filter(|p| !p.is_empty())
    {
        let mut lines = para.lines();
        let head = lines.next().unwrap_or_default();
        let body: Vec<&str> = lines.collect();
        if let Some(rest) = head.strip_prefix("Exit status:") {
            exit.push(para.replacen(head, rest.trim_start(), 1));
        } else if head.ends_with(':')
            && !body.is_empty()
            && body.iter().all(|l| l.starts_with("  "))
        {
            examples.push((head.trim_end_matches(':'), body));
        } else {
            notes.push(para.to_owned());
        }
    }
    let mut roff = roff::Roff::new();
    if !examples.is_empty() {
        roff.control("SH", ["EXAMPLES"]);
        for (head, body) in examples {
            if head != "Examples" {
                roff.control("PP", [])
                    .text([roff::roman(format!("{head}:"))]);
            }
            roff.control("PP", [])
                .control("nf", [])
                .control("RS", ["4"]);
            for line in body {
                roff.text([roff::roman(line.trim_start())]);
            }
            roff.control("RE", []).control("fi", []);
        }
    }
    for (title, paras) in [("NOTES", notes), ("EXIT STATUS", exit)] {
        if paras.is_empty() {
            continue;
        }
        roff.control("SH", [title]);
        for p in paras {
            roff.control("PP", [])
                .text([roff::roman(p.replace('\n', " "))]);
        }
    }
    roff
}

/// Writes one page through a temporary file, so a page is never half
/// there (a reader such as mandb may be scanning the directory).
fn write_page(dir: &Path, name: &str, text: &[u8]) -> anyhow::Result<()> {
    let path = dir.join(name);
    let mut tmp = tempfile::Builder::new()
        // 0666 less the umask, as a file the shell writes (not 0600).
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(dir)
        .with_context(|| format!("cannot write manual pages into {}", dir.display()))?;
    tmp.write_all(text)
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.persist(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_per_subcommand() {
        let names: Vec<String> = pages().into_iter().map(|(n, _)| n).collect();
        let mut want = vec!["mkimage.1".to_owned()];
        let cmd = super::super::Cli::command();
        want.extend(
            cmd.get_subcommands()
                .map(|s| format!("mkimage-{}.1", s.get_name())),
        );
        assert_eq!(names, want);
        assert!(names.contains(&"mkimage-inspect.1".to_owned()), "{names:?}");
    }

    #[test]
    fn pages_hold_the_help_text() {
        let pages = pages();
        let top = String::from_utf8_lossy(&pages[0].1);
        assert!(top.contains(".TH mkimage 1"), "{top}");
        assert!(top.contains("from\\-binary"), "{top}");
        let inspect = String::from_utf8_lossy(&pages[2].1);
        assert!(inspect.contains("mkimage\\-inspect"), "{inspect}");
        assert!(inspect.contains("\\-\\-why"), "{inspect}");
        assert!(inspect.contains(".SH EXAMPLES\n.PP\n.nf\n"), "{inspect}");
        assert!(inspect.contains(".SH \"EXIT STATUS\"\n"), "{inspect}");
        assert!(!inspect.contains("EXTRA"), "{inspect}");
    }

    #[test]
    fn after_help_sections() {
        let text =
            "Examples:\n  a --b\n  c\n\nRun it with:\n  d\n\nSome\nprose.\n\nExit status: 0 or 2.";
        let roff = after_help(text).to_roff();
        assert_eq!(
            roff,
            ".SH EXAMPLES\n.PP\n.nf\n.RS 4\na \\-\\-b\nc\n.RE\n.fi\n.PP\nRun it with:\n.PP\n.nf\n.RS 4\nd\n.RE\n.fi\n\
             .SH NOTES\n.PP\nSome prose.\n.SH \"EXIT STATUS\"\n.PP\n0 or 2.\n"
        );
    }
}
