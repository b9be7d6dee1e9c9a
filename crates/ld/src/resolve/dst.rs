//! Dynamic string tokens in DT_RPATH, DT_RUNPATH, DT_NEEDED and
//! LD_LIBRARY_PATH: `$ORIGIN`, `$LIB`, `$PLATFORM`, with or without
//! braces (ld.so(8) "Dynamic string tokens"). Pure string work.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// The values substituted for one object.
#[derive(Clone, Copy, Debug)]
pub struct Tokens<'a> {
    pub origin: &'a OsStr,
    pub lib: &'a str,
    pub platform: &'a str,
}

/// Whether `s` mentions `$ORIGIN` (so its expansion depends on where the
/// object lives).
pub fn uses_origin(s: &[u8]) -> bool {
    find_token(s, b"ORIGIN")
}

fn find_token(s: &[u8], name: &[u8]) -> bool {
    let mut i = 0;
    while let Some(p) = s[i..].iter().position(|&b| b == b'$') {
        let at = i + p + 1;
        if let Some((tok, _)) = token_at(&s[at..])
            && tok == name
        {
            return true;
        }
        i = at;
    }
    false
}

/// Parses a token name right after a `$`: `NAME` or `{NAME}`. Returns
/// the name and how many bytes it took.
fn token_at(s: &[u8]) -> Option<(&[u8], usize)> {
    const NAMES: [&[u8]; 3] = [b"ORIGIN", b"PLATFORM", b"LIB"];
    if let Some(rest) = s.strip_prefix(b"{") {
        let end = rest.iter().position(|&b| b == b'}')?;
        let name = &rest[..end];
        return NAMES.contains(&name).then_some((name, end + 2));
    }
    for name in NAMES {
        if s.starts_with(name) {
            // `$ORIGINX` is not `$ORIGIN` followed by X: the name must end
            // at a non-identifier character (glibc's is_dst).
            let next = s.get(name.len());
            if next.is_none_or(|c| !(c.is_ascii_alphanumeric() || *c == b'_')) {
                return Some((name, name.len()));
            }
        }
    }
    None
}

/// Substitutes every known token; unknown `$` sequences are kept as they
/// are, as glibc does.
pub fn expand(s: &OsStr, t: &Tokens<'_>) -> OsString {
    let s = s.as_bytes();
    let mut out = Vec::with_capacity(s.len() + 32);
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'$'
            && let Some((name, len)) = token_at(&s[i + 1..])
        {
            match name {
                b"ORIGIN" => out.extend_from_slice(t.origin.as_bytes()),
                b"LIB" => out.extend_from_slice(t.lib.as_bytes()),
                _ => out.extend_from_slice(t.platform.as_bytes()),
            }
            i += 1 + len;
            continue;
        }
        out.push(s[i]);
        i += 1;
    }
    OsString::from_vec(out)
}

/// Splits a colon-separated path list. An empty element means the current
/// directory, as in glibc's fillin_rpath.
pub fn split_list(s: &OsStr) -> Vec<OsString> {
    s.as_bytes()
        .split(|&b| b == b':')
        .map(|e| {
            if e.is_empty() {
                OsString::from(".")
            } else {
                OsStr::from_bytes(e).to_os_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_tokens_table() {
        let t = Tokens {
            origin: OsStr::new("/opt/app/bin"),
            lib: "lib/x86_64-linux-gnu",
            platform: "x86_64",
        };
        let cases = [
            ("$ORIGIN/../lib", "/opt/app/bin/../lib"),
            ("${ORIGIN}/lib", "/opt/app/bin/lib"),
            ("/usr/$LIB", "/usr/lib/x86_64-linux-gnu"),
            ("/p/${PLATFORM}/x", "/p/x86_64/x"),
            ("$ORIGINAL", "$ORIGINAL"),
            ("$FOO/x", "$FOO/x"),
            ("${ORIGIN", "${ORIGIN"),
            ("a$", "a$"),
        ];
        for (input, want) in cases {
            assert_eq!(
                expand(OsStr::new(input), &t),
                OsString::from(want),
                "{input}"
            );
        }
        assert!(uses_origin(b"x:$ORIGIN"));
        assert!(uses_origin(b"${ORIGIN}/x"));
        assert!(!uses_origin(b"$ORIGINAL"));
    }

    #[test]
    fn splits_lists_with_empty_elements() {
        assert_eq!(
            split_list(OsStr::new("/a::/b")),
            vec![
                OsString::from("/a"),
                OsString::from("."),
                OsString::from("/b")
            ]
        );
    }
}
