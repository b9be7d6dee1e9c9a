//! The SBOM: one SPDX 2.3 JSON document (spdx-spec v2.3) describing the
//! image: a package for the image itself, one per Debian package with
//! files in it, one per Python, npm and Maven package found, and the app
//! layer's files with their SHA-256 (and the SHA-1 SPDX 2.3 requires of
//! every file, §8.4). Deterministic: `created` is SOURCE_DATE_EPOCH, the
//! `documentNamespace` is derived from the rest of the document, every
//! list is sorted, and the bytes come from the canonical JSON writer.

use std::collections::{BTreeMap, BTreeSet};

use sha1::{Digest as _, Sha1};

use serde_json::{Value, json};

use super::inventory::Inventory;
use super::lang::{Ecosystem, LangPackage};
use super::{copyright, purl_encode};
use crate::digest::{Digest, hex};
use crate::oci::{OciError, canonical_json, rfc3339_utc};

/// The SBOM's media type (IANA), also its referrer's `artifactType`.
pub use crate::oci::names::SPDX_MEDIA_TYPE as MEDIA_TYPE;
/// Where namespaces live: `.invalid` (RFC 2606) so no one mistakes them
/// for a page to fetch; SPDX only asks for a unique URI.
const NAMESPACE_BASE: &str = "https://mkimage.invalid/spdx";
const NOASSERTION: &str = "NOASSERTION";
/// SPDXRef of the image's own package.
const IMAGE_ID: &str = "SPDXRef-Image";

/// What the SBOM says about the image as a whole.
#[derive(Clone, Debug)]
pub struct ImageInfo {
    /// The repository part of the first tag (`curl` of `curl:8`).
    pub name: String,
    pub manifest: Digest,
    pub architecture: String,
    /// SOURCE_DATE_EPOCH.
    pub epoch: u64,
    /// The `org.opencontainers.image.vendor` (or `.authors`) label.
    pub supplier: Option<String>,
}

