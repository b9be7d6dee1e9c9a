//! The image's file plan: image paths and entries, grouped into layers by
//! how often they change, and the standard files every image gets.

pub mod base;
pub mod certs;
pub mod host;
pub mod locale;
mod lookup;
pub mod tree;
pub mod tzdata;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use tree::{Entry, ImagePath, Kind, PathError, Source, Tree, TreeError};

use crate::resolve::LookupError;

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is a device, socket or FIFO; only files, directories and symlinks go into images"
    )]
    Special { path: PathBuf },
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error(transparent)]
    Path(#[from] PathError),
    #[error(transparent)]
    Lookup(#[from] LookupError),
    #[error(
        "{path} cannot go in the {layer} layer: {ancestor} is {} in the {other} layer, and layers unpack in order, so one would replace the other; put it below the link's target instead (SRC:DST)",
        tree::describe(kind)
    )]
    Shadows {
        path: ImagePath,
        layer: &'static str,
        ancestor: ImagePath,
        kind: Box<Kind>,
        other: &'static str,
    },
    #[error(
        "no CA certificate bundle in {root} (tried {tried}); install ca-certificates there, give one with --ca-certs FILE, or pass --ca-certs none"
    )]
    NoCaBundle { root: PathBuf, tried: String },
    #[error("{path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")]
    NotPem { path: PathBuf },
    #[error(
        "no time zone data in {root}/usr/share/zoneinfo; install tzdata there or pass --tzdata none"
    )]
    NoTzdata { root: PathBuf },
    #[error("time zone {zone:?} is not a name like Europe/Paris")]
    BadZone { zone: String },
    #[error("time zone {zone:?} is not in {root}/usr/share/zoneinfo")]
    UnknownZone { zone: String, root: PathBuf },
}

impl RootfsError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        RootfsError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Layers, in image order: each changes more often than the one before,
/// so a rebuild after an app change reuses every layer but the last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LayerKind {
    /// passwd, group, certificates, time zones.
    Base,
    /// Shared libraries from the root.
    Libs,
    /// Interpreters and runtimes (python, node, a JRE).
    Runtime,
    /// Third-party dependencies (site-packages, node_modules, jars).
    Deps,
    /// The application itself.
    App,
}

impl LayerKind {
    pub fn name(self) -> &'static str {
        match self {
            LayerKind::Base => "base",
            LayerKind::Libs => "libs",
            LayerKind::Runtime => "runtime",
            LayerKind::Deps => "deps",
            LayerKind::App => "app",
        }
    }

    /// The history text shown by `docker history` and `mkimage inspect`.
    pub fn description(self) -> &'static str {
        match self {
            LayerKind::Base => "mkimage: base files (users, CA certificates, time zones)",
            LayerKind::Libs => "mkimage: system libraries",
            LayerKind::Runtime => "mkimage: language runtime",
            LayerKind::Deps => "mkimage: dependencies",
            LayerKind::App => "mkimage: application",
        }
    }
}

/// The whole plan: one tree per layer.
#[derive(Clone, Debug, Default)]
pub struct LayerSet {
    pub trees: BTreeMap<LayerKind, Tree>,
}

impl LayerSet {
    pub fn tree(&mut self, kind: LayerKind) -> &mut Tree {
        self.trees.entry(kind).or_default()
    }

    /// Adds an entry to a layer unless another layer already has the same
    /// thing at that path (a file is stored once per image); a different
    /// thing at the path is a conflict. Directories always go in, so each
    /// layer is self-contained.
    pub fn insert(
        &mut self,
        kind: LayerKind,
        path: ImagePath,
        entry: Entry,
    ) -> Result<(), RootfsError> {
        // A symlink in one layer and a directory at the same place (or on
        // the way to it) in another cannot both survive unpacking.
        for (k, tree) in &self.trees {
            if *k == kind {
                continue;
            }
            let mut blocker = path
                .ancestors()
                .into_iter()
                .find(|a| tree.get(a).is_some_and(|e| e.kind != Kind::Dir));
            if blocker.is_none()
                && entry.kind == Kind::Dir
                && tree.get(&path).is_some_and(|e| e.kind != Kind::Dir)
            {
                blocker = Some(path.clone());
            }
            if let Some(ancestor) = blocker {
                let kind_there = tree
                    .get(&ancestor)
                    .map(|e| e.kind.clone())
                    .unwrap_or(Kind::Dir);
                return Err(RootfsError::Shadows {
                    path,
                    layer: kind.name(),
                    ancestor,
                    kind: Box::new(kind_there),
                    other: k.name(),
                });
            }
        }
        if entry.kind != Kind::Dir {
            for (k, tree) in &self.trees {
                if *k == kind {
                    continue;
                }
                if let Some(old) = tree.get(&path) {
                    if host::same_entry(old, &entry)? {
                        return Ok(());
                    }
                    return Err(TreeError::Conflict {
                        path,
                        first: Box::new(old.kind.clone()),
                        second: Box::new(entry.kind),
                    }
                    .into());
                }
            }
        }
        host::insert_dedup(self.tree(kind), path, entry)
    }

    /// Whether any layer has `path`.
    pub fn contains(&self, path: &ImagePath) -> bool {
        self.trees.values().any(|t| t.contains(path))
    }

    /// Every layer repeats the parent directories of its files. So that a
    /// later layer's implicit `/home/nonroot` does not reset the mode and
    /// owner set by an earlier one (the last layer wins when unpacked),
    /// implicit directories take the mode and owner of the explicit entry
    /// for the same path in any layer (the last explicit one wins).
    pub fn harmonize_dirs(&mut self) {
        let mut explicit: BTreeMap<ImagePath, (u32, u32, u32)> = BTreeMap::new();
        for tree in self.trees.values() {
            for (path, e) in tree.iter() {
                if e.kind == Kind::Dir && !tree.is_implicit(path) {
                    explicit.insert(path.clone(), (e.mode, e.uid, e.gid));
                }
            }
        }
        for tree in self.trees.values_mut() {
            for (path, (mode, uid, gid)) in &explicit {
                tree.set_implicit_dir(path, *mode, *uid, *gid);
            }
        }
    }

    /// Non-empty layers in image order.
    pub fn layers(&self) -> impl Iterator<Item = (LayerKind, &Tree)> {
        self.trees
            .iter()
            .filter(|(_, t)| !t.is_empty())
            .map(|(k, t)| (*k, t))
    }
}
