//! Pure parsing of GNU symbol versioning: the versions an object needs
//! from each library (DT_VERNEED, `.gnu.version_r`) and the versions a
//! library defines (DT_VERDEF, `.gnu.version_d`). Bytes in, data out;
//! `versions.rs` does the positioned reads.
//!
//! Layouts: the LSB Core spec, "Symbol Versioning" (Elfxx_Verneed,
//! Elfxx_Vernaux, Elfxx_Verdef, Elfxx_Verdaux: the same sizes in 32- and
//! 64-bit files). Entries are chained by byte offsets relative to each
//! entry, as glibc's dl-version.c walks them, so a hostile chain may loop
//! or point anywhere: every offset is bounds-checked and the walk stops
//! after a fixed number of entries.

use scroll::Pread;

use super::parse::{Ident, ParseError, c_str};

/// sizeof(Elfxx_Verneed) and sizeof(Elfxx_Vernaux).
const VERNEED_SIZE: usize = 16;
const VERNAUX_SIZE: usize = 16;
/// sizeof(Elfxx_Verdef) and sizeof(Elfxx_Verdaux).
const VERDEF_SIZE: usize = 20;
const VERDAUX_SIZE: usize = 8;
/// `vd_flags`: the definition naming the file itself (its soname), not a
/// version symbols are bound to.
const VER_FLG_BASE: u16 = 0x1;
/// `vna_flags`: a reference the loader does not insist on (dl-version.c
/// skips it when the library lacks it).
const VER_FLG_WEAK: u16 = 0x2;
/// More entries than any real object has (libc defines ~45 versions; a
/// large program needs a few dozen): the walk stops there.
pub const MAX_ENTRIES: usize = 4096;

/// One library an object needs versions from (one Elfxx_Verneed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionNeed {
    /// `vn_file`: the DT_NEEDED name the versions are looked up in.
    pub file: Vec<u8>,
    pub versions: Vec<NeededVersion>,
}

/// One version of a [`VersionNeed`] (one Elfxx_Vernaux).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeededVersion {
    /// e.g. `GLIBC_2.34`.
    pub name: Vec<u8>,
    /// VER_FLG_WEAK: the loader does not fail without it.
    pub weak: bool,
}

fn malformed(what: impl std::fmt::Display) -> ParseError {
    ParseError::Malformed(what.to_string())
}

fn u16_at(bytes: &[u8], at: usize, ident: &Ident, what: &str) -> Result<u16, ParseError> {
    bytes
        .pread_with::<u16>(at, ident.ctx().le)
        .map_err(|_| malformed(format!("{what} past its end")))
}

fn u32_at(bytes: &[u8], at: usize, ident: &Ident, what: &str) -> Result<u32, ParseError> {
    bytes
        .pread_with::<u32>(at, ident.ctx().le)
        .map_err(|_| malformed(format!("{what} past its end")))
}

fn string(strtab: &[u8], off: u32, what: &str) -> Result<Vec<u8>, ParseError> {
    let start = off as usize;
    if start >= strtab.len() {
        return Err(malformed(format!(
            "{what} name at {off}, past DT_STRSZ {}",
            strtab.len()
        )));
    }
    Ok(c_str(&strtab[start..]).to_vec())
}

/// The next entry's offset: `at + next`, or `None` at the chain's end
/// (`next` 0) or after `count` entries when the count is known.
fn advance(
    at: usize,
    next: u32,
    seen: usize,
    count: u64,
    what: &str,
) -> Result<Option<usize>, ParseError> {
    if next == 0 || (count != 0 && seen as u64 >= count) {
        return Ok(None);
    }
    if seen >= MAX_ENTRIES {
        return Err(malformed(format!(
            "{what} chain of more than {MAX_ENTRIES} entries"
        )));
    }
    at.checked_add(next as usize)
        .map(Some)
        .ok_or_else(|| malformed(format!("{what} offset overflows")))
}

