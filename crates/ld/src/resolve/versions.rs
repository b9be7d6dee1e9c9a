//! The symbol-version check glibc's loader makes before running anything
//! (dl-version.c, `_dl_check_map_versions`): every version an object
//! needs from a library (DT_VERNEED, e.g. `GLIBC_2.34`) must be defined
//! by the library that serves that name in the closure (DT_VERDEF). A
//! program built on a newer distribution than the root it is packaged
//! with fails here with "version `GLIBC_2.34' not found"; mkimage says so
//! at build time instead.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use super::{Closure, Object, Resolver};
use crate::elf::ElfError;

/// One version an object needs that the library serving it lacks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionMissing {
    /// The image path of the object that needs it.
    pub needed_by: PathBuf,
    /// The name it is needed from (`vn_file`, a DT_NEEDED name).
    pub library: OsString,
    /// The image path of the library the loader will use for that name.
    pub library_path: PathBuf,
    /// The host file of that library (a root's, or an image's).
    pub library_host: PathBuf,
    pub version: String,
    /// What the library defines, sorted.
    pub available: Vec<String>,
}

impl fmt::Display for VersionMissing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "version {} of {} not found (needed by {}): {} ({}) defines only {}",
            self.version,
            self.library.to_string_lossy(),
            self.needed_by.display(),
            self.library_path.display(),
            self.library_host.display(),
            self.available.join(", ")
        )
    }
}

/// Whether the loader would take `o` for the name `name`: its requested
/// name or its soname (`_dl_name_match_p`).
fn serves(o: &Object, name: &OsStr) -> bool {
    o.name == name || o.info.soname.as_deref() == Some(name)
}

/// Every needed version the closure's libraries do not define, in load
/// order. A library without version definitions is not checked (the
/// loader only warns), nor are weak references (VER_FLG_WEAK) or names
/// the closure lacks (reported as missing libraries).
pub fn check(
    r: &mut Resolver,
    closure: &Closure,
) -> Result<Vec<VersionMissing>, std::sync::Arc<ElfError>> {
    let mut out = Vec::new();
    for o in &closure.objects {
        if o.info.is_static() {
            continue;
        }
        let versions = r.versions(&o.host)?;
        for need in &versions.needs {
            let name = OsStr::from_bytes(&need.file);
            let Some(lib) = closure.objects.iter().find(|l| serves(l, name)) else {
                continue;
            };
            let defs = r.versions(&lib.host)?;
            let Some(defines) = &defs.defines else {
                continue;
            };
            for v in need.versions.iter().filter(|v| !v.weak) {
                if !defines.contains(&v.name) {
                    out.push(VersionMissing {
                        needed_by: o.path.clone(),
                        library: name.to_os_string(),
                        library_path: lib.real.clone(),
                        library_host: lib.host.clone(),
                        version: String::from_utf8_lossy(&v.name).into_owned(),
                        available: defines
                            .iter()
                            .map(|d| String::from_utf8_lossy(d).into_owned())
                            .collect(),
                    });
                }
            }
        }
    }
    Ok(out)
}
