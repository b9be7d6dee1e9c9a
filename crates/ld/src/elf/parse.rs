//! Pure ELF parsing: bytes in, data out. Reading the bytes from a file is
//! `read.rs`'s job; this file never touches the filesystem.
//!
//! Only what the dynamic loader looks at is parsed: the ELF header, the
//! program headers, and the dynamic segment. goblin does the decoding.

use goblin::container::{Container, Ctx};
use goblin::elf::dynamic::{self, Dyn};
use goblin::elf::header::{self, Header};
use goblin::elf::program_header::{self, ProgramHeader};
use scroll::Pread;

/// Size of `e_ident` plus the largest ELF header (ELF64).
pub const MAX_EHDR_SIZE: usize = header::header64::SIZEOF_EHDR;

/// Refuse absurd program header counts before allocating for them.
const MAX_PHNUM: usize = 4096;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("not an ELF file (bad magic)")]
    NotElf,
    #[error("truncated or corrupt ELF: {0}")]
    Malformed(String),
}

fn malformed(e: impl std::fmt::Display) -> ParseError {
    ParseError::Malformed(e.to_string())
}

/// The identity fields the loader compares before accepting a library
/// (open_verify in glibc's dl-load.c).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ident {
    pub is_64: bool,
    pub little_endian: bool,
    pub machine: u16,
    pub osabi: u8,
    pub abiversion: u8,
    pub elf_type: u16,
    /// `e_flags`: processor-specific; ARM's float ABI is here.
    pub flags: u32,
}

impl Ident {
    pub fn ctx(&self) -> Ctx {
        Ctx::new(
            if self.is_64 {
                Container::Big
            } else {
                Container::Little
            },
            if self.little_endian {
                scroll::Endian::Little
            } else {
                scroll::Endian::Big
            },
        )
    }

    /// Whether a library with this identity can be loaded into a process
    /// whose main object is `other`: same class, byte order and machine.
    pub fn compatible_with(&self, other: &Ident) -> bool {
        self.is_64 == other.is_64
            && self.little_endian == other.little_endian
            && self.machine == other.machine
            && super::Arch::of(other).is_none_or(|a| a.accepts_flags(self.flags))
    }

    /// The architecture, when mkimage knows it (see [`super::Arch::of`]).
    pub fn arch(&self) -> Option<super::Arch> {
        super::Arch::of(self)
    }

    /// A short human name such as "X86_64 (64-bit LSB, linux/amd64)".
    pub fn describe(&self) -> String {
        let platform = self.arch().map(|a| format!(", {a}")).unwrap_or_default();
        format!(
            "{} ({}-bit {}{platform})",
            header::machine_to_str(self.machine),
            if self.is_64 { 64 } else { 32 },
            if self.little_endian { "LSB" } else { "MSB" }
        )
    }
}

/// The parsed ELF header: identity plus where the program headers are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderInfo {
    pub ident: Ident,
    pub phoff: u64,
    pub phentsize: u16,
    pub phnum: u16,
    /// The section header table (for notes a linker left out of PT_NOTE).
    pub shoff: u64,
    pub shentsize: u16,
    pub shnum: u16,
}

impl HeaderInfo {
    pub fn program_headers_size(&self) -> usize {
        self.phentsize as usize * self.phnum as usize
    }
}

