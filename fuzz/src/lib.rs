//! What the fuzz targets share: the framed input of the `image` target (an
//! image's files as named sections), the repairs that let a mutated
//! document get past the checks guarding it (tar header checksums, blob
//! names that are digests), writing the files out, and reading them back
//! the way `mkimage inspect` does.
//!
//! The repairs are the point: a mutated manifest whose blob name no longer
//! matches its digest stops at the first digest check, so without them the
//! fuzzer would test that check and nothing behind it.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use memchr::memmem;
use mkimage::Digest;
use mkimage::Image;
use mkimage::Layout;

/// Starts each section of a framed input: `\n@@ NAME\n` then the content,
/// up to the next separator. Text, so that seeds are readable.
pub const SEPARATOR: &[u8] = b"\n@@ ";

/// A section named this (any content) asks for the files as one tar
/// archive instead of a directory; a docker-archive (`manifest.json`) is
/// always a tar.
pub const AS_TAR: &str = "@tar";

/// A section named this holds the tag to open (`IMAGE:TAG`).
pub const TAG: &str = "@tag";

/// A section name `NAME -> TARGET` is a symlink (in a tar).
const LINK_ARROW: &str = " -> ";

/// Sections past this many are ignored: an image has a handful of files.
const MAX_SECTIONS: usize = 64;

/// The files of a framed input, in input order: (name, content).
pub fn sections(data: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut framed = Vec::with_capacity(data.len() + 1);
    framed.push(b'\n');
    framed.extend_from_slice(data);
    let starts: Vec<usize> = memmem::find_iter(&framed, SEPARATOR).collect();
    let mut out = Vec::new();
    for (k, &start) in starts.iter().enumerate().take(MAX_SECTIONS) {
        let end = starts.get(k + 1).copied().unwrap_or(framed.len());
        let body = &framed[start + SEPARATOR.len()..end];
        let (name, content) = match memchr::memchr(b'\n', body) {
            Some(n) => (&body[..n], &body[n + 1..]),
            None => (body, &body[body.len()..]),
        };
        let name = String::from_utf8_lossy(name).into_owned();
        out.push((name, content.to_vec()));
    }
    out
}

/// Rewrites the checksum of every header of an (uncompressed) tar, walking
/// it as a reader does: header, content rounded up to 512 bytes, next
/// header. Stops where a size does not parse. Leaves anything that does not
/// start with a ustar or GNU header alone.
pub fn fix_tar_checksums(tar: &mut [u8]) {
    if tar.len() < 512 || &tar[257..262] != b"ustar" {
        return;
    }
    let mut at = 0usize;
    while at + 512 <= tar.len() {
        let h = &mut tar[at..at + 512];
        if h.iter().all(|&b| b == 0) {
            at += 512;
            continue;
        }
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        let Some(size) = octal(&h[124..136]) else {
            return;
        };
        let Some(next) = size
            .checked_next_multiple_of(512)
            .and_then(|s| usize::try_from(s).ok())
            .and_then(|s| s.checked_add(at + 512))
        else {
            return;
        };
        at = next;
    }
}

fn octal(field: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(field).ok()?;
    let s = s.trim_matches(|c: char| c == '\0' || c == ' ');
    if s.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(s, 8).ok()
}

/// Renames every file whose name holds a sha256 hex digest that its
/// content does not have to the digest it does have, and rewrites the old
/// digest to the new one wherever the other files mention it; repeated,
/// since a rewritten manifest has a new digest in turn.
pub fn fix_digests(files: &mut Vec<(String, Vec<u8>)>) {
    for _ in 0..4 {
        let mut renames: Vec<(String, String)> = Vec::new();
        for (name, content) in files.iter() {
            let Some(old) = hex_in(name) else { continue };
            let new = Digest::of(content).hex();
            if old != new && !renames.iter().any(|(o, _)| *o == old) {
                renames.push((old.to_owned(), new));
            }
        }
        if renames.is_empty() {
            return;
        }
        let finders: Vec<(memmem::Finder, &[u8])> = renames
            .iter()
            .map(|(old, new)| (memmem::Finder::new(old.as_bytes()), new.as_bytes()))
            .collect();
        for (name, content) in files.iter_mut() {
            for (old, new) in &renames {
                *name = name.replace(old.as_str(), new);
            }
            // Only documents name blobs; layers are left as they are.
            if !is_json(content) {
                continue;
            }
            for (finder, new) in &finders {
                replace_all(content, finder, new);
            }
        }
    }
}

