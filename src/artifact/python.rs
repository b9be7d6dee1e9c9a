//! Python: an interpreter of the root with its standard library, and
//! `--from-venv VENV` (the interpreter its pyvenv.cfg names, plus the venv
//! at its own absolute path, since venvs are not relocatable).
//!
//! Left out of the standard library unless `full_stdlib`: `test/`,
//! `idlelib/`, `config-*/` (the static libpython for building
//! extensions), `__pycache__` (bytecode is rebuilt from sources whose
//! mtimes the image fixes, so shipped .pyc files would be stale anyway)
//! and the base interpreter's own site-packages (which a venv made with
//! `--system-site-packages` does get, in the dependencies layer).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::resolve::Located;
use crate::rootfs::{ImagePath, LayerKind};

use super::binary::{add_root_program, lookup_program};
use super::dir::{Exclude, Links, add_dir};
use super::{ArtifactError, Assembly};

/// `config-X.Y-<triplet>` holds the static libpython and Makefile for
/// building extensions, not for running them.
const STDLIB_EXCLUDE: &[&str] = &[
    "test",
    "idlelib",
    "__pycache__",
    "site-packages",
    "dist-packages",
    "config-*",
];

/// Links `bin/python -> python3 -> /usr/bin/python3` followed inside a
/// venv before giving up (a loop).
const MAX_VENV_LINKS: usize = 16;

/// A venv as read from disk.
#[derive(Clone, Debug)]
pub struct Venv {
    /// The venv directory (absolute, symlinks resolved).
    pub dir: PathBuf,
    pub cfg: BTreeMap<String, String>,
}

impl Venv {
    pub fn open(dir: &Path) -> Result<Venv, ArtifactError> {
        let dir = std::fs::canonicalize(dir).map_err(|e| ArtifactError::io(dir, e))?;
        let cfg_path = dir.join("pyvenv.cfg");
        let text = crate::bounded::read_to_string(&cfg_path, crate::bounded::TEXT_LIMIT).map_err(|e| {
            ArtifactError::invalid(
                dir.display(),
                format!(
                    "not a Python virtual environment ({}: {e}); create one with python3 -m venv",
                    cfg_path.display()
                ),
            )
        })?;
        let cfg = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        Ok(Venv { dir, cfg })
    }

    /// The interpreter the venv runs, as a path of the root: `bin/python`'s
    /// links followed while they stay in the venv, up to the first
    /// absolute one (`/usr/bin/python3`), which the caller resolves inside
    /// the root. Following it on the host instead would read this
    /// machine's `/usr` even with `--sysroot`, and pick the host's Python
    /// version. Without the link, `home`/python3.
    pub fn interpreter(&self) -> Result<PathBuf, ArtifactError> {
        let mut link = self.dir.join("bin/python");
        for _ in 0..MAX_VENV_LINKS {
            let Ok(target) = std::fs::read_link(&link) else {
                break;
            };
            if target.is_absolute() {
                return Ok(target);
            }
            let next =
                crate::image_path::normalise(&link.parent().unwrap_or(&self.dir).join(&target));
            if !next.starts_with(&self.dir) {
                // A relative link out of the venv leads to the host.
                return std::fs::canonicalize(&link).map_err(|e| ArtifactError::io(&link, e));
            }
            link = next;
        }
        if link.is_file() && std::fs::read_link(&link).is_err() {
            return Ok(link);
        }
        let home = self.cfg.get("home").ok_or_else(|| {
            ArtifactError::invalid(self.dir.join("pyvenv.cfg").display(), "has no home = line")
        })?;
        Ok(Path::new(home).join("python3"))
    }

    pub fn image_dir(&self) -> Result<ImagePath, ArtifactError> {
        Ok(ImagePath::new(&self.dir)?)
    }
}

/// An interpreter (an image path in the root) and its standard library
/// in the runtime layer.
pub fn add_python(
    asm: &mut Assembly,
    interpreter: &Located,
    full_stdlib: bool,
    origin: &str,
) -> Result<(), ArtifactError> {
    add_python_base(asm, interpreter, full_stdlib, origin)?;
    Ok(())
}

/// Where an interpreter's installation lives: PREFIX and `X.Y`.
#[derive(Clone, Debug)]
struct Base {
    prefix: PathBuf,
    version: String,
}

