//! The OCI platform (image-spec image-index.md): `os`, `architecture`
//! and `variant` with Go's names, as an image's config states it and an
//! index lists it, for the image written and for images read. Owned text,
//! since an index read may name platforms mkimage has no table entry for
//! (windows/amd64, s390x). Which ELF machine gets which is the resolver's
//! one table (`elf::arch`, `Arch::oci`), mapped in by `source::platform`,
//! so that the image writer never sees ELF.

use std::fmt;

/// An OCI platform: `os`, `architecture` (GOARCH) and `variant`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// `OS/ARCH[/VARIANT]`, or `ARCH[/VARIANT]` for linux. The error says why `s` is not one, for the caller to name `s`.
    pub fn parse(s: &str) -> Result<Platform, String> {
        let bad = |reason: &str| {
            format!("not a platform: {reason} (write OS/ARCH[/VARIANT], e.g. linux/arm64)")
        };
        let parts: Vec<&str> = s.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad("an empty part"));
        }
        let (os, architecture, variant) = match parts.as_slice() {
            [arch] => ("linux", *arch, None),
            [os, arch]
                if *os == "linux" || *os == "windows" || *os == "darwin" || *os == "freebsd" =>
            {
                (*os, *arch, None)
            }
            [arch, variant] => ("linux", *arch, Some(*variant)),
            [os, arch, variant] => (*os, *arch, Some(*variant)),
            _ => return Err(bad("too many parts")),
        };
        Ok(Platform {
            os: os.to_owned(),
            architecture: architecture.to_owned(),
            variant: variant.map(str::to_owned),
        })
    }

    /// What an index entry's `platform` says.
    pub fn of_index(p: &oci_spec::image::Platform) -> Platform {
        Platform {
            os: p.os().to_string(),
            architecture: p.architecture().to_string(),
            variant: p.variant().clone().filter(|v| !v.is_empty()),
        }
    }

    /// What a config says.
    pub fn of_config(c: &oci_spec::image::ImageConfiguration) -> Platform {
        Platform {
            os: c.os().to_string(),
            architecture: c.architecture().to_string(),
            variant: c.variant().clone().filter(|v| !v.is_empty()),
        }
    }

    /// The variant as runtimes read an absent one (containerd's
    /// platforms.Normalize): arm64 is v8, arm is v7; others have none
    /// that matters.
    fn normal_variant(&self) -> Option<&str> {
        match (self.architecture.as_str(), self.variant.as_deref()) {
            ("arm64", None | Some("v8")) => Some("v8"),
            ("arm", None) => Some("v7"),
            ("amd64", Some("v1")) => None,
            (_, v) => v,
        }
    }

    /// Whether an image for `self` is what `want` asks for: same OS and
    /// architecture, and the same variant once absent variants are read
    /// as their defaults (so `linux/arm64` is `linux/arm64/v8`). A `want`
    /// without a variant, on an architecture where variants differ in
    /// kind (amd64's v2, v3), takes any.
    pub fn satisfies(&self, want: &Platform) -> bool {
        if self.os != want.os || self.architecture != want.architecture {
            return false;
        }
        match (want.variant.as_deref(), want.architecture.as_str()) {
            (None, a) if a != "arm" && a != "arm64" => true,
            _ => self.normal_variant() == want.normal_variant(),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Platform {
        Platform::parse(s).unwrap()
    }

    #[test]
    fn parses_and_prints() {
        for (input, want) in [
            ("linux/amd64", "linux/amd64"),
            ("amd64", "linux/amd64"),
            ("linux/arm/v7", "linux/arm/v7"),
            ("arm64/v8", "linux/arm64/v8"),
            ("windows/amd64", "windows/amd64"),
        ] {
            assert_eq!(p(input).to_string(), want, "{input}");
        }
        for bad in ["", "linux/", "a/b/c/d", "/amd64"] {
            assert!(Platform::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn variants_default_as_runtimes_read_them() {
        assert!(p("linux/arm64").satisfies(&p("linux/arm64/v8")));
        assert!(p("linux/arm64/v8").satisfies(&p("linux/arm64")));
        assert!(p("linux/arm").satisfies(&p("linux/arm/v7")));
        assert!(!p("linux/arm/v6").satisfies(&p("linux/arm")));
        assert!(p("linux/amd64/v3").satisfies(&p("linux/amd64")));
        assert!(!p("linux/amd64").satisfies(&p("linux/arm64")));
        assert!(!p("windows/amd64").satisfies(&p("linux/amd64")));
    }
}
