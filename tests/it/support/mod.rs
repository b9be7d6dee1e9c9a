//! Test harness: runs the built `mkimage`, then checks and runs the images it
//! writes with the reference tools (umoci + runc, podman, skopeo,
//! oci-image-tool), and reads the layouts it writes (index, manifests,
//! configs, layer tars) directly. One job per file:
//!
//! * [`process`]: running host commands (to completion, with a time limit);
//! * [`host`]: scratch directories, free ports, required tools and root;
//! * [`build`]: the `mkimage` binary and a build with it;
//! * [`fixtures`]: test programs compiled with gcc;
//! * [`runc`]: an image unpacked by umoci and run by runc;
//! * [`podman`]: an image run by podman;
//! * [`oci_tools`]: skopeo and oci-image-tool on a layout;
//! * [`layout`]: index, manifests, configs, referrers read from the files;
//! * [`layers`]: layer tars read into trees.
//!
//! Every helper that needs a tool calls [`require_tool`] first, so a missing
//! tool fails the test with a message naming the fix instead of skipping it.
//! Tests that need root or runc are `#[ignore = "needs root/runc"]`;
//! `scripts/test` installs the tools and runs them with `--include-ignored`.
//!
//! Everything is re-exported here, so tests import `crate::util::{...}`
//! (`util` is this module's name in `main.rs`) without knowing the file.

pub mod build;
pub mod fixtures;
pub mod host;
pub mod layers;
pub mod layout;
pub mod oci_tools;
pub mod podman;
pub mod process;
pub mod runc;

pub use build::*;
pub use fixtures::*;
pub use host::*;
pub use layers::*;
pub use layout::*;
pub use oci_tools::*;
pub use podman::*;
pub use process::*;
pub use runc::*;
