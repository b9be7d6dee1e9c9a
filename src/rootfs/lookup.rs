//! Path lookup in the image being assembled: what a path will name once every
//! layer is unpacked, symlinks followed as the kernel follows them inside
//! the container (path_resolution(7)), for checks such as "is there a
//! /bin/sh".

use std::path::{Component, Path, PathBuf};

use super::{Entry, ImagePath, Kind, LayerSet};

/// Linux's limit on symlinks followed in one lookup (MAXSYMLINKS).
const MAX_SYMLINKS: usize = 40;

impl LayerSet {
    /// The entry at `path` in the top-most layer that has it.
    fn top_entry(&self, path: &ImagePath) -> Option<&Entry> {
        self.trees.values().rev().find_map(|t| t.get(path))
    }

    /// The image path `path` leads to, with its entry, after every
    /// symlink; `None` if it leads nowhere (or round in circles).
    pub fn resolve(&self, path: &Path) -> Option<(ImagePath, &Entry)> {
        let mut pending: Vec<PathBuf> = components_rev(path);
        let mut done = PathBuf::from("/");
        let mut hops = 0;
        while let Some(c) = pending.pop() {
            match c.as_os_str().to_str() {
                Some("..") => {
                    done.pop();
                    continue;
                }
                Some(".") => continue,
                _ => {}
            }
            done.push(&c);
            let here = ImagePath::new(&done).ok()?;
            let entry = self.top_entry(&here)?;
            if let Kind::Symlink { target } = &entry.kind {
                hops += 1;
                if hops > MAX_SYMLINKS {
                    return None;
                }
                done.pop();
                if target.is_absolute() {
                    done = PathBuf::from("/");
                }
                pending.extend(components_rev(target));
            }
        }
        let at = ImagePath::new(&done).ok()?;
        if at.is_root() {
            return None;
        }
        let entry = self.top_entry(&at)?;
        Some((at, entry))
    }

    /// Whether `path` leads to something in the image (see
    /// [`LayerSet::resolve`]).
    pub fn resolves(&self, path: &ImagePath) -> bool {
        self.resolve(path.as_path()).is_some()
    }

    /// Whether `path` names a regular file (through symlinks).
    pub fn has_file(&self, path: &Path) -> bool {
        self.resolve(path)
            .is_some_and(|(_, e)| matches!(e.kind, Kind::File { .. } | Kind::Hardlink { .. }))
    }

    /// Whether `path` names a directory (through symlinks).
    pub fn has_dir(&self, path: &Path) -> bool {
        self.resolve(path).is_some_and(|(_, e)| e.kind == Kind::Dir)
    }
}

/// The normal, `.` and `..` components of `p`, last first (a stack).
fn components_rev(p: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = p
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(PathBuf::from(n)),
            Component::ParentDir => Some(PathBuf::from("..")),
            _ => None,
        })
        .collect();
    v.reverse();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rootfs::LayerKind;

    fn p(s: &str) -> ImagePath {
        ImagePath::new(s).unwrap()
    }

    #[test]
    fn follows_links_across_layers() {
        let mut l = LayerSet::default();
        l.insert(LayerKind::Libs, p("/bin"), Entry::symlink("usr/bin"))
            .unwrap();
        l.insert(
            LayerKind::App,
            p("/usr/bin/dash"),
            Entry::bytes(&b"x"[..], 0o755),
        )
        .unwrap();
        l.insert(LayerKind::App, p("/usr/bin/sh"), Entry::symlink("dash"))
            .unwrap();
        l.insert(LayerKind::App, p("/loop"), Entry::symlink("/loop"))
            .unwrap();
        l.insert(LayerKind::App, p("/up"), Entry::symlink("../../usr/bin/sh"))
            .unwrap();
        assert_eq!(
            l.resolve(Path::new("/bin/sh")).unwrap().0,
            p("/usr/bin/dash")
        );
        assert!(l.has_file(Path::new("/bin/sh")));
        assert!(l.has_file(Path::new("/up")));
        assert!(l.has_dir(Path::new("/bin")));
        assert!(!l.has_file(Path::new("/bin")));
        assert!(!l.has_file(Path::new("/bin/bash")));
        assert!(l.resolve(Path::new("/loop")).is_none());
        assert!(l.resolve(Path::new("/")).is_none());
    }
}
