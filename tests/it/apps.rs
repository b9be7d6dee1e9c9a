//! Real applications, built the way tutorials build them: a single-page
//! app on nginx with the user's own config, a Java service with a JDBC
//! driver on a jlinked runtime querying a real PostgreSQL, and
//! PostgreSQL's own initdb; and where library jars and packages land.
//!
//! Tests that run containers need root and runc and are
//! `#[ignore = "needs ..."]`; scripts/test installs nginx, PostgreSQL and
//! the JDBC driver from Debian.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::{
    Bundle, Output, RunOpts, Running, build, check, file_in, mkimage, named_layers, require_tool,
    run, tempdir,
};

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

// ---- where library jars and packages go -------------------------------------

/// A zip at `path` with `entries` (name, bytes): a jar, to mkimage.
fn write_zip(path: &Path, entries: &[(&str, &[u8])]) {
    use std::io::Write;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    let file = std::fs::File::create(path).expect("create zip");
    let mut w = zip::ZipWriter::new(file);
    for (name, bytes) in entries {
        w.start_file(*name, zip::write::SimpleFileOptions::default())
            .expect("zip entry");
        w.write_all(bytes).expect("zip bytes");
    }
    w.finish().expect("finish zip");
}

/// Each file's layer, by path, as `mkimage inspect --json` reports it.
fn layers_by_path(layout: &Path) -> std::collections::BTreeMap<String, String> {
    let out = check(mkimage().arg("inspect").arg(layout).arg("--json"));
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("inspect --json");
    let names: std::collections::BTreeMap<u64, String> = v["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| {
            (
                l["index"].as_u64().expect("index"),
                l["what"].as_str().expect("what").to_owned(),
            )
        })
        .collect();
    v["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| {
            let layer = f["layer"].as_u64().expect("layer");
            (
                f["path"].as_str().expect("path").to_owned(),
                names[&layer].clone(),
            )
        })
        .collect()
}

/// Library jars and packages go to the dependencies layer, by where they
/// are in the image and what they are, however the tree was handed in: a
/// directory of jars mapped to /srv/lib, jars a Class-Path names outside
/// any lib directory, WEB-INF/lib, BOOT-INF/lib, node_modules,
/// site-packages. The app's own files stay in the app layer.
#[test]
fn library_jars_and_packages_go_to_the_dependencies_layer() {
    let dir = tempdir();
    let app = dir.path().join("app");
    write(&app.join("index.js"), "console.log(1)\n");
    write(
        &app.join("node_modules/left-pad/index.js"),
        "module.exports = 1\n",
    );
    write(
        &app.join("venv/lib/python3.11/site-packages/requests/__init__.py"),
        "",
    );
    write_zip(&app.join("WEB-INF/lib/servlet-lib.jar"), &[("a", b"")]);
    write(&app.join("WEB-INF/classes/App.class"), "classes");
    write_zip(&app.join("BOOT-INF/lib/spring.jar"), &[("a", b"")]);
    write_zip(
        &app.join("service.jar"),
        &[(
            "META-INF/MANIFEST.MF",
            b"Main-Class: Main\nClass-Path: deps/driver.jar deps/gone.jar\n",
        )],
    );
    write_zip(&app.join("deps/driver.jar"), &[("a", b"")]);
    write_zip(&app.join("deps/plugin.jar"), &[("a", b"")]);
    write(&app.join("lib/notes.jar"), "not a zip\n");
    let jars = dir.path().join("jars");
    write_zip(&jars.join("postgresql.jar"), &[("a", b"")]);
    let one = dir.path().join("one.jar");
    write_zip(&one, &[("a", b"")]);

    let layout = dir.path().join("layers.oci");
    let out = build(
        &layout,
        "layers:1",
        &[
            format!("--from-dir={}:/app", app.display()),
            format!("--from-dir={}:/srv/lib", jars.display()),
            format!("--include={}:/opt/libs/one.jar", one.display()),
        ],
    );
    assert!(
        warnings(&out).contains(
            &"service.jar's Class-Path names /app/deps/gone.jar, which is not in the image (its \
              classes will be missing at run time): add it, e.g. --from-dir DIR:/app/deps"
        ),
        "{out}"
    );
    let layers = layers_by_path(&layout);
    let want = [
        ("/app/index.js", "app"),
        ("/app/service.jar", "app"),
        ("/app/WEB-INF/classes/App.class", "app"),
        ("/app/deps/plugin.jar", "app"),
        ("/app/lib/notes.jar", "app"),
        ("/app/node_modules/left-pad/index.js", "deps"),
        (
            "/app/venv/lib/python3.11/site-packages/requests/__init__.py",
            "deps",
        ),
        ("/app/WEB-INF/lib/servlet-lib.jar", "deps"),
        ("/app/BOOT-INF/lib/spring.jar", "deps"),
        ("/app/deps/driver.jar", "deps"),
        ("/srv/lib/postgresql.jar", "deps"),
        ("/opt/libs/one.jar", "deps"),
    ];
    for (path, layer) in want {
        assert_eq!(layers.get(path).map(String::as_str), Some(layer), "{path}");
    }
}

