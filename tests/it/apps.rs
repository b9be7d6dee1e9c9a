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
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::{
    Bundle, Kind, Layer, Output, RunOpts, Running, check, mkimage, named_layers, require_tool, run,
    tempdir,
};

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

fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .unwrap_or_else(|e| panic!("mkdir {}: {e}", parent.display()));
    }
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
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

/// Panics unless the container's init runs as the image's non-root user.
fn assert_nonroot(pid: u32) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    for field in ["Uid:", "Gid:"] {
        let ids: Vec<&str> = status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .unwrap_or_else(|| panic!("no {field} in {status}"))
            .split_whitespace()
            .collect();
        assert_eq!(ids, ["65532"; 4], "{field} of pid {pid}");
    }
}

// ---- nginx: the user's config ------------------------------------------------

/// How long nginx may take to answer its first request.
const NGINX_START: Duration = Duration::from_secs(30);

/// A single-page app's server block: files as they are, every other path
/// (a client-side route) the app's index.html. `marker` goes in a header,
/// to tell whose config answered.
fn spa_server(marker: &str) -> String {
    format!(
        "server {{
    listen 8080;
    root /usr/share/nginx/html;
    add_header X-Config {marker};
    location / {{
        try_files $uri /index.html;
    }}
}}
"
    )
}

/// A whole nginx.conf for a non-root nginx, with the SPA server inline.
fn spa_nginx_conf() -> String {
    format!(
        "worker_processes 1;
pid /tmp/nginx.pid;
events {{ worker_connections 64; }}
http {{
    include /etc/nginx/mime.types;
    access_log /dev/stdout;
    client_body_temp_path /tmp/client_body;
    proxy_temp_path /tmp/proxy;
    fastcgi_temp_path /tmp/fastcgi;
    uwsgi_temp_path /tmp/uwsgi;
    scgi_temp_path /tmp/scgi;
{}}}
",
        spa_server("nginx.conf")
    )
}

/// `GET path` from inside the container's network namespace: the body,
/// then the status, content type and X-Config header.
fn get(pid: u32, path: &str) -> (String, String) {
    let out = check(
        Command::new("nsenter")
            .arg(format!("--target={pid}"))
            .arg("--net")
            .args(["curl", "-sS", "--max-time", "5", "-w"])
            .arg("\n%{http_code} %{content_type} %header{x-config}")
            .arg(format!("http://127.0.0.1:8080{path}")),
    );
    let (body, meta) = out.stdout.rsplit_once('\n').expect("curl's -w line");
    (body.to_owned(), meta.to_owned())
}

