//! The base layer: users and groups, the CA bundle and time zones, each
//! recorded with why it is there; and glibc's C.UTF-8 locale beside the
//! libraries.

use std::path::Path;

use crate::artifact::Assembly;
use crate::base_files::certs::CaCerts;
use crate::base_files::tzdata::Tzdata;
use crate::base_files::{certs, locale, tzdata};
use crate::plan::BuildPlan;
use crate::rootfs::{Entry, ImagePath, LayerKind, RootfsError, Tree, base};

use super::BuildError;

/// Users, groups, certificates and time zones, each recorded in the
/// provenance. Returns whether a CA bundle was installed.
pub(super) fn add_base(
    asm: &mut Assembly,
    plan: &BuildPlan,
    from: Option<&super::base_image::BaseImage>,
    zoneinfo: super::ahead::Ahead<Result<tzdata::Walked, crate::base_files::BaseFilesError>>,
) -> Result<bool, BuildError> {
    let mut tree = std::mem::take(asm.layers.tree(LayerKind::Base));
    base::add_base_files(&mut tree).map_err(RootfsError::from)?;
    // A base keeps its users and groups; nonroot is added when missing.
    if let Some(b) = from {
        for (path, ours) in [
            (base::PASSWD_PATH, base::PASSWD),
            (base::GROUP_PATH, base::GROUP),
        ] {
            let Some(file) = b.view.extracted(path) else {
                continue;
            };
            let theirs = std::fs::read_to_string(file).map_err(|e| BuildError::Base {
                base: b.name.clone(),
                why: format!("its {path}: {e}"),
            })?;
            let merged = merge_users(&theirs, ours);
            tree.replace(
                &ImagePath::new(path).map_err(RootfsError::from)?,
                Entry::bytes(merged.into_bytes(), 0o644),
            );
        }
    }
    // ... and its CA bundle and time zones, unless flags ask for others.
    let base_has = |p: &str| from.is_some_and(|b| b.view.lookup(p).is_some());
    let keep_certs = base_has(certs::BUNDLE_PATH)
        && matches!(plan.ca_certs, CaCerts::Default)
        && plan.extra_cas.is_empty();
    let keep_tz = base_has(tzdata::ZONEINFO) && matches!(plan.tzdata, Tzdata::All);
    let plan_owned;
    let plan = if keep_certs || keep_tz {
        let mut p = plan.clone();
        if keep_certs {
            p.ca_certs = CaCerts::None;
        }
        if keep_tz {
            p.tzdata = Tzdata::None;
        }
        plan_owned = p;
        &plan_owned
    } else {
        plan
    };
    record_new(
        asm,
        &tree,
        "base files: users, groups and standard directories",
    );
    let root = asm.resolver.root();
    let bundle = certs::bundle(root, &plan.ca_certs, &plan.extra_cas)?;
    let has_bundle = bundle.is_some();
    if let Some(bytes) = bundle {
        tree.insert(
            ImagePath::new(certs::BUNDLE_PATH).map_err(RootfsError::from)?,
            Entry::bytes(bytes, 0o644),
        )
        .map_err(RootfsError::from)?;
        record_new(asm, &tree, &ca_why(plan));
    }
    let mut warnings = Vec::new();
    let added = tzdata::add_tzdata(
        &mut tree,
        asm.resolver.root(),
        &plan.tzdata,
        zoneinfo.take(),
        &mut warnings,
    );
    asm.warn_all(warnings);
    added?;
    match &plan.tzdata {
        Tzdata::None => {}
        // One entry for the whole directory rather than ~1,300 that say
        // the same; `inspect --why` falls back to the nearest ancestor.
        Tzdata::All => asm.record(
            tzdata::ZONEINFO,
            format!("time zone data: all of {} (--tzdata all)", tzdata::ZONEINFO),
        ),
        Tzdata::Zones(zones) => record_new(
            asm,
            &tree,
            &format!("time zone data (--tzdata {})", zones.join(",")),
        ),
    }
    check_generated(asm, &tree)?;
    *asm.layers.tree(LayerKind::Base) = tree;
    Ok(has_bundle)
}

