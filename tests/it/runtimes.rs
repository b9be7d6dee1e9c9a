//! Runtime images end to end: `--from-dir`, `--from-venv`, `--from-jar`
//! (with `--java-home` and `--jlink`), `--profile` (built-in and user files),
//! `--include`, `--dlopen` and `--writable`. Node, Python, Java and nginx
//! images are built from real installs (npm, pip, javac) and run with runc;
//! their layers are read from the layout to see what went where.
//!
//! Tests that run containers or unpack images need root and runc and are
//! `#[ignore = "needs root/runc"]`; the rest read the layout directly. The
//! npm and pip installs need their registries.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::util::{
    Bundle, Kind, Layer, RunOpts, build, cc, check, config, file_in, layer_digests, layer_names,
    layers, manifest, merged, mkimage, named_layers, require_tool, resolve, run, run_image,
    tempdir,
};

/// The tag most tests build (`oci:DIR:app:test`).
const TAG: &str = "app:test";

/// The uid and gid images run as unless `--user` says otherwise.
const NONROOT: u64 = 65532;

/// Every layer kind, in the order mkimage stacks them.
const ALL_LAYERS: [&str; 5] = ["base", "libs", "runtime", "deps", "app"];

/// The built-in profiles, in the order `mkimage profiles` lists them.
const BUILTIN_PROFILES: [&str; 6] = ["cc", "java", "nginx", "node", "python", "static"];

/// `--NAME=PATH` as one argument.
fn flag(name: &str, path: &Path) -> String {
    format!("--{name}={}", path.display())
}

/// `--NAME=PATH:DST` as one argument.
fn flag_to(name: &str, path: &Path, dst: &str) -> String {
    format!("--{name}={}:{dst}", path.display())
}

/// `path` relative to the image root, as layer entries are named.
fn image_rel(path: &Path) -> String {
    path.to_str()
        .expect("a UTF-8 path")
        .trim_start_matches('/')
        .to_owned()
}

/// Every path of `layer` that is not a directory.
fn non_dirs(layer: &Layer) -> Vec<&str> {
    layer
        .iter()
        .filter(|(_, e)| e.kind != Kind::Dir)
        .map(|(p, _)| p.as_str())
        .collect()
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn mkdir(path: &Path) {
    std::fs::create_dir_all(path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
}

/// The sum of the compressed layer sizes of the image tagged `tag`.
fn compressed_size(layout: &Path, tag: &str) -> u64 {
    manifest(layout, tag)["layers"]
        .as_array()
        .expect("manifest layers")
        .iter()
        .map(|l| l["size"].as_u64().expect("layer size"))
        .sum()
}

/// A static program that prints the file named by its argument, or
/// [`SHOW_DEFAULT`]; a missing file is `perror`ed and exit status 1.
const SHOW_C: &str = r#"
#include <stdio.h>
int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "/srv/www/index.html";
    FILE *f = fopen(path, "r");
    if (!f) { perror(path); return 1; }
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, n, stdout);
    return fclose(f) != 0;
}
"#;

/// What [`SHOW_C`] prints without arguments.
const SHOW_DEFAULT: &str = "/srv/www/index.html";

/// [`SHOW_C`] built with `gcc -static` as `dir/show`.
fn show_program(dir: &Path) -> PathBuf {
    cc(dir, "show", SHOW_C, &["-static", "-O2"])
}

// ---- Node.js ----------------------------------------------------------------

/// The port the express app listens on, inside its container.
const EXPRESS_PORT: u16 = 3000;

/// An express app answering `GET /` with `body`.
fn index_js(body: &str) -> String {
    format!(
        "const express = require('express');\n\
         const app = express();\n\
         app.get('/', (req, res) => res.send('{body}'));\n\
         app.listen({EXPRESS_PORT}, '127.0.0.1');\n"
    )
}

/// `npm init -y && npm install express` in `dir/app`, with an index.js that
/// answers `body`. Returns the app directory.
fn express_app(dir: &Path, body: &str) -> PathBuf {
    require_tool("npm");
    let app = dir.join("app");
    mkdir(&app);
    check(Command::new("npm").current_dir(&app).args(["init", "-y"]));
    check(Command::new("npm").current_dir(&app).args([
        "install",
        "--no-audit",
        "--no-fund",
        "express",
    ]));
    write(&app.join("index.js"), &index_js(body));
    app
}

/// Node's `-e` script: loads the app, then asks it for `/` from inside the
/// container and prints the body.
fn node_client() -> String {
    format!(
        "require('/app/index.js'); \
         setTimeout(() => require('http').get('http://127.0.0.1:{EXPRESS_PORT}/', \
         r => {{ r.pipe(process.stdout); r.on('end', () => process.exit(0)) }}), 500)"
    )
}

