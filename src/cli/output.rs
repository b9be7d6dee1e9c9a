//! What a build or push tells the programs that run it: `--json`, one
//! summary object on stdout whose field names are kept stable (README,
//! "Machine-readable results"), and `--digest-file`, the manifest digest
//! alone in a file, as `docker build --iidfile` and podman's
//! `--digestfile` write it.

use std::path::Path;

use anyhow::{Context, ensure};
use serde::Serialize;

use crate::pipeline::Built;
use crate::registry::PushReport;

/// Bumped only when a field changes meaning or goes away; new fields may
/// appear without it.
pub const SCHEMA_VERSION: u32 = 1;

/// `--json` of a build (and of `push`, with `output` and `layers` empty).
#[derive(Debug, Serialize)]
pub struct Summary {
    pub schema_version: u32,
    /// The manifest's digest: what `--digest-file` holds, what `@DIGEST`
    /// references and `podman run IMAGE@DIGEST` name.
    pub digest: String,
    pub media_type: &'static str,
    /// The manifest's size in bytes.
    pub size: u64,
    /// `--json`'s `tags`: the full `name:tag` references.
    #[serde(rename = "tags")]
    pub references: Vec<String>,
    pub platform: PlatformRow,
    /// Bottom to top, as the manifest lists them.
    pub layers: Vec<Layer>,
    pub output: Option<Output>,
    pub warnings: Vec<String>,
    /// With `--push`: where the image went.
    pub pushed: Option<Pushed>,
}

/// The `platform` object of `--json`.
#[derive(Debug, Serialize)]
pub struct PlatformRow {
    pub os: &'static str,
    pub architecture: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Layer {
    /// mkimage's name for it: base, libs, runtime, deps, app.
    pub kind: &'static str,
    pub digest: String,
    /// The uncompressed tar's digest (the config's `rootfs.diff_ids`).
    pub diff_id: String,
    /// Compressed size in bytes.
    pub size: u64,
    pub media_type: String,
    pub files: usize,
}

#[derive(Debug, Serialize)]
pub struct Output {
    pub path: String,
    /// `oci` (a layout directory), `oci-archive` or `docker-archive`.
    pub format: &'static str,
}

#[derive(Debug, Serialize)]
pub struct Pushed {
    /// `REGISTRY/REPO:TAG@DIGEST`.
    pub reference: String,
    pub digest: String,
    pub blobs_uploaded: usize,
    pub blobs_skipped: usize,
    pub bytes_uploaded: u64,
}

const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

impl Summary {
    pub fn of_build(b: &Built) -> Summary {
        Summary {
            schema_version: SCHEMA_VERSION,
            digest: b.manifest_digest.to_string(),
            media_type: MANIFEST_MEDIA_TYPE,
            size: b.manifest_size,
            references: b.references.clone(),
            platform: PlatformRow {
                os: "linux",
                architecture: b.architecture.clone(),
                variant: b.variant.clone(),
            },
            layers: b
                .layers
                .iter()
                .map(|l| Layer {
                    kind: l.kind.name(),
                    digest: l.digest.to_string(),
                    diff_id: l.diff_id.to_string(),
                    size: l.size,
                    media_type: l.media_type.clone(),
                    files: l.files,
                })
                .collect(),
            output: Some(Output {
                path: b.output.to_string_lossy().into_owned(),
                format: b.format.name(),
            }),
            warnings: b.warnings.clone(),
            pushed: None,
        }
    }

    pub fn set_pushed(&mut self, r: &PushReport) {
        self.pushed = Some(Pushed {
            reference: r.reference.to_string(),
            digest: r.digest.to_string(),
            blobs_uploaded: r.blobs_uploaded,
            blobs_skipped: r.blobs_skipped,
            bytes_uploaded: r.bytes_uploaded,
        });
    }

    /// One line of JSON, keys in a fixed order.
    pub fn print(&self) -> anyhow::Result<()> {
        let line = serde_json::to_string(self).context("cannot write the --json summary")?;
        println!("{line}");
        Ok(())
    }
}

/// Fails before any work when `--digest-file`'s directory is missing or
/// the path is a directory, so a long build does not end in that error.
pub fn check_digest_file(path: &Path) -> anyhow::Result<()> {
    ensure!(
        !path.is_dir(),
        "--digest-file {}: is a directory; name a file",
        path.display()
    );
    let dir = parent(path);
    ensure!(
        dir.is_dir(),
        "--digest-file {}: the directory {} does not exist; create it first",
        path.display(),
        dir.display()
    );
    Ok(())
}

/// Writes `digest` (no newline, as docker's `--iidfile` does) to `path`
/// through a temp file beside it, renamed into place: a reader sees the
/// old file or the whole new one, and only once the output is complete.
pub fn write_digest_file(path: &Path, digest: &str) -> anyhow::Result<()> {
    let what = || format!("cannot write --digest-file {}", path.display());
    let mut tmp = tempfile::NamedTempFile::new_in(parent(path)).with_context(what)?;
    std::io::Write::write_all(&mut tmp, digest.as_bytes()).with_context(what)?;
    // A temp file is 0600; the digest is for others (and other build
    // steps) to read.
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .with_context(what)?;
    tmp.persist(path).map_err(|e| e.error).with_context(what)?;
    Ok(())
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_file_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("digest");
        std::fs::write(&path, "old").unwrap();
        check_digest_file(&path).unwrap();
        write_digest_file(&path, "sha256:abc").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "sha256:abc");
        // Nothing else is left beside it.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let err = check_digest_file(&dir.path().join("no/such/digest")).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        let err = check_digest_file(dir.path()).unwrap_err();
        assert!(err.to_string().contains("is a directory"), "{err}");
    }
}
