//! The image's own `/etc/ld.so.cache` (and the `/etc/ld.so.conf` that
//! says what it covers), as `ldconfig -X` run inside the finished image
//! would write it: for library directories the loader would not search by
//! default, the root's ld.so.conf directories and `--include`d trees that
//! hold libraries, so that their programs start, and `dlopen("libfoo.so.1")`
//! finds them, without LD_LIBRARY_PATH. The scan follows ldconfig.c
//! `search_dir` of glibc 2.36; the format is `elf::ldcache_write`'s.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::artifact::Assembly;
use crate::elf::ldcache_write::{self, libcmp};
use crate::elf::{Arch, ElfInfo, Ident};
use crate::plan::{BuildPlan, LdCacheMode};
use crate::rootfs::{Entry, ImagePath, Kind, LayerKind, RootfsError, Source};

use super::BuildError;

pub(super) const CACHE_PATH: &str = "/etc/ld.so.cache";
pub(super) const CONF_PATH: &str = "/etc/ld.so.conf";
/// ldconfig.h FLAG_ELF: a library that needs no libc6 library (only
/// i386's generic ldconfig records it).
const FLAG_ELF: i32 = 0x0001;

/// Adds the cache (and conf) when the image has libraries outside the
/// default directories, or always with `--ld-cache always`.
pub(super) fn add_ld_cache(
    asm: &mut Assembly,
    plan: &BuildPlan,
    arch: Arch,
) -> Result<(), BuildError> {
    let Some(ident) = asm.ident() else {
        return Ok(());
    };
    if plan.ld_cache == LdCacheMode::None {
        return Ok(());
    }
    // ldconfig's own directories, after ld.so.conf's (SLIBDIR, LIBDIR);
    // the loader searches these and /lib, /usr/lib without a cache.
    let triplet = arch.triplet();
    let system = [format!("/lib/{triplet}"), format!("/usr/lib/{triplet}")];
    let defaults: BTreeSet<String> = system
        .iter()
        .cloned()
        .chain(["/lib".to_string(), "/usr/lib".to_string()])
        .collect();

    let mut candidates: Vec<String> = asm
        .resolver
        .configured_dirs()
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    for m in &plan.includes {
        candidates.extend(lib_dirs_under(asm, &m.dst));
    }
    let mut extra: Vec<String> = Vec::new();
    for d in candidates {
        if defaults.contains(&d) || extra.contains(&d) {
            continue;
        }
        if !scan_dir(asm, &d, None, &ident, arch).is_empty() {
            extra.push(d);
        }
    }
    if extra.is_empty() && plan.ld_cache == LdCacheMode::Auto {
        return Ok(());
    }

    // Directories in ldconfig's order, each real directory once (it
    // compares device and inode): ld.so.conf's, then SLIBDIR and LIBDIR.
    let mut seen = BTreeSet::new();
    let mut entries = Vec::new();
    for d in extra.iter().chain(system.iter()) {
        let Some((real, e)) = asm.layers.resolve(Path::new(d)) else {
            continue;
        };
        if e.kind != Kind::Dir || !seen.insert(real.clone()) {
            continue;
        }
        entries.extend(scan_dir(asm, d, None, &ident, arch));
        if children(asm, &real).contains_key("glibc-hwcaps") {
            let hw_dir = format!("{d}/glibc-hwcaps");
            let Some((hw_real, _)) = asm.layers.resolve(Path::new(&hw_dir)) else {
                continue;
            };
            for name in children(asm, &hw_real).into_keys() {
                let sub_dir = format!("{hw_dir}/{name}");
                if asm.layers.has_dir(Path::new(&sub_dir)) {
                    entries.extend(scan_dir(asm, &sub_dir, Some(&name), &ident, arch));
                }
            }
        }
    }
    let bytes = ldcache_write::write(&entries, ident.little_endian);
    let why = format!(
        "the loader's cache of the image's {} librar{} (as ldconfig writes it{})",
        entries.len(),
        if entries.len() == 1 { "y" } else { "ies" },
        if extra.is_empty() {
            String::from(", --ld-cache always")
        } else {
            format!(", for {}", extra.join(" "))
        }
    );
    if !extra.is_empty() {
        let mut conf = String::from(
            "# Written by mkimage: the directories /etc/ld.so.cache covers besides the default ones.\n",
        );
        for d in &extra {
            conf.push_str(d);
            conf.push('\n');
        }
        asm.add(
            LayerKind::Libs,
            ImagePath::new(CONF_PATH).map_err(RootfsError::from)?,
            Entry::bytes(conf.into_bytes(), 0o644),
            why.as_str(),
        )?;
    }
    asm.add(
        LayerKind::Libs,
        ImagePath::new(CACHE_PATH).map_err(RootfsError::from)?,
        Entry::bytes(bytes, 0o644),
        why,
    )?;
    Ok(())
}

/// ldconfig.c `_dl_is_dso`: the names ldconfig looks at.
fn is_dso(name: &str) -> bool {
    (name.starts_with("lib") || name.starts_with("ld-")) && name.contains(".so")
}

