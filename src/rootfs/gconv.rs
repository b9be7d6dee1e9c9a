//! glibc's iconv modules: which files of the root's gconv directory a
//! set of charsets needs. iconv_open(3) reads `gconv-modules` and
//! `gconv-modules.d/*.conf` (or the precompiled `gconv-modules.cache`)
//! and dlopens the module of each step of the conversion, always through
//! INTERNAL (iconv/gconv_conf.c, gconv_db.c). UTF-8, UCS-2/4 and ASCII
//! are built into libc (iconv/gconv_builtin.h) and need no module.
//! Pure: the configuration text in, module names out.

use std::collections::{BTreeMap, BTreeSet};

/// The configuration files, relative to the gconv directory, in the
/// order glibc reads them (gconv_conf.c: the main file, then the `.conf`
/// files of the directory, sorted).
pub const MAIN_CONFIG: &str = "gconv-modules";
pub const CONFIG_DIR: &str = "gconv-modules.d";
/// iconvconfig(8)'s precompiled form, which glibc prefers when present.
pub const CACHE: &str = "gconv-modules.cache";

/// Charset names libc converts itself (the BUILTIN_ALIAS and
/// BUILTIN_TRANSFORMATION names of gconv_builtin.h, 2.36), normalised as
/// [`normalise_charset`] makes them.
const BUILTIN: &[&str] = &[
    "INTERNAL",
    "WCHAR_T//",
    "UCS4//",
    "UCS-4//",
    "UCS-4BE//",
    "UCS-4LE//",
    "CSUCS4//",
    "ISO-10646//",
    "ISO-10646/UCS4/",
    "10646-1:1993//",
    "10646-1:1993/UCS4/",
    "OSF00010104//",
    "OSF00010105//",
    "OSF00010106//",
    "UTF8//",
    "UTF-8//",
    "ISO-IR-193//",
    "OSF05010001//",
    "ISO-10646/UTF-8/",
    "ISO-10646/UTF8/",
    "UCS2//",
    "UCS-2//",
    "UCS-2LE//",
    "UCS-2BE//",
    "ISO-10646/UCS2/",
    "OSF00010100//",
    "OSF00010101//",
    "OSF00010102//",
    "UNICODEBIG//",
    "UNICODELITTLE//",
    "ANSI_X3.4-1968//",
    "ANSI_X3.4//",
    "ISO-IR-6//",
    "ANSI_X3.4-1986//",
    "ISO_646.IRV:1991//",
    "ASCII//",
    "ISO646-US//",
    "US-ASCII//",
    "US//",
    "IBM367//",
    "CP367//",
    "CSASCII//",
    "OSF00010020//",
];

/// The parsed configuration: aliases and, for every charset, the module
/// files that convert it to or from INTERNAL.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    aliases: BTreeMap<String, String>,
    modules: BTreeMap<String, BTreeSet<String>>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GconvError {
    #[error(
        "--gconv {name}: no such charset in the root's gconv-modules, and not one glibc converts itself (UTF-8, UCS-2, UCS-4, ASCII); `iconv -l` lists the names"
    )]
    Unknown { name: String },
}

/// A charset name as glibc compares it: upper case, with the `//`
/// suffix gconv-modules writes after names that have no `/` of their own
/// (iconv_open.c adds it to what the program passes).
pub fn normalise_charset(name: &str) -> String {
    let up = name.trim().to_ascii_uppercase();
    if up == "INTERNAL" || up.contains('/') {
        up
    } else {
        format!("{up}//")
    }
}

impl Config {
    /// Adds one configuration file's text. Lines are `alias FROM TO` and
    /// `module FROM TO FILE [COST]`; `#` starts a comment. Malformed
    /// lines are skipped, as gconv_conf.c skips them.
    pub fn add(&mut self, text: &str) {
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or_default();
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["alias", from, to, ..] => {
                    self.aliases
                        .entry(from.to_ascii_uppercase())
                        .or_insert_with(|| to.to_ascii_uppercase());
                }
                ["module", from, to, file, ..] => {
                    let file = (*file).to_string();
                    for name in [from, to] {
                        let name = name.to_ascii_uppercase();
                        if name != "INTERNAL" {
                            self.modules.entry(name).or_default().insert(file.clone());
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// The module files (as gconv-modules names them: without `.so`,
    /// relative to the gconv directory unless absolute) that `charsets`
    /// need; a builtin charset needs none, an unknown one is an error.
    pub fn modules_for(&self, charsets: &[String]) -> Result<BTreeSet<String>, GconvError> {
        let mut out = BTreeSet::new();
        for given in charsets {
            let name = normalise_charset(given);
            let real = self.aliases.get(&name).unwrap_or(&name);
            match self.modules.get(real) {
                Some(files) => out.extend(files.iter().cloned()),
                None if BUILTIN.contains(&real.as_str()) => {}
                None => {
                    return Err(GconvError::Unknown {
                        name: given.clone(),
                    });
                }
            }
        }
        Ok(out)
    }
}

/// The file a module name refers to, relative to the gconv directory
/// (gconv_conf.c appends `.so`, and keeps absolute names as they are).
pub fn module_file(name: &str) -> String {
    format!("{name}.so")
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONF: &str = "\
# comment
alias\tISO-IR-100//\t\tISO-8859-1//
alias\tLATIN1//\t\tISO-8859-1//
module\tISO-8859-1//\t\tINTERNAL\t\tISO8859-1\t1
module\tINTERNAL\t\tISO-8859-1//\t\tISO8859-1\t1
module\tEUC-JP//\tINTERNAL\tEUC-JP\t1   # trailing comment
module\tbroken
";

    #[test]
    fn charsets_map_to_their_modules() {
        let mut c = Config::default();
        c.add(CONF);
        c.add("module\tUTF-16//\tINTERNAL\tUTF-16\t1\nalias UTF16// UTF-16//\n");
        let want = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        let cases: &[(&[&str], &[&str])] = &[
            (&["ISO-8859-1"], &["ISO8859-1"]),
            (&["latin1"], &["ISO8859-1"]),
            (&["iso-ir-100", "euc-jp"], &["EUC-JP", "ISO8859-1"]),
            (&["UTF-8", "utf8", "ASCII", "UCS-4LE"], &[]),
            (&["utf16"], &["UTF-16"]),
        ];
        for (names, files) in cases {
            let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
            assert_eq!(c.modules_for(&names).unwrap(), want(files), "{names:?}");
        }
        assert_eq!(
            c.modules_for(&["KLINGON".into()]).unwrap_err(),
            GconvError::Unknown {
                name: "KLINGON".into()
            }
        );
        assert_eq!(module_file("ISO8859-1"), "ISO8859-1.so");
    }

    #[test]
    fn names_are_normalised_as_glibc_compares_them() {
        assert_eq!(normalise_charset("utf-8"), "UTF-8//");
        assert_eq!(normalise_charset("ISO-10646/UTF8/"), "ISO-10646/UTF8/");
        assert_eq!(normalise_charset("internal"), "INTERNAL");
    }
}
