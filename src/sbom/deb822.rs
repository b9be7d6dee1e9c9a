//! deb822 control data (deb822(5)): the format of dpkg's `status` file and
//! of DEP-5 copyright files. Stanzas are separated by blank lines; a field
//! is `Name: value`, continued on lines that start with a space or a tab.
//! Pure parsing: the caller reads the file and names it in errors.

/// One stanza: its fields in file order, names as written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stanza {
    /// The line the stanza starts on (1-based), for messages.
    pub line: usize,
    fields: Vec<(String, String)>,
}

/// Where a file stops being deb822.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {why}")]
pub struct SyntaxError {
    pub line: usize,
    pub why: &'static str,
}

impl Stanza {
    /// The value of field `name` (field names are case-insensitive,
    /// deb822(5)), continuation lines joined by `\n` as written.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first line of a field's value, trimmed.
    pub fn first_line(&self, name: &str) -> Option<&str> {
        self.get(name)
            .and_then(|v| v.lines().next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }

    pub fn fields(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The stanza as deb822 text, fields in their order, ending in `\n`.
    #[cfg(test)]
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for (name, value) in &self.fields {
            out.push_str(name);
            out.push(':');
            for (i, line) in value.split('\n').enumerate() {
                if i > 0 {
                    out.push('\n');
                }
                // A value that starts on the next line (Description's long
                // part, Conffiles) keeps its leading space as written.
                if i == 0 && !line.is_empty() {
                    out.push(' ');
                }
                out.push_str(line);
            }
            out.push('\n');
        }
        out
    }

    /// A stanza with only the fields in `keep` (in the stanza's order).
    #[cfg(test)]
    pub fn only(&self, keep: &[&str]) -> Stanza {
        Stanza {
            line: self.line,
            fields: self
                .fields
                .iter()
                .filter(|(n, _)| keep.iter().any(|k| n.eq_ignore_ascii_case(k)))
                .cloned()
                .collect(),
        }
    }
}

/// Parses every stanza of `text`. Comment lines (`#` in column one) are
/// skipped as deb822(5) allows; a line that is neither a field nor a
/// continuation, or a field named twice in one stanza, is an error, as
/// dpkg treats it.
pub fn parse(text: &str) -> Result<Vec<Stanza>, SyntaxError> {
    let mut out = Vec::new();
    let mut cur: Option<Stanza> = None;
    for (i, line) in text.split('\n').enumerate() {
        let n = i + 1;
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            if let Some(s) = cur.take() {
                out.push(s);
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            let Some((_, value)) = cur.as_mut().and_then(|s| s.fields.last_mut()) else {
                return Err(SyntaxError {
                    line: n,
                    why: "a continuation line with no field before it",
                });
            };
            value.push('\n');
            value.push_str(line);
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(SyntaxError {
                line: n,
                why: "neither `Field: value` nor a continuation line",
            });
        };
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(SyntaxError {
                line: n,
                why: "a field name is empty or has a space in it",
            });
        }
        let stanza = cur.get_or_insert_with(|| Stanza {
            line: n,
            fields: Vec::new(),
        });
        if stanza.get(name).is_some() {
            return Err(SyntaxError {
                line: n,
                why: "a field appears twice in one stanza",
            });
        }
        stanza
            .fields
            .push((name.to_owned(), value.trim().to_owned()));
    }
    if let Some(s) = cur {
        out.push(s);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stanzas_fields_and_continuations() {
        let text = "Package: a\nVersion: 1\nDescription: short\n long one\n .\n more\n\n\n# c\nPackage: b\r\nstatus: install ok installed\n";
        let s = parse(text).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].get("package"), Some("a"));
        assert_eq!(s[0].get("Description"), Some("short\n long one\n .\n more"));
        assert_eq!(s[0].first_line("Description"), Some("short"));
        assert_eq!(s[1].line, 10);
        assert_eq!(s[1].get("Status"), Some("install ok installed"));
        // Written back as read.
        assert_eq!(
            s[0].to_text(),
            "Package: a\nVersion: 1\nDescription: short\n long one\n .\n more\n"
        );
        assert_eq!(
            s[0].only(&["version", "package"]).to_text(),
            "Package: a\nVersion: 1\n"
        );
        let conf = parse("Conffiles:\n /etc/x 0123\n").unwrap();
        assert_eq!(conf[0].to_text(), "Conffiles:\n /etc/x 0123\n");
    }

    #[test]
    fn corrupt_input_names_the_line() {
        let cases = [
            ("Package: a\ngarbage line\n", 2),
            (" leading continuation\n", 1),
            ("Package: a\nPackage: b\n", 2),
            ("Package: a\n\n: no name\n", 3),
        ];
        for (text, line) in cases {
            let err = parse(text).unwrap_err();
            assert_eq!(err.line, line, "{text:?}: {err}");
        }
    }
}
