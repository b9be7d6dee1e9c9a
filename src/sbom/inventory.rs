//! What the file tree holds, by where it came from: each file copied from
//! the root matched to the Debian package that owns it there (and the md5
//! of the bytes the image gets), the language packages, the app's own
//! files with their SHA-256, and the root's os-release. Read once, after
//! every artifact is added and before any layer is written; the package
//! records and the SBOM are both made from it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::SbomError;
use super::copyright;
use super::dpkg::{Claim, Database, NoDatabase, Package};
use super::hashing::{Hashes, Job, hash_all};
use super::lang::{self, LangPackage};
use crate::resolve::Root;
use crate::rootfs::{ImagePath, Kind, LayerKind, LayerSet, Source};

/// Where the root says which distribution it is (os-release(5): `/etc`
/// first, then `/usr/lib`).
const OS_RELEASE: &[&str] = &["/etc/os-release", "/usr/lib/os-release"];
/// Trivy recognises Debian by this file, not by os-release.
pub const DEBIAN_VERSION: &str = "/etc/debian_version";
/// Largest os-release or debian_version read: real ones are a few
/// hundred bytes.
const SMALL_FILE_LIMIT: usize = 64 * 1024;

/// A Debian package with files in the image.
#[derive(Clone, Debug)]
pub struct Deb {
    pub package: Package,
    /// Image path → md5 of the bytes the image holds there.
    pub files: BTreeMap<ImagePath, [u8; 16]>,
    /// The lowest layer holding one of its files: its record goes there,
    /// so it changes with the files it describes.
    pub layer: LayerKind,
    /// Bytes of its files in the image.
    pub size: u64,
    /// From its DEP-5 copyright file, when that parses.
    pub license: Option<String>,
}

/// A file of the app layer, for the SBOM.
#[derive(Clone, Debug)]
pub struct AppFile {
    pub path: ImagePath,
    pub sha256: [u8; 32],
    pub sha1: [u8; 20],
    /// The Debian package it came from, if any (`--from-binary
    /// /usr/bin/curl` puts curl's file in the app layer).
    pub deb: Option<String>,
}

/// The root's os-release(5), as bytes and as fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OsRelease {
    pub bytes: Vec<u8>,
    pub fields: BTreeMap<String, String>,
}

impl OsRelease {
    /// Parses `KEY=value` lines, values unquoted as the shell would.
    pub fn parse(bytes: Vec<u8>) -> OsRelease {
        let fields = String::from_utf8_lossy(&bytes)
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| {
                let v = v.trim();
                let v = v
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                    .unwrap_or(v);
                (k.trim().to_owned(), v.replace("\\\"", "\""))
            })
            .collect();
        OsRelease { bytes, fields }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The purl `distro` qualifier: `debian-12`.
    pub fn distro(&self) -> Option<String> {
        Some(format!("{}-{}", self.get("ID")?, self.get("VERSION_ID")?))
    }
}

/// Everything the records and the SBOM are made from.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    pub os: Option<OsRelease>,
    /// By [`Package::key`].
    pub debs: BTreeMap<String, Deb>,
    pub langs: Vec<LangPackage>,
    pub app_files: Vec<AppFile>,
    /// Why no Debian package is recorded, when the root has no database.
    pub no_database: Option<String>,
}

/// One regular file of the file tree.
pub(super) struct TreeFile {
    pub layer: LayerKind,
    pub path: ImagePath,
    pub source: Source,
    pub size: u64,
    /// The host file's stat when planned, if the planner kept one.
    pub stat: Option<std::sync::Arc<std::fs::Metadata>>,
}

/// Remembers the hashes of host files across builds (the layer cache
/// does), so unchanged files are not read again.
pub trait HashMemo: Sync {
    /// The bytes stored for `what` of the file at `host` whose metadata is
    /// `file` (its stamps say which file it is); else the key to store
    /// them under once computed, or `None` when they must not be stored.
    fn lookup(
        &self,
        host: &Path,
        file: &std::fs::Metadata,
        what: &[u8],
    ) -> Result<Vec<u8>, Option<[u8; 32]>>;
    fn store(&self, key: [u8; 32], value: Vec<u8>);
    /// A file's identity (device, inode, size, mtime, ctime) as the memo
    /// keys files, when it is old enough that any later change to it shows
    /// in them (git's racy-file rule); `None` when an answer keyed by it
    /// must not be remembered.
    fn stamps(&self, file: &std::fs::Metadata) -> Option<[i128; 5]>;
    /// What [`remember`](HashMemo::remember) kept under `key`, if whole.
    fn recall(&self, key: &[u8; 32]) -> Option<Vec<u8>>;
    /// Keeps `value` for later builds under `key`, which the caller makes
    /// cover everything the value depends on.
    fn remember(&self, key: [u8; 32], value: Vec<u8>);
}