/// DT_VERNEED's entries from `bytes` (starting at the table), with names
/// from `strtab`; `count` is DT_VERNEEDNUM (0 if absent: then the chain's
/// end alone stops the walk).
pub fn parse_verneed(
    bytes: &[u8],
    count: u64,
    strtab: &[u8],
    ident: &Ident,
) -> Result<Vec<VersionNeed>, ParseError> {
    let mut out = Vec::new();
    let mut at = 0usize;
    let mut total_aux = 0usize;
    loop {
        if at
            .checked_add(VERNEED_SIZE)
            .is_none_or(|end| end > bytes.len())
        {
            return Err(malformed("DT_VERNEED entry past the table"));
        }
        let version = u16_at(bytes, at, ident, "vn_version")?;
        if version != 1 {
            return Err(malformed(format!(
                "DT_VERNEED version {version}, expected 1"
            )));
        }
        let cnt = u16_at(bytes, at + 2, ident, "vn_cnt")?;
        let file = string(strtab, u32_at(bytes, at + 4, ident, "vn_file")?, "vn_file")?;
        let aux = u32_at(bytes, at + 8, ident, "vn_aux")?;
        let next = u32_at(bytes, at + 12, ident, "vn_next")?;
        let mut versions = Vec::new();
        let mut a = at
            .checked_add(aux as usize)
            .ok_or_else(|| malformed("vn_aux overflows"))?;
        for i in 0..cnt {
            total_aux += 1;
            if total_aux > MAX_ENTRIES {
                return Err(malformed(format!(
                    "more than {MAX_ENTRIES} needed versions"
                )));
            }
            if a.checked_add(VERNAUX_SIZE)
                .is_none_or(|end| end > bytes.len())
            {
                return Err(malformed("DT_VERNEED aux entry past the table"));
            }
            let flags = u16_at(bytes, a + 4, ident, "vna_flags")?;
            let name = string(strtab, u32_at(bytes, a + 8, ident, "vna_name")?, "vna_name")?;
            versions.push(NeededVersion {
                name,
                weak: flags & VER_FLG_WEAK != 0,
            });
            let anext = u32_at(bytes, a + 12, ident, "vna_next")?;
            if anext == 0 {
                if i + 1 < cnt {
                    return Err(malformed("vn_cnt longer than its aux chain"));
                }
                break;
            }
            a = a
                .checked_add(anext as usize)
                .ok_or_else(|| malformed("vna_next overflows"))?;
        }
        out.push(VersionNeed { file, versions });
        match advance(at, next, out.len(), count, "DT_VERNEED")? {
            Some(n) => at = n,
            None => return Ok(out),
        }
    }
}

