//! Applying a runtime profile's files: its programs (found in the root),
//! trees and files. Its env, entrypoint and other config settings are
//! merged into the image config by the build. A user's input at the path
//! of one of its `[[file]]`s (a config file) replaces that file.

use std::path::Path;
use std::sync::Arc;

use crate::profile::{Profile, Runtime};
use crate::rootfs::{Entry, ImagePath, LayerKind, host};

use super::binary::{add_program, add_root_program, find_in_root};
use super::dir::{Exclude, Links, add_dir};
use super::python::add_python;
use super::{ArtifactError, Assembly};
use crate::rootfs::host::Grant;

/// Adds everything `profile` (called `name`) asks for except the Java
/// runtime, which the build adds once for jars and profiles alike.
pub fn apply(
    asm: &mut Assembly,
    profile: &Profile,
    name: &str,
    full_stdlib: bool,
) -> Result<(), ArtifactError> {
    let origin = format!("--profile {name}");
    if profile.runtime == Some(Runtime::Python) {
        let python = find_in_root(asm, &["python3".to_string()])
            .ok_or_else(|| ArtifactError::invalid(&origin, "no python3 on the root's PATH"))?;
        add_python(asm, &python, full_stdlib, &origin)?;
    }
    for rule in &profile.binary {
        let found = find_in_root(asm, &rule.find).ok_or_else(|| {
            ArtifactError::invalid(
                &origin,
                format!(
                    "none of {} found in the root (searched {})",
                    rule.find.join(", "),
                    crate::rootfs::base::PATH_ENV
                ),
            )
        })?;
        match &rule.dst {
            Some(dst) if Path::new(dst) != found.path => {
                let host = asm.resolver.root().host(&found.real);
                let dst = ImagePath::new(dst)?;
                add_program(asm, &host, &dst, LayerKind::Runtime, Grant::Host, &origin)?;
            }
            _ => {
                add_root_program(asm, &found, LayerKind::Runtime, &origin)?;
            }
        }
    }
    for rule in &profile.tree {
        let src = Path::new(&rule.src);
        let found = asm
            .resolver
            .root()
            .lookup_dir(src)
            .map_err(crate::resolve::ResolveError::from)?;
        let Some(found) = found else {
            if rule.optional {
                continue;
            }
            return Err(ArtifactError::invalid(
                &origin,
                format!("{} is not a directory in the root", rule.src),
            ));
        };
        let host = asm.resolver.root().host(&found.real);
        let dst = ImagePath::new(rule.dst.as_deref().unwrap_or(&rule.src))?;
        let runtime = |_: &Path| LayerKind::Runtime;
        add_dir(
            asm,
            &host,
            &dst,
            &runtime,
            &Exclude::new(rule.exclude.clone()),
            Links::Runtime,
            &origin,
        )?;
    }
    for rule in &profile.file {
        let dst = ImagePath::new(&rule.dst)?;
        match (&rule.src, &rule.content) {
            (_, Some(content)) => {
                let bytes: Arc<[u8]> = content.trim_start().as_bytes().into();
                asm.add_generated(LayerKind::Runtime, dst, Entry::bytes(bytes, 0o644), &origin)?;
            }
            (Some(src), None) => {
                let found = asm
                    .resolver
                    .root()
                    .lookup(Path::new(src))
                    .map_err(crate::resolve::ResolveError::from)?;
                match found {
                    Some(f) => {
                        let host = asm.resolver.root().host(&f.real);
                        let mut warnings = Vec::new();
                        let entry = host::host_entry(&host, &dst, Grant::Host, &mut warnings);
                        asm.warn_all(warnings);
                        let entry = entry?;
                        asm.add_generated(LayerKind::Runtime, dst, entry, &origin)?;
                    }
                    None if rule.optional => {}
                    None => {
                        return Err(ArtifactError::invalid(
                            &origin,
                            format!("{src} is not in the root"),
                        ));
                    }
                }
            }
            (None, None) => {}
        }
    }
    Ok(())
}
