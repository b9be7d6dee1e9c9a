//! The image's platform, derived from its main executable's ELF header: the
//! `architecture` and `variant` the config and index advertise.
//!
//! Values are Go's GOARCH names, which the image spec (config.md) tells
//! configs to use; variants follow the spec's platform-variants table
//! (image-index.md).

/// ELF header fields that decide the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElfMachine {
    /// `e_machine`.
    pub e_machine: u16,
    /// `e_ident[EI_CLASS] == ELFCLASS64`.
    pub class64: bool,
    /// `e_ident[EI_DATA] == ELFDATA2LSB`.
    pub little_endian: bool,
}

/// An OCI platform's CPU part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Platform {
    pub architecture: &'static str,
    pub variant: Option<&'static str>,
}

// e_machine values from elf(5) / the System V gABI registry.
use goblin::elf::header::{
    EM_386, EM_AARCH64, EM_ARM, EM_LOONGARCH, EM_PPC64, EM_RISCV, EM_S390, EM_X86_64,
};

impl ElfMachine {
    /// The `EM_*` name, for messages.
    pub fn name(&self) -> &'static str {
        match self.e_machine {
            EM_386 => "EM_386",
            EM_PPC64 => "EM_PPC64",
            EM_S390 => "EM_S390",
            EM_ARM => "EM_ARM",
            EM_X86_64 => "EM_X86_64",
            EM_AARCH64 => "EM_AARCH64",
            EM_RISCV => "EM_RISCV",
            EM_LOONGARCH => "EM_LOONGARCH",
            _ => "(unknown)",
        }
    }
}

/// Maps an ELF machine to the OCI platform that runs it.
///
/// Class and byte order are checked as well as `e_machine`: an x32 or
/// big-endian aarch64 binary has a known `e_machine` but no platform that
/// container runtimes schedule.
pub fn platform_from_elf(machine: ElfMachine) -> Result<Platform, super::OciError> {
    let p = |architecture, variant| {
        Ok(Platform {
            architecture,
            variant,
        })
    };
    let ElfMachine {
        e_machine,
        class64,
        little_endian: le,
    } = machine;
    match (e_machine, class64, le) {
        (EM_X86_64, true, true) => p("amd64", None),
        // The spec lists arm64/v8 as a variant; registries' arm64 images
        // commonly carry it, and runtimes treat it as arm64's default.
        (EM_AARCH64, true, true) => p("arm64", Some("v8")),
        (EM_386, false, true) => p("386", None),
        // The ELF header cannot tell v5/v6/v7 apart (that needs the
        // .ARM.attributes section); v7 is what Debian's armhf and most
        // distributions' 32-bit ARM ports target.
        (EM_ARM, false, true) => p("arm", Some("v7")),
        (EM_RISCV, true, true) => p("riscv64", None),
        (EM_PPC64, true, true) => p("ppc64le", None),
        (EM_PPC64, true, false) => p("ppc64", None),
        // 64-bit s390 binaries still use EM_S390; only the class differs.
        (EM_S390, true, false) => p("s390x", None),
        (EM_LOONGARCH, true, true) => p("loong64", None),
        _ => Err(super::OciError::UnsupportedMachine { machine }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(e_machine: u16, class64: bool, little_endian: bool) -> ElfMachine {
        ElfMachine {
            e_machine,
            class64,
            little_endian,
        }
    }

    #[test]
    fn known_machines() {
        let cases = [
            (m(62, true, true), "amd64", None),
            (m(183, true, true), "arm64", Some("v8")),
            (m(3, false, true), "386", None),
            (m(40, false, true), "arm", Some("v7")),
            (m(243, true, true), "riscv64", None),
            (m(21, true, true), "ppc64le", None),
            (m(21, true, false), "ppc64", None),
            (m(22, true, false), "s390x", None),
            (m(258, true, true), "loong64", None),
        ];
        for (machine, architecture, variant) in cases {
            assert_eq!(
                platform_from_elf(machine).expect("supported"),
                Platform {
                    architecture,
                    variant
                },
                "{machine:?}"
            );
        }
    }

    #[test]
    fn unsupported_combinations() {
        let cases = [
            m(62, false, true),  // x32
            m(183, true, false), // big-endian aarch64
            m(183, false, true), // ILP32 aarch64
            m(243, false, true), // riscv32
            m(22, false, false), // 31-bit s390
            m(40, false, false), // big-endian arm
            m(8, false, false),  // EM_MIPS
            m(0, true, true),    // EM_NONE
        ];
        for machine in cases {
            let err = platform_from_elf(machine).expect_err("unsupported");
            assert!(
                matches!(err, crate::oci::OciError::UnsupportedMachine { machine: got } if got == machine),
                "{machine:?}"
            );
        }
        assert_eq!(
            platform_from_elf(m(62, false, true))
                .expect_err("x32")
                .to_string(),
            "unsupported ELF machine EM_X86_64 (e_machine 62, 32-bit, little-endian)"
        );
    }
}
