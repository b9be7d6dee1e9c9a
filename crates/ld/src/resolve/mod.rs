//! Dependency resolution with glibc's rules: given an ELF input, find every
//! file the dynamic loader opens to start it, without running anything.
//!
//! The order and rules follow ld.so(8) and `_dl_map_object` in dl-load.c:
//! DT_NEEDED breadth first, de-duplicated by name and soname; for each name
//! DT_RPATH of the requester and its loaders (only when the requester has
//! no DT_RUNPATH), LD_LIBRARY_PATH, DT_RUNPATH of the requester, the
//! root's ld.so.cache, then the system directories (the last two skipped
//! under DF_1_NODEFLIB). Everything is looked up inside a root directory.

mod closure;
mod dst;
pub mod loader_abi;
pub mod root;
mod search;
pub mod versions;

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::elf::{ElfError, ElfInfo, LdCache};

pub use loader_abi::LoaderAbi;
pub use root::{Link, Located, LookupError, Root};

/// How to resolve: the root and the image's environment.
#[derive(Clone, Debug)]
pub struct Options {
    /// The directory whose files the image is made of (`/` or a sysroot).
    pub root: PathBuf,
    /// LD_LIBRARY_PATH from the *image's* environment (never the host's).
    pub ld_library_path: Option<OsString>,
    /// Add the libraries glibc opens without a DT_NEEDED (libgcc_s, NSS)
    /// and those the objects' dlopen notes name.
    pub companions: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            root: PathBuf::from("/"),
            ld_library_path: None,
            companions: true,
        }
    }
}

/// One program to resolve: where its bytes are on the host, and where it
/// will be in the image (which sets `$ORIGIN`).
#[derive(Clone, Debug)]
pub struct Input {
    pub host: PathBuf,
    pub image: PathBuf,
    /// Whether the input lives inside the root at `image` (then `$ORIGIN`
    /// searches stay inside the root); otherwise they are made relative to
    /// the host file and mapped below `image`'s directory.
    pub in_root: bool,
    /// Libraries the program opens with dlopen (`--dlopen`), resolved as
    /// if the program itself asked for them.
    pub dlopen: Vec<OsString>,
}

impl Input {
    /// A file inside the root, as `mkimage ldd` sees it.
    pub fn in_root(image: impl Into<PathBuf>, root: &Root) -> Input {
        let image = image.into();
        Input {
            host: root.host(&image),
            image,
            in_root: true,
            dlopen: Vec::new(),
        }
    }

    /// A host file that will be copied to `image`.
    pub fn outside(host: impl Into<PathBuf>, image: impl Into<PathBuf>) -> Input {
        Input {
            host: host.into(),
            image: image.into(),
            in_root: false,
            dlopen: Vec::new(),
        }
    }
}

/// Why a file is in the closure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    Input,
    Interpreter,
    Needed,
    /// Another glibc-hwcaps (or legacy hwcaps) build of the object at this
    /// index, kept so the image runs on any CPU.
    HwcapsVariant {
        of: usize,
    },
    /// Opened by glibc itself, with no DT_NEEDED.
    Companion(&'static str),
    Dlopen,
    /// Named by an FDO dlopen note (`.note.dlopen`) of the object that
    /// asked, with the feature's name and priority.
    DlopenNote {
        feature: String,
        priority: &'static str,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Input => write!(f, "input"),
            Reason::Interpreter => write!(f, "interpreter"),
            Reason::Needed => write!(f, "needed"),
            Reason::HwcapsVariant { .. } => write!(f, "hwcaps variant"),
            Reason::Companion(why) => write!(f, "companion: {why}"),
            Reason::Dlopen => write!(f, "dlopen"),
            Reason::DlopenNote { feature, priority } => {
                write!(f, "dlopen note: {feature}, {priority}")
            }
        }
    }
}

