//! Table-driven tests of the loader rules over synthetic ELF trees: each
//! case builds a root of generated ELF files and checks which file every
//! name resolves to, in load order.

use std::ffi::OsString;
use std::path::Path;

use super::*;
use crate::elf::ldcache::synth_cache;
use crate::elf::synth::SynthElf;

const X86_64_CACHE: i32 = 0x0303;

enum Node {
    Elf(&'static str, SynthElf),
    Text(&'static str, &'static str),
    Link(&'static str, &'static str),
}
use Node::{Elf, Link, Text};

#[derive(Default)]
struct Case {
    name: &'static str,
    nodes: Vec<Node>,
    cache: Vec<(&'static str, &'static str, Option<&'static str>)>,
    ld_library_path: Option<&'static str>,
    /// (requested name, image path found)
    want: Vec<(&'static str, &'static str)>,
    missing: Vec<&'static str>,
}

/// A minimal Debian-like root: multiarch dirs, an interpreter, a libc.
fn base() -> Vec<Node> {
    vec![
        Elf(
            "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
            SynthElf::x86_64().soname("ld-linux-x86-64.so.2"),
        ),
        Link("/lib64", "usr/lib/x86_64-linux-gnu"),
        Link("/lib", "usr/lib"),
        Elf(
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
            SynthElf::x86_64()
                .soname("libc.so.6")
                .needed("ld-linux-x86-64.so.2"),
        ),
    ]
}

fn build(root: &Path, nodes: &[Node]) {
    for n in nodes {
        let (p, rel) = match n {
            Elf(p, _) | Text(p, _) | Link(p, _) => (p, root.join(&p[1..])),
        };
        std::fs::create_dir_all(rel.parent().unwrap()).unwrap();
        match n {
            Elf(_, e) => std::fs::write(&rel, e.build()).unwrap(),
            Text(_, t) => std::fs::write(&rel, t).unwrap(),
            Link(_, target) => std::os::unix::fs::symlink(target, &rel).unwrap(),
        }
        let _ = p;
    }
}

fn run(case: &Case, exe: &str) -> Closure {
    let d = tempfile::tempdir().unwrap();
    build(d.path(), &base());
    build(d.path(), &case.nodes);
    if !case.cache.is_empty() {
        let entries: Vec<(&str, &str, i32, Option<&str>)> = case
            .cache
            .iter()
            .map(|(k, v, h)| (*k, *v, X86_64_CACHE, *h))
            .collect();
        std::fs::create_dir_all(d.path().join("etc")).unwrap();
        std::fs::write(d.path().join("etc/ld.so.cache"), synth_cache(&entries)).unwrap();
    }
    let mut r = Resolver::new(Options {
        root: d.path().to_path_buf(),
        ld_library_path: case.ld_library_path.map(OsString::from),
        companions: false,
    });
    r.resolve_in_root(Path::new(exe)).unwrap()
}

fn names(c: &Closure) -> Vec<(String, String)> {
    c.objects[1..]
        .iter()
        .filter(|o| o.reason != Reason::Interpreter)
        .map(|o| {
            (
                o.name.to_string_lossy().into_owned(),
                o.path.display().to_string(),
            )
        })
        .collect()
}

fn check(case: Case) {
    let c = run(&case, "/app/bin/app");
    let want: Vec<(String, String)> = case
        .want
        .iter()
        .map(|(n, p)| (n.to_string(), p.to_string()))
        .collect();
    assert_eq!(names(&c), want, "case {:?}", case.name);
    let missing: Vec<String> = c
        .missing
        .iter()
        .map(|m| m.name.to_string_lossy().into_owned())
        .collect();
    assert_eq!(missing, case.missing, "case {:?}: missing", case.name);
}

fn exe() -> SynthElf {
    SynthElf::exe()
}
fn lib(soname: &'static str) -> SynthElf {
    SynthElf::x86_64().soname(soname)
}

#[test]
fn loader_rules() {
    let cases = vec![
        Case {
            name: "system dirs in order, breadth first, libc's own NEEDED de-duplicated",
            nodes: vec![
                Elf("/app/bin/app", exe().needed("liba.so").needed("libc.so.6")),
                Elf("/usr/lib/liba.so", lib("liba.so").needed("libb.so")),
                Elf("/usr/lib/x86_64-linux-gnu/libb.so", lib("libb.so")),
                Elf("/usr/lib/libb.so", lib("libb.so")),
            ],
            want: vec![
                ("liba.so", "/lib/liba.so"),
                ("libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6"),
                ("libb.so", "/lib/x86_64-linux-gnu/libb.so"),
            ],
            ..Default::default()
        },
        Case {
            name: "RPATH before LD_LIBRARY_PATH before RUNPATH",
            nodes: vec![
                Elf(
                    "/app/bin/app",
                    exe().needed("liba.so").needed("libb.so").rpath("/r"),
                ),
                Elf("/r/liba.so", lib("liba.so")),
                Elf("/l/liba.so", lib("liba.so")),
                Elf("/l/libb.so", lib("libb.so")),
            ],
            ld_library_path: Some("/l"),
            want: vec![("liba.so", "/r/liba.so"), ("libb.so", "/l/libb.so")],
            ..Default::default()
        },
        Case {
            name: "RUNPATH comes after LD_LIBRARY_PATH and disables RPATH",
            nodes: vec![
                Elf(
                    "/app/bin/app",
                    exe().needed("liba.so").rpath("/r").runpath("/u"),
                ),
                Elf("/r/liba.so", lib("liba.so")),
                Elf("/u/liba.so", lib("liba.so")),
                Elf("/l/liba.so", lib("liba.so")),
            ],
            ld_library_path: Some("/l"),
            want: vec![("liba.so", "/l/liba.so")],
            ..Default::default()
        },
        Case {
            name: "RPATH of the executable is inherited by libraries without RUNPATH",
            nodes: vec![
                Elf("/app/bin/app", exe().needed("liba.so").rpath("/r")),
                Elf("/r/liba.so", lib("liba.so").needed("libb.so")),
                Elf("/r/libb.so", lib("libb.so")),
            ],
            want: vec![("liba.so", "/r/liba.so"), ("libb.so", "/r/libb.so")],
            ..Default::default()
        },
        Case {
            name: "a library with RUNPATH does not inherit RPATH; RUNPATH is not inherited",
            nodes: vec![
                Elf("/app/bin/app", exe().needed("liba.so").rpath("/r")),
                Elf(
                    "/r/liba.so",
                    lib("liba.so")
                        .runpath("/u")
                        .needed("libb.so")
                        .needed("libc2.so"),
                ),
                Elf("/r/libb.so", lib("libb.so")),
                Elf("/u/libc2.so", lib("libc2.so").needed("libd.so")),
                Elf("/u/libd.so", lib("libd.so")),
            ],
            want: vec![("liba.so", "/r/liba.so"), ("libc2.so", "/u/libc2.so")],
            // libb only in /r (RPATH not used under RUNPATH); libd only in
            // /u (RUNPATH of liba not inherited by libc2).
            missing: vec!["libb.so", "libd.so"],
            ..Default::default()
        },
        Case {
            name: "$ORIGIN and ${ORIGIN}, $LIB and $PLATFORM",
            nodes: vec![
                Elf(
                    "/app/bin/app",
                    exe()
                        .needed("liba.so")
                        .needed("libb.so")
                        .needed("libc3.so")
                        .runpath("$ORIGIN/../lib:/opt/$LIB:/p/${PLATFORM}"),
                ),
                Elf(
                    "/app/lib/liba.so",
                    lib("liba.so").runpath("${ORIGIN}/sub").needed("libs.so"),
                ),
                Elf("/app/lib/sub/libs.so", lib("libs.so")),
                Elf("/opt/lib/x86_64-linux-gnu/libb.so", lib("libb.so")),
                Elf("/p/x86_64/libc3.so", lib("libc3.so")),
            ],
            want: vec![
                ("liba.so", "/app/lib/liba.so"),
                ("libb.so", "/opt/lib/x86_64-linux-gnu/libb.so"),
                ("libc3.so", "/p/x86_64/libc3.so"),
                ("libs.so", "/app/lib/sub/libs.so"),
            ],
            ..Default::default()
        },
        Case {
            name: "DF_1_NODEFLIB skips the cache and the system directories",
            nodes: vec![
                Elf("/app/bin/app", exe().needed("liba.so").nodeflib()),
                Elf("/usr/lib/liba.so", lib("liba.so")),
            ],
            cache: vec![("liba.so", "/usr/lib/liba.so", None)],
            missing: vec!["liba.so"],
            ..Default::default()
        },
        Case {
            name: "wrong class or machine is skipped, as the loader does",
            nodes: vec![
                Elf(
                    "/app/bin/app",
                    exe().needed("liba.so").rpath("/i386:/arm:/ok"),
                ),
                Elf("/i386/liba.so", SynthElf::i386().soname("liba.so")),
                Elf("/arm/liba.so", SynthElf::aarch64().soname("liba.so")),
                Elf("/ok/liba.so", lib("liba.so")),
            ],
            want: vec![("liba.so", "/ok/liba.so")],
            ..Default::default()
        },
        Case {
            name: "another byte order first on the path stops the search",
            nodes: vec![
                Elf("/app/bin/app", exe().needed("liba.so").rpath("/be:/ok")),
                Elf("/be/liba.so", lib("liba.so").big_endian()),
                Elf("/ok/liba.so", lib("liba.so")),
            ],
            missing: vec!["liba.so"],
            ..Default::default()
        },
        Case {
            name: "a non-ELF file first on the path stops the search (invalid ELF header)",
            nodes: vec![
                Elf("/app/bin/app", exe().needed("liba.so").rpath("/bad:/ok")),
                Text("/bad/liba.so", "INPUT(-lfoo)"),
                Elf("/ok/liba.so", lib("liba.so")),
            ],
            missing: vec!["liba.so"],
            ..Default::default()
        },
        Case {
            name: "a loaded soname satisfies later requests wherever it was found",
            nodes: vec![
                Elf(
                    "/app/bin/app",
                    exe().needed("liba.so").needed("libb.so").rpath("/first"),
                ),
                Elf("/first/liba.so", lib("liba.so")),
                Elf("/usr/lib/libb.so", lib("libb.so").needed("liba.so")),
                Elf("/usr/lib/liba.so", lib("liba.so")),
            ],
            want: vec![("liba.so", "/first/liba.so"), ("libb.so", "/lib/libb.so")],
            ..Default::default()
        },
        Case {
            name: "the cache is used before the system directories, and checked for arch",
            nodes: vec![
                Elf("/app/bin/app", exe().needed("liba.so")),
                Elf("/cached/liba.so", lib("liba.so")),
                Elf("/usr/lib/liba.so", lib("liba.so")),
            ],
            cache: vec![("liba.so", "/cached/liba.so", None)],
            want: vec![("liba.so", "/cached/liba.so")],
            ..Default::default()
        },
        Case {
            name: "a NEEDED with a slash is a path",
            nodes: vec![
                Elf(
                    "/app/bin/app",
                    exe().needed("/opt/x/liba.so").needed("$ORIGIN/libo.so"),
                ),
                Elf("/opt/x/liba.so", lib("liba.so")),
                Elf("/app/bin/libo.so", lib("libo.so")),
            ],
            want: vec![
                ("/opt/x/liba.so", "/opt/x/liba.so"),
                ("$ORIGIN/libo.so", "/app/bin/libo.so"),
            ],
            ..Default::default()
        },
        Case {
            name: "ld.so.conf (with include globs) stands in for a missing cache",
            nodes: vec![
                Elf("/app/bin/app", exe().needed("liba.so")),
                Text("/etc/ld.so.conf", "include /etc/ld.so.conf.d/*.conf\n"),
                Text("/etc/ld.so.conf.d/x.conf", "# comment\n/opt/conf\n"),
                Elf("/opt/conf/liba.so", lib("liba.so")),
                Elf("/usr/lib/liba.so", lib("liba.so")),
            ],
            want: vec![("liba.so", "/opt/conf/liba.so")],
            ..Default::default()
        },
    ];
    for case in cases {
        check(case);
    }
}

#[test]
fn symlink_chains_and_interpreter_are_recorded() {
    let case = Case {
        nodes: vec![
            Elf("/app/bin/app", exe().needed("libfoo.so.1")),
            Link("/usr/lib/x86_64-linux-gnu/libfoo.so.1", "libfoo.so.1.2.3"),
            Elf(
                "/usr/lib/x86_64-linux-gnu/libfoo.so.1.2.3",
                lib("libfoo.so.1"),
            ),
        ],
        ..Default::default()
    };
    let c = run(&case, "/app/bin/app");
    let interp = c.interpreter().unwrap();
    assert_eq!(interp.path, Path::new("/lib64/ld-linux-x86-64.so.2"));
    assert_eq!(
        interp.real,
        Path::new("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
    );
    let foo = c.objects.iter().find(|o| o.name == "libfoo.so.1").unwrap();
    assert_eq!(foo.path, Path::new("/lib/x86_64-linux-gnu/libfoo.so.1"));
    assert_eq!(
        foo.real,
        Path::new("/usr/lib/x86_64-linux-gnu/libfoo.so.1.2.3")
    );
    let links: Vec<(&Path, &Path)> = foo
        .links
        .iter()
        .map(|l| (l.at.as_path(), l.target.as_path()))
        .collect();
    assert_eq!(
        links,
        [
            (Path::new("/lib"), Path::new("usr/lib")),
            (
                Path::new("/usr/lib/x86_64-linux-gnu/libfoo.so.1"),
                Path::new("libfoo.so.1.2.3")
            ),
        ]
    );
}

/// An interpreter that is not there, or not ELF, is a required missing
/// object that says which.
#[test]
fn a_missing_or_unreadable_interpreter_is_missing() {
    for (interp, why) in [
        ("/lib64/ld-gone.so.2", "does not exist in the root"),
        ("/lib64/ld-text.so.2", "not an ELF file"),
    ] {
        let case = Case {
            nodes: vec![
                Elf("/app/bin/app", exe().interp(interp)),
                Text("/usr/lib/x86_64-linux-gnu/ld-text.so.2", "#!/bin/sh\n"),
            ],
            ..Default::default()
        };
        let c = run(&case, "/app/bin/app");
        assert!(c.interpreter().is_none(), "{interp}");
        let [m] = &c.missing[..] else {
            panic!("{interp}: missing {:?}", c.missing);
        };
        assert_eq!(m.name, interp, "{interp}");
        assert!(m.required && m.searched.is_empty(), "{interp}: {m:?}");
        assert_eq!(m.rejected.len(), 1, "{interp}: {m:?}");
        assert_eq!(m.rejected[0].0, Path::new(interp));
        assert!(m.rejected[0].1.contains(why), "{interp}: {m:?}");
    }
}

#[test]
fn hwcaps_variants_are_all_kept() {
    let case = Case {
        nodes: vec![
            Elf("/app/bin/app", exe().needed("libv.so").rpath("/v")),
            Elf("/v/libv.so", lib("libv.so")),
            Elf("/v/glibc-hwcaps/x86-64-v3/libv.so", lib("libv.so")),
            Elf("/v/glibc-hwcaps/x86-64-v2/libv.so", lib("libv.so")),
        ],
        ..Default::default()
    };
    let c = run(&case, "/app/bin/app");
    let got: Vec<(String, String)> = c.objects[1..]
        .iter()
        .filter(|o| o.name == "libv.so")
        .map(|o| (o.path.display().to_string(), o.reason.to_string()))
        .collect();
    assert_eq!(
        got,
        [
            (
                "/v/glibc-hwcaps/x86-64-v3/libv.so".to_string(),
                "needed".to_string()
            ),
            (
                "/v/glibc-hwcaps/x86-64-v2/libv.so".to_string(),
                "hwcaps variant".to_string()
            ),
            ("/v/libv.so".to_string(), "hwcaps variant".to_string()),
        ]
    );
}

#[test]
fn cache_hwcaps_entries_are_preferred_and_kept() {
    let case = Case {
        nodes: vec![
            Elf("/app/bin/app", exe().needed("libh.so")),
            Elf("/usr/lib/x86_64-linux-gnu/libh.so", lib("libh.so")),
            Elf(
                "/usr/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v2/libh.so",
                lib("libh.so"),
            ),
        ],
        cache: vec![
            ("libh.so", "/usr/lib/x86_64-linux-gnu/libh.so", None),
            (
                "libh.so",
                "/usr/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v2/libh.so",
                Some("x86-64-v2"),
            ),
        ],
        ..Default::default()
    };
    let c = run(&case, "/app/bin/app");
    let got: Vec<String> = c.objects[1..]
        .iter()
        .filter(|o| o.name == "libh.so")
        .map(|o| o.path.display().to_string())
        .collect();
    assert_eq!(
        got,
        [
            "/usr/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v2/libh.so",
            "/usr/lib/x86_64-linux-gnu/libh.so"
        ]
    );
}

#[test]
fn companions_come_with_libc() {
    let d = tempfile::tempdir().unwrap();
    build(d.path(), &base());
    build(
        d.path(),
        &[
            Elf("/app/bin/app", exe().needed("libc.so.6")),
            Elf(
                "/usr/lib/x86_64-linux-gnu/libgcc_s.so.1",
                lib("libgcc_s.so.1").needed("libc.so.6"),
            ),
            Elf(
                "/usr/lib/x86_64-linux-gnu/libnss_files.so.2",
                lib("libnss_files.so.2"),
            ),
        ],
    );
    let mut r = Resolver::new(Options {
        root: d.path().to_path_buf(),
        ..Options::default()
    });
    let c = r.resolve_in_root(Path::new("/app/bin/app")).unwrap();
    let companions: Vec<String> = c
        .objects
        .iter()
        .filter(|o| matches!(o.reason, Reason::Companion(_)))
        .map(|o| o.name.to_string_lossy().into_owned())
        .collect();
    assert_eq!(companions, ["libgcc_s.so.1", "libnss_files.so.2"]);
    // libnss_dns is optional: noted, not an error.
    assert_eq!(c.missing.len(), 1);
    assert!(!c.missing[0].required);
    assert_eq!(c.required_missing().count(), 0);
}

#[test]
fn input_outside_the_root_keeps_origin_relative_files() {
    let root = tempfile::tempdir().unwrap();
    build(root.path(), &base());
    let host = tempfile::tempdir().unwrap();
    build(
        host.path(),
        &[
            Elf(
                "/target/release/app",
                exe()
                    .needed("libc.so.6")
                    .needed("libplug.so")
                    .runpath("$ORIGIN/../lib"),
            ),
            Elf("/target/lib/libplug.so", lib("libplug.so")),
        ],
    );
    let mut r = Resolver::new(Options {
        root: root.path().to_path_buf(),
        ..Options::default()
    });
    let input = Input::outside(host.path().join("target/release/app"), "/usr/local/bin/app");
    let c = r.resolve(&input).unwrap();
    let plug = c.objects.iter().find(|o| o.name == "libplug.so").unwrap();
    assert_eq!(plug.path, Path::new("/usr/local/lib/libplug.so"));
    assert_eq!(
        plug.host,
        std::fs::canonicalize(host.path().join("target/lib/libplug.so")).unwrap()
    );
    let libc = c.objects.iter().find(|o| o.name == "libc.so.6").unwrap();
    assert!(libc.host.starts_with(root.path()));
}

/// Each object says which step of the search order found it, in which
/// hwcaps subdirectory, and where the search looked before.
#[test]
fn found_by_names_the_search_step() {
    let case = Case {
        nodes: vec![
            Elf(
                "/app/bin/app",
                exe()
                    .needed("libr.so")
                    .needed("libl.so")
                    .needed("libk.so")
                    .needed("libs.so")
                    .needed("libv.so")
                    .needed("libc.so.6")
                    .rpath("/r"),
            ),
            Elf("/app/bin/run", exe().needed("libu.so").runpath("/u")),
            Elf("/r/libr.so", lib("libr.so")),
            Elf("/r/glibc-hwcaps/x86-64-v3/libv.so", lib("libv.so")),
            Elf("/l/libl.so", lib("libl.so")),
            Elf("/u/libu.so", lib("libu.so")),
            Elf("/usr/lib/x86_64-linux-gnu/libk.so", lib("libk.so")),
            Elf("/usr/lib/libs.so", lib("libs.so")),
        ],
        cache: vec![("libk.so", "/usr/lib/x86_64-linux-gnu/libk.so", None)],
        ld_library_path: Some("/l"),
        ..Default::default()
    };
    let by = |c: &Closure, name: &str| -> FoundBy {
        let o = c.objects.iter().find(|o| o.name == name).unwrap();
        o.found_by.clone().unwrap()
    };
    let step = |dir: &str, why: &str| Searched {
        dir: dir.into(),
        why: why.into(),
    };
    let rpath = step("/r", "RPATH of /app/bin/app");
    let llp = step("/l", "LD_LIBRARY_PATH");
    let cache = step("/etc/ld.so.cache", "ld.so.cache");

    let c = run(&case, "/app/bin/app");
    assert!(
        c.objects[0].found_by.is_none(),
        "the input is not searched for"
    );
    assert_eq!(
        by(&c, "libr.so"),
        FoundBy {
            step: rpath.clone(),
            hwcaps: None,
            passed: vec![]
        }
    );
    assert_eq!(
        by(&c, "libr.so").to_string(),
        "found in /r (RPATH of /app/bin/app)"
    );
    let v = by(&c, "libv.so");
    assert_eq!(
        (&v.step, v.hwcaps.as_deref()),
        (&rpath, Some("glibc-hwcaps/x86-64-v3"))
    );
    assert_eq!(
        v.to_string(),
        "found in /r/glibc-hwcaps/x86-64-v3 (RPATH of /app/bin/app, hwcaps subdirectory)"
    );
    assert_eq!(by(&c, "libl.so").step, llp);
    assert_eq!(by(&c, "libl.so").passed, std::slice::from_ref(&rpath));
    let k = by(&c, "libk.so");
    assert_eq!(
        (&k.step, &k.passed),
        (&cache, &vec![rpath.clone(), llp.clone()])
    );
    assert_eq!(
        k.to_string(),
        "found in ld.so.cache; not in /r (RPATH of /app/bin/app), /l (LD_LIBRARY_PATH)"
    );
    let s = by(&c, "libs.so");
    // /lib (a link to usr/lib in this root) comes before /usr/lib.
    assert_eq!(s.step, step("/lib", "system search path"));
    assert_eq!(s.passed[..3], [rpath, llp.clone(), cache]);
    assert!(
        s.passed[3..].iter().all(|p| p.why == "system search path"),
        "{s}"
    );
    let interp = by(&c, "/lib64/ld-linux-x86-64.so.2");
    assert_eq!(interp.step, step("/lib64", "PT_INTERP"));

    let c = run(&case, "/app/bin/run");
    let u = by(&c, "libu.so");
    // RUNPATH: LD_LIBRARY_PATH comes first (ld.so(8)).
    assert_eq!(
        (&u.step, &u.passed),
        (&step("/u", "RUNPATH of /app/bin/run"), &vec![llp])
    );
}
