//! Package records inside the image, in the layout distroless uses and
//! scanners (syft, grype, Trivy) read: `/var/lib/dpkg/status.d/<package>`
//! holds the package's stanza from the root's `status`, and
//! `<package>.md5sums` lists exactly the files the image holds from it,
//! with the md5 of the bytes written (deb-md5sums(5)). Beside them the
//! root's `/usr/lib/os-release` (with `/etc/os-release` linking to it,
//! os-release(5)) and `/etc/debian_version`.

use std::collections::BTreeMap;

use std::path::Path;

use super::SbomError;
use super::inventory::{DEBIAN_VERSION, Deb, Inventory, path_bytes};
use crate::digest::hex;
use crate::resolve::Root;
use crate::rootfs::host::{Grant, host_entry};
use crate::rootfs::{Entry, ImagePath, Kind, LayerKind, LayerSet, RootfsError};

pub const STATUS_D: &str = "/var/lib/dpkg/status.d";
pub const USR_OS_RELEASE: &str = "/usr/lib/os-release";
pub const ETC_OS_RELEASE: &str = "/etc/os-release";

/// The fields a record keeps: what scanners match on (Package, Version,
/// Architecture, Source — advisories name source packages), what
/// dependency graphs use, and the one-line description. The long
/// description and the conffiles (which name files the image need not
/// hold) are left out.
const FIELDS: &[&str] = &[
    "Package",
    "Status",
    "Priority",
    "Section",
    "Installed-Size",
    "Maintainer",
    "Architecture",
    "Multi-Arch",
    "Source",
    "Version",
    "Provides",
    "Depends",
    "Pre-Depends",
    "Description",
    "Homepage",
];

/// What [`add_records`] put in the image, and why, for the provenance.
pub type Added = Vec<(ImagePath, String)>;

/// Copies the root's os-release to `/usr/lib/os-release` (with
/// `/etc/os-release` linking to it) and its `/etc/debian_version`, as host
/// files of the root: they are base-files' files, and the survey that
/// follows records them as such. A file the image already has (from a
/// user's tree) is left as it is; a root without them adds nothing.
pub fn add_os_release(
    layers: &mut LayerSet,
    root: &mut Root,
    warnings: &mut Vec<String>,
) -> Result<Added, SbomError> {
    let mut added = Added::new();
    let mut copy = |layers: &mut LayerSet,
                    from: &[&str],
                    to: &str,
                    why: &str,
                    added: &mut Added|
     -> Result<bool, SbomError> {
        let to = ImagePath::new(to).map_err(RootfsError::from)?;
        if layers.contains(&to) {
            return Ok(false);
        }
        for f in from {
            let Some(found) = root.lookup(Path::new(f))? else {
                continue;
            };
            let host = root.host(&found.real);
            let entry = host_entry(&host, &to, Grant::Host, warnings)?;
            if !matches!(entry.kind, Kind::File { .. }) {
                continue;
            }
            layers.insert(LayerKind::Base, to.clone(), entry)?;
            added.push((to, why.to_owned()));
            return Ok(true);
        }
        Ok(false)
    };
    if copy(
        layers,
        &[ETC_OS_RELEASE, USR_OS_RELEASE],
        USR_OS_RELEASE,
        "the root's os-release, so scanners know the distribution",
        &mut added,
    )? {
        let link = ImagePath::new(ETC_OS_RELEASE).map_err(RootfsError::from)?;
        if !layers.contains(&link) {
            layers.insert(
                LayerKind::Base,
                link.clone(),
                Entry::symlink("../usr/lib/os-release"),
            )?;
            added.push((
                link,
                "os-release(5): /etc/os-release links to /usr/lib/os-release".into(),
            ));
        }
    }
    copy(
        layers,
        &[DEBIAN_VERSION],
        DEBIAN_VERSION,
        "the root's debian_version (Trivy detects Debian by it)",
        &mut added,
    )?;
    Ok(added)
}

