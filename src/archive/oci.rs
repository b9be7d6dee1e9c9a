//! oci-archive: the image layout as one tar file, as skopeo and podman read
//! it (`oci-archive:FILE[:TAG]`): `oci-layout`, `index.json` and every blob,
//! byte for byte. The metadata comes first, so a reader streaming the tar
//! knows what the blobs are before it meets them; blobs follow in digest
//! order.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use super::tar::TarWriter;
use super::{ArchiveError, Output, flush, write_err};
use crate::digest::HashingReader;
use crate::oci::layout::{BLOB_DIR, INDEX_FILE, OCI_LAYOUT_FILE, blob_name};
use crate::oci::{Layout, check_digest, io_err};

/// Writes the whole layout at `layout` to `dest` as an oci-archive, every
/// entry stamped with `mtime`. Each blob is checked against its name as it
/// is copied, so a corrupt layout fails here rather than at load time.
pub fn write_oci_archive(layout: &Layout, dest: &Path, mtime: u64) -> Result<(), ArchiveError> {
    let output = Output::create(dest)?;
    let tmp = output.tmp_path();
    let w = write_err(&tmp);
    let mut tar = TarWriter::new(output.writer(), mtime);
    for name in [OCI_LAYOUT_FILE, INDEX_FILE] {
        let path = layout.root().join(name);
        let bytes = crate::bounded::read(&path, crate::bounded::DOCUMENT_LIMIT)
            .map_err(io_err("read", &path))?;
        tar.bytes(name, &bytes).map_err(&w)?;
    }
    // BLOB_DIR's parent, then BLOB_DIR.
    if let Some((parent, _)) = BLOB_DIR.split_once('/') {
        tar.dir(&format!("{parent}/")).map_err(&w)?;
    }
    tar.dir(&format!("{BLOB_DIR}/")).map_err(&w)?;
    for digest in layout.blob_digests()? {
        let path = layout.blob_path(&digest);
        let file = File::open(&path).map_err(io_err("read", &path))?;
        let size = file.metadata().map_err(io_err("inspect", &path))?.len();
        let mut reader = HashingReader::new(BufReader::new(file));
        tar.file(&blob_name(&digest), size, &mut reader)
            .map_err(io_err("archive", &path))?;
        check_digest(&path, &digest, reader.finish().0)?;
    }
    flush(tar.finish().map_err(&w)?, &tmp)?;
    output.commit()
}