#[test]
#[ignore = "needs root/runc"]
fn node_express_app_runs_with_its_dependencies_in_their_own_layer() {
    let dir = tempdir();
    let body = "hello from express";
    let app = express_app(dir.path(), body);
    let layout = dir.path().join("node.oci");
    build(
        &layout,
        TAG,
        &[flag_to("from-dir", &app, "/app"), "--profile=node".into()],
    );

    let out = run_image(
        &layout,
        TAG,
        RunOpts::args(&["/usr/bin/node", "-e", &node_client()]),
    );
    out.assert_success();
    assert_eq!(out.stdout, body, "{out}");

    let cfg = &config(&layout, TAG)["config"];
    assert_eq!(cfg["Entrypoint"], json!(["/usr/bin/node"]), "{cfg}");
    assert_eq!(cfg["Cmd"], json!(["/app"]), "{cfg}");
    assert_eq!(cfg["WorkingDir"], "/app", "{cfg}");
    assert_eq!(cfg["User"], "65532:65532", "{cfg}");

    assert_eq!(layer_names(&layout, TAG), ALL_LAYERS);
    let named = named_layers(&layout, TAG);
    let (runtime, deps, code) = (&named["runtime"], &named["deps"], &named["app"]);
    assert!(
        matches!(
            runtime.get("usr/bin/node").map(|e| &e.kind),
            Some(Kind::File(_))
        ),
        "node is not in the runtime layer: {:?}",
        non_dirs(runtime)
    );
    let express = file_in(deps, "app/node_modules/express/package.json");
    assert!(
        String::from_utf8_lossy(&express).contains("\"name\": \"express\""),
        "{}",
        String::from_utf8_lossy(&express)
    );
    let misplaced: Vec<&str> = non_dirs(deps)
        .into_iter()
        .filter(|p| !p.starts_with("app/node_modules/"))
        .collect();
    assert!(misplaced.is_empty(), "not dependencies: {misplaced:?}");
    // The app layer holds the app's own files and nothing else.
    assert_eq!(
        non_dirs(code),
        ["app/index.js", "app/package-lock.json", "app/package.json"]
    );
    assert_eq!(file_in(code, "app/index.js"), index_js(body).into_bytes());
}

#[test]
fn changing_only_the_code_changes_only_the_app_layer() {
    let dir = tempdir();
    let app = express_app(dir.path(), "one");
    let layout = dir.path().join("node.oci");
    let args = [flag_to("from-dir", &app, "/app"), "--profile=node".into()];
    build(&layout, "node:one", &args);
    write(&app.join("index.js"), &index_js("two"));
    build(&layout, "node:two", &args);

    for tag in ["node:one", "node:two"] {
        assert_eq!(layer_names(&layout, tag), ALL_LAYERS, "{tag}");
    }
    let one = layer_digests(&layout, "node:one");
    let two = layer_digests(&layout, "node:two");
    for (i, name) in ALL_LAYERS.iter().enumerate().take(4) {
        assert_eq!(one[i], two[i], "{name} layers differ");
    }
    assert_ne!(one[4], two[4], "app layers are the same");
    let code = named_layers(&layout, "node:two")
        .remove("app")
        .expect("app");
    assert_eq!(file_in(&code, "app/index.js"), index_js("two").into_bytes());
}

// ---- Python -----------------------------------------------------------------

/// Imports modules with C extensions of the standard library (each needs
/// its own shared libraries) and of packages, and prints 45.
const PYTHON_CHECK: &str =
    "import numpy, ssl, sqlite3, ctypes, lzma, requests; print(numpy.arange(10).sum())";

/// Makes a venv with `python`, installs numpy and requests into it, builds
/// it with `--from-venv` and runs [`PYTHON_CHECK`] with the venv's python.
fn venv_runs(python: &Path) {
    let dir = tempdir();
    let venv = dir.path().join("venv");
    check(Command::new(python).args(["-m", "venv"]).arg(&venv));
    check(
        Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .args(["numpy", "requests"]),
    );
    let layout = dir.path().join("venv.oci");
    build(&layout, TAG, &[flag("from-venv", &venv)]);

    let venv_python = venv.join("bin/python");
    let out = run_image(
        &layout,
        TAG,
        RunOpts::args(&[venv_python.to_str().expect("UTF-8"), "-c", PYTHON_CHECK]),
    );
    out.assert_success();
    assert_eq!(out.stdout, "45\n", "{out}");

    // numpy is a dependency, in its own layer.
    let named = named_layers(&layout, TAG);
    let deps = named.get("deps").expect("a deps layer");
    let rel = image_rel(&venv);
    assert!(
        deps.keys()
            .any(|p| p.starts_with(&rel) && p.ends_with("/site-packages/numpy/__init__.py")),
        "numpy is not in the deps layer: {:?}",
        non_dirs(deps)
    );
    let env = &config(&layout, TAG)["config"]["Env"];
    let want = format!("VIRTUAL_ENV={}", venv.display());
    assert!(
        env.as_array()
            .expect("Env")
            .iter()
            .any(|e| e.as_str() == Some(&want)),
        "{want} not in {env}"
    );
}

