//! Pushing the referrers of an image (its SBOM and provenance, see
//! `oci::referrers`) after the image, so a registry round trip keeps
//! them. distribution-spec v1.1, "Pushing Manifests with Subject": a
//! registry with the referrers API answers the manifest `PUT` with
//! `OCI-Subject: <subject digest>` and indexes it itself; for one that
//! does not (Debian's docker-registry 2.8), the client keeps the
//! "referrers tag schema": the tag `sha256-<hex>` of the subject names an
//! image index listing its referrers, which we fetch, extend and put back.

use serde_json::{Value, json};

use super::RegistryError;
use super::push::{Manifest, check_digest, expect};
use super::transport::{Body, Client, Http, Method, Request};
use crate::digest::Digest;
use crate::oci::{Descriptor, canonical_json};

/// The media type of the tag schema's index.
use crate::oci::names::INDEX_MEDIA_TYPE as INDEX_TYPE;

/// How the referrers were made findable.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pushed {
    /// Referrer manifests the registry stored.
    pub count: usize,
    /// The fallback tag, when the registry has no referrers API.
    pub tag: Option<String>,
}

/// The tag the referrers of `subject` are listed under without the API.
pub fn fallback_tag(subject: &Digest) -> String {
    format!("{}-{}", subject.algorithm(), subject.hex())
}

/// `PUT`s each referrer manifest (its blobs are already there) by digest;
/// then, unless every answer carried `OCI-Subject`, updates the fallback
/// tag's index.
pub(super) fn send<H: Http>(
    client: &mut Client<H>,
    repo: &str,
    scope: &[String],
    subject: &Digest,
    referrers: &[(Manifest, Descriptor)],
) -> Result<Pushed, RegistryError> {
    let mut pushed = Pushed::default();
    if referrers.is_empty() {
        return Ok(pushed);
    }
    let mut indexed = true;
    for (m, _) in referrers {
        let path = format!("/v2/{repo}/manifests/{}", m.digest);
        let req = Request::new(Method::Put, client.url(&path))
            .header("Content-Type", &m.media_type)
            .body(Body::Bytes(m.bytes.clone()));
        let resp = client.send(&req, scope)?;
        expect(client, &resp, &[200, 201, 202], "PUT", &path)?;
        check_digest(client, &resp, &m.digest, &format!("manifest {path}"))?;
        indexed &= resp
            .header("oci-subject")
            .is_some_and(|s| s.trim() == subject.to_string());
        pushed.count += 1;
    }
    if indexed {
        return Ok(pushed);
    }

    let tag = fallback_tag(subject);
    let path = format!("/v2/{repo}/manifests/{tag}");
    let req = Request::new(Method::Get, client.url(&path)).header("Accept", INDEX_TYPE);
    let resp = client.send(&req, scope)?;
    let mut listed: Vec<Value> = match resp.status {
        404 => Vec::new(),
        _ => {
            expect(client, &resp, &[200], "GET", &path)?;
            let index: Value =
                serde_json::from_slice(&resp.body).map_err(|e| RegistryError::Protocol {
                    registry: client.registry().to_owned(),
                    message: format!("GET {path}: the referrers index is not JSON: {e}"),
                })?;
            index["manifests"].as_array().cloned().unwrap_or_default()
        }
    };
    let before = listed.clone();
    for (m, d) in referrers {
        let digest = m.digest.to_string();
        if listed.iter().any(|l| l["digest"] == digest.as_str()) {
            continue;
        }
        let mut entry = json!({
            "mediaType": m.media_type,
            "digest": digest,
            "size": m.bytes.len(),
        });
        if let Some(t) = d.artifact_type() {
            entry["artifactType"] = json!(t.to_string());
        }
        listed.push(entry);
    }
    if listed != before {
        let index = json!({
            "schemaVersion": 2,
            "mediaType": INDEX_TYPE,
            "manifests": listed,
        });
        let bytes = canonical_json(&index)?;
        let req = Request::new(Method::Put, client.url(&path))
            .header("Content-Type", INDEX_TYPE)
            .body(Body::Bytes(bytes.clone()));
        let resp = client.send(&req, scope)?;
        expect(client, &resp, &[200, 201, 202], "PUT", &path)?;
        check_digest(client, &resp, &Digest::of(&bytes), &format!("index {path}"))?;
    }
    pushed.tag = Some(tag);
    Ok(pushed)
}
