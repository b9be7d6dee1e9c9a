//! The conventions users expect of a CLI tool, through the built binary and
//! the real programs that consume them: shell completions (bash, zsh, fish)
//! and manual pages (man, groff).

use std::path::Path;
use std::process::Command;

use crate::util::{cc, check, mkimage, require_tool, run, tempdir};

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
#[ignore = "needs fish"]
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
#[ignore = "needs zsh"]
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
#[ignore = "needs man-db, groff"]
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
    assert!(
        out.stderr
            .contains("no manual page mkimage-nosuch.1: the subcommands are ldd, inspect"),
        "{out}"
    );
}

/// A program `dir/app` that needs `libfoo.so` from `dir/lib` through its
/// DT_RUNPATH, built with gcc.
fn app_with_runpath(dir: &Path) -> std::path::PathBuf {
    let lib = dir.join("lib");
    std::fs::create_dir(&lib).expect("create lib/");
    let so = cc(
        &lib,
        "libfoo.so",
        "int foo(void) { return 42; }\n",
        &["-shared", "-fPIC", "-Wl,-soname,libfoo.so"],
    );
    let rpath = format!("-Wl,-rpath,{}", lib.display());
    cc(
        dir,
        "app",
        "int foo(void);\nint main(void) { return foo() - 42; }\n",
        &[
            so.to_str().expect("UTF-8 path"),
            "-Wl,--enable-new-dtags",
            &rpath,
        ],
    )
}

/// `-v` says which step of the loader's search found each library: here
/// the program's DT_RUNPATH, and ld.so.cache for libc; `--json` always
/// carries it. A build's `-v` says the same on stderr.
#[test]
fn verbose_says_how_each_library_was_found() {
    let dir = tempdir();
    let app = app_with_runpath(dir.path());
    let lib = dir.path().join("lib");
    let runpath = format!("RUNPATH of {}", app.display());
    let out = check(mkimage().args(["ldd", "-v"]).arg(&app));
    let lines: Vec<&str> = out.stdout.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("\tlibfoo.so => "))
        .unwrap_or_else(|| panic!("no libfoo.so line: {out}"));
    assert_eq!(
        lines[at + 1],
        format!("\t    found in {} ({runpath})", lib.display()),
        "{out}"
    );
    let libc = lines
        .iter()
        .position(|l| l.starts_with("\tlibc.so.6 => "))
        .unwrap_or_else(|| panic!("no libc line: {out}"));
    // libc is not in the RUNPATH directory: the search says it looked there.
    assert_eq!(
        lines[libc + 1],
        format!(
            "\t    found in ld.so.cache; not in {} ({runpath})",
            lib.display()
        ),
        "{out}"
    );
    // Without -v, the ldd(1) lines alone.
    let plain = check(mkimage().arg("ldd").arg(&app));
    assert!(!plain.stdout.contains("found in"), "{plain}");

    let json: serde_json::Value =
        serde_json::from_str(&check(mkimage().args(["ldd", "--json"]).arg(&app)).stdout)
            .expect("ldd --json is JSON");
    let foo = json[0]["objects"]
        .as_array()
        .and_then(|o| o.iter().find(|o| o["name"] == "libfoo.so"))
        .unwrap_or_else(|| panic!("no libfoo.so: {json}"));
    assert_eq!(foo["found_by"]["why"], runpath.as_str());
    assert_eq!(foo["found_by"]["dir"], lib.to_str().expect("UTF-8 path"));
    assert_eq!(foo["found_by"]["passed"], serde_json::json!([]));

    let image = dir.path().join("app.oci");
    let out = check(
        mkimage()
            .args(["-v", "--from-binary"])
            .arg(&app)
            .arg("-o")
            .arg(&image),
    );
    let want = format!(
        "mkimage: libfoo.so => {}/libfoo.so (needed by /usr/local/bin/app): found in {} (RUNPATH of /usr/local/bin/app)",
        lib.display(),
        lib.display()
    );
    assert!(
        out.stderr.lines().any(|l| l == want),
        "want {want:?}: {out}"
    );
    assert!(
        out.stderr.contains("libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (needed by /usr/local/bin/app): found in ld.so.cache"),
        "{out}"
    );
    let quiet = check(
        mkimage()
            .args(["--from-binary"])
            .arg(&app)
            .arg("-o")
            .arg(&image),
    );
    assert!(!quiet.stderr.contains("found in"), "{quiet}");
}

