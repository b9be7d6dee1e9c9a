//! A layout's layer tars read into trees of entries: one layer, the layers
//! stacked, symlinks followed as the kernel would inside the image.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use super::layout::{LAYER_ANNOTATION, blob, manifest};

/// One entry of a layer tar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File(Vec<u8>),
    Dir,
    Symlink(String),
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

/// A layer's entries by path, normalised to `etc/passwd` (no `./`, no
/// leading or trailing `/`).
pub type Layer = BTreeMap<String, Entry>;

/// Every layer of the image tagged `tag`, bottom first.
pub fn layers(layout: &Path, tag: &str) -> Vec<Layer> {
    let manifest = manifest(layout, tag);
    manifest["layers"]
        .as_array()
        .expect("manifest layers")
        .iter()
        .map(|descriptor| {
            let bytes = blob(layout, descriptor);
            match descriptor["mediaType"].as_str() {
                Some("application/vnd.oci.image.layer.v1.tar+gzip") => {
                    read_tar(flate2::read::MultiGzDecoder::new(&bytes[..]))
                }
                Some("application/vnd.oci.image.layer.v1.tar+zstd") => {
                    read_tar(zstd::stream::read::Decoder::new(&bytes[..]).expect("zstd decoder"))
                }
                Some("application/vnd.oci.image.layer.v1.tar") => read_tar(&bytes[..]),
                other => panic!("unexpected layer media type {other:?}"),
            }
        })
        .collect()
}

fn read_tar(reader: impl Read) -> Layer {
    let mut archive = tar::Archive::new(reader);
    let mut layer = Layer::new();
    for entry in archive.entries().expect("read layer tar") {
        let mut entry = entry.expect("layer tar entry");
        let path = entry
            .path()
            .expect("entry path")
            .to_string_lossy()
            .into_owned();
        let path = path.trim_start_matches("./").trim_matches('/').to_owned();
        let header = entry.header();
        let (mode, uid, gid) = (
            header.mode().expect("mode"),
            header.uid().expect("uid"),
            header.gid().expect("gid"),
        );
        let kind = match header.entry_type() {
            tar::EntryType::Regular => {
                let mut data = Vec::new();
                entry.read_to_end(&mut data).expect("read entry");
                Kind::File(data)
            }
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Symlink => Kind::Symlink(
                entry
                    .link_name()
                    .expect("link name")
                    .expect("symlink target")
                    .to_string_lossy()
                    .into_owned(),
            ),
            other => Kind::Other(format!("{other:?}")),
        };
        let old = layer.insert(
            path.clone(),
            Entry {
                kind,
                mode,
                uid,
                gid,
            },
        );
        assert!(old.is_none(), "{path} appears twice in one layer");
    }
    layer
}

/// The layers stacked: later layers replace earlier entries.
pub fn merged(layers: &[Layer]) -> Layer {
    let mut all = Layer::new();
    for layer in layers {
        for (path, entry) in layer {
            assert!(
                !path.rsplit('/').next().unwrap_or("").starts_with(".wh."),
                "unexpected whiteout {path}"
            );
            all.insert(path.clone(), entry.clone());
        }
    }
    all
}

/// Follows symlinks through the stacked layers the way the kernel would
/// inside the image, and returns the path `path` ends at.
pub fn resolve(tree: &Layer, path: &str) -> String {
    let mut pending: Vec<String> = path
        .split('/')
        .filter(|c| !c.is_empty())
        .rev()
        .map(str::to_owned)
        .collect();
    let mut done: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(component) = pending.pop() {
        match component.as_str() {
            "." => continue,
            ".." => {
                done.pop();
                continue;
            }
            _ => {}
        }
        done.push(component);
        let here = done.join("/");
        if let Some(Entry {
            kind: Kind::Symlink(target),
            ..
        }) = tree.get(&here)
        {
            hops += 1;
            assert!(hops < 40, "too many symlinks resolving {path}");
            done.pop();
            if target.starts_with('/') {
                done.clear();
            }
            pending.extend(
                target
                    .split('/')
                    .filter(|c| !c.is_empty())
                    .rev()
                    .map(str::to_owned),
            );
        }
    }
    done.join("/")
}

/// The `org.mkimage.layer` name of each layer of the image tagged `tag`,
/// bottom first.
pub fn layer_names(layout: &Path, tag: &str) -> Vec<String> {
    manifest(layout, tag)["layers"]
        .as_array()
        .expect("manifest layers")
        .iter()
        .map(|l| {
            l["annotations"][LAYER_ANNOTATION]
                .as_str()
                .unwrap_or_else(|| panic!("layer without {LAYER_ANNOTATION}: {l}"))
                .to_owned()
        })
        .collect()
}

/// The layers of the image tagged `tag` by their `org.mkimage.layer` name;
/// panics if a name appears twice.
pub fn named_layers(layout: &Path, tag: &str) -> BTreeMap<String, Layer> {
    let names = layer_names(layout, tag);
    let mut named = BTreeMap::new();
    for (name, layer) in names.iter().zip(layers(layout, tag)) {
        let old = named.insert(name.clone(), layer);
        assert!(old.is_none(), "two {name} layers in {names:?}");
    }
    named
}

/// The contents of the regular file `path` in `layer`; panics otherwise.
#[track_caller]
pub fn file_in(layer: &Layer, path: &str) -> Vec<u8> {
    match layer.get(path).map(|e| &e.kind) {
        Some(Kind::File(data)) => data.clone(),
        other => panic!("{path}: expected a regular file, found {other:?}"),
    }
}
