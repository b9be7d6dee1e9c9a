//! The C.UTF-8 locale, from the root when it has it. glibc opens a
//! locale's compiled files from /usr/lib/locale/NAME, with the codeset
//! normalised (`C.UTF-8` → `C.utf8`, _nl_normalize_codeset in
//! intl/l10nflist.c); since glibc 2.35 Debian's libc-bin ships C.utf8
//! there, already compiled. Without it `setlocale(LC_ALL, "C.UTF-8")`
//! fails and tools that ask for it (`initdb --locale=C.UTF-8`, Python's
//! locale coercion, LANG=C.UTF-8) fall back or refuse.

use std::path::Path;

use crate::resolve::Root;

use super::{ImagePath, RootfsError, Tree, host};

/// Where glibc looks for the compiled C.UTF-8 locale.
pub const C_UTF8: &str = "/usr/lib/locale/C.utf8";

/// Adds the root's C.UTF-8 locale to `tree`; returns whether the root
/// had one.
pub fn add_c_utf8(
    tree: &mut Tree,
    root: &mut Root,
    warnings: &mut Vec<String>,
) -> Result<bool, RootfsError> {
    let Some(dir) = root.lookup_dir(Path::new(C_UTF8))? else {
        return Ok(false);
    };
    let host_dir = root.host(&dir.real);
    let image = ImagePath::new(&dir.real)?;
    host::add_host_dir(tree, &host_dir, &image, &|_| false, warnings)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_the_locale_when_the_root_has_it() {
        let root = tempfile::tempdir().unwrap();
        let mut r = Root::new(root.path());
        let mut tree = Tree::new();
        let mut w = Vec::new();
        assert!(!add_c_utf8(&mut tree, &mut r, &mut w).unwrap());
        assert!(tree.is_empty());

        let dir = root.path().join("usr/lib/locale/C.utf8/LC_MESSAGES");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("SYS_LC_MESSAGES"), b"m").unwrap();
        std::fs::write(dir.parent().unwrap().join("LC_CTYPE"), b"c").unwrap();
        let mut r = Root::new(root.path());
        assert!(add_c_utf8(&mut tree, &mut r, &mut w).unwrap());
        let got: Vec<String> = tree.iter().map(|(p, _)| p.to_string()).collect();
        assert_eq!(
            got,
            [
                "/usr",
                "/usr/lib",
                "/usr/lib/locale",
                "/usr/lib/locale/C.utf8",
                "/usr/lib/locale/C.utf8/LC_CTYPE",
                "/usr/lib/locale/C.utf8/LC_MESSAGES",
                "/usr/lib/locale/C.utf8/LC_MESSAGES/SYS_LC_MESSAGES",
            ]
        );
        assert!(w.is_empty());
    }
}
