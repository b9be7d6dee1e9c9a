//! Parsers of single flag values (`SRC[:DST]`, `K=V`, ports, the health
//! check, a default image name): pure functions of the text, so each is
//! tested alone and none touches the file system or the environment.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};

use crate::plan::{Mapping, Writable};
use crate::rootfs::ImagePath;

use super::args::BuildArgs;

/// `name` as a repository path component that both docker's grammar
/// (`[a-z0-9]+` joined by `.`, `_`, `__` or dashes) and the layout's
/// ref.name grammar (joined by one of `-._` or `--`) accept: anything else
/// becomes `-`, as does a run of separators neither takes (`a..b`).
pub(super) fn clean_name(name: &str) -> String {
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

/// `--add-modules` names: Java module names (dot-separated identifiers),
/// each once, in order.
pub(super) fn modules(names: &[String]) -> anyhow::Result<Vec<String>> {
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
pub(super) fn writable_dir(arg: &str) -> anyhow::Result<Writable> {
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
pub(super) fn split_mapping(arg: &str) -> (&str, Option<&str>) {
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
pub(super) fn split_copy_from(arg: &str) -> anyhow::Result<(String, String, String)> {
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
pub(super) fn binary_spec(arg: &str) -> anyhow::Result<Mapping> {
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

pub(super) fn key_value(s: &str, flag: &str) -> anyhow::Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => bail!("{flag} {s:?}: expected KEY=VALUE"),
    }
}

pub(super) fn port(s: &str) -> anyhow::Result<String> {
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
pub(super) fn healthcheck(args: &BuildArgs) -> anyhow::Result<Option<crate::oci::Healthcheck>> {
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
pub(super) fn words(s: &str) -> anyhow::Result<Vec<String>> {
    if s.trim_start().starts_with('[') {
        serde_json::from_str(s).with_context(|| format!("{s:?} is not a JSON array of strings"))
    } else {
        Ok(s.split_whitespace().map(String::from).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::Tagged;

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
            crate::oci::check_reference(&tagged.to_string()).unwrap();
        }
    }
}