#[test]
#[ignore = "needs root/runc"]
fn venv_of_the_system_python_runs_numpy_and_requests() {
    let python = Path::new("/usr/bin/python3");
    assert!(
        python.exists(),
        "{} is missing: run scripts/test",
        python.display()
    );
    venv_runs(python);
}

#[test]
#[ignore = "needs root/runc"]
fn venv_of_a_pyenv_python_runs_numpy_and_requests() {
    // The python3 on PATH is pyenv's on these machines (in /root/.pyenv);
    // if PATH lacks pyenv's shims, its versions directory has it.
    let from_path = Command::new("python3")
        .args(["-c", "import sys; print(sys.base_prefix)"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .filter(|p| !p.starts_with("/usr"));
    let pyenv_versions = std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".pyenv/versions"))
        .unwrap_or_else(|| PathBuf::from("/root/.pyenv/versions"));
    let from_pyenv = std::fs::read_dir(&pyenv_versions).ok().and_then(|entries| {
        let mut dirs: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        dirs.sort();
        dirs.into_iter().find(|d| d.join("bin/python3").exists())
    });
    let prefix = from_path.or(from_pyenv).unwrap_or_else(|| {
        panic!(
            "no Python outside /usr: python3 on PATH is the system one and {} has none \
             (this machine kind ships pyenv's CPython; install one there)",
            pyenv_versions.display()
        )
    });
    venv_runs(&prefix.join("bin/python3"));
}

/// A venv made with --system-site-packages sees the base interpreter's
/// packages (here Debian's python3-yaml), so the image carries them.
#[test]
#[ignore = "needs root/runc"]
fn venv_with_system_site_packages_brings_them() {
    let python = Path::new("/usr/bin/python3");
    let probe = check(Command::new(python).args(["-c", "import yaml, sys; print(yaml.__file__)"]));
    let yaml = PathBuf::from(probe.stdout.trim());
    let dir = tempdir();
    let venv = dir.path().join("venv");
    check(
        Command::new(python)
            .args(["-m", "venv", "--system-site-packages"])
            .arg(&venv),
    );
    let layout = dir.path().join("sys.oci");
    build(&layout, TAG, &[flag("from-venv", &venv)]);
    let deps = named_layers(&layout, TAG)
        .remove("deps")
        .expect("deps layer");
    assert!(
        deps.contains_key(&image_rel(&yaml)),
        "{} missing",
        yaml.display()
    );
    let venv_python = venv.join("bin/python");
    let out = run_image(
        &layout,
        TAG,
        RunOpts::args(&[
            venv_python.to_str().expect("UTF-8"),
            "-c",
            "import yaml; print(yaml.safe_load('a: 1')['a'])",
        ]),
    );
    out.assert_success();
    assert_eq!(out.stdout, "1\n", "{out}");
}

// ---- Java -------------------------------------------------------------------

/// Needs the JDK's TLS providers and CA store, and its time zone data.
const MAIN_JAVA: &str = r#"
import java.time.ZoneId;
import java.time.ZonedDateTime;
import javax.net.ssl.SSLContext;

public class Main {
    public static void main(String[] args) throws Exception {
        SSLContext tls = SSLContext.getDefault();
        ZonedDateTime now = ZonedDateTime.now(ZoneId.of("Asia/Tokyo"));
        System.out.println("tls=" + tls.getProtocol() + " offset=" + now.getOffset());
    }
}
"#;

/// What [`MAIN_JAVA`] prints.
const JAVA_LINE: &str = "tls=Default offset=+09:00\n";

/// [`MAIN_JAVA`] compiled into `dir/app.jar`, with `Main-Class: Main`.
fn app_jar(dir: &Path) -> PathBuf {
    require_tool("javac");
    require_tool("jar");
    let src = dir.join("src");
    mkdir(&src);
    write(&src.join("Main.java"), MAIN_JAVA);
    let classes = dir.join("classes");
    check(
        Command::new("javac")
            .arg("-d")
            .arg(&classes)
            .arg(src.join("Main.java")),
    );
    let jar = dir.join("app.jar");
    check(
        Command::new("jar")
            .args(["--create", "--main-class", "Main", "--file"])
            .arg(&jar)
            .arg("-C")
            .arg(&classes)
            .arg("."),
    );
    jar
}

