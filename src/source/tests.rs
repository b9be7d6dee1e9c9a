//! One image, read through every kind of source: a layout, the
//! oci-archive and docker-archive made from it, a registry serving it
//! (in memory), and the errors each must give.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use super::*;
use crate::archive::{write_docker_archive, write_oci_archive};
use crate::oci::{ImageSpec, LayerInfo, Layout, write_image, write_untagged};
use crate::registry::timeouts::Timeouts;
use crate::registry::transport::{
    Client, CredentialSource, Http, HttpError, Method, Request, Response, RetryPolicy,
};

/// A tar holding one file.
fn tar_of(name: &str, data: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, name, data).unwrap();
    b.into_inner().unwrap()
}

fn layer(layout: &Layout, tar: &[u8]) -> LayerInfo {
    let d = layout.put_blob(MediaType::ImageLayer, tar).unwrap();
    LayerInfo {
        diff_id: Digest::of(tar),
        digest: d.digest().to_string().parse().unwrap(),
        size: d.size(),
        media_type: MediaType::ImageLayer,
        created_by: "test".into(),
        annotations: BTreeMap::new(),
    }
}

fn spec(arch: &str, variant: Option<&str>) -> ImageSpec {
    ImageSpec {
        architecture: arch.into(),
        variant: variant.map(str::to_owned),
        ..ImageSpec::default()
    }
}

/// A layout with `app:1` (amd64, one layer) and `multi`, an index of an
/// amd64 and an arm64/v8 image.
fn fixture(dir: &Path) -> (Layout, Descriptor, Vec<u8>) {
    let layout = Layout::open_or_create(dir).unwrap();
    let tar = tar_of("hello", b"hello world");
    let l = layer(&layout, &tar);
    let m = write_image(
        &layout,
        &spec("amd64", None),
        std::slice::from_ref(&l),
        &BTreeMap::new(),
        &["app:1".into()],
    )
    .unwrap();
    let arm = write_untagged(
        &layout,
        &spec("arm64", Some("v8")),
        &[l],
        &BTreeMap::new(),
        &[],
    )
    .unwrap();
    let entry = |d: &Descriptor, arch: &str, variant: Option<&str>| {
        let mut p = format!(r#"{{"architecture":"{arch}","os":"linux""#);
        if let Some(v) = variant {
            p.push_str(&format!(r#","variant":"{v}""#));
        }
        p.push('}');
        format!(
            r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":{},"platform":{p}}}"#,
            d.digest(),
            d.size()
        )
    };
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[{},{}]}}"#,
        entry(&m, "amd64", None),
        entry(&arm, "arm64", Some("v8"))
    );
    let idx = layout
        .put_blob(
            MediaType::Other(super::document::DOCKER_MANIFEST_LIST.into()),
            index.as_bytes(),
        )
        .unwrap();
    layout.set_references(&idx, &["multi".into()]).unwrap();
    (layout, m, tar)
}

fn read(source: &dyn ImageSource, d: &Descriptor) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    source.blob(d)?.read_to_end(&mut out).map(|_| out)
}

impl From<SourceError> for std::io::Error {
    fn from(e: SourceError) -> Self {
        std::io::Error::other(e.to_string())
    }
}

fn open(s: &str) -> Box<dyn ImageSource> {
    open_str(s, &SourceOptions::default()).unwrap()
}

#[test]
fn a_layout_by_tag_and_by_platform() {
    let tmp = tempfile::tempdir().unwrap();
    let (layout, m, tar) = fixture(&tmp.path().join("img:x"));
    let dir = layout.root().to_str().unwrap().to_owned();
    let src = open(&format!("{dir}:app:1"));
    assert_eq!(src.kind(), Kind::OciLayout);
    let img = src.select(None).unwrap();
    assert_eq!(img.manifest_digest.to_string(), m.digest().to_string());
    assert_eq!(Digest::of(&img.manifest_bytes), img.manifest_digest);
    assert_eq!(Digest::of(&img.config_bytes), img.config_digest);
    assert_eq!(img.diff_ids, [Digest::of(&tar)]);
    assert_eq!(img.platform.to_string(), "linux/amd64");
    assert!(!img.synthetic);
    assert_eq!(read(src.as_ref(), &img.layers[0]).unwrap(), tar);
    assert_eq!(src.tags().unwrap(), ["app:1", "multi"]);
    assert_eq!(src.tags_of_top().unwrap(), ["app:1"]);

    // The Docker manifest list, by platform.
    let multi = open(&format!("oci:{dir}:multi"));
    let arm = platform::parse("linux/arm64").unwrap();
    let img = multi.select(Some(&arm)).unwrap();
    assert_eq!(img.platform.to_string(), "linux/arm64/v8");
    assert_ne!(img.manifest_digest.to_string(), m.digest().to_string());
    let s390x = platform::parse("linux/s390x").unwrap();
    let err = multi.select(Some(&s390x)).unwrap_err();
    assert!(
        matches!(&err, SourceError::PlatformNotFound { available, .. }
            if available == &["linux/amd64", "linux/arm64/v8"]),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("linux/amd64, linux/arm64/v8"),
        "{err}"
    );
    // No platform asked: the host's.
    if let Some(host) = platform::host() {
        let img = multi.select(None).unwrap();
        assert!(img.platform.satisfies(&host), "{}", img.platform);
    }
    // The wanted platform of a single image is checked against its config.
    let err = src.select(Some(&arm)).unwrap_err();
    assert!(
        matches!(err, SourceError::PlatformNotFound { .. }),
        "{err:?}"
    );

    // Tags: none given with two images, a wrong one.
    let err = open_str(&dir, &SourceOptions::default())
        .unwrap()
        .top()
        .unwrap_err();
    assert!(
        matches!(&err, SourceError::ChooseTag { tags, .. } if tags == &["app:1", "multi"]),
        "{err:?}"
    );
    let err = open(&format!("{dir}:nope")).top().unwrap_err();
    assert!(matches!(err, SourceError::TagNotFound { .. }), "{err:?}");
    assert!(err.is_not_found());
}

