//! Finding one name for one requesting object: the search list of
//! `_dl_map_object` (dl-load.c) and the checks of `open_verify`.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::elf::{ElfError, ElfInfo, LdCache, ldconf};

/// OS ABIs the loader accepts (EI_OSABI): System V and GNU/Linux.
const ELFOSABI_NONE: u8 = 0;
const ELFOSABI_GNU: u8 = 3;

use super::dst::{self, Tokens};
use super::root::{Link, MAX_SYMLINKS};
use super::{FoundBy, LoaderAbi, Resolver, Searched};
use crate::image_path::normalise;

/// Where `$ORIGIN` of an object points: its directory in the image, and,
/// for objects outside the root, the same directory on the host.
#[derive(Clone, Debug)]
pub(super) struct Origin {
    pub image: PathBuf,
    pub host: Option<PathBuf>,
}

/// What the search needs to know about the requester and its loaders.
pub(super) struct Request<'a> {
    pub name: &'a OsStr,
    /// The requester first, then the object that loaded it, up to the
    /// main program: (ELF info, origin, image path).
    pub chain: Vec<(&'a ElfInfo, &'a Origin, &'a Path)>,
    pub main_origin: &'a Origin,
    pub main: &'a ElfInfo,
}

/// A file accepted by the search.
#[derive(Clone, Debug)]
pub(super) struct Found {
    pub path: PathBuf,
    pub real: PathBuf,
    pub host: PathBuf,
    pub links: Vec<Link>,
    pub info: Arc<ElfInfo>,
    /// For files outside the root: the directory `$ORIGIN` means on the host.
    pub host_origin: Option<PathBuf>,
    /// Set by the search once it accepts the file.
    pub found_by: Option<FoundBy>,
}

pub(super) enum Outcome {
    /// The loader's pick, and other hwcaps builds of it.
    Found(Found, Vec<Found>),
    Missing {
        searched: Vec<Searched>,
        rejected: Vec<(PathBuf, String)>,
    },
}

struct SearchDir {
    image: PathBuf,
    outside: Option<PathBuf>,
    why: String,
}

enum Probe {
    Absent,
    Accept(Found),
    /// Passed over (wrong class or machine, unreadable): search on.
    Skip(PathBuf, String),
    /// The loader stops with an error here (e.g. not an ELF file).
    Fatal(PathBuf, String),
}

