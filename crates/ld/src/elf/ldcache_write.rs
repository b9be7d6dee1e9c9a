//! Writes `/etc/ld.so.cache` in glibc's new format
//! ("glibc-ld.so.cache1.1", elf/cache.c `save_cache`), which `ldcache.rs`
//! parses: entries sorted as ldconfig sorts them (the loader
//! binary-searches them, dl-cache.c), glibc-hwcaps entries indexed
//! through the cache extension. Pure: entries in, bytes out, the same
//! bytes for the same entries.

use std::cmp::Ordering;
use std::collections::BTreeMap;

const MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
const HEADER: usize = 48;
const ENTRY: usize = 24;
const EXTENSION_MAGIC: u32 = 0xeaa4_2174;
const EXTENSION_TAG_HWCAPS: u32 = 1;
/// `hwcap` bit: the low 32 bits index the glibc-hwcaps section.
const HWCAP_EXTENSION: u64 = 1 << 62;
/// cache_file_new_flags_endian_{little,big}.
const ENDIAN_LITTLE: u8 = 2;
const ENDIAN_BIG: u8 = 3;

/// One library as ldconfig records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The soname: what the loader looks up.
    pub key: String,
    /// The path the loader opens.
    pub path: String,
    /// `FLAG_ELF_LIBC6` and the architecture's bits ([`super::Arch::cache_id`]).
    pub flags: i32,
    /// The glibc-hwcaps subdirectory the library is in, if any.
    pub hwcaps: Option<String>,
}

/// glibc's `_dl_cache_libcmp` (sysdeps/generic/dl-cache.h): runs of
/// digits compare as numbers, so `libfoo.so.10` sorts after
/// `libfoo.so.9`, and a digit sorts after any other byte.
pub fn libcmp(a: &[u8], b: &[u8]) -> Ordering {
    let (mut i, mut j) = (0, 0);
    let digit = |s: &[u8], k: usize| s.get(k).is_some_and(u8::is_ascii_digit);
    while i < a.len() {
        if digit(a, i) {
            if !digit(b, j) {
                return Ordering::Greater;
            }
            let (mut va, mut vb) = (0u64, 0u64);
            while digit(a, i) {
                va = va.saturating_mul(10).saturating_add(u64::from(a[i] - b'0'));
                i += 1;
            }
            while digit(b, j) {
                vb = vb.saturating_mul(10).saturating_add(u64::from(b[j] - b'0'));
                j += 1;
            }
            if va != vb {
                return va.cmp(&vb);
            }
        } else if digit(b, j) {
            return Ordering::Less;
        } else {
            match b.get(j) {
                Some(&c) if c == a[i] => {
                    i += 1;
                    j += 1;
                }
                Some(&c) => return a[i].cmp(&c),
                None => return Ordering::Greater,
            }
        }
    }
    if j < b.len() {
        Ordering::Less
    } else {
        Ordering::Equal
    }
}

