//! The output: an OCI image layout directory (image-spec image-layout.md),
//! holding content-addressed blobs and an `index.json` naming the tagged
//! manifests.
//!
//! Crash safety comes from ordering and renames: every file is written to a
//! temporary name beside its destination, fsynced, then renamed into place,
//! and `index.json` is replaced last. An interrupted build leaves at most
//! some unreferenced blobs (or a stray temporary file); the previous
//! `index.json`, and so every previous tag, stays valid.

use std::collections::BTreeSet;
use std::fs::{self, File, Permissions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use oci_spec::image::{
    ANNOTATION_REF_NAME, Descriptor, ImageIndex, ImageIndexBuilder, MediaType, OciLayout,
    SCHEMA_VERSION,
};
use serde::Serialize;
use tempfile::NamedTempFile;

use super::writeback::Writeback;
use super::{Digest, OciError, canonical_json, check_digest, from_oci_digest, io_err, oci_digest};
use crate::digest::HashingWriter;

/// The marker file that makes a directory a layout. This file and the
/// next constants are the one place the layout's names are spelled:
/// readers (crate::source) and the archive writers use them too.
pub const OCI_LAYOUT_FILE: &str = "oci-layout";
/// The only `imageLayoutVersion` image-spec v1 defines, so the only one we
/// write or accept.
pub const LAYOUT_VERSION: &str = "1.0.0";
/// The layout's index of tagged manifests.
pub const INDEX_FILE: &str = "index.json";
/// Blobs live at `blobs/<algorithm>/<encoded>`; we only use sha256.
pub const BLOB_DIR: &str = "blobs/sha256";

/// Files are created 0644 (less the umask), as any tool writing a layout
/// would: tempfile's default, 0600, would hide blobs from other readers
/// (a registry serving the directory, a daemon importing it).
pub(super) const FILE_MODE: u32 = 0o644;

/// Temporary files start with a dot so `ls` and globbing skip them, and are
/// recognisable if a crash leaves one behind.
pub(crate) const TEMP_PREFIX: &str = ".mkimage-tmp-";

/// Write buffer for blobs: compressors hand over small chunks.
const BLOB_BUFFER: usize = 256 * 1024;

/// An OCI image layout directory opened for reading and writing.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// Opens the layout at `dir`, creating it when `dir` does not exist or is
    /// an empty directory. Anything else at `dir` (a file, a directory with
    /// other content) is an error, and is left untouched.
    ///
    /// Builds racing to create the same layout are safe: the directory is
    /// created (by whichever comes first), then initialised under the same
    /// lock that guards tagging, so the second sees the first's layout
    /// instead of writing an empty index over it.
    pub fn open_or_create(dir: impl AsRef<Path>) -> Result<Self, OciError> {
        let root = dir.as_ref().to_path_buf();
        match fs::metadata(&root) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Another build may create it between the check and here.
                fs::create_dir_all(&root).map_err(io_err("create directory", &root))?;
            }
            Err(e) => return Err(io_err("inspect", &root)(e)),
            Ok(m) if !m.is_dir() => return Err(OciError::NotADirectory { path: root }),
            Ok(_) => {}
        }
        let unopened = Layout { root };
        let lock = unopened.lock()?;
        let root = unopened.root;
        let marker = root.join(OCI_LAYOUT_FILE);
        match fs::symlink_metadata(&marker) {
            Ok(_) => {
                drop(lock);
                Self::open(root)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Empty, or holding only the temp file of an init that was
                // killed before its first rename.
                let entries = fs::read_dir(&root).map_err(io_err("read directory", &root))?;
                let others = entries
                    .flatten()
                    .any(|e| !e.file_name().to_string_lossy().starts_with(TEMP_PREFIX));
                if others {
                    Err(OciError::NotALayout { path: root })
                } else {
                    Self::init(root)
                }
            }
            Err(e) => Err(io_err("inspect", marker)(e)),
        }
    }

    /// Removes the layout when no image is tagged in it, under the tagging
    /// lock: what a failed build that created the layout leaves behind,
    /// unless another build has tagged an image there meanwhile.
    pub fn remove_if_untagged(dir: &Path) -> Result<(), OciError> {
        let Ok(layout) = Self::open(dir) else {
            // Never initialised: remove it only if empty.
            let _ = fs::remove_dir(dir);
            return Ok(());
        };
        let _lock = layout.lock()?;
        if layout.read_index()?.manifests().is_empty() {
            fs::remove_dir_all(dir).map_err(io_err("remove", dir))?;
        }
        Ok(())
    }

    /// Opens an existing layout, checking its `oci-layout` version and that
    /// its `index.json` (if any) parses, before anything is written.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, OciError> {
        let root = dir.as_ref().to_path_buf();
        let marker = root.join(OCI_LAYOUT_FILE);
        let bytes = match crate::bounded::read(&marker, crate::bounded::DOCUMENT_LIMIT) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(OciError::NotALayout { path: root });
            }
            r => r.map_err(io_err("read", &marker))?,
        };
        let layout: OciLayout =
            serde_json::from_slice(&bytes).map_err(|source| OciError::ParseJson {
                path: marker.clone(),
                source,
            })?;
        if layout.image_layout_version() != LAYOUT_VERSION {
            return Err(OciError::LayoutVersion {
                path: marker,
                found: layout.image_layout_version().clone(),
            });
        }
        let this = Layout { root };
        this.read_index()?;
        // Other tools create blobs/sha256 lazily; we need it for temp files.
        let blobs = this.root.join(BLOB_DIR);
        fs::create_dir_all(&blobs).map_err(io_err("create directory", &blobs))?;
        remove_stale_temps(&this.root);
        remove_stale_temps(&blobs);
        Ok(this)
    }

    /// Initialises an empty directory. The `oci-layout` marker goes first:
    /// if we are interrupted after it, `open` finishes the job (a missing
    /// `index.json` reads as an empty index); before it, the directory holds
    /// nothing but perhaps a temporary file.
    fn init(root: PathBuf) -> Result<Self, OciError> {
        let marker = format!(r#"{{"imageLayoutVersion":"{LAYOUT_VERSION}"}}"#);
        write_atomic(&root, OCI_LAYOUT_FILE, marker.as_bytes())?;
        let blobs = root.join(BLOB_DIR);
        fs::create_dir_all(&blobs).map_err(io_err("create directory", &blobs))?;
        let this = Layout { root };
        this.write_index(empty_index()?)?;
        Ok(this)
    }

    /// An exclusive advisory lock (flock) on the layout directory itself,
    /// released when the returned handle drops. Locking the directory
    /// rather than index.json, which is replaced by rename, means every
    /// writer locks the same inode.
    fn lock(&self) -> Result<fs::File, OciError> {
        let dir = fs::File::open(&self.root).map_err(io_err("open", &self.root))?;
        dir.lock().map_err(io_err("lock", &self.root))?;
        Ok(dir)
    }

    /// The layout's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob with `digest` lives (whether or not it exists yet).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join(blob_name(digest))
    }

    /// A writer for one blob: it hashes and counts what passes through, and
    /// [`BlobWriter::commit`] moves the finished blob to its digest's name.
    /// Dropping it uncommitted deletes the temporary file.
    pub fn blob_writer(&self) -> Result<BlobWriter, OciError> {
        Ok(BlobWriter(HashingWriter::new(self.unhashed_blob_writer()?)))
    }

    /// A writer for a blob whose digest the caller computes itself.
    pub fn unhashed_blob_writer(&self) -> Result<UnhashedBlobWriter, OciError> {
        let dir = self.root.join(BLOB_DIR);
        let tmp = temp_file(&dir)?;
        Ok(UnhashedBlobWriter {
            file: BufWriter::with_capacity(BLOB_BUFFER, tmp),
            size: 0,
            dir,
            writeback: Writeback::default(),
        })
    }

    /// Stores `bytes` as a blob and returns its descriptor.
    pub fn put_blob(&self, media_type: MediaType, bytes: &[u8]) -> Result<Descriptor, OciError> {
        let mut w = self.blob_writer()?;
        let tmp_path = w.0.get_ref().path().to_path_buf();
        w.write_all(bytes).map_err(io_err("write", tmp_path))?;
        let (digest, size) = w.commit()?;
        Ok(Descriptor::new(media_type, size, oci_digest(&digest)?))
    }

    /// Stores `value` as a canonical-JSON blob and returns its descriptor.
    pub fn put_json<T: Serialize + ?Sized>(
        &self,
        media_type: MediaType,
        value: &T,
    ) -> Result<Descriptor, OciError> {
        self.put_blob(media_type, &canonical_json(value)?)
    }

    /// Reads a whole blob, checking that its content matches its name.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, OciError> {
        let path = self.blob_path(digest);
        let bytes = match crate::bounded::read(&path, crate::bounded::DOCUMENT_LIMIT) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(OciError::BlobNotFound {
                    digest: *digest,
                    path,
                });
            }
            r => r.map_err(io_err("read", &path))?,
        };
        check_digest(&path, digest, Digest::of(&bytes))?;
        Ok(bytes)
    }

    /// Every blob in the layout, in digest order. Files whose names are not
    /// sha256 digests (a temporary file a crash left behind) are not
    /// blobs and are skipped.
    pub fn blob_digests(&self) -> Result<Vec<Digest>, OciError> {
        let dir = self.root.join(BLOB_DIR);
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_err("read directory", &dir))? {
            let entry = entry.map_err(io_err("read directory", &dir))?;
            let name = entry.file_name();
            if let Some(digest) = name
                .to_str()
                .and_then(|hex| format!("sha256:{hex}").parse::<Digest>().ok())
            {
                out.push(digest);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Checks that the blob a descriptor points at is present with the
    /// descriptor's size, so that nothing we reference is dangling.
    pub fn check_blob(&self, digest: &Digest, size: u64) -> Result<(), OciError> {
        let path = self.blob_path(digest);
        let found = match fs::metadata(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(OciError::BlobNotFound {
                    digest: *digest,
                    path,
                });
            }
            r => r.map_err(io_err("inspect", &path))?.len(),
        };
        if found != size {
            return Err(OciError::SizeMismatch {
                digest: *digest,
                expected: size,
                found,
            });
        }
        Ok(())
    }

    /// The current `index.json`; a missing one reads as an empty index (see
    /// `init`).
    pub fn read_index(&self) -> Result<ImageIndex, OciError> {
        let path = self.root.join(INDEX_FILE);
        match crate::bounded::read(&path, crate::bounded::DOCUMENT_LIMIT) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => empty_index(),
            r => {
                let bytes = r.map_err(io_err("read", &path))?;
                serde_json::from_slice(&bytes)
                    .map_err(|source| OciError::ParseJson { path, source })
            }
        }
    }

    /// Points each of `references` at `manifest` (which must already be stored),
    /// recording the tag in the `org.opencontainers.image.ref.name`
    /// annotation as image-layout.md describes. Entries for other references are
    /// kept; blobs are never deleted. `index.json` is replaced atomically.
    pub fn set_references(
        &self,
        manifest: &Descriptor,
        references: &[String],
    ) -> Result<(), OciError> {
        for reference in references {
            check_reference(reference)?;
        }
        let digest = from_oci_digest(manifest.digest(), &self.root)?;
        self.check_blob(&digest, manifest.size())?;

        let references: BTreeSet<&str> = references.iter().map(String::as_str).collect();
        // index.json is read, changed and replaced: hold the layout's lock
        // so two builds into one layout cannot lose each other's references.
        let _lock = self.lock()?;
        let mut index = self.read_index()?;
        let mut manifests: Vec<Descriptor> = index
            .manifests()
            .iter()
            .filter(|d| !ref_name(d).is_some_and(|name| references.contains(name)))
            .cloned()
            .collect();
        for reference in &references {
            let mut d = manifest.clone();
            let mut annotations = d.annotations().clone().unwrap_or_default();
            annotations.insert(ANNOTATION_REF_NAME.to_owned(), (*reference).to_owned());
            d.set_annotations(Some(annotations));
            manifests.push(d);
        }

        // Sorted by tag, then by the descriptor's canonical bytes (for
        // untagged or duplicate entries other tools may have written), so
        // the index does not depend on the order references were set in.
        let mut keyed = manifests
            .into_iter()
            .map(|d| {
                let key = (ref_name(&d).map(str::to_owned), canonical_json(&d)?);
                Ok((key, d))
            })
            .collect::<Result<Vec<_>, OciError>>()?;
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        index.set_manifests(keyed.into_iter().map(|(_, d)| d).collect());
        index.set_schema_version(SCHEMA_VERSION);
        index.set_media_type(Some(MediaType::ImageIndex));
        self.write_index(index)
    }

    /// Replaces index.json, once the renames of the blobs it may name are
    /// durable: blobs are synced before their rename, their directory
    /// once here (see [`store`]).
    fn write_index(&self, index: ImageIndex) -> Result<(), OciError> {
        sync_dir(&self.root.join(BLOB_DIR))?;
        write_atomic(&self.root, INDEX_FILE, &canonical_json(&index)?)
    }
}