/// Parses the ELF header from the first bytes of a file (at most
/// [`MAX_EHDR_SIZE`] are needed).
pub fn parse_header(bytes: &[u8]) -> Result<HeaderInfo, ParseError> {
    if bytes.len() < header::SELFMAG || &bytes[..header::SELFMAG] != header::ELFMAG {
        return Err(ParseError::NotElf);
    }
    let h: Header = bytes.pread::<Header>(0).map_err(malformed)?;
    let is_64 = match h.e_ident[header::EI_CLASS] {
        header::ELFCLASS64 => true,
        header::ELFCLASS32 => false,
        c => return Err(malformed(format!("unknown ELF class {c}"))),
    };
    let little_endian = match h.e_ident[header::EI_DATA] {
        header::ELFDATA2LSB => true,
        header::ELFDATA2MSB => false,
        d => return Err(malformed(format!("unknown ELF data encoding {d}"))),
    };
    let ident = Ident {
        is_64,
        little_endian,
        machine: h.e_machine,
        osabi: h.e_ident[header::EI_OSABI],
        abiversion: h.e_ident[header::EI_ABIVERSION],
        elf_type: h.e_type,
        flags: h.e_flags,
    };
    let info = HeaderInfo {
        ident,
        phoff: h.e_phoff,
        phentsize: h.e_phentsize,
        phnum: h.e_phnum,
        shoff: h.e_shoff,
        shentsize: h.e_shentsize,
        shnum: h.e_shnum,
    };
    // The header's own size must be its class's (glibc's and the
    // kernel's loaders check the same): a file whose EI_CLASS was changed
    // reads its fields at the wrong offsets and must not pass for a
    // static program.
    let ehsize = if is_64 {
        header::header64::SIZEOF_EHDR
    } else {
        header::header32::SIZEOF_EHDR
    };
    if h.e_ehsize as usize != ehsize {
        return Err(malformed(format!(
            "ELF header size {} does not match its class ({}-bit, {ehsize} bytes)",
            h.e_ehsize,
            if is_64 { 64 } else { 32 }
        )));
    }
    if info.phnum == 0 && matches!(h.e_type, header::ET_EXEC | header::ET_DYN) {
        return Err(malformed(
            "no program headers: no loader can map this program or library".to_string(),
        ));
    }
    if info.phnum as usize > MAX_PHNUM {
        return Err(malformed(format!("{} program headers", info.phnum)));
    }
    if info.phnum > 0 && info.phentsize as usize != ProgramHeader::size(ident.ctx()) {
        return Err(malformed(format!(
            "program header entry size {} (expected {})",
            info.phentsize,
            ProgramHeader::size(ident.ctx())
        )));
    }
    Ok(info)
}

/// Parses the program header table (the bytes at `phoff`).
pub fn parse_program_headers(
    bytes: &[u8],
    header: &HeaderInfo,
) -> Result<Vec<ProgramHeader>, ParseError> {
    ProgramHeader::parse(bytes, 0, header.phnum as usize, header.ident.ctx()).map_err(malformed)
}

/// File offset of the PT_INTERP string, if any.
pub fn interp_range(phdrs: &[ProgramHeader]) -> Option<(u64, u64)> {
    phdrs
        .iter()
        .find(|p| p.p_type == program_header::PT_INTERP)
        .map(|p| (p.p_offset, p.p_filesz))
}

/// File offset and size of the PT_DYNAMIC segment, if any.
pub fn dynamic_range(phdrs: &[ProgramHeader]) -> Option<(u64, u64)> {
    phdrs
        .iter()
        .find(|p| p.p_type == program_header::PT_DYNAMIC)
        .map(|p| (p.p_offset, p.p_filesz))
}

/// The dynamic entries mkimage cares about, with strings still as offsets
/// into the dynamic string table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DynamicRaw {
    pub needed: Vec<u64>,
    pub soname: Option<u64>,
    pub rpath: Option<u64>,
    pub runpath: Option<u64>,
    pub strtab_vaddr: Option<u64>,
    pub strsz: u64,
    pub flags_1: u64,
    /// DT_SYMTAB, DT_SYMENT and the hash tables that give the number of
    /// dynamic symbols (the loader has no other count).
    pub symtab_vaddr: Option<u64>,
    pub syment: u64,
    pub hash_vaddr: Option<u64>,
    pub gnu_hash_vaddr: Option<u64>,
    /// DT_VERNEED/DT_VERNEEDNUM and DT_VERDEF/DT_VERDEFNUM: the symbol
    /// versions needed and defined (see `symver.rs`).
    pub verneed_vaddr: Option<u64>,
    pub verneednum: u64,
    pub verdef_vaddr: Option<u64>,
    pub verdefnum: u64,
}

