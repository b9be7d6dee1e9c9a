//! A registry, `docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`: the distribution
//! spec's pull (GET manifests with every media type we read in `Accept`,
//! GET blobs, redirects followed), with push's client: the same
//! credentials, Bearer (`pull` scope) and Basic flows, retries and time
//! limits.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::{Mutex, OnceLock};

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};

use super::document::{ACCEPT, Document, is_index};
use super::referrer::referrer;
use super::verify::VerifiedReader;
use super::{
    Attachment, DOCUMENT_LIMIT, ImageSource, Kind, SelectedImage, SourceError, SourceOptions,
    check_document, digest_of, parse,
};
use crate::digest::Digest;
use crate::oci::names::INDEX_MEDIA_TYPE;
use crate::oci::oci_digest;
use crate::reference::{DEFAULT_TAG, Reference};
use crate::registry::RegistryError;
use crate::registry::referrers::fallback_tag;
use crate::registry::transport::{Client, Http, Method, Request, Response, UreqHttp};

/// A wrong digest from a registry is quoted up to this long.
const MAX_DIGEST: usize = 140;

/// A manifest as fetched: its `Content-Type`, bytes, and the digest the
/// registry said it has.
type Fetched = (Option<String>, Vec<u8>, Option<String>);

pub struct RegistrySource<H = UreqHttp> {
    name: String,
    reference: Reference,
    /// The client, and whether it has pinged (learnt the challenge).
    client: Mutex<(Client<H>, bool)>,
    /// The top manifest or index, as fetched: its descriptor and bytes.
    top: OnceLock<(Descriptor, Vec<u8>)>,
}

impl RegistrySource<UreqHttp> {
    pub fn open(
        name: &str,
        reference: &Reference,
        opts: &SourceOptions,
    ) -> Result<RegistrySource<UreqHttp>, SourceError> {
        Ok(RegistrySource::with_client(
            name,
            reference,
            opts.connect(reference)?,
        ))
    }
}

impl<H: Http + Send> RegistrySource<H> {
    pub fn with_client(name: &str, reference: &Reference, client: Client<H>) -> RegistrySource<H> {
        RegistrySource {
            name: name.to_owned(),
            reference: reference.clone(),
            client: Mutex::new((client, false)),
            top: OnceLock::new(),
        }
    }

    fn scope(&self) -> Vec<String> {
        vec![format!("repository:{}:pull", self.reference.repository())]
    }

    /// Runs `f` on the client, pinging first (once).
    fn with<T>(
        &self,
        f: impl FnOnce(&mut Client<H>) -> Result<T, RegistryError>,
    ) -> Result<T, SourceError> {
        // A panic elsewhere cannot leave the client half-updated in a way
        // that matters here: take it anyway.
        let mut guard = self.client.lock().unwrap_or_else(|e| e.into_inner());
        let (client, pinged) = &mut *guard;
        if !*pinged {
            client.ping()?;
            *pinged = true;
        }
        Ok(f(client)?)
    }

    fn status_error(client: &Client<H>, resp: &Response, path: &str) -> RegistryError {
        RegistryError::Status {
            registry: client.registry().to_owned(),
            action: format!("GET {path}"),
            status: resp.status,
            message: resp.message(),
        }
    }

    /// GET a manifest or index by tag or digest; returns its media type
    /// (from `Content-Type`, else none) and bytes.
    fn get_manifest(&self, target: &str) -> Result<Fetched, SourceError> {
        let path = format!("/v2/{}/manifests/{target}", self.reference.repository());
        let scope = self.scope();
        self.with(|c| {
            let req = Request::new(Method::Get, c.url(&path)).header("Accept", ACCEPT.join(", "));
            let resp = c.send(&req, &scope)?;
            if resp.status != 200 {
                return Err(Self::status_error(c, &resp, &path));
            }
            let content_type = resp
                .header("content-type")
                .map(|t| t.split(';').next().unwrap_or(t).trim().to_owned())
                .filter(|t| !t.is_empty());
            let digest = resp.header("docker-content-digest").map(str::to_owned);
            Ok((content_type, resp.body, digest))
        })
    }

