//! Real applications, built the way tutorials build them: a single-page
//! app on nginx with the user's own config, a Java service with a JDBC
//! driver on a jlinked runtime querying a real PostgreSQL, and
//! PostgreSQL's own initdb; and where library jars and packages land.
//!
//! Tests that run containers need root and runc and are
//! `#[ignore = "needs ..."]`; scripts/test installs nginx, PostgreSQL and
//! the JDBC driver from Debian.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::util::{Bundle, Kind, Layer, Output, RunOpts, check, mkimage, named_layers, tempdir};

/// `mkimage -o LAYOUT -t TAG ARGS...`; panics unless it succeeds.
fn build(layout: &Path, tag: &str, args: &[String]) -> Output {
    check(
        mkimage()
            .env_remove("SOURCE_DATE_EPOCH")
            .arg("-o")
            .arg(layout)
            .args(["-t", tag])
            .args(args),
    )
}

/// The `mkimage: warning:` lines of a build.
fn warnings(out: &Output) -> Vec<&str> {
    out.stderr
        .lines()
        .filter_map(|l| l.strip_prefix("mkimage: warning: "))
        .collect()
}

/// The contents of the regular file `path` in `layer`; panics otherwise.
#[track_caller]
fn file_in(layer: &Layer, path: &str) -> Vec<u8> {
    match layer.get(path).map(|e| &e.kind) {
        Some(Kind::File(data)) => data.clone(),
        other => panic!("{path}: expected a regular file, found {other:?}"),
    }
}

// ---- PostgreSQL's initdb: a program that needs a shell ----------------------

/// Debian's PostgreSQL 15, as the `postgresql` package installs it.
const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
const PG_SHARE: &str = "/usr/share/postgresql/15";
const PG_LIB: &str = "/usr/lib/postgresql/15/lib";

fn require_postgresql() {
    let initdb = Path::new(PG_BIN).join("initdb");
    assert!(
        initdb.exists(),
        "{} is missing: run scripts/test, which installs postgresql",
        initdb.display()
    );
}

/// initdb runs postgres through popen, so without /bin/sh it dies with a
/// misleading error: the build warns, naming the fix, and also warns when
/// it is moved away from the directory compiled into it. Given its place,
/// its data and a shell, it creates a cluster under runc as the non-root
/// user, with the C.UTF-8 locale the image now carries.
#[test]
#[ignore = "needs root/runc, postgresql"]
fn initdb_without_a_shell_is_warned_about_and_with_one_creates_a_cluster() {
    require_postgresql();
    let dir = tempdir();
    let layout = dir.path().join("pg.oci");
    let initdb = format!("{PG_BIN}/initdb");
    let postgres = format!("{PG_BIN}/postgres");

    let out = build(&layout, "pg:moved", &[format!("--from-binary={initdb}")]);
    let w = warnings(&out);
    let want = [
        "/usr/local/bin/initdb calls popen, system, which run /bin/sh, but the image has no \
         /bin/sh (popen then fails with errors such as \"Cannot allocate memory\"): add one \
         with --from-binary /bin/dash:/bin/sh"
            .to_owned(),
        format!(
            "/usr/local/bin/initdb was built to run from {PG_BIN}, which is compiled into it (it \
             finds its own files relative to it): keep it there, e.g. --from-binary \
             {initdb}:{initdb}"
        ),
    ];
    for line in &want {
        assert!(w.contains(&line.as_str()), "no {line:?} in {out}");
    }
    let data = format!(
        "/usr/local/bin/initdb has these directories of the root compiled in, and the image \
         lacks them: {PG_LIB}, {PG_SHARE}"
    );
    assert!(
        w.iter().any(|l| l.starts_with(&data)),
        "no {data:?} in {out}"
    );

    let out = build(
        &layout,
        "pg:ok",
        &[
            format!("--from-binary={initdb}:{initdb}"),
            format!("--from-binary={postgres}:{postgres}"),
            "--from-binary=/bin/dash:/bin/sh".into(),
            format!("--include={PG_SHARE}"),
            // What initdb's bootstrap loads: PL/pgSQL and the snowball
            // stemmers (the whole directory would bring LLVM for the JIT).
            format!("--include={PG_LIB}/plpgsql.so"),
            format!("--include={PG_LIB}/dict_snowball.so"),
            "--env=TZ=UTC".into(),
        ],
    );
    let w = warnings(&out);
    assert!(
        !w.iter()
            .any(|l| l.contains("/bin/sh") || l.contains("was built to run from")),
        "{out}"
    );
    let libs = &named_layers(&layout, "pg:ok")["libs"];
    assert_eq!(
        file_in(libs, "usr/lib/locale/C.utf8/LC_CTYPE"),
        std::fs::read("/usr/lib/locale/C.utf8/LC_CTYPE").expect("the host's C.UTF-8 locale")
    );

    let bundle = Bundle::unpack(&layout, "pg:ok");
    let out = bundle.run(&RunOpts::args(&[
        initdb.as_str(),
        "-D",
        "/tmp/data",
        "--locale=C.UTF-8",
        "--auth=trust",
        "--username=postgres",
        "--no-sync",
    ]));
    out.assert_success();
    assert!(
        out.stdout.contains("initialized with locale \"C.UTF-8\""),
        "{out}"
    );
    assert!(out.stdout.contains("Success."), "{out}");
    let version = bundle.rootfs().join("tmp/data/PG_VERSION");
    assert_eq!(
        std::fs::read_to_string(&version).expect("PG_VERSION"),
        "15\n"
    );
    let meta = std::fs::metadata(&version).expect("stat PG_VERSION");
    assert_eq!(
        (meta.uid(), meta.gid()),
        (65532, 65532),
        "owner of the cluster"
    );
}
