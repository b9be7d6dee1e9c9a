//! Turning host files into file-tree entries: the mode rules every image file
//! follows, directory walks, and hard links.
//!
//! Every image file is owned by root, so the host's owner and group do not
//! survive: a file's mode alone decides who in the image may read it. A
//! file the user handed in (or one inside a tree the user named) may be
//! shared more widely than on the host, since the image runs as a non-root
//! user; anything else keeps only what the host grants everyone, so a
//! 0600 key or a 0640 `root:shadow` file never becomes readable.

use std::collections::HashMap;
use std::fs::Metadata;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{Entry, ImagePath, Kind, RootfsError, Source, Tree};

const SETUID_SETGID: u32 = 0o6000;
/// Group and world write are never kept: an image file writable by
/// another user is a privilege-escalation path.
const GROUP_WORLD_WRITE: u32 = 0o022;

/// Who vouches for a host file, which decides how widely the image may
/// share it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant {
    /// The user named the file, or a tree that holds it: what its owner may
    /// read or run, everyone may (the image runs as a non-root user while
    /// files are owned by root, so a 0700 build output copied as-is would
    /// lock the app out).
    Named,
    /// mkimage found it (a library, a runtime's file, a link's target):
    /// only what the host grants others. The group's bits are cut to the
    /// others' too, since the file's group becomes root's in the image.
    Host,
}

/// The mode an image entry gets from a host file: permissions and the
/// sticky bit, shared as `grant` allows, minus group/world write and minus
/// setuid/setgid (with a warning, since dropping them can change
/// behaviour).
pub fn image_mode(
    meta: &Metadata,
    image: &ImagePath,
    grant: Grant,
    warnings: &mut Vec<String>,
) -> u32 {
    let mode = meta.permissions().mode() & 0o7777;
    if mode & SETUID_SETGID != 0 && !meta.is_dir() {
        warnings.push(format!(
            "{image}: setuid/setgid bits dropped (images run as a non-root user)"
        ));
    }
    let mode = match grant {
        Grant::Named => mode | ((mode & 0o500) >> 3) | ((mode & 0o500) >> 6),
        Grant::Host => mode & !(0o070 & !((mode & 0o007) << 3)),
    };
    // The sticky bit stays (e.g. /tmp); setgid on a directory only
    // affects group inheritance, which images do not use.
    mode & !SETUID_SETGID & !GROUP_WORLD_WRITE
}

/// An entry for one host file, directory or symlink (not followed).
pub fn host_entry(
    host: &Path,
    image: &ImagePath,
    grant: Grant,
    warnings: &mut Vec<String>,
) -> Result<Entry, RootfsError> {
    let meta = std::fs::symlink_metadata(host).map_err(|e| RootfsError::io(host, e))?;
    if let Some(fs) = virtual_fs(host) {
        return Err(RootfsError::Virtual {
            path: host.to_path_buf(),
            fs,
        });
    }
    entry_from_meta(host, &meta, image, grant, warnings)
}

/// An entry for a walked host path whose metadata the walk already has.
/// Unlike [`host_entry`] it does not check for the kernel's file systems
/// per entry: walkers check their root and prune those mount points.
pub fn entry_from_meta(
    host: &Path,
    meta: &Metadata,
    image: &ImagePath,
    grant: Grant,
    warnings: &mut Vec<String>,
) -> Result<Entry, RootfsError> {
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target = std::fs::read_link(host).map_err(|e| RootfsError::io(host, e))?;
        return Ok(Entry::symlink(target));
    }
    let mode = image_mode(meta, image, grant, warnings);
    if ft.is_dir() {
        return Ok(Entry::dir(mode));
    }
    if ft.is_file() {
        return Ok(Entry::file(Source::Host(host.to_path_buf()), meta.len(), mode).stated(meta));
    }
    Err(RootfsError::Special {
        path: host.to_path_buf(),
    })
}

/// The kernel's file systems, whose files are made when read (a size of 0,
/// contents that differ each time, a whole machine's devices): never
/// image content, whoever names them.
pub const VIRTUAL_FS: &[&str] = &["/proc", "/sys", "/dev"];

/// Which of [`VIRTUAL_FS`] the host path lies in, after following the
/// links on the way to it. A final symlink is not followed: a link into
/// /proc (`/etc/mtab`) is only a link.
pub fn virtual_fs(host: &Path) -> Option<&'static str> {
    let real = match (host.parent(), host.file_name()) {
        (Some(dir), Some(name)) if !dir.as_os_str().is_empty() => canonical_dir(dir)?.join(name),
        (Some(_), Some(name)) => canonical_dir(Path::new("."))?.join(name),
        _ => std::fs::canonicalize(host).ok()?,
    };
    VIRTUAL_FS.iter().copied().find(|fs| real.starts_with(fs))
}

