//! Checks on the finished file tree: what a program of the app (the
//! executables of the app and dependencies layers) will look for at run
//! time that the image lacks. Each finding is a warning that names the
//! fix; nothing here changes the tree.
//!
//! * A shell. popen(3), system(3) and wordexp(3) run `/bin/sh -c`
//!   (glibc's _PATH_BSHELL); a program that imports an exec(3) or
//!   posix_spawn(3) function and has a shell's path among its strings
//!   runs that shell. Without one they fail with misleading errors:
//!   PostgreSQL's initdb reports "popen failure: Cannot allocate memory".
//! * Its install directory. A program built for a fixed prefix
//!   (`./configure --prefix`) that has its own directory compiled in, as
//!   PostgreSQL's programs do, finds its data relative to where it runs
//!   from or at the other directories compiled into it; moved elsewhere,
//!   or without those directories, it cannot.
//! * `$ORIGIN` paths (DT_RUNPATH, or strings such as `$ORIGIN/../share`)
//!   that lead to a directory beside the program on the host but to
//!   nothing in the image.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::artifact::Assembly;
use crate::elf::{is_elf, read_imports, read_path_strings};
use crate::image_path::normalise;
use crate::rootfs::{Kind, LayerKind, Source};

/// Functions that run their command through `/bin/sh -c`.
const SHELL_CALLS: &[&str] = &["popen", "system", "wordexp"];
/// Functions that start a program named by the caller, which may be a shell.
const EXEC_CALLS: &[&str] = &[
    "execl",
    "execle",
    "execlp",
    "execv",
    "execve",
    "execvp",
    "execvpe",
    "posix_spawn",
    "posix_spawnp",
];
/// Shell paths a program may name for an exec.
const SHELLS: &[&str] = &["/bin/sh", "/bin/bash", "/usr/bin/sh", "/usr/bin/bash"];
/// glibc's _PATH_BSHELL: what popen and system run.
const BSHELL: &str = "/bin/sh";
/// A small shell to offer when the root has one.
const DASH: &str = "/bin/dash";
/// First directories of a prefix that hold programs or libraries, not a
/// package's own directory (`/usr/lib/postgresql`: `postgresql`).
const PREFIX_DIRS: &[&str] = &["bin", "sbin", "lib", "lib64", "libexec", "share"];
/// Compiled-in directories that are never run-time data.
const NOT_DATA: &[&str] = &[
    "/usr/include",
    "/usr/share/doc",
    "/usr/share/man",
    "/usr/lib/debug",
    "/usr/src",
];

/// One executable of the app: where it is in the image and on the host.
struct Program {
    image: PathBuf,
    host: PathBuf,
}