#[test]
fn a_tampered_blob_is_refused_as_it_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let (layout, _, tar) = fixture(tmp.path());
    let src = open(&format!("{}:app:1", layout.root().display()));
    let img = src.select(None).unwrap();
    let d = &img.layers[0];
    let path = layout.blob_path(&digest_of(d, "test").unwrap());
    let mut evil = tar.clone();
    evil[600] ^= 1;
    std::fs::write(&path, &evil).unwrap();
    let e = read(src.as_ref(), d).unwrap_err();
    assert!(
        matches!(check_error(&e), Some(BlobCheckError::Digest { .. })),
        "{e:?}"
    );
    let err = verify(src.blob(d).unwrap(), &src.locate(d)).unwrap_err();
    assert!(
        matches!(&err, SourceError::DigestMismatch { location, .. } if location.ends_with(&digest_of(d, "").unwrap().hex())),
        "{err:?}"
    );
    // A tampered config is refused when read whole.
    let config = layout.blob_path(&img.config_digest);
    let mut bytes = std::fs::read(&config).unwrap();
    bytes[0] = b' ';
    std::fs::write(&config, &bytes).unwrap();
    let err = src.select(None).unwrap_err();
    assert!(matches!(err, SourceError::DigestMismatch { .. }), "{err:?}");
}

#[test]
fn archives_read_as_the_layout_does() {
    let tmp = tempfile::tempdir().unwrap();
    let (layout, m, tar) = fixture(&tmp.path().join("l"));
    let from_layout = open(&format!("{}:app:1", layout.root().display()))
        .select(None)
        .unwrap();

    let oci = tmp.path().join("a:1.tar");
    write_oci_archive(&layout, &oci, 0).unwrap();
    for name in [
        format!("oci-archive:{}:app:1", oci.display()),
        format!("{}:app:1", oci.display()),
    ] {
        let src = open(&name);
        assert_eq!(src.kind(), Kind::OciArchive, "{name}");
        let img = src.select(None).unwrap();
        assert_eq!(img.manifest_bytes, from_layout.manifest_bytes);
        assert_eq!(read(src.as_ref(), &img.layers[0]).unwrap(), tar);
    }

    let docker = tmp.path().join("d.tar");
    write_docker_archive(&layout, &m, &["app:1".into()], &docker, 0).unwrap();
    for name in [
        format!("docker-archive:{}:app:1", docker.display()),
        format!("docker-archive:{}", docker.display()),
        format!("{}:app:1", docker.display()),
    ] {
        let src = open(&name);
        assert_eq!(src.kind(), Kind::DockerArchive, "{name}");
        let img = src.select(None).unwrap();
        assert!(img.synthetic);
        assert_eq!(img.config_bytes, from_layout.config_bytes);
        assert_eq!(img.diff_ids, from_layout.diff_ids);
        // Stored uncompressed, the layer's digest is its diff_id.
        assert_eq!(
            img.layers[0].digest().to_string(),
            img.diff_ids[0].to_string()
        );
        assert_eq!(read(src.as_ref(), &img.layers[0]).unwrap(), tar);
        assert_eq!(src.tags_of_top().unwrap(), ["app:1"]);
    }
    let err = open_str(
        &format!("docker-archive:{}:other:2", docker.display()),
        &SourceOptions::default(),
    )
    .err()
    .unwrap();
    assert!(matches!(err, SourceError::TagNotFound { .. }), "{err:?}");

    // Not images.
    let junk = tmp.path().join("junk.tar");
    std::fs::write(&junk, tar_of("x", b"y")).unwrap();
    let err = open_str(junk.to_str().unwrap(), &SourceOptions::default())
        .err()
        .unwrap();
    assert!(matches!(err, SourceError::UnknownArchive { .. }), "{err:?}");
    let err = open_str(
        &format!("oci:{}", tmp.path().display()),
        &SourceOptions::default(),
    )
    .err()
    .unwrap();
    assert!(matches!(err, SourceError::NotAnImage { .. }), "{err:?}");
    let err = open_str("/no/such/image:tag", &SourceOptions::default())
        .err()
        .unwrap();
    assert!(
        matches!(err, SourceError::NotFound { .. }) && err.is_not_found(),
        "{err:?}"
    );
}

