//! Pure parsing of the dynamic symbol table: the functions a program
//! imports (its undefined dynamic symbols), from the bytes of DT_SYMTAB,
//! DT_STRTAB and the hash table that says how many symbols there are.
//! Bytes in, data out; `imports.rs` does the positioned reads.
//!
//! The dynamic section has no symbol count. Like the loader (and readelf
//! without section headers), the count comes from DT_HASH's `nchain`, or
//! from DT_GNU_HASH: one past the last symbol of the longest-reaching
//! chain, or `symoffset` when no symbol is hashed (an executable that only
//! imports has all its symbols below `symoffset`: undefined symbols are
//! never hashed). Layouts: the System V gABI "Hash Table" section, and
//! glibc's `_dl_setup_hash` for DT_GNU_HASH.

use goblin::elf::header::EM_S390;
use goblin::elf::sym::{STB_GLOBAL, STB_WEAK, Sym};
use scroll::Pread;

use super::parse::{Ident, ParseError};

/// Size of the DT_GNU_HASH header: nbuckets, symoffset, bloom_size,
/// bloom_shift, each 32 bits.
pub const GNU_HASH_HEADER: usize = 16;
/// Size of what DT_HASH's count needs: nbucket and nchain.
pub const SYSV_HASH_HEADER: usize = 8;
/// `st_shndx` of an undefined symbol.
const SHN_UNDEF: usize = 0;

fn malformed(what: impl std::fmt::Display) -> ParseError {
    ParseError::Malformed(what.to_string())
}

fn word(bytes: &[u8], at: usize, ident: &Ident) -> Result<u32, ParseError> {
    bytes
        .pread_with::<u32>(at, ident.ctx().le)
        .map_err(|e| malformed(format!("hash table: {e}")))
}

/// The DT_GNU_HASH header, and where its parts are relative to its start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GnuHash {
    pub nbuckets: u32,
    pub symoffset: u32,
    pub bloom_size: u32,
    is_64: bool,
}

impl GnuHash {
    /// Offset of the bucket array from the start of the table.
    pub fn buckets_offset(&self) -> u64 {
        let bloom_word = if self.is_64 { 8 } else { 4 };
        GNU_HASH_HEADER as u64 + u64::from(self.bloom_size) * bloom_word
    }

    /// Size in bytes of the bucket array.
    pub fn buckets_size(&self) -> u64 {
        u64::from(self.nbuckets) * 4
    }

    /// Offset of the chain word of symbol `index` (at least `symoffset`).
    pub fn chain_offset(&self, index: u32) -> u64 {
        self.buckets_offset()
            + self.buckets_size()
            + u64::from(index.saturating_sub(self.symoffset)) * 4
    }
}

/// Parses the first [`GNU_HASH_HEADER`] bytes of a DT_GNU_HASH table.
pub fn gnu_hash_header(bytes: &[u8], ident: &Ident) -> Result<GnuHash, ParseError> {
    let h = GnuHash {
        nbuckets: word(bytes, 0, ident)?,
        symoffset: word(bytes, 4, ident)?,
        bloom_size: word(bytes, 8, ident)?,
        is_64: ident.is_64,
    };
    if h.nbuckets == 0 {
        return Err(malformed("DT_GNU_HASH with no buckets"));
    }
    Ok(h)
}

/// The highest symbol index any bucket starts at (0: every bucket empty).
pub fn gnu_hash_max_bucket(buckets: &[u8], ident: &Ident) -> Result<u32, ParseError> {
    let mut max = 0;
    for at in (0..buckets.len() / 4).map(|i| i * 4) {
        max = max.max(word(buckets, at, ident)?);
    }
    Ok(max)
}

/// Among chain words, the position of the first that ends its chain
/// (lowest bit set), or `None` if these words do not reach it.
pub fn gnu_hash_chain_end(chain: &[u8], ident: &Ident) -> Result<Option<u32>, ParseError> {
    for i in 0..chain.len() / 4 {
        if word(chain, i * 4, ident)? & 1 == 1 {
            return u32::try_from(i)
                .map(Some)
                .map_err(|_| malformed("DT_GNU_HASH chain too long"));
        }
    }
    Ok(None)
}

