//! A docker-archive (`docker save`, skopeo's `docker-archive:`):
//! `manifest.json` lists each image's config and layer tars, and there is
//! no manifest. The reader makes one (an OCI manifest, canonical JSON) so
//! that every source answers alike: the config's descriptor from its
//! bytes, each layer's from its tar (an uncompressed layer's digest is its
//! diff_id; a compressed one, which some writers leave, is hashed once
//! when the archive is opened).
//!
//! mkimage's own archives name the image's provenance and SBOM by the
//! extra keys of [`DockerManifestItem`].

use std::collections::BTreeMap;
use std::io::{BufRead, Read};
use std::path::Path;
use std::sync::OnceLock;

use oci_spec::image::{
    Descriptor, ImageConfiguration, ImageIndex, ImageManifestBuilder, MediaType, SCHEMA_VERSION,
};

use super::store::{GZIP_MAGIC, Store, ZSTD_MAGIC};
use super::verify::VerifiedReader;
use super::{
    Attachment, DOCUMENT_LIMIT, ImageSource, Kind, Platform, SBOM_TYPE, SelectedImage, SourceError,
    digest_of, parse,
};
use crate::digest::{Digest, HashingReader};
use crate::oci::docker_manifest::{DockerManifestItem, MANIFEST_JSON};
use crate::oci::{canonical_json, oci_digest, provenance};
use crate::reference::{DEFAULT_TAG, Reference};

pub struct DockerArchive {
    name: String,
    store: Store,
    items: Vec<DockerManifestItem>,
    /// The item the reference picked.
    item: usize,
    /// Archive members by the digest of their content, once known.
    members: OnceLock<BTreeMap<Digest, String>>,
    /// The image, once made.
    image: OnceLock<SelectedImage>,
}

impl DockerArchive {
    pub fn open(
        name: &str,
        file: &Path,
        reference: Option<String>,
    ) -> Result<DockerArchive, SourceError> {
        let store = Store::tar(file)?;
        if !DockerArchive::is_docker(&store) {
            return Err(SourceError::UnknownArchive {
                path: file.to_path_buf(),
            });
        }
        DockerArchive::from_store(name, store, reference)
    }

    pub(super) fn is_docker(store: &Store) -> bool {
        store.has(MANIFEST_JSON)
    }

    pub(super) fn from_store(
        name: &str,
        store: Store,
        reference: Option<String>,
    ) -> Result<DockerArchive, SourceError> {
        let bytes = store.read(MANIFEST_JSON, DOCUMENT_LIMIT)?;
        let items: Vec<DockerManifestItem> = parse(&bytes, &store.describe(MANIFEST_JSON))?;
        let all_tags = || {
            let mut t: Vec<String> = items.iter().flat_map(tags_of).collect();
            t.sort();
            t.dedup();
            t
        };
        let item = match reference.as_deref() {
            Some(r) => {
                // As written, or as docker reads it: `app` is
                // `docker.io/library/app:latest`, which skopeo writes.
                let normal = full_reference(r);
                items
                    .iter()
                    .position(|i| {
                        tags_of(i)
                            .iter()
                            .any(|t| t == r || (normal.is_some() && full_reference(t) == normal))
                    })
                    .ok_or_else(|| SourceError::TagNotFound {
                        image: name.to_owned(),
                        tag: r.to_owned(),
                        tags: all_tags(),
                    })?
            }
            None => match items.len() {
                1 => 0,
                0 => {
                    return Err(SourceError::NoImage {
                        image: name.to_owned(),
                    });
                }
                _ => {
                    return Err(SourceError::ChooseTag {
                        image: name.to_owned(),
                        tags: all_tags(),
                    });
                }
            },
        };
        Ok(DockerArchive {
            name: name.to_owned(),
            store,
            items,
            item,
            members: OnceLock::new(),
            image: OnceLock::new(),
        })
    }

    fn item(&self) -> &DockerManifestItem {
        &self.items[self.item]
    }

    fn members(&self) -> &BTreeMap<Digest, String> {
        self.members.get_or_init(BTreeMap::new)
    }