/// A blob being written; see [`Layout::blob_writer`]: an
/// [`UnhashedBlobWriter`] that hashes what it accepts.
pub struct BlobWriter(HashingWriter<UnhashedBlobWriter>);

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl BlobWriter {
    /// Flushes and fsyncs the blob, then renames it to
    /// `blobs/sha256/<digest>`; if that blob is already there (content
    /// addressing makes it identical) the temporary file is just removed.
    pub fn commit(self) -> Result<(Digest, u64), OciError> {
        let (blob, digest, size) = self.0.finish();
        blob.commit(&digest, size)?;
        Ok((digest, size))
    }
}

/// A blob writer for bytes whose digest the caller computes as it
/// produces them (`layer::write_layer` hashes the compressed stream), so
/// a layer is not hashed twice. It counts, and [`commit`] checks the
/// count against the caller's.
///
/// [`commit`]: UnhashedBlobWriter::commit
pub struct UnhashedBlobWriter {
    file: BufWriter<NamedTempFile>,
    size: u64,
    dir: PathBuf,
    writeback: Writeback,
}

impl Write for UnhashedBlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.size += n as u64;
        // Counted as written, though some may still be in the buffer: the
        // next sync takes what the kernel has.
        self.writeback.wrote(self.file.get_ref().as_file(), n);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl UnhashedBlobWriter {
    /// The temporary file being written.
    fn path(&self) -> &Path {
        self.file.get_ref().path()
    }

    /// Stores the blob as `digest`, as [`BlobWriter::commit`] does, once
    /// its size is the `size` the caller counted.
    pub fn commit(self, digest: &Digest, size: u64) -> Result<(), OciError> {
        if self.size != size {
            return Err(OciError::Io {
                action: "write",
                path: self.path().to_path_buf(),
                source: io::Error::other(format!("{} bytes written, {size} expected", self.size)),
            });
        }
        self.writeback.finish();
        store(self.file, &self.dir, digest)
    }
}

