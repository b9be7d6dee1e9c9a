//! `--diff OTHER` and `--html FILE`: two images compared, as text, JSON
//! or a self-contained page.

use std::io::{self, Write};
use std::path::Path;

use anyhow::Context;

use crate::cli::{Outcome, human};
use crate::inspect::{Image, diff, html, printable};

/// `--html FILE [--diff OTHER]`: the page, written through a temporary
/// file beside FILE, so FILE is either the old page or the whole new one.
pub(super) fn write_html(
    image: &mut Image,
    diff: Option<&str>,
    page: &Path,
) -> anyhow::Result<Outcome> {
    let loaded = html::load(image)?;
    let other = match diff {
        Some(reference) => {
            let mut other =
                Image::open(reference).with_context(|| format!("--diff {reference}"))?;
            let loaded = html::load(&mut other).with_context(|| format!("--diff {reference}"))?;
            Some((other, loaded))
        }
        None => None,
    };
    let text = html::render((image, &loaded), other.as_ref().map(|(i, l)| (i, l)));
    let dir = match page.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let cannot = || format!("cannot write {}", page.display());
    let mut tmp = tempfile::Builder::new()
        // 0666 less the umask, as a file the shell writes (not 0600).
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(dir)
        .with_context(cannot)?;
    tmp.write_all(text.as_bytes()).with_context(cannot)?;
    tmp.persist(page).with_context(cannot)?;
    println!("Wrote {} ({})", page.display(), human(text.len() as u64));
    Ok(Outcome::success())
}

/// Files shown by the text `--diff`; `--json` has them all.
const DIFF_FILES: usize = 40;

/// `--diff OTHER` without `--html`: the comparison as text or JSON.
pub(super) fn print_diff(image: &mut Image, other: &str, json: bool) -> anyhow::Result<Outcome> {
    let new = html::load(image)?;
    let mut old_image = Image::open(other).with_context(|| format!("--diff {other}"))?;
    let old = html::load(&mut old_image).with_context(|| format!("--diff {other}"))?;
    let d = diff::diff(&new.side(), &old.side());
    let mut out = io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &d)?;
        writeln!(out)?;
        return Ok(Outcome::success());
    }
    let signed = |n: i128| {
        let sign = if n < 0 { '-' } else { '+' };
        format!(
            "{sign}{}",
            human(u64::try_from(n.unsigned_abs()).unwrap_or(u64::MAX))
        )
    };
    let growth = i128::from(d.new_bytes) - i128::from(d.old_bytes);
    writeln!(
        out,
        "{} against {}: {} -> {} ({})",
        image.summary().image,
        old_image.summary().image,
        human(d.old_bytes),
        human(d.new_bytes),
        signed(growth)
    )?;
    writeln!(
        out,
        "{} files added, {} removed, {} changed in size",
        d.added, d.removed, d.changed
    )?;
    if !d.packages.is_empty() {
        writeln!(out, "\nPackages:")?;
        for p in &d.packages {
            let change = i128::from(p.new_bytes) - i128::from(p.old_bytes);
            writeln!(
                out,
                "  {:>12}  {}  ({} -> {})",
                signed(change),
                p.name,
                human(p.old_bytes),
                human(p.new_bytes)
            )?;
        }
    }
    if !d.files.is_empty() {
        writeln!(out, "\nFiles, largest growth first:")?;
        for f in d.files.iter().take(DIFF_FILES) {
            let state = match (f.old_size, f.new_size) {
                (None, _) => " (new)",
                (_, None) => " (removed)",
                _ => "",
            };
            writeln!(
                out,
                "  {:>12}  {}{state}",
                signed(f.delta()),
                printable(&f.path)
            )?;
            if let Some(why) = &f.why {
                writeln!(out, "  {:>12}  {}", "", printable(why))?;
            }
        }
        if d.files.len() > DIFF_FILES {
            writeln!(
                out,
                "  ... {} more (--json lists all)",
                d.files.len() - DIFF_FILES
            )?;
        }
    }
    Ok(Outcome::success())
}