/// What [`Database::open`] made of the root: a database, why there is
/// none, or why it could not be read.
pub type Opened = Result<Result<Database, NoDatabase>, SbomError>;

/// Surveys the file tree against `root` (whose database is read, never the
/// host's unless the root is `/`): `db` is what [`Database::open`] made of
/// the same root (a build opens it on a thread of its own). `threads` hash
/// files in parallel, asking `memo` first.
///
/// The files of every layer but the app's are surveyed first, then the
/// app's: a rebuild after an app change asks the first question again,
/// and `memo` remembers its answer (`sbom::settled`).
pub fn survey(
    layers: &LayerSet,
    root: &mut Root,
    db: Opened,
    threads: usize,
    memo: Option<&dyn HashMemo>,
    warnings: &mut Vec<String>,
) -> Result<Inventory, SbomError> {
    let files = tree_files(layers);
    let mut inv = Inventory::default();
    let db = match db? {
        Ok(db) => Some(db),
        Err(none) => {
            inv.no_database = Some(none.0);
            None
        }
    };
    let (settled, app): (Vec<usize>, Vec<usize>) =
        (0..files.len()).partition(|&i| files[i].layer != LayerKind::App);
    let ask = |which| Ask {
        files: &files,
        which,
        db: db.as_ref(),
        threads,
        memo,
    };
    // The parts are independent but for which packages the first checked,
    // so the settled layers' part runs beside the app's; each spends a
    // tenth of a second on one core reading every package's file list.
    let (first, second) = {
        let (settled, app) = (ask(&settled), ask(&app));
        let dir = root.dir().to_path_buf();
        std::thread::scope(|s| {
            let first = std::thread::Builder::new()
                .name("survey".to_owned())
                .spawn_scoped(s, || super::settled::survey(&settled, &dir));
            let second = survey_part(&app, root, false);
            let first = match first {
                Ok(thread) => thread.join().unwrap_or(Err(SbomError::HashThread)),
                Err(_) => super::settled::survey(&settled, &dir),
            };
            (first, second)
        })
    };
    let mut first = first?;
    let mut second = second?;
    if let Some(db) = &db {
        let known: BTreeSet<String> = first.debs.keys().cloned().collect();
        check_packages(&mut second, db, root, &known)?;
    }

    inv.os = first.os.take().map(OsRelease::parse);
    for part in [first, second] {
        warnings.extend(part.warnings);
        for (key, found) in part.debs {
            let Some(package) = db.as_ref().and_then(|d| d.packages.get(&key)) else {
                continue;
            };
            let deb = inv.debs.entry(key).or_insert_with(|| Deb {
                package: package.clone(),
                files: BTreeMap::new(),
                layer: LayerKind::App,
                size: 0,
                license: found.license,
            });
            for (i, md5) in found.files {
                let Some(f) = files.get(i) else { continue };
                deb.files.insert(f.path.clone(), md5);
                deb.layer = deb.layer.min(f.layer);
                deb.size += f.size;
            }
        }
        inv.app_files
            .extend(part.app.into_iter().filter_map(|(i, h, deb)| {
                Some(AppFile {
                    path: files.get(i)?.path.clone(),
                    sha256: h.sha256,
                    sha1: h.sha1,
                    deb,
                })
            }));
    }
    inv.debs.retain(|_, d| !d.files.is_empty());
    inv.langs = lang::find(layers, warnings);
    // A desktop's database is ~100k small allocations: freeing them was
    // 4 ms of a warm rebuild's main thread, which the other core can do.
    if let Some(db) = db {
        std::thread::spawn(move || drop(db));
    }
    Ok(inv)
}

/// What a survey found in some of the file tree's files, each named by
/// its index in [`tree_files`]' list.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Part {
    /// The root's os-release, when this part read it.
    pub os: Option<Vec<u8>>,
    /// By [`Package::key`].
    pub debs: BTreeMap<String, PartDeb>,
    /// The app's files: index, hashes, the package it came from.
    pub app: Vec<(usize, Hashes, Option<String>)>,
    pub warnings: Vec<String>,
}

