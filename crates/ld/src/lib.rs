//! mkimage's resolver: every file the dynamic loader opens for a program,
//! found without running anything, relative to a root directory (`/` or a
//! sysroot). Used alone it is an `ldd` that is safe on untrusted files.
//!
//! * [`elf`] reads just the headers, program headers and dynamic section of
//!   ELF files, and parses the root's `ld.so.cache`.
//! * [`resolve`] applies glibc's search rules (ld.so(8), dl-load.c) to find
//!   the closure of an executable.
//! * [`image_path`] is the lexical normalisation of paths inside a root or
//!   an image, shared with mkimage's file tree and image readers.
//! * [`bounded`] reads small files whole, with a cap.
//!
//! Layering inside the crate: `bounded` and `image_path` import nothing,
//! `elf` nothing but itself, `resolve` `elf`, `image_path` and `bounded`.

pub mod bounded;
pub mod elf;
pub mod image_path;
pub mod resolve;
