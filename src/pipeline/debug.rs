//! `--debug`: the `<tag>-debug` image, distroless's `:debug` variant. It
//! is the production image (every layer shared by digest) plus one layer
//! holding a static busybox at /busybox with its applet links, PATH
//! extended with /busybox and /busybox/sh as the entrypoint.

use std::path::PathBuf;

use crate::artifact::Assembly;
use crate::elf::Arch;
use crate::oci::ImageSpec;
use crate::rootfs::{Tree, busybox};

use super::BuildError;

/// Where busybox comes from: the root (host or --sysroot), where
/// Debian's busybox-static installs it.
const BUSYBOX: &str = "/bin/busybox";
/// The debug layer's history text.
pub(super) const CREATED_BY: &str = "mkimage: debug shell (static busybox at /busybox)";
/// The tag suffix, as distroless names its debug images.
pub const TAG_SUFFIX: &str = "-debug";

/// The debug layer's tree, checked before anything is written: the root's
/// busybox must be a static program for the image's architecture.
pub(super) fn prepare(asm: &mut Assembly, arch: Arch) -> Result<Tree, BuildError> {
    let root = asm.resolver.root().dir().to_path_buf();
    let fail = |why: String| BuildError::Debug {
        path: root.join(BUSYBOX.trim_start_matches('/')),
        why,
    };
    let found = asm
        .resolver
        .root()
        .lookup(std::path::Path::new(BUSYBOX))
        .map_err(|e| fail(e.to_string()))?
        .ok_or_else(|| fail("does not exist".into()))?;
    let host: PathBuf = asm.resolver.root().host(&found.real);
    let info = asm
        .resolver
        .elf_info(&host)
        .map_err(|e| fail(e.to_string()))?;
    if !info.is_static() {
        return Err(fail(
            "is dynamically linked; the debug layer needs busybox-static's".into(),
        ));
    }
    if info.ident.arch() != Some(arch) {
        return Err(fail(format!(
            "is built for {}, but the image is for {}",
            info.ident.describe(),
            arch.platform_string()
        )));
    }
    let bytes = std::fs::read(&host).map_err(|e| fail(e.to_string()))?;
    let applets = busybox::applet_names(&bytes)
        .ok_or_else(|| fail("has no applet table mkimage can read (is it busybox?)".into()))?;
    Ok(busybox::tree(&host, bytes.len() as u64, &applets)?)
}

/// The debug image's config: the production one with PATH extended and
/// the shell as entrypoint (no cmd: `docker run -it IMAGE` gives a shell).
pub(super) fn spec(production: &ImageSpec) -> ImageSpec {
    let mut spec = production.clone();
    match spec.env.iter_mut().find(|e| e.starts_with("PATH=")) {
        Some(path) => path.push_str(&format!(":{}", busybox::DIR)),
        None => spec.env.insert(0, format!("PATH={}", busybox::DIR)),
    }
    spec.entrypoint = vec![format!("{}/sh", busybox::DIR)];
    spec.cmd = Vec::new();
    spec.healthcheck = None;
    spec
}

/// `<tag>-debug` for each tag (every tag ends in `:TAG`).
pub fn references(references: &[String]) -> Vec<String> {
    references
        .iter()
        .map(|t| format!("{t}{TAG_SUFFIX}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_config() {
        let prod = ImageSpec {
            env: vec!["A=1".into(), "PATH=/usr/bin:/bin".into()],
            entrypoint: vec!["/app".into()],
            cmd: vec!["serve".into()],
            ..ImageSpec::default()
        };
        let d = spec(&prod);
        assert_eq!(d.env, ["A=1", "PATH=/usr/bin:/bin:/busybox"]);
        assert_eq!(d.entrypoint, ["/busybox/sh"]);
        assert!(d.cmd.is_empty());
        assert_eq!(spec(&ImageSpec::default()).env, ["PATH=/busybox"]);
        assert_eq!(
            references(&["a:1".into(), "r:5000/b:latest".into()]),
            ["a:1-debug", "r:5000/b:latest-debug"]
        );
    }
}
