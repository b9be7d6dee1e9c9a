//! The validated build plan: everything the CLI, profiles and environment
//! decided, in types the library trusts. Nothing below reads flags or the
//! environment; SOURCE_DATE_EPOCH arrives here as `epoch`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crate::artifact::binary::BinarySpec;
use crate::rootfs::certs::CaCerts;
use crate::rootfs::tzdata::Tzdata;

#[derive(Clone, Debug)]
pub struct BuildPlan {
    pub binaries: Vec<BinarySpec>,
    /// The OCI layout directory to write (or add to).
    pub output: PathBuf,
    /// `org.opencontainers.image.ref.name` values, e.g. `app:latest`.
    pub tags: Vec<String>,
    pub config: ConfigPlan,
    pub ca_certs: CaCerts,
    pub extra_cas: Vec<PathBuf>,
    pub tzdata: Tzdata,
    /// Where libraries, certificates and time zones come from.
    pub sysroot: PathBuf,
    /// SOURCE_DATE_EPOCH: the image's `created` and every file's mtime.
    pub epoch: u64,
    /// Compression threads; the output does not depend on it.
    pub threads: usize,
}

/// The image config as the user asked for it.
#[derive(Clone, Debug, Default)]
pub struct ConfigPlan {
    /// `None`: the first binary.
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Vec<String>,
    /// In order; a later value for a name replaces the earlier one.
    pub env: Vec<(String, String)>,
    pub workdir: Option<String>,
    pub user: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub expose: BTreeSet<String>,
}

impl ConfigPlan {
    /// The value of an environment variable the user set.
    pub fn env_var(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}