/// Runs `mkimage ARGS` on a pseudo-terminal (script(1)), as a user at a
/// terminal would, with `env` set; returns what the terminal showed.
fn on_a_terminal(args: &str, env: &[(&str, &str)]) -> String {
    require_tool("script");
    let assignments: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let line = format!(
        "env {} {} {args}",
        assignments.join(" "),
        env!("CARGO_BIN_EXE_mkimage")
    );
    let out = run(Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        // anstream colours a terminal whenever CI is set (CI logs render
        // colour), TERM=dumb or not; CI runs this test with CI=true.
        .env_remove("CI")
        .env("TERM", "xterm"));
    out.stdout
}

const ESC: &str = "\x1b[";

/// Whether `s` holds an SGR escape (colour, bold: `ESC [ 1 ; 31 m`), as
/// opposed to the spinner's line erasing (`ESC [ 2 K`), which is no colour.
fn has_color(s: &str) -> bool {
    s.split(ESC).skip(1).any(|rest| {
        let params = rest.trim_start_matches(|c: char| c.is_ascii_digit() || c == ';');
        params.starts_with('m')
    })
}

#[test]
fn color_follows_the_terminal_no_color_and_the_flag() {
    let dir = tempdir();
    let missing = dir.path().join("missing");
    let args = format!("--from-binary {}", missing.display());
    // A terminal gets colour, unless NO_COLOR says no; --color decides over both.
    let tty = on_a_terminal(&args, &[]);
    assert!(
        tty.contains(&format!("{ESC}1m{ESC}31merror:{ESC}0m")),
        "{tty:?}"
    );
    let no_color = on_a_terminal(&args, &[("NO_COLOR", "1")]);
    assert!(
        no_color.contains("mkimage: error: cannot read"),
        "{no_color:?}"
    );
    assert!(!has_color(&no_color), "NO_COLOR: {no_color:?}");
    let never = on_a_terminal(&format!("--color never {args}"), &[]);
    assert!(!has_color(&never), "--color never: {never:?}");
    let dumb = on_a_terminal(&args, &[("TERM", "dumb")]);
    assert!(!has_color(&dumb), "TERM=dumb: {dumb:?}");

    // A pipe gets none, unless asked; clap's usage errors follow the flag.
    let piped = run(mkimage()
        .env_remove("CLICOLOR_FORCE")
        .args(["--from-binary"])
        .arg(&missing));
    assert_eq!(piped.status.code(), Some(2), "{piped}");
    assert!(!has_color(&piped.stderr), "{piped}");
    for args in [
        vec![
            "--color",
            "always",
            "--from-binary",
            missing.to_str().unwrap_or_default(),
        ],
        vec![
            "inspect",
            "--color=always",
            missing.to_str().unwrap_or_default(),
        ],
    ] {
        let out = run(mkimage().env("NO_COLOR", "1").args(&args));
        assert!(
            out.stderr.contains(&format!("{ESC}1m{ESC}31merror:")),
            "{args:?}: {out}"
        );
    }
    let usage = run(mkimage().args(["--color", "always", "--no-such-flag"]));
    assert_eq!(usage.status.code(), Some(2), "{usage}");
    assert!(has_color(&usage.stderr), "{usage}");
    let bad = run(mkimage().args(["--color", "purple"]));
    assert_eq!(bad.status.code(), Some(2), "{bad}");
    assert!(
        bad.stderr
            .contains("[possible values: auto, always, never]"),
        "{bad}"
    );
}

