//! `mkimage inspect IMAGE [--why PATH] [--sbom] [--json] [--html FILE
//! [--diff OTHER]]`: open the image (any source: layout, archive,
//! registry), print (or write) what the library found: the text in
//! [`text`], the comparison and the page in [`compare`].

mod compare;
mod text;

use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::Context;
use serde::Serialize;

use crate::cli::push::RegistryArgs;
use crate::cli::{NotFound, Outcome};
use crate::inspect::{FileInfo, Image, InspectError, Summary};
use crate::oci::Platform;

use self::compare::{print_diff, write_html};
use self::text::{print_files, print_packages, print_platforms, print_summary, print_why};

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
    crate::source::platform::parse(s).map_err(|e| e.to_string())
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
