//! The two choices every reader makes, written once: which `index.json`
//! entry a tag names ([`by_tag`]), and which manifest of an index serves
//! a platform ([`by_platform`]); then [`image`] reads the chosen manifest
//! and its config.

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, MediaType};

use super::document::Document;
use super::{ImageSource, Platform, SelectedImage, SourceError, digest_of, parse};
use crate::digest::Digest;
use crate::oci::ref_name;

/// The `index.json` entry `tag` names (its `org.opencontainers.image.ref.name`,
/// image-spec image-layout.md), or with no tag the only image (entries
/// that differ only in tag are one image). `image` names the source in
/// errors.
pub fn by_tag(
    index: &ImageIndex,
    tag: Option<&str>,
    image: &str,
) -> Result<Descriptor, SourceError> {
    let entries = index.manifests();
    match tag {
        Some(t) => {
            let mut found = entries.iter().filter(|d| ref_name(d) == Some(t));
            let first = found.next().ok_or_else(|| SourceError::TagNotFound {
                image: image.to_owned(),
                tag: t.to_owned(),
                tags: tags(index),
            })?;
            // Another tool may have written the same tag twice; that is
            // only ambiguous if the entries disagree.
            if found.any(|d| d.digest() != first.digest()) {
                return Err(SourceError::BadSource {
                    input: image.to_owned(),
                    reason: format!("tag {t:?} names more than one manifest in index.json"),
                });
            }
            Ok(first.clone())
        }
        None => {
            let mut digests: Vec<String> = entries.iter().map(|d| d.digest().to_string()).collect();
            digests.sort();
            digests.dedup();
            match (digests.len(), entries.first()) {
                (1, Some(first)) => Ok(first.clone()),
                (0, _) | (_, None) => Err(SourceError::NoImage {
                    image: image.to_owned(),
                }),
                _ => Err(SourceError::ChooseTag {
                    image: image.to_owned(),
                    tags: tags(index),
                }),
            }
        }
    }
}

/// The tags of an index, sorted, each once.
pub fn tags(index: &ImageIndex) -> Vec<String> {
    let mut t: Vec<String> = index
        .manifests()
        .iter()
        .filter_map(|d| ref_name(d).map(str::to_owned))
        .collect();
    t.sort();
    t.dedup();
    t
}

/// The tags naming the same manifest as `entry`.
pub fn tags_of(index: &ImageIndex, entry: &Descriptor) -> Vec<String> {
    let mut t: Vec<String> = index
        .manifests()
        .iter()
        .filter(|d| d.digest() == entry.digest())
        .filter_map(|d| ref_name(d).map(str::to_owned))
        .collect();
    t.sort();
    t.dedup();
    t
}

/// Docker's annotation on the attestation manifests BuildKit adds to an
/// index: they are not images, whatever platform they claim.
const DOCKER_REFERENCE_TYPE: &str = "vnd.docker.reference.type";

/// The entries of `index` that are images, with their platforms: entries
/// without a platform, or attestations, are skipped.
fn images(index: &ImageIndex) -> Vec<(&Descriptor, Platform)> {
    index
        .manifests()
        .iter()
        .filter(|d| {
            !d.annotations()
                .as_ref()
                .is_some_and(|a| a.contains_key(DOCKER_REFERENCE_TYPE))
        })
        .filter_map(|d| Some((d, Platform::of_index(d.platform().as_ref()?))))
        .filter(|(_, p)| p.os != "unknown")
        .collect()
}

/// The manifest of `index` for `want`, the first that
/// [satisfies](Platform::satisfies) it. With no `want`: the host's
/// platform if the index has it (what `docker pull` does), else the only
/// image if there is one, else an error listing the platforms.
pub fn by_platform(
    index: &ImageIndex,
    want: Option<&Platform>,
    image: &str,
) -> Result<Descriptor, SourceError> {
    let images = images(index);
    let available = || {
        let mut v: Vec<String> = images.iter().map(|(_, p)| p.to_string()).collect();
        v.sort();
        v.dedup();
        v
    };
    let find = |want: &Platform| {
        images
            .iter()
            .find(|(_, p)| p.satisfies(want))
            .map(|(d, _)| (*d).clone())
    };
    match want {
        Some(want) => find(want).ok_or_else(|| SourceError::PlatformNotFound {
            image: image.to_owned(),
            want: want.to_string(),
            available: available(),
        }),
        None => {
            let host = super::platform::host();
            if let Some(found) = host.as_ref().and_then(find) {
                return Ok(found);
            }
            match images.as_slice() {
                [(only, _)] => Ok((*only).clone()),
                [] => Err(SourceError::NoImage {
                    image: image.to_owned(),
                }),
                _ => Err(SourceError::ChoosePlatform {
                    image: image.to_owned(),
                    host: host.map_or_else(|| "unknown".to_owned(), |h| h.to_string()),
                    available: available(),
                }),
            }
        }
    }
}