    /// The member holding `d`'s blob.
    fn member(&self, d: &Descriptor) -> Result<String, SourceError> {
        if self.members.get().is_none() {
            self.make(None)?;
        }
        let digest = digest_of(d, &self.store.describe(MANIFEST_JSON))?;
        self.members()
            .get(&digest)
            .cloned()
            .ok_or_else(|| SourceError::Missing {
                location: format!("{} ({digest})", self.name),
            })
    }

    /// A member's digest: from its name when it is `<hex>.json`-like
    /// (checked when read), else hashed.
    fn digest_of_member(&self, member: &str) -> Result<Digest, SourceError> {
        match named_digest(member) {
            Some(d) => Ok(d),
            None => self.hash(member),
        }
    }

    fn hash(&self, member: &str) -> Result<Digest, SourceError> {
        let mut r = HashingReader::new(self.store.open(member)?);
        std::io::copy(&mut r, &mut std::io::sink()).map_err(|source| SourceError::Read {
            location: self.store.describe(member),
            source,
        })?;
        Ok(r.finish().0)
    }

    fn descriptor(
        media_type: MediaType,
        size: u64,
        digest: &Digest,
    ) -> Result<Descriptor, SourceError> {
        Ok(Descriptor::new(media_type, size, oci_digest(digest)?))
    }

    /// The image, made once (a compressed layer is hashed to name it),
    /// checked against `want`.
    fn make(&self, want: Option<&Platform>) -> Result<SelectedImage, SourceError> {
        let image = match self.image.get() {
            Some(image) => image.clone(),
            None => {
                let image = self.build()?;
                let _ = self.image.set(image.clone());
                image
            }
        };
        if let Some(want) = want
            && !image.platform.satisfies(want)
        {
            return Err(SourceError::PlatformNotFound {
                image: self.name.clone(),
                want: want.to_string(),
                available: vec![image.platform.to_string()],
            });
        }
        Ok(image)
    }

    /// The image, its manifest made from `manifest.json` (see the module
    /// docs); fills in which member holds which digest.
    fn build(&self) -> Result<SelectedImage, SourceError> {
        let item = self.item();
        let config_location = self.store.describe(&item.config);
        let config_bytes = self.store.read(&item.config, DOCUMENT_LIMIT)?;
        let config_digest = Digest::of(&config_bytes);
        // Docker and mkimage name it `<hex>.json`: then that is checked.
        if let Some(named) = named_digest(&item.config)
            && named != config_digest
        {
            return Err(SourceError::DigestMismatch {
                location: config_location,
                expected: named,
                found: config_digest,
            });
        }
        let config: ImageConfiguration = parse(&config_bytes, &config_location)?;
        let platform = Platform::of_config(&config);
        let diff_ids = super::select::diff_ids(&config, item.layers.len(), &config_location)?;
        let mut members = BTreeMap::new();
        members.insert(config_digest, item.config.clone());
        let mut layers = Vec::new();
        for (name, diff_id) in item.layers.iter().zip(&diff_ids) {
            let size = self.store.size(name)?;
            let head = {
                let mut r = self.store.open(name)?;
                r.fill_buf()
                    .map_err(|source| SourceError::Read {
                        location: self.store.describe(name),
                        source,
                    })?
                    .get(..4)
                    .unwrap_or_default()
                    .to_vec()
            };
            let (media_type, digest) = if head.starts_with(GZIP_MAGIC) {
                (MediaType::ImageLayerGzip, self.hash(name)?)
            } else if head.starts_with(ZSTD_MAGIC) {
                (MediaType::ImageLayerZstd, self.hash(name)?)
            } else {
                (MediaType::ImageLayer, *diff_id)
            };
            members.insert(digest, name.clone());
            layers.push(Self::descriptor(media_type, size, &digest)?);
        }
        for extra in [&item.provenance, &item.sbom].into_iter().flatten() {
            if self.store.has(extra) {
                members.insert(self.digest_of_member(extra)?, extra.clone());
            }
        }
        let config_descriptor = Self::descriptor(
            MediaType::ImageConfig,
            config_bytes.len() as u64,
            &config_digest,
        )?;
        let manifest = ImageManifestBuilder::default()
            .schema_version(SCHEMA_VERSION)
            .media_type(MediaType::ImageManifest)
            .config(config_descriptor)
            .layers(layers.clone())
            .build()
            .map_err(|source| crate::oci::OciError::Spec {
                what: "manifest",
                source,
            })?;
        let manifest_bytes = canonical_json(&manifest)?;
        let manifest_digest = Digest::of(&manifest_bytes);
        let _ = self.members.set(members);
        Ok(SelectedImage {
            manifest_digest,
            descriptor: Self::descriptor(
                MediaType::ImageManifest,
                manifest_bytes.len() as u64,
                &manifest_digest,
            )?,
            manifest,
            manifest_bytes,
            manifest_media_type: MediaType::ImageManifest,
            synthetic: true,
            config_digest,
            config,
            config_bytes,
            layers,
            diff_ids,
            platform,
        })
    }
}