/// The `java.home` of the `java` on PATH.
fn java_home() -> PathBuf {
    require_tool("java");
    let out = check(Command::new("java").args(["-XshowSettings:properties", "-version"]));
    let home = out
        .stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("java.home = "))
        .unwrap_or_else(|| panic!("no java.home in {out}"));
    PathBuf::from(home)
}

#[test]
#[ignore = "needs root/runc"]
fn jar_runs_on_a_copied_and_on_a_jlinked_runtime() {
    let dir = tempdir();
    let jar = app_jar(dir.path());
    let layout = dir.path().join("java.oci");
    build(
        &layout,
        "java:full",
        &[flag("from-jar", &jar), flag("java-home", &java_home())],
    );
    build(
        &layout,
        "java:jlink",
        &[flag("from-jar", &jar), "--jlink".into()],
    );

    for tag in ["java:full", "java:jlink"] {
        let cfg = &config(&layout, tag)["config"];
        let entrypoint: Vec<&str> = cfg["Entrypoint"]
            .as_array()
            .expect("Entrypoint")
            .iter()
            .map(|a| a.as_str().expect("entrypoint word"))
            .collect();
        assert_eq!(entrypoint[1..], ["-jar", "/app/app.jar"], "{tag}: {cfg}");
        let code = named_layers(&layout, tag).remove("app").expect("app layer");
        assert_eq!(
            file_in(&code, "app/app.jar"),
            std::fs::read(&jar).expect("read app.jar"),
            "{tag}"
        );

        let out = run_image(&layout, tag, RunOpts::default());
        out.assert_success();
        assert_eq!(out.stdout, JAVA_LINE, "{tag}: {out}");
    }
    let (full, jlink) = (
        compressed_size(&layout, "java:full"),
        compressed_size(&layout, "java:jlink"),
    );
    assert!(jlink < full, "jlink image {jlink} bytes, full {full} bytes");
}

/// A jar given through a symlink (as Bazel's sandbox gives its inputs) is
/// the jar's bytes in the image, not a link to a path on the build host.
#[test]
#[ignore = "needs javac, jar, a JDK"]
fn a_symlinked_jar_is_added_as_the_file() {
    let dir = tempdir();
    let jar = app_jar(dir.path());
    let link = dir.path().join("link.jar");
    std::os::unix::fs::symlink(&jar, &link).expect("symlink the jar");
    let layout = dir.path().join("java.oci");
    build(
        &layout,
        TAG,
        &[flag("from-jar", &link), flag("java-home", &java_home())],
    );
    let app = named_layers(&layout, TAG).remove("app").expect("app layer");
    let bytes = std::fs::read(&jar).expect("read the jar");
    assert!(file_in(&app, "app/app.jar") == bytes, "the jar's bytes");
    let out = check(
        mkimage()
            .arg("inspect")
            .arg(&layout)
            .arg("--why")
            .arg("/app/app.jar"),
    );
    assert!(out.stdout.contains("--from-jar link.jar"), "{out}");
}

// ---- nginx ------------------------------------------------------------------

/// How long nginx may take to answer its first request.
const NGINX_START: Duration = Duration::from_secs(30);

#[test]
#[ignore = "needs root/runc"]
fn nginx_serves_a_dist_folder_as_nonroot() {
    require_tool("curl");
    require_tool("nsenter");
    let dir = tempdir();
    let dist = dir.path().join("dist");
    mkdir(&dist);
    let html = "<!doctype html><h1>hello from nginx</h1>\n";
    write(&dist.join("index.html"), html);
    let layout = dir.path().join("nginx.oci");
    build(
        &layout,
        TAG,
        &[
            "--profile=nginx".into(),
            flag_to("from-dir", &dist, "/usr/share/nginx/html"),
        ],
    );
    let cfg = &config(&layout, TAG)["config"];
    assert_eq!(cfg["User"], "65532:65532", "{cfg}");
    assert_eq!(cfg["ExposedPorts"], json!({"8080/tcp": {}}), "{cfg}");

    let bundle = Bundle::unpack(&layout, TAG);
    // nginx cannot fall back on writing its logs in /var/log.
    if let Ok(meta) = std::fs::metadata(bundle.rootfs().join("var/log")) {
        assert_eq!(meta.uid(), 0, "owner of /var/log");
        assert_eq!(meta.mode() & 0o002, 0, "/var/log is world-writable");
    }

    // The container gets a network namespace of its own (only `lo`), so
    // port 8080 cannot clash with anything else on the host; curl from the
    // host joins that namespace with nsenter.
    let mut nginx = bundle.spawn(&RunOpts::default());
    let deadline = Instant::now() + NGINX_START;
    let (pid, body) = loop {
        nginx.assert_running();
        if let Some(pid) = nginx.pid() {
            let out = run(Command::new("nsenter")
                .arg(format!("--target={pid}"))
                .arg("--net")
                .args(["curl", "-sS", "--max-time", "5", "http://127.0.0.1:8080/"]));
            if out.status.success() {
                break (pid, out.stdout);
            }
            assert!(Instant::now() < deadline, "nginx never answered: {out}");
        }
        assert!(Instant::now() < deadline, "nginx never started");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(body, html);

    // The master process (the container's init) runs as the image's user.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    for field in ["Uid:", "Gid:"] {
        let ids: Vec<&str> = status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .unwrap_or_else(|| panic!("no {field} in {status}"))
            .split_whitespace()
            .collect();
        assert_eq!(ids, ["65532"; 4], "{field} of nginx");
    }

    let out = nginx.stop();
    assert!(out.stdout.contains("\"GET / HTTP/1.1\" 200"), "{out}");
    for bad in ["[emerg]", "[alert]", "[crit]"] {
        assert!(!out.stderr.contains(bad), "{out}");
    }
}

