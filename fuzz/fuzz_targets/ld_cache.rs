//! The ld.so.cache parser (src/elf/ldcache.rs): both formats, the
//! glibc-hwcaps extension, from any bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mkimage::elf::LdCache;

/// What the resolver asks a cache for: libc's id on x86-64 (FLAG_X8664_LIB64).
const X86_64: i32 = 0x0300;

fuzz_target!(|data: &[u8]| {
    let Ok(cache) = LdCache::parse(data) else {
        return;
    };
    let _ = (cache.len(), cache.is_empty());
    for soname in [&b"libc.so.6"[..], b"libm.so.6", b"libgcc_s.so.1", b""] {
        for e in cache.lookup(soname) {
            let _ = e.matches_arch(X86_64);
        }
    }
});
