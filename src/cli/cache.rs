//! Where the layer cache lives and how big it may grow, from the
//! environment: `$XDG_CACHE_HOME/mkimage` (the XDG Base Directory
//! specification; a relative value is to be ignored), else
//! `$HOME/.cache/mkimage`; `MKIMAGE_CACHE_SIZE` caps it.

use std::path::PathBuf;

use anyhow::Context;

use crate::cache::{CacheSettings, DEFAULT_MAX_BYTES};

/// The cache for a build; `None` with `--no-cache` or when there is no
/// home to keep one in.
pub(super) fn cache_settings(no_cache: bool) -> anyhow::Result<Option<CacheSettings>> {
    if no_cache {
        return Ok(None);
    }
    let max_bytes = match std::env::var("MKIMAGE_CACHE_SIZE") {
        Ok(v) if !v.trim().is_empty() => parse_size(v.trim()).with_context(|| {
            format!("MKIMAGE_CACHE_SIZE={v:?}: give bytes, or a number with K, M or G")
        })?,
        _ => DEFAULT_MAX_BYTES,
    };
    let absolute = |var| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    let dir = absolute("XDG_CACHE_HOME").or_else(|| absolute("HOME").map(|h| h.join(".cache")));
    Ok(dir.map(|d| CacheSettings {
        dir: d.join("mkimage"),
        max_bytes,
    }))
}

/// `500M`, `2G`, `1048576`: binary units, as du(1) and sort(1) read them.
fn parse_size(s: &str) -> anyhow::Result<u64> {
    let (digits, shift) = match s.as_bytes().last() {
        Some(b'K' | b'k') => (&s[..s.len() - 1], 10),
        Some(b'M' | b'm') => (&s[..s.len() - 1], 20),
        Some(b'G' | b'g') => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    let n: u64 = digits.parse().context("not a number")?;
    n.checked_mul(1 << shift).context("too large")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1048576").unwrap(), 1 << 20);
        assert_eq!(parse_size("500M").unwrap(), 500 << 20);
        assert_eq!(parse_size("2g").unwrap(), 2 << 30);
        assert!(parse_size("-1").is_err());
        assert!(parse_size("G").is_err());
        assert!(parse_size("99999999999999G").is_err());
    }
}
