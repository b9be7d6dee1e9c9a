//! What glibc's loader compiles in for the architecture of the program
//! being resolved, as Debian builds it: the system search directories,
//! `$LIB`, `$PLATFORM`, the ld.so.cache id and the hwcaps subdirectories
//! tried below every search directory. The per-architecture values come
//! from the one table in [`crate::elf::arch`].

use std::path::{Path, PathBuf};

use crate::elf::{Arch, Ident};

use super::root::Root;

/// How the loader searches on one machine: what it compiles in for one
/// architecture. Not an image's platform (that is `oci::Platform`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoaderAbi {
    /// The architecture, `None` for a machine mkimage has no table for
    /// (its libraries are then found by the search paths alone).
    pub arch: Option<Arch>,
    /// Debian multiarch triplet, e.g. "x86_64-linux-gnu".
    pub triplet: &'static str,
    /// `$PLATFORM` (AT_PLATFORM), the loader's own word.
    pub platform: &'static str,
    /// `$LIB`.
    pub lib: String,
    pub system_dirs: Vec<PathBuf>,
    /// The flags a cache entry must have (`_DL_CACHE_DEFAULT_ID`).
    pub cache_flags: i32,
    /// Subdirectories tried before each search directory, in the loader's
    /// priority order: glibc-hwcaps levels, then the legacy hwcaps
    /// directories glibc 2.36 still searches.
    pub subdirs: Vec<String>,
}

impl LoaderAbi {
    /// The loader's ABI for a process whose main object is `ident`, running in
    /// `root`. A root with that architecture's multiarch directories gets
    /// Debian's layout (`/lib/<triplet>`, `/usr/lib/<triplet>`, `/lib`,
    /// `/usr/lib`: the slibdir/libdir Debian configures glibc with, then
    /// the defaults). Any other root, such as the cross sysroot
    /// /usr/aarch64-linux-gnu whose libraries sit in `lib/`, gets upstream
    /// glibc's (`/lib64`, `/usr/lib64` on 64-bit ports, `/lib`, `/usr/lib`
    /// otherwise), and `/lib`, `/usr/lib` after them, where the
    /// sysroot's own files are.
    pub fn detect(ident: &Ident, root: &mut Root) -> LoaderAbi {
        let arch = Arch::of(ident);
        let triplet = arch.map_or("unknown-linux-gnu", Arch::triplet);
        let multiarch = [format!("/lib/{triplet}"), format!("/usr/lib/{triplet}")]
            .iter()
            .any(|d| root.is_dir(Path::new(d)).unwrap_or(false));
        let dirs = |v: &[&str]| v.iter().map(PathBuf::from).collect::<Vec<_>>();
        let (lib, system_dirs) = if multiarch {
            (
                format!("lib/{triplet}"),
                vec![
                    PathBuf::from(format!("/lib/{triplet}")),
                    PathBuf::from(format!("/usr/lib/{triplet}")),
                    PathBuf::from("/lib"),
                    PathBuf::from("/usr/lib"),
                ],
            )
        } else if ident.is_64 {
            (
                "lib64".to_string(),
                dirs(&["/lib64", "/usr/lib64", "/lib", "/usr/lib"]),
            )
        } else {
            ("lib".to_string(), dirs(&["/lib", "/usr/lib"]))
        };
        let subdirs = match arch {
            Some(a) => a
                .hwcaps()
                .iter()
                .map(|h| format!("glibc-hwcaps/{h}"))
                .chain(a.legacy_subdirs().iter().map(|s| s.to_string()))
                .collect(),
            None => Vec::new(),
        };
        LoaderAbi {
            arch,
            triplet,
            platform: arch.map_or("unknown", Arch::at_platform),
            lib,
            system_dirs,
            cache_flags: arch.map_or(-1, Arch::cache_id),
            subdirs,
        }
    }

    /// A loader in a Nix or Guix store (`/nix/store/HASH-glibc-2.38/lib/
    /// ld-linux-x86-64.so.2`) belongs to a glibc configured with that store
    /// path as its prefix, so its compiled-in system directory, searched
    /// first (ld.so(8)), is the loader's own: where the libraries glibc
    /// opens by itself (libgcc_s.so.1, NSS modules) are found.
    pub fn add_store_loader_dir(&mut self, interp: &Path) {
        let in_store = interp.starts_with("/nix/store") || interp.starts_with("/gnu/store");
        if let Some(dir) = interp.parent().filter(|_| in_store)
            && !self.system_dirs.iter().any(|d| d == dir)
        {
            self.system_dirs.insert(0, dir.to_path_buf());
        }
    }

    /// Rank of a glibc-hwcaps subdirectory name; lower is preferred.
    pub fn hwcaps_rank(&self, name: &[u8]) -> usize {
        self.subdirs
            .iter()
            .position(|s| s.strip_prefix("glibc-hwcaps/").map(str::as_bytes) == Some(name))
            .unwrap_or(self.subdirs.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ident(machine: u16, is_64: bool, little_endian: bool, flags: u32) -> Ident {
        Ident {
            is_64,
            little_endian,
            machine,
            osabi: 0,
            abiversion: 0,
            elf_type: goblin::elf::header::ET_EXEC,
            flags,
        }
    }

    /// A Debian root of each architecture gets its triplet's directories,
    /// its cache id and glibc 2.36's hwcaps subdirectories; a cross
    /// sysroot (libraries in lib/) gets the upstream directories and lib/.
    #[test]
    fn each_architecture_searches_its_own_directories() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("usr/lib/powerpc64le-linux-gnu")).unwrap();
        let mut root = Root::new(d.path());
        let p = LoaderAbi::detect(&ident(21, true, true, 2), &mut root);
        assert_eq!(p.lib, "lib/powerpc64le-linux-gnu");
        assert_eq!(p.cache_flags, 0x0503);
        assert_eq!(
            p.subdirs,
            ["glibc-hwcaps/power10", "glibc-hwcaps/power9", "tls"]
        );
        assert_eq!(p.system_dirs[0], Path::new("/lib/powerpc64le-linux-gnu"));

        let p = LoaderAbi::detect(&ident(22, true, false, 0), &mut root);
        assert_eq!(p.triplet, "s390x-linux-gnu");
        assert_eq!(p.subdirs[0], "glibc-hwcaps/z16");
        assert_eq!(p.subdirs[3], "glibc-hwcaps/z13");
        assert_eq!(
            p.system_dirs,
            [
                Path::new("/lib64"),
                Path::new("/usr/lib64"),
                Path::new("/lib"),
                Path::new("/usr/lib")
            ]
        );

        let p = LoaderAbi::detect(&ident(40, false, true, 0x0500_0400), &mut root);
        assert_eq!(p.cache_flags, 0x0903);
        assert_eq!(p.subdirs, ["tls"]);
        assert_eq!(p.system_dirs, [Path::new("/lib"), Path::new("/usr/lib")]);
        let mut nix = p.clone();
        nix.add_store_loader_dir(Path::new("/nix/store/abc-glibc-2.38/lib/ld-linux.so.2"));
        assert_eq!(
            nix.system_dirs[0],
            Path::new("/nix/store/abc-glibc-2.38/lib")
        );
        assert_eq!(nix.system_dirs.len(), 3);
        let mut debian = p.clone();
        debian.add_store_loader_dir(Path::new("/lib/ld-linux.so.2"));
        assert_eq!(debian, p);
    }
}
