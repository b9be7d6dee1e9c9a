//! An OCI image layout (image-spec image-layout.md), as a directory or as
//! the tar of one (an oci-archive): `oci-layout`, `index.json` naming the
//! tagged manifests, and `blobs/sha256/<hex>`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, OciLayout};

use super::document::is_index;
use super::referrer::{Referrer, referrer};
use super::store::Store;
use super::verify::VerifiedReader;
use super::{
    Attachment, DOCUMENT_LIMIT, ImageSource, Kind, SBOM_TYPE, SelectedImage, SourceError,
    check_document, digest_of, parse, select,
};
use crate::digest::Digest;
use crate::oci::layout::{INDEX_FILE, LAYOUT_VERSION, OCI_LAYOUT_FILE, blob_name};
use crate::oci::{provenance, referrers};

/// A layout or oci-archive opened for reading.
pub struct OciSource {
    name: String,
    store: Store,
    kind: Kind,
    index: ImageIndex,
    tag: Option<String>,
}

impl OciSource {
    /// A layout directory; `name` is how messages call it.
    pub fn layout(name: &str, dir: &Path, tag: Option<String>) -> Result<OciSource, SourceError> {
        if !dir.is_dir() || !dir.join(OCI_LAYOUT_FILE).is_file() {
            return Err(SourceError::NotAnImage {
                path: dir.to_path_buf(),
            });
        }
        OciSource::from_store(name, Store::Dir(dir.to_path_buf()), Kind::OciLayout, tag)
    }

    /// An oci-archive.
    pub fn archive(name: &str, file: &Path, tag: Option<String>) -> Result<OciSource, SourceError> {
        let store = Store::tar(file)?;
        if !OciSource::is_oci(&store) {
            return Err(SourceError::UnknownArchive {
                path: file.to_path_buf(),
            });
        }
        OciSource::from_store(name, store, Kind::OciArchive, tag)
    }

    /// Whether `store` holds a layout.
    pub(super) fn is_oci(store: &Store) -> bool {
        store.has(OCI_LAYOUT_FILE) && store.has(INDEX_FILE)
    }

    pub(super) fn from_store(
        name: &str,
        store: Store,
        kind: Kind,
        tag: Option<String>,
    ) -> Result<OciSource, SourceError> {
        let marker = store.read(OCI_LAYOUT_FILE, DOCUMENT_LIMIT)?;
        let layout: OciLayout = parse(&marker, &store.describe(OCI_LAYOUT_FILE))?;
        if layout.image_layout_version() != LAYOUT_VERSION {
            return Err(SourceError::BadSource {
                input: name.to_owned(),
                reason: format!(
                    "unsupported imageLayoutVersion {:?} (expected {LAYOUT_VERSION:?})",
                    layout.image_layout_version()
                ),
            });
        }
        let index = store.read(INDEX_FILE, DOCUMENT_LIMIT)?;
        let index: ImageIndex = parse(&index, &store.describe(INDEX_FILE))?;
        Ok(OciSource {
            name: name.to_owned(),
            store,
            kind,
            index,
            tag,
        })
    }

    fn member(&self, d: &Descriptor) -> Result<String, SourceError> {
        Ok(blob_name(&digest_of(d, &self.store.describe(INDEX_FILE))?))
    }

    fn has(&self, d: &Descriptor) -> bool {
        self.member(d).is_ok_and(|m| self.store.has(&m))
    }

    /// The attachments named by the entry's `org.mkimage.referrers`
    /// annotation (see oci::referrers), else found among the other
    /// `index.json` entries (or the children of an index entry: the
    /// `sha256-<hex>` tag a registry without the referrers API lists them
    /// under) by their manifests' `subject`, as `skopeo copy` and ORAS
    /// leave them. A listed index or manifest that is not in the store
    /// makes the artifacts missing, not absent.
    fn referrers(
        &self,
        entry: &Descriptor,
        image: &SelectedImage,
    ) -> Result<BTreeMap<String, Attachment>, SourceError> {
        let mut out = BTreeMap::new();
        let missing = |out: &mut BTreeMap<String, Attachment>, what: &str| {
            for t in [SBOM_TYPE, provenance::MEDIA_TYPE] {
                out.entry(t.to_owned())
                    .or_insert_with(|| Attachment::Missing(what.to_owned()));
            }
        };
        let (candidates, subject) = match self.named_index(entry)? {
            Some(digest) => match self.read_named(&digest) {
                Err(SourceError::Missing { .. }) => {
                    missing(&mut out, &digest.to_string());
                    return Ok(out);
                }
                index => (index?.manifests().clone(), None),
            },
            None => {
                let mut listed = Vec::new();
                for e in self.index.manifests() {
                    if e.digest() == entry.digest() {
                        continue;
                    }
                    if !is_index(e.media_type()) {
                        listed.push(e.clone());
                        continue;
                    }
                    if !self.has(e) {
                        continue;
                    }
                    let index: ImageIndex = parse(&self.document(e)?, &self.locate(e))?;
                    listed.extend(index.manifests().iter().cloned());
                }
                (listed, Some(&image.manifest_digest))
            }
        };
        for d in &candidates {
            if !self.has(d) {
                if subject.is_none() {
                    missing(&mut out, d.digest().as_ref());
                }
                continue;
            }
            let Ok(manifest) = parse::<ImageManifest>(&self.document(d)?, &self.locate(d)) else {
                continue;
            };
            let Some(found) = referrer(d, &manifest, subject) else {
                continue;
            };
            let blob = if self.has(&found.blob) {
                Attachment::Present(Box::new(found.blob))
            } else {
                Attachment::Missing(found.blob.digest().to_string())
            };
            out.insert(found.artifact_type, blob);
        }
        Ok(out)
    }

