//! The one integration-test binary: each module tests one part of mkimage
//! end to end, through the built binary and the reference tools.
//!
//! Tests that need root or external tools are `#[ignore = "needs ..."]`;
//! `scripts/test` installs the tools and runs them too.

mod apps;
mod base;
mod bazel;
mod cache;
mod cli;
mod debug;
mod foreign;
mod formats;
mod harness;
mod health;
mod hermetic;
mod hostile;
mod image;
mod inspect;
mod ldd;
mod machine;
mod multiplatform;
mod nix;
mod oci_layout;
mod records;
mod registry;
mod registry_faults;
mod report;
mod runtime_data;
mod runtimes;
mod sbom;
mod scanners;
mod source;
mod support;
mod versions;
mod zstd;
/// The helpers, under the name every test module imports them by.
use support as util;