/// The version names DT_VERDEF defines (the base entry, the file's own
/// name, left out), from `bytes` starting at the table; `count` is
/// DT_VERDEFNUM (0 if absent).
pub fn parse_verdef(
    bytes: &[u8],
    count: u64,
    strtab: &[u8],
    ident: &Ident,
) -> Result<Vec<Vec<u8>>, ParseError> {
    let mut out = Vec::new();
    let mut at = 0usize;
    let mut seen = 0usize;
    loop {
        if at
            .checked_add(VERDEF_SIZE)
            .is_none_or(|end| end > bytes.len())
        {
            return Err(malformed("DT_VERDEF entry past the table"));
        }
        let version = u16_at(bytes, at, ident, "vd_version")?;
        if version != 1 {
            return Err(malformed(format!(
                "DT_VERDEF version {version}, expected 1"
            )));
        }
        let flags = u16_at(bytes, at + 2, ident, "vd_flags")?;
        let cnt = u16_at(bytes, at + 6, ident, "vd_cnt")?;
        let aux = u32_at(bytes, at + 12, ident, "vd_aux")?;
        let next = u32_at(bytes, at + 16, ident, "vd_next")?;
        seen += 1;
        // The first Verdaux names the version; later ones name the
        // versions it inherits from, defined by their own entries.
        if cnt > 0 && flags & VER_FLG_BASE == 0 {
            let a = at
                .checked_add(aux as usize)
                .ok_or_else(|| malformed("vd_aux overflows"))?;
            if a.checked_add(VERDAUX_SIZE)
                .is_none_or(|end| end > bytes.len())
            {
                return Err(malformed("DT_VERDEF aux entry past the table"));
            }
            out.push(string(
                strtab,
                u32_at(bytes, a, ident, "vda_name")?,
                "vda_name",
            )?);
        }
        match advance(at, next, seen, count, "DT_VERDEF")? {
            Some(n) => at = n,
            None => return Ok(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ident() -> Ident {
        crate::elf::parse::parse_header(&crate::elf::synth::SynthElf::x86_64().build())
            .expect("synthetic header")
            .ident
    }

    /// strtab: "\0libc.so.6\0GLIBC_2.2.5\0GLIBC_2.34\0libm.so.6\0GLIBC_2.29\0"
    const STRTAB: &[u8] = b"\0libc.so.6\0GLIBC_2.2.5\0GLIBC_2.34\0libm.so.6\0GLIBC_2.29\0";
    const LIBC: u32 = 1;
    const V225: u32 = 11;
    const V234: u32 = 23;
    const LIBM: u32 = 34;
    const V229: u32 = 44;

    fn verneed(file: u32, aux: &[(u32, u16)], next: u32) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(1u16.to_le_bytes());
        b.extend((aux.len() as u16).to_le_bytes());
        b.extend(file.to_le_bytes());
        b.extend(16u32.to_le_bytes());
        b.extend(next.to_le_bytes());
        for (i, (name, flags)) in aux.iter().enumerate() {
            b.extend(0u32.to_le_bytes()); // hash
            b.extend(flags.to_le_bytes());
            b.extend(0u16.to_le_bytes()); // other
            b.extend(name.to_le_bytes());
            let last = i + 1 == aux.len();
            b.extend((if last { 0u32 } else { 16 }).to_le_bytes());
        }
        b
    }

    fn verdef(flags: u16, name: u32, next: u32) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(1u16.to_le_bytes());
        b.extend(flags.to_le_bytes());
        b.extend(1u16.to_le_bytes()); // ndx
        b.extend(1u16.to_le_bytes()); // cnt
        b.extend(0u32.to_le_bytes()); // hash
        b.extend(20u32.to_le_bytes()); // aux
        b.extend(next.to_le_bytes());
        b.extend(name.to_le_bytes());
        b.extend(0u32.to_le_bytes());
        b
    }

    #[test]
    fn needs_and_definitions() {
        let first = verneed(LIBC, &[(V225, 0), (V234, VER_FLG_WEAK)], 48);
        assert_eq!(first.len(), 48);
        let mut table = first;
        table.extend(verneed(LIBM, &[(V229, 0)], 0));
        let needs = parse_verneed(&table, 2, STRTAB, &ident()).expect("verneed");
        let want = vec![
            VersionNeed {
                file: b"libc.so.6".to_vec(),
                versions: vec![
                    NeededVersion {
                        name: b"GLIBC_2.2.5".to_vec(),
                        weak: false,
                    },
                    NeededVersion {
                        name: b"GLIBC_2.34".to_vec(),
                        weak: true,
                    },
                ],
            },
            VersionNeed {
                file: b"libm.so.6".to_vec(),
                versions: vec![NeededVersion {
                    name: b"GLIBC_2.29".to_vec(),
                    weak: false,
                }],
            },
        ];
        assert_eq!(needs, want);
        // Without DT_VERNEEDNUM the chain's end stops the walk.
        assert_eq!(
            parse_verneed(&table, 0, STRTAB, &ident()).expect("no count"),
            want
        );
        // A count of 1 stops after the first.
        assert_eq!(
            parse_verneed(&table, 1, STRTAB, &ident())
                .expect("one")
                .len(),
            1
        );

        let mut defs = verdef(VER_FLG_BASE, LIBC, 28);
        defs.extend(verdef(0, V225, 28));
        defs.extend(verdef(0, V234, 0));
        assert_eq!(
            parse_verdef(&defs, 3, STRTAB, &ident()).expect("verdef"),
            [b"GLIBC_2.2.5".to_vec(), b"GLIBC_2.34".to_vec()]
        );
    }

    #[test]
    fn hostile_tables_are_errors() {
        let id = ident();
        let one = verneed(LIBC, &[(V225, 0)], 0);
        // Truncated anywhere.
        for n in 0..one.len() {
            assert!(parse_verneed(&one[..n], 1, STRTAB, &id).is_err(), "{n}");
        }
        // A name past the string table.
        let bad_name = verneed(LIBC, &[(999, 0)], 0);
        assert!(parse_verneed(&bad_name, 1, STRTAB, &id).is_err());
        // Offsets are unsigned and 0 ends a chain, so a chain cannot
        // loop: a hostile one runs past the table instead.
        let mut far_next = verneed(LIBC, &[(V225, 0)], 0);
        far_next[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse_verneed(&far_next, 0, STRTAB, &id).is_err());
        // vn_cnt claims more aux entries than the chain has.
        let mut short = verneed(LIBC, &[(V225, 0)], 0);
        short[2..4].copy_from_slice(&2u16.to_le_bytes());
        assert!(parse_verneed(&short, 1, STRTAB, &id).is_err());
        // A wrong structure version.
        let mut v2 = one.clone();
        v2[0] = 2;
        assert!(parse_verneed(&v2, 1, STRTAB, &id).is_err());
        // An aux offset that overflows.
        let mut far = one;
        far[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse_verneed(&far, 1, STRTAB, &id).is_err());

        let def = verdef(0, V225, 0);
        for n in 0..def.len() {
            assert!(parse_verdef(&def[..n], 1, STRTAB, &id).is_err(), "{n}");
        }
    }
}