/// The base's passwd or group lines, then mkimage's `nonroot` line when
/// the base has no entry of that name or id.
fn merge_users(theirs: &str, ours: &str) -> String {
    let fields = |l: &str| {
        let mut f = l.split(':');
        (f.next().map(str::to_owned), f.nth(1).map(str::to_owned))
    };
    let mut out = theirs.to_owned();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    for line in ours.lines().filter(|l| l.starts_with("nonroot:")) {
        let (name, id) = fields(line);
        let clash = theirs
            .lines()
            .map(fields)
            .any(|(n, i)| n == name || i == id);
        if !clash {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The passwd and group files the image will have.
pub(super) fn users(asm: &Assembly) -> (String, String) {
    let read = |path: &str, fallback: &str| -> String {
        let Ok(p) = ImagePath::new(path) else {
            return fallback.to_owned();
        };
        match asm
            .layers
            .trees
            .get(&LayerKind::Base)
            .and_then(|t| t.get(&p))
            .map(|e| &e.kind)
        {
            Some(crate::rootfs::Kind::File {
                source: crate::rootfs::Source::Bytes(b),
                ..
            }) => String::from_utf8_lossy(b).into_owned(),
            _ => fallback.to_owned(),
        }
    };
    (
        read(base::PASSWD_PATH, base::PASSWD),
        read(base::GROUP_PATH, base::GROUP),
    )
}

/// The files mkimage generates are its own: an input at one of their
/// paths (a user's `/etc/passwd`, a directory where it goes, a symlink
/// over `/etc`) would silently replace it when the layers unpack, so it
/// is refused, naming the flag that sets what the user wanted. The same
/// bytes (a zone file also in a user's tree) are fine.
fn check_generated(asm: &Assembly, tree: &Tree) -> Result<(), BuildError> {
    for (path, entry) in tree.iter() {
        if path.is_root() {
            continue;
        }
        match asm.layers.clash(LayerKind::Base, path, entry) {
            Ok(_) => {}
            Err(RootfsError::Tree(crate::rootfs::TreeError::Conflict { .. }))
            | Err(RootfsError::Shadows { .. }) => {
                let p = path.as_path();
                let (what, flag) =
                    if p == Path::new(base::PASSWD_PATH) || p == Path::new(base::GROUP_PATH) {
                        ("the users and groups", Some("--user UID:GID"))
                    } else if p.starts_with(certs::BUNDLE_PATH) {
                        ("the CA bundle", Some("--ca-certs FILE or --ca-cert PEM"))
                    } else if p.starts_with(tzdata::ZONEINFO) {
                        ("the time zone data", Some("--tzdata"))
                    } else {
                        ("a base file or directory", None)
                    };
                return Err(RootfsError::Generated {
                    path: path.clone(),
                    what,
                    flag,
                }
                .into());
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The root's C.UTF-8 locale, in the libraries layer, when the image
/// has glibc (a `libc.so.6`): the locale is glibc's data, and a static
/// or Go program has no use for it. `--locale` names more.
pub(super) fn add_locale(asm: &mut Assembly, names: &[String]) -> Result<(), BuildError> {
    for name in names {
        let mut tree = Tree::new();
        let mut warnings = Vec::new();
        let at = locale::add_locale(&mut tree, asm.resolver.root(), name, &mut warnings);
        asm.warn_all(warnings);
        let at = at?;
        let why = format!("the {name} locale ({at} of the root, --locale {name})");
        for (path, entry) in tree.iter().filter(|(p, _)| !tree.is_implicit(p)) {
            asm.add(LayerKind::Libs, path.clone(), entry.clone(), why.as_str())?;
        }
    }
    let has_glibc = asm.layers.trees.get(&LayerKind::Libs).is_some_and(|t| {
        t.iter()
            .any(|(p, _)| p.file_name().is_some_and(|n| n == "libc.so.6"))
    });
    if !has_glibc {
        return Ok(());
    }
    let mut tree = Tree::new();
    let mut warnings = Vec::new();
    let added = locale::add_c_utf8(&mut tree, asm.resolver.root(), &mut warnings);
    asm.warn_all(warnings);
    if !added? {
        return Ok(());
    }
    let why = format!(
        "the C.UTF-8 locale of glibc ({} of the root)",
        locale::C_UTF8
    );
    // Its parents are created as every layer's are.
    for (path, entry) in tree.iter().filter(|(p, _)| !tree.is_implicit(p)) {
        asm.add(LayerKind::Libs, path.clone(), entry.clone(), why.as_str())?;
    }
    Ok(())
}

/// Records `why` for every path of `tree` that has no reason yet.
fn record_new(asm: &mut Assembly, tree: &Tree, why: &str) {
    for (path, _) in tree.iter() {
        if !path.is_root() {
            asm.record(path, why);
        }
    }
}

fn ca_why(plan: &BuildPlan) -> String {
    let mut parts = match &plan.ca_certs {
        CaCerts::Default => vec!["the root's bundle".to_owned()],
        CaCerts::File(f) => vec![format!("--ca-certs {}", crate::artifact::source_name(f))],
        CaCerts::None => Vec::new(),
    };
    parts.extend(
        plan.extra_cas
            .iter()
            .map(|p| format!("--ca-cert {}", crate::artifact::source_name(p))),
    );
    format!("CA certificates: {}", parts.join(" + "))
}
