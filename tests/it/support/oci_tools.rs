//! The reference tools that read a layout: skopeo's view of an image, and
//! oci-image-tool's check against the image spec.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::host::require_tool;
use super::layout::image_ref;
use super::process::check;

/// `skopeo inspect oci:DIR:TAG`: digest, layers, architecture, env, labels.
pub fn skopeo_inspect(layout: &Path, tag: &str) -> Value {
    skopeo(&["inspect"], layout, tag)
}

/// `skopeo inspect --config oci:DIR:TAG`: the image config blob as written.
pub fn skopeo_inspect_config(layout: &Path, tag: &str) -> Value {
    skopeo(&["inspect", "--config"], layout, tag)
}

fn skopeo(args: &[&str], layout: &Path, tag: &str) -> Value {
    require_tool("skopeo");
    let out = check(
        Command::new("skopeo")
            .args(args)
            .arg(format!("oci:{}", image_ref(layout, tag))),
    );
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("skopeo printed bad JSON ({e}): {out}"))
}

/// Checks an image layout against the OCI image spec with oci-image-tool.
/// Debian's oci-image-tool 1.0.0-rc1 has `--type imageLayout` unimplemented;
/// `--type image` on a directory detects the layout and checks every ref in
/// its index (blobs, digests, sizes, media types), so no `--ref` is needed.
#[track_caller]
pub fn validate_layout(layout: &Path) {
    require_tool("oci-image-tool");
    check(
        Command::new("oci-image-tool")
            .args(["validate", "--type", "image"])
            .arg(layout),
    );
}
