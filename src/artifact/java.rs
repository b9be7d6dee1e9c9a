//! Java: `--from-jar JAR[:DST]` and the runtime it runs on: the JDK/JRE
//! from `--java-home`, `JAVA_HOME` or `java` on PATH (a JRE's worth of it:
//! no jmods, headers, man pages or sources, and only the `java` launcher),
//! or with `--jlink` a minimal runtime of the modules its class path needs
//! (`jlink.rs`).

use std::path::{Path, PathBuf};

use crate::rootfs::{ImagePath, LayerKind};

use super::dir::{Exclude, Links, add_dir};
use super::jlink::jlink;
use super::{ArtifactError, Assembly};

/// Parts of a JDK a jar does not run with.
const JDK_EXCLUDE: &[&str] = &[
    "jmods",
    "include",
    "man",
    "lib/src.zip",
    "demo",
    "sample",
    "legal",
];
/// Where a jlinked runtime goes in the image.
const JLINK_HOME: &str = "/opt/java";

/// Finds the Java home: the flag, JAVA_HOME, or `java` on PATH.
pub fn find_java_home(
    explicit: Option<&Path>,
    env_java_home: Option<&Path>,
    path_var: Option<&std::ffi::OsStr>,
) -> Result<PathBuf, ArtifactError> {
    let candidate = if let Some(p) = explicit.or(env_java_home) {
        p.to_path_buf()
    } else {
        let java = path_var
            .into_iter()
            .flat_map(std::env::split_paths)
            .map(|d| d.join("java"))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                ArtifactError::invalid(
                    "java",
                    "no Java runtime: give --java-home DIR, set JAVA_HOME, or put java on PATH",
                )
            })?;
        let real = std::fs::canonicalize(&java).map_err(|e| ArtifactError::io(&java, e))?;
        real.parent()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .ok_or_else(|| ArtifactError::invalid(real.display(), "is not in a bin/ directory"))?
    };
    let home = std::fs::canonicalize(&candidate).map_err(|e| ArtifactError::io(&candidate, e))?;
    if !home.join("bin/java").is_file() {
        return Err(ArtifactError::invalid(
            home.display(),
            "is not a Java home (no bin/java)",
        ));
    }
    Ok(home)
}

/// With `--sysroot`: the Java home `--java-home` names inside the root
/// (its host directory and its image path). JAVA_HOME and PATH describe
/// this machine, not the sysroot, so they are not consulted; `--jlink`
/// would run the sysroot's jlink with this machine's loader and
/// libraries, so it is refused.
pub fn find_java_home_in_root(
    asm: &mut Assembly,
    explicit: Option<&Path>,
    jlink: bool,
) -> Result<(PathBuf, ImagePath), ArtifactError> {
    if jlink {
        return Err(ArtifactError::invalid(
            "--jlink",
            "runs the runtime's jlink on this machine, which --sysroot keeps out of the build: \
             jlink the runtime beforehand, put it in the sysroot and name it with --java-home",
        ));
    }
    let Some(home) = explicit else {
        return Err(ArtifactError::invalid(
            "--sysroot",
            "a Java runtime from the sysroot needs --java-home DIR, its path inside the sysroot \
             (JAVA_HOME and PATH are this machine's, not the sysroot's)",
        ));
    };
    let root = asm.resolver.root();
    let found = root
        .lookup_dir(home)
        .map_err(crate::resolve::ResolveError::from)?
        .ok_or_else(|| {
            ArtifactError::invalid(
                home.display(),
                format!(
                    "--java-home: not a directory in the sysroot {}",
                    root.dir().display()
                ),
            )
        })?;
    let host = root.host(&found.real);
    if !host.join("bin/java").is_file() {
        return Err(ArtifactError::invalid(
            host.display(),
            "--java-home: is not a Java home (no bin/java)",
        ));
    }
    Ok((host, ImagePath::new(&found.real)?))
}

/// What `--jlink` builds a runtime for.
pub struct JlinkFor<'a> {
    /// Every jar of the class path, on the host.
    pub jars: &'a [PathBuf],
    /// `--add-modules`.
    pub add_modules: &'a [String],
}

/// Adds a runtime; returns the image path of its `java`.
pub fn add_java_runtime(
    asm: &mut Assembly,
    home: &Path,
    image_home: &ImagePath,
    jlink_for: Option<JlinkFor<'_>>,
) -> Result<ImagePath, ArtifactError> {
    let runtime = |_: &Path| LayerKind::Runtime;
    if let Some(request) = jlink_for {
        let out = jlink(home, request.jars, request.add_modules)?;
        let rt = out.runtime();
        let full = tree_size(home, &jdk_exclude());
        let small = tree_size(&rt, &Exclude::default());
        asm.note(out.note.clone());
        asm.note(format!(
            "jlink runtime: {:.1} MB (the full runtime from {} would be {:.1} MB)",
            small as f64 / 1e6,
            home.display(),
            full as f64 / 1e6
        ));
        asm.warn_all(out.warnings.iter().cloned());
        let dst = ImagePath::new(JLINK_HOME)?;
        let origin = match request.jars.first() {
            Some(jar) => format!("--jlink of {}", super::source_name(jar)),
            None => "--jlink".to_string(),
        };
        add_dir(
            asm,
            &rt,
            &dst,
            &runtime,
            &Exclude::default(),
            Links::Runtime,
            &origin,
        )?;
        asm.keep_temp(out.dir);
        return Ok(dst.join("bin/java")?);
    }
    let dst = image_home.clone();
    let origin = format!("Java runtime {image_home}");
    add_dir(
        asm,
        home,
        &dst,
        &runtime,
        &jdk_exclude(),
        Links::Runtime,
        &origin,
    )?;
    Ok(dst.join("bin/java")?)
}

fn jdk_exclude() -> Exclude {
    let mut e = Exclude::new(JDK_EXCLUDE.iter().copied());
    e.only_bin = Some(vec!["java".into(), "keytool".into()]);
    e
}

fn tree_size(dir: &Path, exclude: &Exclude) -> u64 {
    walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .filter_entry(|e| {
            e.path()
                .strip_prefix(dir)
                .map(|rel| rel.as_os_str().is_empty() || !exclude.matches(rel))
                .unwrap_or(true)
        })
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// `--from-jar`: the jar in the app layer at `dst`. A jar given as a
/// symlink (a Bazel sandbox input, `app.jar -> app-1.0.jar`) is added as
/// the file it leads to, never as a link to a host path.
pub fn add_jar(asm: &mut Assembly, jar: &Path, dst: &ImagePath) -> Result<(), ArtifactError> {
    let meta = std::fs::metadata(jar).map_err(|e| ArtifactError::io(jar, e))?;
    if !meta.is_file() {
        return Err(ArtifactError::invalid(jar.display(), "is not a file"));
    }
    let real = std::fs::canonicalize(jar).map_err(|e| ArtifactError::io(jar, e))?;
    asm.add_named(
        LayerKind::App,
        &real,
        dst.clone(),
        format!("--from-jar {}", super::source_name(jar)),
    )
}
