//! The one table of architectures: what an ELF header's machine, class,
//! byte order and ARM float ABI flags mean, both to glibc's loader (Debian's
//! multiarch triplet, `$PLATFORM`, the ld.so.cache id, the glibc-hwcaps
//! subdirectories) and to OCI (the `architecture`/`variant` pair). The
//! resolver and the image config both read it from here.
//!
//! Loader values are glibc 2.36's (Debian 12): `_DL_CACHE_DEFAULT_ID` in
//! sysdeps/unix/sysv/linux/*/dl-cache.h with the FLAG_* bits of
//! sysdeps/generic/ldconfig.h, and `_dl_hwcaps_subdirs` in
//! sysdeps/*/dl-hwcaps-subdirs.c. OCI names are Go's GOARCH values, which
//! the image spec (config.md) asks for, with the variants of its
//! platform-variants table (image-index.md).

use goblin::elf::header::{
    EM_386, EM_AARCH64, EM_ARM, EM_LOONGARCH, EM_PPC64, EM_RISCV, EM_S390, EM_X86_64,
};

use super::Ident;

/// `e_flags` bits of ARM EABI version 5 (ARM's "ELF for the Arm
/// Architecture", §5.2): which float ABI the object was built for.
const EF_ARM_ABI_FLOAT_SOFT: u32 = 0x200;
const EF_ARM_ABI_FLOAT_HARD: u32 = 0x400;

/// ldconfig.h FLAG_ELF_LIBC6: the entry type of every glibc library.
const FLAG_ELF_LIBC6: i32 = 0x0003;
/// ldconfig.h's per-architecture FLAG_*: the required bits of a cache
/// entry's flags.
const FLAG_X8664_LIB64: i32 = 0x0300;
const FLAG_S390_LIB64: i32 = 0x0400;
const FLAG_POWERPC_LIB64: i32 = 0x0500;
const FLAG_ARM_LIBHF: i32 = 0x0900;
const FLAG_AARCH64_LIB64: i32 = 0x0a00;
const FLAG_ARM_LIBSF: i32 = 0x0b00;
const FLAG_RISCV_FLOAT_ABI_DOUBLE: i32 = 0x1000;
const FLAG_LARCH_FLOAT_ABI_DOUBLE: i32 = 0x1200;

/// An architecture mkimage builds images for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Arch {
    Amd64,
    I386,
    Arm64,
    /// 32-bit ARM, hard-float EABI (Debian armhf).
    ArmHf,
    /// 32-bit ARM, soft-float EABI (Debian armel).
    ArmEl,
    Ppc64le,
    S390x,
    Riscv64,
    Loong64,
}

/// Every architecture, for tables and messages.
/// The OCI `os` of every architecture here: the loader whose rules the
/// resolver follows is Linux's.
pub const OCI_OS: &str = "linux";

pub const ALL: [Arch; 9] = [
    Arch::Amd64,
    Arch::I386,
    Arch::Arm64,
    Arch::ArmHf,
    Arch::ArmEl,
    Arch::Ppc64le,
    Arch::S390x,
    Arch::Riscv64,
    Arch::Loong64,
];

impl Arch {
    /// The architecture of an ELF object, or `None` when no Linux platform
    /// mkimage knows runs it (x32, big-endian aarch64, ppc64 big-endian,
    /// riscv32, 31-bit s390, big-endian ARM, MIPS...).
    ///
    /// Class and byte order are checked as well as `e_machine`; 64-bit
    /// s390 keeps EM_S390 and only the class differs.
    pub fn of(ident: &Ident) -> Option<Arch> {
        let arch = match (ident.machine, ident.is_64, ident.little_endian) {
            (EM_X86_64, true, true) => Arch::Amd64,
            (EM_386, false, true) => Arch::I386,
            (EM_AARCH64, true, true) => Arch::Arm64,
            // GCC for armel sets the soft-float flag, armhf the hard one;
            // objects with neither (hand-written, old EABI) are taken as
            // soft-float, as glibc's VALID_FLOAT_ABI on armel accepts them.
            (EM_ARM, false, true) if ident.flags & EF_ARM_ABI_FLOAT_HARD != 0 => Arch::ArmHf,
            (EM_ARM, false, true) => Arch::ArmEl,
            (EM_PPC64, true, true) => Arch::Ppc64le,
            (EM_S390, true, false) => Arch::S390x,
            (EM_RISCV, true, true) => Arch::Riscv64,
            (EM_LOONGARCH, true, true) => Arch::Loong64,
            _ => return None,
        };
        Some(arch)
    }

