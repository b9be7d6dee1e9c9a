//! Parses `/etc/ld.so.cache` as glibc writes it (ldconfig's cache.c):
//! the "glibc-ld.so.cache1.1" format, optionally behind the old
//! "ld.so-1.7.0" one, with the glibc-hwcaps extension. Pure: bytes in.

use std::collections::HashMap;

const OLD_MAGIC: &[u8] = b"ld.so-1.7.0";
const NEW_MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
/// magic(20) nlibs(4) len_strings(4) flags(1) pad(3) extension_offset(4) unused(12)
const NEW_HEADER: usize = 48;
/// flags(4) key(4) value(4) osversion(4) hwcap(8)
const NEW_ENTRY: usize = 24;
/// flags(4) key(4) value(4)
const OLD_ENTRY: usize = 12;
const EXTENSION_MAGIC: u32 = 0xeaa4_2174;
const EXTENSION_TAG_HWCAPS: u32 = 1;
/// Set in `hwcap` when the low 32 bits index the glibc-hwcaps subdirectory list.
const HWCAP_EXTENSION: u64 = 1 << 62;

/// `flags` low byte: an ELF library for libc6.
pub const FLAG_ELF_LIBC6: i32 = 0x0003;
/// `flags` low byte: an ELF library of unknown libc, which the generic
/// `_dl_cache_check_flags` (i386's) also accepts.
const FLAG_ELF: i32 = 0x0001;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CacheError {
    #[error("not an ld.so.cache file (unknown magic)")]
    BadMagic,
    #[error("truncated or corrupt ld.so.cache: {0}")]
    Corrupt(&'static str),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheEntry {
    pub flags: i32,
    pub key: Vec<u8>,
    pub path: Vec<u8>,
    /// The glibc-hwcaps subdirectory name (e.g. "x86-64-v3") for entries
    /// that live in one.
    pub hwcaps: Option<Vec<u8>>,
}

impl CacheEntry {
    /// Whether a loader whose `_DL_CACHE_DEFAULT_ID` is `id` (see
    /// [`crate::elf::Arch::cache_id`]) uses the entry: glibc's
    /// `_dl_cache_check_flags` wants the flags to equal the id exactly;
    /// only the generic one (no architecture bits, i386) also takes a
    /// plain FLAG_ELF entry.
    pub fn matches_arch(&self, id: i32) -> bool {
        self.flags == id || (id == FLAG_ELF_LIBC6 && self.flags == FLAG_ELF)
    }
}

/// The parsed cache, indexed by key (soname) in file order.
#[derive(Clone, Debug, Default)]
pub struct LdCache {
    by_key: HashMap<Vec<u8>, Vec<CacheEntry>>,
}

impl LdCache {
    pub fn parse(bytes: &[u8]) -> Result<LdCache, CacheError> {
        let mut start = 0;
        if bytes.starts_with(OLD_MAGIC) {
            // Old-format entries come first; the new header follows,
            // 8-byte aligned. An old-only cache has nothing we use.
            let n = u32_at(bytes, OLD_MAGIC.len().next_multiple_of(4), true)
                .ok_or(CacheError::Corrupt("old header"))? as usize;
            let after = OLD_MAGIC.len().next_multiple_of(4) + 4 + n * OLD_ENTRY;
            start = after.next_multiple_of(8);
            if !bytes.get(start..).is_some_and(|b| b.starts_with(NEW_MAGIC)) {
                return Ok(LdCache::default());
            }
        }
        let b = bytes.get(start..).ok_or(CacheError::Corrupt("header"))?;
        if !b.starts_with(NEW_MAGIC) {
            return Err(CacheError::BadMagic);
        }
        // flags byte: 0 unknown, 1 invalid, 2 little endian, 3 big endian.
        let le = match b.get(28) {
            Some(3) => false,
            Some(_) => cfg!(target_endian = "little"),
            None => return Err(CacheError::Corrupt("header")),
        };
        let nlibs = u32_at(b, 20, le).ok_or(CacheError::Corrupt("header"))? as usize;
        let ext_off = u32_at(b, 32, le).ok_or(CacheError::Corrupt("header"))? as usize;
        if nlibs > b.len() / NEW_ENTRY {
            return Err(CacheError::Corrupt("entry count"));
        }
        let hwcaps = parse_hwcaps_extension(b, ext_off, le);
        let mut cache = LdCache::default();
        for i in 0..nlibs {
            let at = NEW_HEADER + i * NEW_ENTRY;
            let flags = u32_at(b, at, le).ok_or(CacheError::Corrupt("entry"))? as i32;
            let key = u32_at(b, at + 4, le).ok_or(CacheError::Corrupt("entry"))? as usize;
            let value = u32_at(b, at + 8, le).ok_or(CacheError::Corrupt("entry"))? as usize;
            let hwcap = u64_at(b, at + 16, le).ok_or(CacheError::Corrupt("entry"))?;
            let key = c_str_at(b, key).ok_or(CacheError::Corrupt("string offset"))?;
            let path = c_str_at(b, value).ok_or(CacheError::Corrupt("string offset"))?;
            let hwcaps = if hwcap & HWCAP_EXTENSION != 0 {
                hwcaps.get((hwcap & 0xffff_ffff) as usize).cloned()
            } else {
                None
            };
            cache
                .by_key
                .entry(key.to_vec())
                .or_default()
                .push(CacheEntry {
                    flags,
                    key: key.to_vec(),
                    path: path.to_vec(),
                    hwcaps,
                });
        }
        Ok(cache)
    }

    /// All entries for `soname`, in cache order.
    pub fn lookup(&self, soname: &[u8]) -> &[CacheEntry] {
        self.by_key.get(soname).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn len(&self) -> usize {
        self.by_key.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

fn parse_hwcaps_extension(b: &[u8], off: usize, le: bool) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    if off == 0 || u32_at(b, off, le) != Some(EXTENSION_MAGIC) {
        return out;
    }
    let count = u32_at(b, off + 4, le).unwrap_or(0) as usize;
    for s in 0..count.min(64) {
        let at = off + 8 + s * 16;
        let (Some(tag), Some(sec_off), Some(size)) = (
            u32_at(b, at, le),
            u32_at(b, at + 8, le),
            u32_at(b, at + 12, le),
        ) else {
            break;
        };
        if tag != EXTENSION_TAG_HWCAPS {
            continue;
        }
        for i in 0..(size as usize / 4).min(1024) {
            if let Some(name) =
                u32_at(b, sec_off as usize + 4 * i, le).and_then(|o| c_str_at(b, o as usize))
            {
                out.push(name.to_vec());
            }
        }
    }
    out
}

fn u32_at(b: &[u8], at: usize, le: bool) -> Option<u32> {
    let bytes: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(if le {
        u32::from_le_bytes(bytes)
    } else {
        u32::from_be_bytes(bytes)
    })
}

fn u64_at(b: &[u8], at: usize, le: bool) -> Option<u64> {
    let bytes: [u8; 8] = b.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(if le {
        u64::from_le_bytes(bytes)
    } else {
        u64::from_be_bytes(bytes)
    })
}

fn c_str_at(b: &[u8], at: usize) -> Option<&[u8]> {
    let rest = b.get(at..)?;
    let end = rest.iter().position(|&c| c == 0)?;
    Some(&rest[..end])
}

/// Writes a cache in the new format, for tests (what ldconfig would write
/// for these entries; `hwcaps` entries use the extension).
#[cfg(test)]
pub fn synth_cache(entries: &[(&str, &str, i32, Option<&str>)]) -> Vec<u8> {
    let mut strings: Vec<u8> = Vec::new();
    let subdirs: Vec<&str> = {
        let mut v: Vec<&str> = entries.iter().filter_map(|e| e.3).collect();
        v.sort();
        v.dedup();
        v
    };
    let strings_base = NEW_HEADER + entries.len() * NEW_ENTRY;
    let mut add = |s: &str| {
        let off = strings_base + strings.len();
        strings.extend_from_slice(s.as_bytes());
        strings.push(0);
        off as u32
    };
    let mut body = Vec::new();
    let sub_offs: Vec<u32> = subdirs.iter().map(|s| add(s)).collect();
    for (key, path, flags, hw) in entries {
        let k = add(key);
        let v = add(path);
        body.extend_from_slice(&flags.to_le_bytes());
        body.extend_from_slice(&k.to_le_bytes());
        body.extend_from_slice(&v.to_le_bytes());
        body.extend_from_slice(&0u32.to_le_bytes());
        let hwcap = match hw {
            Some(h) => HWCAP_EXTENSION | subdirs.iter().position(|s| s == h).unwrap_or(0) as u64,
            None => 0,
        };
        body.extend_from_slice(&hwcap.to_le_bytes());
    }
    let ext_off = (strings_base + strings.len()).next_multiple_of(4);
    let mut out = Vec::new();
    out.extend_from_slice(NEW_MAGIC);
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    out.extend_from_slice(&(strings.len() as u32).to_le_bytes());
    out.extend_from_slice(&[2, 0, 0, 0]);
    out.extend_from_slice(&(ext_off as u32).to_le_bytes());
    out.extend_from_slice(&[0; 12]);
    out.extend_from_slice(&body);
    out.extend_from_slice(&strings);
    out.resize(ext_off, 0);
    // Extension: magic, count=1, section {tag, flags, offset, size}, data.
    let data_off = ext_off + 8 + 16;
    out.extend_from_slice(&EXTENSION_MAGIC.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&EXTENSION_TAG_HWCAPS.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&(data_off as u32).to_le_bytes());
    out.extend_from_slice(&((sub_offs.len() * 4) as u32).to_le_bytes());
    for o in sub_offs {
        out.extend_from_slice(&o.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const X86_64: i32 = 0x0303;

    #[test]
    fn parses_synthetic_cache_with_hwcaps() {
        let bytes = synth_cache(&[
            ("libfoo.so.1", "/usr/lib/libfoo.so.1", X86_64, None),
            (
                "libfoo.so.1",
                "/usr/lib/glibc-hwcaps/x86-64-v3/libfoo.so.1",
                X86_64,
                Some("x86-64-v3"),
            ),
            ("libfoo.so.1", "/usr/lib32/libfoo.so.1", 0x0003, None),
        ]);
        let cache = LdCache::parse(&bytes).unwrap();
        let e = cache.lookup(b"libfoo.so.1");
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].path, b"/usr/lib/libfoo.so.1");
        assert_eq!(e[1].hwcaps.as_deref(), Some(&b"x86-64-v3"[..]));
        assert!(e[0].matches_arch(0x0303));
        assert!(!e[2].matches_arch(0x0303));
        assert!(e[2].matches_arch(0x0003));
        // An armhf loader takes hard-float entries only (0x0903; soft-float
        // ones are 0x0b03), not the arch-less ones.
        assert!(!e[2].matches_arch(0x0903));
        assert!(cache.lookup(b"libnope.so").is_empty());
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        assert_eq!(
            LdCache::parse(b"nonsense").unwrap_err(),
            CacheError::BadMagic
        );
        let mut bytes = synth_cache(&[("a", "/a", X86_64, None)]);
        bytes.truncate(60);
        assert!(LdCache::parse(&bytes).is_err());
        // Every prefix of a valid cache parses or errors; none panics.
        let full = synth_cache(&[("a", "/a", X86_64, Some("x86-64-v2"))]);
        for n in 0..full.len() {
            let _ = LdCache::parse(&full[..n]);
        }
    }

    #[test]
    fn parses_this_machines_cache_when_present() {
        // The host cache is real input from ldconfig; it must parse and
        // contain libc for the host architecture.
        let Ok(bytes) = std::fs::read("/etc/ld.so.cache") else {
            panic!("/etc/ld.so.cache is missing: run ldconfig");
        };
        let cache = LdCache::parse(&bytes).unwrap();
        assert!(cache.len() > 10);
        assert!(!cache.lookup(b"libc.so.6").is_empty());
    }
}
