//! A Debian package's licenses, from its machine-readable copyright file
//! (DEP-5, "copyright-format/1.0"), as an SPDX license expression. Pure:
//! the caller reads `/usr/share/doc/<package>/copyright` from the root.
//!
//! Only files that declare the format are read, and only when every
//! `License:` short name maps to an SPDX identifier: a guess would be a
//! wrong record, so anything else is `None` (NOASSERTION in the SBOM).

use std::collections::BTreeSet;

use super::deb822;

/// How a DEP-5 file's `Format:` names the specification (the final URL,
/// and the draft's, which older packages still carry).
const FORMATS: &[&str] = &["copyright-format/1.0", "dep.debian.net/deps/dep5"];

/// DEP-5 short names (copyright-format 1.0, "License short name") and
/// their SPDX identifiers, matched case-insensitively; `+` means "or
/// later". Names already spelled as SPDX ids (Apache-2.0, MIT, Zlib, …)
/// pass through [`SPDX_IDS`].
const DEP5_TO_SPDX: &[(&str, &str)] = &[
    ("expat", "MIT"),
    ("gpl-1", "GPL-1.0-only"),
    ("gpl-1+", "GPL-1.0-or-later"),
    ("gpl-2", "GPL-2.0-only"),
    ("gpl-2+", "GPL-2.0-or-later"),
    ("gpl-3", "GPL-3.0-only"),
    ("gpl-3+", "GPL-3.0-or-later"),
    ("lgpl-2", "LGPL-2.0-only"),
    ("lgpl-2+", "LGPL-2.0-or-later"),
    ("lgpl-2.1", "LGPL-2.1-only"),
    ("lgpl-2.1+", "LGPL-2.1-or-later"),
    ("lgpl-3", "LGPL-3.0-only"),
    ("lgpl-3+", "LGPL-3.0-or-later"),
    ("agpl-3", "AGPL-3.0-only"),
    ("agpl-3+", "AGPL-3.0-or-later"),
    ("gfdl-1.2", "GFDL-1.2-only"),
    ("gfdl-1.2+", "GFDL-1.2-or-later"),
    ("gfdl-1.3", "GFDL-1.3-only"),
    ("gfdl-1.3+", "GFDL-1.3-or-later"),
    ("bsd-2-clause", "BSD-2-Clause"),
    ("bsd-3-clause", "BSD-3-Clause"),
    ("bsd-4-clause", "BSD-4-Clause"),
    ("mpl-1.1", "MPL-1.1"),
    ("mpl-2.0", "MPL-2.0"),
    ("apache-2.0", "Apache-2.0"),
    ("artistic", "Artistic-1.0-Perl"),
    ("artistic-2.0", "Artistic-2.0"),
    ("cc0-1.0", "CC0-1.0"),
    ("isc", "ISC"),
    ("zlib", "Zlib"),
    ("psf-2", "PSF-2.0"),
    ("python-2.0", "Python-2.0"),
    ("ofl-1.1", "OFL-1.1"),
    ("unicode-dfs-2016", "Unicode-DFS-2016"),
    ("curl", "curl"),
    ("openssl", "OpenSSL"),
    ("x11", "X11"),
    ("mit", "MIT"),
    ("epl-1.0", "EPL-1.0"),
    ("epl-2.0", "EPL-2.0"),
    ("bsl-1.0", "BSL-1.0"),
    ("wtfpl", "WTFPL"),
    ("unlicense", "Unlicense"),
    ("libpng", "Libpng"),
    ("libpng-2.0", "libpng-2.0"),
    ("ijg", "IJG"),
    ("ftl", "FTL"),
    ("0bsd", "0BSD"),
];

/// Exception names after `with` (SPDX exceptions list) that DEP-5 files
/// write as `with <name> exception`.
const EXCEPTIONS: &[(&str, &str)] = &[
    ("openssl", "openvpn-openssl-exception"),
    ("classpath", "Classpath-exception-2.0"),
    ("gcc", "GCC-exception-3.1"),
    ("autoconf", "Autoconf-exception-3.0"),
    ("bison", "Bison-exception-2.2"),
    ("font", "Font-exception-2.0"),
];

/// The SPDX ids themselves that may appear as written.
const SPDX_IDS: &[&str] = &[
    "Apache-2.0",
    "MIT",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "ISC",
    "Zlib",
    "MPL-2.0",
    "CC0-1.0",
    "GPL-2.0-only",
    "GPL-2.0-or-later",
    "GPL-3.0-only",
    "GPL-3.0-or-later",
    "LGPL-2.1-only",
    "LGPL-2.1-or-later",
    "LGPL-3.0-or-later",
];

/// The licenses of a DEP-5 copyright file, ANDed (each file of a package
/// is under its own stanza's terms), or `None` when the file is not
/// DEP-5 or names a license this table does not know.
pub fn spdx_expression(text: &str) -> Option<String> {
    let stanzas = deb822::parse(text).ok()?;
    let header = stanzas.first()?;
    let format = header.first_line("Format")?.to_ascii_lowercase();
    if !FORMATS.iter().any(|f| format.contains(f)) {
        return None;
    }
    let mut all = BTreeSet::new();
    for s in &stanzas {
        // Files stanzas (and the header's own License, when present) say
        // what applies; stand-alone License stanzas only spell out texts.
        if s.get("Files").is_none() && s.line != header.line {
            continue;
        }
        if let Some(l) = s.first_line("License") {
            all.insert(expression(l)?);
        }
    }
    if all.is_empty() {
        return None;
    }
    let parts: Vec<String> = all
        .iter()
        .map(|e| {
            if all.len() > 1 && (e.contains(" OR ") || e.contains(" AND ")) {
                format!("({e})")
            } else {
                e.clone()
            }
        })
        .collect();
    Some(parts.join(" AND "))
}

