//! Directory trees: `--from-dir SRC[:DST]`, `--include PATH[:DST]`, and
//! the trees profiles and runtimes add. Symlinks inside the tree stay
//! symlinks. What happens to one that leaves the tree (absolute, or
//! escaping with `..`) depends on whose tree it is ([`Links`]): mkimage
//! never adds a host file the user did not name, so a user's tree keeps
//! such a link as a link, while a runtime mkimage took from the root has
//! its links followed inside the root (a JDK's
//! `conf/security/java.security -> /etc/java-17-openjdk/...`).
//! Every ELF file in the tree is resolved and its closure added.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use crate::elf::is_elf;
use crate::resolve::Input;
use crate::rootfs::host::{self, Grant, VIRTUAL_FS};
use crate::rootfs::{ImagePath, Kind, LayerKind, RootfsError};

use super::{ArtifactError, Assembly, KeptLink, MissingPolicy, NO_SONAMES, add_closure};

/// What a symlink that leads out of its tree brings into the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Links {
    /// A tree the user named (`--from-dir`, `--include DIR`, a venv): the
    /// link stays a link and nothing it points to is added, since a
    /// package can point anywhere (`/etc/shadow`, `~/.ssh`). The build
    /// warns when the image lacks the target, naming `--include`.
    Keep,
    /// `--follow-links`: a user's tree whose links out are followed, with
    /// a warning naming each host path added.
    Follow,
    /// A tree mkimage itself took from the root (a runtime, a profile's
    /// tree, the standard library): links are followed inside the root,
    /// as the program will see them there.
    Runtime,
}

impl Links {
    /// How widely the tree's own files may be shared.
    fn grant(self) -> Grant {
        match self {
            Links::Keep | Links::Follow => Grant::Named,
            Links::Runtime => Grant::Host,
        }
    }
}

/// How deep escaping symlinks may lead into further trees.
const MAX_FOLLOW_DEPTH: usize = 8;

/// Which paths of a tree to leave out. A pattern without `/` matches any
/// path component (`__pycache__`, or `config-*` with a trailing `*` for a
/// prefix); one with `/` matches a path prefix relative to the tree
/// (`lib/src.zip`).
#[derive(Clone, Debug, Default)]
pub struct Exclude {
    patterns: Vec<String>,
    /// Keep only these entries of `bin/` (a runtime's launchers).
    pub only_bin: Option<Vec<String>>,
}

impl Exclude {
    pub fn new(patterns: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Exclude {
            patterns: patterns.into_iter().map(Into::into).collect(),
            only_bin: None,
        }
    }

    pub fn matches(&self, rel: &Path) -> bool {
        if let Some(keep) = &self.only_bin {
            let mut c = rel.components();
            if let (Some(Component::Normal(first)), Some(Component::Normal(name)), None) =
                (c.next(), c.next(), c.next())
                && first == "bin"
                && !keep.iter().any(|k| name == k.as_str())
            {
                return true;
            }
        }
        self.patterns.iter().any(|p| {
            if p.contains('/') {
                rel.starts_with(p)
            } else if let Some(prefix) = p.strip_suffix('*') {
                rel.components().any(|c| {
                    matches!(c, Component::Normal(n)
                        if n.to_str().is_some_and(|n| n.starts_with(prefix)))
                })
            } else {
                rel.components()
                    .any(|c| matches!(c, Component::Normal(n) if n == p.as_str()))
            }
        })
    }
}

/// Where the files of a tree go.
pub type LayerFor<'a> = &'a dyn Fn(&Path) -> LayerKind;

/// Adds the host tree `src` at `dst`; `links` says whose tree it is.
pub fn add_dir(
    asm: &mut Assembly,
    src: &Path,
    dst: &ImagePath,
    layer_for: LayerFor<'_>,
    exclude: &Exclude,
    links: Links,
    origin: &str,
) -> Result<(), ArtifactError> {
    let walk = Walk {
        layer_for,
        exclude,
        links,
        grant: links.grant(),
        origin,
        depth: 0,
    };
    add_dir_inner(asm, src, dst, &walk)
}

/// One tree being added, and how deep in followed links it is.
struct Walk<'a> {
    layer_for: LayerFor<'a>,
    exclude: &'a Exclude,
    links: Links,
    /// How widely its files may be shared: a tree a link led to is not
    /// the tree the user named.
    grant: Grant,
    origin: &'a str,
    depth: usize,
}