    /// The top document, fetched once.
    fn fetch_top(&self) -> Result<&(Descriptor, Vec<u8>), SourceError> {
        if let Some(top) = self.top.get() {
            return Ok(top);
        }
        let target = match (self.reference.digest(), self.reference.tag()) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.to_owned(),
            (None, None) => DEFAULT_TAG.to_owned(),
        };
        let (content_type, bytes, said) = self.get_manifest(&target)?;
        let found = Digest::of(&bytes);
        if let Some(pinned) = self.reference.digest()
            && *pinned != found
        {
            return Err(SourceError::PinnedDigest {
                reference: self.reference.to_string(),
                pinned: *pinned,
                found,
            });
        }
        // A registry names what it sends; when it names sha256 content,
        // that must be what came.
        if let Some(said) = said.map(|s| s.trim().to_owned())
            && said.starts_with("sha256:")
            && said != found.to_string()
        {
            return Err(RegistryError::DigestMismatch {
                registry: self.reference.registry().to_owned(),
                what: format!("manifest {target}"),
                expected: found,
                found: crate::registry::transport::printable(&said, MAX_DIGEST),
            }
            .into());
        }
        let location = self.manifest_url(&target);
        let media_type = match content_type {
            Some(t) if ACCEPT.contains(&t.as_str()) => MediaType::from(t.as_str()),
            _ => match Document::parse(&bytes, None, &location)? {
                Document::Index(i) => i.media_type().clone().unwrap_or(MediaType::ImageIndex),
                Document::Manifest(m) => m.media_type().clone().unwrap_or(MediaType::ImageManifest),
            },
        };
        let d = Descriptor::new(media_type, bytes.len() as u64, oci_digest(&found)?);
        Ok(self.top.get_or_init(|| (d, bytes)))
    }

    fn manifest_url(&self, target: &str) -> String {
        let path = format!("/v2/{}/manifests/{target}", self.reference.repository());
        self.client.lock().map_or(path.clone(), |c| c.0.url(&path))
    }

    fn blob_path(&self, d: &Descriptor) -> String {
        format!("/v2/{}/blobs/{}", self.reference.repository(), d.digest())
    }

    /// A GET of a blob, streaming.
    fn get_blob(&self, d: &Descriptor) -> Result<Box<dyn Read + Send>, SourceError> {
        let path = self.blob_path(d);
        let scope = self.scope();
        self.with(|c| {
            let req = Request::new(Method::Get, c.url(&path));
            let resp = c.open(&req, &scope, d.size())?;
            if resp.status != 200 {
                let resp = resp.into_response();
                return Err(Self::status_error(c, &resp, &path));
            }
            Ok(resp.body)
        })
    }

    /// The referrers of `digest`: the referrers API's answer, else the
    /// `sha256-<hex>` tag (distribution-spec "Referrers Tag Schema") that
    /// `mkimage push` and other clients keep for registries without it.
    fn referrers(&self, digest: &Digest) -> Result<Option<ImageIndex>, SourceError> {
        let path = format!("/v2/{}/referrers/{digest}", self.reference.repository());
        let scope = self.scope();
        let api = self.with(|c| {
            let req = Request::new(Method::Get, c.url(&path)).header("Accept", INDEX_MEDIA_TYPE);
            c.send(&req, &scope)
        })?;
        if api.status == 200
            && let Ok(index) = serde_json::from_slice::<ImageIndex>(&api.body)
        {
            return Ok(Some(index));
        }
        match self.get_manifest(&fallback_tag(digest)) {
            Ok((_, bytes, _)) => Ok(serde_json::from_slice(&bytes).ok()),
            Err(SourceError::Registry(RegistryError::Status { status: 404, .. })) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl<H: Http + Send> ImageSource for RegistrySource<H> {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> Kind {
        Kind::Registry
    }

    fn top(&self) -> Result<Descriptor, SourceError> {
        Ok(self.fetch_top()?.0.clone())
    }

    fn tags(&self) -> Result<Vec<String>, SourceError> {
        #[derive(serde::Deserialize)]
        struct TagList {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let path = format!("/v2/{}/tags/list", self.reference.repository());
        let scope = self.scope();
        let body = self.with(|c| {
            let resp = c.send(&Request::new(Method::Get, c.url(&path)), &scope)?;
            if resp.status != 200 {
                return Err(Self::status_error(c, &resp, &path));
            }
            Ok(resp.body)
        })?;
        let list: TagList = parse(&body, &self.manifest_url("tags/list"))?;
        let mut tags = list.tags.unwrap_or_default();
        tags.sort();
        Ok(tags)
    }

    fn tags_of_top(&self) -> Result<Vec<String>, SourceError> {
        Ok(self
            .reference
            .tag()
            .map(str::to_owned)
            .into_iter()
            .collect())
    }

    fn index(&self) -> Result<Option<ImageIndex>, SourceError> {
        let (d, bytes) = self.fetch_top()?;
        match Document::parse(bytes, Some(d.media_type()), &self.name)? {
            Document::Index(i) => Ok(Some(*i)),
            Document::Manifest(_) => Ok(None),
        }
    }

    fn document(&self, d: &Descriptor) -> Result<Vec<u8>, SourceError> {
        let location = self.locate(d);
        let top = self.fetch_top()?;
        if top.0.digest() == d.digest() {
            check_document(&top.1, d, &location)?;
            return Ok(top.1.clone());
        }
        let is_manifest = is_index(d.media_type())
            || matches!(d.media_type(), MediaType::ImageManifest)
            || ACCEPT.contains(&d.media_type().to_string().as_str());
        let bytes = if is_manifest {
            self.get_manifest(d.digest().as_ref())?.1
        } else {
            if d.size() > DOCUMENT_LIMIT {
                return Err(SourceError::TooLarge {
                    location,
                    size: d.size(),
                    limit: DOCUMENT_LIMIT,
                });
            }
            let mut out = Vec::new();
            self.get_blob(d)?
                .take(DOCUMENT_LIMIT + 1)
                .read_to_end(&mut out)
                .map_err(|source| SourceError::Read {
                    location: location.clone(),
                    source,
                })?;
            out
        };
        check_document(&bytes, d, &location)?;
        Ok(bytes)
    }

    fn blob(&self, d: &Descriptor) -> Result<Box<dyn Read + Send>, SourceError> {
        let digest = digest_of(d, &self.locate(d))?;
        Ok(Box::new(VerifiedReader::new(
            self.get_blob(d)?,
            digest,
            d.size(),
        )))
    }

    fn attachments(
        &self,
        image: &SelectedImage,
    ) -> Result<BTreeMap<String, Attachment>, SourceError> {
        let mut out = BTreeMap::new();
        let Some(index) = self.referrers(&image.manifest_digest)? else {
            return Ok(out);
        };
        for d in index.manifests() {
            let manifest: ImageManifest = match self.document(d) {
                Ok(bytes) => parse(&bytes, &self.locate(d))?,
                Err(SourceError::Registry(RegistryError::Status { status: 404, .. })) => {
                    if let Some(t) = d.artifact_type() {
                        out.insert(t.to_string(), Attachment::Missing(d.digest().to_string()));
                    }
                    continue;
                }
                Err(e) => return Err(e),
            };
            // A registry's answer is checked: its referrers are this image's.
            if let Some(found) = referrer(d, &manifest, Some(&image.manifest_digest)) {
                out.insert(
                    found.artifact_type,
                    Attachment::Present(Box::new(found.blob)),
                );
            }
        }
        Ok(out)
    }

    fn locate(&self, d: &Descriptor) -> String {
        let path = self.blob_path(d);
        self.client.lock().map_or(path.clone(), |c| c.0.url(&path))
    }
}
