//! Single-file outputs: an image layout as an oci-archive (a tar of the
//! layout) or a docker-archive (what `docker save` writes and
//! `docker load`/`podman load` read).
//!
//! Both are deterministic (tar headers built field by field: one mtime,
//! owner 0:0, fixed modes, entries in a fixed order) and streamed (blobs go
//! from disk to the archive in chunks, never whole into memory), and both
//! are written to a temporary file beside the destination that is renamed
//! into place, so a failed conversion never leaves a half-written archive
//! under the destination's name.

mod docker;
mod oci;
mod tar;

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

pub use self::docker::write_docker_archive;
pub use self::oci::write_oci_archive;
use crate::oci::layout::{persist, sync_dir, temp_file};
use crate::oci::{Digest, OciError, io_err};

/// Write buffer for the archive: blobs arrive in small chunks.
const OUTPUT_BUFFER: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error(transparent)]
    Oci(#[from] OciError),
    /// What the image reader found wrong with the image to write.
    #[error(transparent)]
    Source(#[from] crate::source::SourceError),
    #[error("cannot write {}: directory {} does not exist", path.display(), dir.display())]
    MissingDirectory { path: PathBuf, dir: PathBuf },
    #[error("cannot write the archive {}: it is a directory", path.display())]
    IsADirectory { path: PathBuf },
    #[error(
        "layer {digest} has media type {media_type}: a docker-archive can be made \
         from gzip, zstd or uncompressed tar layers"
    )]
    UnsupportedLayer { digest: Digest, media_type: String },
    #[error("layer {digest} uncompresses to {found}, but the config says {expected}")]
    DiffIdMismatch {
        digest: Digest,
        expected: Digest,
        found: Digest,
    },
    /// A tag that docker and podman would refuse to load.
    #[error("{tag:?} cannot tag a docker-archive")]
    BadRepoTag {
        tag: String,
        source: crate::reference::ReferenceError,
    },
}

/// Fails, before any work, unless `path` can become an archive: its
/// directory must exist and `path` must not be a directory.
pub fn check_destination(path: &Path) -> Result<(), ArchiveError> {
    let dir = parent_dir(path);
    if !dir.is_dir() {
        return Err(ArchiveError::MissingDirectory {
            path: path.to_path_buf(),
            dir: dir.to_path_buf(),
        });
    }
    if path.is_dir() {
        return Err(ArchiveError::IsADirectory {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

/// The directory a file named `path` goes in (`.` for a bare name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// The archive being written: a temporary file in the destination's
/// directory (so the final rename cannot cross filesystems), 0644 less the
/// umask like any file a user writes, renamed over the destination on
/// [`Output::commit`] and deleted if dropped before.
struct Output {
    tmp: NamedTempFile,
    dest: PathBuf,
}

impl Output {
    fn create(dest: &Path) -> Result<Self, ArchiveError> {
        check_destination(dest)?;
        Ok(Output {
            tmp: temp_file(parent_dir(dest))?,
            dest: dest.to_path_buf(),
        })
    }

    /// A buffered, seekable writer into the temporary file.
    fn writer(&self) -> BufWriter<&File> {
        BufWriter::with_capacity(OUTPUT_BUFFER, self.tmp.as_file())
    }

    fn tmp_path(&self) -> PathBuf {
        self.tmp.path().to_path_buf()
    }

    /// Makes the archive durable and gives it its name.
    fn commit(self) -> Result<(), ArchiveError> {
        self.tmp
            .as_file()
            .sync_all()
            .map_err(io_err("sync", self.tmp.path()))?;
        persist(self.tmp, &self.dest)?;
        sync_dir(parent_dir(&self.dest))?;
        Ok(())
    }
}

/// Flushes a finished archive writer, naming the file on failure.
fn flush(w: BufWriter<&File>, path: &Path) -> Result<(), ArchiveError> {
    w.into_inner()
        .map_err(|e| io_err("write", path)(e.into_error()))?;
    Ok(())
}

/// The `map_err` closure for a failed write into the archive at `path`.
fn write_err(path: &Path) -> impl Fn(io::Error) -> ArchiveError + '_ {
    move |source| {
        ArchiveError::Oci(OciError::Io {
            action: "write",
            path: path.to_path_buf(),
            source,
        })
    }
}

#[cfg(test)]
mod tests;