/// The digest a member's name gives, `<hex>.json` or
/// `<hex>.provenance.json` (as Docker and mkimage write them).
fn named_digest(member: &str) -> Option<Digest> {
    let base = member.rsplit('/').next().unwrap_or(member);
    let hex = base.split('.').next().unwrap_or_default();
    format!("sha256:{hex}").parse().ok()
}

/// `NAME[:TAG]` in docker's full form, `latest` when untagged.
fn full_reference(name: &str) -> Option<String> {
    let r = Reference::parse(name).ok()?;
    let r = match r.tag() {
        Some(_) => r,
        None => r.with_tag(DEFAULT_TAG),
    };
    Some(r.to_string())
}

fn tags_of(item: &DockerManifestItem) -> Vec<String> {
    item.repo_tags.clone().unwrap_or_default()
}

impl ImageSource for DockerArchive {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> Kind {
        Kind::DockerArchive
    }

    fn top(&self) -> Result<Descriptor, SourceError> {
        Ok(self.make(None)?.descriptor)
    }

    fn tags(&self) -> Result<Vec<String>, SourceError> {
        let mut t: Vec<String> = self.items.iter().flat_map(tags_of).collect();
        t.sort();
        t.dedup();
        Ok(t)
    }

    fn tags_of_top(&self) -> Result<Vec<String>, SourceError> {
        Ok(tags_of(self.item()))
    }

    fn index(&self) -> Result<Option<ImageIndex>, SourceError> {
        Ok(None)
    }

    fn document(&self, d: &Descriptor) -> Result<Vec<u8>, SourceError> {
        let member = self.member(d)?;
        let location = self.store.describe(&member);
        let bytes = self.store.read(&member, DOCUMENT_LIMIT)?;
        super::check_document(&bytes, d, &location)?;
        Ok(bytes)
    }

    fn blob(&self, d: &Descriptor) -> Result<Box<dyn Read + Send>, SourceError> {
        let member = self.member(d)?;
        let digest = digest_of(d, &self.store.describe(&member))?;
        Ok(Box::new(VerifiedReader::new(
            self.store.open(&member)?,
            digest,
            d.size(),
        )))
    }

    fn attachments(
        &self,
        _image: &SelectedImage,
    ) -> Result<BTreeMap<String, Attachment>, SourceError> {
        let item = self.item();
        let mut out = BTreeMap::new();
        for (kind, name) in [
            (provenance::MEDIA_TYPE, &item.provenance),
            (SBOM_TYPE, &item.sbom),
        ] {
            let Some(name) = name else { continue };
            let found = if self.store.has(name) {
                let digest = self.digest_of_member(name)?;
                let size = self.store.size(name)?;
                Attachment::Present(Box::new(Self::descriptor(
                    MediaType::Other(kind.into()),
                    size,
                    &digest,
                )?))
            } else {
                Attachment::Missing(name.clone())
            };
            out.insert(kind.to_owned(), found);
        }
        Ok(out)
    }

    fn locate(&self, d: &Descriptor) -> String {
        match self.member(d) {
            Ok(m) => self.store.describe(&m),
            Err(_) => format!("{} ({})", self.name, d.digest()),
        }
    }

    fn select(&self, want: Option<&Platform>) -> Result<SelectedImage, SourceError> {
        self.make(want)
    }
}
