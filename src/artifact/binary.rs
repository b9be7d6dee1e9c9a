//! `--from-binary SRC[:DST]`: an ELF program and its closure. The program
//! and anything its `$ORIGIN` reaches go to the app layer, keeping their
//! places relative to DST; system libraries keep the paths (and symlink
//! chains) the resolver found, in the libraries layer.

use std::path::PathBuf;

use crate::elf::Ident;
use crate::resolve::{Input, Reason};
use crate::rootfs::{Entry, ImagePath, LayerKind, host};

use super::{ArtifactError, Context};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BinarySpec {
    pub src: PathBuf,
    pub dst: ImagePath,
}

/// What the image config needs to know about an added binary.
#[derive(Clone, Debug)]
pub struct AddedBinary {
    pub dst: ImagePath,
    pub ident: Ident,
}

pub fn add_binary(cx: &mut Context, spec: &BinarySpec) -> Result<AddedBinary, ArtifactError> {
    let meta = std::fs::metadata(&spec.src).map_err(|source| ArtifactError::Io {
        path: spec.src.clone(),
        source,
    })?;
    if meta.is_dir() {
        return Err(ArtifactError::Directory {
            path: spec.src.clone(),
        });
    }
    let input = Input::outside(&spec.src, spec.dst.as_path());
    let closure = cx.resolver.resolve(&input)?;
    let missing: Vec<_> = closure.required_missing().cloned().collect();
    if !missing.is_empty() {
        return Err(ArtifactError::NotFound { missing });
    }
    // Optional companions that are missing (an NSS module that glibc
    // 2.34+ builds in) need no mention.
    let origin = format!("--from-binary {}", spec.src.display());
    for (i, o) in closure.objects.iter().enumerate() {
        let why = match (&o.reason, o.needed_by) {
            (Reason::Input, _) => origin.clone(),
            (reason, Some(by)) => format!(
                "{} ({reason}) of {} [{origin}]",
                o.name.to_string_lossy(),
                closure.objects[by].path.display()
            ),
            (reason, None) => format!("{reason} [{origin}]"),
        };
        if i == 0 {
            let entry = host::host_entry(&o.host, &spec.dst, &mut cx.warnings)?;
            host::insert_dedup(cx.layers.tree(LayerKind::App), spec.dst.clone(), entry)?;
            cx.record(&spec.dst, why);
            continue;
        }
        let kind = if o.in_root {
            LayerKind::Libs
        } else {
            LayerKind::App
        };
        for link in &o.links {
            let at = ImagePath::new(&link.at)?;
            cx.layers
                .tree(kind)
                .insert(at.clone(), Entry::symlink(&link.target))
                .map_err(crate::rootfs::RootfsError::from)?;
            cx.record(&at, format!("symlink to {}", why));
        }
        let real = ImagePath::new(&o.real)?;
        let entry = host::host_entry(&o.host, &real, &mut cx.warnings)?;
        host::insert_dedup(cx.layers.tree(kind), real.clone(), entry)?;
        cx.record(&real, why);
    }
    Ok(AddedBinary {
        dst: spec.dst.clone(),
        ident: closure.input().info.ident,
    })
}
