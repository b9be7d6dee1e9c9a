//! The image's platform as its config and index advertise it: the
//! `architecture` and `variant` of the image's one architecture, whose
//! names come from the table in [`crate::elf::arch`].

use crate::elf::Arch;

/// An OCI platform's CPU part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Platform {
    pub architecture: &'static str,
    pub variant: Option<&'static str>,
}

impl From<Arch> for Platform {
    fn from(arch: Arch) -> Platform {
        let (architecture, variant) = arch.oci();
        Platform {
            architecture,
            variant,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_arch_has_a_goarch_name() {
        let got: Vec<(&str, Option<&str>)> = crate::elf::arch::ALL
            .iter()
            .map(|a| {
                let p = Platform::from(*a);
                (p.architecture, p.variant)
            })
            .collect();
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
}