/// The symbol count DT_HASH gives: `nchain`. 64-bit s390 uses 64-bit
/// hash entries (as readelf knows).
pub fn sysv_hash_count(bytes: &[u8], ident: &Ident) -> Result<u64, ParseError> {
    if ident.is_64 && ident.machine == EM_S390 {
        let wide = bytes
            .get(..16)
            .ok_or_else(|| malformed("DT_HASH truncated"))?;
        return wide
            .pread_with::<u64>(8, ident.ctx().le)
            .map_err(|e| malformed(format!("DT_HASH: {e}")));
    }
    Ok(u64::from(word(bytes, 4, ident)?))
}

/// Size of one symbol table entry for this class.
pub fn sym_size(ident: &Ident) -> usize {
    use scroll::ctx::SizeWith;
    Sym::size_with(&ident.ctx())
}

/// The names of the undefined global or weak symbols of a symbol table
/// (`symtab`, entries `syment` bytes apart), read from `strtab`. Names
/// are bytes, without version (versions live in DT_VERSYM).
pub fn parse_imports(
    symtab: &[u8],
    syment: usize,
    strtab: &[u8],
    ident: &Ident,
) -> Result<Vec<Vec<u8>>, ParseError> {
    let size = sym_size(ident);
    if syment < size {
        return Err(malformed(format!(
            "DT_SYMENT {syment} (an entry is {size} bytes)"
        )));
    }
    let mut out = Vec::new();
    let mut at = 0;
    while at + size <= symtab.len() {
        let sym: Sym = symtab
            .pread_with(at, ident.ctx())
            .map_err(|e| malformed(format!("dynamic symbol: {e}")))?;
        at += syment;
        let bind = sym.st_bind();
        if sym.st_shndx != SHN_UNDEF
            || sym.st_name == 0
            || !(bind == STB_GLOBAL || bind == STB_WEAK)
        {
            continue;
        }
        let name = strtab.get(sym.st_name..).ok_or_else(|| {
            malformed(format!("symbol name offset {} past DT_STRSZ", sym.st_name))
        })?;
        let name = super::parse::c_str(name);
        if !name.is_empty() {
            out.push(name.to_vec());
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elf::parse::parse_header;
    use crate::elf::synth::SynthElf;

    fn ident() -> Ident {
        parse_header(&SynthElf::exe().build()).unwrap().ident
    }

    fn words(ws: &[u32]) -> Vec<u8> {
        ws.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    #[test]
    fn gnu_hash_table_gives_the_count() {
        let id = ident();
        // 2 buckets, symoffset 3, one bloom word.
        let h = gnu_hash_header(&words(&[2, 3, 1, 6]), &id).unwrap();
        assert_eq!(h.buckets_offset(), 16 + 8);
        assert_eq!(h.chain_offset(5), 24 + 8 + 2 * 4);
        assert_eq!(gnu_hash_max_bucket(&words(&[3, 5]), &id).unwrap(), 5);
        assert_eq!(
            gnu_hash_chain_end(&words(&[10, 12, 7]), &id).unwrap(),
            Some(2)
        );
        assert_eq!(gnu_hash_chain_end(&words(&[10, 12]), &id).unwrap(), None);
        assert!(gnu_hash_header(&words(&[0, 1, 1, 6]), &id).is_err());
        assert!(gnu_hash_header(&words(&[1]), &id).is_err());
        assert_eq!(sysv_hash_count(&words(&[1, 9]), &id).unwrap(), 9);
        assert!(sysv_hash_count(&words(&[1]), &id).is_err());
    }

    #[test]
    fn imports_are_the_undefined_globals() {
        let id = ident();
        let strtab = b"\0popen\0main\0local\0";
        // st_name, st_info (bind << 4 | type), st_other, st_shndx, value, size.
        let sym = |name: u32, bind: u8, shndx: u16| {
            let mut b = name.to_le_bytes().to_vec();
            b.push(bind << 4 | 2);
            b.push(0);
            b.extend_from_slice(&shndx.to_le_bytes());
            b.extend_from_slice(&[0; 16]);
            b
        };
        let table: Vec<u8> = [
            vec![0; 24],   // the null symbol
            sym(1, 1, 0),  // popen, global, undefined: an import
            sym(7, 1, 14), // main, defined
            sym(12, 0, 0), // local
            sym(1, 2, 0),  // popen again, weak
        ]
        .concat();
        let got = parse_imports(&table, 24, strtab, &id).unwrap();
        assert_eq!(got, [b"popen".to_vec()]);
        assert!(parse_imports(&table, 8, strtab, &id).is_err());
        let bad = [vec![0; 24], sym(99, 1, 0)].concat();
        assert!(parse_imports(&bad, 24, strtab, &id).is_err());
    }
}
