//! ELF programs: `--from-binary SRC[:DST]` (a host file copied to DST;
//! anything its `$ORIGIN` reaches keeps its place relative to DST) and
//! programs found in the root (a profile's interpreter or server), kept at
//! their paths with their symlink chains.

use std::path::{Path, PathBuf};

use crate::resolve::{Input, Located};
use crate::rootfs::host::Grant;
use crate::rootfs::{ImagePath, LayerKind};

use super::{ArtifactError, Assembly, MissingPolicy, add_closure};

/// `--from-binary SRC:DST`: the program goes to the app layer at DST.
pub fn add_binary(asm: &mut Assembly, src: &Path, dst: &ImagePath) -> Result<(), ArtifactError> {
    let origin = format!("--from-binary {}", super::source_name(src));
    add_program(asm, src, dst, LayerKind::App, Grant::Named, origin.as_str())
}

/// A host program placed at `dst` in `layer`, with its closure; `grant`
/// says whether the user named it.
pub fn add_program(
    asm: &mut Assembly,
    src: &Path,
    dst: &ImagePath,
    layer: LayerKind,
    grant: Grant,
    origin: &str,
) -> Result<(), ArtifactError> {
    let meta = std::fs::metadata(src).map_err(|e| ArtifactError::io(src, e))?;
    if meta.is_dir() {
        return Err(ArtifactError::Directory {
            path: src.to_path_buf(),
        });
    }
    let input = Input::outside(src, dst.as_path());
    let closure = asm.resolver.resolve(&input)?;
    asm.check_arch(closure.input().info.ident, src)?;
    let host = closure.input().host.clone();
    super::gconv::note_iconv_user(asm, &host, dst.as_path());
    match grant {
        Grant::Named => asm.add_named(layer, &host, dst.clone(), origin)?,
        Grant::Host => asm.add_host(layer, &host, dst.clone(), origin)?,
    }
    add_closure(asm, &closure, layer, origin, MissingPolicy::Error)?;
    asm.offer_main_input(input);
    Ok(())
}

/// A program of the root at the image path `image`, with the symlinks
/// that lead to it; an error naming the root when there is none.
pub fn lookup_program(asm: &mut Assembly, image: &Path) -> Result<Located, ArtifactError> {
    let root = asm.resolver.root();
    root.lookup(image)
        .map_err(crate::resolve::ResolveError::from)?
        .ok_or_else(|| {
            ArtifactError::invalid(
                image.display(),
                format!("not found in the root {}", root.dir().display()),
            )
        })
}

/// A program of the root, as [`lookup_program`] or [`find_in_root`] found
/// it: added where it is, with the symlinks that lead to it, in `layer`.
pub fn add_root_program(
    asm: &mut Assembly,
    found: &Located,
    layer: LayerKind,
    origin: &str,
) -> Result<(), ArtifactError> {
    let image = &found.path;
    let link_why = format!("symlink to {} [{origin}]", image.display());
    asm.add_links(layer, &found.links, &link_why, None)?;
    let real = ImagePath::new(&found.real)?;
    let host = asm.resolver.root().host(&found.real);
    let input = Input::in_root(&found.real, asm.resolver.root());
    let closure = asm.resolver.resolve(&input)?;
    asm.check_arch(closure.input().info.ident, image)?;
    super::gconv::note_iconv_user(asm, &host, image);
    asm.add_host(layer, &host, real.clone(), origin.to_string())?;
    add_closure(asm, &closure, layer, origin, MissingPolicy::Error)?;
    asm.offer_main_input(input);
    Ok(())
}

/// Finds a program in the root: an absolute path, or a name on the
/// image's PATH directories.
pub fn find_in_root(asm: &mut Assembly, candidates: &[String]) -> Option<Located> {
    for c in candidates {
        let paths: Vec<PathBuf> = if c.starts_with('/') {
            vec![PathBuf::from(c)]
        } else {
            crate::rootfs::base::PATH_ENV
                .split(':')
                .map(|d| Path::new(d).join(c))
                .collect()
        };
        for p in paths {
            if let Ok(Some(found)) = asm.resolver.root().lookup(&p) {
                let host = asm.resolver.root().host(&found.real);
                if host.is_file() {
                    return Some(found);
                }
            }
        }
    }
    None
}

/// `--dlopen` names: resolved as if the main program opened them.
pub fn add_dlopen(asm: &mut Assembly, names: &[String]) -> Result<(), ArtifactError> {
    if names.is_empty() {
        return Ok(());
    }
    let Some(mut input) = asm.main_input().cloned() else {
        return Err(ArtifactError::invalid(
            "--dlopen",
            "needs a program to open the libraries: add one with --from-binary or a profile",
        ));
    };
    input.dlopen = names.iter().map(Into::into).collect();
    let closure = asm.resolver.resolve(&input)?;
    let origin = format!("--dlopen {}", names.join(","));
    add_closure(asm, &closure, LayerKind::App, &origin, MissingPolicy::Error)
}
