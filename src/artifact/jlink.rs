//! `--jlink`: a runtime of just the modules the app's class path needs.
//! jdeps (jdeps(1)) analyses every jar of the class path (the app jars,
//! the jars their Class-Path names, the jars of the user's trees, and
//! what a Spring Boot jar nests), recursively, at the runtime's release
//! for multi-release jars; what it cannot resolve is reported, not
//! fatal. Modules only reflection reaches come from `--add-modules` and
//! [`ALWAYS`]. jlink then writes the runtime.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use super::ArtifactError;
use super::jar::{read_jar, unpack_boot};

/// Modules jdeps cannot see being used: TLS with elliptic-curve ciphers
/// (jdk.crypto.ec, loaded by the security provider list), zip file systems
/// and DNS lookups through JNDI.
pub const ALWAYS: &[&str] = &["jdk.crypto.ec", "jdk.naming.dns", "jdk.zipfs"];
/// Packages of unresolved classes named in the warning; the rest counted.
const MAX_LISTED: usize = 5;

/// A runtime jlink wrote, and how its modules were chosen.
pub struct Jlinked {
    /// Holds the runtime at `runtime/`; removed when dropped.
    pub dir: tempfile::TempDir,
    /// One line saying where the modules came from.
    pub note: String,
    /// What jdeps could not resolve, for the build's warnings.
    pub warnings: Vec<String>,
}

impl Jlinked {
    pub fn runtime(&self) -> PathBuf {
        self.dir.path().join("runtime")
    }
}

