//! Pushing one image (a manifest, or an index and its manifests) from an OCI
//! layout, following the distribution spec's push flow: for each blob,
//! `HEAD` it, else mount it from another repository, else `POST` an upload
//! and `PUT` the file, streamed; then `PUT` each manifest, children first,
//! as the exact bytes the layout holds.
//!
//! Everything the image needs is checked on disk before the first request,
//! so a broken layout fails before anything is sent.
//!
//! What the registry answers is checked, not just its status: a push is
//! reported only if the registry confirmed each step as the spec has it,
//! so a server that answers anything with `200 OK` (a web server, a
//! captive portal, a broken proxy) fails the push instead of "pushing":
//!
//! * a `HEAD` that says a blob is there must give its size
//!   (`Content-Length`) or digest (`Docker-Content-Digest`), and each one
//!   given must be the blob's; with neither, the blob is uploaded anyway;
//! * an upload is done at `201 Created` only (distribution spec, "Pushing
//!   a blob monolithically"), with the blob's digest if one is given;
//! * a manifest is stored at `201 Created`, or at `200`/`202` (which some
//!   registries answer) only with a `Docker-Content-Digest` to show for
//!   it, and any digest given must be the manifest's.
//!
//! The artifacts the layout attaches to the image (its SBOM and
//! provenance) follow it (see [`super::referrers`]).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::RegistryError;
use super::options::RegistryOptions;
use super::reference::{DEFAULT_TAG, Reference};
use super::transport::{Body, Client, Http, Method, Request, Response, printable, with_query};
use crate::digest::Digest;
use crate::oci::layout::INDEX_FILE;
use crate::oci::{Descriptor, Layout, MediaType, OciError, from_oci_digest};
use crate::source::{Document, OciSource, Referrer, SourceError, select};

/// Blob uploads are raw bytes (distribution spec, "Pushing a blob
/// monolithically").
const BLOB_CONTENT_TYPE: &str = "application/octet-stream";

/// A wrong digest from a registry is quoted up to this long: a sha512
/// digest is 135 characters.
const MAX_DIGEST: usize = 140;

/// How to push: how to reach the registry, and where blobs may be
/// mounted from.
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    pub registry: RegistryOptions,
    /// A repository on the same registry that may hold the blobs already:
    /// they are mounted from it instead of uploaded.
    pub mount_from: Option<String>,
}

/// What was pushed. Counts only what the registry confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushReport {
    /// Where the image is now: the reference with its tag and the digest.
    pub reference: Reference,
    pub digest: Digest,
    pub media_type: String,
    /// Manifests stored: 1, or an index and its children.
    pub manifests: usize,
    pub blobs_uploaded: usize,
    pub blobs_mounted: usize,
    /// Blobs the registry already had.
    pub blobs_skipped: usize,
    pub bytes_uploaded: u64,
    /// Artifacts attached to the image (SBOM, provenance) pushed with it.
    pub referrers: usize,
    /// The `sha256-<hex>` tag listing them, when the registry has no
    /// referrers API.
    pub referrers_tag: Option<String>,
    /// Their blobs uploaded (the counts above are the image's own).
    pub referrer_blobs_uploaded: usize,
}

/// Progress, for a progress bar.
#[derive(Debug, Clone, Copy)]
pub enum PushEvent<'a> {
    /// Blob `index` of `total` (from 1) is being checked and sent.
    Blob {
        digest: &'a Digest,
        size: u64,
        index: usize,
        total: usize,
    },
    BlobDone {
        digest: &'a Digest,
        outcome: BlobOutcome,
    },
    Manifest {
        digest: &'a Digest,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobOutcome {
    Uploaded,
    Mounted,
    Present,
}

/// Opens the layout to push from.
pub fn open_layout(dir: &Path) -> Result<Layout, RegistryError> {
    Layout::open(dir).map_err(|e| match e {
        OciError::NotALayout { path } => RegistryError::NotALayout { path },
        e => e.into(),
    })
}

/// Pushes the image `ref_name` names in `layout` (or its only image, when `ref_name`
/// is `None`) to `reference`. The reference's tag is the one pushed
/// (`latest` if it has none); a reference with only a digest pushes by
/// digest, and one with a digest must match the image.
pub fn push(
    layout: &Layout,
    ref_name: Option<&str>,
    reference: &Reference,
    opts: &PushOptions,
) -> Result<PushReport, RegistryError> {
    push_with_events(layout, ref_name, reference, opts, &|_| {})
}

/// [`push()`], reporting progress to `on_event`.
pub fn push_with_events(
    layout: &Layout,
    ref_name: Option<&str>,
    reference: &Reference,
    opts: &PushOptions,
    on_event: &dyn Fn(PushEvent),
) -> Result<PushReport, RegistryError> {
    opts.registry.check()?;
    let top = select(layout, ref_name)?;
    let uploads = uploads(layout, &top)?;
    if let Some(pinned) = reference.digest()
        && *pinned != uploads.top().digest
    {
        return Err(RegistryError::PinnedDigest {
            reference: reference.to_string(),
            pinned: *pinned,
            image: uploads.top().digest,
        });
    }
    let mut client = opts.registry.connect(reference)?;
    send(
        &mut client,
        &uploads,
        reference,
        opts.mount_from.as_deref(),
        on_event,
    )
}

/// The manifest descriptor to push: the one `ref_name` names, or the only image
/// in the layout (entries that differ only in their `ref.name` are one image), by the
/// reader's one rule (source::select::by_tag).
fn select(layout: &Layout, ref_name: Option<&str>) -> Result<Descriptor, RegistryError> {
    let index = layout.read_index()?;
    let name = layout.root().display().to_string();
    select::by_tag(&index, ref_name, &name).map_err(|e| match e {
        SourceError::TagNotFound { tag, tags, .. } => RegistryError::TagNotFound {
            layout: layout.root().to_path_buf(),
            tag,
            available: tags,
        },
        SourceError::ChooseTag { .. } | SourceError::NoImage { .. } => {
            let images: BTreeSet<String> = index
                .manifests()
                .iter()
                .map(|d| d.digest().to_string())
                .collect();
            RegistryError::TagRequired {
                layout: layout.root().to_path_buf(),
                count: images.len(),
                tags: select::tags(&index),
            }
        }
        e => RegistryError::Source(Box::new(e)),
    })
}

