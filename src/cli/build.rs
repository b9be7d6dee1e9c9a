//! The main command, `mkimage --from-binary ...`: flags in, a validated
//! [`BuildPlan`] out, the build run, the result printed.

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};

use crate::base_files::certs::CaCerts;
use crate::base_files::tzdata::Tzdata;
use crate::build::{Built, Event, build, multi};
use crate::layer::{Algorithm, Compression};
use crate::oci::provenance;
use crate::plan::{
    BuildPlan, ConfigPlan, Gconv, JavaPlan, LdCacheMode, Mapping, OutputFormat, Writable,
};
use crate::reference::Tagged;
use crate::rootfs::ImagePath;
use crate::rootfs::base::{DEFAULT_USER, UserSpec};

use super::platforms::Target;
use super::{NotFound, Outcome, human, output, spinner};

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
    from_binary: Vec<String>,
    /// A directory tree (DST defaults to /app); its ELF files are resolved,
    /// node_modules, site-packages and library jars go to the dependencies
    /// layer
    #[arg(long, value_name = "SRC[:DST]")]
    from_dir: Vec<String>,
    /// A Python virtual environment: its interpreter, standard library and
    /// packages, at the venv's own path
    #[arg(long, value_name = "VENV")]
    from_venv: Vec<PathBuf>,
    /// A jar (DST defaults to /app/app.jar) with a Java runtime; runs java -jar DST
    #[arg(long, value_name = "JAR[:DST]")]
    from_jar: Vec<String>,
    /// The Java runtime for --from-jar [default: JAVA_HOME, or java on PATH]
    #[arg(long, value_name = "DIR")]
    java_home: Option<PathBuf>,
    /// Build a minimal Java runtime with jdeps and jlink instead of copying
    /// one, of the modules every jar of the class path needs (the jar, its
    /// manifest's Class-Path, BOOT-INF/lib, the jars of --from-dir trees)
    #[arg(long)]
    jlink: bool,
    /// Modules the jlinked runtime needs that jdeps cannot see used
    /// (loaded by reflection or ServiceLoader), e.g. jdk.localedata
    #[arg(
        long,
        value_name = "MODULE,...",
        value_delimiter = ',',
        requires = "jlink"
    )]
    add_modules: Vec<String>,
    /// A runtime profile: a built-in name (see `mkimage profiles`) or a TOML file
    #[arg(long, value_name = "NAME|FILE")]
    profile: Vec<String>,
    /// A host file or directory added as is (DST defaults to the same path)
    #[arg(long, value_name = "PATH[:DST]")]
    include: Vec<String>,
    /// Add what symlinks leading out of a --from-dir/--include/--from-venv
    /// tree point to (by default they stay links and bring nothing, so no
    /// host file the user did not name gets in; /proc, /sys and /dev are
    /// never followed)
    #[arg(long)]
    follow_links: bool,
    /// A library the program opens at run time, resolved like a DT_NEEDED
    #[arg(long, value_name = "SONAME")]
    dlopen: Vec<String>,
    /// A directory the runtime user can write (UID defaults to 65532, GID to UID)
    #[arg(long, value_name = "PATH[:UID[:GID]]")]
    writable: Vec<String>,
    /// Keep Python's test/ and idlelib/ (left out by default)
    #[arg(long)]
    full_stdlib: bool,
    /// OCI layout directory to write, or to add the image to; with an
    /// archive --format, the file to write [default: ./<name>.oci, ./<name>.tar]
    #[arg(short, long, value_name = "DIR|FILE")]
    output: Option<PathBuf>,
    /// What to write: an OCI layout directory, or one tar file for
    /// `podman load`/`skopeo` (oci-archive) or `docker load` (docker-archive)
    #[arg(long, value_enum, default_value_t = FormatArg::Oci)]
    format: FormatArg,
    /// Tag(s) for the image [default: <name>:latest]
    #[arg(short, long, value_name = "NAME[:TAG]")]
    tag: Vec<String>,
    /// Entrypoint: a JSON array or words split on whitespace [default: the first binary]
    #[arg(long, value_name = "CMD")]
    entrypoint: Option<String>,
    /// Default arguments: a JSON array or words split on whitespace
    #[arg(long, value_name = "ARGS")]
    cmd: Option<String>,
    /// Environment variable of the image
    #[arg(long, value_name = "K=V")]
    env: Vec<String>,
    /// Working directory of the image
    #[arg(long, value_name = "DIR")]
    workdir: Option<String>,
    /// User to run as [default: the base's user, else nonroot]
    #[arg(long, value_name = "UID[:GID]")]
    user: Option<String>,
    /// Start from this image: its layers (reused by digest) and config
    /// (Env, User, Entrypoint, Cmd, WorkingDir, Labels; flags override);
    /// libraries it provides are used from it. DIR[:TAG],
    /// oci-archive:FILE[:TAG], docker-archive:FILE or
    /// docker://HOST[:PORT]/REPO[:TAG|@DIGEST]
    #[arg(long, value_name = "REF")]
    base: Option<String>,
    /// A file or tree out of another image (after its whiteouts; SRC's
    /// symlinks followed in that image), modes and links kept; ELF files
    /// bring their libraries as with --include. DST defaults to SRC.
    /// REF as for --base
    #[arg(long, value_name = "REF:SRC[:DST]")]
    copy_from: Vec<String>,
    /// Health check the runtime runs in the container: a JSON array or
    /// words split on whitespace, run directly (no shell), healthy when it
    /// exits 0; or "none" to turn one off. Docker reads it from any image,
    /// podman from Docker-format images (--format docker-archive, or pushed)
    #[arg(long, value_name = "CMD|none")]
    healthcheck: Option<String>,
    /// Time between health checks, e.g. 30s, 1m30s [default: 30s]
    #[arg(long, value_name = "DURATION", requires = "healthcheck")]
    health_interval: Option<String>,
    /// Time a health check may take before it counts as failed [default: 30s]
    #[arg(long, value_name = "DURATION", requires = "healthcheck")]
    health_timeout: Option<String>,
    /// Failures in a row that make the container unhealthy [default: 3]
    #[arg(long, value_name = "N", requires = "healthcheck")]
    health_retries: Option<u32>,
    /// Time after start during which failures do not count [default: 0s]
    #[arg(long, value_name = "DURATION", requires = "healthcheck")]
    health_start_period: Option<String>,
    /// Signal that stops the container, e.g. SIGINT, SIGQUIT [default: the
    /// runtime's, SIGTERM]
    #[arg(long, value_name = "SIGNAL")]
    stop_signal: Option<String>,
    /// Config label
    #[arg(long, value_name = "K=V")]
    label: Vec<String>,
    /// Manifest annotation
    #[arg(long, value_name = "K=V")]
    annotation: Vec<String>,
    /// Port the image listens on
    #[arg(long, value_name = "PORT[/PROTO]")]
    expose: Vec<String>,
    /// CA bundle to install, or "none" [default: the root's bundle]
    #[arg(long, value_name = "FILE|none")]
    ca_certs: Option<String>,
    /// Extra CA certificate (PEM) appended to the bundle, e.g. a company CA
    #[arg(long, value_name = "PEM")]
    ca_cert: Vec<PathBuf>,
    /// Time zone data: all, none, or a list such as Europe/Paris,UTC
    #[arg(long, value_name = "all|none|ZONE,...", default_value = "all")]
    tzdata: String,
    /// glibc's iconv modules (gconv): auto adds all of them (8 MB on
    /// amd64) when a program imports iconv_open, since the charsets it
    /// converts are run-time data; a list such as ISO-8859-1,UTF-16 adds
    /// only theirs (UTF-8, UCS-2/4 and ASCII need none)
    #[arg(long, value_name = "auto|all|none|CHARSET,...", default_value = "auto")]
    gconv: String,
    /// A compiled locale of the root to add, e.g. en_US.UTF-8 (C.UTF-8 is
    /// always added with glibc)
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    locale: Vec<String>,
    /// Write the image's own /etc/ld.so.cache (and ld.so.conf): auto when
    /// it has libraries outside the loader's default directories (the
    /// root's ld.so.conf directories, --include trees), always, or none
    #[arg(long, value_enum, value_name = "WHEN", default_value = "auto")]
    ld_cache: LdCacheArg,
    /// Take libraries, certificates and time zones from DIR instead of /;
    /// PLATFORM=DIR for one platform of several
    #[arg(long, value_name = "[PLATFORM=]DIR", default_value = "/")]
    sysroot: Vec<String>,
    /// The image's platform, e.g. linux/arm64 or linux/arm/v7; every
    /// program must be built for it. Several (linux/amd64,linux/arm64)
    /// build one image per platform and an index of them, the artifact
    /// paths naming each platform's with {arch}, {variant}, {triplet}
    /// (aarch64-linux-gnu) or {triple} (aarch64-unknown-linux-gnu).
    /// Default: the programs' own (their ELF headers), or this machine's
    /// when the image holds none
    #[arg(long, value_name = "OS/ARCH[/VARIANT],...", value_parser = parse_platform, value_delimiter = ',')]
    platform: Vec<crate::elf::Arch>,
    /// How layers are compressed: gzip, which every tool reads, or zstd,
    /// about twice as fast to build and about as small, for containerd
    /// 1.5+, Docker 23+ and podman (not umoci)
    #[arg(long, value_name = "ALGORITHM", default_value = "gzip")]
    compression: CompressionArg,
    /// Compression level: gzip 1 (fastest) to 12 (smallest), default 4;
    /// zstd 1 to 19, default 3
    #[arg(long, value_name = "N")]
    compression_level: Option<u32>,
    /// Also write the image's SPDX SBOM to FILE (the layout always holds it,
    /// attached to the image: `mkimage inspect IMAGE --sbom`)
    #[arg(long, value_name = "FILE")]
    sbom: Option<PathBuf>,
    /// Also write the image tagged <tag>-debug: the same layers plus one
    /// with a static busybox (the root's /bin/busybox, from Debian's
    /// busybox-static) at /busybox, PATH extended with /busybox and
    /// /busybox/sh as the entrypoint
    #[arg(long)]
    debug: bool,
    /// Write every layer afresh: neither use nor fill the layer cache
    /// ($XDG_CACHE_HOME/mkimage, default ~/.cache/mkimage)
    #[arg(long)]
    no_cache: bool,
    /// No progress or summary, just errors
    #[arg(short, long)]
    quiet: bool,
    /// Also say how each library was found: the step of the loader's
    /// search order (RPATH, LD_LIBRARY_PATH, RUNPATH, ld.so.cache, the
    /// default directories, a hwcaps subdirectory) and where it looked before
    #[arg(short, long, conflicts_with = "quiet")]
    verbose: bool,
    /// Print one JSON object on stdout: digest, tags, platform, layers
    /// (digest, diff_id, size, media type), output path and format (the
    /// human summary goes to stderr, or nowhere with --quiet)
    #[arg(long)]
    json: bool,
    /// Write the manifest digest (sha256:...) to FILE once the output is
    /// complete, as docker build --iidfile does
    #[arg(long, value_name = "FILE")]
    digest_file: Option<PathBuf>,
    /// Push the image to a registry after building it
    #[arg(long, value_name = "REF")]
    push: Option<String>,
    #[command(flatten)]
    registry: super::push::RegistryArgs,
    /// Also trust this CA certificate (PEM) for the registry's TLS (--push)
    #[arg(long, value_name = "PEM")]
    registry_ca_cert: Vec<PathBuf>,
}

