//! The build's flags as clap parses them, and nothing else: no file is
//! read and no variable of the environment looked at here (that is
//! [`super::resolve`]'s job), so `--help`, completions and the man page
//! come from these definitions alone.

// The flags' doc comments are their --help text, where brackets are a
// usage's optional parts (`DIR[:TAG]`), not rustdoc links.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]

use std::path::PathBuf;

use crate::layer::Algorithm;
use crate::plan::OutputFormat;

const EXAMPLES: &str = "Examples:
  mkimage --from-binary target/release/app
  mkimage --from-binary target/release/app -t registry.example.com/app:1.2 --expose 8080
  mkimage --from-binary /usr/bin/curl --ca-cert corp-ca.pem --tzdata Europe/Paris
  mkimage --from-binary target/release/app --format docker-archive -o app.tar
  mkimage inspect app.oci --why /usr/lib/x86_64-linux-gnu/libc.so.6
  mkimage ldd target/release/app

Run the result with:
  podman run --rm oci:app.oci:app:latest
  skopeo copy oci:app.oci:app:latest docker-daemon:app:latest";

#[derive(Debug, Default, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct BuildArgs {
    /// An ELF program to add with every library it needs; DST defaults to
    /// /usr/local/bin/<name>. The first is the entrypoint.
    #[arg(long, value_name = "SRC[:DST]")]
    pub(super) from_binary: Vec<String>,
    /// A directory tree (DST defaults to /app); its ELF files are resolved,
    /// node_modules, site-packages and library jars go to the dependencies
    /// layer
    #[arg(long, value_name = "SRC[:DST]")]
    pub(super) from_dir: Vec<String>,
    /// A Python virtual environment: its interpreter, standard library and
    /// packages, at the venv's own path
    #[arg(long, value_name = "VENV")]
    pub(super) from_venv: Vec<PathBuf>,
    /// A jar (DST defaults to /app/app.jar) with a Java runtime; runs java -jar DST
    #[arg(long, value_name = "JAR[:DST]")]
    pub(super) from_jar: Vec<String>,
    /// The Java runtime for --from-jar [default: JAVA_HOME, or java on PATH]
    #[arg(long, value_name = "DIR")]
    pub(super) java_home: Option<PathBuf>,
    /// Build a minimal Java runtime with jdeps and jlink instead of copying
    /// one, of the modules every jar of the class path needs (the jar, its
    /// manifest's Class-Path, BOOT-INF/lib, the jars of --from-dir trees)
    #[arg(long)]
    pub(super) jlink: bool,
    /// Modules the jlinked runtime needs that jdeps cannot see used
    /// (loaded by reflection or ServiceLoader), e.g. jdk.localedata
    #[arg(
        long,
        value_name = "MODULE,...",
        value_delimiter = ',',
        requires = "jlink"
    )]
    pub(super) add_modules: Vec<String>,
    /// A runtime profile: a built-in name (see `mkimage profiles`) or a TOML file
    #[arg(long, value_name = "NAME|FILE")]
    pub(super) profile: Vec<String>,
    /// A host file or directory added as is (DST defaults to the same path)
    #[arg(long, value_name = "PATH[:DST]")]
    pub(super) include: Vec<String>,
    /// Add what symlinks leading out of a --from-dir/--include/--from-venv
    /// tree point to (by default they stay links and bring nothing, so no
    /// host file the user did not name gets in; /proc, /sys and /dev are
    /// never followed)
    #[arg(long)]
    pub(super) follow_links: bool,
    /// A library the program opens at run time, resolved like a DT_NEEDED
    #[arg(long, value_name = "SONAME")]
    pub(super) dlopen: Vec<String>,
    /// A directory the runtime user can write (UID defaults to 65532, GID to UID)
    #[arg(long, value_name = "PATH[:UID[:GID]]")]
    pub(super) writable: Vec<String>,
    /// Keep Python's test/ and idlelib/ (left out by default)
    #[arg(long)]
    pub(super) full_stdlib: bool,
    /// OCI layout directory to write, or to add the image to; with an
    /// archive --format, the file to write [default: ./<name>.oci, ./<name>.tar]
    #[arg(short, long, value_name = "DIR|FILE")]
    pub(super) output: Option<PathBuf>,
    /// What to write: an OCI layout directory, or one tar file for
    /// `podman load`/`skopeo` (oci-archive) or `docker load` (docker-archive)
    #[arg(long, value_enum, default_value_t = FormatArg::Oci)]
    pub(super) format: FormatArg,
    /// Tag(s) for the image [default: <name>:latest]
    #[arg(short, long, value_name = "NAME[:TAG]")]
    pub(super) tag: Vec<String>,
    /// Entrypoint: a JSON array or words split on whitespace [default: the first binary]
    #[arg(long, value_name = "CMD")]
    pub(super) entrypoint: Option<String>,
    /// Default arguments: a JSON array or words split on whitespace
    #[arg(long, value_name = "ARGS")]
    pub(super) cmd: Option<String>,
    /// Environment variable of the image
    #[arg(long, value_name = "K=V")]
    pub(super) env: Vec<String>,
    /// Working directory of the image
    #[arg(long, value_name = "DIR")]
    pub(super) workdir: Option<String>,
    /// User to run as [default: the base's user, else nonroot]
    #[arg(long, value_name = "UID[:GID]")]
    pub(super) user: Option<String>,
    /// Start from this image: its layers (reused by digest) and config
    /// (Env, User, Entrypoint, Cmd, WorkingDir, Labels; flags override);
    /// libraries it provides are used from it. DIR[:TAG],
    /// oci-archive:FILE[:TAG], docker-archive:FILE or
    /// docker://HOST[:PORT]/REPO[:TAG|@DIGEST]
    #[arg(long, value_name = "REF")]
    pub(super) base: Option<String>,
    /// A file or tree out of another image (after its whiteouts; SRC's
    /// symlinks followed in that image), modes and links kept; ELF files
    /// bring their libraries as with --include. DST defaults to SRC.
    /// REF as for --base
    #[arg(long, value_name = "REF:SRC[:DST]")]
    pub(super) copy_from: Vec<String>,
    /// Health check the runtime runs in the container: a JSON array or
    /// words split on whitespace, run directly (no shell), healthy when it
    /// exits 0; or "none" to turn one off. Docker reads it from any image,
    /// podman from Docker-format images (--format docker-archive, or pushed)
    #[arg(long, value_name = "CMD|none")]
    pub(super) healthcheck: Option<String>,
    /// Time between health checks, e.g. 30s, 1m30s [default: 30s]
    #[arg(long, value_name = "DURATION", requires = "healthcheck")]
    pub(super) health_interval: Option<String>,
    /// Time a health check may take before it counts as failed [default: 30s]
    #[arg(long, value_name = "DURATION", requires = "healthcheck")]
    pub(super) health_timeout: Option<String>,
    /// Failures in a row that make the container unhealthy [default: 3]
    #[arg(long, value_name = "N", requires = "healthcheck")]
    pub(super) health_retries: Option<u32>,
    /// Time after start during which failures do not count [default: 0s]
    #[arg(long, value_name = "DURATION", requires = "healthcheck")]
    pub(super) health_start_period: Option<String>,
    /// Signal that stops the container, e.g. SIGINT, SIGQUIT [default: the
    /// runtime's, SIGTERM]
    #[arg(long, value_name = "SIGNAL")]
    pub(super) stop_signal: Option<String>,
    /// Config label
    #[arg(long, value_name = "K=V")]
    pub(super) label: Vec<String>,
    /// Manifest annotation
    #[arg(long, value_name = "K=V")]
    pub(super) annotation: Vec<String>,
    /// Port the image listens on
    #[arg(long, value_name = "PORT[/PROTO]")]
    pub(super) expose: Vec<String>,
    /// CA bundle to install, or "none" [default: the root's bundle]
    #[arg(long, value_name = "FILE|none")]
    pub(super) ca_certs: Option<String>,
    /// Extra CA certificate (PEM) appended to the bundle, e.g. a company CA
    #[arg(long, value_name = "PEM")]
    pub(super) ca_cert: Vec<PathBuf>,
    /// Time zone data: all, none, or a list such as Europe/Paris,UTC
    #[arg(long, value_name = "all|none|ZONE,...", default_value = "all")]
    pub(super) tzdata: String,
    /// glibc's iconv modules (gconv): auto adds all of them (8 MB on
    /// amd64) when a program imports iconv_open, since the charsets it
    /// converts are run-time data; a list such as ISO-8859-1,UTF-16 adds
    /// only theirs (UTF-8, UCS-2/4 and ASCII need none)
    #[arg(long, value_name = "auto|all|none|CHARSET,...", default_value = "auto")]
    pub(super) gconv: String,
    /// A compiled locale of the root to add, e.g. en_US.UTF-8 (C.UTF-8 is
    /// always added with glibc)
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    pub(super) locale: Vec<String>,
    /// Write the image's own /etc/ld.so.cache (and ld.so.conf): auto when
    /// it has libraries outside the loader's default directories (the
    /// root's ld.so.conf directories, --include trees), always, or none
    #[arg(long, value_enum, value_name = "WHEN", default_value = "auto")]
    pub(super) ld_cache: LdCacheArg,
    /// Take libraries, certificates and time zones from DIR instead of /;
    /// PLATFORM=DIR for one platform of several
    #[arg(long, value_name = "[PLATFORM=]DIR", default_value = "/")]
    pub(super) sysroot: Vec<String>,
    /// The image's platform, e.g. linux/arm64 or linux/arm/v7; every
    /// program must be built for it. Several (linux/amd64,linux/arm64)
    /// build one image per platform and an index of them, the artifact
    /// paths naming each platform's with {arch}, {variant}, {triplet}
    /// (aarch64-linux-gnu) or {triple} (aarch64-unknown-linux-gnu).
    /// Default: the programs' own (their ELF headers), or this machine's
    /// when the image holds none
    #[arg(long, value_name = "OS/ARCH[/VARIANT],...", value_parser = parse_platform, value_delimiter = ',')]
    pub(super) platform: Vec<crate::elf::Arch>,
    /// How layers are compressed: gzip, which every tool reads, or zstd,
    /// faster to compress and a few percent smaller, for containerd 1.5+,
    /// Docker 23+ and podman (not umoci)
    #[arg(long, value_name = "ALGORITHM", default_value = "gzip")]
    pub(super) compression: CompressionArg,
    /// Compression level: gzip 1 (fastest) to 12 (smallest), default 2;
    /// zstd 1 to 19, default 3
    #[arg(long, value_name = "N")]
    pub(super) compression_level: Option<u32>,
    /// Also write the image's SPDX SBOM to FILE (the layout always holds it,
    /// attached to the image: `mkimage inspect IMAGE --sbom`)
    #[arg(long, value_name = "FILE")]
    pub(super) sbom: Option<PathBuf>,
    /// Also write the image tagged <tag>-debug: the same layers plus one
    /// with a static busybox (the root's /bin/busybox, from Debian's
    /// busybox-static) at /busybox, PATH extended with /busybox and
    /// /busybox/sh as the entrypoint
    #[arg(long)]
    pub(super) debug: bool,
    /// Write every layer afresh: neither use nor fill the layer cache
    /// ($XDG_CACHE_HOME/mkimage, default ~/.cache/mkimage)
    #[arg(long)]
    pub(super) no_cache: bool,
    /// No progress or summary, just errors
    #[arg(short, long)]
    pub(super) quiet: bool,
    /// Also say how each library was found: the step of the loader's
    /// search order (RPATH, LD_LIBRARY_PATH, RUNPATH, ld.so.cache, the
    /// default directories, a hwcaps subdirectory) and where it looked before
    #[arg(short, long, conflicts_with = "quiet")]
    pub(super) verbose: bool,
    /// Print one JSON object on stdout: digest, tags, platform, layers
    /// (digest, diff_id, size, media type), output path and format (the
    /// human summary goes to stderr, or nowhere with --quiet)
    #[arg(long)]
    pub(super) json: bool,
    /// Write the manifest digest (sha256:...) to FILE once the output is
    /// complete, as docker build --iidfile does
    #[arg(long, value_name = "FILE")]
    pub(super) digest_file: Option<PathBuf>,
    /// Push the image to a registry after building it
    #[arg(long, value_name = "REF")]
    pub(super) push: Option<String>,
    #[command(flatten)]
    pub(super) registry: crate::cli::push::RegistryArgs,
    /// Also trust this CA certificate (PEM) for the registry's TLS (--push)
    #[arg(long, value_name = "PEM")]
    pub(super) registry_ca_cert: Vec<PathBuf>,
}

