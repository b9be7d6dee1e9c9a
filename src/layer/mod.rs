//! Layers: the file tree (`rootfs::Tree`) becomes a deterministic tar,
//! gzip- or zstd-compressed, with the two digests an OCI image needs to name it.
//!
//! One pass, bounded memory whatever the layer's size:
//!
//! ```text
//! Tree ─► tar ─► sha256 (diff_id) ─► parallel gzip/zstd ─► sha256 (digest) ─► out
//! ```

mod compress;
mod gzip;
mod parallel;
mod sink;
mod tar;
mod zstd;

#[cfg(test)]
mod fixture;

use std::io::{self, Write};
use std::num::NonZeroUsize;
use std::path::PathBuf;

pub use self::compress::{Algorithm, Compression, decompress};
pub use self::parallel::ParCompress;
use self::sink::Sink;
#[cfg(test)]
use self::tar::write_tar;
pub use crate::digest::{Digest, HashingWriter};
use crate::rootfs::{ImagePath, Tree};

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("cannot read {} (planned as {image})", host.display())]
    Read {
        host: PathBuf,
        image: ImagePath,
        source: io::Error,
    },
    #[error(
        "{} changed size after planning: planned as {image} with {planned} bytes, it now has {found}",
        host.display()
    )]
    SizeChanged {
        host: PathBuf,
        image: ImagePath,
        planned: u64,
        found: u64,
    },
    #[error("{image} was planned with {planned} bytes but its content has {actual}")]
    BytesSize {
        image: ImagePath,
        planned: u64,
        actual: u64,
    },
    #[error(
        "hard link {image} points to {target}, which is not a regular file earlier in the layer"
    )]
    Hardlink { image: ImagePath, target: ImagePath },
    #[error("cannot encode a tar header for {image}")]
    Header { image: ImagePath, source: io::Error },
    #[error("cannot write the layer")]
    Write { source: io::Error },
    #[error("cannot start the compression threads")]
    Threads { source: io::Error },
    #[error("cannot set up {compression} compression")]
    Compressor {
        compression: Compression,
        source: io::Error,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerOptions {
    /// Modification time of every entry: SOURCE_DATE_EPOCH, or 0.
    pub mtime: u64,
    /// Compression threads. The output does not depend on it.
    pub threads: NonZeroUsize,
    pub compression: Compression,
}

impl Default for LayerOptions {
    fn default() -> Self {
        LayerOptions {
            mtime: 0,
            threads: NonZeroUsize::MIN,
            compression: Compression::DEFAULT,
        }
    }
}

/// What the image config and manifest need to know about a written layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerDigests {
    /// sha256 of the uncompressed tar (config `rootfs.diff_ids`).
    pub diff_id: Digest,
    /// sha256 of the compressed blob (manifest layer descriptor, blob name).
    pub digest: Digest,
    /// Size of the compressed blob.
    pub size: u64,
    /// Size of the uncompressed tar.
    pub uncompressed_size: u64,
}

/// Writes `tree` to `out` as a compressed layer tar and returns its
/// digests. On error `out` holds a partial blob that must be discarded.
pub fn write_layer<W: Write + Send>(
    tree: &Tree,
    opts: &LayerOptions,
    out: W,
) -> Result<LayerDigests, LayerError> {
    std::thread::scope(|scope| {
        let compressed = Sink::start(HashingWriter::new(out), scope)?;
        let compressor = ParCompress::new(compressed, opts.threads, opts.compression, scope)?;
        let mut tar_out = HashingWriter::new(compressor);
        // On error `tar_out` is dropped here, which closes the workers'
        // queue and the sink's; the scope joins them.
        self::tar::write_entries(tree, opts.mtime, &mut tar_out)?;
        let (compressor, diff_id, uncompressed_size) = tar_out.finish();
        let sink = compressor.finish()?;
        let (_, digest, size) = sink
            .finish()
            .map_err(|source| LayerError::Write { source })?
            .finish();
        Ok(LayerDigests {
            diff_id,
            digest,
            size,
            uncompressed_size,
        })
    })
}

#[cfg(test)]
mod tests {
    use std::fs::{File, FileTimes};
    use std::io::Read;
    use std::process::Command;
    use std::time::{Duration, SystemTime};

    use flate2::read::MultiGzDecoder;

    use super::*;

    fn layer(tree: &Tree, mtime: u64, threads: usize) -> (LayerDigests, Vec<u8>) {
        let mut blob = Vec::new();
        let digests = write_layer(
            tree,
            &LayerOptions {
                mtime,
                threads: NonZeroUsize::new(threads).unwrap(),
                ..LayerOptions::default()
            },
            &mut blob,
        )
        .unwrap();
        (digests, blob)
    }

    fn gunzip(blob: &[u8]) -> Vec<u8> {
        let mut tar = Vec::new();
        MultiGzDecoder::new(blob).read_to_end(&mut tar).unwrap();
        tar
    }