/// The SPDX document for `inv`, as canonical JSON bytes.
pub fn document(inv: &Inventory, image: &ImageInfo) -> Result<Vec<u8>, OciError> {
    let distro = inv.os.as_ref().and_then(|o| o.distro());
    let purl_namespace = inv
        .os
        .as_ref()
        .and_then(|o| o.get("ID"))
        .unwrap_or("debian")
        .to_owned();

    let mut packages = vec![image_package(image)];
    let mut relationships: BTreeSet<(String, &str, String)> = BTreeSet::new();
    relationships.insert(("SPDXRef-DOCUMENT".into(), "DESCRIBES", IMAGE_ID.into()));
    for (key, deb) in &inv.debs {
        let p = &deb.package;
        let id = spdx_id("Package-deb", key);
        let (src, src_version) = p.source();
        let mut purl = format!(
            "pkg:deb/{}/{}@{}?arch={}",
            purl_encode(&purl_namespace),
            purl_encode(&p.name),
            purl_encode(&p.version),
            purl_encode(&p.architecture)
        );
        if let Some(d) = &distro {
            purl.push_str(&format!("&distro={}", purl_encode(d)));
        }
        packages.push(json!({
            "SPDXID": id,
            "name": p.name,
            "versionInfo": p.version,
            "supplier": supplier(p.maintainer()),
            "sourceInfo": format!("built package from: {src} {src_version}"),
            "downloadLocation": NOASSERTION,
            "filesAnalyzed": false,
            "licenseConcluded": NOASSERTION,
            "licenseDeclared": deb.license.clone().unwrap_or_else(|| NOASSERTION.into()),
            "copyrightText": NOASSERTION,
            "primaryPackagePurpose": "LIBRARY",
            "externalRefs": [purl_ref(&purl)],
        }));
        relationships.insert((IMAGE_ID.into(), "CONTAINS", id));
    }
    for lang in &inv.langs {
        let id = spdx_id(
            &format!("Package-{}", lang.ecosystem.name()),
            &format!(
                "{}-{}-{}",
                lang.namespace.as_deref().unwrap_or_default(),
                lang.name,
                lang.version
            ),
        );
        packages.push(lang_package(lang, &id));
        relationships.insert((IMAGE_ID.into(), "CONTAINS", id));
    }
    let mut files = Vec::new();
    let mut file_sha1: BTreeMap<String, String> = BTreeMap::new();
    for f in &inv.app_files {
        let path = f.path.as_path().to_string_lossy();
        let id = spdx_id("File", &hex(&Digest::of(path.as_bytes()).as_bytes()[..8]));
        files.push(json!({
            "SPDXID": id,
            "fileName": format!(".{path}"),
            "checksums": [
                {"algorithm": "SHA1", "checksumValue": hex(&f.sha1)},
                {"algorithm": "SHA256", "checksumValue": hex(&f.sha256)},
            ],
            "licenseConcluded": NOASSERTION,
            "copyrightText": NOASSERTION,
        }));
        file_sha1.insert(id.clone(), hex(&f.sha1));
        relationships.insert((IMAGE_ID.into(), "CONTAINS", id.clone()));
        if let Some(key) = &f.deb {
            relationships.insert((spdx_id("Package-deb", key), "CONTAINS", id));
        }
    }
    // A package that contains files must say it analysed them (§7.8),
    // with the verification code over their SHA-1s (§7.9).
    for p in packages.iter_mut() {
        let Some(id) = p["SPDXID"].as_str().map(str::to_owned) else {
            continue;
        };
        let mut sha1s: Vec<String> = relationships
            .iter()
            .filter(|(a, t, _)| *a == id && *t == "CONTAINS")
            .filter_map(|(_, _, b)| file_sha1.get(b.as_str()).cloned())
            .collect();
        if sha1s.is_empty() {
            continue;
        }
        sha1s.sort();
        p["filesAnalyzed"] = json!(true);
        p["packageVerificationCode"] = json!({
            "packageVerificationCodeValue": hex(&Sha1::digest(sha1s.concat().as_bytes())),
        });
    }
    packages.sort_by(|a, b| a["SPDXID"].as_str().cmp(&b["SPDXID"].as_str()));
    packages.dedup_by(|a, b| a["SPDXID"] == b["SPDXID"]);
    files.sort_by(|a, b| a["fileName"].as_str().cmp(&b["fileName"].as_str()));
    let relationships: Vec<Value> = relationships
        .into_iter()
        .map(
            |(a, t, b)| json!({"spdxElementId": a, "relationshipType": t, "relatedSpdxElement": b}),
        )
        .collect();

    let mut doc = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": image.name,
        "creationInfo": {
            "created": rfc3339_utc(image.epoch)?,
            "creators": [format!("Tool: mkimage-{}", env!("CARGO_PKG_VERSION"))],
        },
        "packages": packages,
        "files": files,
        "relationships": relationships,
    });
    // The namespace names this content: the same image gives the same
    // document, and different content a different URI.
    let content = Digest::of(&canonical_json(&doc)?);
    doc["documentNamespace"] = json!(format!(
        "{NAMESPACE_BASE}/{}-{}",
        purl_encode(&image.name),
        content.hex()
    ));
    canonical_json(&doc)
}

fn image_package(image: &ImageInfo) -> Value {
    let purl = format!(
        "pkg:oci/{}@{}?arch={}",
        purl_encode(image.name.rsplit('/').next().unwrap_or(&image.name)),
        purl_encode(&image.manifest.to_string()),
        purl_encode(&image.architecture)
    );
    json!({
        "SPDXID": IMAGE_ID,
        "name": image.name,
        "versionInfo": image.manifest.to_string(),
        "supplier": supplier(image.supplier.as_deref()),
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": false,
        "checksums": [{"algorithm": "SHA256", "checksumValue": image.manifest.hex()}],
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": NOASSERTION,
        "copyrightText": NOASSERTION,
        "primaryPackagePurpose": "CONTAINER",
        "externalRefs": [purl_ref(&purl)],
    })
}

