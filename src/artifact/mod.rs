//! Artifacts: the things users hand mkimage (binaries, for now). Each adds
//! entries to the layer trees, with every native dependency it needs.

pub mod binary;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::resolve::{Missing, ResolveError, Resolver};
use crate::rootfs::{LayerSet, PathError, RootfsError};

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    Path(#[from] PathError),
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is a directory; use --from-dir for directories")]
    Directory { path: PathBuf },
    #[error("{}", missing_message(.missing))]
    NotFound { missing: Vec<Missing> },
    #[error(
        "{path} is built for {found}, but the image is for {expected}; one image holds one architecture"
    )]
    MixedArch {
        path: PathBuf,
        found: String,
        expected: String,
    },
}

fn missing_message(missing: &[Missing]) -> String {
    let mut s = format!(
        "{} shared librar{} not found:",
        missing.len(),
        if missing.len() == 1 { "y" } else { "ies" }
    );
    for m in missing {
        s.push_str("\n  ");
        s.push_str(&m.to_string().replace('\n', "\n  "));
    }
    s.push_str("\nInstall the package that provides it, add its directory with --sysroot or LD_LIBRARY_PATH (--env), or add the file with --include.");
    s
}

/// What artifacts add to: the layer trees, the resolver (shared so ELF
/// headers are read once), warnings for the user, and where every file
/// came from.
pub struct Context {
    pub resolver: Resolver,
    pub layers: LayerSet,
    pub warnings: Vec<String>,
    /// Image path → why it is in the image (for `mkimage inspect --why`).
    pub provenance: BTreeMap<String, String>,
}

impl Context {
    pub fn new(resolver: Resolver) -> Self {
        Context {
            resolver,
            layers: LayerSet::default(),
            warnings: Vec::new(),
            provenance: BTreeMap::new(),
        }
    }

    pub fn record(&mut self, path: impl ToString, why: impl Into<String>) {
        self.provenance
            .entry(path.to_string())
            .or_insert_with(|| why.into());
    }
}