/// A blob to send, checked on disk.
#[derive(Debug)]
struct Blob {
    digest: Digest,
    size: u64,
    path: PathBuf,
}

/// A manifest to send, as the layout's exact bytes.
#[derive(Debug)]
pub(super) struct Manifest {
    pub(super) digest: Digest,
    pub(super) media_type: String,
    pub(super) bytes: Vec<u8>,
}

/// Everything one push sends, in order: blobs (each once), then
/// manifests, children before the index that lists them.
#[derive(Debug)]
struct Uploads {
    blobs: Vec<Blob>,
    manifests: Vec<Manifest>,
    /// The artifacts attached to the image (oci::referrers), sent after
    /// it, with their descriptors; their blobs are in `blobs`, after the
    /// image's first `image_blobs`.
    referrers: Vec<(Manifest, Descriptor)>,
    /// Those of the manifests of a multi-platform index, by manifest:
    /// each listed under its own subject.
    child_referrers: Vec<(Digest, Vec<(Manifest, Descriptor)>)>,
    image_blobs: usize,
}

impl Uploads {
    fn top(&self) -> &Manifest {
        // `uploads` always lists the top manifest last.
        &self.manifests[self.manifests.len() - 1]
    }
}

fn uploads(layout: &Layout, top: &Descriptor) -> Result<Uploads, RegistryError> {
    let entry = top;
    let mut uploads = Uploads {
        blobs: Vec::new(),
        manifests: Vec::new(),
        referrers: Vec::new(),
        child_referrers: Vec::new(),
        image_blobs: 0,
    };
    let mut seen = BTreeSet::new();
    add_manifest(layout, top, &mut uploads, &mut seen)?;
    uploads.image_blobs = uploads.blobs.len();
    let digest = from_oci_digest(entry.digest(), &layout.root().join(INDEX_FILE))?;
    for (subject, r) in attached(layout, entry, &digest)? {
        let mut own = Uploads {
            blobs: Vec::new(),
            manifests: Vec::new(),
            referrers: Vec::new(),
            child_referrers: Vec::new(),
            image_blobs: 0,
        };
        add_manifest(layout, &r.manifest, &mut own, &mut seen)?;
        uploads.blobs.extend(own.blobs);
        let sent = own.manifests.into_iter().map(|m| (m, r.manifest.clone()));
        if subject == digest {
            uploads.referrers.extend(sent);
        } else {
            match uploads
                .child_referrers
                .iter_mut()
                .find(|(s, _)| *s == subject)
            {
                Some((_, list)) => list.extend(sent),
                None => uploads.child_referrers.push((subject, sent.collect())),
            }
        }
    }
    Ok(uploads)
}

/// The artifacts attached to `entry` (the `index.json` entry pushed) and,
/// when it is a multi-platform index mkimage wrote, to each of its
/// manifests (their descriptors in the index name their referrers, as
/// their own `index.json` entries would).
fn attached(
    layout: &Layout,
    entry: &Descriptor,
    digest: &Digest,
) -> Result<Vec<(Digest, Referrer)>, RegistryError> {
    // The image reader lists them, by its one rule of what a referrer is.
    let source = OciSource::layout(&layout.root().display().to_string(), layout.root(), None)
        .map_err(|e| RegistryError::Source(Box::new(e)))?;
    let named = |entry: &Descriptor| {
        source
            .named_referrers(entry)
            .map_err(|e| RegistryError::Source(Box::new(e)))
    };
    let mut out: Vec<_> = named(entry)?.into_iter().map(|r| (*digest, r)).collect();
    if *entry.media_type() == oci_spec::image::MediaType::ImageIndex {
        let bytes = layout.read_blob(digest)?;
        let index: oci_spec::image::ImageIndex =
            serde_json::from_slice(&bytes).map_err(|e| RegistryError::Manifest {
                digest: *digest,
                reason: format!("not an image index: {e}"),
            })?;
        for child in index.manifests() {
            let subject = from_oci_digest(child.digest(), &layout.root().join(INDEX_FILE))?;
            out.extend(named(child)?.into_iter().map(|r| (subject, r)));
        }
    }
    Ok(out)
}

/// The manifest or index `desc` describes, read (checked against its
/// digest and size) and parsed by the image reader, and what it names.
fn add_manifest(
    layout: &Layout,
    desc: &Descriptor,
    uploads: &mut Uploads,
    seen: &mut BTreeSet<Digest>,
) -> Result<(), RegistryError> {
    let digest = from_oci_digest(desc.digest(), &layout.root().join(INDEX_FILE))?;
    let bytes = layout.read_blob(&digest)?;
    if bytes.len() as u64 != desc.size() {
        return Err(OciError::SizeMismatch {
            digest,
            expected: desc.size(),
            found: bytes.len() as u64,
        }
        .into());
    }
    let location = layout.blob_path(&digest).display().to_string();
    let document = Document::parse(&bytes, Some(desc.media_type()), &location).map_err(|e| {
        RegistryError::Manifest {
            digest,
            reason: format!("not a manifest or index: {e}"),
        }
    })?;
    // The document's own media type is what a registry checks the
    // Content-Type against; the descriptor's stands in when it has none.
    let (own, blobs): (Option<MediaType>, Vec<&Descriptor>) = match &document {
        Document::Index(index) => {
            for child in index.manifests() {
                add_manifest(layout, child, uploads, seen)?;
            }
            (index.media_type().clone(), Vec::new())
        }
        Document::Manifest(m) => (
            m.media_type().clone(),
            std::iter::once(m.config()).chain(m.layers()).collect(),
        ),
    };
    for blob in blobs {
        let d = from_oci_digest(blob.digest(), Path::new(&location)).map_err(|e| {
            RegistryError::Manifest {
                digest,
                reason: e.to_string(),
            }
        })?;
        layout.check_blob(&d, blob.size())?;
        if seen.insert(d) {
            uploads.blobs.push(Blob {
                digest: d,
                size: blob.size(),
                path: layout.blob_path(&d),
            });
        }
    }
    let media_type = own.unwrap_or_else(|| desc.media_type().clone()).to_string();
    if media_type.is_empty() {
        return Err(RegistryError::Manifest {
            digest,
            reason: "no media type, in its descriptor or itself".into(),
        });
    }
    if !uploads.manifests.iter().any(|m| m.digest == digest) {
        uploads.manifests.push(Manifest {
            digest,
            media_type,
            bytes,
        });
    }
    Ok(())
}