impl Resolver {
    pub(super) fn find(&mut self, req: &Request<'_>, abi: &LoaderAbi) -> Outcome {
        let mut searched = Vec::new();
        let mut rejected = Vec::new();
        let name = req.name;

        // A name with a slash is a path, not a search (ld.so(8)).
        if name.as_bytes().contains(&b'/') {
            let (_, origin, _) = req.chain[0];
            let dir = self.dir_from(name, origin, abi, "path in DT_NEEDED");
            match self.probe(&dir.image, dir.outside.as_deref(), req.main) {
                Probe::Accept(mut f) => {
                    f.found_by = Some(FoundBy {
                        step: Searched {
                            dir: f.path.parent().unwrap_or(Path::new("/")).to_path_buf(),
                            why: dir.why,
                        },
                        hwcaps: None,
                        passed: Vec::new(),
                    });
                    return Outcome::Found(f, Vec::new());
                }
                Probe::Skip(p, why) | Probe::Fatal(p, why) => rejected.push((p, why)),
                Probe::Absent => {}
            }
            return Outcome::Missing { searched, rejected };
        }

        let (requester, req_origin, req_path) = req.chain[0];
        let mut dirs: Vec<SearchDir> = Vec::new();
        if requester.runpath.is_none() {
            for (info, origin, path) in &req.chain {
                if let Some(rpath) = info.effective_rpath() {
                    let why = format!("RPATH of {}", path.display());
                    dirs.extend(self.dirs_from_list(rpath, origin, abi, &why));
                }
            }
        }
        if let Some(llp) = self.opts.ld_library_path.clone() {
            dirs.extend(self.dirs_from_list(&llp, req.main_origin, abi, "LD_LIBRARY_PATH"));
        }
        if let Some(runpath) = &requester.runpath {
            let why = format!("RUNPATH of {}", req_path.display());
            dirs.extend(self.dirs_from_list(runpath, req_origin, abi, &why));
        }
        if let Some(out) =
            self.search_dirs(name, &dirs, abi, req.main, &mut searched, &mut rejected)
        {
            return out;
        }

        // The cache, or ld.so.conf's directories when the root has none.
        let nodeflib = requester.nodeflib;
        match self.cache() {
            Some(cache) => {
                let passed = searched.clone();
                searched.push(Searched {
                    dir: PathBuf::from("/etc/ld.so.cache"),
                    why: "ld.so.cache".into(),
                });
                let mut entries: Vec<(usize, PathBuf, Option<String>)> = cache
                    .lookup(name.as_bytes())
                    .iter()
                    .filter(|e| e.matches_arch(abi.cache_flags))
                    .map(|e| {
                        let rank = e
                            .hwcaps
                            .as_ref()
                            .map(|h| abi.hwcaps_rank(h))
                            .unwrap_or(usize::MAX);
                        let hwcaps = e
                            .hwcaps
                            .as_ref()
                            .map(|h| format!("glibc-hwcaps/{}", String::from_utf8_lossy(h)));
                        (rank, PathBuf::from(OsStr::from_bytes(&e.path)), hwcaps)
                    })
                    .collect();
                entries.sort_by_key(|e| e.0);
                let mut accepted = Vec::new();
                for (_, path, hwcaps) in entries {
                    // Under DF_1_NODEFLIB a cache entry in a system
                    // directory is not used (dl-load.c).
                    if nodeflib && in_system_dir(&path, abi) {
                        continue;
                    }
                    match self.probe(&path, None, req.main) {
                        Probe::Accept(mut f) => {
                            f.found_by = Some(FoundBy {
                                step: searched[searched.len() - 1].clone(),
                                hwcaps,
                                passed: passed.clone(),
                            });
                            accepted.push(f)
                        }
                        Probe::Absent => {}
                        Probe::Skip(p, why) | Probe::Fatal(p, why) => rejected.push((p, why)),
                    }
                }
                if !accepted.is_empty() {
                    let primary = accepted.remove(0);
                    return Outcome::Found(primary, accepted);
                }
            }
            None => {
                let conf: Vec<SearchDir> = self
                    .conf_dirs()
                    .into_iter()
                    .map(|d| SearchDir {
                        image: d,
                        outside: None,
                        why: "ld.so.conf".into(),
                    })
                    .collect();
                if let Some(out) =
                    self.search_dirs(name, &conf, abi, req.main, &mut searched, &mut rejected)
                {
                    return out;
                }
            }
        }

        if !nodeflib {
            let system: Vec<SearchDir> = abi
                .system_dirs
                .iter()
                .map(|d| SearchDir {
                    image: d.clone(),
                    outside: None,
                    why: "system search path".into(),
                })
                .collect();
            if let Some(out) =
                self.search_dirs(name, &system, abi, req.main, &mut searched, &mut rejected)
            {
                return out;
            }
        }
        Outcome::Missing { searched, rejected }
    }

    /// Tries each directory (hwcaps subdirectories first). Returns the
    /// outcome when found or when the loader would stop.
    fn search_dirs(
        &mut self,
        name: &OsStr,
        dirs: &[SearchDir],
        abi: &LoaderAbi,
        main: &ElfInfo,
        searched: &mut Vec<Searched>,
        rejected: &mut Vec<(PathBuf, String)>,
    ) -> Option<Outcome> {
        for d in dirs {
            searched.push(Searched {
                dir: d.image.clone(),
                why: d.why.clone(),
            });
            let mut accepted: Vec<Found> = Vec::new();
            let subdirs = abi
                .subdirs
                .iter()
                .map(String::as_str)
                .chain(std::iter::once(""));
            for sub in subdirs {
                let image = d.image.join(sub).join(name);
                let outside = d.outside.as_ref().map(|o| o.join(sub).join(name));
                match self.probe(&image, outside.as_deref(), main) {
                    Probe::Absent => {}
                    Probe::Accept(mut f) => {
                        let (step, passed) = searched.split_last().unzip();
                        f.found_by = step.map(|step| FoundBy {
                            step: step.clone(),
                            hwcaps: (!sub.is_empty()).then(|| sub.trim_end_matches('/').to_owned()),
                            passed: passed.unwrap_or_default().to_vec(),
                        });
                        accepted.push(f)
                    }
                    Probe::Skip(p, why) => rejected.push((p, why)),
                    Probe::Fatal(p, why) => {
                        if accepted.is_empty() {
                            rejected.push((p, why));
                            return Some(Outcome::Missing {
                                searched: std::mem::take(searched),
                                rejected: std::mem::take(rejected),
                            });
                        }
                    }
                }
            }
            if !accepted.is_empty() {
                let primary = accepted.remove(0);
                return Some(Outcome::Found(primary, accepted));
            }
        }
        None
    }

