//! `mkimage ldd FILE...`: the closure of each file, printed like ldd(1),
//! with the reason for every companion and, for anything not found, who
//! needed it and every directory searched.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{Value, json};

use crate::resolve::{Closure, Input, Options, Reason, Resolver};

use super::Outcome;
use super::outcome::{Level, Status};

// Doc comments are --help text: `[base]` is printed, not a link.
#[allow(rustdoc::broken_intra_doc_links)]
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  mkimage ldd /usr/bin/curl\n  mkimage ldd --json target/release/app\n  mkimage ldd --sysroot /srv/rootfs /srv/rootfs/usr/bin/python3\n\nExit status: 0 when everything is found, 1 when a library is not found, 2 on bad input."
)]
pub struct LddArgs {
    /// ELF executables or shared libraries
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Resolve against this root directory instead of /
    #[arg(long, value_name = "DIR", default_value = "/")]
    sysroot: PathBuf,
    /// LD_LIBRARY_PATH of the image's environment (the host's is ignored)
    #[arg(long, value_name = "PATHS")]
    ld_library_path: Option<OsString>,
    /// Leave out libraries glibc opens on its own (libgcc_s, NSS modules)
    #[arg(long)]
    no_companions: bool,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
    /// Resolve as a build with --base REF would: each library is marked
    /// [base] when the base image provides it (and the build would not
    /// copy it), [root] when it comes from the root
    #[arg(long, value_name = "REF")]
    base: Option<String>,
    #[command(flatten)]
    registry: super::push::RegistryArgs,
    /// Say how the loader finds each library: the step of its search order
    /// (RPATH, LD_LIBRARY_PATH, RUNPATH, ld.so.cache, the default
    /// directories), the hwcaps subdirectory, and where it looked before
    #[arg(short, long, conflicts_with = "json")]
    verbose: bool,
}

/// Each file's closure on stdout; what could not be read or found goes
/// into the outcome (it does not stop the other files), and sets its
/// status: 1 when a library is missing, 2 when a file cannot be read.
pub fn run(args: LddArgs) -> anyhow::Result<Outcome> {
    let root = std::fs::canonicalize(&args.sysroot)
        .with_context(|| format!("sysroot {}", args.sysroot.display()))?;
    let mut resolver = Resolver::new(Options {
        root: root.clone(),
        ld_library_path: args.ld_library_path.clone(),
        companions: !args.no_companions,
    });
    let base = match &args.base {
        Some(reference) => {
            let arch = args
                .files
                .first()
                .and_then(|f| crate::elf::read_elf(f).ok())
                .and_then(|i| i.ident.arch())
                .or_else(crate::elf::Arch::host)
                .context("no platform to pick the base's image for")?;
            let plan = crate::plan::BasePlan {
                reference: reference.clone(),
                registry: args.registry.registry_options(&[])?,
            };
            Some(crate::pipeline::base_image::open(&plan, arch)?)
        }
        None => None,
    };
    let side = |o: &crate::resolve::Object| -> Option<&'static str> {
        let b = base.as_ref()?;
        if !o.in_root {
            return None;
        }
        Some(if b.view.lookup(&o.path.to_string_lossy()).is_some() {
            "base"
        } else {
            "root"
        })
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut outcome = Outcome::success();
    let mut json_items = Vec::new();
    let many = args.files.len() > 1;

    for file in &args.files {
        let result = resolve_file(&mut resolver, &root, file);
        match result {
            Err(e) => {
                outcome.fail(Status::Failed);
                if args.json {
                    json_items.push(json!({"file": file, "error": super::message(&e)}));
                } else {
                    outcome.say(Level::Error, super::message(&e));
                }
            }
            Ok(closure) => {
                if closure.required_missing().next().is_some() {
                    outcome.fail(Status::NotFound);
                }
                if args.json {
                    json_items.push(to_json(file, &closure, &side));
                } else {
                    if many {
                        writeln!(out, "{}:", file.display())?;
                    }
                    print_text(&mut out, &closure, &side, args.verbose)?;
                    for m in &closure.missing {
                        let level = if m.required {
                            Level::Error
                        } else {
                            Level::Note
                        };
                        outcome.say(level, m.to_string());
                    }
                }
            }
        }
    }
    if args.json {
        serde_json::to_writer_pretty(&mut out, &Value::Array(json_items))?;
        writeln!(out)?;
    }
    out.flush()?;
    Ok(outcome)
}