/// Adds a warning to `asm` for everything the programs of the app and
/// dependencies layers will miss.
pub(super) fn check_programs(asm: &mut Assembly) {
    for program in programs(asm) {
        let imports: BTreeSet<String> = read_imports(&program.host)
            .map(|v| v.iter().map(|s| s.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        // A file that cannot be read again was read for its closure: what
        // it lacks is reported there.
        let strings = read_path_strings(&program.host).unwrap_or_default();
        check_shell(asm, &program, &imports, &strings);
        check_install_dir(asm, &program, &strings);
        check_origin_paths(asm, &program, &strings);
    }
}

/// Dynamically linked executables (a PT_INTERP) of the app and
/// dependencies layers, in path order.
fn programs(asm: &mut Assembly) -> Vec<Program> {
    let mut candidates = Vec::new();
    for (kind, tree) in &asm.layers.trees {
        if !matches!(kind, LayerKind::App | LayerKind::Deps) {
            continue;
        }
        for (path, entry) in tree.iter() {
            if let Kind::File {
                source: Source::Host(host),
                ..
            } = &entry.kind
                && entry.mode & 0o111 != 0
                && is_elf(host)
            {
                candidates.push(Program {
                    image: path.as_path().to_path_buf(),
                    host: host.clone(),
                });
            }
        }
    }
    candidates
        .into_iter()
        .filter(|p| {
            asm.resolver
                .elf_info(&p.host)
                .is_ok_and(|info| info.interp.is_some())
        })
        .collect()
}

fn check_shell(
    asm: &mut Assembly,
    program: &Program,
    imports: &BTreeSet<String>,
    strings: &BTreeSet<String>,
) {
    let mut needs: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for call in SHELL_CALLS.iter().filter(|c| imports.contains(**c)) {
        needs.entry(BSHELL).or_default().push(call);
    }
    let execs: Vec<&str> = EXEC_CALLS
        .iter()
        .copied()
        .filter(|c| imports.contains(*c))
        .collect();
    if !execs.is_empty() {
        for shell in SHELLS.iter().filter(|s| strings.contains(**s)) {
            needs.entry(shell).or_default().extend(&execs);
        }
    }
    for (shell, calls) in needs {
        if asm.layers.has_file(Path::new(shell)) {
            continue;
        }
        let how = if calls.iter().all(|c| SHELL_CALLS.contains(c)) {
            format!(", which run {shell},")
        } else {
            format!(" and names {shell},")
        };
        let symptom = if calls.contains(&"popen") {
            " (popen then fails with errors such as \"Cannot allocate memory\")"
        } else {
            ""
        };
        let fix = shell_fix(asm, shell);
        asm.warn(format!(
            "{} calls {}{how} but the image has no {shell}{symptom}: add one with {fix}",
            program.image.display(),
            calls.join(", "),
        ));
    }
}

/// `--from-binary ROOT_SHELL:SHELL`, with a shell the root has.
fn shell_fix(asm: &mut Assembly, shell: &str) -> String {
    let root = asm.resolver.root();
    let mut candidates = vec![shell];
    if shell == BSHELL {
        candidates.insert(0, DASH);
    }
    for c in candidates {
        if root.lookup(Path::new(c)).ok().flatten().is_some() {
            return format!("--from-binary {c}:{shell}");
        }
    }
    format!(
        "--from-binary SHELL:{shell} (the root {} has none)",
        root.dir().display()
    )
}

/// The warnings for a program that has its install directory compiled in.
fn check_install_dir(asm: &mut Assembly, program: &Program, strings: &BTreeSet<String>) {
    let Ok(real) = std::fs::canonicalize(&program.host) else {
        return;
    };
    let root = asm.resolver.root();
    let Some(installed) = root.image_of(&real) else {
        return;
    };
    let Some(dir) = installed.parent().map(Path::to_path_buf) else {
        return;
    };
    let dir_str = dir.to_string_lossy();
    if !strings.contains(dir_str.as_ref()) && !strings.contains(&format!("{dir_str}/")) {
        return;
    }
    let image = program.image.display();
    if program.image.parent() != Some(dir.as_path()) {
        asm.warn(format!(
            "{image} was built to run from {}, which is compiled into it (it finds its own files \
             relative to it): keep it there, e.g. --from-binary {}:{}",
            dir.display(),
            program.host.display(),
            installed.display()
        ));
    }
    let Some(package) = package_dir_name(&dir) else {
        return;
    };
    let mut missing: Vec<&String> = Vec::new();
    for s in strings {
        let path = Path::new(s);
        if path == dir
            || !path.components().any(|c| c.as_os_str() == package)
            || NOT_DATA.iter().any(|p| path.starts_with(p))
            || asm.layers.has_dir(path)
            || !matches!(asm.resolver.root().lookup_dir(path), Ok(Some(_)))
        {
            continue;
        }
        missing.push(s);
    }
    // One entry for a tree and what is below it.
    let listed: Vec<&String> = missing
        .iter()
        .copied()
        .filter(|m| {
            !missing
                .iter()
                .any(|o| o != m && Path::new(m.as_str()).starts_with(o.as_str()))
        })
        .collect();
    if listed.is_empty() {
        return;
    }
    let list: Vec<&str> = listed.iter().map(|s| s.as_str()).collect();
    asm.warn(format!(
        "{image} has these directories of the root compiled in, and the image lacks them: {}; \
         add those it reads with --include DIR and those it writes with --writable DIR",
        list.join(", ")
    ));
}

/// The package's own directory name in an install directory such as
/// `/usr/lib/postgresql/15/bin` (`postgresql`), or `/opt/app/bin`
/// (`app`); none for the shared `/usr/bin`.
fn package_dir_name(dir: &Path) -> Option<&std::ffi::OsStr> {
    let rel = ["/usr/local", "/usr", "/opt", "/"]
        .iter()
        .find_map(|p| dir.strip_prefix(p).ok())?;
    let mut parts = rel.components().map(|c| c.as_os_str()).peekable();
    if parts
        .peek()
        .is_some_and(|first| PREFIX_DIRS.iter().any(|d| first == d))
    {
        parts.next();
    }
    parts.next().filter(|n| *n != "bin" && *n != "sbin")
}

/// The warnings for `$ORIGIN` paths that lead nowhere in the image.
fn check_origin_paths(asm: &mut Assembly, program: &Program, strings: &BTreeSet<String>) {
    let Ok(real) = std::fs::canonicalize(&program.host) else {
        return;
    };
    let (Some(host_dir), Some(image_dir)) = (real.parent(), program.image.parent()) else {
        return;
    };
    let entries: BTreeSet<&str> = strings
        .iter()
        .filter(|s| s.starts_with("$ORIGIN"))
        .flat_map(|s| s.split(':'))
        .collect();
    for entry in entries {
        let Some(rel) = entry
            .strip_prefix("$ORIGIN")
            .or_else(|| entry.strip_prefix("${ORIGIN}"))
            .map(|r| r.trim_start_matches('/'))
        else {
            continue;
        };
        if rel.is_empty() {
            continue;
        }
        let on_host = normalise(&host_dir.join(rel));
        let in_image = normalise(&image_dir.join(rel));
        if !on_host.is_dir() || asm.layers.has_dir(&in_image) {
            continue;
        }
        asm.warn(format!(
            "{} looks in {entry}, which is {} beside it on the host, but {} is not in the \
             image: add it with --include {}:{}, or the program's whole tree with --from-dir",
            program.image.display(),
            on_host.display(),
            in_image.display(),
            on_host.display(),
            in_image.display()
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_dir_names() {
        let cases = [
            ("/usr/lib/postgresql/15/bin", Some("postgresql")),
            ("/opt/app/bin", Some("app")),
            ("/usr/local/myapp/bin", Some("myapp")),
            ("/usr/bin", None),
            ("/usr/local/bin", None),
            ("/bin", None),
            ("/usr/libexec/foo", Some("foo")),
        ];
        for (dir, want) in cases {
            assert_eq!(
                package_dir_name(Path::new(dir)).and_then(|s| s.to_str()),
                want,
                "{dir}"
            );
        }
    }
}
