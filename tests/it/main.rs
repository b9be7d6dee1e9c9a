//! The one integration-test binary: each module tests one part of mkimage
//! end to end, through the built binary and the reference tools.
//!
//! Tests that need root or external tools are `#[ignore = "needs ..."]`;
//! `scripts/test` installs the tools and runs them too.

mod apps;
mod foreign;
mod formats;
mod harness;
mod hostile;
mod image;
mod inspect;
mod ldd;
mod multiplatform;
mod oci_layout;
mod records;
mod registry;
mod registry_faults;
mod runtime_data;
mod runtimes;
mod sbom;
mod scanners;
mod zstd;
// Shared helpers: not every one is used by the tests of the moment.
#[allow(dead_code)]
mod util;