/// One `License:` line: short names joined by `or`, `and` or `,`
/// (copyright-format 1.0, "License specification"), each possibly `with
/// <name> exception`.
fn expression(line: &str) -> Option<String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = words[i].trim_end_matches(',');
        let op = match w.to_ascii_lowercase().as_str() {
            "or" => Some("OR"),
            "and" => Some("AND"),
            _ => None,
        };
        if let Some(op) = op {
            if out.is_empty() || out.last().is_some_and(|l| l == "OR" || l == "AND") {
                return None;
            }
            out.push(op.to_owned());
            i += 1;
            continue;
        }
        if !out.is_empty() && !out.last().is_some_and(|l| l == "OR" || l == "AND") {
            // A comma list (`GPL-2+, LGPL-2+`) means AND.
            out.push("AND".to_owned());
        }
        let mut id = map(w)?;
        if words
            .get(i + 1)
            .is_some_and(|n| n.eq_ignore_ascii_case("with"))
        {
            let name = words.get(i + 2)?.to_ascii_lowercase();
            if !words
                .get(i + 3)
                .is_some_and(|e| e.trim_end_matches(',').eq_ignore_ascii_case("exception"))
            {
                return None;
            }
            let (_, exc) = EXCEPTIONS.iter().find(|(n, _)| *n == name)?;
            id = format!("{id} WITH {exc}");
            i += 3;
        }
        out.push(id);
        i += 1;
    }
    if out.is_empty() || out.last().is_some_and(|l| l == "OR" || l == "AND") {
        return None;
    }
    Some(out.join(" "))
}

/// A license as a language package declares it, when it is an SPDX
/// expression of identifiers this module knows (`MIT`, `Apache-2.0 OR
/// MIT`); free text (`BSD`, a whole license) is `None`, since SPDX
/// validators reject unknown identifiers.
pub fn spdx_license(declared: &str) -> Option<String> {
    let spaced = declared.replace('(', " ( ").replace(')', " ) ");
    let mut words = Vec::new();
    let mut depth = 0i32;
    let mut want_id = true;
    let mut after_with = false;
    for w in spaced.split_whitespace() {
        match w {
            "(" if want_id => depth += 1,
            ")" if !want_id => depth -= 1,
            "AND" | "OR" if !want_id => want_id = true,
            "WITH" if !want_id => {
                want_id = true;
                after_with = true;
            }
            id if want_id => {
                let known = if after_with {
                    EXCEPTIONS.iter().any(|(_, e)| *e == id)
                } else {
                    DEP5_TO_SPDX.iter().any(|(_, s)| *s == id) || SPDX_IDS.contains(&id)
                };
                if !known {
                    return None;
                }
                want_id = false;
                after_with = false;
            }
            _ => return None,
        }
        if depth < 0 {
            return None;
        }
        words.push(w);
    }
    (depth == 0 && !want_id).then(|| words.join(" ").replace("( ", "(").replace(" )", ")"))
}

fn map(short: &str) -> Option<String> {
    let lower = short.to_ascii_lowercase();
    if let Some((_, id)) = DEP5_TO_SPDX.iter().find(|(n, _)| *n == lower) {
        return Some((*id).to_owned());
    }
    SPDX_IDS
        .iter()
        .find(|id| id.eq_ignore_ascii_case(short))
        .map(|id| (*id).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str =
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n";

    #[test]
    fn dep5_files_map_to_spdx() {
        let cases = [
            ("Files: *\nLicense: Apache-2.0\n", Some("Apache-2.0")),
            (
                "Files: *\nLicense: GPL-2+\n\nFiles: lib/*\nLicense: LGPL-2.1+ or BSD-3-clause\n\nLicense: GPL-2+\n text\n",
                Some("GPL-2.0-or-later AND (LGPL-2.1-or-later OR BSD-3-Clause)"),
            ),
            ("Files: *\nLicense: Expat, ISC\n", Some("MIT AND ISC")),
            (
                "Files: *\nLicense: GPL-2+ with OpenSSL exception\n",
                Some("GPL-2.0-or-later WITH openvpn-openssl-exception"),
            ),
            ("Files: *\nLicense: public-domain\n", None),
            ("Files: *\nLicense: GPL-2+ or\n", None),
            ("Files: *\nCopyright: x\n", None),
        ];
        for (body, want) in cases {
            let text = format!("{HEADER}\n{body}");
            assert_eq!(spdx_expression(&text).as_deref(), want, "{body}");
        }
    }

    #[test]
    fn declared_licenses_pass_only_as_known_expressions() {
        assert_eq!(spdx_license("MIT").as_deref(), Some("MIT"));
        assert_eq!(
            spdx_license("(Apache-2.0 OR MIT) AND BSD-3-Clause").as_deref(),
            Some("(Apache-2.0 OR MIT) AND BSD-3-Clause")
        );
        for bad in ["BSD", "MIT OR", "(MIT", "Apache License 2.0", "", "MIT MIT"] {
            assert_eq!(spdx_license(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn free_form_files_are_not_guessed() {
        assert_eq!(
            spdx_expression("This is the Debian package of glibc.\n\nLicense: GPL-2\n"),
            None
        );
        assert_eq!(spdx_expression("Files: *\nLicense: MIT\n"), None);
    }
}
