//! Profile TOML (src/profile.rs): the strict schema and its checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // `profile::load` reads the file as UTF-8; anything else fails there.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match mkimage::profile::parse(text, "fuzz.toml") {
        Ok(p) => {
            let _ = format!("{p:?}");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