fn resolve_file(resolver: &mut Resolver, root: &Path, file: &Path) -> anyhow::Result<Closure> {
    let abs = std::path::absolute(file).with_context(|| format!("{}", file.display()))?;
    // A file inside the root is resolved where it is; any other file as if
    // it sat at the same path in the root.
    let closure = match abs.strip_prefix(root) {
        Ok(rel) if root != Path::new("/") || abs.exists() => {
            resolver.resolve_in_root(&Path::new("/").join(rel))?
        }
        _ => {
            let meta = std::fs::metadata(&abs)
                .with_context(|| format!("cannot read {}", file.display()))?;
            anyhow::ensure!(
                !meta.is_dir(),
                "{} is a directory, not an ELF file",
                file.display()
            );
            resolver.resolve(&Input::outside(&abs, &abs))?
        }
    };
    Ok(closure)
}

/// Where a library comes from with `--base`: `base` or `root`.
type Side<'a> = dyn Fn(&crate::resolve::Object) -> Option<&'static str> + 'a;

fn print_text(
    out: &mut impl Write,
    c: &Closure,
    side: &Side<'_>,
    verbose: bool,
) -> std::io::Result<()> {
    if c.is_static() {
        return writeln!(out, "\tstatically linked (no shared libraries needed)");
    }
    for o in &c.objects[1..] {
        let name = o.name.to_string_lossy();
        let mut real = if o.real != o.path {
            format!(" -> {}", o.real.display())
        } else {
            String::new()
        };
        if let Some(s) = side(o) {
            real.push_str(&format!(" [{s}]"));
        }
        match &o.reason {
            Reason::Interpreter => writeln!(out, "\t{}{real} (interpreter)", o.path.display())?,
            Reason::Needed => writeln!(out, "\t{name} => {}{real}", o.path.display())?,
            other => writeln!(out, "\t{name} => {}{real} ({other})", o.path.display())?,
        }
        if verbose && let Some(by) = &o.found_by {
            writeln!(out, "\t    {by}")?;
        }
    }
    for m in &c.missing {
        let note = if m.required { "" } else { " (optional)" };
        writeln!(out, "\t{} => not found{note}", m.name.to_string_lossy())?;
        if verbose {
            for s in &m.searched {
                writeln!(out, "\t    not in {} ({})", s.dir.display(), s.why)?;
            }
        }
    }
    for s in &c.suggested {
        writeln!(
            out,
            "\t{} (suggested by the dlopen note of {} for {}; not added)",
            s.sonames.join(" | "),
            s.by.display(),
            s.feature
        )?;
    }
    for (path, why) in &c.bad_notes {
        writeln!(out, "\t{}: {why}", path.display())?;
    }
    Ok(())
}

fn to_json(file: &Path, c: &Closure, side: &Side<'_>) -> Value {
    let objects: Vec<Value> = c.objects[1..]
        .iter()
        .map(|o| {
            json!({
                "name": o.name.to_string_lossy(),
                "path": o.path,
                "real": o.real,
                "host": o.host,
                "reason": o.reason.to_string(),
                "from": side(o),
                "needed_by": o.needed_by.map(|i| &c.objects[i].path),
                "links": o.links.iter().map(|l| json!({"at": l.at, "target": l.target})).collect::<Vec<_>>(),
                "found_by": o.found_by.as_ref().map(|f| json!({
                    "why": f.step.why,
                    "dir": f.step.dir,
                    "hwcaps": f.hwcaps,
                    "passed": f.passed.iter().map(|s| json!({"dir": s.dir, "why": s.why})).collect::<Vec<_>>(),
                })),
            })
        })
        .collect();
    let missing: Vec<Value> = c
        .missing
        .iter()
        .map(|m| {
            json!({
                "name": m.name.to_string_lossy(),
                "needed_by": m.needed_by,
                "required": m.required,
                "searched": m.searched.iter().map(|s| json!({"dir": s.dir, "why": s.why})).collect::<Vec<_>>(),
                "rejected": m.rejected.iter().map(|(p, why)| json!({"path": p, "why": why})).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "file": file,
        "static": c.is_static(),
        "objects": objects,
        "missing": missing,
        "suggested": c.suggested.iter().map(|s| json!({"feature": s.feature, "sonames": s.sonames, "by": s.by})).collect::<Vec<_>>(),
        "bad_notes": c.bad_notes.iter().map(|(p, why)| json!({"path": p, "why": why})).collect::<Vec<_>>(),
    })
}
