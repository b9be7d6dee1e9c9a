//! Flags into work: the one step that reads the file system and the
//! environment (SOURCE_DATE_EPOCH, JAVA_HOME, PATH, the cache's and the
//! registry logins' variables, the current directory for relative paths,
//! profile files, the host's threads), turning [`BuildArgs`] (checked
//! alone first, by [`super::check`]) into a [`Job`]: one [`BuildPlan`] per
//! platform, and where the result goes. Nothing is built or written here.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};

use crate::cli::output;
use crate::cli::platforms::Target;
use crate::plan::{BuildPlan, JavaPlan, Mapping, OutputFormat};
use crate::reference::Tagged;
use crate::registry::{PushOptions, Reference};
use crate::rootfs::ImagePath;

use super::args::BuildArgs;
use super::check::{Checked, check, check_references};
use super::flags::{binary_spec, clean_name, split_mapping};

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
    let checked = check(args)?;
    let targets = crate::cli::platforms::targets(&args.platform, &args.sysroot)?;
    let plans = targets
        .iter()
        .map(|t| build_plan(args, &checked, t))
        .collect::<anyhow::Result<Vec<_>>>()?;
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
fn build_plan(args: &BuildArgs, checked: &Checked, target: &Target) -> anyhow::Result<BuildPlan> {
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
    // The name from the input's, when -t did not give one: checked by
    // the same grammars as -t's.
    let references = match &checked.references {
        Some(references) => references.clone(),
        None => {
            let t = Tagged::parse(&name).with_context(|| {
                format!(
                    "the image name {name:?} made from the input's name: give one with -t NAME[:TAG]"
                )
            })?;
            let references = vec![t.to_string()];
            check_references(&references, args.debug)?;
            references
        }
    };
    let format = checked.format;
    let output = args.output.clone().unwrap_or_else(|| {
        PathBuf::from(match format {
            OutputFormat::Oci => format!("{name}.oci"),
            OutputFormat::OciArchive | OutputFormat::DockerArchive => format!("{name}.tar"),
        })
    });

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
            add_modules: checked.add_modules.clone(),
        },
        full_stdlib: args.full_stdlib,
        follow_links: args.follow_links,
        dlopen: args.dlopen.clone(),
        writable: checked.writable.clone(),
        output,
        format,
        references,
        config: checked.config.clone(),
        ca_certs: checked.ca_certs.clone(),
        extra_cas: args.ca_cert.clone(),
        tzdata: checked.tzdata.clone(),
        gconv: checked.gconv.clone(),
        locales: args.locale.clone(),
        ld_cache: checked.ld_cache,
        sysroot: target.sysroot.clone(),
        platform: target.platform,
        epoch: source_date_epoch()?,
        threads: std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN),
        compression: checked.compression,
        sbom: args.sbom.clone(),
        debug: args.debug,
        copy_from: checked
            .copy_from
            .iter()
            .map(|(reference, src, dst)| {
                Ok(crate::plan::CopyFrom {
                    reference: reference.clone(),
                    src: src.clone(),
                    dst: dst.clone(),
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
        cache: crate::cli::cache::cache_settings(args.no_cache)?,
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