// ---- a Java service with a JDBC driver, jlinked, against PostgreSQL --------

/// A PostgreSQL server for a test, on 127.0.0.1 and a free port: its own
/// cluster in a temporary directory, run as the `postgres` user (the
/// server refuses root), stopped when dropped.
struct Postgres {
    _dir: tempfile::TempDir,
    data: std::path::PathBuf,
    port: u16,
}

impl Postgres {
    fn start() -> Postgres {
        require_postgresql();
        crate::util::require_root();
        require_tool("runuser");
        let dir = tempdir();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod the temporary directory");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("mkdir data");
        let uid: u32 = check(Command::new("id").args(["-u", "postgres"]))
            .stdout
            .trim()
            .parse()
            .expect("postgres's uid");
        std::os::unix::fs::chown(&data, Some(uid), None).expect("chown data");
        std::os::unix::fs::chown(dir.path(), Some(uid), None).expect("chown the directory");
        let as_postgres = |program: &str| {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"])
                .arg(format!("{PG_BIN}/{program}"));
            c
        };
        check(as_postgres("initdb").arg("-D").arg(&data).args([
            "--auth=trust",
            "--username=test",
            "--no-sync",
        ]));
        let port = crate::util::free_port();
        check(
            as_postgres("pg_ctl")
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(dir.path().join("log"))
                .arg("-o")
                .arg(format!(
                    "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off",
                    dir.path().display()
                ))
                .args(["-w", "start"]),
        );
        Postgres {
            _dir: dir,
            data,
            port,
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = run(Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(format!("{PG_BIN}/pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "stop"]));
    }
}

/// Debian's PostgreSQL JDBC driver (libpostgresql-jdbc-java).
const JDBC_JAR: &str = "/usr/share/java/postgresql.jar";

/// Connects with the URL it is given and prints a query's answer.
const JDBC_MAIN: &str = r#"
import java.sql.*;
public class Main {
    public static void main(String[] args) throws Exception {
        try (Connection c = DriverManager.getConnection(args[0]);
             Statement s = c.createStatement();
             ResultSet r = s.executeQuery("select 40 + 2, current_user")) {
            r.next();
            System.out.println("answer=" + r.getInt(1) + " user=" + r.getString(2));
        }
    }
}
"#;

/// `Main` compiled into `dir/classes`.
fn compile(dir: &Path, source: &str) -> std::path::PathBuf {
    require_tool("javac");
    let src = dir.join("Main.java");
    write(&src, source);
    let classes = dir.join("classes");
    check(Command::new("javac").arg("-d").arg(&classes).arg(&src));
    classes
}

/// The JDBC service as tutorials ship it: app.jar whose manifest's
/// Class-Path names lib/postgresql.jar, beside it. jlinked from the whole
/// class path, the runtime has what the driver needs (java.management,
/// which the app's own code never names) and the query answers; the
/// driver jar is a dependency. A Spring Boot jar in the same image has
/// its nested classes and jars analysed too, --add-modules adds what
/// jdeps cannot see, and classes no jar has are reported.
#[test]
#[ignore = "needs root/runc, a JDK, postgresql, libpostgresql-jdbc-java"]
fn a_jlinked_jdbc_service_queries_postgresql() {
    require_tool("jar");
    assert!(
        Path::new(JDBC_JAR).is_file(),
        "{JDBC_JAR} is missing: run scripts/test, which installs libpostgresql-jdbc-java"
    );
    let dir = tempdir();
    let classes = compile(&dir.path().join("jdbc"), JDBC_MAIN);
    let service = dir.path().join("service");
    let manifest = dir.path().join("manifest.txt");
    write(
        &manifest,
        "Main-Class: Main\nClass-Path: lib/postgresql.jar\n",
    );
    let jar = service.join("app.jar");
    std::fs::create_dir_all(service.join("lib")).expect("mkdir lib");
    check(
        Command::new("jar")
            .arg("--create")
            .arg("--file")
            .arg(&jar)
            .arg("--manifest")
            .arg(&manifest)
            .arg("-C")
            .arg(&classes)
            .arg("."),
    );
    std::fs::copy(JDBC_JAR, service.join("lib/postgresql.jar")).expect("copy the driver");

    // The Spring Boot layout: the app's classes (Main names a class no jar
    // has) and a library jar (the only user of java.net.http) nested in
    // one jar.
    let boot_classes = compile(
        &dir.path().join("boot"),
        "public class Main { public static void main(String[] a) { Other.run(); } }\n\
         class Other { static void run() {} }\n",
    );
    std::fs::remove_file(boot_classes.join("Other.class")).expect("remove Other.class");
    let http_classes = compile(
        &dir.path().join("http"),
        "public class Main { public static Object client() { \
         return java.net.http.HttpClient.newHttpClient(); } }\n",
    );
    let read = |p: &Path| std::fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
    let http_jar = dir.path().join("http.jar");
    write_zip(
        &http_jar,
        &[("http/Main.class", &read(&http_classes.join("Main.class")))],
    );
    let fat = dir.path().join("boot.jar");
    write_zip(
        &fat,
        &[
            (
                "META-INF/MANIFEST.MF",
                b"Main-Class: org.springframework.boot.loader.JarLauncher\nStart-Class: Main\n",
            ),
            (
                "BOOT-INF/classes/Main.class",
                &read(&boot_classes.join("Main.class")),
            ),
            ("BOOT-INF/lib/http.jar", &read(&http_jar)),
        ],
    );

    let layout = dir.path().join("jdbc.oci");
    let out = build(
        &layout,
        "jdbc:1",
        &[
            format!("--from-jar={}:/app/app.jar", jar.display()),
            format!("--from-dir={}:/app/lib", service.join("lib").display()),
            format!("--from-jar={}:/app/boot.jar", fat.display()),
            "--jlink".into(),
            "--add-modules=jdk.unsupported".into(),
        ],
    );
    let modules = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("jlink modules: "))
        .unwrap_or_else(|| panic!("no module list in {out}"));
    let (list, why) = modules.split_once(' ').expect("modules, then why");
    let list: Vec<&str> = list.split(',').collect();
    for m in [
        "java.base",
        "java.management",
        "java.sql",
        "java.net.http",
        "jdk.unsupported",
    ] {
        assert!(list.contains(&m), "no {m} in {out}");
    }
    assert!(why.contains("--add-modules jdk.unsupported"), "{out}");
    assert!(
        warnings(&out).iter().any(|w| w
            .starts_with("jdeps found 1 class the jars use but none of them has")
            && w.contains("Other")),
        "{out}"
    );
    let layers = layers_by_path(&layout);
    assert_eq!(layers["/app/lib/postgresql.jar"], "deps");
    assert_eq!(layers["/app/app.jar"], "app");

    let pg = Postgres::start();
    let url = format!("jdbc:postgresql://127.0.0.1:{}/postgres?user=test", pg.port);
    let out = crate::util::run_image(
        &layout,
        "jdbc:1",
        RunOpts {
            args: Some(vec![
                "/opt/java/bin/java".into(),
                "-jar".into(),
                "/app/app.jar".into(),
                url,
            ]),
            host_network: true,
            ..RunOpts::default()
        },
    );
    out.assert_success();
    assert_eq!(out.stdout, "answer=42 user=test\n", "{out}");
}

// ---- what a program will miss: a shell, its $ORIGIN directories ------------

/// Calls system(3), and execl(3)s /bin/bash by name.
const SHELL_C: &str = r#"
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc > 1) execl("/bin/bash", "bash", "-c", argv[1], (char *)0);
    return system("true");
}
"#;

/// The warnings come from what the program imports and names, and go
/// away once the image has what it asks for; a program whose RUNPATH
/// `$ORIGIN/../plugins` has a directory beside it on the host, but not
/// in the image, is warned about too.
#[test]
fn programs_that_start_shells_or_look_beside_themselves_are_warned_about() {
    let dir = tempdir();
    let bin = dir.path().join("dist/bin");
    std::fs::create_dir_all(&bin).expect("mkdir bin");
    std::fs::create_dir_all(dir.path().join("dist/plugins")).expect("mkdir plugins");
    let prog = crate::util::cc(
        &bin,
        "tool",
        SHELL_C,
        &["-O2", "-Wl,-rpath,$ORIGIN/../plugins"],
    );
    let layout = dir.path().join("sh.oci");
    let out = build(
        &layout,
        "sh:1",
        &[format!("--from-binary={}", prog.display())],
    );
    let w = warnings(&out);
    let want = [
        "/usr/local/bin/tool calls system, which run /bin/sh, but the image has no /bin/sh: \
         add one with --from-binary /bin/dash:/bin/sh"
            .to_owned(),
        "/usr/local/bin/tool calls execl and names /bin/bash, but the image has no /bin/bash: \
         add one with --from-binary /bin/bash:/bin/bash"
            .to_owned(),
        format!(
            "/usr/local/bin/tool looks in $ORIGIN/../plugins, which is {} beside it on the \
             host, but /usr/local/plugins is not in the image: add it with --include {}:/usr/local/plugins, \
             or the program's whole tree with --from-dir",
            dir.path().join("dist/plugins").display(),
            dir.path().join("dist/plugins").display(),
        ),
    ];
    for line in &want {
        assert!(w.contains(&line.as_str()), "no {line:?} in {out}");
    }

    let out = build(
        &layout,
        "sh:2",
        &[
            format!("--from-dir={}:/opt/tool", dir.path().join("dist").display()),
            "--from-binary=/bin/dash:/bin/sh".into(),
            "--from-binary=/bin/bash:/bin/bash".into(),
        ],
    );
    let w = warnings(&out);
    assert!(
        !w.iter()
            .any(|l| l.contains("/bin/sh") || l.contains("/bin/bash") || l.contains("$ORIGIN")),
        "{out}"
    );
}