/// cache.c `compare`: sonames in descending libcmp order, then flags
/// descending, glibc-hwcaps entries before the others (by name). Equal
/// entries keep the order they were added in (ldconfig's insertion).
fn compare(a: &Entry, b: &Entry) -> Ordering {
    libcmp(b.key.as_bytes(), a.key.as_bytes())
        .then(b.flags.cmp(&a.flags))
        .then_with(|| match (&a.hwcaps, &b.hwcaps) {
            (Some(x), Some(y)) => x.cmp(y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        })
}

/// The cache file for `entries` (in the order directories were scanned),
/// in the byte order of the loader that reads it.
pub fn write(entries: &[Entry], little_endian: bool) -> Vec<u8> {
    let mut sorted = entries.to_vec();
    sorted.sort_by(compare);
    let u32b = |v: u32| {
        if little_endian {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        }
    };
    // The string table follows the entries; offsets count from the file's
    // start, as in ldconfig's new-format-only output. Each string once.
    let base = HEADER + sorted.len() * ENTRY;
    let mut strings: Vec<u8> = Vec::new();
    let mut offsets: BTreeMap<String, u32> = BTreeMap::new();
    let mut intern = |s: &str, strings: &mut Vec<u8>| -> u32 {
        *offsets.entry(s.to_string()).or_insert_with(|| {
            let at = (base + strings.len()) as u32;
            strings.extend_from_slice(s.as_bytes());
            strings.push(0);
            at
        })
    };
    let mut subdirs: Vec<String> = sorted.iter().filter_map(|e| e.hwcaps.clone()).collect();
    subdirs.sort();
    subdirs.dedup();
    let mut body = Vec::with_capacity(sorted.len() * ENTRY);
    for e in &sorted {
        let key = intern(&e.key, &mut strings);
        let value = intern(&e.path, &mut strings);
        body.extend_from_slice(&u32b(e.flags as u32));
        body.extend_from_slice(&u32b(key));
        body.extend_from_slice(&u32b(value));
        body.extend_from_slice(&u32b(0)); // osversion, unused since 2.33
        let hwcap = match &e.hwcaps {
            Some(h) => HWCAP_EXTENSION | subdirs.iter().position(|s| s == h).unwrap_or(0) as u64,
            None => 0,
        };
        body.extend_from_slice(&if little_endian {
            hwcap.to_le_bytes()
        } else {
            hwcap.to_be_bytes()
        });
    }
    let sub_offsets: Vec<u32> = subdirs.iter().map(|s| intern(s, &mut strings)).collect();
    let ext_offset = if subdirs.is_empty() {
        0
    } else {
        (base + strings.len()).next_multiple_of(4)
    };

    let mut out = Vec::with_capacity(base + strings.len() + 64);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&u32b(sorted.len() as u32));
    out.extend_from_slice(&u32b(strings.len() as u32));
    out.push(if little_endian {
        ENDIAN_LITTLE
    } else {
        ENDIAN_BIG
    });
    out.extend_from_slice(&[0; 3]);
    out.extend_from_slice(&u32b(ext_offset as u32));
    out.extend_from_slice(&[0; 12]);
    out.extend_from_slice(&body);
    out.extend_from_slice(&strings);
    if ext_offset != 0 {
        out.resize(ext_offset, 0);
        // The extension directory (magic, count, one section), then the
        // section: the string offsets of the subdirectory names.
        let data = ext_offset + 8 + 16;
        out.extend_from_slice(&u32b(EXTENSION_MAGIC));
        out.extend_from_slice(&u32b(1));
        out.extend_from_slice(&u32b(EXTENSION_TAG_HWCAPS));
        out.extend_from_slice(&u32b(0));
        out.extend_from_slice(&u32b(data as u32));
        out.extend_from_slice(&u32b((sub_offsets.len() * 4) as u32));
        for o in sub_offsets {
            out.extend_from_slice(&u32b(o));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elf::LdCache;

    #[test]
    fn libcmp_is_glibcs() {
        use Ordering::*;
        let cases = [
            ("libfoo.so.10", "libfoo.so.9", Greater),
            ("libfoo.so.1", "libfoo.so.1", Equal),
            ("libfoo.so", "libfoo.so.1", Less),
            ("libz.so.1", "libzstd.so.1", Less),
            ("lib1", "liba", Greater),
            ("libc.so.6", "libcap.so.2", Less),
            ("libfoo.so.01", "libfoo.so.1", Equal),
        ];
        for (a, b, want) in cases {
            assert_eq!(libcmp(a.as_bytes(), b.as_bytes()), want, "{a} vs {b}");
            assert_eq!(
                libcmp(b.as_bytes(), a.as_bytes()),
                want.reverse(),
                "{b} vs {a}"
            );
        }
    }

    fn e(key: &str, path: &str, hw: Option<&str>) -> Entry {
        Entry {
            key: key.into(),
            path: path.into(),
            flags: 0x0303,
            hwcaps: hw.map(Into::into),
        }
    }

    #[test]
    fn written_caches_parse_back_in_ldconfig_order() {
        let entries = [
            e("libz.so.1", "/lib/x86_64-linux-gnu/libz.so.1", None),
            e("libfoo.so.1", "/opt/lib/libfoo.so.1", None),
            e(
                "libz.so.1",
                "/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libz.so.1.2.13",
                Some("x86-64-v3"),
            ),
            e("libfoo.so.1", "/lib/x86_64-linux-gnu/libfoo.so.1", None),
            e("libfoo.so.10", "/opt/lib/libfoo.so.10", None),
        ];
        for le in [true, false] {
            let bytes = write(&entries, le);
            assert_eq!(bytes, write(&entries, le), "deterministic");
            let cache = LdCache::parse(&bytes).unwrap();
            let z = cache.lookup(b"libz.so.1");
            assert_eq!(z.len(), 2);
            assert_eq!(z[0].hwcaps.as_deref(), Some(&b"x86-64-v3"[..]));
            assert!(z[1].hwcaps.is_none());
            let foo = cache.lookup(b"libfoo.so.1");
            // Equal entries keep the scan order.
            assert_eq!(foo[0].path, b"/opt/lib/libfoo.so.1");
            assert_eq!(foo[1].path, b"/lib/x86_64-linux-gnu/libfoo.so.1");
            assert!(foo[0].matches_arch(0x0303));
        }
        // Sorted descending by soname as the loader's binary search wants.
        let mut sorted = entries.to_vec();
        sorted.sort_by(compare);
        let keys: Vec<&str> = sorted.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "libz.so.1",
                "libz.so.1",
                "libfoo.so.10",
                "libfoo.so.1",
                "libfoo.so.1"
            ]
        );
        assert!(LdCache::parse(&write(&[], true)).unwrap().is_empty());
    }
}
