//! How a user names an image to read, skopeo's transports in mkimage's
//! words:
//!
//! | written                                   | read as                          |
//! |-------------------------------------------|----------------------------------|
//! | `DIR[:TAG]`, `oci:DIR[:TAG]`              | an OCI image layout directory    |
//! | `FILE[:TAG]`                              | an archive, its kind sniffed     |
//! | `oci-archive:FILE[:TAG]`                  | a tar of a layout                |
//! | `docker-archive:FILE[:REF]`               | what `docker save` writes        |
//! | `docker://HOST[:PORT]/REPO[:TAG\|@DIGEST]` | a registry (distribution API)    |
//!
//! Paths may contain colons: the path is the longest prefix before a `:`
//! that exists ([`split_path`]), the rest is the tag. `docker://` names
//! are parsed by [`crate::reference`], docker's own grammar.

use std::fmt;
use std::path::{Path, PathBuf};

use super::SourceError;
use crate::reference::Reference;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceRef {
    Layout {
        dir: PathBuf,
        tag: Option<String>,
    },
    OciArchive {
        file: PathBuf,
        tag: Option<String>,
    },
    DockerArchive {
        file: PathBuf,
        reference: Option<String>,
    },
    /// A bare file name: an oci-archive or a docker-archive, whichever it
    /// holds.
    Archive {
        file: PathBuf,
        tag: Option<String>,
    },
    Registry(Reference),
}

const OCI: &str = "oci:";
const OCI_ARCHIVE: &str = "oci-archive:";
const DOCKER_ARCHIVE: &str = "docker-archive:";
const DOCKER: &str = "docker://";

impl SourceRef {
    /// Parses `input` (see the module's table). A path must exist; a
    /// registry reference is only parsed, not contacted.
    pub fn parse(input: &str) -> Result<SourceRef, SourceError> {
        if let Some(rest) = input.strip_prefix(DOCKER) {
            return Ok(SourceRef::Registry(Reference::parse(rest)?));
        }
        if let Some(rest) = input.strip_prefix(OCI_ARCHIVE) {
            let (file, tag) = split_path(rest)?;
            return Ok(SourceRef::OciArchive { file, tag });
        }
        if let Some(rest) = input.strip_prefix(DOCKER_ARCHIVE) {
            let (file, reference) = split_path(rest)?;
            return Ok(SourceRef::DockerArchive { file, reference });
        }
        // A layout directory literally named `oci:x` wins over the prefix.
        let rest = match input.strip_prefix(OCI) {
            Some(rest) if !Path::new(input).exists() => rest,
            _ => input,
        };
        let explicit = rest.len() != input.len();
        let (path, tag) = split_path(rest)?;
        if path.is_dir() || explicit {
            Ok(SourceRef::Layout { dir: path, tag })
        } else {
            Ok(SourceRef::Archive { file: path, tag })
        }
    }
}

/// Splits `PATH[:TAG]`: the one rule for every argument that names a path
/// and, maybe, a tag in it (`inspect`, `push`, `--base`, `--copy-from`,
/// `--diff`), so a directory named `a:b` works, and so does `a:b:tag`:
///
/// 1. the whole argument, when that path exists (no tag);
/// 2. else the longest prefix before a `:` that exists is the path and
///    the rest the tag (`a:b:app:v1` with `a:b` there: tag `app:v1`;
///    nothing after the `:` is no tag);
/// 3. else [`SourceError::NotFound`], naming the argument as written.
///
/// An empty argument is [`SourceError::BadSource`].
pub fn split_path(input: &str) -> Result<(PathBuf, Option<String>), SourceError> {
    if input.is_empty() {
        return Err(SourceError::BadSource {
            input: input.to_owned(),
            reason: "no path".into(),
        });
    }
    if Path::new(input).exists() {
        return Ok((PathBuf::from(input), None));
    }
    let colons: Vec<usize> = input.match_indices(':').map(|(i, _)| i).collect();
    for &i in colons.iter().rev() {
        let path = &input[..i];
        if !path.is_empty() && Path::new(path).exists() {
            let tag = &input[i + 1..];
            return Ok((
                PathBuf::from(path),
                (!tag.is_empty()).then(|| tag.to_owned()),
            ));
        }
    }
    Err(SourceError::NotFound {
        input: input.to_owned(),
    })
}

