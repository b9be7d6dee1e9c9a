//! mkimage builds minimal OCI images from build artifacts, without a daemon
//! and without root.
//!
//! The pipeline flows one way:
//!
//! ```text
//! cli ──► plan ──► pipeline ──► artifacts ──► file tree ──► layers ──► image ──► output
//!                                   │          (rootfs)     (layer)    (oci)    (archive, registry)
//!                                   └── elf + resolve: every file the loader opens
//! ```
//!
//! * [`cli`] turns flags into a validated [`plan::BuildPlan`]; nothing
//!   below it sees clap or the environment.
//! * [`pipeline`] runs a plan: artifacts into layer trees, trees into blobs,
//!   blobs into an image.
//! * [`artifact`] adds what users hand in (binaries, trees, venvs, jars,
//!   [`profile`]s) to the layer trees, with their native dependencies.
//! * [`elf`], [`resolve`] and [`image_path`] are the resolver crate
//!   (`crates/ld`, `mkimage-ld`), re-exported here.
//! * [`elf`] reads just the headers, program headers and dynamic section of
//!   ELF files, and parses the root's `ld.so.cache`.
//! * [`resolve`] applies glibc's search rules (ld.so(8), dl-load.c) to find
//!   the closure of an executable, relative to a root directory.
//! * [`image_path`] says what `.`, `//` and `..` mean in a path inside an
//!   image, a root or an archive: the one lexical normalisation.
//! * [`rootfs`] holds the file tree: image paths and their entries.
//! * [`base_files`] picks the standard files from the root (CA bundle,
//!   time zones, locales) into the file tree, through the resolver's view
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
//! * [`oci`] writes configs, manifests and the image layout, and the
//!   provenance blob that says why each file is there.
//! * [`archive`] writes a layout as an oci- or docker-archive (it reads the
//!   layout back through [`source`]).
//! * [`source`] is the one image reader: layouts, oci- and
//!   docker-archives and registries, opened as an `ImageSource` that hands
//!   out typed documents and blob streams checked as they are read.
//! * [`inspect`] reads an image back through it: config, layers, the
//!   merged file tree, and `--why` from the provenance; compares two
//!   images ([`inspect::diff`]) and renders the HTML report
//!   ([`inspect::html`]).
//! * [`registry`] pushes an image from a layout to an OCI distribution
//!   registry; its client also serves `source`'s `docker://` pulls.
//!
//! # Glossary
//!
//! One word, one meaning; code and docs use these.
//!
//! * **artifact**: what a user hands in to be put in the image (a binary,
//!   a tree, a venv, a jar, a JDK, a [`profile`]), added by [`artifact`].
//!   What OCI calls an artifact attached to an image is a *referrer*.
//! * **input**: one program the resolver is asked about (`resolve::Input`:
//!   its host path and its image path, which sets `$ORIGIN`).
//! * **root**: the directory programs are resolved in and the standard
//!   files are taken from (`/`, a sysroot, a base image's files), as the
//!   resolver sees it (`resolve::Root`).
//! * **resolver**: `resolve::Resolver`, glibc's loader rules run over a
//!   root without running anything.
//! * **closure**: every object the loader opens for an input, in load
//!   order (`resolve::Closure`).
//! * **loader ABI**: what the loader compiles in for one architecture
//!   (triplet, `$LIB`, `$PLATFORM`, system directories, hwcaps):
//!   `resolve::LoaderAbi`.
//! * **assembly**: what artifacts are assembled into (`artifact::Assembly`):
//!   the layer trees, the resolver, and why every file is there; `Context`
//!   is only ever `anyhow::Context`.
//! * **file tree**: the image's files before they are layers: a `Tree` of
//!   image paths and entries per layer, together a **layer set**
//!   (`rootfs::LayerSet`), one tree per **layer kind** (`LayerKind`).
//! * **layer**: one tree written as a deterministic, compressed tar blob
//!   ([`layer`]), named by its digest and its diff ID.
//! * **image**: a config and a manifest over the layers; with several
//!   platforms, an index of one image per platform.
//! * **platform**: the OCI platform, `os/architecture[/variant]`
//!   (`oci::Platform`), of the image written or of one read.
//! * **layout**: an OCI image layout directory (`oci::Layout`): blobs and
//!   the `index.json` whose entries the references name.
//! * **reference**: a full image name, `[host/]name:tag` or `@digest`
//!   ([`Reference`]); in a layout, an entry's `ref.name` annotation, whose
//!   value is `ref_name`.
//! * **tag**: only the part of a reference after `:` (`Reference::tag`).
//! * **referrer**: a manifest attached to an image through its `subject`
//!   (the SBOM, the provenance), listed by the referrers API or a
//!   `sha256-<hex>` tag.
//! * **record**: a package record scanners read (dpkg `status.d`, language
//!   packages' metadata), written by [`sbom`] beside the files; the
//!   **SBOM** is the SPDX document made from the same inventory.
//! * **provenance**: why each file is there (which artifact, needed by
//!   what), stored as a referrer and read by `inspect --why`.
//! * **plan**: a `BuildPlan`: everything one build was asked for, resolved
//!   (its parts `JavaPlan`, `BasePlan`, `ConfigPlan`). Nothing else is a
//!   plan: what one push sends is `registry`'s `Uploads`, the cache's
//!   place and size are `CacheSettings`.
//! * **pipeline**: the module that runs a plan ([`pipeline`]).
//! * **source**: an image to read (a layout, an oci- or docker-archive, a
//!   registry), opened as an `ImageSource` ([`source`]).
//! * **normalise**: make a path or name canonical (British `-ise` in every
//!   identifier; [`image_path`] is the one lexical normalisation of paths).
//!
//! # The public surface
//!
//! Modules are private to the crate: what is public is what the binary
//! (`src/main.rs`, a crate of its own), the integration tests
//! (`tests/it`) and the fuzzers (`fuzz/`) use, and what a split into
//! crates would hand out:
//!
//! * [`cli`]: the binary's entry (`parse`, `run`, `message`, exit codes).
//! * [`profile`]: the runtime profiles' TOML schema ([`profile::parse`]).
//! * [`elf`]: the resolver crate's ELF and `ld.so.cache` readers.
//! * [`Digest`] and [`Reference`]: how blobs and images are named.
//! * Writing a layout by hand: [`Layout`], [`ImageSpec`], [`LayerInfo`],
//!   [`MediaType`], [`write_image`], and [`ref_name`] to read its tags.
//! * Reading an image: [`open_str`] (any source, by name), [`select`]
//!   (the one rule that picks an image by tag or platform), and
//!   [`Image`] (what `inspect` reads).
//! * Pushing: [`open_layout`], [`push`](fn@push), [`PushOptions`],
//!   [`RegistryOptions`], [`Credential`], [`Timeouts`]; the registry
//!   client's parsers of what registries and credential files say,
//!   [`transport`] and [`auth`], for the fuzzers.
//! * [`PASSWD`]: the `/etc/passwd` mkimage writes.
//!
//! Anything else a test needs is a unit test inside the crate.
//!
//! # Layering
//!
//! Each module may import (`crate::NAME`, or `mkimage_ld::NAME` for the
//! resolver's) only the modules its row names; the `layering` unit test
//! reads this table and fails on any other import, on a module without a
//! row, and on a row that lets `rootfs`, `layer` or `oci` reach above the
//! leaves. Test code (`tests.rs`, `mod
//! tests`) is exempt: tests build images to read back. The resolver's
//! modules (`elf`, `resolve`, `image_path`, and the reader under
//! `bounded`) are the crate `crates/ld`, which cannot import mkimage at
//! all. `*` is any module.
//!
//! ```text
//! digest:     -
//! bounded:    -
//! reference:  digest
//! profile:    bounded
//! rootfs:     image_path
//! layer:      digest rootfs
//! oci:        bounded digest
//! cache:      bounded digest layer rootfs
//! sbom:       digest oci resolve rootfs
//! base_files: bounded resolve rootfs
//! source:     archive bounded digest elf image_path layer oci reference registry
//! registry:   bounded digest oci reference source
//! archive:    bounded digest layer oci reference source
//! plan:       base_files cache elf layer oci profile registry rootfs
//! artifact:   bounded elf image_path plan profile resolve rootfs
//! inspect:    archive digest image_path layer oci source
//! pipeline:   archive artifact base_files cache digest elf image_path layer oci plan profile registry resolve rootfs sbom source
//! cli:        *
//! ```
//!
//! `source`, `registry` and `archive` depend on each other (the reader
//! pulls through the registry client, which pushes what it reads; the
//! archive writer reads a layout through the reader): one layer, for now.

// These docs are a map of the crate's insides, so they link its private
// modules: read them with `cargo doc --document-private-items`.
#![allow(rustdoc::private_intra_doc_links)]

// The resolver is its own crate of the workspace (`crates/ld`); these
// keep its paths in this crate. `elf` is public for the fuzzers.
pub use mkimage_ld::elf;
use mkimage_ld::{image_path, resolve};

mod archive;
mod artifact;
mod base_files;
mod bounded;
mod cache;
pub mod cli;
mod digest;
mod inspect;
mod layer;
mod oci;
mod pipeline;
mod plan;
pub mod profile;
mod reference;
mod registry;
mod rootfs;
mod sbom;
mod source;

// The public surface (see "The public surface" above).
pub use digest::Digest;
pub use inspect::Image;
pub use oci::{ImageSpec, LayerInfo, Layout, MediaType, ref_name, write_image};
pub use reference::Reference;
pub use registry::{
    Credential, PushOptions, RegistryOptions, Timeouts, auth, open_layout, push, transport,
};
pub use rootfs::base::PASSWD;
pub use source::{open_str, select};

#[cfg(test)]
mod layering;