fn add_dir_inner(
    asm: &mut Assembly,
    src: &Path,
    dst: &ImagePath,
    w: &Walk<'_>,
) -> Result<(), ArtifactError> {
    let meta = std::fs::metadata(src).map_err(|e| ArtifactError::io(src, e))?;
    if !meta.is_dir() {
        return Err(ArtifactError::NotDirectory {
            path: src.to_path_buf(),
        });
    }
    let real_src = std::fs::canonicalize(src).map_err(|e| ArtifactError::io(src, e))?;
    if let Some(fs) = host::virtual_fs(&real_src) {
        return Err(RootfsError::Virtual {
            path: src.to_path_buf(),
            fs,
        }
        .into());
    }
    let tree_in_root = asm
        .resolver
        .root()
        .image_of(&real_src)
        .is_some_and(|image| image == dst.as_path());
    let (origin, exclude) = (w.origin, w.exclude);
    let mut elves: Vec<(PathBuf, ImagePath, LayerKind)> = Vec::new();
    let mut escaping: Vec<OutLink> = Vec::new();
    let walk = walkdir::WalkDir::new(src)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| {
            let Ok(rel) = e.path().strip_prefix(src) else {
                return true;
            };
            if rel.as_os_str().is_empty() {
                return true;
            }
            // A tree of the whole host (`--from-dir /:/host`) holds the
            // kernel's file systems: never walk into them.
            let real = real_src.join(rel);
            !exclude.matches(rel) && !VIRTUAL_FS.iter().any(|fs| real == Path::new(fs))
        });
    for item in walk {
        let item = item.map_err(|e| {
            let path = e.path().unwrap_or(src).to_path_buf();
            ArtifactError::io(&path, e.into())
        })?;
        let rel = item.path().strip_prefix(src).unwrap_or(item.path());
        let image = dst.join(rel)?;
        let layer = (w.layer_for)(rel);
        let meta = item
            .metadata()
            .map_err(|e| ArtifactError::io(item.path(), e.into()))?;
        let mut warnings = Vec::new();
        let entry = host::entry_from_meta(item.path(), &meta, &image, w.grant, &mut warnings);
        asm.warn_all(warnings);
        let entry = match entry {
            // A FIFO or socket in a tree is a leftover of a running
            // program, not content: it is left out, as tar and rsync do,
            // rather than failing the whole tree.
            Err(RootfsError::Special { path }) => {
                asm.warn(format!(
                    "{} is a device, socket or FIFO: left out of the image [{origin}]",
                    path.display()
                ));
                continue;
            }
            other => other?,
        };
        match &entry.kind {
            Kind::Symlink { target } if leaves_tree(rel, target) => {
                escaping.push(OutLink {
                    host: item.path().to_path_buf(),
                    image: image.clone(),
                    target: target.clone(),
                    layer,
                });
            }
            Kind::File { .. } if is_elf(item.path()) => {
                elves.push((item.path().to_path_buf(), image.clone(), layer));
            }
            _ => {}
        }
        asm.add(layer, image, entry, origin.to_string())?;
    }

    for link in escaping {
        match w.links {
            Links::Keep => asm.keep_link(KeptLink {
                at: link.image,
                host: link.host,
                target: link.target,
                layer: link.layer,
                origin: origin.to_string(),
            }),
            Links::Follow | Links::Runtime => follow_link(asm, &link, w, tree_in_root)?,
        }
    }
    let sonames: BTreeSet<OsString> = elves
        .iter()
        .filter_map(|(host_path, _, _)| asm.resolver.elf_info(host_path).ok())
        .filter_map(|info| info.soname.clone())
        .collect();
    for (host_path, image, layer) in elves {
        let input = Input::outside(&host_path, image.as_path());
        let closure = asm.resolver.resolve(&input)?;
        add_closure(asm, &closure, layer, origin, MissingPolicy::Warn(&sonames))?;
    }
    Ok(())
}

/// A symlink of a tree that leads out of it.
struct OutLink {
    host: PathBuf,
    image: ImagePath,
    target: PathBuf,
    layer: LayerKind,
}