    /// The architecture mkimage itself was built for, the default of an
    /// image without programs.
    pub fn host() -> Option<Arch> {
        let arch = match std::env::consts::ARCH {
            "x86_64" => Arch::Amd64,
            "x86" => Arch::I386,
            "aarch64" => Arch::Arm64,
            "arm" if cfg!(target_abi = "eabihf") => Arch::ArmHf,
            "arm" => Arch::ArmEl,
            "powerpc64" if cfg!(target_endian = "little") => Arch::Ppc64le,
            "s390x" => Arch::S390x,
            "riscv64" => Arch::Riscv64,
            "loongarch64" => Arch::Loong64,
            _ => return None,
        };
        Some(arch)
    }

    /// The OCI `architecture` (GOARCH) and `variant`: the one mapping
    /// from an ELF machine to an image platform (its `os` is [`OCI_OS`]).
    pub fn oci(self) -> (&'static str, Option<&'static str>) {
        match self {
            Arch::Amd64 => ("amd64", None),
            Arch::I386 => ("386", None),
            // The spec lists arm64/v8; registries' arm64 images commonly
            // carry it, and runtimes treat it as arm64's default.
            Arch::Arm64 => ("arm64", Some("v8")),
            // Debian's armhf targets ARMv7, armel ARMv5TE (the ELF header
            // cannot say more; that needs .ARM.attributes).
            Arch::ArmHf => ("arm", Some("v7")),
            Arch::ArmEl => ("arm", Some("v5")),
            Arch::Ppc64le => ("ppc64le", None),
            Arch::S390x => ("s390x", None),
            Arch::Riscv64 => ("riscv64", None),
            Arch::Loong64 => ("loong64", None),
        }
    }

    /// `os/architecture[/variant]` as `--platform` and `docker` spell it.
    pub fn platform_string(self) -> String {
        match self.oci() {
            (a, Some(v)) => format!("linux/{a}/{v}"),
            (a, None) => format!("linux/{a}"),
        }
    }

    /// Parses `linux/ARCH[/VARIANT]` (or `ARCH[/VARIANT]`). A missing
    /// variant means the architecture's default (`arm` alone is `arm/v7`,
    /// as containerd's platform normalisation has it); `arm64/v8` and
    /// `arm64` are the same.
    pub fn from_platform(s: &str) -> Option<Arch> {
        let rest = s.strip_prefix("linux/").unwrap_or(s);
        let (arch, variant) = match rest.split_once('/') {
            Some((a, v)) => (a, Some(v)),
            None => (rest, None),
        };
        let found = match (arch, variant) {
            ("arm", None) => Arch::ArmHf,
            ("arm64", None) => Arch::Arm64,
            (a, v) => *ALL.iter().find(|x| x.oci() == (a, v))?,
        };
        Some(found)
    }

