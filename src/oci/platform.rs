//! The image's platform as its config and index advertise it. The names
//! are plain strings here: which ELF machine gets which is the resolver's
//! one table (`elf::arch`, `Arch::oci`), which `pipeline` copies in, so that
//! the image writer never sees ELF.

/// An OCI platform: `os`, `architecture` (GOARCH) and `variant`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Platform {
    pub os: &'static str,
    pub architecture: &'static str,
    pub variant: Option<&'static str>,
}