/// Adds what a symlink that leaves its tree points to, at the image path
/// it points to: through the root for an absolute target, next to the
/// link on the host for a relative one. Nothing in the kernel's file
/// systems is ever added.
fn follow_link(
    asm: &mut Assembly,
    link: &OutLink,
    w: &Walk<'_>,
    tree_in_root: bool,
) -> Result<(), ArtifactError> {
    let (origin, depth) = (w.origin, w.depth);
    let (link_host, link_image, target, layer) = (
        link.host.as_path(),
        &link.image,
        link.target.as_path(),
        link.layer,
    );
    let why = format!("target of {link_image} [{origin}]");
    // A tree that sits in the root where it sits in the image (a runtime,
    // a venv) has its links resolved inside the root, so a sysroot is
    // never left; a user's tree mapped elsewhere resolves relative links
    // next to it on the host, as the JDK example needs.
    let in_root_target = if target.is_absolute() {
        Some(target.to_path_buf())
    } else if tree_in_root {
        let parent = link_image.parent().unwrap_or_else(ImagePath::root);
        Some(crate::image_path::normalise(&parent.as_path().join(target)))
    } else {
        None
    };
    let (image_target, host_target, crossed) = if let Some(target) = in_root_target {
        let target = target.as_path();
        let Some(found) = asm
            .resolver
            .root()
            .lookup(target)
            .map_err(crate::resolve::ResolveError::from)?
        else {
            asm.warn(format!("{link_image} -> {} is dangling", target.display()));
            return Ok(());
        };
        let host = asm.resolver.root().host(&found.real);
        (ImagePath::new(&found.real)?, host, found.links)
    } else {
        let parent = link_image.parent().unwrap_or_else(ImagePath::root);
        let image = ImagePath::new(crate::image_path::normalise(&parent.as_path().join(target)))?;
        let host = match link_host.parent().map(|p| p.join(target)) {
            Some(p) => match std::fs::canonicalize(&p) {
                Ok(c) => c,
                Err(_) => {
                    asm.warn(format!("{link_image} -> {} is dangling", target.display()));
                    return Ok(());
                }
            },
            None => return Ok(()),
        };
        (image, host, Vec::new())
    };
    if let Some(fs) = host::virtual_fs(&host_target).or_else(|| {
        VIRTUAL_FS
            .iter()
            .copied()
            .find(|fs| image_target.as_path().starts_with(fs))
    }) {
        asm.warn(format!(
            "{link_image} -> {} leads into {fs}: kept as a link, nothing added from there [{origin}]",
            target.display()
        ));
        return Ok(());
    }
    asm.add_links(layer, &crossed, &why, None)?;
    if asm.layers.contains(&image_target) {
        return Ok(());
    }
    if w.links == Links::Follow {
        // Whatever a link in a user's tree points to ends up in the image:
        // say so, since a package can point anywhere (~/.ssh, say).
        asm.warn(format!(
            "{link_image} -> {} leads out of the tree: added {} at {image_target} [{origin}]",
            target.display(),
            host_target.display()
        ));
    }
    let meta = std::fs::metadata(&host_target).map_err(|e| ArtifactError::io(&host_target, e))?;
    if meta.is_dir() {
        if depth >= MAX_FOLLOW_DEPTH {
            return Err(ArtifactError::invalid(
                link_image,
                "symlinks out of the tree lead too deep (a loop?)",
            ));
        }
        let same_layer = move |_: &Path| layer;
        let next = Walk {
            layer_for: &same_layer,
            exclude: &Exclude::default(),
            links: w.links,
            grant: Grant::Host,
            origin,
            depth: depth + 1,
        };
        return add_dir_inner(asm, &host_target, &image_target, &next);
    }
    // Outside the tree: only what the host grants others.
    asm.add_host(layer, &host_target, image_target.clone(), why)?;
    if is_elf(&host_target) {
        let input = Input::outside(&host_target, image_target.as_path());
        let closure = asm.resolver.resolve(&input)?;
        add_closure(
            asm,
            &closure,
            layer,
            origin,
            MissingPolicy::Warn(&NO_SONAMES),
        )?;
    }
    Ok(())
}

/// Whether a link at `rel` (relative to the tree) pointing at `target`
/// leads out of the tree.
fn leaves_tree(rel: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return true;
    }
    let mut depth: i64 = rel.components().count() as i64 - 1;
    for c in target.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclude_and_layers_table() {
        let ex = Exclude::new(["__pycache__", "lib/src.zip", "test", "config-*"]);
        let cases = [
            ("config-3.11-x86_64-linux-gnu/libpython3.11.a", true),
            ("configparser.py", false),
            ("a/__pycache__/x.pyc", true),
            ("lib/src.zip", true),
            ("lib/src.zip.txt", false),
            ("test", true),
            ("unittest/test/x.py", true),
            ("testing/x.py", false),
        ];
        for (p, want) in cases {
            assert_eq!(ex.matches(Path::new(p)), want, "{p}");
        }
        let bin = Exclude {
            only_bin: Some(vec!["java".into()]),
            ..Default::default()
        };
        assert!(bin.matches(Path::new("bin/javac")));
        assert!(!bin.matches(Path::new("bin/java")));
        assert!(!bin.matches(Path::new("lib/javac")));
        assert!(leaves_tree(Path::new("a/b"), Path::new("../../x")));
        assert!(!leaves_tree(Path::new("a/b"), Path::new("../x")));
        assert!(leaves_tree(Path::new("a"), Path::new("/etc/x")));
    }
}