    /// The referrers `entry` (an `index.json` entry, or an image index's
    /// entry for one of its manifests) names by its annotation, each
    /// artifact manifest read: what `push` sends after the image. Unlike
    /// [`ImageSource::attachments`], which reports what is missing, a
    /// listed document that is not in the layout, or not a manifest, is
    /// an error: a push checks everything before it sends anything.
    pub fn named_referrers(&self, entry: &Descriptor) -> Result<Vec<Referrer>, SourceError> {
        let Some(digest) = self.named_index(entry)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for d in self.read_named(&digest)?.manifests() {
            let manifest: ImageManifest = parse(&self.document(d)?, &self.locate(d))?;
            out.extend(referrer(d, &manifest, None));
        }
        Ok(out)
    }

    /// The digest of the referrers index `entry`'s annotation names, if
    /// it names one.
    fn named_index(&self, entry: &Descriptor) -> Result<Option<Digest>, SourceError> {
        let Some(named) = entry
            .annotations()
            .as_ref()
            .and_then(|a| a.get(referrers::ANNOTATION))
        else {
            return Ok(None);
        };
        named.parse().map(Some).map_err(|_| SourceError::Json {
            location: self.store.describe(INDEX_FILE),
            reason: format!("{} is not a digest: {named:?}", referrers::ANNOTATION),
        })
    }

    /// The referrers index `digest` names, checked against it;
    /// [`SourceError::Missing`] when the layout lacks it.
    fn read_named(&self, digest: &Digest) -> Result<ImageIndex, SourceError> {
        let name = blob_name(digest);
        let bytes = self.read_checked(&name, digest)?;
        parse(&bytes, &self.store.describe(&name))
    }

    fn read_checked(&self, name: &str, digest: &Digest) -> Result<Vec<u8>, SourceError> {
        let bytes = self.store.read(name, DOCUMENT_LIMIT)?;
        let found = Digest::of(&bytes);
        if found != *digest {
            return Err(SourceError::DigestMismatch {
                location: self.store.describe(name),
                expected: *digest,
                found,
            });
        }
        Ok(bytes)
    }
}

impl ImageSource for OciSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> Kind {
        self.kind
    }

    fn top(&self) -> Result<Descriptor, SourceError> {
        select::by_tag(&self.index, self.tag.as_deref(), &self.name)
    }

    fn tags(&self) -> Result<Vec<String>, SourceError> {
        Ok(select::tags(&self.index))
    }

    fn tags_of_top(&self) -> Result<Vec<String>, SourceError> {
        Ok(select::tags_of(&self.index, &self.top()?))
    }

    fn index(&self) -> Result<Option<ImageIndex>, SourceError> {
        Ok(Some(self.index.clone()))
    }

    fn document(&self, d: &Descriptor) -> Result<Vec<u8>, SourceError> {
        let name = self.member(d)?;
        let location = self.store.describe(&name);
        let bytes = self.store.read(&name, DOCUMENT_LIMIT)?;
        check_document(&bytes, d, &location)?;
        Ok(bytes)
    }

    fn blob(&self, d: &Descriptor) -> Result<Box<dyn Read + Send>, SourceError> {
        let name = self.member(d)?;
        let digest = digest_of(d, &self.store.describe(&name))?;
        let reader = self.store.open(&name)?;
        Ok(Box::new(VerifiedReader::new(reader, digest, d.size())))
    }

    fn attachments(
        &self,
        image: &SelectedImage,
    ) -> Result<BTreeMap<String, Attachment>, SourceError> {
        // The entry the image was reached by names its referrers; an image
        // selected out of an index has them on the index's entry.
        let named = |d: &Descriptor| {
            d.annotations()
                .as_ref()
                .is_some_and(|a| a.contains_key(referrers::ANNOTATION))
        };
        let entry = match self.top() {
            Ok(top) if !named(&image.descriptor) => top,
            _ => image.descriptor.clone(),
        };
        let mut out = self.referrers(&entry, image)?;
        // Images built before provenance became a referrer name it by a
        // manifest annotation.
        if !out.contains_key(provenance::MEDIA_TYPE)
            && let Some(d) = image
                .manifest
                .annotations()
                .as_ref()
                .and_then(|a| a.get(provenance::ANNOTATION))
        {
            let found = match d.parse::<Digest>() {
                Ok(digest) if self.store.has(&blob_name(&digest)) => {
                    let size = self.store.size(&blob_name(&digest))?;
                    crate::oci::oci_digest(&digest)
                        .map(|od| {
                            Attachment::Present(Box::new(Descriptor::new(
                                oci_spec::image::MediaType::Other(provenance::MEDIA_TYPE.into()),
                                size,
                                od,
                            )))
                        })
                        .unwrap_or_else(|_| Attachment::Missing(d.clone()))
                }
                _ => Attachment::Missing(d.clone()),
            };
            out.insert(provenance::MEDIA_TYPE.to_owned(), found);
        }
        Ok(out)
    }

    fn locate(&self, d: &Descriptor) -> String {
        match self.member(d) {
            Ok(name) => self.store.describe(&name),
            Err(_) => format!("{} ({})", self.name, d.digest()),
        }
    }
}
