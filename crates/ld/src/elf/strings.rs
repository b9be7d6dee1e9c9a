//! The C strings of a file that look like paths: NUL-terminated runs that
//! start with `/` or `$ORIGIN`, as a compiler lays out string literals
//! (`"/bin/sh"`, a `--prefix` baked in by configure, a DT_RUNPATH in
//! dynstr). Pure: fed the file's bytes in chunks, it returns data; what
//! reads the file is `imports.rs`.
//!
//! Only strings delimited by NUL on both sides count, so a path that is a
//! prefix of a longer literal (`/usr/lib/foo/bin/tool`) is not taken for
//! the directory itself.

use std::collections::BTreeSet;

/// Longest string kept; paths are far shorter (PATH_MAX is 4096).
const MAX_LEN: usize = 4096;

/// Collects path-like C strings across chunk boundaries.
#[derive(Debug, Default)]
pub struct PathStrings {
    /// The run since the last NUL (or the start), while it may still be
    /// a path.
    partial: Vec<u8>,
    /// Whether the current run has been given up (too long, not a path).
    skipping: bool,
    found: BTreeSet<String>,
}

impl PathStrings {
    pub fn new() -> Self {
        Self::default()
    }

    /// Scans the next bytes of the file.
    pub fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if b == 0 {
                if !self.skipping
                    && looks_like_path(&self.partial)
                    && let Ok(s) = std::str::from_utf8(&self.partial)
                {
                    self.found.insert(s.to_owned());
                }
                self.partial.clear();
                self.skipping = false;
                continue;
            }
            if self.skipping {
                continue;
            }
            if !(0x20..0x7f).contains(&b) || self.partial.len() >= MAX_LEN {
                self.partial.clear();
                self.skipping = true;
                continue;
            }
            self.partial.push(b);
        }
    }

    /// The path strings seen, sorted.
    pub fn finish(self) -> BTreeSet<String> {
        self.found
    }
}

fn looks_like_path(s: &[u8]) -> bool {
    (s.len() > 1 && s[0] == b'/' && s[1] != b'/') || s.starts_with(b"$ORIGIN")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nul_delimited_paths_across_chunks() {
        let file = b"\x7fELF\0/bin/sh\0xx/usr/lib/a\0/usr/lib/postgresql/15/bin\0\
            $ORIGIN/../lib\0/\0//x\0/caf\xc3\xa9\0/usr/sh\x01are\0not a path\0/tmp/last";
        for split in 0..file.len() {
            let mut s = PathStrings::new();
            s.feed(&file[..split]);
            s.feed(&file[split..]);
            let got: Vec<String> = s.finish().into_iter().collect();
            assert_eq!(
                got,
                ["$ORIGIN/../lib", "/bin/sh", "/usr/lib/postgresql/15/bin"],
                "split at {split}"
            );
        }
        let mut s = PathStrings::new();
        s.feed(&[b'/'; MAX_LEN + 10]);
        s.feed(b"\0");
        assert!(s.finish().is_empty());
    }
}
