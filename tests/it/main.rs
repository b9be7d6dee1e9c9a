//! The one integration-test binary: each module tests one part of mkimage
//! end to end, through the built binary and the reference OCI tools.
//!
//! Tests that need root or runc are `#[ignore = "needs root/runc"]`;
//! `scripts/test` installs the tools and runs them too.

mod harness;
// Shared helpers: not every one is used by the tests of the moment.
#[allow(dead_code)]
mod util;