/// Waits until nginx in `server` answers, and returns its pid.
fn wait_for_nginx(server: &mut Running) -> u32 {
    let deadline = Instant::now() + NGINX_START;
    loop {
        server.assert_running();
        if let Some(pid) = server.pid() {
            let probe = run(Command::new("nsenter")
                .arg(format!("--target={pid}"))
                .arg("--net")
                .args(["curl", "-sS", "--max-time", "2", "http://127.0.0.1:8080/"]));
            if probe.status.success() {
                return pid;
            }
        }
        assert!(Instant::now() < deadline, "nginx never answered");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The multi-stage recipe every nginx user follows, both ways: their own
/// nginx.conf over the profile's, or a conf.d/default.conf drop-in over
/// the profile's server block. The user's file wins, the build says so,
/// and the SPA is served as the non-root user.
#[test]
#[ignore = "needs root/runc, nginx, curl"]
fn nginx_serves_an_spa_with_the_users_nginx_conf_or_drop_in() {
    require_tool("nginx");
    require_tool("curl");
    require_tool("nsenter");
    let dir = tempdir();
    let dist = dir.path().join("dist");
    let index = "<!doctype html><div id=app></div><script src=/assets/app.js></script>\n";
    let script = "document.getElementById('app').textContent = 'hi';\n";
    write(&dist.join("index.html"), index);
    write(&dist.join("assets/app.js"), script);
    let nginx_conf = dir.path().join("nginx.conf");
    write(&nginx_conf, &spa_nginx_conf());
    let default_conf = dir.path().join("default.conf");
    write(&default_conf, &spa_server("drop-in"));

    let layout = dir.path().join("spa.oci");
    let ways = [
        (
            "spa:nginx-conf",
            &nginx_conf,
            "/etc/nginx/nginx.conf",
            "nginx.conf",
        ),
        (
            "spa:drop-in",
            &default_conf,
            "/etc/nginx/conf.d/default.conf",
            "drop-in",
        ),
    ];
    for (tag, conf, dst, marker) in ways {
        let out = build(
            &layout,
            tag,
            &[
                "--profile=nginx".into(),
                format!("--from-dir={}:/usr/share/nginx/html", dist.display()),
                format!("--include={}:{dst}", conf.display()),
            ],
        );
        let name = conf.file_name().expect("name").to_string_lossy();
        assert!(
            out.stdout.contains(&format!(
                "{dst}: --include {name} replaces the file --profile nginx writes"
            )),
            "{tag}: {out}"
        );
        let named = named_layers(&layout, tag);
        let rel = dst.trim_start_matches('/');
        assert_eq!(
            file_in(&named["app"], rel),
            std::fs::read(conf).expect("read conf"),
            "{tag}"
        );
        assert!(
            !named["runtime"].contains_key(rel),
            "{tag}: profile's {dst} kept"
        );

        let bundle = Bundle::unpack(&layout, tag);
        let mut server = bundle.spawn(&RunOpts::default());
        let pid = wait_for_nginx(&mut server);
        assert_nonroot(pid);
        let html = format!("200 text/html {marker}");
        assert_eq!(get(pid, "/"), (index.to_owned(), html.clone()), "{tag}");
        assert_eq!(
            get(pid, "/assets/app.js"),
            (
                script.to_owned(),
                format!("200 application/javascript {marker}")
            ),
            "{tag}"
        );
        // A client-side route: no such file, the app's page.
        assert_eq!(
            get(pid, "/users/42/settings"),
            (index.to_owned(), html),
            "{tag}"
        );
        let out = server.stop();
        for bad in ["[emerg]", "[alert]", "[crit]"] {
            assert!(!out.stderr.contains(bad), "{tag}: {out}");
        }
    }
}

/// Without nginx or a container: the user's file replaces the profile's,
/// in the app layer, and the build says so; the profile's other files
/// stay.
#[test]
fn a_users_file_replaces_the_profiles_and_the_build_says_so() {
    require_tool("nginx");
    let dir = tempdir();
    let conf = dir.path().join("nginx.conf");
    write(&conf, &spa_nginx_conf());
    let layout = dir.path().join("n.oci");
    let out = build(
        &layout,
        "n:1",
        &[
            "--profile=nginx".into(),
            format!("--include={}:/etc/nginx/nginx.conf", conf.display()),
        ],
    );
    assert!(
        out.stdout.contains(
            "/etc/nginx/nginx.conf: --include nginx.conf replaces the file --profile nginx writes"
        ),
        "{out}"
    );
    let named = named_layers(&layout, "n:1");
    assert_eq!(
        file_in(&named["app"], "etc/nginx/nginx.conf"),
        spa_nginx_conf().into_bytes()
    );
    let runtime = &named["runtime"];
    assert!(!runtime.contains_key("etc/nginx/nginx.conf"));
    let default =
        String::from_utf8(file_in(runtime, "etc/nginx/conf.d/default.conf")).expect("UTF-8");
    assert!(default.contains("listen 8080;"), "{default}");
    assert!(runtime.contains_key("etc/nginx/mime.types"));
    // The profile's own nginx.conf takes the drop-ins.
    let profile = check(mkimage().args(["profiles", "nginx"])).stdout;
    assert!(
        profile.contains("include /etc/nginx/conf.d/*.conf;"),
        "{profile}"
    );
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
