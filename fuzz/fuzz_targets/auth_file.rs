//! Saved credentials (src/registry/auth.rs): an auth file (docker's
//! config.json, containers-auth.json) for a registry, and a credential
//! helper's reply. The first line is the registry, the rest the file.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use mkimage::auth::{self, AuthFile};

fuzz_target!(|data: &[u8]| {
    let (registry, bytes) = match data.iter().position(|&b| b == b'\n') {
        Some(n) => (String::from_utf8_lossy(&data[..n]), &data[n + 1..]),
        None => ("registry.example".into(), data),
    };
    let path = Path::new("auth.json");
    let hosts = auth::hosts_of(&registry);
    match AuthFile::parse(bytes, path) {
        Ok(file) => {
            let _ = file.helper_for(&hosts, path).map_err(|e| e.to_string());
            let _ = file
                .entry_for(&hosts, path)
                .map(|c| c.map(|c| format!("{c:?}")))
                .map_err(|e| e.to_string());
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    let _ = auth::parse_helper_reply(bytes, "docker-credential-fuzz").map_err(|e| e.to_string());
});