/// Runs jdeps over `jars` (host paths) and jlink from the JDK at `home`.
pub fn jlink(
    home: &Path,
    jars: &[PathBuf],
    add_modules: &[String],
) -> Result<Jlinked, ArtifactError> {
    if jars.is_empty() {
        return Err(ArtifactError::invalid(
            "--jlink",
            "no jars to analyse: give --from-jar, or a --from-dir tree holding the app's jars",
        ));
    }
    check_modules(home, add_modules)?;
    let tmp = tempfile::tempdir().map_err(|e| ArtifactError::io(Path::new("/tmp"), e))?;
    let inputs = analysis_inputs(jars, tmp.path())?;
    let release = feature_release(home).unwrap_or_else(|| "base".into());
    let class_path = std::env::join_paths(&inputs)
        .map_err(|e| ArtifactError::invalid("--jlink", format!("a jar's path: {e}")))?;
    let jdeps = home.join("bin/jdeps");
    let start = |mode: &[&str]| -> Result<Child, ArtifactError> {
        Command::new(&jdeps)
            .args(["--multi-release", &release, "-R", "--class-path"])
            .arg(&class_path)
            .args(mode)
            .args(&inputs)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| ArtifactError::Tool {
                command: jdeps.display().to_string(),
                why: format!("{e}; --jlink needs a JDK (with jdeps and jlink), not a JRE"),
            })
    };
    // Both analyses at once: each is a JVM start and a walk of every jar.
    let modules_run = start(&["--ignore-missing-deps", "--print-module-deps"])?;
    let missing_run = start(&["--missing-deps"])?;
    let finish = |child: Child, what: &str| -> Result<Output, ArtifactError> {
        child.wait_with_output().map_err(|e| ArtifactError::Tool {
            command: format!("{} {what}", jdeps.display()),
            why: e.to_string(),
        })
    };
    let modules_out = finish(modules_run, "--print-module-deps")?;
    let missing_out = finish(missing_run, "--missing-deps")?;
    if !modules_out.status.success() {
        return Err(ArtifactError::Tool {
            command: format!("{} --print-module-deps", jdeps.display()),
            why: String::from_utf8_lossy(&modules_out.stderr)
                .trim()
                .to_string(),
        });
    }
    let found = parse_module_deps(&String::from_utf8_lossy(&modules_out.stdout));
    let mut warnings = Vec::new();
    if missing_out.status.success() {
        let missing = parse_missing_deps(&String::from_utf8_lossy(&missing_out.stdout));
        if let Some(w) = missing_warning(&missing) {
            warnings.push(w);
        }
    } else {
        warnings.push(format!(
            "jdeps --missing-deps failed, so classes the jars reference but none has are not \
             reported: {}",
            String::from_utf8_lossy(&missing_out.stderr).trim()
        ));
    }

    let mut modules: BTreeSet<String> = found.iter().cloned().collect();
    modules.extend(ALWAYS.iter().map(|m| (*m).to_string()));
    modules.extend(add_modules.iter().cloned());
    let modules: Vec<String> = modules.into_iter().collect();
    let dest = tmp.path().join("runtime");
    let jlink = home.join("bin/jlink");
    let out = Command::new(&jlink)
        .arg("--add-modules")
        .arg(modules.join(","))
        .args([
            "--strip-debug",
            "--no-man-pages",
            "--no-header-files",
            "--compress=2",
        ])
        .arg("--output")
        .arg(&dest)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| ArtifactError::Tool {
            command: jlink.display().to_string(),
            why: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(ArtifactError::Tool {
            command: jlink.display().to_string(),
            why: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    // The unpacked fat jars are not needed once jdeps is done.
    for n in 0..jars.len() {
        let _ = std::fs::remove_dir_all(tmp.path().join(format!("boot-{n}")));
    }
    let mut note = format!(
        "jlink modules: {} (jdeps over {} jar{}",
        modules.join(","),
        jars.len(),
        if jars.len() == 1 { "" } else { "s" }
    );
    note.push_str(&format!("; always {}", ALWAYS.join(",")));
    if !add_modules.is_empty() {
        note.push_str(&format!("; --add-modules {}", add_modules.join(",")));
    }
    note.push(')');
    Ok(Jlinked {
        dir: tmp,
        note,
        warnings,
    })
}

/// Module names must be modules of the JDK (its `jmods/NAME.jmod`).
fn check_modules(home: &Path, modules: &[String]) -> Result<(), ArtifactError> {
    let jmods = home.join("jmods");
    if !jmods.is_dir() {
        // jlink says what is missing.
        return Ok(());
    }
    let unknown: Vec<&str> = modules
        .iter()
        .filter(|m| !jmods.join(format!("{m}.jmod")).is_file())
        .map(String::as_str)
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(ArtifactError::invalid(
        "--add-modules",
        format!(
            "{} {} not a module of {} (see {} --list-modules)",
            unknown.join(", "),
            if unknown.len() == 1 { "is" } else { "are" },
            home.display(),
            home.join("bin/java").display()
        ),
    ))
}

/// The jars as jdeps should see them: a Spring Boot jar's nested classes
/// and jars unpacked below `tmp`, the others as they are.
fn analysis_inputs(jars: &[PathBuf], tmp: &Path) -> Result<Vec<PathBuf>, ArtifactError> {
    let mut inputs = Vec::new();
    for (n, jar) in jars.iter().enumerate() {
        let nested = read_jar(jar)?;
        if nested.boot_libs.is_empty() {
            inputs.push(jar.clone());
            continue;
        }
        let unpacked = unpack_boot(jar, &tmp.join(format!("boot-{n}")))?;
        inputs.extend(unpacked.classes);
        inputs.extend(unpacked.libs);
    }
    Ok(inputs)
}

/// The feature release of the JDK at `home` (`17` for 17.0.15), from
/// its `release` file: the version multi-release jars are read at.
fn feature_release(home: &Path) -> Option<String> {
    let text = std::fs::read_to_string(home.join("release")).ok()?;
    parse_release(&text)
}

fn parse_release(text: &str) -> Option<String> {
    let version = text
        .lines()
        .find_map(|l| l.strip_prefix("JAVA_VERSION="))?
        .trim()
        .trim_matches('"');
    let feature = version.split(['.', '-', '+']).next()?;
    (feature.parse::<u32>().ok()? >= 9).then(|| feature.to_string())
}

/// `--print-module-deps` prints one comma-separated line.
fn parse_module_deps(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty() && !m.contains(' '))
        .map(String::from)
        .collect()
}

/// `--missing-deps` prints, per archive, `ARCHIVE -> not found` and then
/// `   CLASS -> MISSING   not found` lines: archive → missing classes.
fn parse_missing_deps(stdout: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut archive = String::new();
    for line in stdout.lines() {
        let Some((from, to)) = line.split_once("->") else {
            continue;
        };
        if !line.starts_with(char::is_whitespace) {
            archive = from.trim().to_string();
            continue;
        }
        if let Some(class) = to.split_whitespace().next()
            && to.contains("not found")
        {
            out.entry(archive.clone())
                .or_default()
                .insert(class.to_string());
        }
    }
    out
}

/// One warning for every class jdeps could not find, by package.
fn missing_warning(missing: &BTreeMap<String, BTreeSet<String>>) -> Option<String> {
    let total: usize = missing.values().map(BTreeSet::len).sum();
    if total == 0 {
        return None;
    }
    let mut packages: BTreeMap<String, (usize, BTreeSet<&str>)> = BTreeMap::new();
    for (archive, classes) in missing {
        for class in classes {
            // By package; a class of the unnamed package by itself.
            let package = class
                .rsplit_once('.')
                .map_or(class.as_str(), |(p, _)| p)
                .to_string();
            let e = packages.entry(package).or_default();
            e.0 += 1;
            e.1.insert(archive);
        }
    }
    let mut listed: Vec<String> = packages
        .iter()
        .take(MAX_LISTED)
        .map(|(p, (n, from))| {
            let from: Vec<&str> = from.iter().copied().collect();
            format!("{p} ({n} from {})", from.join(", "))
        })
        .collect();
    if packages.len() > MAX_LISTED {
        listed.push(format!("{} more packages", packages.len() - MAX_LISTED));
    }
    Some(format!(
        "jdeps found {total} class{} the jars use but none of them has, so the modules those \
         need are not known: {}; if the app runs that code, add the jars that have them, or \
         the modules with --add-modules M,...",
        if total == 1 { "" } else { "es" },
        listed.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_jdeps_prints() {
        assert_eq!(
            parse_module_deps("Warning: split package\njava.base,java.management,java.sql\n"),
            ["java.base", "java.management", "java.sql"]
        );
        assert!(parse_module_deps("").is_empty());
        let missing = parse_missing_deps(
            "m2.jar -> not found\n   M2    -> com.example.Lib    not found\n   M2   -> com.example.Other  not found\n\
             lib.jar -> not found\n   a.B    -> org.osgi.Thing   not found\n",
        );
        assert_eq!(missing.len(), 2);
        assert_eq!(missing["m2.jar"].len(), 2);
        let w = missing_warning(&missing).unwrap();
        assert!(
            w.starts_with("jdeps found 3 classes the jars use but none of them has")
                && w.contains("com.example (2 from m2.jar); org.osgi (1 from lib.jar)"),
            "{w}"
        );
        assert!(missing_warning(&BTreeMap::new()).is_none());
        assert_eq!(
            parse_release("JAVA_VERSION=\"17.0.15\"\n").as_deref(),
            Some("17")
        );
        assert_eq!(parse_release("JAVA_VERSION=\"21\"").as_deref(), Some("21"));
        assert_eq!(parse_release("JAVA_VERSION=\"1.8.0_392\""), None);
        assert_eq!(parse_release("IMPLEMENTOR=x"), None);
    }
}
