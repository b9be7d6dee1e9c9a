//! The ELF reader (src/elf/read.rs over src/elf/parse.rs): header, program
//! headers, PT_INTERP, PT_DYNAMIC and its dynstr strings, and the symbol
//! versions (src/elf/versions.rs over src/elf/symver.rs), from any bytes.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use mkimage::elf::read::read_elf_bytes;
use mkimage::elf::versions::read_versions_bytes;

fuzz_target!(|data: &[u8]| {
    match read_elf_bytes(data, Path::new("fuzz.elf")) {
        Ok(info) => {
            let _ = (info.is_static(), info.effective_rpath());
            let _ = info.ident.describe();
        }
        Err(e) => {
            let _ = mkimage_fuzz::show_chain(&e);
        }
    }
    if let Err(e) = read_versions_bytes(data, Path::new("fuzz.elf")) {
        let _ = mkimage_fuzz::show_chain(&e);
    }
});
