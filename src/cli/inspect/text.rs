//! The human text of `inspect`: the summary, packages, files, a file's
//! why-chain, a multi-platform image's platforms.

use std::io::{self, Write};

use crate::cli::human;
use crate::inspect::{FileInfo, FileKind, Packages, Summary, Why, printable};

/// A multi-platform image: its platforms and their manifests.
pub(super) fn print_platforms(
    out: &mut impl Write,
    image: &str,
    platforms: &[(String, oci_spec::image::Descriptor)],
    json: bool,
) -> anyhow::Result<()> {
    let media_type = oci_spec::image::MediaType::ImageIndex.to_string();
    if json {
        let list: Vec<serde_json::Value> = platforms
            .iter()
            .map(|(p, d)| serde_json::json!({"platform": p, "digest": d.digest().to_string()}))
            .collect();
        let doc = serde_json::json!({"image": image, "mediaType": media_type, "platforms": list});
        serde_json::to_writer_pretty(&mut *out, &doc)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(out, "{:<12}{media_type}", "Index")?;
    for (p, d) in platforms {
        writeln!(out, "{:<12}{p:<16} {}", "Platform", d.digest())?;
    }
    writeln!(
        out,
        "Inspect one with --platform, e.g. --platform {}",
        platforms[0].0
    )?;
    Ok(())
}

pub(super) fn print_summary(out: &mut impl Write, s: &Summary) -> io::Result<()> {
    let c = &s.config;
    let field = |out: &mut dyn Write, name: &str, value: &str| writeln!(out, "{name:<12}{value}");
    let list = |out: &mut dyn Write, name: &str, values: &[String]| -> io::Result<()> {
        if values.is_empty() {
            return field(out, name, "-");
        }
        for (i, v) in values.iter().enumerate() {
            field(out, if i == 0 { name } else { "" }, v)?;
        }
        Ok(())
    };
    field(out, "Image", &format!("{} ({})", s.image, s.format.name()))?;
    list(out, "Tags", &s.tags)?;
    if let Some(m) = &s.manifest {
        field(out, "Digest", &m.digest.to_string())?;
    }
    field(out, "Config", &c.digest.to_string())?;
    let mut platform = format!("{}/{}", c.os, c.architecture);
    if let Some(v) = &c.variant {
        platform.push('/');
        platform.push_str(v);
    }
    field(out, "Platform", &platform)?;
    field(out, "Created", c.created.as_deref().unwrap_or("-"))?;
    field(out, "Entrypoint", &json_words(&c.entrypoint))?;
    field(out, "Cmd", &json_words(&c.cmd))?;
    field(out, "User", c.user.as_deref().unwrap_or("- (root)"))?;
    field(out, "Workdir", c.workdir.as_deref().unwrap_or("-"))?;
    list(out, "Env", &c.env)?;
    list(out, "Ports", &c.exposed_ports)?;
    let labels: Vec<String> = c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    list(out, "Labels", &labels)?;
    match &s.provenance {
        Some(p) => field(out, "Provenance", &format!("{p} (inspect --why PATH)"))?,
        None => field(out, "Provenance", "- (not built by mkimage)")?,
    }
    match &s.sbom {
        Some(p) => field(out, "SBOM", &format!("{p} (inspect --sbom)"))?,
        None => field(out, "SBOM", "-")?,
    }

    writeln!(out, "\nLayers:")?;
    writeln!(
        out,
        "  {:>2}  {:>10}  {:>10}  {:>6}  {:<8}  DIGEST",
        "#", "SIZE", "UNPACKED", "FILES", "WHAT"
    )?;
    for l in &s.layers {
        let unpacked = l.uncompressed_size.map_or("-".to_owned(), human);
        let files = l.files.map_or("-".to_owned(), |n| n.to_string());
        // A docker-archive names layers by diff_id (the uncompressed tar).
        let id = l
            .digest
            .or(l.diff_id)
            .map_or("-".to_owned(), |d| d.to_string());
        writeln!(
            out,
            "  {:>2}  {:>10}  {:>10}  {:>6}  {:<8}  {id}",
            l.index,
            human(l.size),
            unpacked,
            files,
            l.what
        )?;
    }
    Ok(())
}

/// Bytes by Debian package, largest first, from the image's records.
pub(super) fn print_packages(out: &mut impl Write, p: &Packages) -> io::Result<()> {
    if p.packages.is_empty() {
        return Ok(());
    }
    writeln!(out, "\nPackages ({}):", p.packages.len())?;
    writeln!(out, "  {:>10}  {:>6}  PACKAGE", "SIZE", "FILES")?;
    for u in &p.packages {
        let version = u
            .version
            .as_deref()
            .map(|v| format!(" {v}"))
            .unwrap_or_default();
        writeln!(
            out,
            "  {:>10}  {:>6}  {}{version}",
            human(u.size),
            u.files,
            u.name
        )?;
    }
    writeln!(
        out,
        "  {:>10}  {:>6}  (no package: the app, generated files, records)",
        human(p.other_size),
        p.other_files
    )
}

pub(super) fn print_files(out: &mut impl Write, files: &[FileInfo]) -> io::Result<()> {
    writeln!(out, "\nFiles ({}):", files.len())?;
    for f in files {
        let owner = format!("{}:{}", f.uid, f.gid);
        write!(
            out,
            "  {}  {:<11}  {:>10}  {:>2}  {}",
            mode_string(f.kind, f.mode),
            owner,
            f.size,
            f.layer,
            printable(&f.path)
        )?;
        match (&f.kind, &f.target) {
            (FileKind::Symlink, Some(t)) => write!(out, " -> {}", printable(t))?,
            (FileKind::Hardlink, Some(t)) => write!(out, " link to {}", printable(t))?,
            _ => {}
        }
        match &f.package {
            Some(p) => writeln!(out, "  [{p}]")?,
            None => writeln!(out)?,
        }
    }
    Ok(())
}

pub(super) fn print_why(out: &mut impl Write, why: &Why) -> io::Result<()> {
    if why.resolved != why.path {
        writeln!(
            out,
            "{} is {} (through symlinks)",
            printable(&why.path),
            printable(&why.resolved)
        )?;
    }
    if why.recorded != why.resolved {
        writeln!(
            out,
            "{} is under {}",
            printable(&why.resolved),
            printable(&why.recorded)
        )?;
    }
    for (i, step) in why.chain.iter().enumerate() {
        let lead = if i == 0 { "" } else { "  needed by " };
        writeln!(
            out,
            "{lead}{} (layer {})",
            printable(&step.path),
            step.layer
        )?;
        writeln!(out, "    {}", printable(&step.why))?;
    }
    Ok(())
}

/// Entrypoint and Cmd as JSON arrays: unambiguous with spaces in words.
fn json_words(words: &[String]) -> String {
    if words.is_empty() {
        "-".to_owned()
    } else {
        serde_json::to_string(words).unwrap_or_else(|_| words.join(" "))
    }
}

/// `ls -l`'s mode column: `drwxr-xr-x`, `-rwsr-xr-x`, `drwxrwxrwt`.
fn mode_string(kind: FileKind, mode: u32) -> String {
    let mut s = String::with_capacity(10);
    s.push(match kind {
        FileKind::Dir => 'd',
        FileKind::Symlink => 'l',
        FileKind::File | FileKind::Hardlink => '-',
        FileKind::Other => '?',
    });
    // (read, write, execute, special bit, special letter) per class.
    let classes = [
        (0o400, 0o200, 0o100, 0o4000, 's'),
        (0o040, 0o020, 0o010, 0o2000, 's'),
        (0o004, 0o002, 0o001, 0o1000, 't'),
    ];
    for (r, w, x, special, letter) in classes {
        s.push(if mode & r != 0 { 'r' } else { '-' });
        s.push(if mode & w != 0 { 'w' } else { '-' });
        s.push(match (mode & x != 0, mode & special != 0) {
            (true, true) => letter,
            (false, true) => letter.to_ascii_uppercase(),
            (true, false) => 'x',
            (false, false) => '-',
        });
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_strings() {
        for (kind, mode, want) in [
            (FileKind::Dir, 0o755, "drwxr-xr-x"),
            (FileKind::File, 0o644, "-rw-r--r--"),
            (FileKind::Dir, 0o1777, "drwxrwxrwt"),
            (FileKind::File, 0o4755, "-rwsr-xr-x"),
            (FileKind::File, 0o2644, "-rw-r-Sr--"),
            (FileKind::Symlink, 0o777, "lrwxrwxrwx"),
            (FileKind::Dir, 0o700, "drwx------"),
        ] {
            assert_eq!(mode_string(kind, mode), want, "{mode:o}");
        }
        assert_eq!(json_words(&["a b".into(), "c".into()]), r#"["a b","c"]"#);
        assert_eq!(json_words(&[]), "-");
    }
}
