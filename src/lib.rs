//! mkimage builds minimal OCI images from build artifacts, without a daemon
//! and without root.
//!
//! The pipeline flows one way:
//!
//! ```text
//! cli ──► plan ──► build ──► artifacts ──► file plan ──► layers ──► image ──► output
//!                                │          (rootfs)     (layer)    (oci)    (oci, registry)
//!                                └── elf + resolve: every file the loader opens
//! ```
//!
//! * [`cli`] turns flags into a validated [`plan::BuildPlan`]; nothing
//!   below it sees clap or the environment.
//! * [`build`] runs a plan: artifacts into layer trees, trees into blobs,
//!   blobs into an image.
//! * [`artifact`] adds what users hand in (binaries, trees, venvs, jars,
//!   [`profile`]s) to the layer trees, with their native dependencies.
//! * [`elf`] reads just the headers, program headers and dynamic section of
//!   ELF files, and parses the root's `ld.so.cache`.
//! * [`resolve`] applies glibc's search rules (ld.so(8), dl-load.c) to find
//!   the closure of an executable, relative to a root directory.
//! * [`image_path`] says what `.`, `//` and `..` mean in a path inside an
//!   image, a root or an archive: the one lexical normalisation.
//! * [`rootfs`] holds the file plan: image paths and their entries.
//! * [`base_files`] picks the standard files from the root (CA bundle,
//!   time zones, locales) into the file plan, through the resolver's view
//!   of the root.
//! * [`sbom`] finds the Debian package of every file copied from the
//!   root (in the root's dpkg database) and the language packages, adds
//!   the package records scanners read, and makes the SPDX SBOM.
//! * [`layer`] writes a tree as a deterministic tar, gzip- or
//!   zstd-compressed on several threads;
//!   [`digest`] names every blob.
//! * [`cache`] remembers the layers written, keyed by all that decides
//!   their bytes, so an unchanged layer is not written again.
//! * [`reference`](mod@reference) is docker's image-reference grammar: the
//!   names images are tagged with in layouts and archives, and where to
//!   push them.
//! * [`oci`] writes configs, manifests and the image layout, the provenance
//!   blob that says why each file is there, and oci-/docker-archives.
//! * [`source`] is the one image reader: layouts, oci- and
//!   docker-archives and registries, opened as an `ImageSource` that hands
//!   out typed documents and blob streams checked as they are read.
//! * [`inspect`] reads an image back through it: config, layers, the
//!   merged file tree, and `--why` from the provenance; compares two
//!   images ([`inspect::diff`]) and renders the HTML report
//!   ([`inspect::html`]).
//! * [`registry`] pushes an image from a layout to an OCI distribution
//!   registry; its client also serves `source`'s `docker://` pulls.

/// The resolver is its own crate of the workspace (`crates/ld`); these
/// keep its paths in this crate.
pub use mkimage_ld::{elf, image_path, resolve};

pub mod artifact;
pub mod base_files;
pub mod bounded;
pub mod build;
pub mod cache;
pub mod cli;
pub mod digest;
pub mod inspect;
pub mod layer;
pub mod oci;
pub mod plan;
pub mod profile;
pub mod reference;
pub mod registry;
pub mod rootfs;
pub mod sbom;
pub mod source;
