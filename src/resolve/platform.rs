//! What glibc's loader compiles in per architecture and distribution: the
//! system search directories, `$LIB`, `$PLATFORM`, the ld.so.cache flags
//! and the hwcaps subdirectories tried below every search directory.
//! Values are those printed by `ld.so --help` and seen with LD_DEBUG=libs
//! on Debian 12 (glibc 2.36).

use std::path::PathBuf;

use goblin::elf::header::{
    EM_386, EM_AARCH64, EM_ARM, EM_LOONGARCH, EM_PPC64, EM_RISCV, EM_S390, EM_X86_64,
};

use crate::elf::Ident;

use super::root::Root;

/// ld.so.cache `flags` required bits (ldconfig.h FLAG_*_LIB64 etc.).
const CACHE_X8664_LIB64: i32 = 0x0300;
const CACHE_AARCH64_LIB64: i32 = 0x0a00;
const CACHE_POWERPC_LIB64: i32 = 0x0500;
const CACHE_S390_LIB64: i32 = 0x0400;
const CACHE_RISCV_FLOAT_ABI_DOUBLE: i32 = 0x1000;
const CACHE_LARCH_FLOAT_ABI_DOUBLE: i32 = 0x1200;

/// Subdirectories tried before each search directory on x86-64, in the
/// loader's priority order: glibc-hwcaps levels, then the legacy hwcaps
/// directories glibc 2.36 still searches.
const X86_64_SUBDIRS: &[&str] = &[
    "glibc-hwcaps/x86-64-v4",
    "glibc-hwcaps/x86-64-v3",
    "glibc-hwcaps/x86-64-v2",
    "tls/x86_64/x86_64",
    "tls/x86_64",
    "tls",
    "x86_64/x86_64",
    "x86_64",
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    /// Debian multiarch triplet, e.g. "x86_64-linux-gnu".
    pub triplet: &'static str,
    /// `$PLATFORM` (AT_PLATFORM).
    pub platform: &'static str,
    /// `$LIB`.
    pub lib: String,
    pub system_dirs: Vec<PathBuf>,
    /// The cache `flags` required bits for this architecture.
    pub cache_flags: i32,
    pub subdirs: &'static [&'static str],
}

impl Platform {
    /// The platform of a process whose main object is `ident`, running in
    /// `root`. A root with multiarch directories gets Debian's layout;
    /// anything else gets upstream glibc's (`/lib64`, `/usr/lib64`).
    pub fn detect(ident: &Ident, root: &mut Root) -> Platform {
        let (triplet, platform, cache_flags, subdirs): (_, _, _, &'static [&'static str]) =
            match (ident.machine, ident.is_64) {
                (EM_X86_64, true) => (
                    "x86_64-linux-gnu",
                    "x86_64",
                    CACHE_X8664_LIB64,
                    X86_64_SUBDIRS,
                ),
                (EM_AARCH64, true) => (
                    "aarch64-linux-gnu",
                    "aarch64",
                    CACHE_AARCH64_LIB64,
                    &["tls"],
                ),
                (EM_386, false) => ("i386-linux-gnu", "i686", 0, &["tls"]),
                (EM_ARM, false) => ("arm-linux-gnueabihf", "v7l", 0, &["tls"]),
                (EM_PPC64, true) => (
                    "powerpc64le-linux-gnu",
                    "power8",
                    CACHE_POWERPC_LIB64,
                    &["tls"],
                ),
                (EM_S390, true) => ("s390x-linux-gnu", "z13", CACHE_S390_LIB64, &["tls"]),
                (EM_RISCV, true) => (
                    "riscv64-linux-gnu",
                    "riscv64",
                    CACHE_RISCV_FLOAT_ABI_DOUBLE,
                    &["tls"],
                ),
                (EM_LOONGARCH, true) => (
                    "loongarch64-linux-gnu",
                    "loongarch64",
                    CACHE_LARCH_FLOAT_ABI_DOUBLE,
                    &["tls"],
                ),
                _ => ("unknown-linux-gnu", "unknown", 0, &[]),
            };
        let multiarch = [format!("/lib/{triplet}"), format!("/usr/lib/{triplet}")]
            .iter()
            .any(|d| root.is_dir(std::path::Path::new(d)).unwrap_or(false));
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
                vec![PathBuf::from("/lib64"), PathBuf::from("/usr/lib64")],
            )
        } else {
            (
                "lib".to_string(),
                vec![PathBuf::from("/lib"), PathBuf::from("/usr/lib")],
            )
        };
        Platform {
            triplet,
            platform,
            lib,
            system_dirs,
            cache_flags,
            subdirs,
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
