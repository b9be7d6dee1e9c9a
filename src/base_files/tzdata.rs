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

/// All of a root's zone data (`--tzdata all`), walked but not yet added:
/// a build walks it on a thread of its own while it walks the app.
pub struct Walked {
    entries: Vec<(ImagePath, Entry)>,
    warnings: Vec<String>,
}

/// Walks all of the root's zone data.
pub fn walk_all(root: &mut Root) -> Result<Walked, BaseFilesError> {
    let Some(dir) = root.lookup_dir(Path::new(ZONEINFO))? else {
        return Err(BaseFilesError::NoTzdata {
            root: root.dir().to_path_buf(),
        });
    };
    let host_dir = root.host(&dir.real);
    let image = ImagePath::new(ZONEINFO)?;
    // `localtime` points at the host's /etc/localtime: meaningless in an
    // image, where TZ selects the zone.
    let skip = |rel: &Path| rel == Path::new("localtime");
    let mut warnings = Vec::new();
    let entries = host::host_dir_entries(&host_dir, &image, &skip, &mut warnings)?;
    Ok(Walked { entries, warnings })
}

/// Adds the selected zone data to `tree`; for all of it, what `walked`
/// holds if given (a walk of the same root), else a walk now.
pub fn add_tzdata(
    tree: &mut Tree,
    root: &mut Root,
    choice: &Tzdata,
    walked: Option<Result<Walked, BaseFilesError>>,
    warnings: &mut Vec<String>,
) -> Result<(), BaseFilesError> {
    let zoneinfo = Path::new(ZONEINFO);
    let zones = match choice {
        Tzdata::None => return Ok(()),
        Tzdata::Zones(z) => z,
        Tzdata::All => {
            let walked = walked.unwrap_or_else(|| walk_all(root))?;
            warnings.extend(walked.warnings);
            for (image, entry) in walked.entries {
                tree.insert(image, entry)?;
            }
            return Ok(());
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
