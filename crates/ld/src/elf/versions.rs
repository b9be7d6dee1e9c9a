//! Reads what `symver.rs` parses: the symbol versions a file needs from
//! each library and the ones it defines, through positioned reads of
//! DT_VERNEED, DT_VERDEF and DT_STRTAB (a few kilobytes), located as the
//! loader locates them: through the dynamic section, not section headers.

use std::collections::BTreeSet;
use std::path::Path;

use super::parse::{self, ParseError};
use super::read::{ElfError, Loaded, ReadAt, load, open_sized, within};
use super::symver::{self, VersionNeed};

/// Largest dynamic string table read (libc's is ~25 KiB).
const MAX_STRTAB: u64 = 16 << 20;
/// Most bytes of a version table read: far more than any real one (a
/// Verneed is 16 bytes plus 16 per version).
const MAX_TABLE: u64 = 256 << 10;

/// A file's symbol versioning.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Versions {
    /// What it needs, per library (DT_VERNEED), in file order.
    pub needs: Vec<VersionNeed>,
    /// What it defines (DT_VERDEF); `None` when it has no DT_VERDEF (the
    /// loader then checks nothing against it: dl-version.c only warns
    /// "no version information available").
    pub defines: Option<BTreeSet<Vec<u8>>>,
}

/// The versions of the ELF file at `path` (a host path). A file without
/// a dynamic section or version tables has none.
pub fn read_versions(path: &Path) -> Result<Versions, ElfError> {
    let (file, len) = open_sized(path)?;
    read_from(&file, len, path)
}

/// [`read_versions`] of a file in memory (for the fuzz targets).
pub fn read_versions_bytes(bytes: &[u8], path: &Path) -> Result<Versions, ElfError> {
    read_from(bytes, bytes.len() as u64, path)
}

fn read_from(
    file: &(impl ReadAt + ?Sized),
    file_len: u64,
    path: &Path,
) -> Result<Versions, ElfError> {
    let bad = |what: String| ElfError::Malformed {
        path: path.to_path_buf(),
        source: ParseError::Malformed(what),
    };
    let Loaded {
        header,
        phdrs,
        dynamic,
        ..
    } = load(file, path)?;
    let Some(raw) = dynamic else {
        return Ok(Versions::default());
    };
    if raw.verneed_vaddr.is_none() && raw.verdef_vaddr.is_none() {
        return Ok(Versions::default());
    }
    let offset = |vaddr: u64, what: &str| {
        parse::vaddr_to_offset(&phdrs, vaddr)
            .ok_or_else(|| bad(format!("{what} outside any PT_LOAD")))
    };
    let strtab_vaddr = raw
        .strtab_vaddr
        .ok_or_else(|| bad("version tables without DT_STRTAB".into()))?;
    if raw.strsz > MAX_STRTAB {
        return Err(bad(format!("DT_STRSZ of {} bytes", raw.strsz)));
    }
    let strtab_off = offset(strtab_vaddr, "DT_STRTAB")?;
    let strtab = within(file, file_len, strtab_off, raw.strsz)
        .ok_or_else(|| bad("DT_STRTAB past end of file".into()))?;
    // The tables have no size in the dynamic section: read up to
    // MAX_TABLE (or the file's end) and let the parser bound each entry.
    let table = |vaddr: u64, what: &str| -> Result<Vec<u8>, ElfError> {
        let off = offset(vaddr, what)?;
        let len = file_len.saturating_sub(off).min(MAX_TABLE);
        within(file, file_len, off, len).ok_or_else(|| bad(format!("{what} past end of file")))
    };
    let ident = header.ident;
    let malformed = |source| ElfError::Malformed {
        path: path.to_path_buf(),
        source,
    };
    let mut out = Versions::default();
    if let Some(vaddr) = raw.verneed_vaddr {
        let bytes = table(vaddr, "DT_VERNEED")?;
        out.needs =
            symver::parse_verneed(&bytes, raw.verneednum, &strtab, &ident).map_err(malformed)?;
    }
    if let Some(vaddr) = raw.verdef_vaddr {
        let bytes = table(vaddr, "DT_VERDEF")?;
        let defs =
            symver::parse_verdef(&bytes, raw.verdefnum, &strtab, &ident).map_err(malformed)?;
        out.defines = Some(defs.into_iter().collect());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The host's libc and a program linked against it: Debian 12's libc
    /// defines GLIBC_2.2.5 through GLIBC_2.36; every program needs some.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn host_libc_and_program() {
        let libc = Path::new("/lib/x86_64-linux-gnu/libc.so.6");
        let prog = Path::new("/usr/bin/env");
        let defs = read_versions(libc)
            .expect("libc")
            .defines
            .expect("libc has DT_VERDEF");
        for v in ["GLIBC_2.2.5", "GLIBC_2.17", "GLIBC_2.34", "GLIBC_PRIVATE"] {
            assert!(defs.contains(v.as_bytes()), "{v}: {defs:?}");
        }
        assert!(
            !defs.contains(b"libc.so.6".as_slice()),
            "the base entry is left out"
        );
        let needs = read_versions(prog).expect("env").needs;
        let from_libc = needs
            .iter()
            .find(|n| n.file == b"libc.so.6")
            .expect("env needs libc versions");
        assert!(from_libc.versions.iter().any(|v| v.name == b"GLIBC_2.2.5"));
    }

    #[test]
    fn no_tables_no_versions() {
        let bytes = crate::elf::synth::SynthElf::x86_64()
            .needed("libc.so.6")
            .build();
        assert_eq!(
            read_versions_bytes(&bytes, Path::new("synth")).expect("synth"),
            Versions::default()
        );
    }
}
