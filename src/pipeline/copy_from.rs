//! `--copy-from REF:SRC[:DST]`: a file or tree out of another image, as
//! `COPY --from=IMAGE SRC DST` does. The image's layers are read (after
//! their whiteouts) through the image reader; SRC is resolved through the
//! image's own symlinks, and what is below it is extracted to a
//! temporary tree with its modes and links, which then goes in as an
//! `--include` does: ELF files bring their closure.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::elf::Arch;
use crate::plan::{CopyFrom, Mapping};
use crate::rootfs::base_view::BaseKind;

use super::BuildError;
use super::base_image::{read_view, select};

fn err(name: &str, why: impl std::fmt::Display) -> BuildError {
    BuildError::CopyFrom {
        from: name.to_owned(),
        why: why.to_string(),
    }
}

/// Extracts `copy`'s SRC into `tmp` and returns the mapping to include.
pub(super) fn extract(copy: &CopyFrom, arch: Arch, tmp: &Path) -> Result<Mapping, BuildError> {
    let label = format!("{}:{}", copy.reference, copy.src);
    let wrap = |e: BuildError| match e {
        BuildError::Base { why, .. } => err(&label, why),
        other => other,
    };
    let (src, image) = select(&copy.reference, &copy.registry, arch).map_err(wrap)?;
    // First the view alone, to find where SRC really is; then again,
    // extracting just that (and the files it hard-links to).
    let index = read_view(&copy.reference, src.as_ref(), &image, tmp, &|_| false).map_err(wrap)?;
    let real = index
        .real_path(&copy.src)
        .filter(|r| index.get(r).is_some())
        .ok_or_else(|| err(&label, "no such file or directory in the image"))?;
    let mut wanted: std::collections::BTreeSet<String> =
        index.below(&real).map(|(p, _)| p.clone()).collect();
    for (_, e) in index.below(&real) {
        if let BaseKind::Hardlink { target } = &e.kind {
            wanted.insert(target.clone());
        }
    }
    let files = tmp.join("files");
    let view = read_view(&copy.reference, src.as_ref(), &image, &files, &|p| {
        wanted.contains(p)
    })
    .map_err(wrap)?;
    let out = tmp.join("tree");
    let io = |e: std::io::Error| err(&label, e);
    for (path, entry) in view.below(&real) {
        let rel = path
            .strip_prefix(&real)
            .unwrap_or("")
            .trim_start_matches('/');
        let dest = if rel.is_empty() {
            out.clone()
        } else {
            out.join(rel)
        };
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let mode = entry.mode & 0o777;
        match &entry.kind {
            BaseKind::Dir => {
                std::fs::create_dir_all(&dest).map_err(io)?;
                std::fs::set_permissions(&dest, PermissionsExt::from_mode(mode | 0o700))
                    .map_err(io)?;
            }
            BaseKind::Symlink { target } => {
                std::os::unix::fs::symlink(target, &dest).map_err(io)?;
            }
            BaseKind::File { .. } | BaseKind::Hardlink { .. } => {
                let from = match &entry.kind {
                    BaseKind::Hardlink { target } => view.extracted_at(target),
                    _ => view.extracted_at(path),
                }
                .ok_or_else(|| err(&label, format!("{path} was not extracted")))?;
                std::fs::copy(from, &dest).map_err(io)?;
                std::fs::set_permissions(&dest, PermissionsExt::from_mode(mode)).map_err(io)?;
            }
            BaseKind::Other => {}
        }
    }
    Ok(Mapping {
        src: out,
        dst: copy.dst.clone(),
    })
}

/// Where a `--copy-from` tree was extracted (kept until the layers are
/// written).
pub(super) fn temp_dir() -> std::io::Result<tempfile::TempDir> {
    tempfile::Builder::new().prefix("mkimage-copy-").tempdir()
}