/// A registry in memory serving a layout's blobs and manifests (by digest,
/// and by tag for `tags`), with an answer to override.
struct Fake {
    dir: std::path::PathBuf,
    tags: BTreeMap<String, Descriptor>,
    /// Every path answered with this status instead.
    status: Option<u16>,
    /// Blobs served with a byte flipped.
    corrupt: bool,
}

impl Http for &Fake {
    fn send(&self, req: &Request, _: Duration) -> Result<Response, HttpError> {
        let path = req
            .url
            .strip_prefix("https://reg.example")
            .unwrap_or(&req.url);
        let answer = |status, body: Vec<u8>, headers: Vec<(String, String)>| {
            Ok(Response {
                status,
                headers,
                body,
            })
        };
        if path == "/v2/" {
            return answer(200, Vec::new(), Vec::new());
        }
        if let Some(s) = self.status {
            return answer(
                s,
                br#"{"errors":[{"code":"X","message":"nope"}]}"#.to_vec(),
                Vec::new(),
            );
        }
        assert_eq!(req.method, Method::Get);
        let rest = path.strip_prefix("/v2/team/app/").unwrap_or("");
        let blob = |d: &str| {
            let hex = d.strip_prefix("sha256:").unwrap_or("");
            std::fs::read(self.dir.join("blobs/sha256").join(hex)).ok()
        };
        if let Some(target) = rest.strip_prefix("manifests/") {
            let (d, ct) = match self.tags.get(target) {
                Some(d) => (d.digest().to_string(), d.media_type().to_string()),
                None => (
                    target.to_owned(),
                    "application/vnd.oci.image.manifest.v1+json".into(),
                ),
            };
            return match blob(&d) {
                Some(b) => answer(
                    200,
                    b,
                    vec![
                        ("content-type".into(), ct),
                        ("docker-content-digest".into(), d),
                    ],
                ),
                None => answer(404, Vec::new(), Vec::new()),
            };
        }
        if let Some(d) = rest.strip_prefix("blobs/") {
            return match blob(d) {
                Some(mut b) => {
                    if self.corrupt && !b.is_empty() && !b.starts_with(b"{") {
                        b[0] ^= 1;
                    }
                    answer(200, b, Vec::new())
                }
                None => answer(404, Vec::new(), Vec::new()),
            };
        }
        if rest == "tags/list" {
            let tags: Vec<&String> = self.tags.keys().collect();
            return answer(
                200,
                serde_json::to_vec(&serde_json::json!({"name":"team/app","tags":tags})).unwrap(),
                Vec::new(),
            );
        }
        answer(404, Vec::new(), Vec::new())
    }
}

fn registry<'a>(fake: &'a Fake, reference: &str) -> registry::RegistrySource<&'a Fake> {
    let r = crate::reference::Reference::parse(reference).unwrap();
    let client = Client::new(
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
    );
    registry::RegistrySource::with_client(&format!("docker://{reference}"), &r, client)
}