/// `--format`; the plan gets [`OutputFormat`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
enum FormatArg {
    #[default]
    Oci,
    OciArchive,
    DockerArchive,
}

/// `--ld-cache`; the plan gets an [`LdCacheMode`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
enum LdCacheArg {
    #[default]
    Auto,
    Always,
    None,
}

/// `--compression`; the plan gets a [`Compression`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
enum CompressionArg {
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

pub fn run(args: BuildArgs) -> anyhow::Result<Outcome> {
    let targets = super::platforms::targets(&args.platform, &args.sysroot)?;
    let plans = targets
        .iter()
        .map(|t| plan(&args, t))
        .collect::<anyhow::Result<Vec<_>>>()?;
    // The JSON summary and the debug image describe one image; an index
    // of several has neither yet.
    anyhow::ensure!(
        plans.len() == 1 || !(args.json || args.debug),
        "--json and --debug build one platform's image: give one --platform"
    );
    // A bad reference or registry flag fails before the build, not after.
    let push_to = match args.push.as_deref() {
        Some(r) => {
            let reference = crate::registry::Reference::parse(r)?;
            let mut opts = args.registry.options(&args.registry_ca_cert)?;
            // A base on the same registry: its layers are mounted from its
            // repository, not uploaded again.
            opts.mount_from = args
                .base
                .as_deref()
                .and_then(|b| b.strip_prefix("docker://"))
                .and_then(|b| crate::registry::Reference::parse(b).ok())
                .filter(|b| b.registry() == reference.registry())
                .map(|b| b.repository().to_owned());
            Some((reference, opts))
        }
        None => None,
    };
    if let Some(f) = &args.digest_file {
        output::check_digest_file(f)?;
    }
    let bar = spinner(args.quiet, "", "resolving");
    let on_event = |e: Event| match e {
        Event::Resolved { files, bytes } => {
            bar.set_message(format!("{files} files, {} to pack", human(bytes)))
        }
        Event::LayerStart { layer, bytes } => {
            bar.set_message(format!("writing layer {layer} ({})", human(bytes)))
        }
        Event::LayerDone { .. } => {}
        Event::Archive { format } => bar.set_message(format!("writing the {}", format.name())),
    };
    let result = match plans.as_slice() {
        [plan] => build(plan, &on_event).map(|b| Wrote::One(Box::new(b))),
        many => multi::build_index(many, &on_event).map(Wrote::Index),
    };
    bar.finish_and_clear();
    let mut outcome = Outcome::success();
    match result {
        Ok(Wrote::One(built)) => {
            if args.verbose {
                for line in &built.reasoning {
                    eprintln!("mkimage: {line}");
                }
            }
            if !args.quiet {
                for w in &built.warnings {
                    outcome.warn(w.clone());
                }
            }
            // What fails from here on ends the outcome: the warnings stand.
            let publish = || -> anyhow::Result<()> {
                if let Some(f) = &args.digest_file {
                    output::write_digest_file(f, &built.manifest_digest.to_string())?;
                }
                if !args.quiet {
                    print_summary(&built, args.json);
                }
                let mut summary = args.json.then(|| output::Summary::of_build(&built));
                if let Some((reference, opts)) = push_to {
                    let tag = built.tags.first().map(String::as_str);
                    let report = super::push::push_quietly(
                        &built.output,
                        tag,
                        &reference,
                        &opts,
                        args.quiet,
                    )?;
                    match &mut summary {
                        Some(s) => {
                            if !args.quiet {
                                super::push::print_summary_to_stderr(&report);
                            }
                            s.set_pushed(&report);
                        }
                        None if !args.quiet => println!("{}", super::push::summary(&report)),
                        None => {}
                    }
                    // The debug image goes beside it, as REF's tag + "-debug";
                    // its production layers are already there, so only
                    // busybox's is uploaded.
                    if let Some((tags, _)) = &built.debug {
                        let tag = reference.tag().unwrap_or(crate::reference::DEFAULT_TAG);
                        let debug_ref = reference
                            .with_tag(&format!("{tag}{}", crate::build::debug::TAG_SUFFIX));
                        let debug_tag = tags.first().map(String::as_str);
                        let report = super::push::push_quietly(
                            &built.output,
                            debug_tag,
                            &debug_ref,
                            &opts,
                            args.quiet,
                        )?;
                        if summary.is_none() && !args.quiet {
                            println!("{}", super::push::summary(&report))
                        } else if !args.quiet {
                            super::push::print_summary_to_stderr(&report)
                        }
                    }
                }
                if let Some(s) = summary {
                    s.print()?;
                }
                Ok(())
            };
            Ok(outcome.ended_by(publish()))
        }
        Ok(Wrote::Index(b)) => {
            if !args.quiet {
                for image in &b.images {
                    for w in &image.warnings {
                        outcome.warn(format!("{}: {w}", image.platform));
                    }
                }
            }
            let publish = || -> anyhow::Result<()> {
                if let Some(f) = &args.digest_file {
                    output::write_digest_file(f, &b.index_digest.to_string())?;
                }
                if !args.quiet {
                    print_index_summary(&b);
                }
                if let Some((reference, opts)) = push_to {
                    let tag = b.tags.first().map(String::as_str);
                    let report =
                        super::push::push_quietly(&b.output, tag, &reference, &opts, args.quiet)?;
                    if !args.quiet {
                        println!("{}", super::push::summary(&report));
                    }
                }
                Ok(())
            };
            Ok(outcome.ended_by(publish()))
        }
        Err(e) if e.is_not_found() => Err(NotFound::wrap(e)),
        Err(e) => Err(e.into()),
    }
}

/// Turns flags (and SOURCE_DATE_EPOCH) into a checked plan for one
/// platform, the patterns of artifact paths expanded for it.
fn plan(args: &BuildArgs, target: &Target) -> anyhow::Result<BuildPlan> {
    let expand = |v: &[String]| -> anyhow::Result<Vec<String>> {
        v.iter().map(|s| target.expand(s)).collect()
    };
    let mut binaries = Vec::new();
    for arg in &expand(&args.from_binary)? {
        binaries.push(binary_spec(arg)?);
    }
    let dirs = mappings(&expand(&args.from_dir)?, "--from-dir", Some("/app"))?;
    let includes = mappings(&expand(&args.include)?, "--include", None)?;
    let jars = mappings(&expand(&args.from_jar)?, "--from-jar", Some("/app/app.jar"))?;
    let venvs = args
        .from_venv
        .iter()
        .map(|v| Ok(PathBuf::from(target.expand(&v.to_string_lossy())?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut profiles = Vec::new();
    for p in &args.profile {
        profiles.push((p.clone(), crate::profile::load(p)?));
    }
    // Two artifacts at one DST: fine when they are the same file.
    let mut seen: BTreeMap<&ImagePath, &Path> = BTreeMap::new();
    for (dst, src) in binaries
        .iter()
        .map(|b| (&b.dst, b.src.as_path()))
        .chain(jars.iter().map(|j| (&j.dst, j.src.as_path())))
    {
        if let Some(other) = seen.insert(dst, src)
            && !same_file(other, src)?
        {
            bail!(
                "{} and {} both map to {dst}: give one of them another DST (SRC:DST)",
                other.display(),
                src.display(),
            );
        }
    }
    let name = image_name(args, &binaries, &dirs, &jars)?;
    // Docker's grammar first (what `docker load` and a registry accept),
    // then the layout's ref.name grammar, which is stricter about some
    // separators (`a__b`); both before any work.
    let tags = if args.tag.is_empty() {
        let t = Tagged::parse(&name).with_context(|| {
            format!(
                "the image name {name:?} made from the input's name: give one with -t NAME[:TAG]"
            )
        })?;
        vec![t.to_string()]
    } else {
        args.tag
            .iter()
            .map(|t| Ok(Tagged::parse(t).context("-t")?.to_string()))
            .collect::<anyhow::Result<Vec<_>>>()?
    };
    for t in &tags {
        crate::oci::check_tag(t)?;
    }
    if args.debug {
        for t in crate::build::debug::tags(&tags) {
            crate::oci::check_tag(&t).context("--debug's tag")?;
        }
    }
    let format = OutputFormat::from(args.format);
    ensure!(
        !(args.debug && format == OutputFormat::DockerArchive),
        "--debug writes two images, and a docker-archive here holds one: \
         write an OCI layout or an oci-archive"
    );
    ensure!(
        args.push.is_none() || !format.is_archive(),
        "--push reads the image from an OCI layout: leave out --format {} \
         (or push the archive with skopeo copy)",
        format.name()
    );
    let output = args.output.clone().unwrap_or_else(|| {
        PathBuf::from(match format {
            OutputFormat::Oci => format!("{name}.oci"),
            OutputFormat::OciArchive | OutputFormat::DockerArchive => format!("{name}.tar"),
        })
    });

    let mut env = Vec::new();
    for e in &args.env {
        let (k, v) = key_value(e, "--env")?;
        ensure!(
            k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "--env {e:?}: the name must be letters, digits and '_'"
        );
        env.push((k, v));
    }
    let mut labels = BTreeMap::new();
    for l in &args.label {
        let (k, v) = key_value(l, "--label")?;
        labels.insert(k, v);
    }
    let mut annotations = BTreeMap::new();
    for a in &args.annotation {
        let (k, v) = key_value(a, "--annotation")?;
        ensure!(
            k != provenance::ANNOTATION,
            "--annotation {k}: reserved; mkimage sets it to the image's provenance blob"
        );
        annotations.insert(k, v);
    }
    let mut expose = BTreeSet::new();
    for p in &args.expose {
        expose.insert(port(p)?);
    }
    let given_user = args.user.as_deref().unwrap_or(DEFAULT_USER);
    let user =
        UserSpec::parse(given_user).map_err(|e| anyhow::anyhow!("--user {given_user:?}: {e}"))?;
    if let Some(w) = &args.workdir {
        ensure!(
            w.starts_with('/'),
            "--workdir {w:?} must be an absolute path"
        );
    }
    let ca_certs = match args.ca_certs.as_deref() {
        None => CaCerts::Default,
        Some("none") => CaCerts::None,
        Some(f) => CaCerts::File(PathBuf::from(f)),
    };
    let tzdata = match args.tzdata.as_str() {
        "all" => Tzdata::All,
        "none" => Tzdata::None,
        list => Tzdata::Zones(
            list.split(',')
                .map(str::trim)
                .filter(|z| !z.is_empty())
                .map(String::from)
                .collect(),
        ),
    };
    let gconv = match args.gconv.as_str() {
        "auto" => Gconv::Auto,
        "all" => Gconv::All,
        "none" => Gconv::None,
        list => {
            let names: Vec<String> = list
                .split(',')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect();
            ensure!(
                !names.is_empty(),
                "--gconv {list:?}: give auto, all, none or charset names"
            );
            Gconv::Charsets(names)
        }
    };
    for l in &args.locale {
        ensure!(
            !l.is_empty() && !l.contains('/') && !l.starts_with('.'),
            "--locale {l:?}: a locale name such as en_US.UTF-8"
        );
    }
    let mut writable = Vec::new();
    for w in &args.writable {
        writable.push(writable_dir(w)?);
    }
    Ok(BuildPlan {
        binaries,
        dirs,
        includes,
        venvs,
        jars,
        profiles,
        java: JavaPlan {
            home: args.java_home.clone(),
            env_home: std::env::var_os("JAVA_HOME").map(PathBuf::from),
            path: std::env::var_os("PATH"),
            jlink: args.jlink,
            add_modules: modules(&args.add_modules)?,
        },
        full_stdlib: args.full_stdlib,
        follow_links: args.follow_links,
        dlopen: args.dlopen.clone(),
        writable,
        output,
        format,
        tags,
        config: ConfigPlan {
            entrypoint: args.entrypoint.as_deref().map(words).transpose()?,
            cmd: args
                .cmd
                .as_deref()
                .map(words)
                .transpose()?
                .unwrap_or_default(),
            env,
            workdir: args.workdir.clone(),
            user,
            user_given: args.user.is_some(),
            labels,
            annotations,
            expose,
            healthcheck: healthcheck(args)?,
            stop_signal: args
                .stop_signal
                .as_deref()
                .map(crate::oci::healthcheck::parse_signal)
                .transpose()
                .context("--stop-signal")?,
        },
        ca_certs,
        extra_cas: args.ca_cert.clone(),
        tzdata,
        gconv,
        locales: args.locale.clone(),
        ld_cache: match args.ld_cache {
            LdCacheArg::Auto => LdCacheMode::Auto,
            LdCacheArg::Always => LdCacheMode::Always,
            LdCacheArg::None => LdCacheMode::None,
        },
        sysroot: target.sysroot.clone(),
        platform: target.platform,
        epoch: source_date_epoch()?,
        threads: std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN),
        compression: Compression::new(args.compression.into(), args.compression_level)
            .map_err(|e| anyhow::anyhow!("--compression-level: {e}"))?,
        sbom: args.sbom.clone(),
        debug: args.debug,
        copy_from: args
            .copy_from
            .iter()
            .map(|c| {
                let (reference, src, dst) = split_copy_from(c)?;
                let dst =
                    ImagePath::new(dst).with_context(|| format!("--copy-from {c}: bad DST"))?;
                ensure!(!dst.is_root(), "--copy-from {c}: DST must not be /");
                Ok(crate::plan::CopyFrom {
                    reference,
                    src,
                    dst,
                    registry: args.registry.registry_options(&args.registry_ca_cert)?,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?,
        base: match &args.base {
            Some(reference) => Some(crate::plan::BasePlan {
                reference: reference.clone(),
                registry: args.registry.registry_options(&args.registry_ca_cert)?,
            }),
            None => None,
        },
        cache: super::cache::cache_plan(args.no_cache)?,
    })
}

/// The image's default name: the first artifact's file name, lowercased.
fn image_name(
    args: &BuildArgs,
    binaries: &[Mapping],
    dirs: &[Mapping],
    jars: &[Mapping],
) -> anyhow::Result<String> {
    let from_path = |p: &Path| {
        p.file_stem()
            .map(|n| n.to_string_lossy().to_lowercase())
            .filter(|n| !n.is_empty())
    };
    let name = binaries
        .first()
        .and_then(|b| {
            b.dst
                .file_name()
                .map(|n| n.to_string_lossy().to_lowercase())
        })
        .or_else(|| jars.first().and_then(|j| from_path(&j.src)))
        .or_else(|| {
            args.from_venv
                .first()
                .and_then(|v| std::fs::canonicalize(v).ok().and_then(|c| from_path(&c)))
        })
        .or_else(|| {
            dirs.first().and_then(|d| {
                std::fs::canonicalize(&d.src)
                    .ok()
                    .and_then(|c| from_path(&c))
            })
        })
        .or_else(|| args.profile.first().and_then(|p| from_path(Path::new(p))))
        .unwrap_or_else(|| "image".into());
    Ok(clean_name(&name))
}

/// `name` as a repository path component that both docker's grammar
/// (`[a-z0-9]+` joined by `.`, `_`, `__` or dashes) and the layout's
/// ref.name grammar (joined by one of `-._` or `--`) accept: anything else
/// becomes `-`, as does a run of separators neither takes (`a..b`).
fn clean_name(name: &str) -> String {
    let mut out = String::new();
    let mut run = String::new();
    for c in name.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            if !out.is_empty() {
                out.push_str(match run.as_str() {
                    "" => "",
                    "." | "_" | "-" | "--" => &run,
                    _ => "-",
                });
            }
            run.clear();
            out.push(c);
        } else if matches!(c, '.' | '_' | '-') {
            run.push(c);
        } else {
            run.push('-');
        }
    }
    if out.is_empty() { "image".into() } else { out }
}

/// `SRC[:DST]` pairs; without DST the default, or the same absolute path.
fn mappings(args: &[String], flag: &str, default: Option<&str>) -> anyhow::Result<Vec<Mapping>> {
    let mut out = Vec::new();
    for arg in args {
        let (src, dst) = split_mapping(arg);
        let dst = match (dst, default) {
            (Some(d), _) => d.to_string(),
            (None, Some(d)) => d.to_string(),
            (None, None) => std::path::absolute(src)
                .with_context(|| format!("{flag} {arg}"))?
                .to_string_lossy()
                .into_owned(),
        };
        let dst = ImagePath::new(&dst).with_context(|| format!("{flag} {arg}: bad DST"))?;
        ensure!(!dst.is_root(), "{flag} {arg}: DST must not be /");
        out.push(Mapping {
            src: PathBuf::from(src),
            dst,
        });
    }
    Ok(out)
}

/// `--add-modules` names: Java module names (dot-separated identifiers),
/// each once, in order.
fn modules(names: &[String]) -> anyhow::Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let ok = name.split('.').all(|part| {
            part.chars()
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_')
                && part.chars().all(|c| c.is_alphanumeric() || c == '_')
        });
        ensure!(
            ok,
            "--add-modules {name:?}: not a module name such as java.management"
        );
        if !out.iter().any(|m| m == name) {
            out.push(name.to_string());
        }
    }
    Ok(out)
}

/// `PATH[:UID[:GID]]`.
fn writable_dir(arg: &str) -> anyhow::Result<Writable> {
    let mut parts = arg.split(':');
    let path = parts.next().unwrap_or_default();
    let uid: u32 = match parts.next() {
        Some(u) => u
            .parse()
            .with_context(|| format!("--writable {arg}: UID must be a number"))?,
        None => crate::rootfs::base::NONROOT_UID,
    };
    let gid: u32 = match parts.next() {
        Some(g) => g
            .parse()
            .with_context(|| format!("--writable {arg}: GID must be a number"))?,
        None => uid,
    };
    ensure!(
        parts.next().is_none(),
        "--writable {arg}: expected PATH[:UID[:GID]]"
    );
    let path = ImagePath::new(path).with_context(|| format!("--writable {arg}"))?;
    Ok(Writable { path, uid, gid })
}

/// `SRC[:DST]` as SRC and DST. The last `:` splits, so a SRC with a colon
/// needs a DST.
fn split_mapping(arg: &str) -> (&str, Option<&str>) {
    match arg.rsplit_once(':') {
        Some((src, dst)) if !src.is_empty() => (src, Some(dst)),
        _ => (arg, None),
    }
}

/// Source names that end at a `:` before an absolute path
/// (`oci-archive:/abs/file.tar`), so that path is not a SRC.
const TRANSPORTS: &[&str] = &["oci", "oci-archive", "docker-archive", "docker"];

/// `REF:SRC[:DST]`: SRC and DST are absolute paths without `:`, so they
/// are split off at the last `:/`s; REF keeps its own colons (`DIR:TAG`,
/// `docker://HOST:PORT/REPO:TAG`).
fn split_copy_from(arg: &str) -> anyhow::Result<(String, String, String)> {
    let bad = || {
        anyhow::anyhow!(
            "--copy-from {arg:?}: expected REF:SRC[:DST] with absolute SRC and DST, \
             e.g. docker://registry/busybox:1:/bin/wget:/usr/local/bin/wget"
        )
    };
    let last = arg.rfind(":/").ok_or_else(bad)?;
    let (rest, tail) = (&arg[..last], &arg[last + 1..]);
    let (reference, src, dst) = match rest.rfind(":/") {
        Some(m)
            if !rest[m + 1..].contains(':')
                && !rest[..m].is_empty()
                && !TRANSPORTS.contains(&&rest[..m]) =>
        {
            (&rest[..m], &rest[m + 1..], tail)
        }
        _ => (rest, tail, tail),
    };
    if reference.is_empty() || tail.contains(':') {
        return Err(bad());
    }
    Ok((reference.to_owned(), src.to_owned(), dst.to_owned()))
}

/// `--from-binary SRC[:DST]`; DST defaults to /usr/local/bin/NAME.
fn binary_spec(arg: &str) -> anyhow::Result<Mapping> {
    let (src, dst) = split_mapping(arg);
    let src = PathBuf::from(src);
    let dst = match dst {
        Some(d) => ImagePath::new(d).with_context(|| format!("--from-binary {arg}: bad DST"))?,
        None => {
            let name = src
                .file_name()
                .with_context(|| format!("--from-binary {arg}: no file name"))?;
            ImagePath::new(Path::new("/usr/local/bin").join(name))?
        }
    };
    ensure!(
        !dst.is_root(),
        "--from-binary {arg}: DST must name a file, not /"
    );
    Ok(Mapping { src, dst })
}

fn same_file(a: &Path, b: &Path) -> anyhow::Result<bool> {
    let ca = std::fs::canonicalize(a).with_context(|| format!("cannot read {}", a.display()))?;
    let cb = std::fs::canonicalize(b).with_context(|| format!("cannot read {}", b.display()))?;
    Ok(ca == cb || crate::rootfs::host::same_bytes(&ca, &cb)?)
}

fn key_value(s: &str, flag: &str) -> anyhow::Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => bail!("{flag} {s:?}: expected KEY=VALUE"),
    }
}

fn port(s: &str) -> anyhow::Result<String> {
    let (num, proto) = s.split_once('/').unwrap_or((s, "tcp"));
    let n: u16 = num
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .with_context(|| format!("--expose {s:?}: the port must be 1-65535"))?;
    ensure!(
        matches!(proto, "tcp" | "udp" | "sctp"),
        "--expose {s:?}: the protocol must be tcp, udp or sctp"
    );
    Ok(format!("{n}/{proto}"))
}

/// `--healthcheck CMD|none` and its timings, checked as Docker checks
/// them (`docker run --health-*`).
fn healthcheck(args: &BuildArgs) -> anyhow::Result<Option<crate::oci::Healthcheck>> {
    use crate::oci::HealthTest;
    use crate::oci::healthcheck::parse_duration;
    let Some(given) = args.healthcheck.as_deref() else {
        return Ok(None);
    };
    let timings = args.health_interval.is_some()
        || args.health_timeout.is_some()
        || args.health_retries.is_some()
        || args.health_start_period.is_some();
    let test = if given.trim().eq_ignore_ascii_case("none") {
        ensure!(
            !timings,
            "--healthcheck none turns the check off: leave out --health-interval, \
             --health-timeout, --health-retries and --health-start-period"
        );
        HealthTest::Disabled
    } else {
        let argv = words(given).context("--healthcheck")?;
        ensure!(
            argv.first().is_some_and(|p| !p.is_empty()),
            "--healthcheck {given:?}: give the program to run (a JSON array or words), or none"
        );
        HealthTest::Exec(argv)
    };
    let duration = |flag: &str, v: &Option<String>| {
        v.as_deref()
            .map(parse_duration)
            .transpose()
            .with_context(|| format!("--{flag}"))
    };
    if args.health_retries == Some(0) {
        bail!("--health-retries 0: give at least 1 (leave it out for the runtime's 3)");
    }
    Ok(Some(crate::oci::Healthcheck {
        test,
        interval: duration("health-interval", &args.health_interval)?,
        timeout: duration("health-timeout", &args.health_timeout)?,
        start_period: duration("health-start-period", &args.health_start_period)?,
        retries: args.health_retries,
    }))
}

/// A JSON array of strings, or words split on whitespace.
fn words(s: &str) -> anyhow::Result<Vec<String>> {
    if s.trim_start().starts_with('[') {
        serde_json::from_str(s).with_context(|| format!("{s:?} is not a JSON array of strings"))
    } else {
        Ok(s.split_whitespace().map(String::from).collect())
    }
}

/// SOURCE_DATE_EPOCH (reproducible-builds.org), or 0.
fn source_date_epoch() -> anyhow::Result<u64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .with_context(|| format!("SOURCE_DATE_EPOCH={v:?} is not a number of seconds")),
        _ => Ok(0),
    }
}