/// `dir` with its links resolved, remembered for the process: a build asks
/// for the few directories its hundreds of libraries and runtime files lie
/// in once a file, and realpath(3) reads every component's link (1,400
/// readlink calls, a twentieth of a warm JDK rebuild). A relative `dir` is
/// not remembered (it depends on the working directory), nor is a failure.
fn canonical_dir(dir: &Path) -> Option<PathBuf> {
    use std::sync::{LazyLock, Mutex};
    static KNOWN: LazyLock<Mutex<HashMap<PathBuf, PathBuf>>> = LazyLock::new(Mutex::default);
    if !dir.is_absolute() {
        return std::fs::canonicalize(dir).ok();
    }
    if let Ok(known) = KNOWN.lock()
        && let Some(real) = known.get(dir)
    {
        return Some(real.clone());
    }
    let real = std::fs::canonicalize(dir).ok()?;
    if let Ok(mut known) = KNOWN.lock() {
        known.insert(dir.to_path_buf(), real.clone());
    }
    Some(real)
}

/// Adds the tree at `host_dir` below `image_dir`, in sorted order,
/// keeping symlinks as symlinks. `skip` sees paths relative to
/// `host_dir` and prunes what it returns true for.
pub fn add_host_dir(
    tree: &mut Tree,
    host_dir: &Path,
    image_dir: &ImagePath,
    skip: &dyn Fn(&Path) -> bool,
    warnings: &mut Vec<String>,
) -> Result<(), RootfsError> {
    for (image, entry) in host_dir_entries(host_dir, image_dir, skip, warnings)? {
        tree.insert(image, entry)?;
    }
    Ok(())
}

/// What [`add_host_dir`] adds, in the same order, for a caller that walks
/// on one thread and adds on another.
pub fn host_dir_entries(
    host_dir: &Path,
    image_dir: &ImagePath,
    skip: &dyn Fn(&Path) -> bool,
    warnings: &mut Vec<String>,
) -> Result<Vec<(ImagePath, Entry)>, RootfsError> {
    let mut out = Vec::new();
    let walk = walkdir::WalkDir::new(host_dir)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| {
            e.path()
                .strip_prefix(host_dir)
                .map(|rel| rel.as_os_str().is_empty() || !skip(rel))
                .unwrap_or(true)
        });
    for item in walk {
        let item = item.map_err(|e| {
            let path = e.path().unwrap_or(host_dir).to_path_buf();
            RootfsError::io(&path, e.into())
        })?;
        let rel = item.path().strip_prefix(host_dir).unwrap_or(item.path());
        let image = image_dir.join(rel)?;
        let meta = item
            .metadata()
            .map_err(|e| RootfsError::io(item.path(), e.into()))?;
        let entry = entry_from_meta(item.path(), &meta, &image, Grant::Host, warnings)?;
        out.push((image, entry));
    }
    Ok(out)
}

/// Turns host files that are hard links of each other (same device and
/// inode) into tar hard links to the first of them in path order, as the
/// layer writer requires.
pub fn link_hardlinks(tree: &mut Tree) -> Result<(), RootfsError> {
    let mut first: HashMap<(u64, u64), ImagePath> = HashMap::new();
    let mut changes: Vec<(ImagePath, Entry)> = Vec::new();
    for (path, entry) in tree.iter() {
        let Kind::File {
            source: Source::Host(host),
            ..
        } = &entry.kind
        else {
            continue;
        };
        let meta = entry
            .host_stat(host)
            .map_err(|e| RootfsError::io(host, e))?;
        if meta.nlink() < 2 {
            continue;
        }
        match first.get(&(meta.dev(), meta.ino())) {
            None => {
                first.insert((meta.dev(), meta.ino()), path.clone());
            }
            Some(target) => changes.push((
                path.clone(),
                Entry {
                    kind: Kind::Hardlink {
                        target: target.clone(),
                    },
                    ..entry.clone()
                },
            )),
        }
    }
    for (path, entry) in changes {
        tree.replace(&path, entry);
    }
    Ok(())
}

