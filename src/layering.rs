//! Checks the crate's layering (the table in the crate docs, lib.rs):
//! every `crate::NAME` a module's code names must be in its row. A text
//! scan, not the compiler's view: it sees `crate::a::b`, `use crate::{a,
//! b::{c}}` and paths in expressions; `super::` never leaves a top-level
//! module here (none of their root files uses it to reach the crate root).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The rows of the table in lib.rs's `# Layering` section.
fn table(lib: &str) -> BTreeMap<String, Option<BTreeSet<String>>> {
    let section = lib
        .split("//! # Layering")
        .nth(1)
        .expect("lib.rs has a # Layering section");
    let block = section
        .split("//! ```text\n")
        .nth(1)
        .and_then(|b| b.split("//! ```\n").next())
        .expect("the section has a ```text table");
    block
        .lines()
        .map(|l| {
            let row = l.trim_start_matches("//!").trim();
            let (name, deps) = row.split_once(':').expect("rows are `name: deps`");
            let deps = deps.trim();
            let allowed = match deps {
                "*" => None,
                "-" => Some(BTreeSet::new()),
                d => Some(d.split_whitespace().map(str::to_owned).collect()),
            };
            (name.trim().to_owned(), allowed)
        })
        .collect()
}

/// The code of `file` without comments and test modules.
fn code(file: &Path) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => &text,
    };
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules `code` names through `crate::`, or through
/// `mkimage_ld::` (the resolver's crate, whose modules are ours too: a
/// file may not reach `resolve` by naming the crate instead).
fn imports(code: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = BTreeSet::new();
    let paths = ["crate::", "mkimage_ld::"].into_iter().flat_map(|prefix| {
        code.match_indices(prefix)
            .map(move |(at, _)| &code[at + prefix.len()..])
    });
    for rest in paths {
        if let Some(group) = rest.strip_prefix('{') {
            // The names at the group's top level: `{a, b::{c, d}, e}`.
            let mut depth = 1;
            let mut start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 1 => break,
                    '}' => depth -= 1,
                    ',' if depth == 1 => start = true,
                    c if depth == 1 && start && (c.is_ascii_alphanumeric() || c == '_') => {
                        out.insert(ident(&group[i..]));
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

fn rs_files(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut out = Vec::new();
    for e in std::fs::read_dir(path).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(rs_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs")
            && p.file_name().is_some_and(|n| n != "tests.rs")
        {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Every breach of `table` in the modules under `src`, as `module → name
/// (file)`.
fn breaches(src: &Path, table: &BTreeMap<String, Option<BTreeSet<String>>>) -> Vec<String> {
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for entry in entries {
        let name = entry.file_stem().unwrap().to_string_lossy().into_owned();
        if name == "lib" || name == "main" || name == "layering" {
            continue;
        }
        let Some(allowed) = table.get(&name) else {
            out.push(format!("{name} has no row in lib.rs's layering table"));
            continue;
        };
        let Some(allowed) = allowed else { continue };
        for file in rs_files(&entry) {
            for import in imports(&code(&file)) {
                if import != name && !allowed.contains(&import) {
                    out.push(format!("{name} → {import} ({})", file.display()));
                }
            }
        }
    }
    out
}

/// The low modules the issue asks to hold, and the most each row may
/// allow: the leaves (and, for `layer`, the file tree it writes). Any
/// other name (the resolver, `pipeline`, `source`, ...) is upward. A floor
/// the table cannot lose however it is edited.
const FLOOR: &[(&str, &[&str])] = &[
    ("rootfs", &["bounded", "digest", "image_path"]),
    ("layer", &["bounded", "digest", "image_path", "rootfs"]),
    ("oci", &["bounded", "digest", "image_path", "reference"]),
];

/// Every row of `table` that allows more than [`FLOOR`] does.
fn floor_breaches(table: &BTreeMap<String, Option<BTreeSet<String>>>) -> Vec<String> {
    let mut out = Vec::new();
    for (low, most) in FLOOR {
        match table.get(*low) {
            None => out.push(format!("{low} has no row in lib.rs's layering table")),
            Some(None) => out.push(format!("{low} may import anything (`*`)")),
            Some(Some(row)) => {
                for name in row.iter().filter(|n| !most.contains(&n.as_str())) {
                    out.push(format!("{low} may import {name}, which is above it"));
                }
            }
        }
    }
    out
}

#[test]
fn modules_import_only_what_the_layering_table_allows() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = std::fs::read_to_string(root.join("src/lib.rs")).unwrap();
    let table = table(&lib);
    let floor = floor_breaches(&table);
    assert!(
        floor.is_empty(),
        "the table lets low modules import upward:\n{}",
        floor.join("\n")
    );
    let found = breaches(&root.join("src"), &table);
    assert!(
        found.is_empty(),
        "imports the layering forbids:\n{}",
        found.join("\n")
    );
}

/// A table that lets a low module reach up fails the floor.
#[test]
fn a_table_that_lets_low_modules_import_upward_is_refused() {
    let lib =
        "//! # Layering\n//! ```text\n//! rootfs: image_path resolve\n//! layer: *\n//! ```\n";
    let found = floor_breaches(&table(lib));
    assert_eq!(
        found,
        [
            "rootfs may import resolve, which is above it",
            "layer may import anything (`*`)",
            "oci has no row in lib.rs's layering table",
        ],
    );
}

#[test]
fn the_scanner_sees_every_form_of_import() {
    let code = "use crate::a::b;\nuse crate::{c, d::{e, f}, g::h};\nlet x = crate::i::j();\n\
                use mkimage_ld::resolve::Root;";
    let want: BTreeSet<String> = ["a", "c", "d", "g", "i", "resolve"]
        .map(str::to_owned)
        .into();
    assert_eq!(imports(code), want);
}

/// A forbidden import in a scratch tree is reported.
#[test]
fn a_forbidden_import_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path();
    std::fs::create_dir(src.join("rootfs")).unwrap();
    std::fs::write(
        src.join("rootfs/mod.rs"),
        "use crate::image_path::normalise;\n",
    )
    .unwrap();
    std::fs::write(src.join("rootfs/certs.rs"), "use crate::resolve::Root;\n").unwrap();
    std::fs::write(src.join("digest.rs"), "// crate::oci in a comment\n").unwrap();
    let table = table(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap(),
    );
    let found = breaches(src, &table);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("rootfs → resolve"), "{found:?}");
}