/// Flushes and fsyncs a finished temp blob, then renames it to
/// `dir/<digest>`, also when a blob of that name is already there: its
/// name promises its content, but a disk error or a hand edit may have
/// broken that promise, and trusting it would tag bad data. The rename
/// costs nothing next to hashing the old blob again, and readers that
/// have the old file open keep reading it.
///
/// The directory is not synced here but once before the index that names
/// the blob is written (`Layout::write_index`): until then a crash may
/// undo the rename, which leaves the old blob or none, and no index
/// names a missing one. An image's half-dozen small blobs then cost one
/// journal commit, not six.
fn store(file: BufWriter<NamedTempFile>, dir: &Path, digest: &Digest) -> Result<(), OciError> {
    let tmp = file.into_inner().map_err(|e| {
        let (error, w) = e.into_parts();
        io_err("write", w.get_ref().path())(error)
    })?;
    tmp.as_file()
        .sync_all()
        .map_err(io_err("sync", tmp.path()))?;
    persist(tmp, &dir.join(digest.hex()))
}

/// Checks `reference` against the `ref.name` grammar of image-spec annotations.md:
///
/// ```text
/// ref       ::= component ("/" component)*
/// component ::= alphanum (separator alphanum)*
/// alphanum  ::= [A-Za-z0-9]+
/// separator ::= [-._:@+] | "--"
/// ```
pub fn check_reference(reference: &str) -> Result<(), OciError> {
    let component_ok = |c: &str| {
        let b = c.as_bytes();
        let mut i = 0;
        loop {
            // alphanum+
            let start = i;
            while i < b.len() && b[i].is_ascii_alphanumeric() {
                i += 1;
            }
            if i == start {
                return false;
            }
            if i == b.len() {
                return true;
            }
            // separator: one of -._:@+, or exactly "--"
            if b[i..].starts_with(b"--") {
                i += 2;
            } else if b"-._:@+".contains(&b[i]) {
                i += 1;
            } else {
                return false;
            }
        }
    };
    if reference.split('/').all(component_ok) {
        Ok(())
    } else {
        Err(OciError::InvalidReference {
            reference: reference.to_owned(),
        })
    }
}

