//! The conventions users expect of a CLI tool, through the built binary and
//! the real programs that consume them: shell completions (bash, zsh, fish)
//! and manual pages (man, groff).

use std::path::Path;
use std::process::Command;

use crate::util::{check, mkimage, require_tool, run, tempdir};

/// Writes `mkimage completions SHELL` to `dir/name` and returns the path.
fn completion_script(dir: &Path, shell: &str, name: &str) -> std::path::PathBuf {
    let out = check(mkimage().args(["completions", shell]));
    let path = dir.join(name);
    std::fs::write(&path, &out.stdout).expect("write the completion script");
    path
}

/// What bash's completion function offers for `words`, the last being the
/// word under the cursor: the script is sourced, `complete -p` names its
/// function, and the function runs as readline would call it (COMP_WORDS,
/// COMP_CWORD, COMP_LINE, COMP_POINT; arguments: command, current word,
/// previous word; bash(1), "Programmable Completion").
fn bash_complete(script: &Path, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        r#"source "$1" || exit 10
spec=$(complete -p mkimage) || exit 11
f=$(sed -n 's/.* -F \([^ ]*\) .*/\1/p' <<<"$spec")
[[ -n $f ]] || exit 12
COMP_WORDS=({words})
COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
COMP_LINE="${{COMP_WORDS[*]}}"
COMP_POINT=${{#COMP_LINE}}
"$f" mkimage "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}""#,
        words = quoted.join(" ")
    );
    let out = check(
        Command::new("bash")
            .args(["--norc", "--noprofile", "-c", &program, "bash"])
            .arg(script),
    );
    out.stdout.lines().map(str::to_owned).collect()
}

#[test]
fn bash_completes_subcommands_flags_and_values() {
    require_tool("bash");
    let dir = tempdir();
    let script = completion_script(dir.path(), "bash", "mkimage.bash");
    assert_eq!(bash_complete(&script, &["mkimage", "ins"]), ["inspect"]);
    let flags = bash_complete(&script, &["mkimage", "inspect", "--w"]);
    assert_eq!(flags, ["--why"]);
    let shells = bash_complete(&script, &["mkimage", "completions", ""]);
    for shell in ["bash", "fish", "zsh"] {
        assert!(shells.iter().any(|s| s == shell), "{shells:?}");
    }
    // The build flags live on the top level, beside the subcommands.
    let top = bash_complete(&script, &["mkimage", "--from-b"]);
    assert_eq!(top, ["--from-binary"]);
}

#[test]
fn fish_completes_subcommands_and_flags() {
    require_tool("fish");
    let dir = tempdir();
    let script = completion_script(dir.path(), "fish", "mkimage.fish");
    let complete = |line: &str| {
        let program = format!("source $argv[1]; or exit 10; complete -C '{line}'");
        let out = check(
            Command::new("fish")
                .args(["--no-config", "-c", &program])
                .arg(&script),
        );
        // fish prints `candidate<TAB>description`.
        let names: Vec<String> = out
            .stdout
            .lines()
            .map(|l| l.split('\t').next().unwrap_or_default().to_owned())
            .collect();
        names
    };
    assert_eq!(complete("mkimage ins"), ["inspect"]);
    assert_eq!(complete("mkimage inspect --w"), ["--why"]);
}

#[test]
fn zsh_completion_parses_and_defines_the_function() {
    require_tool("zsh");
    let dir = tempdir();
    completion_script(dir.path(), "zsh", "_mkimage");
    check(
        Command::new("zsh")
            .arg("-n")
            .arg(dir.path().join("_mkimage")),
    );
    // Loaded the way compinit loads it (autoload from fpath), the function
    // is defined and names every subcommand.
    let out = check(
        Command::new("zsh")
            .args([
                "-f",
                "-c",
                "fpath=($1 $fpath); autoload +X -Uz _mkimage; functions _mkimage",
                "zsh",
            ])
            .arg(dir.path()),
    );
    for sub in ["ldd", "inspect", "profiles", "push", "completions", "man"] {
        assert!(out.stdout.contains(&format!("'{sub}:")), "{sub}: {out}");
    }
}

/// Every page `mkimage man --dir` writes renders with man(1) and groff's
/// warnings on, without one, and holds its command's synopsis.
#[test]
fn man_pages_render_without_warnings() {
    require_tool("man");
    require_tool("groff");
    let dir = tempdir();
    check(mkimage().args(["man", "--dir"]).arg(dir.path()));
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("read the man directory")
        .map(|e| {
            e.expect("read the man directory")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "mkimage-completions.1",
            "mkimage-inspect.1",
            "mkimage-ldd.1",
            "mkimage-man.1",
            "mkimage-profiles.1",
            "mkimage-push.1",
            "mkimage.1"
        ]
    );
    for name in &names {
        let page = dir.path().join(name);
        let out = check(
            Command::new("man")
                .args(["--warnings=all", "-l"])
                .arg(&page)
                .env("MANWIDTH", "80")
                .env("LC_ALL", "C.UTF-8"),
        );
        assert_eq!(out.stderr, "", "{name}: man warned");
        let command = name.trim_end_matches(".1");
        assert!(out.stdout.contains("NAME"), "{name}: {out}");
        assert!(out.stdout.contains("SYNOPSIS"), "{name}: {out}");
        assert!(out.stdout.contains(command), "{name}: {out}");
        // groff alone, all warnings, no output: what a packager's lint runs.
        let groff = check(
            Command::new("groff")
                .args(["-man", "-Tutf8", "-ww", "-z"])
                .arg(&page),
        );
        assert_eq!(groff.stderr, "", "{name}: groff warned");
    }
    let top = std::fs::read_to_string(dir.path().join("mkimage.1")).expect("read mkimage.1");
    assert!(
        top.contains("from\\-binary"),
        "the build flags are on mkimage.1"
    );
    // A page on stdout is the same page.
    let inspect = check(mkimage().args(["man", "inspect"]));
    let file = std::fs::read_to_string(dir.path().join("mkimage-inspect.1")).expect("read page");
    assert_eq!(inspect.stdout, file);
    assert_eq!(check(mkimage().arg("man")).stdout, top);
}

#[test]
fn man_into_a_missing_directory_fails_naming_it() {
    let dir = tempdir();
    let missing = dir.path().join("no-such-dir");
    let out = run(mkimage().args(["man", "--dir"]).arg(&missing));
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(out.stderr.contains(&missing.display().to_string()), "{out}");
    assert!(!missing.exists());
    let out = run(mkimage().args(["man", "nosuch"]));
    assert_eq!(out.status.code(), Some(2), "{out}");
}