/// A package's files in a [`Part`].
#[derive(Debug, Default, PartialEq)]
pub(super) struct PartDeb {
    /// Index and the md5 of the bytes the image holds, by index.
    pub files: Vec<(usize, [u8; 16])>,
    /// From its copyright file; `None` too when an earlier part checked
    /// the package.
    pub license: Option<String>,
}

/// What a part of the survey is asked about.
pub(super) struct Ask<'a> {
    pub files: &'a [TreeFile],
    /// Indices into `files`.
    pub which: &'a [usize],
    pub db: Option<&'a Database>,
    pub threads: usize,
    pub memo: Option<&'a dyn HashMemo>,
}

/// Surveys the files `ask.which` against `root`: which package owns each,
/// and their hashes. Its packages are checked by [`check_packages`];
/// `with_os` reads the root's os-release.
pub(super) fn survey_part(ask: &Ask, root: &mut Root, with_os: bool) -> Result<Part, SbomError> {
    let Ask {
        files, which, db, ..
    } = *ask;
    let mut part = Part::default();
    if with_os {
        part.os = read_small(root, OS_RELEASE)?;
    }
    // The real path in the root of every file copied from it.
    let mut by_real: BTreeMap<PathBuf, Vec<usize>> = BTreeMap::new();
    if db.is_some() {
        for &i in which {
            let Source::Host(host) = &files[i].source else {
                continue;
            };
            let Some(image) = root.image_of(host) else {
                continue;
            };
            if let Some(found) = root.lookup(&image)? {
                by_real.entry(found.real).or_default().push(i);
            }
        }
    }
    let mut notes = BTreeMap::new();
    let claims: BTreeMap<PathBuf, Vec<Claim>> = match db {
        Some(db) => {
            let wanted: BTreeSet<PathBuf> = by_real.keys().cloned().collect();
            db.owners(root, &wanted, ask.memo, &mut notes, &mut part.warnings)?
        }
        None => BTreeMap::new(),
    };

    // Hash what needs it: owned files (md5), the app's (SHA-256, SHA-1).
    let owned: BTreeSet<usize> = claims
        .keys()
        .flat_map(|real| by_real.get(real).into_iter().flatten().copied())
        .collect();
    let jobs: Vec<Job> = which
        .iter()
        .filter_map(|&file| {
            let md5 = owned.contains(&file);
            let sha = files[file].layer == LayerKind::App;
            (md5 || sha).then_some(Job { file, md5, sha })
        })
        .collect();
    let hashes = hash_all(files, &jobs, ask.threads, ask.memo)?;

    let mut owner: BTreeMap<usize, String> = BTreeMap::new();
    if let Some(db) = db {
        let warnings = &mut part.warnings;
        let mut shipped: HashMap<String, HashMap<PathBuf, [u8; 16]>> = HashMap::new();
        for (real, claims) in &claims {
            let Some(idxs) = by_real.get(real) else {
                continue;
            };
            let Some(first) = idxs.first().and_then(|i| hashes.get(i)) else {
                continue;
            };
            for c in claims {
                if !shipped.contains_key(&c.key) {
                    shipped.insert(c.key.clone(), db.shipped_md5s(root, &c.key)?);
                }
            }
            let matches = |c: &&Claim| {
                shipped
                    .get(&c.key)
                    .and_then(|m| m.get(&c.listed))
                    .is_some_and(|md5| *md5 == first.md5)
            };
            let chosen: &Claim = match claims.as_slice() {
                [one] => {
                    let differs = shipped
                        .get(&one.key)
                        .and_then(|m| m.get(&one.listed))
                        .is_some_and(|md5| *md5 != first.md5);
                    if differs {
                        warnings.push(format!(
                            "{} differs from the copy {} installed (its md5sums): changed since? It is recorded as {}'s, with the md5 of the bytes in the image",
                            root.host(real).display(),
                            one.key,
                            one.key
                        ));
                    }
                    one
                }
                many => {
                    let fitting: Vec<&Claim> = many.iter().filter(matches).collect();
                    let names: Vec<&str> = many.iter().map(|c| c.key.as_str()).collect();
                    match fitting.as_slice() {
                        [one] => one,
                        _ => {
                            let pick = fitting.first().copied().unwrap_or(&many[0]);
                            warnings.push(format!(
                                "{} is listed by {} ({}), and its md5 does not tell which installed it: recorded as {}'s",
                                root.host(real).display(),
                                names.join(" and "),
                                many.iter()
                                    .map(|c| c.listed.display().to_string())
                                    .collect::<Vec<_>>()
                                    .join(", "),
                                pick.key
                            ));
                            pick
                        }
                    }
                }
            };
            if let Some(note) = notes.get(real) {
                warnings.push(format!("{note}: recorded as {}'s", chosen.key));
            }
            for i in idxs {
                owner.insert(*i, chosen.key.clone());
            }
        }
        for (i, key) in &owner {
            let (Some(f), Some(h)) = (files.get(*i), hashes.get(i)) else {
                continue;
            };
            if !db.packages.contains_key(key) {
                continue;
            }
            if f.path.as_path().to_str().is_none() {
                warnings.push(format!(
                    "{}: the file name is not UTF-8; {}'s md5sums keeps its bytes, the SBOM shows it with U+FFFD",
                    f.path.as_path().display(),
                    key
                ));
            }
            part.debs
                .entry(key.clone())
                .or_default()
                .files
                .push((*i, h.md5));
        }
    }

    part.app = jobs
        .iter()
        .filter(|j| j.sha)
        .filter_map(|j| Some((j.file, *hashes.get(&j.file)?, owner.get(&j.file).cloned())))
        .collect();
    Ok(part)
}

