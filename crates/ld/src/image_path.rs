//! Paths inside an image, a root or an archive, and their lexical
//! normalisation: the one place that says what `.`, `//` and `..` mean
//! there. Lexical only: nothing here looks at a file system (a root's
//! symlinks are followed by the resolver and the file tree, which walk).
//!
//! The callers differ only in what `..` may do ([`Parent`]): the resolver
//! folds it as the kernel does at `/`, an archive reader folds it but
//! refuses to climb out of the archive, and the file tree refuses it.

use std::ffi::OsStr;
use std::path::{Component, Path, PathBuf};

/// What a `..` component does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parent {
    /// Removes the component before it; at the top it stays there, as the
    /// kernel resolves `/..` to `/`.
    Clamp,
    /// Removes the component before it; at the top the path is refused.
    Fold,
    /// Any `..` refuses the path.
    Reject,
}

/// The normal components of `p`, with `.`, empty components and a leading
/// `/` dropped and `..` treated as `parent` says; `None` for a refused path.
pub fn components(p: &Path, parent: Parent) -> Option<Vec<&OsStr>> {
    let mut out = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => match parent {
                Parent::Clamp => {
                    out.pop();
                }
                Parent::Fold => {
                    out.pop()?;
                }
                Parent::Reject => return None,
            },
            Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// `p` as an absolute path inside a root, `..` folded at `/` ([`Parent::Clamp`]):
/// `a/../../b` → `/b`. The kernel resolves `..` after symlinks; callers that
/// care walk the links first.
pub fn normalise(p: &Path) -> PathBuf {
    if is_normal(p) {
        return p.to_path_buf();
    }
    let mut out = PathBuf::from("/");
    out.extend(components(p, Parent::Clamp).unwrap_or_default());
    out
}

/// Whether `p` is already what [`normalise`] makes: `/`, or `/` and
/// components with no empty, `.` or `..` one and no trailing slash. Most
/// paths asked about are, and checking is cheaper than rebuilding.
fn is_normal(p: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let b = p.as_os_str().as_bytes();
    if b == b"/" {
        return true;
    }
    b.first() == Some(&b'/')
        && b[1..]
            .split(|&c| c == b'/')
            .all(|c| !c.is_empty() && c != b"." && c != b"..")
}

/// `p` as an absolute UTF-8 path, `/usr/lib` from `./usr/lib/`; `None` for a
/// path with `..` ([`Parent::Reject`]) or one that is not UTF-8.
pub fn absolute_str(p: &Path) -> Option<String> {
    let parts = components(p, Parent::Reject)?
        .into_iter()
        .map(OsStr::to_str)
        .collect::<Option<Vec<_>>>()?;
    Some(format!("/{}", parts.join("/")))
}

/// An archive member's name without `./`, `/` or `..`: `./a//b/` → `a/b`
/// ([`Parent::Fold`]). `None` for the root, or a name that climbs out of
/// the archive.
pub fn archive_member(name: &str) -> Option<String> {
    let parts = components(Path::new(name), Parent::Fold)?;
    if parts.is_empty() {
        return None;
    }
    // Components of a `&str` are UTF-8.
    let parts: Vec<&str> = parts.into_iter().filter_map(OsStr::to_str).collect();
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_folds_parents_at_the_root() {
        for (input, want) in [
            ("/usr/lib/../lib64", "/usr/lib64"),
            ("a/../../b", "/b"),
            ("//a/./b/", "/a/b"),
            ("/..", "/"),
            ("", "/"),
        ] {
            assert_eq!(normalise(Path::new(input)), Path::new(want), "{input}");
        }
    }

    #[test]
    fn paths_already_normal_are_kept_as_they_are() {
        // The shortcut must agree with the full fold on every shape.
        let slow = |p: &str| {
            let mut out = PathBuf::from("/");
            out.extend(components(Path::new(p), Parent::Clamp).unwrap_or_default());
            out
        };
        for input in [
            "/",
            "/a",
            "/a/b",
            "/a/.b",
            "/a/..b",
            "/a/b/",
            "//a",
            "/a//b",
            "/./a",
            "/a/.",
            "/a/..",
            "a",
            "",
            ".",
            "/..",
            "/a/b/../c",
            "/é/\u{1F600}",
        ] {
            assert_eq!(normalise(Path::new(input)), slow(input), "{input}");
            assert_eq!(
                is_normal(Path::new(input)),
                slow(input).as_os_str() == input,
                "{input}"
            );
        }
    }

    #[test]
    fn absolute_str_refuses_parents() {
        for (input, want) in [
            ("./usr/lib/", Some("/usr/lib")),
            ("/a//b", Some("/a/b")),
            ("./", Some("/")),
            ("a/../b", None),
        ] {
            assert_eq!(absolute_str(Path::new(input)).as_deref(), want, "{input}");
        }
    }

    #[test]
    fn archive_members_do_not_climb_out() {
        for (input, want) in [
            ("a/b", Some("a/b")),
            ("./a//b/", Some("a/b")),
            ("/a/./b", Some("a/b")),
            ("a/../b", Some("b")),
            ("..", None),
            ("a/../..", None),
            ("./", None),
        ] {
            assert_eq!(archive_member(input).as_deref(), want, "{input}");
        }
    }
}