// ---- combining artifacts ----------------------------------------------------

#[test]
#[ignore = "needs root/runc"]
fn static_program_reads_a_dir_added_beside_it() {
    let dir = tempdir();
    let dist = dir.path().join("dist");
    mkdir(&dist);
    let html = "<p>served from /srv/www</p>\n";
    write(&dist.join("index.html"), html);
    let show = show_program(dir.path());
    let layout = dir.path().join("www.oci");
    build(
        &layout,
        TAG,
        &[
            flag_to("from-dir", &dist, "/srv/www"),
            flag("from-binary", &show),
        ],
    );

    // A static program needs no libraries, and nothing is a dependency.
    assert_eq!(layer_names(&layout, TAG), ["base", "app"]);
    let code = named_layers(&layout, TAG).remove("app").expect("app");
    assert_eq!(
        non_dirs(&code),
        ["srv/www/index.html", "usr/local/bin/show"]
    );
    assert_eq!(
        config(&layout, TAG)["config"]["Entrypoint"],
        json!(["/usr/local/bin/show"])
    );

    let out = run_image(&layout, TAG, RunOpts::default());
    out.assert_success();
    assert_eq!(out.stdout, html, "{SHOW_DEFAULT}: {out}");
}

#[test]
#[ignore = "needs root/runc"]
fn a_private_source_dir_is_readable_in_the_image() {
    let dir = tempdir();
    let app = dir.path().join("app");
    mkdir(&app);
    write(&app.join("hello.txt"), "hello, non-root\n");
    std::fs::set_permissions(&app, std::fs::Permissions::from_mode(0o700)).expect("chmod 0700");
    let show = show_program(dir.path());
    let layout = dir.path().join("app.oci");
    build(
        &layout,
        TAG,
        &[flag("from-dir", &app), flag("from-binary", &show)],
    );

    let code = named_layers(&layout, TAG).remove("app").expect("app");
    let top = code.get("app").expect("/app in the app layer");
    assert_eq!(top.kind, Kind::Dir);
    assert_eq!(top.mode & 0o7777, 0o755, "mode of /app");
    assert_eq!((top.uid, top.gid), (0, 0), "owner of /app");

    // As the image's non-root user.
    let out = run_image(
        &layout,
        TAG,
        RunOpts::args(&["/usr/local/bin/show", "/app/hello.txt"]),
    );
    out.assert_success();
    assert_eq!(out.stdout, "hello, non-root\n");
}

// ---- symlinks ---------------------------------------------------------------