/// The network half: everything in `uploads`, to `reference`'s repository.
fn send<H: Http>(
    client: &mut Client<H>,
    uploads: &Uploads,
    reference: &Reference,
    mount_from: Option<&str>,
    on_event: &dyn Fn(PushEvent),
) -> Result<PushReport, RegistryError> {
    let repo = reference.repository();
    let mut scope = vec![format!("repository:{repo}:pull,push")];
    let mount_from = mount_from.filter(|m| *m != repo);
    if let Some(from) = mount_from {
        scope.push(format!("repository:{from}:pull"));
    }
    client.ping()?;

    let top = uploads.top();
    // The top manifest goes under its tag, unless the reference names only
    // a digest (which `push` checked is the top's).
    let tag = match (reference.tag(), reference.digest()) {
        (None, Some(_)) => None,
        (tag, _) => Some(tag.unwrap_or(DEFAULT_TAG)),
    };
    let mut report = PushReport {
        reference: match tag {
            Some(tag) => reference.with_tag(tag).with_digest(top.digest),
            None => reference.clone(),
        },
        digest: top.digest,
        media_type: top.media_type.clone(),
        manifests: 0,
        blobs_uploaded: 0,
        blobs_mounted: 0,
        blobs_skipped: 0,
        bytes_uploaded: 0,
        referrers: 0,
        referrers_tag: None,
        referrer_blobs_uploaded: 0,
    };
    let total = uploads.blobs.len();
    for (i, blob) in uploads.blobs.iter().enumerate() {
        on_event(PushEvent::Blob {
            digest: &blob.digest,
            size: blob.size,
            index: i + 1,
            total,
        });
        let outcome = send_blob(client, repo, blob, mount_from, &scope)?;
        if i >= uploads.image_blobs {
            // The SBOM's and provenance's blobs: reported with them.
            report.referrer_blobs_uploaded += usize::from(outcome == BlobOutcome::Uploaded);
            on_event(PushEvent::BlobDone {
                digest: &blob.digest,
                outcome,
            });
            continue;
        }
        match outcome {
            BlobOutcome::Uploaded => {
                report.blobs_uploaded += 1;
                report.bytes_uploaded += blob.size;
            }
            BlobOutcome::Mounted => report.blobs_mounted += 1,
            BlobOutcome::Present => report.blobs_skipped += 1,
        }
        on_event(PushEvent::BlobDone {
            digest: &blob.digest,
            outcome,
        });
    }
    // Children go by digest.
    let top_target = tag.map_or_else(|| top.digest.to_string(), str::to_owned);
    for m in &uploads.manifests {
        on_event(PushEvent::Manifest { digest: &m.digest });
        let target = if m.digest == top.digest {
            top_target.clone()
        } else {
            m.digest.to_string()
        };
        let path = format!("/v2/{repo}/manifests/{target}");
        let req = Request::new(Method::Put, client.url(&path))
            .header("Content-Type", &m.media_type)
            .body(Body::Bytes(m.bytes.clone()));
        let resp = client.send(&req, &scope)?;
        expect(client, &resp, &[200, 201, 202], "PUT", &path)?;
        let what = format!("manifest {path}");
        let confirmed = check_digest(client, &resp, &m.digest, &what)?;
        if resp.status != 201 && !confirmed {
            return Err(RegistryError::Protocol {
                registry: client.registry().to_owned(),
                message: format!(
                    "PUT {path} answered HTTP {} with no Docker-Content-Digest, so nothing \
                     shows the manifest was stored (a registry answers 201 Created)",
                    resp.status
                ),
            });
        }
        report.manifests += 1;
    }
    let pushed = super::referrers::send(client, repo, &scope, &top.digest, &uploads.referrers)?;
    report.referrers = pushed.count;
    report.referrers_tag = pushed.tag;
    for (subject, list) in &uploads.child_referrers {
        report.referrers += super::referrers::send(client, repo, &scope, subject, list)?.count;
    }
    Ok(report)
}

/// One blob: already there, mounted, or uploaded.
fn send_blob<H: Http>(
    client: &mut Client<H>,
    repo: &str,
    blob: &Blob,
    mount_from: Option<&str>,
    scope: &[String],
) -> Result<BlobOutcome, RegistryError> {
    let digest = blob.digest.to_string();
    let path = format!("/v2/{repo}/blobs/{digest}");
    let resp = client.send(&Request::new(Method::Head, client.url(&path)), scope)?;
    match resp.status {
        200 if is_present(client, &resp, blob, &path)? => return Ok(BlobOutcome::Present),
        200 | 404 => {}
        _ => expect(client, &resp, &[], "HEAD", &path)?,
    }

    let uploads = format!("/v2/{repo}/blobs/uploads/");
    let start = match mount_from {
        Some(from) => with_query(&client.url(&uploads), &[("mount", &digest), ("from", from)]),
        None => client.url(&uploads),
    };
    let resp = client.send(&Request::new(Method::Post, &start), scope)?;
    if mount_from.is_some() && resp.status == 201 {
        check_digest(client, &resp, &blob.digest, &format!("blob {digest}"))?;
        return Ok(BlobOutcome::Mounted);
    }
    // 202: a mount that did not happen starts an upload, as a POST would.
    expect(client, &resp, &[202], "POST", &uploads)?;
    let location = resp
        .header("location")
        .ok_or_else(|| RegistryError::Protocol {
            registry: client.registry().to_owned(),
            message: format!("POST {uploads} answered 202 with no Location"),
        })?;
    let url = with_query(&client.resolve(location), &[("digest", &digest)]);
    let req = Request::new(Method::Put, url)
        .header("Content-Type", BLOB_CONTENT_TYPE)
        .body(Body::File {
            path: blob.path.clone(),
            size: blob.size,
        });
    let resp = client.send(&req, scope)?;
    let upload_path = location.split('?').next().unwrap_or(location);
    expect(client, &resp, &[201], "PUT", upload_path)?;
    check_digest(client, &resp, &blob.digest, &format!("blob {digest}"))?;
    Ok(BlobOutcome::Uploaded)
}