/// The platforms (`os/arch[/variant]`) and manifests of `source`'s top
/// document when it is an image index (by its descriptor's media type);
/// `None` for a single manifest.
pub fn platforms<S: ImageSource + ?Sized>(
    source: &S,
) -> Result<Option<Vec<(String, Descriptor)>>, SourceError> {
    let top = source.top()?;
    // A docker-archive's top manifest is made by the reader, not stored.
    if !super::document::is_index(top.media_type()) {
        return Ok(None);
    }
    let bytes = source.document(&top)?;
    match Document::parse(&bytes, Some(top.media_type()), &source.locate(&top))? {
        Document::Index(index) => Ok(Some(
            images(&index)
                .into_iter()
                .map(|(d, p)| (p.to_string(), d.clone()))
                .collect(),
        )),
        Document::Manifest(_) => Ok(None),
    }
}

/// The config's `rootfs.diff_ids`, one per layer of its manifest
/// (`layers` of them), parsed; `location` names the config in errors.
pub(super) fn diff_ids(
    config: &ImageConfiguration,
    layers: usize,
    location: &str,
) -> Result<Vec<Digest>, SourceError> {
    let diff_ids = config
        .rootfs()
        .diff_ids()
        .iter()
        .map(|d| {
            d.parse().map_err(|_| SourceError::UnsupportedDigest {
                location: location.to_owned(),
                digest: d.clone(),
            })
        })
        .collect::<Result<Vec<Digest>, _>>()?;
    if diff_ids.len() != layers {
        return Err(SourceError::DiffIdCount {
            location: location.to_owned(),
            diff_ids: diff_ids.len(),
            layers,
        });
    }
    Ok(diff_ids)
}

/// Nested indexes followed before giving up (an index of indexes is
/// legal; a cycle is not possible with digests, but a deep chain is).
const MAX_DEPTH: usize = 4;

/// [`ImageSource::select`] for every source: the top document, through
/// indexes by platform, to one manifest and its config.
pub fn image<S: ImageSource + ?Sized>(
    source: &S,
    want: Option<&Platform>,
) -> Result<SelectedImage, SourceError> {
    image_at(source, source.top()?, want)
}

/// [`image`] from `descriptor` (a manifest or an index in `source`)
/// rather than from the top: for writers that hold an `index.json` entry.
pub fn image_at<S: ImageSource + ?Sized>(
    source: &S,
    descriptor: Descriptor,
    want: Option<&Platform>,
) -> Result<SelectedImage, SourceError> {
    let mut descriptor = descriptor;
    for _ in 0..MAX_DEPTH {
        let location = source.locate(&descriptor);
        let bytes = source.document(&descriptor)?;
        let manifest = match Document::parse(&bytes, Some(descriptor.media_type()), &location)? {
            Document::Index(index) => {
                descriptor = by_platform(&index, want, source.name())?;
                continue;
            }
            Document::Manifest(m) => *m,
        };
        let config_location = source.locate(manifest.config());
        let config_bytes = source.document(manifest.config())?;
        let config: ImageConfiguration = parse(&config_bytes, &config_location)?;
        let platform = Platform::of_config(&config);
        if let Some(want) = want
            && !platform.satisfies(want)
        {
            return Err(SourceError::PlatformNotFound {
                image: source.name().to_owned(),
                want: want.to_string(),
                available: vec![platform.to_string()],
            });
        }
        let diff_ids = diff_ids(&config, manifest.layers().len(), &config_location)?;
        let manifest_media_type = manifest
            .media_type()
            .clone()
            .unwrap_or_else(|| descriptor.media_type().clone());
        let manifest_media_type = match manifest_media_type {
            MediaType::Other(t) if t.is_empty() => descriptor.media_type().clone(),
            m => m,
        };
        return Ok(SelectedImage {
            manifest_digest: digest_of(&descriptor, &location)?,
            config_digest: digest_of(manifest.config(), &location)?,
            layers: manifest.layers().clone(),
            manifest,
            manifest_bytes: bytes,
            manifest_media_type,
            synthetic: false,
            config,
            config_bytes,
            diff_ids,
            platform,
            descriptor,
        });
    }
    Err(SourceError::BadSource {
        input: source.name().to_owned(),
        reason: format!("indexes nest more than {MAX_DEPTH} deep"),
    })
}