/// With `--follow-links`, what a link out of the tree points to comes
/// too, at the path the link names.
#[test]
fn symlinks_stay_links_and_followed_targets_are_added() {
    let dir = tempdir();
    let outside = dir.path().join("outside");
    mkdir(&outside);
    let target = outside.join("target.txt");
    write(&target, "outside the tree\n");
    let tree = dir.path().join("tree");
    mkdir(&tree.join("sub"));
    write(&tree.join("real.txt"), "inside the tree\n");
    let link = |target: &Path, at: &str| {
        std::os::unix::fs::symlink(target, tree.join(at))
            .unwrap_or_else(|e| panic!("symlink {at}: {e}"));
    };
    link(Path::new("real.txt"), "inner");
    link(Path::new("../real.txt"), "sub/up");
    link(&target, "outer");
    let layout = dir.path().join("links.oci");
    build(
        &layout,
        TAG,
        &[flag_to("from-dir", &tree, "/app"), "--follow-links".into()],
    );

    let code = named_layers(&layout, TAG).remove("app").expect("app");
    let kind = |path: &str| code.get(path).map(|e| e.kind.clone());
    let symlink = |to: &Path| Some(Kind::Symlink(to.to_str().expect("UTF-8").to_owned()));
    assert_eq!(kind("app/inner"), symlink(Path::new("real.txt")));
    assert_eq!(kind("app/sub/up"), symlink(Path::new("../real.txt")));
    assert_eq!(kind("app/outer"), symlink(&target));
    assert_eq!(
        kind("app/real.txt"),
        Some(Kind::File(b"inside the tree\n".to_vec()))
    );
    // The outside file, at the absolute path the link names.
    let rel = image_rel(&target);
    assert_eq!(
        kind(&rel),
        Some(Kind::File(b"outside the tree\n".to_vec())),
        "{:?}",
        non_dirs(&code)
    );
    let all = merged(&layers(&layout, TAG));
    assert_eq!(resolve(&all, "app/outer"), rel);
    assert_eq!(resolve(&all, "app/sub/up"), "app/real.txt");
}

/// A link that climbs out of a user's tree is followed with
/// `--follow-links`, and the build says what it brought in: a package
/// could point anywhere.
#[test]
fn followed_links_out_of_a_user_tree_are_reported() {
    let dir = tempdir();
    let secret = dir.path().join("elsewhere/notes.txt");
    mkdir(secret.parent().expect("parent"));
    write(&secret, "not for the image\n");
    let pkg = dir.path().join("tree/node_modules/pkg");
    mkdir(&pkg);
    let up = "../".repeat(pkg.components().count() + 2);
    std::os::unix::fs::symlink(format!("{up}{}", secret.display()), pkg.join("readme"))
        .expect("symlink");
    let out = build(
        &dir.path().join("out.oci"),
        TAG,
        &[
            flag_to("from-dir", &dir.path().join("tree"), "/app"),
            "--follow-links".into(),
        ],
    );
    assert!(
        out.stderr.contains(&format!(
            "/app/node_modules/pkg/readme -> {up}{} leads out of the tree: added {}",
            secret.display(),
            secret.display()
        )),
        "{out}"
    );
}

/// The common bundled-library layout: `bin/app` with RUNPATH
/// `$ORIGIN/../lib` and `lib/libfoo.so.1 -> libfoo.so.1.0` beside it.
#[test]
#[ignore = "needs root/runc"]
fn bundled_libraries_keep_their_soname_links_and_run() {
    let dir = tempdir();
    let dist = dir.path().join("dist");
    mkdir(&dist.join("bin"));
    mkdir(&dist.join("lib"));
    let lib = cc(
        dir.path(),
        "libfoo.so.1.0",
        "int foo(void) { return 7; }",
        &["-shared", "-fPIC", "-Wl,-soname,libfoo.so.1"],
    );
    std::fs::rename(&lib, dist.join("lib/libfoo.so.1.0")).expect("move lib");
    std::os::unix::fs::symlink("libfoo.so.1.0", dist.join("lib/libfoo.so.1")).expect("symlink");
    let exe = cc(
        dir.path(),
        "app",
        "#include <stdio.h>\nint foo(void);\nint main(void) { printf(\"foo=%d\\n\", foo()); return 0; }\n",
        &[
            &format!("-L{}", dist.join("lib").display()),
            "-l:libfoo.so.1",
            "-Wl,-rpath,$ORIGIN/../lib",
        ],
    );
    std::fs::rename(&exe, dist.join("bin/app")).expect("move app");
    let layout = dir.path().join("bundled.oci");
    build(
        &layout,
        TAG,
        &[
            flag_to("from-dir", &dist, "/opt/app"),
            "--entrypoint=/opt/app/bin/app".to_string(),
        ],
    );
    let app = named_layers(&layout, TAG).remove("app").expect("app layer");
    assert_eq!(
        app.get("opt/app/lib/libfoo.so.1").map(|e| e.kind.clone()),
        Some(Kind::Symlink("libfoo.so.1.0".into()))
    );
    let out = run_image(&layout, TAG, RunOpts::default());
    out.assert_success();
    assert_eq!(out.stdout.trim(), "foo=7", "{out}");
}

/// A file whose path crosses a symlink another layer holds (/lib64 ->
/// usr/lib64 from the libraries) would turn that link into a directory
/// when the layers unpack: refused, with the way out.
#[test]
fn a_file_under_another_layers_symlink_is_refused() {
    let dir = tempdir();
    let file = dir.path().join("notes.txt");
    write(&file, "x\n");
    let layout = dir.path().join("shadow.oci");
    let out = run(mkimage()
        .args(["--from-binary", "/usr/bin/true", "-o"])
        .arg(&layout)
        .arg(flag_to("include", &file, "/lib64/notes.txt")));
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(
        out.stderr.contains(
            "/lib64/notes.txt cannot go in the app layer: /lib64 is a symlink to usr/lib64 in the libs layer"
        ),
        "{out}"
    );
    assert!(!layout.exists());
}