/// Whether a `200` to `HEAD` shows the registry has `blob`: its
/// `Content-Length` and `Docker-Content-Digest`, those it gives, must be
/// the blob's (distribution spec, "Checking if content exists"), and a
/// mismatch is an error. With neither, nothing is shown and the blob is
/// uploaded.
fn is_present<H: Http>(
    client: &Client<H>,
    resp: &Response,
    blob: &Blob,
    path: &str,
) -> Result<bool, RegistryError> {
    let length = resp.header("content-length").map(str::trim);
    if let Some(length) = length
        && length.parse::<u64>().ok() != Some(blob.size)
    {
        return Err(RegistryError::Protocol {
            registry: client.registry().to_owned(),
            message: format!(
                "HEAD {path} says the blob is there with Content-Length {length:?}, but it is \
                 {} bytes: the server does not answer as a registry",
                blob.size
            ),
        });
    }
    let digest = check_digest(client, resp, &blob.digest, &format!("blob {}", blob.digest))?;
    Ok(digest || length.is_some())
}

/// An error unless `resp` has one of the `ok` statuses.
pub(super) fn expect<H: Http>(
    client: &Client<H>,
    resp: &Response,
    ok: &[u16],
    method: &str,
    path: &str,
) -> Result<(), RegistryError> {
    if ok.contains(&resp.status) {
        return Ok(());
    }
    Err(RegistryError::Status {
        registry: client.registry().to_owned(),
        action: format!("{method} {path}"),
        status: resp.status,
        message: resp.message(),
    })
}

