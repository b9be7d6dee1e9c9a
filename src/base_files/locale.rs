//! The C.UTF-8 locale, from the root when it has it. glibc opens a
//! locale's compiled files from /usr/lib/locale/NAME, with the codeset
//! normalised (`C.UTF-8` → `C.utf8`, _nl_normalize_codeset in
//! intl/l10nflist.c); since glibc 2.35 Debian's libc-bin ships C.utf8
//! there, already compiled. Without it `setlocale(LC_ALL, "C.UTF-8")`
//! fails and tools that ask for it (`initdb --locale=C.UTF-8`, Python's
//! locale coercion, LANG=C.UTF-8) fall back or refuse.

use std::path::Path;

use crate::resolve::Root;

use super::BaseFilesError;
use crate::rootfs::{ImagePath, Tree, host};

/// Where glibc looks for the compiled C.UTF-8 locale.
pub const C_UTF8: &str = "/usr/lib/locale/C.utf8";
/// Where glibc looks for compiled locales (localedef's default).
pub const LOCALE_DIR: &str = "/usr/lib/locale";
/// The one file `localedef` writes every locale into unless told
/// `--no-archive`.
pub const ARCHIVE: &str = "/usr/lib/locale/locale-archive";

/// A locale name with its codeset as glibc normalises it before looking
/// for the directory (`_nl_normalize_codeset`, intl/l10nflist.c): letters
/// lower-cased, digits kept, everything else dropped, and `iso` before a
/// codeset of digits only. `en_US.UTF-8@euro` → `en_US.utf8@euro`.
pub fn normalise_codeset(name: &str) -> String {
    let Some((lang, rest)) = name.split_once('.') else {
        return name.to_string();
    };
    let (codeset, modifier) = match rest.split_once('@') {
        Some((c, m)) => (c, Some(m)),
        None => (rest, None),
    };
    let mut norm: String = codeset
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if norm.chars().all(|c| c.is_ascii_digit()) {
        norm.insert_str(0, "iso");
    }
    match modifier {
        Some(m) => format!("{lang}.{norm}@{m}"),
        None => format!("{lang}.{norm}"),
    }
}

/// `--locale NAME`: the root's compiled locale directory for NAME
/// (normalised, then as given, as glibc tries them) added to `tree`;
/// returns its image path. A root whose locales live only in
/// locale-archive is an error that says how to compile one apart.
pub fn add_locale(
    tree: &mut Tree,
    root: &mut Root,
    name: &str,
    warnings: &mut Vec<String>,
) -> Result<String, BaseFilesError> {
    let norm = normalise_codeset(name);
    let mut tried = vec![format!("{LOCALE_DIR}/{norm}")];
    if norm != name {
        tried.push(format!("{LOCALE_DIR}/{name}"));
    }
    for path in &tried {
        if name.contains('/') || name.is_empty() || name.starts_with('.') {
            break;
        }
        if let Some(dir) = root.lookup_dir(Path::new(path))? {
            let host_dir = root.host(&dir.real);
            let image = ImagePath::new(&dir.real)?;
            host::add_host_dir(tree, &host_dir, &image, &|_| false, warnings)?;
            return Ok(image.to_string());
        }
    }
    Err(BaseFilesError::NoLocale {
        name: name.to_string(),
        archive: root.host(Path::new(ARCHIVE)).is_file(),
        path: tried.swap_remove(0),
        root: root.dir().to_path_buf(),
    })
}

/// Adds the root's C.UTF-8 locale to `tree`; returns whether the root
/// had one.
pub fn add_c_utf8(
    tree: &mut Tree,
    root: &mut Root,
    warnings: &mut Vec<String>,
) -> Result<bool, BaseFilesError> {
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
    fn codesets_are_normalised_as_glibc_does() {
        let cases = [
            ("C.UTF-8", "C.utf8"),
            ("en_US.UTF-8@euro", "en_US.utf8@euro"),
            ("de_DE.ISO-8859-1", "de_DE.iso88591"),
            ("ja_JP.eucJP", "ja_JP.eucjp"),
            ("xx.8859", "xx.iso8859"),
            ("POSIX", "POSIX"),
        ];
        for (name, want) in cases {
            assert_eq!(normalise_codeset(name), want, "{name}");
        }
    }

    #[test]
    fn a_missing_locale_says_how_to_compile_it() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("usr/lib/locale/C.utf8")).unwrap();
        std::fs::write(root.path().join("usr/lib/locale/C.utf8/LC_CTYPE"), b"c").unwrap();
        std::fs::write(root.path().join("usr/lib/locale/locale-archive"), b"a").unwrap();
        let mut r = Root::new(root.path());
        let (mut tree, mut w) = (Tree::new(), Vec::new());
        assert_eq!(
            add_locale(&mut tree, &mut r, "C.UTF-8", &mut w).unwrap(),
            "/usr/lib/locale/C.utf8"
        );
        let err = add_locale(&mut tree, &mut r, "de_DE.UTF-8", &mut w).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("/usr/lib/locale/de_DE.utf8")
                && msg.contains("only a locale-archive")
                && msg.contains("localedef --no-archive"),
            "{msg}"
        );
        assert!(add_locale(&mut tree, &mut r, "../etc", &mut w).is_err());
    }

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
