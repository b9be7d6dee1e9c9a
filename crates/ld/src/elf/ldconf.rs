//! Parses ld.so.conf text: directories and `include` globs, in order.
//! Used when a root has no ld.so.cache (a fresh sysroot before ldconfig).
//! Pure: expanding the globs against a root is the resolver's job.

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfLine {
    Dir(String),
    Include(String),
}

/// Lines in file order. Comments (`#`) and blank lines are dropped; a line
/// may hold several directories separated by whitespace, `:` or `,`, as
/// ldconfig accepts. `hwcap` lines are obsolete and ignored.
pub fn parse(text: &str) -> Vec<ConfLine> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        match words.next() {
            Some("include") => out.extend(words.map(|w| ConfLine::Include(w.to_string()))),
            Some("hwcap") => {}
            _ => out.extend(
                line.split(|c: char| c.is_whitespace() || c == ':' || c == ',')
                    .filter(|w| !w.is_empty())
                    .map(|w| ConfLine::Dir(without_trailing_slashes(w).to_string())),
            ),
        }
    }
    out
}

/// `/usr/lib/` → `/usr/lib`, but `/` (or `//`) stays `/`, as ldconfig's
/// add_dir_1 trims ("except when it's the root dir"): an empty name would
/// be a relative directory.
fn without_trailing_slashes(dir: &str) -> &str {
    match dir.trim_end_matches('/') {
        "" if dir.starts_with('/') => "/",
        trimmed => trimmed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dirs_includes_and_comments() {
        let text = "# libc default configuration\n/usr/local/lib\ninclude /etc/ld.so.conf.d/*.conf\n\n/opt/a:/opt/b/ # trailing\nhwcap 0 nosegneg\n";
        assert_eq!(
            parse(text),
            vec![
                ConfLine::Dir("/usr/local/lib".into()),
                ConfLine::Include("/etc/ld.so.conf.d/*.conf".into()),
                ConfLine::Dir("/opt/a".into()),
                ConfLine::Dir("/opt/b".into()),
            ]
        );
    }

    /// Found by fuzz/ (ld_conf): `/` became the empty, relative directory.
    #[test]
    fn the_root_directory_keeps_its_slash() {
        assert_eq!(
            parse("/\n//\n/usr/lib//\n"),
            vec![
                ConfLine::Dir("/".into()),
                ConfLine::Dir("/".into()),
                ConfLine::Dir("/usr/lib".into()),
            ]
        );
    }
}