// ---- --include, --dlopen, --writable ----------------------------------------

#[test]
fn include_adds_host_files_and_trees() {
    let dir = tempdir();
    let conf = dir.path().join("conf");
    mkdir(&conf.join("d"));
    write(&conf.join("d/settings.ini"), "[x]\ny = 1\n");
    let show = show_program(dir.path());
    let layout = dir.path().join("include.oci");
    build(
        &layout,
        TAG,
        &[
            flag("from-binary", &show),
            "--include=/etc/hostname:/etc/hostname2".into(),
            flag_to("include", &conf, "/opt/conf"),
            flag("include", &conf),
        ],
    );

    let code = named_layers(&layout, TAG).remove("app").expect("app");
    assert_eq!(
        file_in(&code, "etc/hostname2"),
        std::fs::read("/etc/hostname").expect("read /etc/hostname")
    );
    assert_eq!(file_in(&code, "opt/conf/d/settings.ini"), b"[x]\ny = 1\n");
    // Without DST, at the same path as on the host.
    let same = format!("{}/d/settings.ini", image_rel(&conf));
    assert_eq!(file_in(&code, &same), b"[x]\ny = 1\n");
}

/// Opens libz.so.1 with dlopen (no DT_NEEDED) and prints its version.
const DLOPEN_ZLIB_C: &str = r#"
#include <dlfcn.h>
#include <stdio.h>
int main(void) {
    void *z = dlopen("libz.so.1", RTLD_NOW);
    if (!z) { fprintf(stderr, "%s\n", dlerror()); return 1; }
    const char *(*version)(void) = (const char *(*)(void))dlsym(z, "zlibVersion");
    if (!version) { fprintf(stderr, "%s\n", dlerror()); return 1; }
    puts(version());
    return 0;
}
"#;

#[test]
#[ignore = "needs root/runc"]
fn dlopen_adds_a_library_the_program_opens_at_run_time() {
    let dir = tempdir();
    let prog = cc(dir.path(), "zver", DLOPEN_ZLIB_C, &["-O2"]);
    let host = check(&mut Command::new(&prog)).stdout;
    let layout = dir.path().join("zver.oci");
    let bin = flag("from-binary", &prog);
    build(
        &layout,
        "zver:dlopen",
        &[bin.clone(), "--dlopen=libz.so.1".into()],
    );
    build(&layout, "zver:plain", &[bin]);

    let named = named_layers(&layout, "zver:dlopen");
    let all = merged(&layers(&layout, "zver:dlopen"));
    let host_lib = std::fs::canonicalize("/lib/x86_64-linux-gnu/libz.so.1").expect("host libz");
    let real = resolve(&all, "lib/x86_64-linux-gnu/libz.so.1");
    assert_eq!(
        Path::new("/").join(&real),
        host_lib,
        "libz resolves as on the host"
    );
    assert_eq!(
        file_in(&named["libs"], &real),
        std::fs::read(&host_lib).expect("read host libz")
    );
    let out = run_image(&layout, "zver:dlopen", RunOpts::default());
    out.assert_success();
    assert_eq!(out.stdout, host);

    // Without --dlopen nothing names libz, so it is not there.
    let plain = merged(&layers(&layout, "zver:plain"));
    let libz: Vec<&String> = plain.keys().filter(|p| p.contains("libz.so")).collect();
    assert!(libz.is_empty(), "{libz:?}");
    let out = run_image(&layout, "zver:plain", RunOpts::default());
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(out.stderr.contains("libz.so.1"), "{out}");
}

#[test]
#[ignore = "needs root/runc"]
fn writable_dirs_belong_to_their_owner() {
    let dir = tempdir();
    let show = show_program(dir.path());
    let layout = dir.path().join("writable.oci");
    build(
        &layout,
        TAG,
        &[
            flag("from-binary", &show),
            "--writable=/data".into(),
            "--writable=/data2:1000:2000".into(),
            "--writable=/var/cache/app:1234".into(),
        ],
    );

    let want = [
        ("data", NONROOT, NONROOT),
        ("data2", 1000, 2000),
        // GID defaults to UID.
        ("var/cache/app", 1234, 1234),
    ];
    let code = named_layers(&layout, TAG).remove("app").expect("app");
    for (path, uid, gid) in want {
        let entry = code.get(path).unwrap_or_else(|| panic!("no /{path}"));
        assert_eq!(entry.kind, Kind::Dir, "/{path}");
        assert_eq!(
            (entry.uid, entry.gid),
            (uid, gid),
            "owner of /{path} in the layer"
        );
    }
    let bundle = Bundle::unpack(&layout, TAG);
    for (path, uid, gid) in want {
        let meta = std::fs::symlink_metadata(bundle.rootfs().join(path))
            .unwrap_or_else(|e| panic!("stat /{path}: {e}"));
        assert!(meta.is_dir(), "/{path}");
        assert_eq!(
            (u64::from(meta.uid()), u64::from(meta.gid())),
            (uid, gid),
            "owner of /{path}"
        );
        assert_eq!(meta.mode() & 0o7777, 0o755, "mode of /{path}");
    }
}