/// A file the loader opens.
#[derive(Clone, Debug)]
pub struct Object {
    /// The name it was asked for by (a DT_NEEDED string, PT_INTERP, or the
    /// input's image path).
    pub name: OsString,
    /// The image path the loader opens.
    pub path: PathBuf,
    /// The image path of the real file, every symlink resolved.
    pub real: PathBuf,
    /// The host file holding the bytes.
    pub host: PathBuf,
    /// Image symlinks from `path` to `real`.
    pub links: Vec<Link>,
    /// Found inside the root (a system library), as opposed to the input
    /// itself or a file its `$ORIGIN` reaches outside the root.
    pub in_root: bool,
    pub reason: Reason,
    /// Index of the object that asked for this one.
    pub needed_by: Option<usize>,
    pub info: Arc<ElfInfo>,
    /// Which step of the loader's search found it (`None` for the input).
    pub found_by: Option<FoundBy>,
}

/// The step of ld.so(8)'s search order that found an object, and the
/// directories searched before it in vain: the resolver's reasoning, for
/// `mkimage ldd -v` and a build's `-v`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundBy {
    /// The directory (or `/etc/ld.so.cache`) and the rule that searched it:
    /// "RPATH of X", "LD_LIBRARY_PATH", "RUNPATH of X", "ld.so.cache",
    /// "ld.so.conf", "system search path", "PT_INTERP", "path in DT_NEEDED".
    pub step: Searched,
    /// The glibc-hwcaps (or legacy hwcaps) subdirectory it was in, e.g.
    /// `glibc-hwcaps/x86-64-v3`, or the ld.so.cache entry's hwcaps name.
    pub hwcaps: Option<String>,
    /// Directories searched before, where the name was not.
    pub passed: Vec<Searched>,
}

impl fmt::Display for FoundBy {
    /// `found in /opt/app/lib (RUNPATH of /usr/local/bin/app); not in
    /// /opt/old (LD_LIBRARY_PATH)`, `found in ld.so.cache (its
    /// glibc-hwcaps/x86-64-v3 entry)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Searched { dir, why } = &self.step;
        match (&self.hwcaps, why.as_str()) {
            (None, "ld.so.cache") => write!(f, "found in ld.so.cache")?,
            (Some(h), "ld.so.cache") => write!(f, "found in ld.so.cache (its {h} entry)")?,
            (None, _) => write!(f, "found in {} ({why})", dir.display())?,
            (Some(h), _) => write!(
                f,
                "found in {} ({why}, hwcaps subdirectory)",
                dir.join(h).display()
            )?,
        }
        for (i, s) in self.passed.iter().enumerate() {
            let lead = if i == 0 { "; not in " } else { ", " };
            write!(f, "{lead}{} ({})", s.dir.display(), s.why)?;
        }
        Ok(())
    }
}

/// A directory searched for a name, with why it was searched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Searched {
    pub dir: PathBuf,
    pub why: String,
}

/// A name the loader would not find.
#[derive(Clone, Debug)]
pub struct Missing {
    pub name: OsString,
    pub needed_by: PathBuf,
    pub searched: Vec<Searched>,
    /// Candidates that were passed over (wrong class or machine) or that
    /// stop the loader (not ELF), with what was wrong.
    pub rejected: Vec<(PathBuf, String)>,
    /// false for optional companions: worth a note, not an error.
    pub required: bool,
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (needed by {}) not found",
            self.name.to_string_lossy(),
            self.needed_by.display()
        )?;
        for (p, why) in &self.rejected {
            write!(f, "\n    rejected {}: {why}", p.display())?;
        }
        if self.searched.is_empty() {
            write!(f, "\n    no directory was searched")?;
        } else {
            write!(
                f,
                "\n    searched (each also with its glibc-hwcaps and legacy hwcaps subdirectories):"
            )?;
            for s in &self.searched {
                write!(f, "\n      {} ({})", s.dir.display(), s.why)?;
            }
        }
        Ok(())
    }
}

/// A feature's libraries a dlopen note calls `suggested`: listed, not
/// added.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suggested {
    pub feature: String,
    pub sonames: Vec<String>,
    /// The image path of the object whose note names them.
    pub by: PathBuf,
}

/// The result for one input: objects in load order, the input first.
#[derive(Clone, Debug)]
pub struct Closure {
    pub objects: Vec<Object>,
    pub missing: Vec<Missing>,
    pub suggested: Vec<Suggested>,
    /// Objects whose dlopen note could not be read: (image path, why).
    pub bad_notes: Vec<(PathBuf, String)>,
}