fn lang_package(lang: &LangPackage, id: &str) -> Value {
    let name = match (lang.ecosystem, &lang.namespace) {
        (Ecosystem::Npm, Some(scope)) => format!("{scope}/{}", lang.name),
        _ => lang.name.clone(),
    };
    json!({
        "SPDXID": id,
        "name": name,
        "versionInfo": lang.version,
        "supplier": supplier(lang.author.as_deref()),
        "sourceInfo": format!("found by {}", lang.location.as_path().to_string_lossy()),
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": false,
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": lang
            .license
            .as_deref()
            .and_then(copyright::spdx_license)
            .unwrap_or_else(|| NOASSERTION.into()),
        "copyrightText": NOASSERTION,
        "primaryPackagePurpose": "LIBRARY",
        "externalRefs": [purl_ref(&lang.purl())],
    })
}

fn purl_ref(purl: &str) -> Value {
    json!({
        "referenceCategory": "PACKAGE-MANAGER",
        "referenceType": "purl",
        "referenceLocator": purl,
    })
}

/// An SPDX `SPDXRef-<kind>-<name>` (§3.2: letters, digits, `.` and `-`);
/// other bytes are written as `-XX` in hex so distinct names stay distinct.
fn spdx_id(kind: &str, name: &str) -> String {
    let mut out = format!("SPDXRef-{kind}-");
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'.' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("-{b:02X}"));
        }
    }
    out
}

/// SPDX's supplier (§7.5): `Person: NAME (EMAIL)` or `Organization:`, from
/// a `Name <email>` string. Teams and lists are organizations. Nobody
/// known is "Organization: unknown": NOASSERTION would fail the NTIA
/// minimum elements, and a label can name the image's supplier.
fn supplier(who: Option<&str>) -> String {
    let Some(who) = who.map(str::trim).filter(|w| !w.is_empty()) else {
        return "Organization: unknown".into();
    };
    let clean = |s: &str| s.replace(['(', ')'], "").trim().to_owned();
    let (name, email) = match who.split_once('<') {
        Some((n, rest)) => (clean(n), Some(clean(rest.trim_end_matches('>')))),
        None => (clean(who), None),
    };
    let name = if name.is_empty() {
        email.clone().unwrap_or_else(|| "unknown".into())
    } else {
        name
    };
    const ORGS: &[&str] = &[
        "team",
        "maintainers",
        "developers",
        "project",
        "group",
        "debian",
        "foundation",
        "community",
    ];
    let lower = name.to_ascii_lowercase();
    let kind = if ORGS.iter().any(|o| lower.contains(o)) {
        "Organization"
    } else {
        "Person"
    };
    match email.filter(|e| !e.is_empty()) {
        Some(e) => format!("{kind}: {name} ({e})"),
        None => format!("{kind}: {name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_suppliers() {
        assert_eq!(
            spdx_id("Package-deb", "libstdc++6:amd64"),
            "SPDXRef-Package-deb-libstdc-2B-2B6-3Aamd64"
        );
        assert_eq!(
            supplier(Some(
                "Debian OpenSSL Team <pkg-openssl-devel@lists.debian.net>"
            )),
            "Organization: Debian OpenSSL Team (pkg-openssl-devel@lists.debian.net)"
        );
        assert_eq!(
            supplier(Some("Kenneth Reitz <me@kennethreitz.org>")),
            "Person: Kenneth Reitz (me@kennethreitz.org)"
        );
        assert_eq!(
            supplier(Some("Travis E. Oliphant et al.")),
            "Person: Travis E. Oliphant et al."
        );
        assert_eq!(supplier(None), "Organization: unknown");
    }
}