/// The human summary: on stdout, or on stderr when stdout is for
/// `--json`. (Warnings travel in the outcome.)
fn print_summary(b: &Built, to_stderr: bool) {
    let mut lines: Vec<String> = b.notes.clone();
    let out = b.output.display();
    lines.push(match b.format {
        OutputFormat::Oci => format!("Wrote {} to {out}", b.tags.join(", ")),
        f => format!("Wrote {} to {out} ({})", b.tags.join(", "), f.name()),
    });
    lines.push(format!("  digest  {}", b.manifest_digest));
    if let Some((tags, digest)) = &b.debug {
        lines.push(format!("  debug   {} {digest}", tags.join(", ")));
    }
    lines.push(format!(
        "  size    {} compressed, {} ({})",
        human(b.compressed_size()),
        b.architecture,
        b.layers
            .iter()
            .map(|l| format!("{} {}", l.kind.name(), human(l.size)))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    if let Some(reused) = b.cache_reused() {
        lines.push(format!(
            "  cache   {} of {} layers reused{}",
            reused.len(),
            b.layers.len(),
            if reused.is_empty() {
                String::new()
            } else {
                format!(" ({})", reused.join(", "))
            }
        ));
    }
    let tag = &b.tags[0];
    let name = tag.rsplit('/').next().unwrap_or(tag);
    lines.push("Run it:".into());
    match b.format {
        OutputFormat::Oci => {
            lines.push(format!("  podman run --rm oci:{out}:{tag}"));
            lines.push(format!(
                "  skopeo copy oci:{out}:{tag} docker-daemon:{name}"
            ));
        }
        OutputFormat::OciArchive => {
            lines.push(format!("  podman run --rm oci-archive:{out}:{tag}"));
            lines.push(format!(
                "  skopeo copy oci-archive:{out}:{tag} docker-daemon:{name}"
            ));
        }
        OutputFormat::DockerArchive => {
            lines.push(format!("  docker load -i {out} && docker run --rm {tag}"));
            lines.push(format!("  podman load -i {out} && podman run --rm {tag}"));
        }
    }
    for line in lines {
        if to_stderr {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
}

/// What `build` wrote: one image, or an index of one per platform.
enum Wrote {
    One(Box<Built>),
    Index(multi::BuiltIndex),
}

fn print_index_summary(b: &multi::BuiltIndex) {
    let out = b.output.display();
    println!(
        "Wrote {} to {out}: an index of {} platforms",
        b.tags.join(", "),
        b.images.len()
    );
    println!("  digest  {}", b.index_digest);
    for image in &b.images {
        println!(
            "  {:<16} {} ({} compressed)",
            image.platform.to_string(),
            image.manifest_digest,
            human(image.compressed_size())
        );
    }
    println!(
        "Copy it: skopeo copy --all oci:{out}:{} docker://REGISTRY/NAME",
        b.tags[0]
    );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_flags_table() {
        assert_eq!(
            binary_spec("a/b").unwrap().dst.to_string(),
            "/usr/local/bin/b"
        );
        assert_eq!(binary_spec("a:/opt/x").unwrap().dst.to_string(), "/opt/x");
        assert!(binary_spec("a:rel/x").is_err());
        assert!(binary_spec("a:/opt/../x").is_err());
        assert_eq!(words("[\"a b\",\"c\"]").unwrap(), ["a b", "c"]);
        assert_eq!(words(" a  b ").unwrap(), ["a", "b"]);
        assert!(words("[1]").is_err());
        assert_eq!(port("8080").unwrap(), "8080/tcp");
        assert_eq!(port("53/udp").unwrap(), "53/udp");
        assert!(port("0").is_err() && port("80/xyz").is_err() && port("x").is_err());
        assert!(key_value("=v", "--env").is_err());
        assert_eq!(
            key_value("A=b=c", "--env").unwrap(),
            ("A".into(), "b=c".into())
        );
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(
            modules(&[
                "java.management".into(),
                " jdk.zipfs".into(),
                "java.management".into()
            ])
            .unwrap(),
            ["java.management", "jdk.zipfs"]
        );
        for bad in ["java..sql", "9java", "java.sql;rm", ".x"] {
            assert!(modules(&[bad.into()]).is_err(), "{bad}");
        }
    }

    #[test]
    fn copy_from_splits() {
        let ok = |s: &str, r: &str, src: &str, dst: &str| {
            assert_eq!(
                split_copy_from(s).unwrap(),
                (r.to_owned(), src.to_owned(), dst.to_owned()),
                "{s}"
            );
        };
        ok(
            "bb.oci:bb:1:/bin/wget",
            "bb.oci:bb:1",
            "/bin/wget",
            "/bin/wget",
        );
        ok(
            "bb.oci:/bin/wget:/usr/local/bin/wget",
            "bb.oci",
            "/bin/wget",
            "/usr/local/bin/wget",
        );
        ok(
            "docker://127.0.0.1:5000/busybox:1:/bin/wget",
            "docker://127.0.0.1:5000/busybox:1",
            "/bin/wget",
            "/bin/wget",
        );
        ok(
            "oci-archive:/tmp/b.tar:/bin/wget",
            "oci-archive:/tmp/b.tar",
            "/bin/wget",
            "/bin/wget",
        );
        ok("oci:/d:/a:/b", "oci:/d", "/a", "/b");
        for bad in ["bb.oci", ":/bin/wget", "bb.oci:bin/wget"] {
            assert!(split_copy_from(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn healthcheck_flags() {
        let with = |f: fn(&mut BuildArgs)| {
            let mut a = BuildArgs::default();
            f(&mut a);
            healthcheck(&a).map_err(|e| format!("{e:#}"))
        };
        assert_eq!(with(|_| {}), Ok(None));
        let check = with(|a| {
            a.healthcheck = Some(r#"["/app", "--ping"]"#.into());
            a.health_interval = Some("5s".into());
            a.health_retries = Some(2);
        })
        .expect("valid")
        .expect("a check");
        assert_eq!(
            check.test,
            crate::oci::HealthTest::Exec(vec!["/app".into(), "--ping".into()])
        );
        assert_eq!(
            (check.interval, check.timeout, check.retries),
            (Some(5_000_000_000), None, Some(2))
        );
        assert_eq!(
            with(|a| a.healthcheck = Some("NONE".into())).map(|c| c.map(|c| c.test)),
            Ok(Some(crate::oci::HealthTest::Disabled))
        );
        let err = |f| with(f).expect_err("invalid");
        assert!(
            err(|a| {
                a.healthcheck = Some("none".into());
                a.health_timeout = Some("1s".into());
            })
            .contains("turns the check off")
        );
        assert!(err(|a| a.healthcheck = Some("  ".into())).contains("give the program"));
        assert!(err(|a| a.healthcheck = Some("[]".into())).contains("give the program"));
        assert!(err(|a| a.healthcheck = Some("[1]".into())).contains("JSON array"));
        assert!(
            err(|a| {
                a.healthcheck = Some("/app".into());
                a.health_interval = Some("30".into());
            })
            .starts_with("--health-interval: duration \"30\": expected a number and a unit")
        );
        assert!(
            err(|a| {
                a.healthcheck = Some("/app".into());
                a.health_start_period = Some("0s".into());
            })
            .contains("at least 1ms")
        );
        assert!(
            err(|a| {
                a.healthcheck = Some("/app".into());
                a.health_retries = Some(0);
            })
            .contains("at least 1")
        );
    }

    #[test]
    fn default_names_are_valid_tags() {
        let cases = [
            ("app", "app"),
            ("My App", "my-app"),
            ("a..b", "a-b"),
            ("a__b", "a-b"),
            ("a--b", "a--b"),
            ("a---b", "a-b"),
            ("a._b", "a-b"),
            ("_x_", "x"),
            ("libfoo.so.1", "libfoo.so.1"),
            ("caf\u{e9}", "caf"),
            ("___", "image"),
            ("", "image"),
        ];
        for (input, want) in cases {
            let name = clean_name(input);
            assert_eq!(name, want, "{input:?}");
            let tagged = Tagged::parse(&name).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            crate::oci::check_tag(&tagged.to_string()).unwrap();
        }
    }
}