    /// Whether the host directory listing of `path`'s directory shows it
    /// is not there (so `stat` would fail): `false` when it may be.
    fn host_absent(&mut self, path: &Path) -> bool {
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return false;
        };
        let listing = self
            .host_dirs
            .entry(dir.to_path_buf())
            .or_insert_with(|| HostDir::list(dir));
        match listing {
            HostDir::Gone => true,
            HostDir::Names(names) => !names.contains_key(name),
            HostDir::Unlisted => false,
        }
    }

    /// Looks at one candidate file as `open_verify` would.
    fn probe(&mut self, image: &Path, outside: Option<&Path>, main: &ElfInfo) -> Probe {
        let (path, real, host, links, host_origin) = match outside {
            Some(host_path) => {
                if self.host_absent(host_path) {
                    return Probe::Absent;
                }
                let Ok(meta) = std::fs::metadata(host_path) else {
                    return Probe::Absent;
                };
                if !meta.is_file() {
                    return Probe::Absent;
                }
                let real_host = match std::fs::canonicalize(host_path) {
                    Ok(p) => p,
                    Err(e) => return Probe::Skip(host_path.to_path_buf(), e.to_string()),
                };
                let path = normalise(image);
                let (real, links) = outside_links(&path, host_path);
                let origin = host_path.parent().map(Path::to_path_buf);
                (path, real, real_host, links, origin)
            }
            None => match self.root.lookup(image) {
                Ok(Some(found)) => {
                    let host = self.root.host(&found.real);
                    (found.path, found.real, host, found.links, None)
                }
                Ok(None) => return Probe::Absent,
                Err(e) => return Probe::Skip(image.to_path_buf(), e.to_string()),
            },
        };
        match self.elf(&host) {
            Ok(info) => {
                // open_verify: another class or machine is passed over
                // (a multilib system); another byte order or OS ABI is an
                // error that stops the load.
                let (have, want) = (&info.ident, &main.ident);
                let mismatch = format!(
                    "{}, but the program is {}",
                    have.describe(),
                    want.describe()
                );
                if have.little_endian != want.little_endian {
                    return Probe::Fatal(path, format!("{mismatch}: the loader stops here"));
                }
                if !matches!(have.osabi, ELFOSABI_NONE | ELFOSABI_GNU) {
                    return Probe::Fatal(
                        path,
                        format!("OS ABI {} is not Linux: the loader stops here", have.osabi),
                    );
                }
                if !have.compatible_with(want) {
                    return Probe::Skip(path, mismatch);
                }
                Probe::Accept(Found {
                    path,
                    real,
                    host,
                    links,
                    info,
                    host_origin,
                    found_by: None,
                })
            }
            Err(e) => match &*e {
                ElfError::Directory { .. } => Probe::Absent,
                ElfError::Io { source, .. } => Probe::Skip(path, source.to_string()),
                ElfError::NotElf { .. } | ElfError::Script { .. } => Probe::Fatal(
                    path,
                    "not an ELF file: the loader stops here with \"invalid ELF header\"".into(),
                ),
                ElfError::Malformed { source, .. } => Probe::Fatal(path, source.to_string()),
            },
        }
    }

    fn dirs_from_list(
        &self,
        list: &OsStr,
        origin: &Origin,
        abi: &LoaderAbi,
        why: &str,
    ) -> Vec<SearchDir> {
        dst::split_list(list)
            .iter()
            .map(|e| self.dir_from(e, origin, abi, why))
            .collect()
    }

    /// Expands one path element for an object with `origin`. Elements that
    /// use `$ORIGIN` of an object outside the root stay outside.
    fn dir_from(&self, elem: &OsStr, origin: &Origin, abi: &LoaderAbi, why: &str) -> SearchDir {
        let tokens = |o: &Path| -> OsString {
            dst::expand(
                elem,
                &Tokens {
                    origin: o.as_os_str(),
                    lib: &abi.lib,
                    platform: abi.platform,
                },
            )
        };
        let image = PathBuf::from(tokens(&origin.image));
        // Relative elements are relative to the working directory, which
        // is / unless the image sets another.
        let image = normalise(&Path::new("/").join(image));
        let outside = match &origin.host {
            Some(h) if dst::uses_origin(elem.as_bytes()) => Some(PathBuf::from(tokens(h))),
            _ => None,
        };
        SearchDir {
            image,
            outside,
            why: why.to_string(),
        }
    }

    fn cache(&mut self) -> Option<Arc<LdCache>> {
        if self.ld_cache.is_none() {
            let parsed = match self.root.read(Path::new("/etc/ld.so.cache")) {
                Ok(Some(bytes)) => LdCache::parse(&bytes).ok().map(Arc::new),
                _ => None,
            };
            self.ld_cache = Some(parsed);
        }
        self.ld_cache.clone().flatten()
    }

    /// ld.so.conf's directories, includes expanded inside the root.
    pub(super) fn conf_dirs(&mut self) -> Vec<PathBuf> {
        if let Some(d) = &self.conf_dirs {
            return d.clone();
        }
        let mut out = Vec::new();
        self.read_conf(Path::new("/etc/ld.so.conf"), &mut out, 0);
        self.conf_dirs = Some(out.clone());
        out
    }

    fn read_conf(&mut self, file: &Path, out: &mut Vec<PathBuf>, depth: usize) {
        if depth > 8 {
            return;
        }
        let Ok(Some(bytes)) = self.root.read(file) else {
            return;
        };
        for line in ldconf::parse(&String::from_utf8_lossy(&bytes)) {
            match line {
                ldconf::ConfLine::Dir(d) => {
                    let d = PathBuf::from(d);
                    if !out.contains(&d) {
                        out.push(d);
                    }
                }
                ldconf::ConfLine::Include(pattern) => {
                    let pattern = if Path::new(&pattern).is_absolute() {
                        PathBuf::from(pattern)
                    } else {
                        file.parent().unwrap_or(Path::new("/")).join(pattern)
                    };
                    let host_pattern = self.root.host(&pattern);
                    let mut files: Vec<PathBuf> = glob::glob(&host_pattern.to_string_lossy())
                        .map(|paths| paths.filter_map(Result::ok).collect())
                        .unwrap_or_default();
                    files.sort();
                    for f in files {
                        if let Some(img) = self.root.image_of(&f) {
                            self.read_conf(&img, out, depth + 1);
                        }
                    }
                }
            }
        }
    }
}