    /// Debian's multiarch triplet: the directory below /lib and /usr/lib
    /// and the name of the cross sysroot `/usr/<triplet>`.
    pub fn triplet(self) -> &'static str {
        match self {
            Arch::Amd64 => "x86_64-linux-gnu",
            Arch::I386 => "i386-linux-gnu",
            Arch::Arm64 => "aarch64-linux-gnu",
            Arch::ArmHf => "arm-linux-gnueabihf",
            Arch::ArmEl => "arm-linux-gnueabi",
            Arch::Ppc64le => "powerpc64le-linux-gnu",
            Arch::S390x => "s390x-linux-gnu",
            Arch::Riscv64 => "riscv64-linux-gnu",
            Arch::Loong64 => "loongarch64-linux-gnu",
        }
    }

    /// Rust's target triple for the architecture's GNU libc target, the
    /// directory cargo builds into (`target/<triple>/release`).
    pub fn rust_triple(self) -> &'static str {
        match self {
            Arch::Amd64 => "x86_64-unknown-linux-gnu",
            Arch::I386 => "i686-unknown-linux-gnu",
            Arch::Arm64 => "aarch64-unknown-linux-gnu",
            Arch::ArmHf => "armv7-unknown-linux-gnueabihf",
            Arch::ArmEl => "armv5te-unknown-linux-gnueabi",
            Arch::Ppc64le => "powerpc64le-unknown-linux-gnu",
            Arch::S390x => "s390x-unknown-linux-gnu",
            Arch::Riscv64 => "riscv64gc-unknown-linux-gnu",
            Arch::Loong64 => "loongarch64-unknown-linux-gnu",
        }
    }

    /// The value of `$PLATFORM` (AT_PLATFORM) on a typical CPU. The kernel
    /// sets it per machine; it only matters to paths that use the token.
    pub fn at_platform(self) -> &'static str {
        match self {
            Arch::Amd64 => "x86_64",
            Arch::I386 => "i686",
            Arch::Arm64 => "aarch64",
            Arch::ArmHf | Arch::ArmEl => "v7l",
            Arch::Ppc64le => "power8",
            Arch::S390x => "z13",
            Arch::Riscv64 => "riscv64",
            Arch::Loong64 => "loongarch64",
        }
    }

    /// `_DL_CACHE_DEFAULT_ID`: the flags an ld.so.cache entry must have
    /// exactly for this architecture's loader to use it.
    pub fn cache_id(self) -> i32 {
        FLAG_ELF_LIBC6
            | match self {
                // i386 has no dl-cache.h of its own: the generic id.
                Arch::I386 => 0,
                Arch::Amd64 => FLAG_X8664_LIB64,
                Arch::Arm64 => FLAG_AARCH64_LIB64,
                Arch::ArmHf => FLAG_ARM_LIBHF,
                Arch::ArmEl => FLAG_ARM_LIBSF,
                Arch::Ppc64le => FLAG_POWERPC_LIB64,
                Arch::S390x => FLAG_S390_LIB64,
                Arch::Riscv64 => FLAG_RISCV_FLOAT_ABI_DOUBLE,
                Arch::Loong64 => FLAG_LARCH_FLOAT_ABI_DOUBLE,
            }
    }

    /// `_dl_hwcaps_subdirs`: the glibc-hwcaps subdirectory names, most
    /// capable first (the loader's priority order). aarch64, ARM, i386,
    /// RISC-V and LoongArch define none in 2.36.
    pub fn hwcaps(self) -> &'static [&'static str] {
        match self {
            Arch::Amd64 => &["x86-64-v4", "x86-64-v3", "x86-64-v2"],
            Arch::Ppc64le => &["power10", "power9"],
            Arch::S390x => &["z16", "z15", "z14", "z13"],
            _ => &[],
        }
    }

    /// The legacy hwcaps subdirectories glibc 2.36 still searches after the
    /// glibc-hwcaps ones (removed in 2.37): `tls` everywhere, and on x86-64
    /// the `x86_64` platform directories.
    pub fn legacy_subdirs(self) -> &'static [&'static str] {
        match self {
            Arch::Amd64 => &[
                "tls/x86_64/x86_64",
                "tls/x86_64",
                "tls",
                "x86_64/x86_64",
                "x86_64",
            ],
            _ => &["tls"],
        }
    }

    /// Whether a library with ARM float ABI `flags` loads into this
    /// process (glibc's VALID_FLOAT_ABI, sysdeps/unix/sysv/linux/arm/
    /// ldsodefs.h): a hard-float loader passes over soft-float objects and
    /// the reverse. Other architectures have no such check.
    pub fn accepts_flags(self, flags: u32) -> bool {
        match self {
            Arch::ArmHf => flags & EF_ARM_ABI_FLOAT_SOFT == 0,
            Arch::ArmEl => flags & EF_ARM_ABI_FLOAT_HARD == 0,
            _ => true,
        }
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.platform_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(machine: u16, is_64: bool, little_endian: bool, flags: u32) -> Ident {
        Ident {
            is_64,
            little_endian,
            machine,
            osabi: 0,
            abiversion: 0,
            elf_type: goblin::elf::header::ET_DYN,
            flags,
        }
    }

    #[test]
    fn every_arch_has_a_goarch_name() {
        let got: Vec<(&str, Option<&str>)> = ALL.iter().map(|a| a.oci()).collect();
        assert_eq!(
            got,
            [
                ("amd64", None),
                ("386", None),
                ("arm64", Some("v8")),
                ("arm", Some("v7")),
                ("arm", Some("v5")),
                ("ppc64le", None),
                ("s390x", None),
                ("riscv64", None),
                ("loong64", None),
            ]
        );
    }

    #[test]
    fn elf_headers_map_to_platforms() {
        let cases = [
            (id(62, true, true, 0), "linux/amd64", "x86_64-linux-gnu"),
            (
                id(183, true, true, 0),
                "linux/arm64/v8",
                "aarch64-linux-gnu",
            ),
            (id(3, false, true, 0), "linux/386", "i386-linux-gnu"),
            // What arm-linux-gnueabihf-gcc and arm-linux-gnueabi-gcc write.
            (
                id(40, false, true, 0x0500_0400),
                "linux/arm/v7",
                "arm-linux-gnueabihf",
            ),
            (
                id(40, false, true, 0x0500_0200),
                "linux/arm/v5",
                "arm-linux-gnueabi",
            ),
            (id(243, true, true, 5), "linux/riscv64", "riscv64-linux-gnu"),
            (
                id(21, true, true, 2),
                "linux/ppc64le",
                "powerpc64le-linux-gnu",
            ),
            (id(22, true, false, 0), "linux/s390x", "s390x-linux-gnu"),
            (
                id(258, true, true, 0),
                "linux/loong64",
                "loongarch64-linux-gnu",
            ),
        ];
        for (ident, platform, triplet) in cases {
            let arch = Arch::of(&ident).expect("supported");
            assert_eq!(arch.platform_string(), platform, "{ident:?}");
            assert_eq!(arch.triplet(), triplet, "{ident:?}");
            assert_eq!(Arch::from_platform(platform), Some(arch), "{platform}");
        }
    }

    #[test]
    fn unsupported_headers_have_no_arch() {
        let cases = [
            id(62, false, true, 0),  // x32
            id(183, true, false, 0), // big-endian aarch64
            id(183, false, true, 0), // ILP32 aarch64
            id(243, false, true, 0), // riscv32
            id(21, true, false, 0),  // big-endian ppc64 (no Debian port)
            id(22, false, false, 0), // 31-bit s390
            id(40, false, false, 0), // big-endian arm
            id(8, false, false, 0),  // EM_MIPS
            id(0, true, true, 0),    // EM_NONE
        ];
        for ident in cases {
            assert_eq!(Arch::of(&ident), None, "{ident:?}");
        }
    }

    #[test]
    fn platform_strings() {
        let cases = [
            ("linux/arm64", Some(Arch::Arm64)),
            ("arm64/v8", Some(Arch::Arm64)),
            ("linux/arm", Some(Arch::ArmHf)),
            ("linux/arm/v5", Some(Arch::ArmEl)),
            ("amd64", Some(Arch::Amd64)),
            ("linux/s390x", Some(Arch::S390x)),
            ("linux/amd64/v3", None),
            ("linux/arm/v6", None),
            ("windows/amd64", None),
            ("", None),
        ];
        for (s, want) in cases {
            assert_eq!(Arch::from_platform(s), want, "{s:?}");
        }
    }

    /// The values of `ldconfig -p`'s flags column as glibc 2.36 writes
    /// them, e.g. 0x0903 is "libc6,hard-float".
    #[test]
    fn cache_ids_are_glibcs() {
        let cases = [
            (Arch::Amd64, 0x0303),
            (Arch::I386, 0x0003),
            (Arch::Arm64, 0x0a03),
            (Arch::ArmHf, 0x0903),
            (Arch::ArmEl, 0x0b03),
            (Arch::Ppc64le, 0x0503),
            (Arch::S390x, 0x0403),
            (Arch::Riscv64, 0x1003),
            (Arch::Loong64, 0x1203),
        ];
        for (arch, want) in cases {
            assert_eq!(arch.cache_id(), want, "{arch}");
        }
    }

    #[test]
    fn arm_float_abi_is_checked_like_glibc() {
        assert!(Arch::ArmHf.accepts_flags(0x0500_0400));
        assert!(!Arch::ArmHf.accepts_flags(0x0500_0200));
        assert!(!Arch::ArmEl.accepts_flags(0x0500_0400));
        assert!(Arch::Arm64.accepts_flags(0x0500_0200));
    }
}
