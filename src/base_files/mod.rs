//! The standard files an image gets from the root it is built against:
//! the CA bundle, time zone data and compiled locales. Which of the
//! root's files go in is policy the plan chooses (`--ca-certs`,
//! `--tzdata`, `--locale`); the resolver's [`Root`](crate::resolve::Root)
//! finds them, and they are added to the file tree ([`crate::rootfs`])
//! like any other entries. Kept apart from the file tree so that it, and
//! the layer writer below it, never depend on the resolver.

pub mod certs;
pub mod locale;
pub mod tzdata;

use std::path::PathBuf;

use crate::resolve::LookupError;
use crate::rootfs::{PathError, RootfsError, TreeError};

#[derive(Debug, thiserror::Error)]
pub enum BaseFilesError {
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    Lookup(#[from] LookupError),
    #[error(
        "no CA certificate bundle in {root} (tried {tried}); install ca-certificates there, give one with --ca-certs FILE, or pass --ca-certs none"
    )]
    NoCaBundle { root: PathBuf, tried: String },
    #[error("{path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")]
    NotPem { path: PathBuf },
    #[error(
        "{path}: PEM block {block} (line {line}) {why}; the image's whole CA bundle would fail to load, so give a file of valid certificates"
    )]
    BadCert {
        path: PathBuf,
        block: usize,
        line: usize,
        why: String,
    },
    #[error(
        "--locale {name}: the root has no compiled locale {path}{}; compile it there with `localedef --no-archive -i LANGUAGE -f CHARSET {}` (Debian's locales package), or leave --locale out (C.UTF-8 is always in an image with glibc)",
        if *.archive { " (only a locale-archive, which holds every locale at once)" } else { "" },
        root.join(path.trim_start_matches('/')).display()
    )]
    NoLocale {
        name: String,
        path: String,
        root: PathBuf,
        archive: bool,
    },
    #[error(
        "no time zone data in {}; install tzdata there or pass --tzdata none", root.join("usr/share/zoneinfo").display()
    )]
    NoTzdata { root: PathBuf },
    #[error("time zone {zone:?} is not a name like Europe/Paris")]
    BadZone { zone: String },
    #[error("time zone {zone:?} is not in {}", root.join("usr/share/zoneinfo").display())]
    UnknownZone { zone: String, root: PathBuf },
}

impl From<TreeError> for BaseFilesError {
    fn from(e: TreeError) -> Self {
        BaseFilesError::Rootfs(e.into())
    }
}

impl From<PathError> for BaseFilesError {
    fn from(e: PathError) -> Self {
        BaseFilesError::Rootfs(e.into())
    }
}
