//! `--platform P1,P2` and per-platform inputs: which platforms one
//! command builds, the sysroot of each (`--sysroot PLATFORM=DIR`, or one
//! DIR for all), and the patterns artifact paths may hold, so that one
//! command line names every platform's artifacts:
//! `--from-binary 'target/{triple}/release/app'`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, ensure};

use crate::elf::Arch;

/// The patterns, and what each becomes for linux/arm64.
pub const PATTERNS: &[(&str, &str)] = &[
    ("{arch}", "GOARCH, as OCI names it: arm64"),
    ("{variant}", "the OCI variant, or nothing: v8"),
    ("{triplet}", "Debian's multiarch triplet: aarch64-linux-gnu"),
    (
        "{triple}",
        "Rust's target triple: aarch64-unknown-linux-gnu",
    ),
];

/// One platform's build: its platform (none when `--platform` is left
/// out) and root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub platform: Option<Arch>,
    pub sysroot: PathBuf,
}

impl Target {
    /// `s` with the patterns replaced by this platform's values.
    pub fn expand(&self, s: &str) -> anyhow::Result<String> {
        let Some(arch) = self.platform else {
            if let Some((p, _)) = PATTERNS.iter().find(|(p, _)| s.contains(p)) {
                bail!("{s:?} uses {p}: give --platform to say which platform(s) it means");
            }
            return Ok(s.to_string());
        };
        let (goarch, variant) = arch.oci();
        Ok(s.replace("{arch}", goarch)
            .replace("{variant}", variant.unwrap_or(""))
            .replace("{triplet}", arch.triplet())
            .replace("{triple}", arch.rust_triple()))
    }
}

/// The builds `--platform` and `--sysroot` ask for, in the order the
/// platforms were given. `--sysroot DIR` serves every platform (its
/// patterns expanded), `--sysroot PLATFORM=DIR` one (and is ignored when
/// that platform is not built).
pub fn targets(platforms: &[Arch], sysroots: &[String]) -> anyhow::Result<Vec<Target>> {
    let mut default: Option<&str> = None;
    let mut per: BTreeMap<Arch, PathBuf> = BTreeMap::new();
    for s in sysroots {
        match s
            .split_once('=')
            .and_then(|(p, d)| Some((Arch::from_platform(p)?, d)))
        {
            // A platform not built now is fine: one command line can name
            // every platform's root, and each job build one of them.
            Some((arch, dir)) => {
                ensure!(
                    per.insert(arch, PathBuf::from(dir)).is_none(),
                    "--sysroot: {arch} is given twice"
                );
            }
            None if default.is_none() || default == Some("/") => default = Some(s),
            None => bail!("--sysroot: give one DIR for all platforms, or PLATFORM=DIR for each"),
        }
    }
    let default = default.unwrap_or("/");
    if platforms.is_empty() {
        ensure!(per.is_empty(), "--sysroot PLATFORM=DIR needs --platform");
        return Ok(vec![Target {
            platform: None,
            sysroot: PathBuf::from(default),
        }]);
    }
    let mut out = Vec::new();
    for (i, &arch) in platforms.iter().enumerate() {
        ensure!(
            !platforms[..i].contains(&arch),
            "--platform: {arch} is given twice"
        );
        let sysroot = match per.get(&arch) {
            Some(d) => d.clone(),
            None => {
                let t = Target {
                    platform: Some(arch),
                    sysroot: PathBuf::new(),
                };
                PathBuf::from(t.expand(default)?)
            }
        };
        out.push(Target {
            platform: Some(arch),
            sysroot,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_expand_per_platform() {
        let t = Target {
            platform: Some(Arch::Arm64),
            sysroot: PathBuf::from("/"),
        };
        assert_eq!(
            t.expand("target/{triple}/release/app").unwrap(),
            "target/aarch64-unknown-linux-gnu/release/app"
        );
        assert_eq!(
            t.expand("out/{arch}{variant}/{triplet}").unwrap(),
            "out/arm64v8/aarch64-linux-gnu"
        );
        let none = Target {
            platform: None,
            sysroot: PathBuf::from("/"),
        };
        assert_eq!(none.expand("plain").unwrap(), "plain");
        assert!(none.expand("out/{arch}/x").is_err());
    }

    #[test]
    fn sysroots_per_platform() {
        let both = [Arch::Amd64, Arch::Arm64];
        let t = targets(&both, &["linux/arm64=/usr/aarch64-linux-gnu".into()]).unwrap();
        assert_eq!(
            t.iter()
                .map(|t| t.sysroot.display().to_string())
                .collect::<Vec<_>>(),
            ["/", "/usr/aarch64-linux-gnu"]
        );
        let t = targets(&both, &["/srv/{triplet}".into()]).unwrap();
        assert_eq!(t[1].sysroot, PathBuf::from("/srv/aarch64-linux-gnu"));
        let one = targets(
            &[Arch::S390x],
            &["linux/arm64=/a".into(), "linux/s390x=/s".into()],
        );
        assert_eq!(one.unwrap()[0].sysroot, PathBuf::from("/s"));
        assert!(targets(&[Arch::Amd64, Arch::Amd64], &[]).is_err());
        assert!(targets(&[], &["linux/arm64=/x".into()]).is_err());
        assert_eq!(
            targets(&[], &["/".into()]).unwrap(),
            [Target {
                platform: None,
                sysroot: PathBuf::from("/")
            }]
        );
    }
}
