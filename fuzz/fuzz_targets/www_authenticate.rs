//! What a registry says in its answers (src/registry/transport.rs):
//! `WWW-Authenticate` challenges, and error bodies turned into messages.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mkimage::transport::{Response, parse_challenges};

fuzz_target!(|data: &[u8]| {
    // Header values reach the parser as ureq's bytes, read lossily.
    let header = String::from_utf8_lossy(data);
    let _ = parse_challenges(&header);
    let resp = Response {
        status: 400,
        headers: vec![("www-authenticate".into(), header.into_owned())],
        body: data.to_vec(),
    };
    let _ = resp.message();
});