/// Whether two host files have the same bytes (for the same image path
/// added twice from different places).
pub fn same_bytes(a: &Path, b: &Path) -> Result<bool, RootfsError> {
    use std::io::Read;
    let open = |p: &Path| std::fs::File::open(p).map_err(|e| RootfsError::io(p, e));
    let (mut fa, mut fb) = (open(a)?, open(b)?);
    let (ma, mb) = (
        fa.metadata().map_err(|e| RootfsError::io(a, e))?,
        fb.metadata().map_err(|e| RootfsError::io(b, e))?,
    );
    if ma.len() != mb.len() {
        return Ok(false);
    }
    let mut ba = vec![0u8; 64 * 1024];
    let mut bb = vec![0u8; 64 * 1024];
    loop {
        let n = fa.read(&mut ba).map_err(|e| RootfsError::io(a, e))?;
        if n == 0 {
            return Ok(true);
        }
        fb.read_exact(&mut bb[..n])
            .map_err(|e| RootfsError::io(b, e))?;
        if ba[..n] != bb[..n] {
            return Ok(false);
        }
    }
}

/// Whether two entries are the same thing: equal, or host files with the
/// same bytes.
pub fn same_entry(a: &Entry, b: &Entry) -> Result<bool, RootfsError> {
    if a.kind == b.kind {
        return Ok(true);
    }
    match (&a.kind, &b.kind) {
        (
            Kind::File {
                source: Source::Host(x),
                ..
            },
            Kind::File {
                source: Source::Host(y),
                ..
            },
        ) => same_bytes(x, y),
        _ => Ok(false),
    }
}

/// Inserts, treating two host files with the same bytes as the same file.
pub fn insert_dedup(tree: &mut Tree, path: ImagePath, entry: Entry) -> Result<(), RootfsError> {
    if let Some(old) = tree.get(&path)
        && old.kind != Kind::Dir
        && same_entry(old, &entry)?
    {
        return Ok(());
    }
    tree.insert(path, entry)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_drop_write_and_setuid() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("f");
        std::fs::write(&f, b"x").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o4777)).unwrap();
        let mut w = Vec::new();
        let img = ImagePath::new("/f").unwrap();
        let e = host_entry(&f, &img, Grant::Named, &mut w).unwrap();
        assert_eq!(e.mode, 0o755);
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("setuid"));
    }

    #[test]
    fn only_named_files_are_shared_beyond_the_host() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("f");
        std::fs::write(&f, b"x").unwrap();
        let img = ImagePath::new("/f").unwrap();
        // (host mode, as a named file, as a file mkimage found)
        let cases = [
            (0o600, 0o644, 0o600),
            (0o640, 0o644, 0o600),
            (0o700, 0o755, 0o700),
            (0o750, 0o755, 0o700),
            (0o644, 0o644, 0o644),
            (0o755, 0o755, 0o755),
            (0o754, 0o755, 0o744),
            (0o666, 0o644, 0o644),
        ];
        for (host, named, found) in cases {
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(host)).unwrap();
            let got = |g| host_entry(&f, &img, g, &mut Vec::new()).unwrap().mode;
            assert_eq!(got(Grant::Named), named, "{host:o} named");
            assert_eq!(got(Grant::Host), found, "{host:o} found");
        }
    }

    #[test]
    fn kernel_files_are_refused() {
        let img = ImagePath::new("/x").unwrap();
        for p in ["/proc/self/status", "/proc/cpuinfo", "/dev/null"] {
            let err = host_entry(Path::new(p), &img, Grant::Named, &mut Vec::new()).unwrap_err();
            assert!(matches!(err, RootfsError::Virtual { .. }), "{p}: {err}");
            assert!(err.to_string().contains(p), "{err}");
        }
    }

    #[test]
    fn walks_sorted_and_links_hardlinks() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("b/c")).unwrap();
        std::fs::write(d.path().join("b/c/x"), b"1").unwrap();
        std::fs::hard_link(d.path().join("b/c/x"), d.path().join("a")).unwrap();
        std::os::unix::fs::symlink("b/c/x", d.path().join("s")).unwrap();
        std::fs::write(d.path().join("skip.me"), b"").unwrap();
        let mut t = Tree::new();
        let mut w = Vec::new();
        let skip = |rel: &Path| rel.to_str() == Some("skip.me");
        add_host_dir(
            &mut t,
            d.path(),
            &ImagePath::new("/app").unwrap(),
            &skip,
            &mut w,
        )
        .unwrap();
        link_hardlinks(&mut t).unwrap();
        let got: Vec<String> = t.iter().map(|(p, _)| p.to_string()).collect();
        assert_eq!(
            got,
            [
                "/app",
                "/app/a",
                "/app/b",
                "/app/b/c",
                "/app/b/c/x",
                "/app/s"
            ]
        );
        assert!(matches!(
            t.get(&ImagePath::new("/app/b/c/x").unwrap()).unwrap().kind,
            Kind::Hardlink { .. }
        ));
        assert!(matches!(
            t.get(&ImagePath::new("/app/s").unwrap()).unwrap().kind,
            Kind::Symlink { .. }
        ));
    }
}
