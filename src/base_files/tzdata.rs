//! Time zone data from the root's /usr/share/zoneinfo: all of it, or the
//! zones asked for (with the files their symlinks lead to).

use std::path::Path;

use crate::resolve::Root;

use super::BaseFilesError;
use crate::rootfs::{Entry, ImagePath, Tree, host};

pub const ZONEINFO: &str = "/usr/share/zoneinfo";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tzdata {
    All,
    None,
    Zones(Vec<String>),
}

/// Adds the selected zone data to `tree`.
pub fn add_tzdata(
    tree: &mut Tree,
    root: &mut Root,
    choice: &Tzdata,
    warnings: &mut Vec<String>,
) -> Result<(), BaseFilesError> {
    let zoneinfo = Path::new(ZONEINFO);
    let zones = match choice {
        Tzdata::None => return Ok(()),
        Tzdata::Zones(z) => z,
        Tzdata::All => {
            let Some(dir) = root.lookup_dir(zoneinfo)? else {
                return Err(BaseFilesError::NoTzdata {
                    root: root.dir().to_path_buf(),
                });
            };
            let host_dir = root.host(&dir.real);
            let image = ImagePath::new(ZONEINFO)?;
            // `localtime` points at the host's /etc/localtime: meaningless
            // in an image, where TZ selects the zone.
            let skip = |rel: &Path| rel == Path::new("localtime");
            return Ok(host::add_host_dir(
                tree, &host_dir, &image, &skip, warnings,
            )?);
        }
    };
    for zone in zones {
        let rel = Path::new(zone);
        if zone.is_empty() || rel.is_absolute() || zone.split('/').any(|c| c == ".." || c == ".") {
            return Err(BaseFilesError::BadZone { zone: zone.clone() });
        }
        let wanted = zoneinfo.join(rel);
        let found = root
            .lookup(&wanted)?
            .ok_or_else(|| BaseFilesError::UnknownZone {
                zone: zone.clone(),
                root: root.dir().to_path_buf(),
            })?;
        for link in &found.links {
            tree.insert(ImagePath::new(&link.at)?, Entry::symlink(&link.target))?;
        }
        let real = ImagePath::new(&found.real)?;
        let entry = host::host_entry(&root.host(&found.real), &real, host::Grant::Host, warnings)?;
        tree.insert(real, entry)?;
    }
    Ok(())
}
