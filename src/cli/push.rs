//! `mkimage push DIR[:TAG] REF`: flags in, [`PushOptions`] out, the push
//! run, one line printed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use crate::registry::reference::check_registry;
use crate::registry::timeouts::MAX_IDLE;
use crate::registry::{
    self, AuthEnv, Credential, PushEvent, PushOptions, PushReport, Reference, RegistryOptions,
    Timeouts,
};
use crate::source::SourceError;
use crate::source::name::split_path;

use super::{NotFound, Outcome, human, spinner};

const EXAMPLES: &str = "Examples:
  mkimage push app.oci localhost:5000/app:latest --insecure-registry localhost:5000
  mkimage push app.oci:app:v1 registry.example.com/team/app:v1 --ca-cert corp-ca.pem
  mkimage push app.oci ghcr.io/me/app:1.0 --creds me:$TOKEN

DIR[:TAG] is the whole argument when that path exists, else the longest
path before a ':' that exists, the rest being the tag, so a directory may
have colons in its name (app:1.oci:app:v1 is tag app:v1 of app:1.oci).

Without --creds, logins saved by `podman login` ($REGISTRY_AUTH_FILE or
$XDG_RUNTIME_DIR/containers/auth.json) or `docker login` (~/.docker/config.json,
credential helpers included) are used.

--timeout (default 60s) is how long the registry may leave the push waiting:
to connect (30s at most), to start answering, or to take more of an upload.
Each request, its retries included, must also end within it; an upload gets
one more second per 16 KiB, so a big layer on a slow link is not cut off.";

// Doc comments are --help text: brackets are optional parts, not links.
#[allow(rustdoc::broken_intra_doc_links)]
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct PushArgs {
    /// OCI image layout, and the tag in it to push [default: its only image]
    #[arg(value_name = "DIR[:TAG]")]
    source: String,
    /// Where to push: [HOST[:PORT]/]NAME[:TAG][@DIGEST] [default tag: latest]
    #[arg(value_name = "REF")]
    reference: String,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Also trust this CA certificate (PEM) for the registry's TLS
    #[arg(long, value_name = "PEM")]
    ca_cert: Vec<PathBuf>,
    /// No progress or summary, just errors
    #[arg(short, long)]
    quiet: bool,
    /// Write the pushed manifest's digest to FILE once the registry has
    /// it (as podman push --digestfile)
    #[arg(long, value_name = "FILE")]
    digest_file: Option<PathBuf>,
}

/// How to reach a registry: shared by `mkimage push` and `--push`.
#[derive(Debug, Default, clap::Args)]
pub struct RegistryArgs {
    /// Registry credentials (else saved podman/docker logins are used)
    #[arg(long, value_name = "USER:PASS")]
    pub creds: Option<String>,
    /// Reach this registry over plain HTTP
    #[arg(long, value_name = "HOST[:PORT]")]
    pub insecure_registry: Vec<String>,
    /// Give up when the registry leaves us waiting this long (SECS, or
    /// with a unit: 90s, 5m, 1h) [default: 60s]
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    pub timeout: Option<Duration>,
}

impl RegistryArgs {
    /// The push's options, every flag checked (so `--push` can fail
    /// before the build).
    pub(super) fn options(&self, ca_certs: &[PathBuf]) -> anyhow::Result<PushOptions> {
        Ok(PushOptions {
            registry: self.registry_options(ca_certs)?,
            ..PushOptions::default()
        })
    }

    /// How to reach a registry, to push or to read from.
    pub(crate) fn registry_options(&self, ca_certs: &[PathBuf]) -> anyhow::Result<RegistryOptions> {
        for host in &self.insecure_registry {
            check_registry(host).context("--insecure-registry")?;
        }
        Ok(RegistryOptions {
            credentials: self
                .creds
                .as_deref()
                .map(Credential::from_user_pass)
                .transpose()?,
            auth: AuthEnv::from_env(),
            ca_certs: ca_certs.to_vec(),
            insecure_registries: self.insecure_registry.clone(),
            timeouts: self.timeout.map(Timeouts::new).unwrap_or_default(),
            ..RegistryOptions::default()
        })
    }
}

/// `--timeout`: whole seconds, bare or with `s`, `m` or `h`. (Not worth a
/// duration-parsing crate: nobody times a push in milliseconds.)
fn parse_timeout(s: &str) -> Result<Duration, String> {
    let (number, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(format!("{s:?} is not a duration: write 30, 30s, 5m or 1h")),
    };
    let secs = number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("{s:?} is not a duration: write 30, 30s, 5m or 1h"))?;
    let d = Duration::from_secs(secs);
    if d.is_zero() || d > MAX_IDLE {
        return Err(format!("{s:?} is out of range: from 1s to 24h"));
    }
    Ok(d)
}