/// Where the blob `digest` is, relative to the layout's root (and in an
/// oci-archive): `blobs/sha256/<hex>`.
pub fn blob_name(digest: &Digest) -> String {
    format!("{BLOB_DIR}/{}", digest.hex())
}

/// The tag an `index.json` entry carries (image-spec image-layout.md).
pub fn ref_name(d: &Descriptor) -> Option<&str> {
    d.annotations()
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_REF_NAME))
        .map(String::as_str)
}

fn empty_index() -> Result<ImageIndex, OciError> {
    ImageIndexBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .media_type(MediaType::ImageIndex)
        .manifests(Vec::new())
        .build()
        .map_err(|source| OciError::Spec {
            what: "index",
            source,
        })
}

/// A temp file untouched this long was left by a build that was killed
/// (a running build writes its temp files continuously).
const STALE_TEMP: std::time::Duration = std::time::Duration::from_secs(3600);

/// Removes temp files of killed builds from `dir`. Best effort: a file
/// that cannot be removed is left for next time.
fn remove_stale_temps(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(TEMP_PREFIX) {
            continue;
        }
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_TEMP);
        if stale {
            let _ = fs::remove_file(entry.path());
        }
    }
}

pub(crate) fn temp_file(dir: &Path) -> Result<NamedTempFile, OciError> {
    tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .permissions(Permissions::from_mode(FILE_MODE))
        .tempfile_in(dir)
        .map_err(io_err("create a temporary file in", dir))
}

/// Replaces `dir/name` with `bytes` so that readers see the old or the new
/// content, never a mix, even across a crash.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), OciError> {
    let mut tmp = temp_file(dir)?;
    tmp.write_all(bytes).map_err(io_err("write", tmp.path()))?;
    tmp.as_file()
        .sync_all()
        .map_err(io_err("sync", tmp.path()))?;
    persist(tmp, &dir.join(name))?;
    sync_dir(dir)
}

pub(crate) fn persist(tmp: NamedTempFile, target: &Path) -> Result<(), OciError> {
    tmp.persist(target)
        .map(drop)
        .map_err(|e| io_err("rename a temporary file to", target)(e.error))
}