/// Adds the records of `inv` to the layers.
pub fn add_records(layers: &mut LayerSet, inv: &Inventory) -> Result<Added, RootfsError> {
    let mut added = Added::new();
    let mut put = |layers: &mut LayerSet,
                   kind: LayerKind,
                   path: &str,
                   entry: Entry,
                   why: String|
     -> Result<(), RootfsError> {
        let path = ImagePath::new(path)?;
        if layers.contains(&path) {
            return Ok(());
        }
        layers.insert(kind, path.clone(), entry)?;
        added.push((path, why));
        Ok(())
    };
    let names = file_names(&inv.debs);
    for (key, deb) in &inv.debs {
        let name = names.get(key).map(String::as_str).unwrap_or(key);
        let why = format!(
            "package record of {key} {} for scanners (dpkg status.d)",
            deb.package.version
        );
        put(
            layers,
            deb.layer,
            &format!("{STATUS_D}/{name}"),
            Entry::bytes(stanza(deb).into_bytes(), 0o644),
            why.clone(),
        )?;
        put(
            layers,
            deb.layer,
            &format!("{STATUS_D}/{name}.md5sums"),
            Entry::bytes(md5sums(deb), 0o644),
            why,
        )?;
    }
    Ok(added)
}

/// Record file names: the package name, or `name:arch` (as dpkg names
/// its info files) for a package the image holds for two architectures.
/// syft looks for `<name>:<arch>.md5sums`, then `<name>.md5sums`.
fn file_names(debs: &BTreeMap<String, Deb>) -> BTreeMap<String, String> {
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for d in debs.values() {
        *count.entry(&d.package.name).or_default() += 1;
    }
    debs.iter()
        .map(|(key, d)| {
            let name = if count.get(d.package.name.as_str()).copied().unwrap_or(0) > 1 {
                format!("{}:{}", d.package.name, d.package.architecture)
            } else {
                d.package.name.clone()
            };
            (key.clone(), name)
        })
        .collect()
}

/// The package's stanza, `FIELDS` only, in the root's order; the
/// description cut to its first line.
pub fn stanza(deb: &Deb) -> String {
    let mut out = String::new();
    for (name, value) in deb.package.stanza.fields() {
        if !FIELDS.iter().any(|f| f.eq_ignore_ascii_case(name)) {
            continue;
        }
        let value = if name.eq_ignore_ascii_case("Description") {
            value.lines().next().unwrap_or_default()
        } else {
            value
        };
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push('\n');
    }
    out
}

/// `<md5>  <path without the leading />` per file, in path order, the
/// path's bytes as they are.
pub fn md5sums(deb: &Deb) -> Vec<u8> {
    let mut out = Vec::new();
    for (path, md5) in &deb.files {
        out.extend_from_slice(hex(md5).as_bytes());
        out.extend_from_slice(b"  ");
        out.extend_from_slice(&path_bytes(path)[1..]);
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sbom::dpkg::parse_status;

    fn deb(status: &str, files: &[(&str, u8)]) -> Deb {
        let package = parse_status(status.as_bytes())
            .unwrap()
            .into_values()
            .next()
            .unwrap();
        Deb {
            package,
            files: files
                .iter()
                .map(|(p, b)| (ImagePath::new(p).unwrap(), [*b; 16]))
                .collect(),
            layer: LayerKind::Libs,
            size: 0,
            license: None,
        }
    }

    #[test]
    fn stanza_keeps_what_scanners_read() {
        let d = deb(
            "Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nMulti-Arch: same\nSource: openssl (3.0.17-1~deb12u2)\nVersion: 3.0.17-1~deb12u2+b1\nBreaks: x\nConffiles:\n /etc/a 00\nDescription: TLS\n long text\n",
            &[("/usr/lib/b", 2), ("/usr/lib/a", 1)],
        );
        assert_eq!(
            stanza(&d),
            "Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nMulti-Arch: same\nSource: openssl (3.0.17-1~deb12u2)\nVersion: 3.0.17-1~deb12u2+b1\nDescription: TLS\n"
        );
        let sums = String::from_utf8(md5sums(&d)).unwrap();
        assert_eq!(
            sums,
            format!(
                "{}  usr/lib/a\n{}  usr/lib/b\n",
                "01".repeat(16),
                "02".repeat(16)
            )
        );
    }

    #[test]
    fn two_architectures_get_qualified_names() {
        let amd = deb(
            "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nMulti-Arch: same\nVersion: 1\n",
            &[],
        );
        let i386 = deb(
            "Package: libc6\nStatus: install ok installed\nArchitecture: i386\nMulti-Arch: same\nVersion: 1\n",
            &[],
        );
        let curl = deb(
            "Package: curl\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n",
            &[],
        );
        let debs: BTreeMap<String, Deb> = [amd, i386, curl]
            .into_iter()
            .map(|d| (d.package.key.clone(), d))
            .collect();
        let names = file_names(&debs);
        assert_eq!(names["libc6:amd64"], "libc6:amd64");
        assert_eq!(names["libc6:i386"], "libc6:i386");
        assert_eq!(names["curl"], "curl");
    }
}
