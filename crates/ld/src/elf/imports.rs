//! Reads what `dynsym.rs` and `strings.rs` parse: the functions a program
//! imports (positioned reads of its hash table, DT_SYMTAB and DT_STRTAB,
//! a few kilobytes), and the path strings in its bytes (the whole file,
//! read in chunks).

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

use super::dynsym;
use super::parse::{self, DynamicRaw, Ident, ParseError};
use super::read::{ElfError, Loaded, load, open_sized, within};

/// More dynamic symbols than any real object has (libc has ~3,000).
const MAX_SYMBOLS: u64 = 1 << 20;
/// Largest dynamic string table read.
const MAX_STRTAB: u64 = 16 << 20;
/// GNU hash chain words read at a time while looking for a chain's end.
const CHAIN_WORDS: u64 = 512;
/// Chunk size for scanning a whole file.
const CHUNK: usize = 1 << 20;

/// The names of the functions (and other symbols) `path` imports: its
/// undefined global and weak dynamic symbols, sorted. A file with no
/// dynamic symbols imports nothing.
pub fn read_imports(path: &Path) -> Result<Vec<OsString>, ElfError> {
    let bad = |source| ElfError::Malformed {
        path: path.to_path_buf(),
        source,
    };
    let (file, file_len) = open_sized(path)?;
    let Loaded {
        header,
        phdrs,
        dynamic,
        ..
    } = load(&file, path)?;
    let Some(raw) = dynamic else {
        return Ok(Vec::new());
    };
    let Some(symtab_vaddr) = raw.symtab_vaddr else {
        return Ok(Vec::new());
    };
    let ident = header.ident;
    let offset = |vaddr: u64, what: &str| {
        parse::vaddr_to_offset(&phdrs, vaddr)
            .ok_or_else(|| bad(ParseError::Malformed(format!("{what} outside any PT_LOAD"))))
    };
    let count = symbol_count(&file, file_len, &raw, &ident, &offset).map_err(bad)?;
    if count > MAX_SYMBOLS {
        return Err(bad(ParseError::Malformed(format!(
            "{count} dynamic symbols"
        ))));
    }
    let syment = match raw.syment {
        0 => dynsym::sym_size(&ident) as u64,
        n => n,
    };
    let symtab = within(
        &file,
        file_len,
        offset(symtab_vaddr, "DT_SYMTAB")?,
        count.saturating_mul(syment),
    )
    .ok_or_else(|| bad(ParseError::Malformed("DT_SYMTAB past end of file".into())))?;
    let strtab_vaddr = raw
        .strtab_vaddr
        .ok_or_else(|| bad(ParseError::Malformed("DT_SYMTAB without DT_STRTAB".into())))?;
    if raw.strsz > MAX_STRTAB {
        return Err(bad(ParseError::Malformed(format!(
            "DT_STRSZ of {} bytes",
            raw.strsz
        ))));
    }
    let strtab = within(
        &file,
        file_len,
        offset(strtab_vaddr, "DT_STRTAB")?,
        raw.strsz,
    )
    .ok_or_else(|| bad(ParseError::Malformed("DT_STRTAB past end of file".into())))?;
    let names = dynsym::parse_imports(&symtab, syment as usize, &strtab, &ident).map_err(bad)?;
    Ok(names.into_iter().map(OsString::from_vec).collect())
}