/// Makes a rename durable: the new directory entry is only on disk once the
/// directory itself is synced (rename(2), fsync(2)).
pub(crate) fn sync_dir(dir: &Path) -> Result<(), OciError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("sync directory", dir))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::oci::{ImageSpec, LayerInfo, write_image};

    /// The entry `tag` names, by the reader's one rule.
    fn tagged(layout: &Layout, tag: &str) -> Result<Descriptor, crate::source::SourceError> {
        crate::source::select::by_tag(&layout.read_index()?, Some(tag), "test")
    }

    const EMPTY_INDEX: &str = r#"{"manifests":[],"mediaType":"application/vnd.oci.image.index.v1+json","schemaVersion":2}"#;

    fn read_string(path: impl AsRef<Path>) -> String {
        fs::read_to_string(path.as_ref())
            .unwrap_or_else(|e| panic!("read {}: {e}", path.as_ref().display()))
    }

    fn names(dir: impl AsRef<Path>) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir.as_ref())
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// Every path under `dir` with its type, mode, size, mtime and content:
    /// a byte-for-byte picture to compare before and after.
    fn snapshot(dir: &Path) -> Vec<(PathBuf, u32, u64, i64, Vec<u8>)> {
        use std::os::unix::fs::MetadataExt;
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(p) = stack.pop() {
            let m = fs::symlink_metadata(&p).expect("metadata");
            let content = if m.is_file() {
                fs::read(&p).expect("read")
            } else {
                Vec::new()
            };
            if m.is_dir() {
                for e in fs::read_dir(&p).expect("read_dir") {
                    stack.push(e.expect("entry").path());
                }
            }
            out.push((
                p,
                m.mode(),
                m.size(),
                m.mtime_nsec() + m.mtime() * 1_000_000_000,
                content,
            ));
        }
        out.sort();
        out
    }

    fn references(t: &[&str]) -> Vec<String> {
        t.iter().map(|s| (*s).to_owned()).collect()
    }

    /// Stores a fake layer blob and returns its LayerInfo.
    fn fake_layer(layout: &Layout, content: &[u8]) -> LayerInfo {
        let d = layout
            .put_blob(MediaType::ImageLayerGzip, content)
            .expect("put layer");
        LayerInfo {
            diff_id: Digest::of(&[content, b"-uncompressed"].concat()),
            digest: from_oci_digest(d.digest(), layout.root()).expect("digest"),
            size: d.size(),
            media_type: MediaType::ImageLayerGzip,
            created_by: format!("layer {}", String::from_utf8_lossy(content)),
            annotations: BTreeMap::new(),
        }
    }

    fn image(layout: &Layout, name: &str, t: &[&str]) -> Descriptor {
        let layers = [
            fake_layer(layout, b"base"),
            fake_layer(layout, name.as_bytes()),
        ];
        let spec = ImageSpec {
            cmd: vec![name.to_owned()],
            ..ImageSpec::default()
        };
        write_image(layout, &spec, &layers, &BTreeMap::new(), &references(t)).expect("write image")
    }

    fn umask() -> u32 {
        let status = read_string("/proc/self/status");
        let line = status
            .lines()
            .find_map(|l| l.strip_prefix("Umask:"))
            .expect("Umask line in /proc/self/status");
        u32::from_str_radix(line.trim(), 8).expect("octal umask")
    }

    #[test]
    fn creates_missing_directory() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("out/image");
        let layout = Layout::open_or_create(&dir).expect("create");
        assert_eq!(layout.root(), dir);
        assert_eq!(names(&dir), ["blobs", "index.json", "oci-layout"]);
        assert_eq!(names(dir.join("blobs")), ["sha256"]);
        assert!(names(dir.join("blobs/sha256")).is_empty());
        assert_eq!(
            read_string(dir.join("oci-layout")),
            r#"{"imageLayoutVersion":"1.0.0"}"#
        );
        assert_eq!(read_string(dir.join("index.json")), EMPTY_INDEX);
    }

    #[test]
    fn initialises_empty_directory_and_reopens() {
        let tmp = tempfile::tempdir().expect("tempdir");
        Layout::open_or_create(tmp.path()).expect("create");
        let before = snapshot(tmp.path());
        Layout::open_or_create(tmp.path()).expect("reopen");
        Layout::open(tmp.path()).expect("open");
        assert_eq!(snapshot(tmp.path()), before, "reopening changes nothing");
    }

    #[test]
    fn reopening_removes_temp_files_of_killed_builds_only() {
        let tmp = tempfile::tempdir().expect("tempdir");
        Layout::open_or_create(tmp.path()).expect("create");
        let blobs = tmp.path().join("blobs/sha256");
        let old = blobs.join(format!("{TEMP_PREFIX}killed"));
        let fresh = blobs.join(format!("{TEMP_PREFIX}running"));
        let other = blobs.join("not-ours");
        for p in [&old, &fresh, &other] {
            fs::write(p, b"x").expect("write");
        }
        let long_ago = std::time::SystemTime::now() - STALE_TEMP * 2;
        for p in [&old, &other] {
            fs::File::options()
                .write(true)
                .open(p)
                .and_then(|f| f.set_modified(long_ago))
                .expect("set mtime");
        }
        Layout::open(tmp.path()).expect("open");
        assert!(!old.exists());
        assert!(fresh.exists() && other.exists());
    }

    #[test]
    fn unhashed_blob_writer_stores_under_the_callers_digest_and_checks_size() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let layout = Layout::open_or_create(tmp.path()).expect("create");
        let digest = Digest::of(b"hello");
        let mut w = layout.unhashed_blob_writer().expect("writer");
        w.write_all(b"hello").expect("write");
        w.commit(&digest, 5).expect("commit");
        assert_eq!(layout.read_blob(&digest).expect("read"), b"hello");

        let other = Digest::of(b"world");
        let mut w = layout.unhashed_blob_writer().expect("writer");
        w.write_all(b"world").expect("write");
        let err = w.commit(&other, 6).expect_err("size differs");
        assert!(err.to_string().contains("cannot write"), "{err}");
        assert!(!layout.blob_path(&other).exists());
        assert_eq!(names(tmp.path().join("blobs/sha256")), [digest.hex()]);
    }

    /// A blob large enough to be synced in the background while written
    /// (oci::writeback) is stored whole.
    #[test]
    fn a_large_blob_is_stored_whole() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let layout = Layout::open_or_create(tmp.path()).expect("create");
        let chunk: Vec<u8> = (0..=255u8).cycle().take(1 << 20).collect();
        let mut w = layout.blob_writer().expect("writer");
        for i in 0..60u8 {
            let mut c = chunk.clone();
            c[0] = i;
            w.write_all(&c).expect("write");
        }
        let (digest, size) = w.commit().expect("commit");
        assert_eq!(size, 60 << 20);
        let stored = layout.read_blob(&digest).expect("read");
        assert_eq!(stored.len(), 60 << 20);
        assert_eq!(Digest::of(&stored), digest);
        assert_eq!(stored[59 << 20], 59);
    }

    #[test]
    fn concurrent_tagging_loses_no_tag() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let layout = Layout::open_or_create(tmp.path()).expect("create");
        let config = layout
            .put_blob(MediaType::ImageConfig, b"{}")
            .expect("blob");
        std::thread::scope(|s| {
            for t in 0..4 {
                let (layout, config) = (&layout, &config);
                s.spawn(move || {
                    for i in 0..25 {
                        layout
                            .set_references(config, &[format!("app:t{t}-{i}")])
                            .expect("set_references");
                    }
                });
            }
        });
        assert_eq!(layout.read_index().expect("index").manifests().len(), 100);
    }

    /// Builds that create the same new layout at the same moment all
    /// succeed, and no tag is lost to a second init's empty index.
    #[test]
    fn concurrent_creation_of_one_layout_loses_no_tag() {
        for round in 0..10 {
            let tmp = tempfile::tempdir().expect("tempdir");
            let dir = tmp.path().join("new.oci");
            std::thread::scope(|s| {
                for t in 0..4 {
                    let dir = &dir;
                    s.spawn(move || {
                        let layout = Layout::open_or_create(dir)
                            .unwrap_or_else(|e| panic!("round {round}, builder {t}: {e}"));
                        let config = layout
                            .put_blob(MediaType::ImageConfig, b"{}")
                            .expect("blob");
                        layout
                            .set_references(&config, &[format!("app:t{t}")])
                            .expect("set_references");
                    });
                }
            });
            let layout = Layout::open(&dir).expect("open");
            assert_eq!(
                layout.read_index().expect("index").manifests().len(),
                4,
                "round {round}"
            );
        }
    }

    #[test]
    fn refuses_non_empty_directory_and_touches_nothing() {
        let tmp = tempfile::tempdir().expect("tempdir");
        fs::create_dir(tmp.path().join("sub")).expect("mkdir");
        fs::write(tmp.path().join("sub/file"), b"keep me").expect("write");
        fs::write(tmp.path().join("index.json"), b"not ours").expect("write");
        let before = snapshot(tmp.path());
        let err = Layout::open_or_create(tmp.path()).expect_err("not a layout");
        assert!(
            matches!(&err, OciError::NotALayout { path } if path == tmp.path()),
            "{err:?}"
        );
        assert!(err.to_string().contains("no oci-layout file"), "{err}");
        assert_eq!(snapshot(tmp.path()), before);
    }

    #[test]
    fn refuses_regular_file_and_touches_nothing() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = tmp.path().join("image");
        fs::write(&file, b"a file").expect("write");
        let before = snapshot(tmp.path());
        let err = Layout::open_or_create(&file).expect_err("a file");
        assert!(
            matches!(&err, OciError::NotADirectory { path } if *path == file),
            "{err:?}"
        );
        assert_eq!(snapshot(tmp.path()), before);
    }

    #[test]
    fn refuses_bad_oci_layout_files() {
        let tmp = tempfile::tempdir().expect("tempdir");
        fs::write(
            tmp.path().join("oci-layout"),
            br#"{"imageLayoutVersion":"2.0.0"}"#,
        )
        .expect("write");
        let before = snapshot(tmp.path());
        let err = Layout::open_or_create(tmp.path()).expect_err("version");
        assert!(
            matches!(&err, OciError::LayoutVersion { found, .. } if found == "2.0.0"),
            "{err:?}"
        );
        fs::write(tmp.path().join("oci-layout"), b"{").expect("write");
        let err = Layout::open_or_create(tmp.path()).expect_err("garbage");
        assert!(matches!(&err, OciError::ParseJson { .. }), "{err:?}");
        fs::write(
            tmp.path().join("oci-layout"),
            br#"{"imageLayoutVersion":"2.0.0"}"#,
        )
        .expect("write");
        // Only the file we rewrote (same bytes, maybe new mtime) differs.
        let after = snapshot(tmp.path());
        assert_eq!(after.len(), before.len());
        assert_eq!(
            after.iter().map(|e| (&e.0, &e.4)).collect::<Vec<_>>(),
            before.iter().map(|e| (&e.0, &e.4)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn refuses_unparsable_index() {
        let tmp = tempfile::tempdir().expect("tempdir");
        Layout::open_or_create(tmp.path()).expect("create");
        fs::write(tmp.path().join("index.json"), b"[]").expect("write");
        let err = Layout::open_or_create(tmp.path()).expect_err("bad index");
        assert!(
            matches!(&err, OciError::ParseJson { path, .. } if path.ends_with("index.json")),
            "{err:?}"
        );
    }

    #[test]
    fn finishes_an_interrupted_init() {
        // Interrupted after the marker: no blobs dir, no index.json yet.
        let tmp = tempfile::tempdir().expect("tempdir");
        fs::write(
            tmp.path().join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .expect("write");
        let layout = Layout::open_or_create(tmp.path()).expect("open");
        assert!(tmp.path().join("blobs/sha256").is_dir());
        assert!(layout.read_index().expect("index").manifests().is_empty());
        let m = image(&layout, "a", &["a"]);
        assert_eq!(tagged(&layout, "a").expect("tag"), {
            let mut m = m.clone();
            m.set_annotations(Some(
                [(ANNOTATION_REF_NAME.to_owned(), "a".to_owned())].into(),
            ));
            m
        });
    }

    #[test]
    fn blob_writer_hashes_counts_and_renames() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let layout = Layout::open_or_create(tmp.path()).expect("create");
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut w = layout.blob_writer().expect("writer");
        for chunk in data.chunks(7_777) {
            w.write_all(chunk).expect("write");
        }
        let (digest, size) = w.commit().expect("commit");
        assert_eq!(digest, Digest::of(&data));
        assert_eq!(size, 1_000_000);
        let blobs = tmp.path().join("blobs/sha256");
        assert_eq!(names(&blobs), [digest.hex()]);
        assert_eq!(fs::read(layout.blob_path(&digest)).expect("read"), data);
        assert_eq!(layout.read_blob(&digest).expect("read_blob"), data);
        let mode = fs::metadata(layout.blob_path(&digest))
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, FILE_MODE & !umask());

        // The same content again: same answer, still one file, no temps.
        let mut w = layout.blob_writer().expect("writer");
        w.write_all(&data).expect("write");
        assert_eq!(w.commit().expect("commit"), (digest, 1_000_000));
        assert_eq!(names(&blobs), [digest.hex()]);

        // Dropped before commit: the temporary file goes away.
        let mut w = layout.blob_writer().expect("writer");
        w.write_all(b"abandoned").expect("write");
        assert_eq!(names(&blobs).len(), 2);
        drop(w);
        assert_eq!(names(&blobs), [digest.hex()]);
    }

    /// A blob already there under the right name but with other bytes of
    /// the same size is replaced, not trusted.
    #[test]
    fn a_corrupt_blob_of_the_same_size_is_rewritten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let layout = Layout::open_or_create(dir.path()).expect("create");
        let d = layout
            .put_blob(MediaType::Other("x".into()), b"good bytes")
            .expect("put");
        let digest = from_oci_digest(d.digest(), layout.root()).expect("digest");
        let path = layout.blob_path(&digest);
        fs::write(&path, b"evil bytes").expect("corrupt");
        assert!(layout.read_blob(&digest).is_err());
        layout
            .put_blob(MediaType::Other("x".into()), b"good bytes")
            .expect("put again");
        assert_eq!(layout.read_blob(&digest).expect("verifies"), b"good bytes");
    }

    #[test]
    fn blob_digests_lists_blobs_only_in_order() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let layout = Layout::open_or_create(tmp.path()).expect("create");
        let a = layout.put_blob(MediaType::ImageConfig, b"a").expect("a");
        let b = layout.put_blob(MediaType::ImageConfig, b"b").expect("b");
        let blobs = tmp.path().join(BLOB_DIR);
        fs::write(blobs.join(format!("{TEMP_PREFIX}left-behind")), b"x").expect("write");
        fs::write(blobs.join("not-a-digest"), b"x").expect("write");
        let mut want = vec![
            from_oci_digest(a.digest(), tmp.path()).expect("digest"),
            from_oci_digest(b.digest(), tmp.path()).expect("digest"),
        ];
        want.sort();
        assert_eq!(layout.blob_digests().expect("list"), want);
    }

    #[test]
    fn put_json_is_canonical_and_read_blob_verifies() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let layout = Layout::open_or_create(tmp.path()).expect("create");
        let value: std::collections::HashMap<&str, u8> = [("b", 2), ("a", 1)].into();
        let d = layout
            .put_json(MediaType::ImageConfig, &value)
            .expect("put_json");
        let digest = Digest::of(br#"{"a":1,"b":2}"#);
        assert_eq!(d.digest().to_string(), digest.to_string());
        assert_eq!(d.size(), 13);
        assert_eq!(d.media_type(), &MediaType::ImageConfig);
        assert_eq!(
            layout.read_blob(&digest).expect("read"),
            br#"{"a":1,"b":2}"#
        );

        fs::write(layout.blob_path(&digest), br#"{"a":1,"b":3}"#).expect("corrupt");
        let err = layout.read_blob(&digest).expect_err("corrupt");
        assert!(
            matches!(&err, OciError::DigestMismatch { expected, found, .. }
                if *expected == digest && *found == Digest::of(br#"{"a":1,"b":3}"#)),
            "{err:?}"
        );
        let missing = Digest::from_bytes([7; 32]);
        assert!(matches!(
            layout.read_blob(&missing),
            Err(OciError::BlobNotFound { digest, .. }) if digest == missing
        ));
    }

    /// The expected index.json entry for `m` tagged `tag`.
    fn entry(m: &Descriptor, tag: &str) -> String {
        format!(
            r#"{{"annotations":{{"org.opencontainers.image.ref.name":"{tag}"}},"digest":"{}","mediaType":"application/vnd.oci.image.manifest.v1+json","size":{}}}"#,
            m.digest(),
            m.size()
        )
    }

    fn index_with(entries: &[String]) -> String {
        format!(
            r#"{{"manifests":[{}],"mediaType":"application/vnd.oci.image.index.v1+json","schemaVersion":2}}"#,
            entries.join(",")
        )
    }

    #[test]
    fn tags_move_and_others_stay() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("layout");
        let a = {
            let layout = Layout::open_or_create(&dir).expect("create");
            image(&layout, "a", &["v1", "latest"])
        };
        assert_eq!(
            read_string(dir.join("index.json")),
            index_with(&[entry(&a, "latest"), entry(&a, "v1")])
        );

        let layout = Layout::open_or_create(&dir).expect("reopen");
        let b = image(&layout, "b", &["v2", "latest", "v2"]);
        assert_ne!(a.digest(), b.digest());
        assert_eq!(
            read_string(dir.join("index.json")),
            index_with(&[entry(&b, "latest"), entry(&a, "v1"), entry(&b, "v2")])
        );
        for (tag, m) in [("latest", &b), ("v1", &a), ("v2", &b)] {
            let got = tagged(&layout, tag).expect("resolve");
            assert_eq!(got.digest(), m.digest(), "{tag}");
            assert_eq!(got.size(), m.size(), "{tag}");
        }
        assert!(matches!(
            tagged(&layout, "v3"),
            Err(crate::source::SourceError::TagNotFound { tag, .. }) if tag == "v3"
        ));

        // Every blob of both images is still there and intact.
        for m in [&a, &b] {
            let md = from_oci_digest(m.digest(), &dir).expect("digest");
            let manifest: oci_spec::image::ImageManifest =
                serde_json::from_slice(&layout.read_blob(&md).expect("manifest")).expect("parse");
            let config = from_oci_digest(manifest.config().digest(), &dir).expect("digest");
            layout.read_blob(&config).expect("config");
            for l in manifest.layers() {
                let ld = from_oci_digest(l.digest(), &dir).expect("digest");
                layout.read_blob(&ld).expect("layer");
            }
        }
        assert_eq!(
            names(dir.join("blobs/sha256")).len(),
            3 + 4,
            "base, a, b + 2 configs + 2 manifests"
        );
        assert!(
            !names(&dir).iter().any(|n| n.starts_with(TEMP_PREFIX)),
            "no temporary files left"
        );
    }

    #[test]
    fn index_bytes_do_not_depend_on_tag_order() {
        let build = |order: &[&[&str]]| {
            let tmp = tempfile::tempdir().expect("tempdir");
            let layout = Layout::open_or_create(tmp.path()).expect("create");
            let (a, b) = (image(&layout, "a", &[]), image(&layout, "b", &[]));
            for (i, t) in order.iter().enumerate() {
                layout
                    .set_references(if i % 2 == 0 { &a } else { &b }, &references(t))
                    .expect("tag");
            }
            read_string(tmp.path().join("index.json"))
        };
        assert_eq!(
            build(&[&["x", "c", "m"], &["q", "b"]]),
            build(&[&["m", "x", "c"], &["b", "q"]])
        );
    }

    #[test]
    fn foreign_entries_are_kept() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let layout = Layout::open_or_create(tmp.path()).expect("create");
        let a = image(&layout, "a", &[]);
        // An untagged entry with an extra annotation, as another tool might
        // write, then a tag on top.
        let mut foreign = a.clone();
        foreign.set_annotations(Some([("com.example".to_owned(), "x".to_owned())].into()));
        let mut index = layout.read_index().expect("index");
        index.set_manifests(vec![foreign]);
        layout.write_index(index).expect("write");
        layout.set_references(&a, &references(&["t"])).expect("tag");
        let foreign_json = format!(
            r#"{{"annotations":{{"com.example":"x"}},"digest":"{}","mediaType":"application/vnd.oci.image.manifest.v1+json","size":{}}}"#,
            a.digest(),
            a.size()
        );
        assert_eq!(
            read_string(tmp.path().join("index.json")),
            index_with(&[foreign_json, entry(&a, "t")])
        );
    }

    #[test]
    fn failed_builds_leave_the_index_alone() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let layout = Layout::open_or_create(tmp.path()).expect("create");
        image(&layout, "a", &["keep"]);
        let before = read_string(tmp.path().join("index.json"));

        // A layer that was never stored.
        let mut missing = fake_layer(&layout, b"x");
        missing.digest = Digest::from_bytes([9; 32]);
        let err = write_image(
            &layout,
            &ImageSpec::default(),
            &[missing],
            &BTreeMap::new(),
            &references(&["keep"]),
        )
        .expect_err("missing layer");
        assert!(matches!(err, OciError::BlobNotFound { .. }), "{err:?}");

        // A layer whose recorded size is wrong.
        let mut wrong = fake_layer(&layout, b"y");
        wrong.size += 1;
        let err = write_image(
            &layout,
            &ImageSpec::default(),
            &[wrong],
            &BTreeMap::new(),
            &references(&["keep"]),
        )
        .expect_err("wrong size");
        assert!(
            matches!(
                err,
                OciError::SizeMismatch {
                    found: 1,
                    expected: 2,
                    ..
                }
            ),
            "{err:?}"
        );

        // An invalid tag.
        let err = write_image(
            &layout,
            &ImageSpec::default(),
            &[],
            &BTreeMap::new(),
            &references(&["ok", "bad tag"]),
        )
        .expect_err("bad tag");
        assert!(
            matches!(&err, OciError::InvalidReference { reference } if reference == "bad tag"),
            "{err:?}"
        );

        // A manifest descriptor that points nowhere.
        let nowhere = Descriptor::new(
            MediaType::ImageManifest,
            10,
            crate::oci::oci_digest(&Digest::from_bytes([8; 32])).expect("digest"),
        );
        let err = layout
            .set_references(&nowhere, &references(&["keep"]))
            .expect_err("dangling");
        assert!(matches!(err, OciError::BlobNotFound { .. }), "{err:?}");

        assert_eq!(read_string(tmp.path().join("index.json")), before);
    }

    #[test]
    fn tag_grammar() {
        let good = [
            "latest",
            "v1.2.3",
            "1",
            "a--b",
            "A_b-c.d:e@f+g",
            "registry.example.com:5000/team/app:v1",
            "app@sha256:abc",
        ];
        for t in good {
            check_reference(t).unwrap_or_else(|e| panic!("{t:?}: {e}"));
        }
        let bad = [
            "", "-a", "a-", "a..b", "a---b", "a_-b", "a//b", "/a", "a/", "a b", "é", "a\n",
        ];
        for t in bad {
            assert!(
                matches!(check_reference(t), Err(OciError::InvalidReference { reference }) if reference == t),
                "{t:?}"
            );
        }
    }
}
