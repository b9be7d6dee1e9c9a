//! `mkimage inspect IMAGE [--why PATH] [--sbom] [--json] [--html FILE
//! [--diff OTHER]]`: open the image (any source: layout, archive,
//! registry), print (or write) what the library found.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

use crate::inspect::{
    FileInfo, FileKind, Image, InspectError, Packages, Summary, Why, diff, html, printable,
};
use crate::source::Platform;

use super::push::RegistryArgs;
use super::{NotFound, Outcome, human};

const EXAMPLES: &str = "Examples:
  mkimage inspect curl.oci
  mkimage inspect curl.oci:curl:latest --why /usr/lib/x86_64-linux-gnu/libssl.so.3
  mkimage inspect curl.tar --json
  mkimage inspect curl.oci --sbom > curl.spdx.json
  mkimage inspect docker://localhost:5000/curl:latest --insecure-registry localhost:5000
  mkimage inspect docker-archive:curl.tar:curl:latest --platform linux/arm64
  mkimage inspect curl.oci --html report.html
  mkimage inspect new.oci --diff old.oci
  mkimage inspect new.oci --html report.html --diff old.oci

IMAGE is an OCI layout directory (DIR[:TAG] or oci:DIR[:TAG]), an archive
(FILE[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REF]) or an image
in a registry (docker://HOST[:PORT]/REPO[:TAG|@DIGEST]); add :TAG when a
layout or archive holds more than one image. From a multi-platform image,
the machine's own platform is shown unless --platform names another.
A path may have colons in its name: the whole argument when that path
exists, else the longest path before a ':' that exists, the rest being the
tag (app:1.oci:app:v1 is tag app:v1 of app:1.oci).

Exit status: 0 on success, 1 when the image or the --why PATH is not there,
2 on bad input.";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct InspectArgs {
    /// Layout directory or archive file, with :TAG to pick one of several images
    #[arg(value_name = "DIR[:TAG]|ARCHIVE[:TAG]|docker://REF")]
    image: String,
    /// From a multi-platform image, the one for this platform
    /// [default: this machine's]
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", value_parser = parse_platform)]
    platform: Option<Platform>,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Also trust this CA certificate (PEM) for the registry's TLS
    #[arg(long, value_name = "PEM")]
    ca_cert: Vec<PathBuf>,
    /// Print which artifact and dependency chain brought PATH into the image
    /// (images built by mkimage)
    #[arg(long, value_name = "PATH")]
    why: Option<String>,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
    /// Leave out the file list (and skip reading the layers)
    #[arg(long, conflicts_with = "why")]
    no_files: bool,
    /// Print the SPDX SBOM attached to the image, byte for byte
    #[arg(long, conflicts_with_all = ["why", "json", "no_files"])]
    sbom: bool,
    /// Write a self-contained HTML page (no network): a treemap of the
    /// bytes by layer, package and directory, and each file's why-chain
    #[arg(long, value_name = "FILE", conflicts_with_all = ["why", "json", "no_files", "sbom"])]
    html: Option<PathBuf>,
    /// Compare with OTHER (e.g. the previous build): what grew and why,
    /// per package and per file (with --html, on the page; with --json,
    /// as JSON)
    #[arg(long, value_name = "OTHER", conflicts_with_all = ["why", "no_files", "sbom"])]
    diff: Option<String>,
}

/// The `--json` document: the summary with the files beside it.
#[derive(Serialize)]
struct Report<'a> {
    #[serde(flatten)]
    summary: &'a Summary,
    #[serde(skip_serializing_if = "Option::is_none")]
    files: Option<Vec<FileInfo>>,
}

/// `--platform`, as an index names platforms.
fn parse_platform(s: &str) -> Result<Platform, String> {
    Platform::parse(s).map_err(|e| e.to_string())
}

pub fn run(args: InspectArgs) -> anyhow::Result<Outcome> {
    let opts = args.registry.registry_options(&args.ca_cert)?;
    // The image, a tag, a platform or a blob that is not there: exit 1.
    let checked = |e: InspectError| {
        if e.is_not_found() {
            NotFound::wrap(e)
        } else {
            e.into()
        }
    };
    let source = Image::source(&args.image, &opts).map_err(checked)?;
    // A multi-platform image without --platform: its platforms, unless a
    // question (--why, --sbom, --html, --diff) wants one image's answer,
    // which is then the host's (as `docker pull` picks).
    if args.platform.is_none()
        && args.why.is_none()
        && !args.sbom
        && args.html.is_none()
        && args.diff.is_none()
    {
        match crate::source::select::platforms(source.as_ref()) {
            Ok(Some(platforms)) if platforms.len() > 1 => {
                let mut out = io::stdout().lock();
                print_platforms(&mut out, &args.image, &platforms, args.json)?;
                return Ok(Outcome::success());
            }
            Err(e) => return Err(checked(e.into())),
            Ok(_) => {}
        }
    }
    let mut image =
        Image::from_source(&args.image, source, args.platform.as_ref()).map_err(checked)?;
    let mut out = io::stdout().lock();
    if args.sbom {
        out.write_all(&image.sbom()?)?;
        return Ok(Outcome::success());
    }
    if let Some(page) = &args.html {
        return write_html(&mut image, args.diff.as_deref(), page);
    }
    if let Some(other) = &args.diff {
        return print_diff(&mut image, other, args.json);
    }
    if let Some(path) = &args.why {
        let why = image.why(path).map_err(|e| match e {
            InspectError::NotInImage { .. } => NotFound::wrap(e),
            e => e.into(),
        })?;
        if args.json {
            serde_json::to_writer_pretty(&mut out, &why)?;
            writeln!(out)?;
        } else {
            print_why(&mut out, &why)?;
        }
        return Ok(Outcome::success());
    }
    let files = if args.no_files {
        // No listing, but a corrupt blob is still an error.
        image.verify_layers()?;
        None
    } else {
        Some(image.files()?.into_vec())
    };
    if args.json {
        let report = Report {
            summary: image.summary(),
            files,
        };
        serde_json::to_writer_pretty(&mut out, &report).context("cannot write the report")?;
        writeln!(out)?;
    } else {
        print_summary(&mut out, image.summary())?;
        if let Some(p) = &image.summary().packages {
            print_packages(&mut out, p)?;
        }
        if let Some(files) = &files {
            print_files(&mut out, files)?;
        }
    }
    Ok(Outcome::success())
}

/// `--html FILE [--diff OTHER]`: the page, written through a temporary
/// file beside FILE, so FILE is either the old page or the whole new one.
fn write_html(image: &mut Image, diff: Option<&str>, page: &Path) -> anyhow::Result<Outcome> {
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
fn print_diff(image: &mut Image, other: &str, json: bool) -> anyhow::Result<Outcome> {
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

/// A multi-platform image: its platforms and their manifests.
fn print_platforms(
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

fn print_summary(out: &mut impl Write, s: &Summary) -> io::Result<()> {
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
fn print_packages(out: &mut impl Write, p: &Packages) -> io::Result<()> {
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

fn print_files(out: &mut impl Write, files: &[FileInfo]) -> io::Result<()> {
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

fn print_why(out: &mut impl Write, why: &Why) -> io::Result<()> {
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
