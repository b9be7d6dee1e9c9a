//! The flags that need neither the file system, the environment nor the
//! platform, checked once and on their own (the `LowArgs` half): a typo in
//! `--env` or `--expose` fails here, before any file is looked at.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::{Context, ensure};

use crate::base_files::certs::CaCerts;
use crate::base_files::tzdata::Tzdata;
use crate::layer::Compression;
use crate::oci::provenance;
use crate::plan::{ConfigPlan, Gconv, LdCacheMode, OutputFormat, Writable};
use crate::reference::Tagged;
use crate::rootfs::ImagePath;
use crate::rootfs::base::{DEFAULT_USER, UserSpec};

use super::args::{BuildArgs, LdCacheArg};
use super::flags::{healthcheck, key_value, modules, port, split_copy_from, words, writable_dir};

/// Every platform's plan shares these.
pub(super) struct Checked {
    /// `-t`'s, when given (else the name comes from the inputs).
    pub references: Option<Vec<String>>,
    pub format: OutputFormat,
    pub config: ConfigPlan,
    pub ca_certs: CaCerts,
    pub tzdata: Tzdata,
    pub gconv: Gconv,
    pub ld_cache: LdCacheMode,
    pub compression: Compression,
    pub writable: Vec<Writable>,
    pub add_modules: Vec<String>,
    /// `--copy-from`'s REF, SRC and DST.
    pub copy_from: Vec<(String, String, ImagePath)>,
}

/// Checks what of `args` can be checked alone.
pub(super) fn check(args: &BuildArgs) -> anyhow::Result<Checked> {
    // The JSON summary and the debug image describe one image; an index
    // of several has neither yet.
    ensure!(
        args.platform.len() <= 1 || !(args.json || args.debug),
        "--json and --debug build one platform's image: give one --platform"
    );
    let references = if args.tag.is_empty() {
        None
    } else {
        let references = args
            .tag
            .iter()
            .map(|t| Ok(Tagged::parse(t).context("-t")?.to_string()))
            .collect::<anyhow::Result<Vec<_>>>()?;
        check_references(&references, args.debug)?;
        Some(references)
    };
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
    Ok(Checked {
        references,
        format,
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
        tzdata,
        gconv,
        ld_cache: match args.ld_cache {
            LdCacheArg::Auto => LdCacheMode::Auto,
            LdCacheArg::Always => LdCacheMode::Always,
            LdCacheArg::None => LdCacheMode::None,
        },
        compression: Compression::new(args.compression.into(), args.compression_level)
            .map_err(|e| anyhow::anyhow!("--compression-level: {e}"))?,
        writable,
        add_modules: modules(&args.add_modules)?,
        copy_from: args
            .copy_from
            .iter()
            .map(|c| {
                let (reference, src, dst) = split_copy_from(c)?;
                let dst =
                    ImagePath::new(dst).with_context(|| format!("--copy-from {c}: bad DST"))?;
                ensure!(!dst.is_root(), "--copy-from {c}: DST must not be /");
                Ok((reference, src, dst))
            })
            .collect::<anyhow::Result<Vec<_>>>()?,
    })
}

/// Image references by docker's grammar (what `docker load` and a registry
/// accept) and then the layout's ref.name grammar, which is stricter
/// about some separators (`a__b`); with `--debug`, its references too.
pub(super) fn check_references(references: &[String], debug: bool) -> anyhow::Result<()> {
    for t in references {
        crate::oci::check_reference(t)?;
    }
    if debug {
        for t in crate::pipeline::debug::references(references) {
            crate::oci::check_reference(&t).context("--debug's tag")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elf::Arch;

    /// The check reads no file: inputs that do not exist pass it, and a
    /// bad flag fails it whatever the inputs.
    #[test]
    fn flags_are_checked_without_the_file_system() {
        let args = |f: fn(&mut BuildArgs)| {
            let mut a = BuildArgs {
                from_binary: vec!["/no/such/app".into()],
                profile: vec!["/no/such/profile.toml".into()],
                tzdata: "all".into(),
                gconv: "auto".into(),
                ..BuildArgs::default()
            };
            f(&mut a);
            check(&a)
                .map(|c| c.references)
                .map_err(|e| format!("{e:#}"))
        };
        assert_eq!(args(|_| {}), Ok(None));
        assert_eq!(
            args(|a| a.tag = vec!["app".into()]),
            Ok(Some(vec!["app:latest".into()]))
        );
        for (bad, want) in [
            (
                (|a: &mut BuildArgs| a.env = vec!["A B=c".into()]) as fn(&mut BuildArgs),
                "the name must be letters",
            ),
            (|a| a.expose = vec!["0".into()], "1-65535"),
            (|a| a.workdir = Some("rel".into()), "absolute path"),
            (|a| a.gconv = ",".into(), "charset names"),
            (
                |a| {
                    a.debug = true;
                    a.format = super::super::args::FormatArg::DockerArchive;
                },
                "--debug writes two images",
            ),
        ] {
            let err = args(bad).unwrap_err();
            assert!(err.contains(want), "{want}: {err}");
        }
        let two = |a: &mut BuildArgs| a.platform = vec![Arch::Amd64, Arch::Arm64];
        assert_eq!(args(two), Ok(None));
        let err = args(|a| {
            a.json = true;
            a.platform = vec![Arch::Amd64, Arch::Arm64];
        })
        .unwrap_err();
        assert!(err.contains("give one --platform"), "{err}");
    }
}
