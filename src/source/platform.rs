//! What the reader adds to [`Platform`] (the OCI platform, `oci`'s): the
//! ELF machine's platform, from the resolver's one table (`elf::arch`,
//! `Arch::oci`), which the image writer and `docker pull`'s default both
//! use, and the parse of a `--platform` as a source error.

use super::SourceError;
use crate::elf::Arch;
use crate::oci::Platform;

/// `OS/ARCH[/VARIANT]`, or `ARCH[/VARIANT]` for linux.
pub fn parse(s: &str) -> Result<Platform, SourceError> {
    Platform::parse(s).map_err(|reason| SourceError::BadSource {
        input: s.to_owned(),
        reason,
    })
}

/// The machine mkimage runs on: what `docker pull` picks from an index
/// when not told otherwise.
pub fn host() -> Option<Platform> {
    Arch::host().map(of_arch)
}

/// The platform of programs for `arch`.
pub fn of_arch(arch: Arch) -> Platform {
    let (architecture, variant) = arch.oci();
    Platform {
        os: crate::elf::arch::OCI_OS.into(),
        architecture: architecture.into(),
        variant: variant.map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arm64_programs_are_for_arm64_v8() {
        assert_eq!(of_arch(Arch::Arm64).to_string(), "linux/arm64/v8");
    }
}