pub fn run(args: PushArgs) -> anyhow::Result<Outcome> {
    let reference = Reference::parse(&args.reference)?;
    let opts = args.registry.options(&args.ca_cert)?;
    if let Some(f) = &args.digest_file {
        super::output::check_digest_file(f)?;
    }
    // The one `PATH[:TAG]` rule of every image argument (a directory may
    // have colons in its name).
    let (dir, tag) = match split_path(&args.source) {
        Ok(split) => split,
        Err(SourceError::NotFound { input }) => {
            return Err(NotFound::wrap(anyhow::anyhow!(
                "{input} is not an OCI image layout: no such file or directory"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let report = push_quietly(&dir, tag.as_deref(), &reference, &opts, args.quiet)?;
    if let Some(f) = &args.digest_file {
        super::output::write_digest_file(f, &report.digest.to_string())?;
    }
    if !args.quiet {
        println!("{}", summary(&report));
    }
    Ok(Outcome::success())
}

/// Pushes with a spinner (unless `quiet`) and returns what the registry
/// confirmed; a layout, tag or blob that is not there is a [`NotFound`].
pub(super) fn push_quietly(
    dir: &Path,
    ref_name: Option<&str>,
    reference: &Reference,
    opts: &PushOptions,
    quiet: bool,
) -> anyhow::Result<PushReport> {
    let bar = spinner(quiet, "pushing ", "connecting");
    let on_event = |e: PushEvent| match e {
        PushEvent::Blob {
            digest,
            size,
            index,
            total,
        } => bar.set_message(format!(
            "blob {index}/{total} {} ({})",
            short(&digest.to_string()),
            human(size)
        )),
        PushEvent::Manifest { digest } => {
            bar.set_message(format!("manifest {}", short(&digest.to_string())))
        }
        PushEvent::BlobDone { .. } => {}
    };
    let result = registry::open_layout(dir).and_then(|layout| {
        registry::push_with_events(&layout, ref_name, reference, opts, &on_event)
    });
    bar.finish_and_clear();
    match result {
        Ok(report) => Ok(report),
        Err(e) if e.is_not_found() => Err(NotFound::wrap(e)),
        Err(e) => Err(e).with_context(|| format!("cannot push to {reference}")),
    }
}

/// `Pushed REF@DIGEST (...)` on stderr: `--json` keeps stdout for JSON.
pub(super) fn print_summary_to_stderr(report: &PushReport) {
    eprintln!("{}", summary(report));
}

/// `Pushed REF@DIGEST (3 blobs uploaded, 0 skipped, 8.5 MiB)`.
pub(super) fn summary(r: &PushReport) -> String {
    let mut counts = vec![
        format!(
            "{} blob{} uploaded",
            r.blobs_uploaded,
            if r.blobs_uploaded == 1 { "" } else { "s" }
        ),
        format!("{} skipped", r.blobs_skipped),
    ];
    if r.blobs_mounted > 0 {
        counts.push(format!("{} mounted", r.blobs_mounted));
    }
    counts.push(human(r.bytes_uploaded));
    let mut line = format!("Pushed {} ({})", r.reference, counts.join(", "));
    if r.referrers > 0 {
        line.push_str(&format!(
            "\n  with its SBOM and provenance ({} referrers{})",
            r.referrers,
            r.referrers_tag
                .as_ref()
                .map(|t| format!(", listed under tag {t}"))
                .unwrap_or_default()
        ));
    }
    line
}

/// `sha256:0123456789ab`, enough to tell blobs apart in a progress line.
fn short(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;

    #[test]
    fn timeouts() {
        let s = Duration::from_secs;
        for (arg, want) in [
            ("2", s(2)),
            ("90s", s(90)),
            ("5m", s(300)),
            ("24h", s(86400)),
        ] {
            assert_eq!(parse_timeout(arg), Ok(want), "{arg}");
        }
        for arg in [
            "",
            "0",
            "0s",
            "25h",
            "1.5",
            "-1",
            "5 m",
            "5ms",
            "m",
            "99999999999999999999",
        ] {
            let err = parse_timeout(arg).unwrap_err();
            assert!(err.contains(&format!("{arg:?}")), "{arg}: {err}");
        }
    }

    #[test]
    fn registry_flags_are_checked_before_any_push() {
        let args = |hosts: &[&str]| RegistryArgs {
            insecure_registry: hosts.iter().map(|h| h.to_string()).collect(),
            ..RegistryArgs::default()
        };
        let opts = args(&["localhost:5000", "[::1]", "10.0.0.1"])
            .options(&[])
            .unwrap();
        assert_eq!(opts.registry.timeouts, Timeouts::default());
        for bad in ["127.0.0.1:99999", "host:", "host:abc", "[::1"] {
            let err = args(&[bad]).options(&[]).unwrap_err();
            let msg = format!("{err:#}");
            assert!(
                msg.starts_with("--insecure-registry: invalid registry") && msg.contains(bad),
                "{bad}: {msg}"
            );
        }
    }

    #[test]
    fn summary_line() {
        let d = Digest::of(b"m");
        let r = PushReport {
            reference: Reference::parse("localhost:5000/app:latest")
                .unwrap()
                .with_digest(d),
            digest: d,
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            manifests: 1,
            blobs_uploaded: 3,
            blobs_mounted: 0,
            blobs_skipped: 0,
            bytes_uploaded: 8_912_896,
            referrers: 0,
            referrers_tag: None,
            referrer_blobs_uploaded: 0,
        };
        assert_eq!(
            summary(&r),
            format!("Pushed localhost:5000/app:latest@{d} (3 blobs uploaded, 0 skipped, 8.5 MiB)")
        );
        let r = PushReport {
            referrers: 2,
            referrers_tag: Some("sha256-ab".into()),
            ..r
        };
        assert!(
            summary(&r).ends_with(
                "\n  with its SBOM and provenance (2 referrers, listed under tag sha256-ab)"
            ),
            "{}",
            summary(&r)
        );
    }
}