/// Whether `content` looks like a JSON document (an object or an array).
fn is_json(content: &[u8]) -> bool {
    matches!(
        content.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{' | b'[')
    )
}

/// The first run of exactly 64 lowercase hex digits in `name`.
fn hex_in(name: &str) -> Option<&str> {
    let b = name.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        while i < b.len() && matches!(b[i], b'0'..=b'9' | b'a'..=b'f') {
            i += 1;
        }
        if i - start == 64 {
            return Some(&name[start..i]);
        }
        i = i.max(start + 1);
    }
    None
}

/// memchr's search, built once per digest: libFuzzer hooks every slice
/// comparison, so a naive search made the harness the hot spot.
fn replace_all(hay: &mut Vec<u8>, from: &memmem::Finder, to: &[u8]) {
    let hits: Vec<usize> = from.find_iter(hay).collect();
    if hits.is_empty() {
        return;
    }
    let n = from.needle().len();
    let mut out = Vec::with_capacity(hay.len());
    let mut at = 0;
    for i in hits {
        out.extend_from_slice(&hay[at..i]);
        out.extend_from_slice(to);
        at = i + n;
    }
    out.extend_from_slice(&hay[at..]);
    *hay = out;
}

/// A directory for this process's files, on tmpfs when there is one: every
/// run writes and reads its input there.
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            tempfile::Builder::new()
                .prefix("mkimage-fuzz-")
                .tempdir_in(shm)
        } else {
            tempfile::Builder::new().prefix("mkimage-fuzz-").tempdir()
        };
        // No scratch directory: nothing can run, and libFuzzer should say so.
        #[allow(clippy::expect_used)]
        dir.expect("cannot create a scratch directory")
    })
    .path()
}

/// Whether `name` is a relative path that stays inside its directory.
fn safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 1024
        && !name.contains('\0')
        && name
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && c.len() < 256)
}

/// Writes `files` as a directory at `dir` (emptied first); names that
/// would leave it, and files that clash with a directory, are skipped.
pub fn write_dir(dir: &Path, files: &[(String, Vec<u8>)]) {
    let _ = fs::remove_dir_all(dir);
    let _ = fs::create_dir_all(dir);
    for (name, content) in files {
        if name.contains(LINK_ARROW) || !safe_name(name) {
            continue;
        }
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            let _ = fs::create_dir_all(parent);
        }
        let _ = fs::write(&path, content);
    }
}

/// Writes `files` as a tar at `path`, in order, `NAME -> TARGET` as
/// symlinks.
pub fn write_tar(path: &Path, files: &[(String, Vec<u8>)]) {
    let Ok(file) = fs::File::create(path) else {
        return;
    };
    let mut b = tar::Builder::new(std::io::BufWriter::new(file));
    for (name, content) in files {
        if name.starts_with('@') || name.is_empty() {
            continue;
        }
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_mtime(0);
        let _ = match name.split_once(LINK_ARROW) {
            Some((link, target)) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                b.append_link(&mut h, link, target)
            }
            None => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(content.len() as u64);
                b.append_data(&mut h, name, &content[..])
            }
        };
    }
    if let Ok(mut w) = b.into_inner() {
        let _ = w.flush();
    }
}

/// Reads the image at `reference` (`PATH` or `PATH:TAG`) as `mkimage
/// inspect` does: summary (and its JSON), every layer, the provenance, and
/// `--why` for one path. Errors are expected; panics are what we look for.
pub fn inspect(reference: &str) {
    let Ok(mut image) = Image::open(reference) else {
        return;
    };
    let tree = image.files();
    let _ = serde_json::to_vec(image.summary());
    let _ = image.provenance().map(|p| p.chain("/etc/passwd").len());
    let Ok(tree) = tree else {
        return;
    };
    let mut last = None;
    for f in tree.iter() {
        let _ = tree.resolve(&f.path);
        last = Some(f.path.clone());
    }
    let _ = serde_json::to_vec(&tree.into_vec());
    if let Some(path) = last {
        let _ = image.why(&path);
    }
}

/// Reads the layout at `dir` as `build` and `push` open one: the index,
/// each tag, each blob the index names.
pub fn read_layout(dir: &Path) {
    let Ok(layout) = Layout::open(dir) else {
        return;
    };
    let Ok(index) = layout.read_index() else {
        return;
    };
    for d in index.manifests() {
        if let Some(tag) = mkimage::ref_name(d) {
            let _ = mkimage::select::by_tag(&index, Some(tag), &dir.display().to_string());
        }
        if let Ok(digest) = d.digest().to_string().parse::<Digest>() {
            let _ = layout.check_blob(&digest, d.size());
            let _ = layout.read_blob(&digest);
        }
    }
    // And as the image reader opens one (inspect, push, --base).
    if let Some(dir) = dir.to_str()
        && let Ok(source) = mkimage::open_str(dir, &Default::default())
        && let Ok(image) = source.select(None)
    {
        for layer in &image.layers {
            // Read to the end: the stream checks digest and size there.
            if let Ok(mut blob) = source.blob(layer) {
                let _ = std::io::copy(&mut blob, &mut std::io::sink());
            }
        }
    }
}

/// The place for this run's archive file.
pub fn scratch_file(name: &str) -> PathBuf {
    scratch().join(name)
}

/// Every error in `e`'s chain, displayed: messages are built from hostile
/// input too (quoted bodies, truncated at a char count).
pub fn show_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        out.push_str(": ");
        out.push_str(&s.to_string());
        next = s.source();
    }
    out
}
