//! `--base REF`: the image a build starts from, read through the image
//! reader (`crate::source`, the one place this build consumes it). Its
//! layers are reused by digest (copied, verified, into the output; never
//! recompressed), its config is the starting point of the new one, and
//! its merged file view decides which libraries the build need not copy.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;

use oci_spec::image::MediaType;

use crate::elf::Arch;
use crate::layer::Algorithm;
use crate::oci::{LayerInfo, Layout, names};
use crate::plan::BasePlan;
use crate::rootfs::base_view::{BaseKind, BaseView, wanted};
use crate::rootfs::{ImagePath, Kind, LayerSet, RootfsError, Tree};
use crate::source::{self, ImageSource, SelectedImage, layer_compression};

use super::BuildError;

/// An opened base image: its documents, its file view, and the
/// temporary directory holding the files extracted from it.
pub struct BaseImage {
    pub name: String,
    source: Box<dyn ImageSource>,
    pub image: SelectedImage,
    pub view: Arc<BaseView>,
    _extracted: tempfile::TempDir,
}

fn err(name: &str, why: impl std::fmt::Display) -> BuildError {
    BuildError::Base {
        base: name.to_owned(),
        why: why.to_string(),
    }
}

/// Opens the base for `arch`'s platform and reads its layers' file view
/// (every layer streamed once, checked against its digest).
pub fn open(plan: &BasePlan, arch: Arch) -> Result<BaseImage, BuildError> {
    let name = plan.reference.clone();
    let (src, image) = select(&name, &plan.registry, arch)?;
    let tmp = tempfile::Builder::new()
        .prefix("mkimage-base-")
        .tempdir()
        .map_err(|e| err(&name, format!("cannot create a temporary directory: {e}")))?;
    let view = read_view(&name, src.as_ref(), &image, tmp.path(), &wanted)?;
    Ok(BaseImage {
        name,
        source: src,
        image,
        view: Arc::new(view),
        _extracted: tmp,
    })
}

/// Opens `reference` and selects its image for `arch`, checking that the
/// image is for that platform.
pub fn select(
    name: &str,
    registry: &crate::registry::RegistryOptions,
    arch: Arch,
) -> Result<(Box<dyn ImageSource>, SelectedImage), BuildError> {
    let src = source::open_str(name, registry).map_err(|e| err(name, format!("{e:#}")))?;
    let want = source::platform::of_arch(arch);
    let image = src.select(Some(&want)).map_err(|e| err(name, e))?;
    let same = image.platform.os == want.os
        && image.platform.architecture == want.architecture
        && (want.variant.is_none() || image.platform.variant == want.variant);
    if !same {
        return Err(err(
            name,
            format!("it is for {}, but the image is for {want}", image.platform),
        ));
    }
    Ok((src, image))
}

/// Streams every layer of `image` once (each checked against its digest)
/// into a merged view, extracting the files `extract` names into `dir`.
pub fn read_view(
    name: &str,
    src: &dyn ImageSource,
    image: &SelectedImage,
    dir: &std::path::Path,
    extract: &dyn Fn(&str) -> bool,
) -> Result<BaseView, BuildError> {
    let mut view = BaseView::default();
    for layer in &image.layers {
        let compression = layer_compression(layer.media_type()).ok_or_else(|| {
            err(
                name,
                format!(
                    "layer {} has media type {}, which mkimage cannot read",
                    layer.digest(),
                    layer.media_type()
                ),
            )
        })?;
        let blob = src.blob(layer).map_err(|e| err(name, e))?;
        let mut stream: Box<dyn Read> = match compression {
            None => blob,
            Some(Algorithm::Gzip) => Box::new(flate2::read::MultiGzDecoder::new(blob)),
            Some(Algorithm::Zstd) => {
                Box::new(zstd::stream::read::Decoder::new(blob).map_err(|e| err(name, e))?)
            }
        };
        view.apply(layer.digest().as_ref(), &mut stream, dir, extract)
            .map_err(|e| err(name, e))?;
        // Read to the end so the digest check runs over the whole blob.
        std::io::copy(&mut stream, &mut std::io::sink()).map_err(|e| err(name, e))?;
    }
    Ok(view)
}

impl BaseImage {
    /// Copies the base's layer blobs into `layout` (each checked against
    /// its digest as it is read) and returns them as the new image's first
    /// layers, media types in their OCI spelling (the bytes are the same).
    pub fn copy_layers(&self, layout: &Layout) -> Result<Vec<LayerInfo>, BuildError> {
        let mut out = Vec::new();
        for (layer, diff_id) in self.image.layers.iter().zip(&self.image.diff_ids) {
            let digest = source::digest_of(layer, &self.name).map_err(|e| err(&self.name, e))?;
            if layout.check_blob(&digest, layer.size()).is_err() {
                let mut blob = self.source.blob(layer).map_err(|e| err(&self.name, e))?;
                let mut writer = layout.unhashed_blob_writer()?;
                std::io::copy(&mut blob, &mut writer).map_err(|e| {
                    err(
                        &self.name,
                        source::read_error(&self.source.locate(layer), e),
                    )
                })?;
                writer.commit(&digest, layer.size())?;
            }
            let media_type = match layer_compression(layer.media_type()) {
                Some(None) => MediaType::ImageLayer,
                Some(Some(Algorithm::Gzip)) => MediaType::ImageLayerGzip,
                Some(Some(Algorithm::Zstd)) => MediaType::ImageLayerZstd,
                None => layer.media_type().clone(),
            };
            let mut annotations = BTreeMap::new();
            annotations.insert(names::LAYER_ANNOTATION.to_string(), "from-base".to_string());
            out.push(LayerInfo {
                diff_id: *diff_id,
                digest,
                size: layer.size(),
                media_type,
                created_by: format!("--base {}", self.name),
                annotations,
            });
        }
        Ok(out)
    }

    /// The base config's `config` object (Env, User, …).
    pub fn config(&self) -> Option<&oci_spec::image::Config> {
        self.image.config.config().as_ref()
    }
}

/// Moves paths the build writes below a directory the base has as a
/// symlink (`/lib -> usr/lib`) to the link's target, and drops the
/// directories that would replace such links: in the container the link
/// stays and the files are where it points.
pub fn follow_base_links(layers: &mut LayerSet, view: &BaseView) -> Result<(), BuildError> {
    for tree in layers.trees.values_mut() {
        let moved: Vec<_> = tree
            .iter()
            .filter_map(|(p, e)| {
                let real = view.symlinked_dir(&p.to_string())?;
                Some((p.clone(), real, e.clone()))
            })
            .collect();
        if moved.is_empty() {
            continue;
        }
        let mut out = Tree::new();
        for (path, entry) in tree.iter() {
            let is_link = |p: &ImagePath| {
                view.get(&p.to_string())
                    .is_some_and(|e| matches!(e.kind, BaseKind::Symlink { .. }))
            };
            let target = match moved.iter().find(|(p, _, _)| p == path) {
                None => path.clone(),
                // The base's link stands for this directory.
                Some(_) if is_link(path) && entry.kind == Kind::Dir => continue,
                // Anything else at the link's own path replaces the link,
                // as it would in the container.
                Some(_) if is_link(path) => path.clone(),
                Some((_, real, _)) => ImagePath::new(real).map_err(RootfsError::from)?,
            };
            if tree.is_implicit(path) {
                continue;
            }
            out.insert(target, entry.clone())
                .map_err(RootfsError::from)?;
        }
        *tree = out;
    }
    Ok(())
}
