//! The SBOM every build attaches: an SPDX 2.3 document stored as an OCI
//! 1.1 referrer of the image manifest (named by the image's index.json
//! entry), also written by `--sbom FILE` and printed by `inspect --sbom`,
//! the same bytes from the same inputs.

use std::path::Path;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::util;

const TAG: &str = "ls:1";
const EPOCH: &str = "1700000000";

fn build(out: &Path, sbom: &Path) -> util::Output {
    util::check(
        util::mkimage()
            .env("SOURCE_DATE_EPOCH", EPOCH)
            .args([
                "--from-binary",
                "/usr/bin/ls",
                "--tzdata",
                "UTC",
                "-q",
                "-t",
                TAG,
            ])
            .arg("-o")
            .arg(out)
            .arg("--sbom")
            .arg(sbom),
    )
}

fn dpkg_version(package: &str) -> String {
    util::check(std::process::Command::new("dpkg-query").args(["-W", "-f", "${Version}", package]))
        .stdout
}

#[test]
fn the_sbom_is_a_referrer_of_the_image_and_reproducible() {
    let dir = util::tempdir();
    let (out, sbom_file) = (dir.path().join("a.oci"), dir.path().join("a.spdx.json"));
    build(&out, &sbom_file);

    // One image in index.json: its entry names the referrers, each an
    // artifact manifest about that image.
    assert_eq!(
        util::index(&out)["manifests"].as_array().map(Vec::len),
        Some(1)
    );
    let image = util::manifest_digest(&out, TAG);
    let referrers = util::referrers(&out, TAG);
    let types: Vec<&str> = referrers.iter().map(|(t, _, _)| t.as_str()).collect();
    assert_eq!(
        types,
        [
            "application/spdx+json",
            "application/vnd.mkimage.provenance.v1+json"
        ]
    );
    for (kind, manifest, _) in &referrers {
        assert_eq!(manifest["artifactType"], kind.as_str());
        assert_eq!(manifest["subject"]["digest"], image.as_str());
        assert_eq!(
            manifest["config"]["mediaType"],
            "application/vnd.oci.empty.v1+json"
        );
        assert_eq!(manifest["layers"][0]["mediaType"], kind.as_str());
    }
    let stored = &referrers[0].2;
    assert_eq!(&std::fs::read(&sbom_file).expect("--sbom file"), stored);
    let printed = util::check(util::mkimage().args(["inspect", "--sbom"]).arg(&out));
    assert_eq!(printed.stdout.as_bytes(), stored.as_slice());

    let doc: Value = serde_json::from_slice(stored).expect("SBOM is JSON");
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    assert_eq!(doc["creationInfo"]["created"], "2023-11-14T22:13:20Z");
    let purls: Vec<&str> = doc["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .flat_map(|p| p["externalRefs"].as_array().into_iter().flatten())
        .filter_map(|r| r["referenceLocator"].as_str())
        .collect();
    let coreutils = format!(
        "pkg:deb/debian/coreutils@{}?arch=amd64&distro=debian-12",
        dpkg_version("coreutils")
            .replace('+', "%2B")
            .replace(':', "%3A")
    );
    assert!(purls.contains(&coreutils.as_str()), "{purls:?}");
    assert!(
        purls
            .iter()
            .any(|p| p.starts_with("pkg:deb/debian/tzdata@")),
        "{purls:?}"
    );
    assert!(
        purls.contains(&format!("pkg:oci/ls@{}?arch=amd64", image.replace(':', "%3A")).as_str()),
        "{purls:?}"
    );
    // The app's file, with the SHA-256 of the bytes in the image.
    let files = doc["files"].as_array().expect("files");
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0]["fileName"], "./usr/local/bin/ls");
    let sha256: String = Sha256::digest(std::fs::read("/usr/bin/ls").expect("read ls"))
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(
        files[0]["checksums"]
            .as_array()
            .expect("checksums")
            .iter()
            .any(|c| c["algorithm"] == "SHA256" && c["checksumValue"] == sha256.as_str()),
        "{}",
        files[0]
    );
    // Every list sorted, the namespace derived from the content.
    let ids: Vec<&str> = doc["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter_map(|p| p["SPDXID"].as_str())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted);
    assert!(
        doc["documentNamespace"]
            .as_str()
            .is_some_and(|n| n.starts_with("https://mkimage.invalid/spdx/ls-")),
        "{}",
        doc["documentNamespace"]
    );

    // A second build elsewhere: the same digest, the same SBOM.
    let (out2, sbom2) = (dir.path().join("b.oci"), dir.path().join("b.spdx.json"));
    build(&out2, &sbom2);
    assert_eq!(util::manifest_digest(&out2, TAG), image);
    assert_eq!(util::index(&out2), util::index(&out));
    assert_eq!(std::fs::read(&sbom2).expect("second SBOM"), *stored);
}