/// The entries directly in the image directory `real` (a resolved
/// path), by name, from the top-most layer that has each.
fn children(asm: &Assembly, real: &ImagePath) -> BTreeMap<String, Entry> {
    let mut out = BTreeMap::new();
    for tree in asm.layers.trees.values() {
        for (path, entry) in tree.iter() {
            if path.parent().as_ref() == Some(real)
                && let Some(name) = path.file_name()
            {
                out.insert(name.to_string_lossy().into_owned(), entry.clone());
            }
        }
    }
    out
}

/// The image directories at or below `dst` that hold a file named like a
/// library, sorted.
fn lib_dirs_under(asm: &Assembly, dst: &ImagePath) -> Vec<String> {
    let mut dirs = BTreeSet::new();
    for tree in asm.layers.trees.values() {
        for (path, entry) in tree.iter() {
            if path.as_path().starts_with(dst.as_path())
                && !matches!(entry.kind, Kind::Dir)
                && path
                    .file_name()
                    .is_some_and(|n| is_dso(&n.to_string_lossy()))
                && let Some(parent) = path.parent()
                && !parent
                    .as_path()
                    .components()
                    .any(|c| c.as_os_str() == "glibc-hwcaps")
            {
                dirs.insert(parent.to_string());
            }
        }
    }
    dirs.into_iter().collect()
}

/// The ELF header of an image file, read from where its bytes are.
fn elf_of(asm: &Assembly, path: &ImagePath, entry: &Entry) -> Option<ElfInfo> {
    match &entry.kind {
        Kind::File {
            source: Source::Host(host),
            ..
        } => crate::elf::read_elf(host).ok(),
        Kind::File {
            source: Source::Bytes(b),
            ..
        } => crate::elf::read::read_elf_bytes(b, path.as_path()).ok(),
        Kind::Hardlink { target } => {
            let (real, e) = asm.layers.resolve(target.as_path())?;
            (!matches!(e.kind, Kind::Hardlink { .. })).then_some(())?;
            elf_of(asm, &real, e)
        }
        _ => None,
    }
}

/// One library kept for a soname while scanning a directory.
struct Dlib {
    name: String,
    soname: String,
    is_link: bool,
    flags: i32,
}

/// The cache entries of one directory (ldconfig.c `search_dir`): every
/// file or symlink named like a library that is a shared object of the
/// image's architecture, one per soname (a file before a link, else the
/// newer name); a symlink not named by its target's soname, nor that
/// soname's `.so` link, counts as a file. Paths are the directory as
/// listed plus the soname (the actual name in glibc-hwcaps directories).
fn scan_dir(
    asm: &Assembly,
    dir: &str,
    hwcaps: Option<&str>,
    ident: &Ident,
    arch: Arch,
) -> Vec<ldcache_write::Entry> {
    let Some((real, e)) = asm.layers.resolve(Path::new(dir)) else {
        return Vec::new();
    };
    if e.kind != Kind::Dir {
        return Vec::new();
    }
    let mut dlibs: Vec<Dlib> = Vec::new();
    for (name, entry) in children(asm, &real) {
        if !is_dso(&name) || entry.kind == Kind::Dir {
            continue;
        }
        let Ok(at) = real.join(&name) else { continue };
        let is_symlink = matches!(entry.kind, Kind::Symlink { .. });
        let (file, file_entry) = if is_symlink {
            match asm.layers.resolve(at.as_path()) {
                Some((p, e)) => (p, e.clone()),
                None => continue,
            }
        } else {
            (at.clone(), entry.clone())
        };
        let Some(info) = elf_of(asm, &file, &file_entry) else {
            continue;
        };
        if info.ident.elf_type != goblin::elf::header::ET_DYN || !info.ident.compatible_with(ident)
        {
            continue;
        }
        let mut soname = info
            .soname
            .as_ref()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| name.clone());
        // ldconfig tests the link's own name (`basename` of the path it
        // listed, not of the target): a link stays one when it is named
        // by the soname, or is the soname's `.so` link for ld(1).
        let mut is_link = is_symlink;
        if is_link
            && name != soname
            && !(name.ends_with(".so") && soname.starts_with(name.as_str()))
        {
            is_link = false;
        }
        if is_link {
            soname = name.clone();
        }
        let flags = match arch {
            // i386's generic readelflib.c: libc6 only when it needs libc.
            Arch::I386
                if !info
                    .needed
                    .iter()
                    .any(|n| n == "libc.so.6" || n == "libm.so.6") =>
            {
                FLAG_ELF
            }
            _ => arch.cache_id(),
        };
        match dlibs.iter_mut().find(|d| d.soname == soname) {
            Some(d) => {
                if (!is_link && d.is_link)
                    || (is_link == d.is_link && libcmp(d.name.as_bytes(), name.as_bytes()).is_lt())
                {
                    d.name = name.clone();
                    d.is_link = is_link;
                }
            }
            None => dlibs.push(Dlib {
                name: name.clone(),
                soname,
                is_link,
                flags,
            }),
        }
    }
    dlibs
        .into_iter()
        .map(|d| {
            let file = if hwcaps.is_some() { &d.name } else { &d.soname };
            ldcache_write::Entry {
                path: PathBuf::from(dir).join(file).display().to_string(),
                key: d.soname,
                flags: d.flags,
                hwcaps: hwcaps.map(String::from),
            }
        })
        .collect()
}