impl Closure {
    pub fn input(&self) -> &Object {
        &self.objects[0]
    }

    pub fn is_static(&self) -> bool {
        self.objects.len() == 1 && self.input().info.is_static()
    }

    /// Missing names that stop the program from starting.
    pub fn required_missing(&self) -> impl Iterator<Item = &Missing> {
        self.missing.iter().filter(|m| m.required)
    }

    pub fn interpreter(&self) -> Option<&Object> {
        self.objects
            .iter()
            .find(|o| o.reason == Reason::Interpreter)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Input(Arc<ElfError>),
    #[error(transparent)]
    Lookup(#[from] LookupError),
    #[error("{path} does not exist in the root {root}")]
    NotInRoot { path: PathBuf, root: PathBuf },
}

/// Resolves inputs against one root. Keeps what it read (ELF headers, the
/// cache) between inputs, so resolving many programs is cheap.
pub struct Resolver {
    root: Root,
    opts: Options,
    elf_cache: HashMap<PathBuf, Result<Arc<ElfInfo>, Arc<ElfError>>>,
    versions_cache: HashMap<PathBuf, Result<Arc<crate::elf::Versions>, Arc<ElfError>>>,
    /// `None` until first needed; `Some(None)` when the root has no cache.
    ld_cache: Option<Option<Arc<LdCache>>>,
    conf_dirs: Option<Vec<PathBuf>>,
    /// Host directories searched for programs given from outside the root
    /// (their `$ORIGIN`), listed once: most candidates (every hwcaps
    /// subdirectory, each library name) are not there.
    host_dirs: HashMap<PathBuf, search::HostDir>,
}

impl Resolver {
    pub fn new(opts: Options) -> Resolver {
        Resolver {
            root: Root::new(opts.root.clone()),
            opts,
            elf_cache: HashMap::new(),
            versions_cache: HashMap::new(),
            ld_cache: None,
            conf_dirs: None,
            host_dirs: HashMap::new(),
        }
    }

    pub fn root(&mut self) -> &mut Root {
        &mut self.root
    }

    /// Reads (once) the ELF file at a host path.
    pub fn elf_info(&mut self, host: &Path) -> Result<Arc<ElfInfo>, Arc<ElfError>> {
        self.elf(host)
    }

    fn elf(&mut self, host: &Path) -> Result<Arc<ElfInfo>, Arc<ElfError>> {
        if let Some(hit) = self.elf_cache.get(host) {
            return hit.clone();
        }
        let r = crate::elf::read_elf(host).map(Arc::new).map_err(Arc::new);
        self.elf_cache.insert(host.to_path_buf(), r.clone());
        r
    }

    /// Reads (once) the symbol versions of the ELF file at a host path.
    pub fn versions(&mut self, host: &Path) -> Result<Arc<crate::elf::Versions>, Arc<ElfError>> {
        if let Some(hit) = self.versions_cache.get(host) {
            return hit.clone();
        }
        let r = crate::elf::read_versions(host)
            .map(Arc::new)
            .map_err(Arc::new);
        self.versions_cache.insert(host.to_path_buf(), r.clone());
        r
    }

    /// The closure of one input.
    pub fn resolve(&mut self, input: &Input) -> Result<Closure, ResolveError> {
        closure::resolve(self, input)
    }

    /// The directories of the root's ld.so.conf (includes expanded), in
    /// its order.
    pub fn configured_dirs(&mut self) -> Vec<PathBuf> {
        self.conf_dirs()
    }

    /// Resolves a file inside the root given by its image path, as `ldd`
    /// would be run on it.
    pub fn resolve_in_root(&mut self, image: &Path) -> Result<Closure, ResolveError> {
        let found = self
            .root
            .lookup(image)?
            .ok_or_else(|| ResolveError::NotInRoot {
                path: image.to_path_buf(),
                root: self.opts.root.clone(),
            })?;
        // The kernel gives the loader the executable's real path
        // (/proc/self/exe), so $ORIGIN is the real file's directory.
        let input = Input::in_root(found.real, &self.root);
        self.resolve(&input)
    }
}

#[cfg(test)]
mod tests;