/// Parses the PT_DYNAMIC segment's bytes.
pub fn parse_dynamic(bytes: &[u8], ident: &Ident) -> Result<DynamicRaw, ParseError> {
    let ctx = ident.ctx();
    let size = Dyn::size(ctx.container);
    let mut out = DynamicRaw::default();
    let mut offset = 0;
    while offset + size <= bytes.len() {
        let d: Dyn = bytes.gread_with(&mut offset, ctx).map_err(malformed)?;
        match d.d_tag {
            dynamic::DT_NULL => break,
            dynamic::DT_NEEDED => out.needed.push(d.d_val),
            dynamic::DT_SONAME => out.soname = Some(d.d_val),
            dynamic::DT_RPATH => out.rpath = Some(d.d_val),
            dynamic::DT_RUNPATH => out.runpath = Some(d.d_val),
            dynamic::DT_STRTAB => out.strtab_vaddr = Some(d.d_val),
            dynamic::DT_STRSZ => out.strsz = d.d_val,
            dynamic::DT_FLAGS_1 => out.flags_1 = d.d_val,
            dynamic::DT_SYMTAB => out.symtab_vaddr = Some(d.d_val),
            dynamic::DT_SYMENT => out.syment = d.d_val,
            dynamic::DT_HASH => out.hash_vaddr = Some(d.d_val),
            dynamic::DT_GNU_HASH => out.gnu_hash_vaddr = Some(d.d_val),
            dynamic::DT_VERNEED => out.verneed_vaddr = Some(d.d_val),
            dynamic::DT_VERNEEDNUM => out.verneednum = d.d_val,
            dynamic::DT_VERDEF => out.verdef_vaddr = Some(d.d_val),
            dynamic::DT_VERDEFNUM => out.verdefnum = d.d_val,
            _ => {}
        }
    }
    Ok(out)
}

/// Maps a virtual address to a file offset through the PT_LOAD segments,
/// as the loader sees DT_STRTAB.
pub fn vaddr_to_offset(phdrs: &[ProgramHeader], vaddr: u64) -> Option<u64> {
    phdrs
        .iter()
        .filter(|p| p.p_type == program_header::PT_LOAD)
        .find(|p| vaddr >= p.p_vaddr && vaddr < p.p_vaddr.saturating_add(p.p_filesz))
        // A file offset past 2^64 is a corrupt header, not a place to read.
        .and_then(|p| (vaddr - p.p_vaddr).checked_add(p.p_offset))
}

pub fn has_nodeflib(d: &DynamicRaw) -> bool {
    d.flags_1 & dynamic::DF_1_NODEFLIB != 0
}

/// The bytes up to the first NUL (the whole slice if there is none).
pub fn c_str(bytes: &[u8]) -> &[u8] {
    match bytes.iter().position(|&b| b == 0) {
        Some(n) => &bytes[..n],
        None => bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elf::synth::SynthElf;

    #[test]
    fn a_load_segment_at_an_impossible_offset_maps_nothing() {
        // Found by fuzz/ (elf): p_offset near 2^64 overflowed the sum.
        let load = ProgramHeader {
            p_type: program_header::PT_LOAD,
            p_vaddr: 0x1000,
            p_filesz: 0x100,
            p_offset: u64::MAX - 8,
            ..Default::default()
        };
        assert_eq!(vaddr_to_offset(std::slice::from_ref(&load), 0x1080), None);
        let sane = ProgramHeader {
            p_offset: 0x2000,
            ..load
        };
        assert_eq!(vaddr_to_offset(&[sane], 0x1080), Some(0x2080));
    }

    #[test]
    fn header_rejects_non_elf_and_truncated() {
        assert_eq!(parse_header(b"#!/bin/sh\n"), Err(ParseError::NotElf));
        assert_eq!(parse_header(b""), Err(ParseError::NotElf));
        let elf = SynthElf::x86_64().build();
        assert!(matches!(
            parse_header(&elf[..20]),
            Err(ParseError::Malformed(_))
        ));
    }

    #[test]
    fn parses_synthetic_dynamic_section() {
        let elf = SynthElf::x86_64()
            .needed("libfoo.so.1")
            .needed("libbar.so.2")
            .soname("libme.so")
            .runpath("$ORIGIN/../lib")
            .nodeflib()
            .build();
        let h = parse_header(&elf).unwrap();
        assert!(h.ident.is_64 && h.ident.little_endian);
        assert_eq!(h.ident.machine, header::EM_X86_64);
        let ph_start = h.phoff as usize;
        let phdrs =
            parse_program_headers(&elf[ph_start..ph_start + h.program_headers_size()], &h).unwrap();
        let (off, size) = dynamic_range(&phdrs).unwrap();
        let d = parse_dynamic(&elf[off as usize..(off + size) as usize], &h.ident).unwrap();
        assert_eq!(d.needed.len(), 2);
        assert!(d.runpath.is_some() && d.rpath.is_none());
        assert!(has_nodeflib(&d));
        let strtab = vaddr_to_offset(&phdrs, d.strtab_vaddr.unwrap()).unwrap() as usize;
        let name = c_str(&elf[strtab + d.needed[1] as usize..]);
        assert_eq!(name, b"libbar.so.2");
    }
}
