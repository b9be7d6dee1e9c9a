//! The debug layer's tree (`--debug`): a static busybox at
//! `/busybox/busybox` with a link per applet, as distroless's `:debug`
//! images have it, so `/busybox/sh` gives a shell in an image that has
//! none.
//!
//! The applet names are read from the binary, not by running it (the
//! image may be for another architecture): busybox keeps them in one
//! string, `applet_names` in its generated applet_tables.h, NUL-separated
//! in sorted order and starting with `[` and `[[`, ending at an empty name.

use std::path::Path;

use super::{Entry, ImagePath, RootfsError, Source, Tree};

/// Where the debug layer puts busybox and its links.
pub const DIR: &str = "/busybox";
/// The start of busybox's applet name table (the test applets `[` and
/// `[[` sort first).
const TABLE_START: &[u8] = b"[\0[[\0";
/// More applets than any busybox has (Debian's static one has 269).
const MAX_APPLETS: usize = 1024;
/// The longest applet name accepted.
const MAX_NAME: usize = 64;

/// The applet names of the busybox binary `bytes`, in its order; `None`
/// when it holds no table this reader understands.
pub fn applet_names(bytes: &[u8]) -> Option<Vec<String>> {
    let start = bytes
        .windows(TABLE_START.len())
        .position(|w| w == TABLE_START)?;
    let mut names = Vec::new();
    let mut rest = &bytes[start..];
    loop {
        let end = rest.iter().position(|&b| b == 0)?;
        if end == 0 {
            break;
        }
        let name = std::str::from_utf8(&rest[..end]).ok()?;
        let plausible = name.len() <= MAX_NAME
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'[' | b'-' | b'_' | b'.'))
            && name != "."
            && name != "..";
        if !plausible || names.len() >= MAX_APPLETS {
            return None;
        }
        names.push(name.to_owned());
        rest = &rest[end + 1..];
    }
    // `sh` is what the debug image runs.
    names.iter().any(|n| n == "sh").then_some(names)
}

/// The tree: `/busybox` (0755), `/busybox/busybox` from `host` (`size`
/// bytes, 0755), and `/busybox/NAME -> busybox` for every applet.
pub fn tree(host: &Path, size: u64, applets: &[String]) -> Result<Tree, RootfsError> {
    let mut tree = Tree::new();
    let dir = ImagePath::new(DIR)?;
    tree.insert(dir.clone(), Entry::dir(0o755))?;
    tree.insert(
        dir.join("busybox")?,
        Entry::file(Source::Host(host.to_path_buf()), size, 0o755),
    )?;
    for name in applets.iter().filter(|n| *n != "busybox") {
        tree.insert(dir.join(name)?, Entry::symlink("busybox"))?;
    }
    Ok(tree)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_table() {
        let mut bin = b"\x7fELF junk [ not this\0".to_vec();
        bin.extend(b"[\0[[\0ash\0cat\0sh\0wget\0\0more junk");
        assert_eq!(
            applet_names(&bin).expect("a table"),
            ["[", "[[", "ash", "cat", "sh", "wget"]
        );
        // No shell, an implausible name, or no end: not a table we use.
        assert_eq!(applet_names(b"[\0[[\0cat\0\0"), None);
        assert_eq!(applet_names(b"[\0[[\0s/h\0sh\0\0"), None);
        assert_eq!(applet_names(b"[\0[[\0sh\0cat"), None);
        assert_eq!(applet_names(b"nothing here"), None);
    }

    #[test]
    fn host_busybox() {
        let path = Path::new("/bin/busybox");
        let bytes = std::fs::read(path).expect("busybox-static is installed (scripts/test)");
        let names = applet_names(&bytes).expect("its applet table");
        for want in ["sh", "ls", "wget", "cat"] {
            assert!(names.iter().any(|n| n == want), "{want}: {names:?}");
        }
        let t = tree(path, bytes.len() as u64, &names).expect("tree");
        assert_eq!(
            t.len(),
            names.len() + 2 - usize::from(names.iter().any(|n| n == "busybox"))
        );
    }
}
