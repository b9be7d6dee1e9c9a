//! The validated build plan: everything the CLI, profiles and environment
//! decided, in types the library trusts. Nothing below reads flags or the
//! environment; SOURCE_DATE_EPOCH arrives here as `epoch`.

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroUsize;
use std::path::PathBuf;

use std::ffi::OsString;

use crate::base_files::certs::CaCerts;
use crate::base_files::tzdata::Tzdata;
use crate::layer::Compression;
use crate::profile::Profile;
use crate::rootfs::ImagePath;
use crate::rootfs::base::UserSpec;

/// What the build writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OutputFormat {
    /// An OCI image layout directory, created or added to.
    #[default]
    Oci,
    /// One tar file holding an image layout (`oci-archive:FILE`).
    OciArchive,
    /// One tar file as `docker save` writes it, for `docker load`.
    DockerArchive,
}

impl OutputFormat {
    /// The name users type (`--format`) and skopeo's transport name.
    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::Oci => "oci",
            OutputFormat::OciArchive => "oci-archive",
            OutputFormat::DockerArchive => "docker-archive",
        }
    }

    pub fn is_archive(self) -> bool {
        self != OutputFormat::Oci
    }
}

/// A host path and where it goes in the image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub src: PathBuf,
    pub dst: ImagePath,
}

/// A directory the runtime user must be able to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Writable {
    pub path: ImagePath,
    pub uid: u32,
    pub gid: u32,
}

/// Where the Java runtime comes from.
#[derive(Clone, Debug, Default)]
pub struct JavaPlan {
    /// `--java-home`.
    pub home: Option<PathBuf>,
    /// JAVA_HOME of the environment mkimage runs in.
    pub env_home: Option<PathBuf>,
    /// PATH of the environment mkimage runs in, to find `java`.
    pub path: Option<OsString>,
    pub jlink: bool,
    /// `--add-modules`: modules for the jlinked runtime that jdeps cannot
    /// see used (reflection, ServiceLoader).
    pub add_modules: Vec<String>,
}

/// `--gconv`: which of glibc's iconv modules the image gets. Charsets
/// are run-time data (a file's encoding, a user's argument), so no
/// reading of the program can say which it converts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Gconv {
    /// All of them when a program imports `iconv_open` itself, else none.
    #[default]
    Auto,
    All,
    None,
    /// The modules of these charsets (and the configuration).
    Charsets(Vec<String>),
}

/// `--ld-cache`: whether the image gets its own `/etc/ld.so.cache`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LdCacheMode {
    /// When it has libraries outside the loader's default directories.
    #[default]
    Auto,
    Always,
    None,
}

#[derive(Clone, Debug)]
pub struct BuildPlan {
    pub binaries: Vec<Mapping>,
    /// `--from-dir`: trees, each ELF in them resolved.
    pub dirs: Vec<Mapping>,
    /// `--include`: a file or tree added as is (ELF files resolved).
    pub includes: Vec<Mapping>,
    pub venvs: Vec<PathBuf>,
    pub jars: Vec<Mapping>,
    /// (name as given, profile), in order; later ones override earlier.
    pub profiles: Vec<(String, Profile)>,
    pub java: JavaPlan,
    /// Keep the whole Python standard library (tests, idlelib).
    pub full_stdlib: bool,
    /// `--follow-links`: symlinks that lead out of a user's tree bring
    /// what they point to (by default they stay links and bring nothing).
    pub follow_links: bool,
    pub dlopen: Vec<String>,
    pub writable: Vec<Writable>,
    /// The OCI layout directory to write (or add to), or the archive file
    /// to write (replaced if it exists).
    pub output: PathBuf,
    pub format: OutputFormat,
    /// `org.opencontainers.image.ref.name` values, e.g. `app:latest`.
    pub references: Vec<String>,
    pub config: ConfigPlan,
    pub ca_certs: CaCerts,
    pub extra_cas: Vec<PathBuf>,
    pub tzdata: Tzdata,
    pub gconv: Gconv,
    /// `--locale`: compiled locales of the root to add (C.UTF-8 always is).
    pub locales: Vec<String>,
    pub ld_cache: LdCacheMode,
    /// Where libraries, certificates and time zones come from.
    pub sysroot: PathBuf,
    /// `--platform`: the architecture every program must be built for.
    pub platform: Option<crate::elf::Arch>,
    /// SOURCE_DATE_EPOCH: the image's `created` and every file's mtime.
    pub epoch: u64,
    /// Compression threads; the output does not depend on it.
    pub threads: NonZeroUsize,
    /// How layers are compressed.
    pub compression: Compression,
    /// The layer cache; `None` with `--no-cache` (or with no home).
    pub cache: Option<crate::cache::CacheSettings>,
    /// `--sbom FILE`: also write the SBOM there (the layout always holds
    /// it, as a referrer of the image).
    pub sbom: Option<PathBuf>,
    /// `--debug`: also the `<tag>-debug` image with a busybox shell.
    pub debug: bool,
    /// `--base REF`: the image to start from.
    pub base: Option<BasePlan>,
    /// `--copy-from`: files out of other images.
    pub copy_from: Vec<CopyFrom>,
}

/// `--copy-from REF:SRC[:DST]`.
#[derive(Clone, Debug)]
pub struct CopyFrom {
    pub reference: String,
    /// An absolute path in that image.
    pub src: String,
    pub dst: ImagePath,
    pub registry: crate::registry::RegistryOptions,
}

/// `--base REF` and how to reach it.
#[derive(Clone, Debug)]
pub struct BasePlan {
    /// As given: `DIR[:TAG]`, `oci-archive:FILE`, `docker://…`, ….
    pub reference: String,
    pub registry: crate::registry::RegistryOptions,
}

/// The image config as the user asked for it.
#[derive(Clone, Debug)]
pub struct ConfigPlan {
    /// `None`: the first binary.
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Vec<String>,
    /// In order; a later value for a name replaces the earlier one.
    pub env: Vec<(String, String)>,
    pub workdir: Option<String>,
    pub user: UserSpec,
    /// Whether `--user` was given (else a base's user is kept).
    pub user_given: bool,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub expose: BTreeSet<String>,
    /// `--healthcheck` and its timings.
    pub healthcheck: Option<crate::oci::Healthcheck>,
    /// `--stop-signal`, normalised (`SIGTERM`).
    pub stop_signal: Option<String>,
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