    #[test]
    fn digests_describe_the_bytes() {
        let f = fixture::fixture();
        let (d, blob) = layer(&f.tree, fixture::MTIME, 2);
        let tar = gunzip(&blob);
        assert_eq!(d.digest, Digest::of(&blob));
        assert_eq!(d.size, blob.len() as u64);
        assert_eq!(d.diff_id, Digest::of(&tar));
        assert_eq!(d.uncompressed_size, tar.len() as u64);
        fixture::check_tar(&tar, fixture::MTIME);
        // The uncompressed writer gives the very same tar.
        let mut plain = Vec::new();
        let summary = write_tar(&f.tree, fixture::MTIME, &mut plain).unwrap();
        assert_eq!(plain, tar);
        assert_eq!(
            (summary.diff_id, summary.size),
            (d.diff_id, d.uncompressed_size)
        );
    }

    #[test]
    fn deterministic() {
        let f = fixture::fixture();
        let (first, blob) = layer(&f.tree, fixture::MTIME, 1);
        // Big enough that 4 threads really compress in parallel.
        assert!(first.uncompressed_size > 4 << 20);

        let (again, again_blob) = layer(&f.tree, fixture::MTIME, 1);
        assert_eq!((again, &again_blob), (first, &blob), "written twice");

        let (four, four_blob) = layer(&f.tree, fixture::MTIME, 4);
        assert_eq!((four, &four_blob), (first, &blob), "4 threads");

        // Host mtimes (and atimes) never reach the layer.
        let long_ago = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        File::options()
            .write(true)
            .open(&f.host_file)
            .unwrap()
            .set_times(
                FileTimes::new()
                    .set_modified(long_ago)
                    .set_accessed(long_ago),
            )
            .unwrap();
        let (touched, touched_blob) = layer(&f.tree, fixture::MTIME, 2);
        assert_eq!((touched, &touched_blob), (first, &blob), "after touch");

        // The clamp time does.
        let (later, _) = layer(&f.tree, fixture::MTIME + 1, 1);
        assert_ne!(later.diff_id, first.diff_id);
    }

    #[test]
    fn host_file_that_changed_size_is_an_error() {
        let f = fixture::fixture();
        let planned = std::fs::metadata(&f.host_file).unwrap().len();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&f.host_file)
            .unwrap()
            .write_all(b"more")
            .unwrap();
        let mut blob = Vec::new();
        let opts = LayerOptions {
            mtime: 0,
            threads: NonZeroUsize::new(2).unwrap(),
            ..LayerOptions::default()
        };
        match write_layer(&f.tree, &opts, &mut blob) {
            Err(LayerError::SizeChanged {
                host,
                image,
                planned: p,
                found,
            }) => {
                assert_eq!(host, f.host_file);
                assert_eq!(image.to_string(), "/usr/bin/app");
                assert_eq!((p, found), (planned, planned + 4));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sink_error_is_a_write_error() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::from_raw_os_error(28)) // ENOSPC
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let f = fixture::fixture();
        match write_layer(&f.tree, &LayerOptions::default(), Full) {
            Err(LayerError::Write { source }) => assert_eq!(source.raw_os_error(), Some(28)),
            other => panic!("{other:?}"),
        }
    }

    /// GNU tar, a real external reader, lists and extracts the layer.
    #[test]
    fn gnu_tar_reads_the_layer() {
        let f = fixture::fixture();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("layer.tar.gz");
        let opts = LayerOptions {
            mtime: fixture::MTIME,
            threads: NonZeroUsize::new(2).unwrap(),
            ..LayerOptions::default()
        };
        write_layer(&f.tree, &opts, File::create(&path).unwrap()).unwrap();

        let list = Command::new("tar")
            .env("TZ", "UTC")
            .arg("-tvzf")
            .arg(&path)
            .output()
            .expect("GNU tar must be installed to run this test");
        let stderr = String::from_utf8_lossy(&list.stderr);
        assert!(list.status.success() && stderr.is_empty(), "{stderr}");
        let stdout = String::from_utf8(list.stdout).unwrap();
        // Columns: mode, uid/gid, size, date, time, name, and for links
        // "-> target" / "link to target". Ids are numeric because the
        // headers carry no user or group names.
        let got: Vec<Vec<&str>> = stdout
            .lines()
            .map(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                assert_eq!(cols[3..5], ["2023-11-14", "22:13"], "{l}");
                [&cols[..3], &cols[5..]].concat()
            })
            .collect();
        assert_eq!(got, fixture::gnu_tar_listing());

        let out = dir.path().join("root");
        std::fs::create_dir(&out).unwrap();
        let extract = Command::new("tar")
            .arg("--no-same-owner")
            .arg("-xzf")
            .arg(&path)
            .arg("-C")
            .arg(&out)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&extract.stderr);
        assert!(extract.status.success() && stderr.is_empty(), "{stderr}");
        fixture::check_extracted(&out, &f);
    }

    #[test]
    fn errors_name_both_paths() {
        let f = fixture::fixture();
        std::fs::remove_file(&f.host_file).unwrap();
        let err = write_layer(&f.tree, &LayerOptions::default(), Vec::new()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "cannot read {} (planned as /usr/bin/app)",
                f.host_file.display()
            )
        );
        let source = std::error::Error::source(&err)
            .and_then(|s| s.downcast_ref::<io::Error>())
            .map(io::Error::kind);
        assert_eq!(source, Some(io::ErrorKind::NotFound));
    }
}