/// The registry's `Docker-Content-Digest`, when it sends one, must be the
/// digest of what we sent. Whether it sent one.
pub(super) fn check_digest<H: Http>(
    client: &Client<H>,
    resp: &Response,
    expected: &Digest,
    what: &str,
) -> Result<bool, RegistryError> {
    match resp.header("docker-content-digest").map(str::trim) {
        Some(found) if found != expected.to_string() => Err(RegistryError::DigestMismatch {
            registry: client.registry().to_owned(),
            what: what.to_owned(),
            expected: *expected,
            found: printable(found, MAX_DIGEST),
        }),
        Some(_) => Ok(true),
        None => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::{BTreeMap, HashMap};

    use std::time::Duration;

    use super::*;
    use crate::oci::MediaType;
    use crate::reference::ReferenceError;
    use crate::registry::timeouts::Timeouts;
    use crate::registry::transport::{CredentialSource, RetryPolicy};
    use crate::registry::transport::{HttpError, Response};

    /// Stored manifests by (repository, tag or digest): media type, bytes.
    type Manifests = BTreeMap<(String, String), (String, Vec<u8>)>;

    /// An in-memory registry speaking enough of the distribution API for a
    /// push, with switches for misbehaviour.
    #[derive(Default)]
    struct Fake {
        /// Blobs by repository.
        blobs: RefCell<BTreeMap<String, BTreeMap<Digest, Vec<u8>>>>,
        manifests: RefCell<Manifests>,
        uploads: RefCell<HashMap<String, String>>,
        log: RefCell<Vec<String>>,
        /// Answer manifest PUTs with this Docker-Content-Digest.
        lie_about_digest: bool,
        /// Relative upload Locations, with a query of their own.
        relative_locations: bool,
        /// Rewrites every answer: a registry that misbehaves.
        tamper: Option<fn(&Request, Response) -> Response>,
        /// Answer a manifest with a subject with `OCI-Subject`, as a
        /// registry with the referrers API does.
        referrers_api: bool,
    }

    impl Fake {
        fn count(&self, prefix: &str) -> usize {
            self.log
                .borrow()
                .iter()
                .filter(|l| l.starts_with(prefix))
                .count()
        }
    }

    fn answer(status: u16, headers: &[(&str, String)]) -> Result<Response, HttpError> {
        Ok(Response {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            body: Vec::new(),
        })
    }

    impl Http for &Fake {
        fn send(&self, req: &Request, _: Duration) -> Result<Response, HttpError> {
            let answer = self.answer(req)?;
            Ok(match self.tamper {
                Some(tamper) => tamper(req, answer),
                None => answer,
            })
        }
    }

    impl Fake {
        fn answer(&self, req: &Request) -> Result<Response, HttpError> {
            let rest = req.url.strip_prefix("https://reg.example").unwrap();
            let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
            let q: HashMap<&str, String> = query
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k, v.replace("%3A", ":").replace("%2F", "/")))
                .collect();
            self.log
                .borrow_mut()
                .push(format!("{} {path}", req.method.as_str()));
            if path == "/v2/" {
                return answer(200, &[]);
            }
            let p = path.strip_prefix("/v2/").unwrap();
            if let Some((repo, d)) = p.split_once("/blobs/")
                && req.method == Method::Head
            {
                let d: Digest = d.parse().unwrap();
                let size = self
                    .blobs
                    .borrow()
                    .get(repo)
                    .and_then(|b| b.get(&d).map(Vec::len));
                return match size {
                    Some(size) => answer(
                        200,
                        &[
                            ("content-length", size.to_string()),
                            ("docker-content-digest", d.to_string()),
                        ],
                    ),
                    None => answer(404, &[]),
                };
            }
            if let Some(repo) = p.strip_suffix("/blobs/uploads/") {
                if let (Some(d), Some(from)) = (q.get("mount"), q.get("from")) {
                    let d: Digest = d.parse().unwrap();
                    let data = self
                        .blobs
                        .borrow()
                        .get(from)
                        .and_then(|b| b.get(&d).cloned());
                    if let Some(data) = data {
                        self.blobs
                            .borrow_mut()
                            .entry(repo.to_owned())
                            .or_default()
                            .insert(d, data);
                        return answer(201, &[("docker-content-digest", d.to_string())]);
                    }
                }
                let id = format!("u{}", self.uploads.borrow().len());
                self.uploads
                    .borrow_mut()
                    .insert(id.clone(), repo.to_owned());
                let location = if self.relative_locations {
                    format!("/v2/{repo}/blobs/uploads/{id}?_state=abc")
                } else {
                    format!("https://reg.example/v2/{repo}/blobs/uploads/{id}")
                };
                return answer(202, &[("location", location)]);
            }
            if let Some((repo, id)) = p.split_once("/blobs/uploads/") {
                assert_eq!(req.method, Method::Put);
                assert_eq!(
                    self.uploads.borrow().get(id).map(String::as_str),
                    Some(repo)
                );
                if self.relative_locations {
                    assert_eq!(q.get("_state").map(String::as_str), Some("abc"));
                }
                let Body::File { path, size } = &req.body else {
                    panic!("blob bodies are streamed from files");
                };
                let data = std::fs::read(path).unwrap();
                assert_eq!(data.len() as u64, *size);
                let d = Digest::of(&data);
                if q.get("digest") != Some(&d.to_string()) {
                    return Ok(Response {
                        status: 400,
                        headers: Vec::new(),
                        body: br#"{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match uploaded content"}]}"#.to_vec(),
                    });
                }
                self.blobs
                    .borrow_mut()
                    .entry(repo.to_owned())
                    .or_default()
                    .insert(d, data);
                return answer(201, &[("docker-content-digest", d.to_string())]);
            }
            if let Some((repo, reference)) = p.split_once("/manifests/")
                && req.method == Method::Get
            {
                return match self
                    .manifests
                    .borrow()
                    .get(&(repo.to_owned(), reference.to_owned()))
                {
                    Some((ct, bytes)) => Ok(Response {
                        status: 200,
                        headers: vec![("content-type".into(), ct.clone())],
                        body: bytes.clone(),
                    }),
                    None => answer(404, &[]),
                };
            }
            if let Some((repo, reference)) = p.split_once("/manifests/") {
                let Body::Bytes(bytes) = &req.body else {
                    panic!("manifests are sent as bytes");
                };
                let shape: serde_json::Value = serde_json::from_slice(bytes).unwrap();
                let named = |key: &str| -> Vec<String> {
                    let v = &shape[key];
                    let list = v.as_array().cloned().unwrap_or_else(|| {
                        if v.is_object() {
                            vec![v.clone()]
                        } else {
                            Vec::new()
                        }
                    });
                    list.iter()
                        .map(|d| d["digest"].as_str().unwrap().to_owned())
                        .collect()
                };
                for b in named("config").iter().chain(&named("layers")) {
                    let d: Digest = b.parse().unwrap();
                    if !self
                        .blobs
                        .borrow()
                        .get(repo)
                        .is_some_and(|m| m.contains_key(&d))
                    {
                        return answer(400, &[]);
                    }
                }
                for m in named("manifests") {
                    if !self
                        .manifests
                        .borrow()
                        .contains_key(&(repo.to_owned(), m.clone()))
                    {
                        return answer(400, &[]);
                    }
                }
                let d = Digest::of(bytes);
                let ct = req.header_value("content-type").unwrap().to_owned();
                for key in [reference.to_owned(), d.to_string()] {
                    self.manifests
                        .borrow_mut()
                        .insert((repo.to_owned(), key), (ct.clone(), bytes.clone()));
                }
                let reported = if self.lie_about_digest {
                    Digest::of(b"lie").to_string()
                } else {
                    d.to_string()
                };
                let subject = serde_json::from_slice::<serde_json::Value>(bytes).unwrap()
                    ["subject"]["digest"]
                    .as_str()
                    .map(str::to_owned);
                return match subject.filter(|_| self.referrers_api) {
                    Some(s) => answer(
                        201,
                        &[("docker-content-digest", reported), ("oci-subject", s)],
                    ),
                    None => answer(201, &[("docker-content-digest", reported)]),
                };
            }
            answer(404, &[])
        }
    }

    fn client(fake: &Fake) -> Client<&Fake> {
        Client::new(
            fake,
            "reg.example",
            "https://reg.example",
            CredentialSource::None,
            RetryPolicy {
                delays: Vec::new(),
                sleep: |_| {},
                ..RetryPolicy::default()
            },
            Timeouts::default(),
        )
    }

    /// A layout holding an image "app:v1" (config + 2 layers) and, when
    /// `index` is set, an index "multi" over it and a second image sharing
    /// one layer.
    fn layout(dir: &Path, index: bool) -> (Layout, Descriptor) {
        let layout = Layout::open_or_create(dir).unwrap();
        let blob = |data: &[u8], mt: MediaType| layout.put_blob(mt, data).unwrap();
        let l1 = blob(b"layer one", MediaType::ImageLayerGzip);
        let l2 = blob(b"layer two", MediaType::ImageLayerGzip);
        let manifest = |config: &[u8], layers: &[&Descriptor]| {
            let c = blob(config, MediaType::ImageConfig);
            let layers: Vec<String> = layers
                .iter()
                .map(|l| serde_json::to_string(l).unwrap())
                .collect();
            let json = format!(
                r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[{}]}}"#,
                serde_json::to_string(&c).unwrap(),
                layers.join(",")
            );
            blob(json.as_bytes(), MediaType::ImageManifest)
        };
        let m1 = manifest(br#"{"architecture":"amd64"}"#, &[&l1, &l2]);
        layout.set_references(&m1, &["app:v1".to_owned()]).unwrap();
        if !index {
            return (layout, m1);
        }
        let m2 = manifest(br#"{"architecture":"arm64"}"#, &[&l1]);
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{},{}]}}"#,
            serde_json::to_string(&m1).unwrap(),
            serde_json::to_string(&m2).unwrap()
        );
        let idx = blob(json.as_bytes(), MediaType::ImageIndex);
        layout.set_references(&idx, &["multi".to_owned()]).unwrap();
        (layout, idx)
    }

    /// `layout`'s app:v1 with an SBOM and a provenance attached.
    fn with_referrers(dir: &Path) -> (Layout, Descriptor) {
        let (layout, m) = layout(dir, false);
        let artifact = |t: &str, b: &[u8]| crate::oci::referrers::Artifact {
            artifact_type: t.into(),
            bytes: b.to_vec(),
        };
        crate::oci::referrers::tag_with_referrers(
            &layout,
            &m,
            &[
                artifact("application/spdx+json", b"{\"spdx\":1}"),
                artifact("a/prov", b"p"),
            ],
            &["app:v1".to_owned()],
        )
        .unwrap();
        (layout, m)
    }

    #[test]
    fn referrers_follow_the_image_under_the_fallback_tag() {
        let tmp = tempfile::tempdir().unwrap();
        let (layout, m) = with_referrers(tmp.path());
        let fake = Fake::default();
        let subject = digest_of(&m);
        let tag = format!("sha256-{}", subject.hex());
        // Someone else's referrer is already listed: it stays.
        let sig = Digest::of(b"{}");
        fake.manifests.borrow_mut().insert(
            ("team/app".into(), sig.to_string()),
            (
                "application/vnd.oci.image.manifest.v1+json".into(),
                b"{}".to_vec(),
            ),
        );
        let theirs = format!(
            r#"{{"manifests":[{{"artifactType":"x/sig","digest":"{sig}","mediaType":"application/vnd.oci.image.manifest.v1+json","size":2}}],"mediaType":"application/vnd.oci.image.index.v1+json","schemaVersion":2}}"#
        );
        fake.manifests.borrow_mut().insert(
            ("team/app".into(), tag.clone()),
            (
                "application/vnd.oci.image.index.v1+json".into(),
                theirs.as_bytes().to_vec(),
            ),
        );
        let r = push_to(&fake, &layout, None, "reg.example/team/app:v1");
        assert_eq!(
            (r.referrers, r.referrers_tag.as_deref()),
            (2, Some(tag.as_str()))
        );
        // The empty config and both artifacts' blobs went up too, counted
        // apart from the image's.
        assert_eq!((r.blobs_uploaded, r.referrer_blobs_uploaded), (3, 3));
        let stored = fake.manifests.borrow();
        let (ct, index) = &stored[&("team/app".to_owned(), tag.clone())];
        assert_eq!(ct, "application/vnd.oci.image.index.v1+json");
        let index: serde_json::Value = serde_json::from_slice(index).unwrap();
        let types: Vec<&str> = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["artifactType"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["x/sig", "a/prov", "application/spdx+json"]);
        for d in &index["manifests"].as_array().unwrap()[1..] {
            let (_, bytes) = &stored[&(
                "team/app".to_owned(),
                d["digest"].as_str().unwrap().to_owned(),
            )];
            let artifact: serde_json::Value = serde_json::from_slice(bytes).unwrap();
            assert_eq!(artifact["subject"]["digest"], subject.to_string());
        }
        drop(stored);
        // Pushed again: the index already lists them, so it is not put.
        let puts = fake.count(&format!("PUT /v2/team/app/manifests/{tag}"));
        push_to(&fake, &layout, None, "reg.example/team/app:v1");
        assert_eq!(
            fake.count(&format!("PUT /v2/team/app/manifests/{tag}")),
            puts
        );
    }

    #[test]
    fn a_registry_with_the_referrers_api_needs_no_tag() {
        let tmp = tempfile::tempdir().unwrap();
        let (layout, m) = with_referrers(tmp.path());
        let fake = Fake {
            referrers_api: true,
            ..Fake::default()
        };
        let r = push_to(&fake, &layout, None, "reg.example/team/app:v1");
        assert_eq!((r.referrers, r.referrers_tag), (2, None));
        let tag = format!("sha256-{}", digest_of(&m).hex());
        assert_eq!(fake.count(&format!("GET /v2/team/app/manifests/{tag}")), 0);
    }

    fn digest_of(d: &Descriptor) -> Digest {
        d.digest().to_string().parse().unwrap()
    }

    fn push_to(fake: &Fake, layout: &Layout, ref_name: Option<&str>, r: &str) -> PushReport {
        push_mounting(fake, layout, ref_name, r, None).unwrap()
    }

    fn push_mounting(
        fake: &Fake,
        layout: &Layout,
        ref_name: Option<&str>,
        r: &str,
        from: Option<&str>,
    ) -> Result<PushReport, RegistryError> {
        let top = select(layout, ref_name)?;
        let uploads = uploads(layout, &top)?;
        send(
            &mut client(fake),
            &uploads,
            &Reference::parse(r).unwrap(),
            from,
            &|_| {},
        )
    }

    #[test]
    fn pushes_blobs_then_manifest_and_skips_what_is_there() {
        let tmp = tempfile::tempdir().unwrap();
        let (layout, m) = layout(tmp.path(), false);
        let fake = Fake::default();
        let r = push_to(&fake, &layout, None, "reg.example/team/app:v1");
        let digest = digest_of(&m);
        assert_eq!(r.digest, digest);
        assert_eq!(
            r.reference.to_string(),
            format!("reg.example/team/app:v1@{digest}")
        );
        assert_eq!(r.media_type, "application/vnd.oci.image.manifest.v1+json");
        assert_eq!(
            (
                r.manifests,
                r.blobs_uploaded,
                r.blobs_mounted,
                r.blobs_skipped
            ),
            (1, 3, 0, 0)
        );
        assert_eq!(r.bytes_uploaded, 9 + 9 + 24);
        let stored = fake.manifests.borrow();
        let (ct, bytes) = &stored[&("team/app".to_owned(), "v1".to_owned())];
        assert_eq!(ct, "application/vnd.oci.image.manifest.v1+json");
        assert_eq!(*bytes, layout.read_blob(&digest).unwrap(), "exact bytes");
        drop(stored);
        assert_eq!(fake.count("PUT /v2/team/app/blobs/uploads/"), 3);
        assert_eq!(
            fake.log.borrow().first().map(String::as_str),
            Some("GET /v2/")
        );
        assert_eq!(
            fake.log.borrow().last().map(String::as_str),
            Some("PUT /v2/team/app/manifests/v1")
        );

        // Again: nothing uploaded, the manifest put again.
        let r = push_to(&fake, &layout, Some("app:v1"), "reg.example/team/app");
        assert_eq!(
            (r.blobs_uploaded, r.blobs_skipped, r.bytes_uploaded),
            (0, 3, 0)
        );
        assert_eq!(r.reference.tag(), Some("latest"));
        assert_eq!(fake.count("PUT /v2/team/app/blobs/uploads/"), 3);
        assert_eq!(fake.count("POST"), 3);
    }

    #[test]
    fn mounts_from_another_repository() {
        let tmp = tempfile::tempdir().unwrap();
        let (layout, _) = layout(tmp.path(), false);
        let fake = Fake::default();
        push_to(&fake, &layout, None, "reg.example/base:1");
        let r = push_mounting(&fake, &layout, None, "reg.example/other:1", Some("base")).unwrap();
        assert_eq!(
            (r.blobs_uploaded, r.blobs_mounted, r.blobs_skipped),
            (0, 3, 0)
        );
        assert_eq!(fake.count("PUT /v2/other/blobs"), 0);
        // A mount the registry cannot do falls back to an upload.
        let r =
            push_mounting(&fake, &layout, None, "reg.example/third:1", Some("nowhere")).unwrap();
        assert_eq!((r.blobs_uploaded, r.blobs_mounted), (3, 0));
    }

    #[test]
    fn index_children_first_shared_blobs_once() {
        let tmp = tempfile::tempdir().unwrap();
        let (layout, idx) = layout(tmp.path(), true);
        let fake = Fake::default();
        let r = push_to(&fake, &layout, Some("multi"), "reg.example/app");
        assert_eq!(r.digest, digest_of(&idx));
        assert_eq!(r.media_type, "application/vnd.oci.image.index.v1+json");
        // 2 layers + 2 configs; 2 manifests + the index.
        assert_eq!((r.blobs_uploaded, r.manifests), (4, 3));
        let puts: Vec<String> = fake
            .log
            .borrow()
            .iter()
            .filter(|l| l.starts_with("PUT /v2/app/manifests/"))
            .cloned()
            .collect();
        assert_eq!(puts.len(), 3);
        assert!(puts[0].contains("sha256:") && puts[1].contains("sha256:"));
        assert_eq!(puts[2], "PUT /v2/app/manifests/latest");
    }

    #[test]
    fn by_digest_and_pinned_digests() {
        let tmp = tempfile::tempdir().unwrap();
        let (layout, m) = layout(tmp.path(), false);
        let d = digest_of(&m);
        let fake = Fake::default();
        let r = push_to(&fake, &layout, None, &format!("reg.example/app@{d}"));
        assert_eq!(r.reference.to_string(), format!("reg.example/app@{d}"));
        assert_eq!(
            fake.log.borrow().last().cloned(),
            Some(format!("PUT /v2/app/manifests/{d}"))
        );
        let other = Digest::of(b"other");
        let err = push(
            &layout,
            None,
            &Reference::parse(&format!("reg.example/app:v1@{other}")).unwrap(),
            &PushOptions::default(),
        )
        .unwrap_err();
        assert!(
            matches!(&err, RegistryError::PinnedDigest { pinned, image, .. }
                if *pinned == other && *image == d),
            "{err:?}"
        );
    }

    #[test]
    fn relative_locations_and_verified_digests() {
        let tmp = tempfile::tempdir().unwrap();
        let (layout, _) = layout(tmp.path(), false);
        let fake = Fake {
            relative_locations: true,
            ..Fake::default()
        };
        assert_eq!(
            push_to(&fake, &layout, None, "reg.example/app").blobs_uploaded,
            3
        );

        let fake = Fake {
            lie_about_digest: true,
            ..Fake::default()
        };
        let err = push_mounting(&fake, &layout, None, "reg.example/app", None).unwrap_err();
        assert!(
            matches!(&err, RegistryError::DigestMismatch { found, .. }
                if *found == Digest::of(b"lie").to_string()),
            "{err:?}"
        );
    }

    #[test]
    fn a_corrupt_blob_is_refused_by_the_registry_and_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let (layout, _) = layout(tmp.path(), false);
        let layer = Digest::of(b"layer two");
        std::fs::write(layout.blob_path(&layer), b"layer 2!!").unwrap();
        let fake = Fake::default();
        let err = push_mounting(&fake, &layout, None, "reg.example/app", None).unwrap_err();
        assert!(
            matches!(&err, RegistryError::Status { status: 400, message, .. }
                if message.starts_with("DIGEST_INVALID")),
            "{err:?}"
        );
        assert_eq!(
            fake.count("PUT /v2/app/manifests"),
            0,
            "no manifest after a failure"
        );
    }

    #[test]
    fn local_problems_fail_before_any_request() {
        let tmp = tempfile::tempdir().unwrap();
        let (layout, _) = layout(tmp.path(), true);
        let err = select(&layout, None).unwrap_err();
        assert!(
            matches!(&err, RegistryError::TagRequired { count: 2, tags, .. }
                if *tags == ["app:v1", "multi"]),
            "{err:?}"
        );
        assert!(err.to_string().contains("app:v1, multi"), "{err}");
        let err = select(&layout, Some("nope")).unwrap_err();
        assert!(
            matches!(&err, RegistryError::TagNotFound { tag, available, .. }
                if tag == "nope" && available.len() == 2),
            "{err:?}"
        );
        assert!(err.is_not_found());

        // A missing layer: found while listing the uploads.
        std::fs::remove_file(layout.blob_path(&Digest::of(b"layer one"))).unwrap();
        let top = select(&layout, Some("app:v1")).unwrap();
        let err = uploads(&layout, &top).unwrap_err();
        assert!(
            matches!(err, RegistryError::Layout(OciError::BlobNotFound { .. })),
            "{err:?}"
        );

        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            open_layout(empty.path()),
            Err(RegistryError::NotALayout { .. })
        ));
    }

    #[test]
    fn one_image_under_several_tags_needs_no_tag() {
        let tmp = tempfile::tempdir().unwrap();
        let (layout, m) = layout(tmp.path(), false);
        layout
            .set_references(&m, &["app:v1".to_owned(), "app:latest".to_owned()])
            .unwrap();
        assert_eq!(select(&layout, None).unwrap().digest(), m.digest());
    }

    /// The one-image layout pushed to a registry whose answers `tamper`
    /// rewrites.
    fn push_tampered(
        tamper: fn(&Request, Response) -> Response,
    ) -> (Fake, Result<PushReport, RegistryError>) {
        let tmp = tempfile::tempdir().unwrap();
        let (layout, _) = layout(tmp.path(), false);
        let fake = Fake {
            tamper: Some(tamper),
            ..Fake::default()
        };
        let result = push_mounting(&fake, &layout, None, "reg.example/app:v1", None);
        (fake, result)
    }

    fn is_manifest_put(req: &Request) -> bool {
        req.method == Method::Put && req.url.contains("/manifests/")
    }

    fn is_upload(req: &Request) -> bool {
        req.method == Method::Put && req.url.contains("/blobs/uploads/")
    }

    #[test]
    fn answers_that_do_not_show_a_stored_image_fail_the_push() {
        // A web server answering 200 with its page to every HEAD: the
        // length is the page's, not the blob's.
        let (fake, r) = push_tampered(|req, r| match req.method {
            Method::Head => Response {
                status: 200,
                headers: vec![("content-length".into(), "615".into())],
                body: Vec::new(),
            },
            _ => r,
        });
        let err = r.unwrap_err();
        assert!(
            matches!(&err, RegistryError::Protocol { message, .. }
                if message.contains("Content-Length \"615\"")),
            "{err:?}"
        );
        assert_eq!(fake.count("PUT"), 0, "nothing stored after it");

        // A HEAD naming another digest.
        let (_, r) = push_tampered(|req, r| match req.method {
            Method::Head => Response {
                status: 200,
                headers: vec![(
                    "docker-content-digest".into(),
                    Digest::of(b"other").to_string(),
                )],
                body: Vec::new(),
            },
            _ => r,
        });
        let err = r.unwrap_err();
        assert!(
            matches!(&err, RegistryError::DigestMismatch { found, .. }
                if *found == Digest::of(b"other").to_string()),
            "{err:?}"
        );

        // A 200 that shows nothing: the blobs are uploaded all the same.
        let (_, r) = push_tampered(|req, r| match req.method {
            Method::Head => Response {
                status: 200,
                ..Response::default()
            },
            _ => r,
        });
        let r = r.unwrap();
        assert_eq!((r.blobs_uploaded, r.blobs_skipped), (3, 0));

        // An upload is done at 201 only.
        let (_, r) = push_tampered(|req, r| {
            if is_upload(req) {
                Response {
                    status: 204,
                    ..Response::default()
                }
            } else {
                r
            }
        });
        let err = r.unwrap_err();
        assert!(
            matches!(&err, RegistryError::Status { status: 204, action, .. }
                if action.starts_with("PUT ")),
            "{err:?}"
        );
        let (_, r) = push_tampered(|req, mut r| {
            if is_upload(req) {
                r.headers = vec![("docker-content-digest".into(), Digest::of(b"x").to_string())];
            }
            r
        });
        assert!(
            matches!(r, Err(RegistryError::DigestMismatch { ref what, .. }) if what.starts_with("blob ")),
            "{r:?}"
        );

        // A manifest answered 200 with nothing to show for it.
        let (_, r) = push_tampered(|req, r| {
            if is_manifest_put(req) {
                Response {
                    status: 200,
                    headers: Vec::new(),
                    body: b"<html>welcome</html>".to_vec(),
                }
            } else {
                r
            }
        });
        let err = r.unwrap_err();
        assert!(
            matches!(&err, RegistryError::Protocol { message, .. }
                if message.contains("answered HTTP 200 with no Docker-Content-Digest")),
            "{err:?}"
        );
    }

    #[test]
    fn what_registries_answer_in_the_wild_is_accepted() {
        // 202 with the manifest's digest (as some registries answer).
        let (_, r) = push_tampered(|req, mut r| {
            if is_manifest_put(req) {
                r.status = 202;
            }
            r
        });
        assert_eq!(r.unwrap().manifests, 1);
        // 201 with no digest: Created is what the spec asks for.
        let (_, r) = push_tampered(|req, mut r| {
            if is_manifest_put(req) || is_upload(req) {
                r.headers.clear();
            }
            r
        });
        assert_eq!(r.unwrap().blobs_uploaded, 3);
    }

    #[test]
    fn control_characters_in_answers_are_escaped() {
        let (_, r) = push_tampered(|req, r| match req.method {
            Method::Post => Response {
                status: 400,
                headers: Vec::new(),
                body: b"\x1b]0;owned\x07\x1b[2Jbad".to_vec(),
            },
            _ => r,
        });
        let msg = r.unwrap_err().to_string();
        assert!(!msg.contains('\x1b') && !msg.contains('\x07'), "{msg:?}");
        assert!(msg.contains("\\u{1b}]0;owned\\u{7}"), "{msg:?}");
    }

    #[test]
    fn a_bad_insecure_registry_fails_before_anything() {
        let tmp = tempfile::tempdir().unwrap();
        let (layout, _) = layout(tmp.path(), false);
        let opts = PushOptions {
            registry: crate::registry::RegistryOptions {
                insecure_registries: vec!["localhost:5000".into(), "127.0.0.1:99999".into()],
                ..Default::default()
            },
            ..PushOptions::default()
        };
        let reference = Reference::parse("localhost:5000/app").unwrap();
        let err = push(&layout, None, &reference, &opts).unwrap_err();
        assert!(
            matches!(&err, RegistryError::Reference(ReferenceError::Registry { host, .. })
                if host == "127.0.0.1:99999"),
            "{err:?}"
        );
    }
}