#[test]
fn a_registry_serves_what_the_layout_holds() {
    let tmp = tempfile::tempdir().unwrap();
    let (layout, m, tar) = fixture(tmp.path());
    let index = layout.read_index().unwrap();
    let multi = select::by_tag(&index, Some("multi"), "t").unwrap();
    let fake = Fake {
        dir: tmp.path().to_path_buf(),
        tags: [("v1".to_owned(), m.clone()), ("multi".to_owned(), multi)].into(),
        status: None,
        corrupt: false,
    };
    let from_layout = open(&format!("{}:app:1", tmp.path().display()))
        .select(None)
        .unwrap();
    let src = registry(&fake, "reg.example/team/app:v1");
    assert_eq!(src.kind(), Kind::Registry);
    let img = src.select(None).unwrap();
    assert_eq!(img.manifest_bytes, from_layout.manifest_bytes);
    assert_eq!(img.config_bytes, from_layout.config_bytes);
    assert_eq!(read(&src, &img.layers[0]).unwrap(), tar);
    assert_eq!(src.tags().unwrap(), ["multi", "v1"]);
    // By digest, and a digest the registry's manifest does not have.
    let pinned = registry(&fake, &format!("reg.example/team/app@{}", m.digest()));
    assert_eq!(
        pinned.select(None).unwrap().manifest_digest,
        img.manifest_digest
    );
    // The manifest list, by platform.
    let arm = platform::parse("linux/arm64/v8").unwrap();
    let img = registry(&fake, "reg.example/team/app:multi")
        .select(Some(&arm))
        .unwrap();
    assert_eq!(img.platform, arm);

    // A blob that is not what its digest says.
    let corrupt = Fake {
        corrupt: true,
        ..Fake {
            dir: fake.dir.clone(),
            tags: fake.tags.clone(),
            status: None,
            corrupt: false,
        }
    };
    let src = registry(&corrupt, "reg.example/team/app:v1");
    let img = src.select(None).unwrap();
    let e = read(&src, &img.layers[0]).unwrap_err();
    assert!(
        matches!(check_error(&e), Some(BlobCheckError::Digest { .. })),
        "{e:?}"
    );

    // Unknown tags, and registries that refuse.
    let err = registry(&fake, "reg.example/team/app:v9")
        .select(None)
        .unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    for (status, want) in [
        (401, "requires credentials"),
        (404, "HTTP 404"),
        (500, "HTTP 500"),
    ] {
        let failing = Fake {
            dir: fake.dir.clone(),
            tags: BTreeMap::new(),
            status: Some(status),
            corrupt: false,
        };
        let err = registry(&failing, "reg.example/team/app:v1")
            .select(None)
            .unwrap_err();
        assert!(err.to_string().contains(want), "{status}: {err}");
    }
}

#[test]
fn a_docker_archive_with_a_compressed_layer_names_it_by_its_hash() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let tar = tar_of("f", b"data");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let config = format!(
        r#"{{"architecture":"arm64","os":"linux","variant":"v8","rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
        Digest::of(&tar)
    );
    let config_name = format!("{}.json", Digest::of(config.as_bytes()).hex());
    let manifest = format!(
        r#"[{{"Config":"{config_name}","RepoTags":["docker.io/library/app:latest"],"Layers":["l/layer.tar"]}}]"#
    );
    let path = tmp.path().join("d.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&path).unwrap());
    for (name, data) in [
        ("manifest.json", manifest.as_bytes()),
        (config_name.as_str(), config.as_bytes()),
        ("l/layer.tar", &gz[..]),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, data).unwrap();
    }
    b.into_inner().unwrap().flush().unwrap();

    // `app` is docker.io/library/app:latest, as docker reads it.
    let src = open(&format!("docker-archive:{}:app", path.display()));
    let img = src.select(None).unwrap();
    assert_eq!(img.layers[0].media_type(), &MediaType::ImageLayerGzip);
    assert_eq!(
        img.layers[0].digest().to_string(),
        Digest::of(&gz).to_string()
    );
    assert_eq!(read(src.as_ref(), &img.layers[0]).unwrap(), gz);
    assert_eq!(img.platform.to_string(), "linux/arm64/v8");
    let amd64 = platform::parse("linux/amd64").unwrap();
    let err = src.select(Some(&amd64)).unwrap_err();
    assert!(
        matches!(&err, SourceError::PlatformNotFound { available, .. } if available == &["linux/arm64/v8"]),
        "{err:?}"
    );
}

#[test]
fn named_referrers_are_read_back_in_type_order_and_must_be_there() {
    use crate::oci::referrers::{ANNOTATION, Artifact, write};
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::open_or_create(dir.path()).unwrap();
    let subject = layout.put_blob(MediaType::ImageManifest, b"{}x").unwrap();
    let index = write(
        &layout,
        &subject,
        &[
            Artifact {
                artifact_type: "b/x".into(),
                bytes: b"bee".to_vec(),
            },
            Artifact {
                artifact_type: "a/x".into(),
                bytes: b"ay".to_vec(),
            },
        ],
    )
    .unwrap();
    let mut entry = subject.clone();
    entry.set_annotations(Some(
        [(ANNOTATION.to_owned(), index.digest().to_string())].into(),
    ));
    let source = OciSource::layout("app.oci", dir.path(), None).unwrap();
    let found = source.named_referrers(&entry).unwrap();
    let types: Vec<&str> = found.iter().map(|r| r.artifact_type.as_str()).collect();
    assert_eq!(types, ["a/x", "b/x"]);
    assert_eq!(found[1].blob.size(), 3);
    assert!(source.named_referrers(&subject).unwrap().is_empty());

    // What a push would send must be there: a missing index is an error.
    let index_digest: crate::digest::Digest = index.digest().to_string().parse().unwrap();
    std::fs::remove_file(layout.blob_path(&index_digest)).unwrap();
    assert!(matches!(
        source.named_referrers(&entry),
        Err(SourceError::Missing { .. })
    ));
}