impl fmt::Display for SourceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let with_tag = |f: &mut fmt::Formatter<'_>, prefix: &str, p: &Path, t: &Option<String>| {
            write!(f, "{prefix}{}", p.display())?;
            match t {
                Some(t) => write!(f, ":{t}"),
                None => Ok(()),
            }
        };
        match self {
            SourceRef::Layout { dir, tag } => with_tag(f, "", dir, tag),
            SourceRef::Archive { file, tag } => with_tag(f, "", file, tag),
            SourceRef::OciArchive { file, tag } => with_tag(f, OCI_ARCHIVE, file, tag),
            SourceRef::DockerArchive { file, reference } => {
                with_tag(f, DOCKER_ARCHIVE, file, reference)
            }
            SourceRef::Registry(r) => write!(f, "{DOCKER}{r}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_with_colons_and_prefixes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a:b");
        std::fs::create_dir(&dir).unwrap();
        let file = tmp.path().join("img:1.tar");
        std::fs::write(&file, b"").unwrap();
        let d = dir.to_str().unwrap();
        let f = file.to_str().unwrap();
        let layout = |dir: &Path, tag: Option<&str>| SourceRef::Layout {
            dir: dir.to_path_buf(),
            tag: tag.map(str::to_owned),
        };
        assert_eq!(SourceRef::parse(d).unwrap(), layout(&dir, None));
        assert_eq!(
            SourceRef::parse(&format!("{d}:app:v1")).unwrap(),
            layout(&dir, Some("app:v1"))
        );
        assert_eq!(
            SourceRef::parse(&format!("oci:{d}:v1")).unwrap(),
            layout(&dir, Some("v1"))
        );
        assert_eq!(
            SourceRef::parse(&format!("{f}:x")).unwrap(),
            SourceRef::Archive {
                file: file.clone(),
                tag: Some("x".into())
            }
        );
        assert_eq!(
            SourceRef::parse(&format!("oci-archive:{f}")).unwrap(),
            SourceRef::OciArchive {
                file: file.clone(),
                tag: None
            }
        );
        assert_eq!(
            SourceRef::parse(&format!("docker-archive:{f}:app:latest")).unwrap(),
            SourceRef::DockerArchive {
                file: file.clone(),
                reference: Some("app:latest".into())
            }
        );
        let r = SourceRef::parse("docker://127.0.0.1:5000/team/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef").unwrap();
        let SourceRef::Registry(r) = &r else {
            panic!("{r:?}")
        };
        assert_eq!(
            (r.registry(), r.repository()),
            ("127.0.0.1:5000", "team/app")
        );
        assert!(r.digest().is_some());
        // Written back, each parses to itself.
        for s in [format!("{d}:v1"), format!("docker-archive:{f}:app:latest")] {
            let parsed = SourceRef::parse(&s).unwrap();
            assert_eq!(
                SourceRef::parse(&parsed.to_string()).unwrap(),
                parsed,
                "{s}"
            );
        }
    }

    /// The rule of [`split_path`], step by step, with colons in names.
    #[test]
    fn split_path_takes_the_whole_then_the_longest_existing_prefix() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().to_str().unwrap();
        for dir in ["a", "a:b", "app.oci"] {
            std::fs::create_dir(tmp.path().join(dir)).unwrap();
        }
        let split = |s: &str| split_path(&format!("{base}/{s}")).map_err(|e| e.to_string());
        let ok = |dir: &str, tag: Option<&str>| Ok((tmp.path().join(dir), tag.map(str::to_owned)));
        // 1. The whole argument, when it exists, though `a` does too.
        assert_eq!(split("a:b"), ok("a:b", None));
        // 2. The longest existing prefix: `a:b`, not `a`.
        assert_eq!(split("a:b:v1"), ok("a:b", Some("v1")));
        assert_eq!(split("a:b:app:latest"), ok("a:b", Some("app:latest")));
        assert_eq!(split("a:c"), ok("a", Some("c")));
        assert_eq!(
            split("app.oci:app:latest"),
            ok("app.oci", Some("app:latest"))
        );
        assert_eq!(split("app.oci:"), ok("app.oci", None));
        // 3. Nothing of it exists: an error naming the argument.
        let missing = format!("{base}/missing.oci:v1");
        assert_eq!(
            split("missing.oci:v1"),
            Err(format!("{missing}: no such file or directory"))
        );
        assert!(matches!(
            split_path(":v1"),
            Err(SourceError::NotFound { input }) if input == ":v1"
        ));
        assert!(matches!(split_path(""), Err(SourceError::BadSource { .. })));
    }

    #[test]
    fn missing_paths_and_bad_references() {
        assert!(matches!(
            SourceRef::parse("/no/such/dir:tag"),
            Err(SourceError::NotFound { input }) if input == "/no/such/dir:tag"
        ));
        assert!(matches!(
            SourceRef::parse("docker-archive:/no/such.tar"),
            Err(SourceError::NotFound { .. })
        ));
        assert!(matches!(
            SourceRef::parse("docker://Bad/Repo"),
            Err(SourceError::Reference(_))
        ));
        assert!(matches!(
            SourceRef::parse(""),
            Err(SourceError::BadSource { .. })
        ));
    }
}