/// `--format`; the plan gets [`OutputFormat`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum FormatArg {
    #[default]
    Oci,
    OciArchive,
    DockerArchive,
}

/// `--ld-cache`; the plan gets an [`LdCacheMode`](crate::plan::LdCacheMode).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum LdCacheArg {
    #[default]
    Auto,
    Always,
    None,
}

/// `--compression`; the plan gets a [`Compression`](crate::layer::Compression).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum CompressionArg {
    #[default]
    Gzip,
    Zstd,
}

impl From<CompressionArg> for Algorithm {
    fn from(c: CompressionArg) -> Self {
        match c {
            CompressionArg::Gzip => Algorithm::Gzip,
            CompressionArg::Zstd => Algorithm::Zstd,
        }
    }
}

impl From<FormatArg> for OutputFormat {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Oci => OutputFormat::Oci,
            FormatArg::OciArchive => OutputFormat::OciArchive,
            FormatArg::DockerArchive => OutputFormat::DockerArchive,
        }
    }
}

/// `--platform`: one of the platforms of [`crate::elf::Arch`].
fn parse_platform(s: &str) -> Result<crate::elf::Arch, String> {
    crate::elf::Arch::from_platform(s).ok_or_else(|| {
        let known: Vec<String> = crate::elf::arch::ALL
            .iter()
            .map(|a| a.platform_string())
            .collect();
        format!("unknown platform {s:?}; known: {}", known.join(", "))
    })
}
