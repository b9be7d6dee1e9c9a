//! Flags into work: the one step that reads the file system and the
//! environment (SOURCE_DATE_EPOCH, JAVA_HOME, PATH, the cache's and the
//! registry logins' variables, the current directory for relative paths,
//! profile files, the host's threads), turning [`BuildArgs`] into a
//! [`Job`]: one checked [`BuildPlan`] per platform, and where the result
//! goes. Nothing is built or written here.

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};

use crate::base_files::certs::CaCerts;
use crate::base_files::tzdata::Tzdata;
use crate::cli::output;
use crate::cli::platforms::Target;
use crate::layer::Compression;
use crate::oci::provenance;
use crate::plan::{BuildPlan, ConfigPlan, Gconv, JavaPlan, LdCacheMode, Mapping, OutputFormat};
use crate::reference::Tagged;
use crate::registry::{PushOptions, Reference};
use crate::rootfs::ImagePath;
use crate::rootfs::base::{DEFAULT_USER, UserSpec};

use super::args::{BuildArgs, LdCacheArg};
use super::flags::{
    binary_spec, clean_name, healthcheck, key_value, modules, port, split_copy_from, split_mapping,
    words, writable_dir,
};

/// A build to run, every flag checked and every input located: what
/// [`super::run`] needs and nothing of clap.
pub(super) struct Job {
    /// One per platform, in `--platform`'s order.
    pub plans: Vec<BuildPlan>,
    /// `--push`: where, and how to reach it.
    pub push: Option<(Reference, PushOptions)>,
    pub digest_file: Option<PathBuf>,
    pub quiet: bool,
    pub verbose: bool,
    pub json: bool,
}

/// Resolves `args` into a [`Job`]; every error here comes before any work.
pub(super) fn job(args: &BuildArgs) -> anyhow::Result<Job> {
    let targets = crate::cli::platforms::targets(&args.platform, &args.sysroot)?;
    let plans = targets
        .iter()
        .map(|t| build_plan(args, t))
        .collect::<anyhow::Result<Vec<_>>>()?;
    // The JSON summary and the debug image describe one image; an index
    // of several has neither yet.
    ensure!(
        plans.len() == 1 || !(args.json || args.debug),
        "--json and --debug build one platform's image: give one --platform"
    );
    // A bad reference or registry flag fails before the build, not after.
    let push = match args.push.as_deref() {
        Some(r) => {
            let reference = Reference::parse(r)?;
            let mut opts = args.registry.options(&args.registry_ca_cert)?;
            // A base on the same registry: its layers are mounted from its
            // repository, not uploaded again.
            opts.mount_from = args
                .base
                .as_deref()
                .and_then(|b| b.strip_prefix("docker://"))
                .and_then(|b| Reference::parse(b).ok())
                .filter(|b| b.registry() == reference.registry())
                .map(|b| b.repository().to_owned());
            Some((reference, opts))
        }
        None => None,
    };
    if let Some(f) = &args.digest_file {
        output::check_digest_file(f)?;
    }
    Ok(Job {
        plans,
        push,
        digest_file: args.digest_file.clone(),
        quiet: args.quiet,
        verbose: args.verbose,
        json: args.json,
    })
}

/// Turns flags (and SOURCE_DATE_EPOCH) into a checked plan for one
/// platform, the patterns of artifact paths expanded for it.
fn build_plan(args: &BuildArgs, target: &Target) -> anyhow::Result<BuildPlan> {
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
        cache: crate::cli::cache::cache_plan(args.no_cache)?,
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

fn same_file(a: &Path, b: &Path) -> anyhow::Result<bool> {
    let ca = std::fs::canonicalize(a).with_context(|| format!("cannot read {}", a.display()))?;
    let cb = std::fs::canonicalize(b).with_context(|| format!("cannot read {}", b.display()))?;
    Ok(ca == cb || crate::rootfs::host::same_bytes(&ca, &cb)?)
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
