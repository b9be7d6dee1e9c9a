//! Image references (src/registry/reference.rs): parsing, and that what
//! a parsed reference prints parses back to it (push prints it, and other
//! tools read it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mkimage::Reference;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let r = match Reference::parse(input) {
        Ok(r) => r,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let _ = (
        r.registry(),
        r.api_host(),
        r.repository(),
        r.tag(),
        r.digest(),
    );
    let shown = r.to_string();
    match Reference::parse(&shown) {
        Ok(again) => assert_eq!(again, r, "{input:?} printed as {shown:?}"),
        Err(e) => panic!("{input:?} printed as {shown:?}, which does not parse: {e}"),
    }
});