/// Checks each package of `part` not in `known` (checked by an earlier
/// part): its state, the files its list names that `root` lacks, and its
/// license, from its copyright file.
pub(super) fn check_packages(
    part: &mut Part,
    db: &Database,
    root: &mut Root,
    known: &BTreeSet<String>,
) -> Result<(), SbomError> {
    let warnings = &mut part.warnings;
    for (key, deb) in part.debs.iter_mut() {
        let Some(package) = db.packages.get(key) else {
            continue;
        };
        if known.contains(key) {
            continue;
        }
        if package.state != "installed" {
            warnings.push(format!(
                "dpkg: {key} is {} in {}, not fully installed; recorded as it is",
                package.state,
                root.dir().display()
            ));
        }
        let missing = db.missing_files(root, key)?;
        if let Some(first) = missing.first() {
            warnings.push(format!(
                "dpkg: {key}'s file list names {} file{} not in {} (first {}): a damaged or partly removed package; its record lists only what the image holds",
                missing.len(),
                if missing.len() == 1 { "" } else { "s" },
                root.dir().display(),
                first.display()
            ));
        }
        let copyright = Path::new("/usr/share/doc")
            .join(&package.name)
            .join("copyright");
        deb.license = root
            .read(&copyright)?
            .and_then(|b| copyright::spdx_expression(&String::from_utf8_lossy(&b)));
    }
    Ok(())
}

/// Every regular file of the file tree, hard links as the file they link to.
fn tree_files(layers: &LayerSet) -> Vec<TreeFile> {
    let mut out = Vec::new();
    for (layer, tree) in layers.layers() {
        for (path, entry) in tree.iter() {
            let file = match &entry.kind {
                Kind::Hardlink { target } => tree.get(target),
                _ => Some(entry),
            };
            if let Some(file) = file
                && let Kind::File { source, size } = &file.kind
            {
                out.push(TreeFile {
                    layer,
                    path: path.clone(),
                    source: source.clone(),
                    size: *size,
                    stat: file.stat.clone(),
                });
            }
        }
    }
    out
}

/// The first of `paths` that the root has, read whole.
fn read_small(root: &mut Root, paths: &[&str]) -> Result<Option<Vec<u8>>, SbomError> {
    for p in paths {
        if let Some(bytes) = root.read(Path::new(p))? {
            if bytes.len() > SMALL_FILE_LIMIT {
                return Err(SbomError::TooLarge {
                    path: root.host(Path::new(p)),
                    limit: SMALL_FILE_LIMIT,
                });
            }
            return Ok(Some(bytes));
        }
    }
    Ok(None)
}

/// An image path as bytes (file names need not be UTF-8).
pub fn path_bytes(p: &ImagePath) -> &[u8] {
    p.as_path().as_os_str().as_bytes()
}