/// The spinner draws on a terminal and nowhere else: a log or a pipe
/// gets the summary alone, without carriage returns and redraws.
#[test]
fn progress_only_on_a_terminal() {
    let dir = tempdir();
    let app = app_with_runpath(dir.path());
    let image = dir.path().join("app.oci");
    let args = format!("--from-binary {} -o {}", app.display(), image.display());
    let tty = on_a_terminal(&args, &[]);
    assert!(
        tty.contains("resolving"),
        "no spinner on a terminal: {tty:?}"
    );
    assert!(tty.contains("Wrote app:latest"), "{tty:?}");
    let piped = check(
        mkimage()
            .args(["--from-binary"])
            .arg(&app)
            .arg("-o")
            .arg(&image),
    );
    assert!(piped.stdout.contains("Wrote app:latest"), "{piped}");
    assert_eq!(piped.stderr, "", "nothing but the summary when piped");
    let quiet = on_a_terminal(&format!("-q {args}"), &[]);
    assert!(!quiet.contains("resolving"), "-q: {quiet:?}");
}

/// Every `DIR[:TAG]` argument follows one rule, so an image built into a
/// directory with colons in its name (`app:1.oci`) is read whole, and a tag
/// after it, colons and all, is its tag: for `inspect`, `inspect --diff`
/// and `push` alike.
#[test]
fn paths_with_colons_name_the_layout_and_its_tag() {
    let dir = tempdir();
    let app = app_with_runpath(dir.path());
    let layout = dir.path().join("app:1.oci");
    check(
        mkimage()
            .args(["-q", "-t", "app:v1", "--from-binary"])
            .arg(&app)
            .arg("-o")
            .arg(&layout),
    );
    let name = layout.to_str().expect("UTF-8 path");
    let whole = check(mkimage().args(["inspect", "--no-files", name]));
    assert!(whole.stdout.contains("app:v1"), "{whole}");
    let tagged = check(mkimage().args(["inspect", "--no-files", &format!("{name}:app:v1")]));
    // The same image; only the first line, the argument as given, differs.
    let after_image = |s: &str| s.lines().skip(1).collect::<Vec<_>>().join("\n");
    assert_eq!(after_image(&tagged.stdout), after_image(&whole.stdout));
    let diff = check(mkimage().args(["inspect", name, "--diff", &format!("{name}:app:v1")]));
    assert!(diff.stdout.contains("0 files added, 0 removed"), "{diff}");

    // A tag the layout lacks: named with the layout's whole name, by both.
    let out = run(mkimage().args(["inspect", &format!("{name}:nope")]));
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(out.stderr.contains("\"nope\""), "{out}");
    assert!(out.stderr.contains(name), "{out}");
    let out = run(mkimage().args(["push", &format!("{name}:nope"), "127.0.0.1:1/app"]));
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(
        out.stderr
            .contains(&format!("tag \"nope\" is not in {name}")),
        "{out}"
    );
    // The right tag: push finds the image (and stops at the digest it is
    // pinned to, before any connection).
    let zero = format!("sha256:{}", "0".repeat(64));
    let out = run(mkimage().args([
        "push",
        &format!("{name}:app:v1"),
        &format!("127.0.0.1:1/app@{zero}"),
    ]));
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(out.stderr.contains(&zero), "{out}");
    // Nothing of it exists: exit 1, the argument named as written.
    let missing = dir.path().join("no:such.oci");
    let missing = format!("{}:v1", missing.display());
    for args in [
        vec!["inspect", &missing],
        vec!["push", &missing, "127.0.0.1:1/app"],
    ] {
        let out = run(mkimage().args(&args));
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out}");
        assert!(out.stderr.contains(&missing), "{args:?}: {out}");
    }
}
