//! The one integration-test binary: each module checks one part of mkimage
//! against the outside world.

mod oci_layout;
