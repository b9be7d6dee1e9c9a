//! The artifacts of a plan, added to the layer trees in a fixed order,
//! and the config values they suggest.

use std::path::Path;

use crate::artifact::binary::{self, add_binary};
use crate::artifact::classpath::ClassPath;
use crate::artifact::layering::Layering;
use crate::artifact::{ArtifactError, Assembly, MissingPolicy, dir, java, profile, python};
use crate::plan::{BuildPlan, Writable};
use crate::profile::Runtime;
use crate::rootfs::{Entry, ImagePath, LayerKind, RootfsError, base};

use super::BuildError;

/// Config values the artifacts suggest; the user's flags override them.
#[derive(Clone, Debug, Default)]
pub(super) struct Defaults {
    pub(super) entrypoint: Vec<String>,
    pub(super) cmd: Vec<String>,
    pub(super) workdir: Option<String>,
    pub(super) env: Vec<(String, String)>,
    pub(super) expose: Vec<String>,
}

/// Adds every artifact, programs first (the first program is the one
/// `--dlopen` libraries belong to and the default entrypoint).
pub(super) fn add_artifacts(asm: &mut Assembly, plan: &BuildPlan) -> Result<Defaults, BuildError> {
    let mut d = Defaults::default();
    let user_links = if plan.follow_links {
        dir::Links::Follow
    } else {
        dir::Links::Keep
    };
    for spec in &plan.binaries {
        add_binary(asm, &spec.src, &spec.dst)?;
        if d.entrypoint.is_empty() {
            d.entrypoint = vec![spec.dst.to_string()];
        }
    }
    let mut java_runtime = plan
        .profiles
        .iter()
        .any(|(_, p)| p.runtime == Some(Runtime::Java));
    java_runtime |= !plan.jars.is_empty() || plan.java.jlink;
    // Which jars are libraries decides their layer with or without a
    // runtime from mkimage (an app may bring its own under --from-dir).
    let class_path = scan_class_path(plan)?;
    asm.warn_all(class_path.warnings.iter().cloned());
    let layering = Layering::new(class_path.named.keys().cloned());
    for (name, profile) in &plan.profiles {
        profile::apply(asm, profile, name, plan.full_stdlib)?;
        if plan.binaries.is_empty() {
            if let Some(e) = &profile.entrypoint {
                d.entrypoint = e.clone();
                d.cmd = profile.cmd.clone().unwrap_or_default();
            }
            if profile.workdir.is_some() {
                d.workdir = profile.workdir.clone();
            }
        }
        d.env
            .extend(profile.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        d.expose.extend(profile.expose.iter().cloned());
    }
    for venv in &plan.venvs {
        let venv = python::Venv::open(venv)?;
        let python = python::add_venv(asm, &venv, plan.full_stdlib, user_links)?;
        let bin = venv.image_dir()?.join("bin").map_err(ArtifactError::from)?;
        d.env
            .push(("VIRTUAL_ENV".into(), venv.image_dir()?.to_string()));
        d.env
            .push(("PATH".into(), format!("{bin}:{}", base::PATH_ENV)));
        if d.entrypoint.is_empty() {
            d.entrypoint = vec![python.to_string()];
        }
    }
    if java_runtime {
        // A sysroot is the whole world of the build: the runtime comes
        // from it, never from this machine's JAVA_HOME or PATH.
        let (home, image_home) = if asm.resolver.root().dir() == Path::new("/") {
            let home = java::find_java_home(
                plan.java.home.as_deref(),
                plan.java.env_home.as_deref(),
                plan.java.path.as_deref(),
            )?;
            let image = ImagePath::new(&home).map_err(ArtifactError::from)?;
            (home, image)
        } else {
            java::find_java_home_in_root(asm, plan.java.home.as_deref(), plan.java.jlink)?
        };
        let jars = class_path.host_jars();
        let jlink_for = plan.java.jlink.then(|| java::JlinkFor {
            jars: &jars,
            add_modules: &plan.java.add_modules,
        });
        let java_bin = java::add_java_runtime(asm, &home, &image_home, jlink_for)?;
        for jar in &plan.jars {
            java::add_jar(asm, &jar.src, &jar.dst)?;
        }
        if d.entrypoint.is_empty() {
            d.entrypoint = vec![java_bin.to_string()];
            if let Some(jar) = plan.jars.first() {
                d.entrypoint
                    .extend(["-jar".to_string(), jar.dst.to_string()]);
            }
        }
    }
    for (flag, trees) in [("--from-dir", &plan.dirs), ("--include", &plan.includes)] {
        for m in trees {
            let origin = format!("{flag} {}", crate::artifact::source_name(&m.src));
            let layer_for = |rel: &Path| match m.dst.join(rel) {
                Ok(image) => layering.layer(&image, &m.src.join(rel)),
                Err(_) => LayerKind::App,
            };
            let meta = std::fs::metadata(&m.src).map_err(|e| ArtifactError::io(&m.src, e))?;
            if meta.is_dir() {
                let exclude = dir::Exclude::default();
                dir::add_dir(
                    asm, &m.src, &m.dst, &layer_for, &exclude, user_links, &origin,
                )?;
                continue;
            }
            let layer = layering.layer(&m.dst, &m.src);
            // A file named on the command line that is a symlink brings
            // what it points to, as `cp` and `tar -h` treat their
            // arguments: build sandboxes (Bazel's) hand inputs over as
            // symlinks to paths that differ from build to build.
            let named = if std::fs::symlink_metadata(&m.src).is_ok_and(|l| l.is_symlink()) {
                let real =
                    std::fs::canonicalize(&m.src).map_err(|e| ArtifactError::io(&m.src, e))?;
                if let Some(fs) = crate::rootfs::host::virtual_fs(&real) {
                    return Err(RootfsError::Virtual {
                        path: m.src.clone(),
                        fs,
                    }
                    .into());
                }
                real
            } else {
                m.src.clone()
            };
            asm.add_named(layer, &named, m.dst.clone(), origin.clone())?;
            let input = crate::resolve::Input::outside(&m.src, m.dst.as_path());
            if let Ok(closure) = asm.resolver.resolve(&input) {
                crate::artifact::add_closure(
                    asm,
                    &closure,
                    layer,
                    &origin,
                    MissingPolicy::Warn(&crate::artifact::NO_SONAMES),
                )?;
            }
        }
    }
    let mut dlopen: Vec<String> = plan
        .profiles
        .iter()
        .flat_map(|(_, p)| p.dlopen.clone())
        .collect();
    dlopen.extend(plan.dlopen.iter().cloned());
    binary::add_dlopen(asm, &dlopen)?;

    let mut writable: Vec<Writable> = Vec::new();
    for (_, p) in &plan.profiles {
        for w in &p.writable {
            writable.push(Writable {
                path: ImagePath::new(w).map_err(RootfsError::from)?,
                uid: base::NONROOT_UID,
                gid: base::NONROOT_UID,
            });
        }
    }
    writable.extend(plan.writable.iter().cloned());
    for w in writable {
        asm.add(
            LayerKind::App,
            w.path.clone(),
            Entry::dir(0o755).owned(w.uid, w.gid),
            "--writable",
        )?;
    }
    // Java skips a Class-Path entry that is not there, and the app fails
    // later with NoClassDefFoundError.
    for (image, named) in &class_path.named {
        if asm.layers.has_file(image.as_path()) {
            continue;
        }
        let fix = match &named.host {
            Some(host) => format!("--include {}:{image}", host.display()),
            None => format!(
                "--from-dir DIR:{}",
                image.parent().unwrap_or_else(ImagePath::root)
            ),
        };
        asm.warn(format!(
            "{}'s Class-Path names {image}, which is not in the image (its classes will be \
             missing at run time): add it, e.g. {fix}",
            named.by
        ));
    }
    Ok(d)
}

/// The app jars, and the jars of every tree the user adds.
fn scan_class_path(plan: &BuildPlan) -> Result<ClassPath, ArtifactError> {
    let apps: Vec<(&Path, &ImagePath)> = plan
        .jars
        .iter()
        .map(|j| (j.src.as_path(), &j.dst))
        .collect();
    let trees: Vec<(&Path, &ImagePath)> = plan
        .dirs
        .iter()
        .chain(&plan.includes)
        .map(|m| (m.src.as_path(), &m.dst))
        .collect();
    ClassPath::scan(&apps, &trees)
}

/// /root is 0700 in the base layer; when artifacts live below it (a
/// pyenv interpreter in /root/.pyenv, a venv in /root), the non-root user
/// must be able to pass through it.
pub(super) fn open_root_for_artifacts(asm: &mut Assembly) -> Result<(), BuildError> {
    let root_dir = ImagePath::new("/root").map_err(RootfsError::from)?;
    let used = asm
        .layers
        .trees
        .iter()
        .filter(|(k, _)| **k != LayerKind::Base)
        .any(|(_, t)| {
            t.iter()
                .any(|(p, _)| p.as_path().starts_with("/root") && *p != root_dir)
        });
    if used {
        asm.warn(
            "files below /root are in the image: /root is made 0711 so the non-root user can reach them",
        );
        asm.layers
            .tree(LayerKind::Base)
            .insert(root_dir, Entry::dir(0o711))
            .map_err(RootfsError::from)?;
    }
    Ok(())
}
