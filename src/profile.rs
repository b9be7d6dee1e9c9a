//! Runtime profiles: TOML files describing what a kind of program needs
//! (an interpreter or server binary, extra files, env, entrypoint). The
//! built-in ones are embedded from `profiles/`; a user's own file works the
//! same way. Parsing is strict: an unknown key is an error with its line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The profiles shipped in the binary: (name, TOML text).
pub const BUILTIN: &[(&str, &str)] = &[
    ("cc", include_str!("../profiles/cc.toml")),
    ("java", include_str!("../profiles/java.toml")),
    ("nginx", include_str!("../profiles/nginx.toml")),
    ("node", include_str!("../profiles/node.toml")),
    ("python", include_str!("../profiles/python.toml")),
    ("static", include_str!("../profiles/static.toml")),
];

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error(
        "unknown profile {name:?}; built-in profiles: {known} (or give a path to a .toml file)"
    )]
    Unknown { name: String, known: String },
    #[error("cannot read profile {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("profile {origin}: {message}")]
    Parse { origin: String, message: String },
}

/// Language runtimes that need more than a binary.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    /// python3 and its standard library.
    Python,
    /// A JDK/JRE (--java-home, JAVA_HOME or java on PATH).
    Java,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub description: String,
    pub runtime: Option<Runtime>,
    #[serde(default)]
    pub binary: Vec<BinaryRule>,
    #[serde(default)]
    pub tree: Vec<TreeRule>,
    #[serde(default)]
    pub file: Vec<FileRule>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub workdir: Option<String>,
    /// Libraries opened at run time (`--dlopen`).
    #[serde(default)]
    pub dlopen: Vec<String>,
    /// Directories the runtime user must be able to write (`--writable`).
    #[serde(default)]
    pub writable: Vec<String>,
    #[serde(default)]
    pub expose: Vec<String>,
}

/// A program to add: the first candidate found in the root. A bare name
/// is looked up on the image's PATH directories in the root.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BinaryRule {
    pub find: Vec<String>,
    /// Where to put it [default: where it was found, symlinks and all].
    pub dst: Option<String>,
}

/// A directory of the root to add, minus `exclude` (paths relative to
/// `src`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TreeRule {
    pub src: String,
    pub dst: Option<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
    #[serde(default)]
    pub optional: bool,
}

/// One file: copied from the root (`src`) or written (`content`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileRule {
    pub dst: String,
    pub src: Option<String>,
    pub content: Option<String>,
    #[serde(default)]
    pub optional: bool,
}

/// Loads a built-in profile by name, or a file by path (anything with a
/// `/` or ending in `.toml`).
pub fn load(name_or_path: &str) -> Result<Profile, ProfileError> {
    if name_or_path.contains('/') || name_or_path.ends_with(".toml") {
        let path = Path::new(name_or_path);
        let text =
            crate::bounded::read_to_string(path, crate::bounded::TEXT_LIMIT).map_err(|source| {
                ProfileError::Io {
                    path: path.to_path_buf(),
                    source,
                }
            })?;
        return parse(&text, &path.display().to_string());
    }
    let (_, text) = BUILTIN
        .iter()
        .find(|(n, _)| *n == name_or_path)
        .ok_or_else(|| ProfileError::Unknown {
            name: name_or_path.to_string(),
            known: BUILTIN
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    parse(text, &format!("{name_or_path} (built in)"))
}

/// Parses profile TOML; `origin` names it in errors, which carry the line.
pub fn parse(text: &str, origin: &str) -> Result<Profile, ProfileError> {
    let profile: Profile = toml::from_str(text).map_err(|e| ProfileError::Parse {
        origin: origin.to_string(),
        message: e.to_string().trim_end().to_string(),
    })?;
    for f in &profile.file {
        if f.src.is_some() == f.content.is_some() {
            return Err(ProfileError::Parse {
                origin: origin.to_string(),
                message: format!("[[file]] {}: give exactly one of src and content", f.dst),
            });
        }
    }
    Ok(profile)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_profile_parses() {
        for (name, _) in BUILTIN {
            let p = load(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!p.description.is_empty(), "{name}");
        }
        assert_eq!(load("java").unwrap().runtime, Some(Runtime::Java));
        let nginx = load("nginx").unwrap();
        assert_eq!(nginx.expose, ["8080/tcp"]);
        assert!(nginx.file.iter().any(|f| f.dst == "/etc/nginx/nginx.conf"));
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let err = parse("description = \"x\"\nbogus = 1\n", "my.toml").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("my.toml") && msg.contains("line 2") && msg.contains("bogus"),
            "{msg}"
        );
        let err = parse("description = 5\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 1"), "{err}");
        let err = parse("description = \"x\"\n[[file]]\ndst = \"/a\"\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("exactly one of src and content"), "{err}");
        let err = load("nope").unwrap_err().to_string();
        assert!(
            err.contains("cc, java, nginx, node, python, static"),
            "{err}"
        );
    }
}