// ---- profiles ---------------------------------------------------------------

/// The `description` of the built-in profile `name`, from its source file.
fn builtin_description(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("profiles/{name}.toml"));
    let text = std::fs::read_to_string(&path).expect("read a built-in profile");
    let value: toml::Table = toml::from_str(&text).expect("parse a built-in profile");
    value["description"]
        .as_str()
        .expect("a description")
        .to_owned()
}

#[test]
fn profiles_lists_the_builtins_and_prints_one() {
    let out = check(mkimage().arg("profiles"));
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines.len() > BUILTIN_PROFILES.len(), "{out}");
    for (line, name) in lines.iter().zip(BUILTIN_PROFILES) {
        let (listed, description) = line
            .split_once(' ')
            .unwrap_or_else(|| panic!("no description in {line:?}"));
        assert_eq!(listed, name, "{out}");
        assert_eq!(description.trim_start(), builtin_description(name), "{out}");
    }
    assert!(
        lines[BUILTIN_PROFILES.len()..]
            .iter()
            .any(|l| l.contains("--profile")),
        "{out}"
    );

    let out = check(mkimage().args(["profiles", "nginx"]));
    assert_eq!(out.stdout, include_str!("../../profiles/nginx.toml"));
    assert!(out.stdout.contains("listen 8080;"), "{out}");

    let out = run(mkimage().args(["profiles", "nosuchprofile"]));
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(out.stderr.contains("nosuchprofile"), "{out}");
    assert!(
        out.stderr.contains("cc, java, nginx, node, python, static"),
        "{out}"
    );
}

#[test]
fn a_profile_with_an_unknown_key_is_refused_with_its_line() {
    let dir = tempdir();
    let profile = dir.path().join("mine.toml");
    write(&profile, "description = \"mine\"\n\nbogus = true\n");
    let show = show_program(dir.path());
    let layout = dir.path().join("bad.oci");
    let out = run(mkimage()
        .arg(flag("from-binary", &show))
        .arg(flag("profile", &profile))
        .arg("-o")
        .arg(&layout));
    assert_eq!(out.status.code(), Some(2), "{out}");
    for needle in [&profile.display().to_string(), "line 3", "bogus"] {
        assert!(out.stderr.contains(needle), "no {needle:?} in {out}");
    }
    assert!(!out.stderr.contains("panicked"), "{out}");
    assert!(!layout.exists());
}

#[test]
fn a_profile_file_adds_files_and_env() {
    let dir = tempdir();
    let profile = dir.path().join("greeting.toml");
    write(
        &profile,
        r#"description = "a greeting"

[env]
GREETING = "hello from a profile"

[[file]]
dst = "/etc/greeting.txt"
content = "hi there\n"
"#,
    );
    let show = show_program(dir.path());
    let layout = dir.path().join("greeting.oci");
    build(
        &layout,
        TAG,
        &[flag("from-binary", &show), flag("profile", &profile)],
    );

    let named = named_layers(&layout, TAG);
    let runtime = named.get("runtime").expect("a runtime layer");
    assert_eq!(non_dirs(runtime), ["etc/greeting.txt"]);
    assert_eq!(file_in(runtime, "etc/greeting.txt"), b"hi there\n");
    let entry = &runtime["etc/greeting.txt"];
    assert_eq!(entry.mode & 0o7777, 0o644, "mode of /etc/greeting.txt");
    assert_eq!((entry.uid, entry.gid), (0, 0), "owner of /etc/greeting.txt");

    let cfg = &config(&layout, TAG)["config"];
    let env = cfg["Env"].as_array().expect("Env");
    assert!(
        env.iter()
            .any(|e| e.as_str() == Some("GREETING=hello from a profile")),
        "{cfg}"
    );
    // The profile has no entrypoint: the program stays the entrypoint.
    assert_eq!(cfg["Entrypoint"], json!(["/usr/local/bin/show"]), "{cfg}");
}
