//! The ld.so.conf parser (src/elf/ldconf.rs), fed as the resolver feeds it
//! (bytes read lossily as UTF-8).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mkimage::elf::ldconf::{self, ConfLine};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for line in ldconf::parse(&text) {
        match line {
            // What the resolver does next: a path, or a glob pattern.
            ConfLine::Dir(d) => assert!(!d.is_empty(), "empty directory from {text:?}"),
            ConfLine::Include(p) => {
                let _ = glob::Pattern::new(&p);
            }
        }
    }
});