/// How many entries DT_SYMTAB has, from DT_GNU_HASH or DT_HASH.
fn symbol_count(
    file: &File,
    file_len: u64,
    raw: &DynamicRaw,
    ident: &Ident,
    offset: &dyn Fn(u64, &str) -> Result<u64, ElfError>,
) -> Result<u64, ParseError> {
    let at = |vaddr: u64, what: &str| {
        offset(vaddr, what).map_err(|e| ParseError::Malformed(e.to_string()))
    };
    let read = |off: u64, len: u64, what: &str| {
        within(file, file_len, off, len)
            .ok_or_else(|| ParseError::Malformed(format!("{what} past end of file")))
    };
    if let Some(vaddr) = raw.gnu_hash_vaddr {
        let base = at(vaddr, "DT_GNU_HASH")?;
        let h = dynsym::gnu_hash_header(
            &read(base, dynsym::GNU_HASH_HEADER as u64, "DT_GNU_HASH")?,
            ident,
        )?;
        if u64::from(h.nbuckets) > MAX_SYMBOLS {
            return Err(ParseError::Malformed(format!(
                "DT_GNU_HASH with {} buckets",
                h.nbuckets
            )));
        }
        let buckets = read(base + h.buckets_offset(), h.buckets_size(), "DT_GNU_HASH")?;
        let max = dynsym::gnu_hash_max_bucket(&buckets, ident)?;
        if max < h.symoffset {
            // No hashed symbol: every symbol is below symoffset.
            return Ok(u64::from(h.symoffset));
        }
        let mut index = max;
        while u64::from(index) < MAX_SYMBOLS {
            let at = base + h.chain_offset(index);
            // Near the end of the file a full chunk may not be there: then
            // one word at a time.
            let chunk = read(at, CHAIN_WORDS * 4, "DT_GNU_HASH chain")
                .or_else(|_| read(at, 4, "DT_GNU_HASH chain"))?;
            if let Some(end) = dynsym::gnu_hash_chain_end(&chunk, ident)? {
                return Ok(u64::from(index) + u64::from(end) + 1);
            }
            index = index.saturating_add((chunk.len() / 4) as u32);
        }
        return Err(ParseError::Malformed("DT_GNU_HASH chain never ends".into()));
    }
    if let Some(vaddr) = raw.hash_vaddr {
        let base = at(vaddr, "DT_HASH")?;
        return dynsym::sysv_hash_count(
            &read(base, 16, "DT_HASH")
                .or_else(|_| read(base, dynsym::SYSV_HASH_HEADER as u64, "DT_HASH"))?,
            ident,
        );
    }
    Err(ParseError::Malformed(
        "DT_SYMTAB without DT_HASH or DT_GNU_HASH".into(),
    ))
}

/// The path-like C strings of the file at `path` (see `strings.rs`).
pub fn read_path_strings(path: &Path) -> io::Result<BTreeSet<String>> {
    let mut file = File::open(path)?;
    let mut scan = super::strings::PathStrings::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Ok(scan.finish()),
            Ok(n) => scan.feed(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elf::synth::SynthElf;

    #[test]
    fn reads_imports_through_either_hash_table() {
        let d = tempfile::tempdir().unwrap();
        for gnu in [false, true] {
            let elf = SynthElf::exe()
                .needed("libc.so.6")
                .import("popen")
                .import("system")
                .export("main")
                .gnu_hash(gnu)
                .build();
            let p = d.path().join(format!("prog-{gnu}"));
            std::fs::write(&p, &elf).unwrap();
            let got = read_imports(&p).unwrap();
            assert_eq!(got, ["popen", "system"], "gnu hash: {gnu}");
        }
        // Only imports: every GNU bucket is empty, the count is symoffset.
        let elf = SynthElf::exe().import("execl").gnu_hash(true).build();
        let p = d.path().join("only-imports");
        std::fs::write(&p, &elf).unwrap();
        assert_eq!(read_imports(&p).unwrap(), ["execl"]);
        let p = d.path().join("static");
        std::fs::write(&p, SynthElf::static_exe().build()).unwrap();
        assert!(read_imports(&p).unwrap().is_empty());
    }

    /// Damaged symbol tables give an error or a list, never a panic.
    #[test]
    fn corrupted_symbol_tables_never_panic() {
        let d = tempfile::tempdir().unwrap();
        let good = SynthElf::exe()
            .import("popen")
            .export("main")
            .gnu_hash(true)
            .build();
        let p = d.path().join("f");
        for n in 0..good.len() {
            for v in [0x00, 0xff, 0x7f] {
                let mut b = good.clone();
                b[n] = v;
                std::fs::write(&p, &b).unwrap();
                let _ = read_imports(&p);
            }
        }
    }
}