impl Base {
    /// The system site-packages a venv with include-system-site-packages
    /// sees: CPython's own and Debian's (site.py's list for each prefix).
    fn site_dirs(&self) -> Vec<PathBuf> {
        let v = &self.version;
        vec![
            self.prefix.join(format!("lib/python{v}/site-packages")),
            self.prefix
                .join(format!("local/lib/python{v}/dist-packages")),
            self.prefix.join("lib/python3/dist-packages"),
            self.prefix.join(format!("lib/python{v}/dist-packages")),
        ]
    }
}

fn add_python_base(
    asm: &mut Assembly,
    interpreter: &Located,
    full_stdlib: bool,
    origin: &str,
) -> Result<Base, ArtifactError> {
    add_root_program(asm, interpreter, LayerKind::Runtime, origin)?;
    let real = interpreter.real.clone();
    let version = python_version(&real).ok_or_else(|| {
        ArtifactError::invalid(
            real.display(),
            "cannot tell the Python version from the interpreter's name (expected pythonX.Y)",
        )
    })?;
    // CPython finds its prefix from the executable: PREFIX/bin/pythonX.Y
    // has its library in PREFIX/lib/pythonX.Y.
    let prefix = real
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("/"));
    let stdlib = prefix.join("lib").join(format!("python{version}"));
    let Some(found) = asm
        .resolver
        .root()
        .lookup_dir(&stdlib)
        .map_err(crate::resolve::ResolveError::from)?
    else {
        return Err(ArtifactError::invalid(
            stdlib.display(),
            format!("the standard library of {} is missing", real.display()),
        ));
    };
    let host = asm.resolver.root().host(&found.real);
    let exclude = if full_stdlib {
        Exclude::new(["__pycache__"])
    } else {
        Exclude::new(STDLIB_EXCLUDE.iter().copied())
    };
    let runtime = |_: &Path| LayerKind::Runtime;
    add_dir(
        asm,
        &host,
        &ImagePath::new(&found.real)?,
        &runtime,
        &exclude,
        Links::Runtime,
        origin,
    )?;
    let prefix = prefix.to_path_buf();
    Ok(Base { prefix, version })
}

/// `pythonX.Y` → `X.Y`.
fn python_version(interpreter: &Path) -> Option<String> {
    let name = interpreter.file_name()?.to_str()?;
    let v = name.strip_prefix("python")?;
    let mut parts = v.split('.');
    let (major, minor) = (parts.next()?, parts.next()?);
    (major.parse::<u32>().is_ok() && minor.parse::<u32>().is_ok())
        .then(|| format!("{major}.{minor}"))
}

/// `--from-venv`: the interpreter and stdlib (runtime layer), the venv
/// (dependencies layer). Returns the venv's python for the entrypoint.
/// The venv is the user's tree: `links` says what its links out bring.
pub fn add_venv(
    asm: &mut Assembly,
    venv: &Venv,
    full_stdlib: bool,
    links: Links,
) -> Result<ImagePath, ArtifactError> {
    let origin = format!("--from-venv {}", venv.dir.display());
    let interpreter = lookup_program(asm, &venv.interpreter()?)?;
    let base = add_python_base(asm, &interpreter, full_stdlib, &origin)?;
    let deps = |_: &Path| LayerKind::Deps;
    if venv
        .cfg
        .get("include-system-site-packages")
        .is_some_and(|v| v == "true")
    {
        // The venv sees the base interpreter's packages too: bring them.
        for dir in base.site_dirs() {
            let found = asm
                .resolver
                .root()
                .lookup_dir(&dir)
                .map_err(crate::resolve::ResolveError::from)?;
            if let Some(found) = found {
                let host = asm.resolver.root().host(&found.real);
                let image = ImagePath::new(&found.real)?;
                let why = format!("{origin} (include-system-site-packages)");
                add_dir(
                    asm,
                    &host,
                    &image,
                    &deps,
                    &Exclude::new(["__pycache__"]),
                    Links::Runtime,
                    &why,
                )?;
            }
        }
    }
    add_dir(
        asm,
        &venv.dir,
        &venv.image_dir()?,
        &deps,
        &Exclude::new(["__pycache__"]),
        links,
        &origin,
    )?;
    Ok(venv.image_dir()?.join("bin/python")?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_from_name() {
        assert_eq!(
            python_version(Path::new("/usr/bin/python3.11")).as_deref(),
            Some("3.11")
        );
        assert_eq!(
            python_version(Path::new("/x/python3.12")).as_deref(),
            Some("3.12")
        );
        assert_eq!(python_version(Path::new("/usr/bin/python3")), None);
    }
}