/// The relative symlinks leading from a file outside the root to its
/// target (libfoo.so.1 -> libfoo.so.1.2 beside a program), so the image
/// reproduces them as the tree has them. An absolute link ends the chain:
/// the file is then placed where the chain stopped.
fn outside_links(image: &Path, host: &Path) -> (PathBuf, Vec<Link>) {
    let (mut image, mut host) = (image.to_path_buf(), host.to_path_buf());
    let mut links = Vec::new();
    while links.len() < MAX_SYMLINKS {
        let Ok(target) = std::fs::read_link(&host) else {
            break;
        };
        if target.is_absolute() {
            break;
        }
        let (Some(image_dir), Some(host_dir)) = (image.parent(), host.parent()) else {
            break;
        };
        let next_image = normalise(&image_dir.join(&target));
        let next_host = host_dir.join(&target);
        links.push(Link {
            at: image.clone(),
            target,
        });
        image = next_image;
        host = next_host;
    }
    (image, links)
}

/// Whether a cached path lies in a system directory (or a hwcaps
/// subdirectory of one).
fn in_system_dir(path: &Path, abi: &LoaderAbi) -> bool {
    let Some(mut dir) = path.parent() else {
        return false;
    };
    for sub in &abi.subdirs {
        if let Some(base) = dir.to_str().and_then(|d| d.strip_suffix(sub)) {
            dir = Path::new(base.trim_end_matches('/'));
            break;
        }
    }
    abi.system_dirs.iter().any(|s| s == dir)
}

/// A host directory's names, as [`Resolver::probe`] needs them.
#[derive(Debug)]
pub(super) enum HostDir {
    /// It does not exist, or is not a directory: nothing is in it.
    Gone,
    Names(super::root::Names),
    /// It could not be listed (permissions): each name is asked.
    Unlisted,
}

impl HostDir {
    fn list(dir: &Path) -> HostDir {
        match super::root::read_names(dir) {
            Ok(names) => HostDir::Names(names),
            Err(e) if super::root::is_not_found(&e) => HostDir::Gone,
            Err(_) => HostDir::Unlisted,
        }
    }
}
