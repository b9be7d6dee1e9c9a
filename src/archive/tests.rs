//! Archives of a small layout, read back with the tar crate: entries,
//! content, determinism, and failures that must leave nothing behind.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;

use super::*;
use crate::oci::provenance::{FileOrigin, MEDIA_TYPE, Provenance};
use crate::oci::referrers::{Artifact, tag_with_referrers};
use crate::oci::{ImageSpec, LayerInfo, Layout, MediaType, write_untagged};

/// A one-file layer tar: (tar, gzip of it).
fn layer(path: &str, content: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut tar = ::tar::Builder::new(Vec::new());
    let mut h = ::tar::Header::new_ustar();
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(::tar::EntryType::Regular);
    tar.append_data(&mut h, path, content).unwrap();
    let tar = tar.into_inner().unwrap();
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(&tar).unwrap();
    (tar.clone(), gz.finish().unwrap())
}

fn store(layout: &Layout, path: &str, content: &[u8]) -> (LayerInfo, Vec<u8>) {
    let (tar, gz) = layer(path, content);
    put(layout, path, tar, MediaType::ImageLayerGzip, &gz)
}

/// A zstd layer of two frames, as mkimage writes them for larger layers.
fn store_zstd(layout: &Layout, path: &str, content: &[u8]) -> (LayerInfo, Vec<u8>) {
    let (tar, _) = layer(path, content);
    let (a, b) = tar.split_at(tar.len() / 2);
    let blob = [a, b]
        .map(|half| zstd::bulk::compress(half, 3).unwrap())
        .concat();
    put(layout, path, tar, MediaType::ImageLayerZstd, &blob)
}

fn put(
    layout: &Layout,
    path: &str,
    tar: Vec<u8>,
    media_type: MediaType,
    blob: &[u8],
) -> (LayerInfo, Vec<u8>) {
    let d = layout.put_blob(media_type.clone(), blob).unwrap();
    let info = LayerInfo {
        diff_id: Digest::of(&tar),
        digest: d.digest().to_string().parse().unwrap(),
        size: d.size(),
        media_type,
        created_by: path.to_owned(),
        annotations: BTreeMap::new(),
    };
    (info, tar)
}

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: std::path::PathBuf,
    layout: Layout,
    manifest: oci_spec::image::Descriptor,
    tars: Vec<Vec<u8>>,
    diff_ids: Vec<Digest>,
    provenance: Digest,
}

/// A layout with one two-layer image tagged `app:1` (a gzip layer, then a
/// zstd one), with provenance.
fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let layout = Layout::open_or_create(dir.join("layout")).unwrap();
    let (a, tar_a) = store(&layout, "etc/a", b"a\n");
    let (b, tar_b) = store_zstd(&layout, "bin/b", &[9u8; 5000]);
    let prov = Provenance::new(
        [(
            "/bin/b".to_owned(),
            FileOrigin {
                layer: "app".into(),
                why: "--from-binary b".into(),
                needed_by: None,
            },
        )]
        .into(),
    );
    let image = write_untagged(
        &layout,
        &ImageSpec::default(),
        &[a.clone(), b.clone()],
        &Default::default(),
        &["app:1".to_owned()],
    )
    .unwrap();
    let prov_bytes = prov.to_json().unwrap();
    let provenance = Digest::of(&prov_bytes);
    let manifest = tag_with_referrers(
        &layout,
        &image,
        &[Artifact {
            artifact_type: MEDIA_TYPE.into(),
            bytes: prov_bytes,
        }],
        &["app:1".to_owned()],
    )
    .unwrap();
    Fixture {
        _tmp: tmp,
        dir,
        layout,
        manifest,
        tars: vec![tar_a, tar_b],
        diff_ids: vec![a.diff_id, b.diff_id],
        provenance,
    }
}

impl Fixture {
    /// The image's manifest, read back from the layout.
    fn image_manifest(&self) -> oci_spec::image::ImageManifest {
        let digest = self.manifest.digest().to_string().parse().unwrap();
        oci_spec::image::ImageManifest::from_reader(&self.layout.read_blob(&digest).unwrap()[..])
            .unwrap()
    }
}

/// (name, mode, mtime, content) of every entry.
fn entries(archive: &Path) -> Vec<(String, u32, u64, Vec<u8>)> {
    let mut a = ::tar::Archive::new(fs::File::open(archive).unwrap());
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let mut content = Vec::new();
            e.read_to_end(&mut content).unwrap();
            let h = e.header();
            assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
            (
                e.path().unwrap().display().to_string(),
                h.mode().unwrap(),
                h.mtime().unwrap(),
                content,
            )
        })
        .collect()
}

fn no_temp_files(dir: &Path) {
    for e in fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name();
        assert!(
            !name.to_string_lossy().starts_with(".mkimage-tmp-"),
            "{name:?} left behind"
        );
    }
}

#[test]
fn oci_archive_is_the_layout_byte_for_byte() {
    let f = fixture();
    let out = f.dir.join("app.tar");
    write_oci_archive(&f.layout, &out, 1234).unwrap();
    let got = entries(&out);
    let mut blobs = f.layout.blob_digests().unwrap();
    blobs.sort();
    let mut want = vec![
        "oci-layout".to_owned(),
        "index.json".to_owned(),
        "blobs/".to_owned(),
        "blobs/sha256/".to_owned(),
    ];
    want.extend(blobs.iter().map(|d| format!("blobs/sha256/{}", d.hex())));
    assert_eq!(got.iter().map(|e| e.0.clone()).collect::<Vec<_>>(), want);
    for (name, mode, mtime, content) in &got {
        assert_eq!(*mtime, 1234, "{name}");
        if name.ends_with('/') {
            assert_eq!(*mode, 0o755);
        } else {
            assert_eq!(*mode, 0o644);
            assert_eq!(
                *content,
                fs::read(f.layout.root().join(name)).unwrap(),
                "{name}"
            );
        }
    }
    // Same layout, same bytes.
    let again = f.dir.join("again.tar");
    write_oci_archive(&f.layout, &again, 1234).unwrap();
    assert_eq!(fs::read(&out).unwrap(), fs::read(&again).unwrap());
    no_temp_files(&f.dir);
}

#[test]
fn docker_archive_has_uncompressed_layers_named_by_diff_id() {
    let f = fixture();
    let out = f.dir.join("app-docker.tar");
    write_docker_archive(&f.layout, &f.manifest, &["app:1".to_owned()], &out, 7).unwrap();
    let got = entries(&out);
    let config = f.image_manifest().config().digest().to_string();
    let config_hex = &config["sha256:".len()..];
    let (l0, l1) = (f.diff_ids[0].hex(), f.diff_ids[1].hex());
    assert_eq!(
        got.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(),
        [
            "manifest.json".to_owned(),
            "repositories".to_owned(),
            format!("{config_hex}.json"),
            format!("{}.provenance.json", f.provenance.hex()),
            format!("{l0}/"),
            format!("{l0}/layer.tar"),
            format!("{l1}/"),
            format!("{l1}/layer.tar"),
        ]
    );
    let content = |name: &str| {
        got.iter()
            .find(|e| e.0 == name)
            .map(|e| e.3.clone())
            .unwrap()
    };
    assert_eq!(
        String::from_utf8(content("manifest.json")).unwrap(),
        format!(
            r#"[{{"Config":"{config_hex}.json","Layers":["{l0}/layer.tar","{l1}/layer.tar"],"RepoTags":["app:1"],"org.mkimage.provenance":"{}.provenance.json"}}]"#,
            f.provenance.hex()
        )
    );
    assert_eq!(
        String::from_utf8(content("repositories")).unwrap(),
        format!(r#"{{"app":{{"1":"{l1}"}}}}"#)
    );
    assert_eq!(content(&format!("{l0}/layer.tar")), f.tars[0]);
    assert_eq!(content(&format!("{l1}/layer.tar")), f.tars[1]);
    assert_eq!(
        Digest::of(&content(&format!("{config_hex}.json"))).to_string(),
        config
    );
    assert!(got.iter().all(|e| e.2 == 7));

    let again = f.dir.join("again.tar");
    write_docker_archive(&f.layout, &f.manifest, &["app:1".to_owned()], &again, 7).unwrap();
    assert_eq!(fs::read(&out).unwrap(), fs::read(&again).unwrap());
    no_temp_files(&f.dir);
}

#[test]
fn docker_archive_tags_follow_the_reference_grammar() {
    let f = fixture();
    let out = f.dir.join("tags.tar");
    let tags = ["host:5000/team/app".to_owned(), "app:v1".to_owned()];
    write_docker_archive(&f.layout, &f.manifest, &tags, &out, 0).unwrap();
    let got = entries(&out);
    let content = |name: &str| {
        let e = got.iter().find(|e| e.0 == name).unwrap();
        String::from_utf8(e.3.clone()).unwrap()
    };
    // A registry port stays in the name; no tag means latest.
    assert!(
        content("manifest.json").contains(r#""RepoTags":["host:5000/team/app:latest","app:v1"]"#),
        "{}",
        content("manifest.json")
    );
    let l1 = f.diff_ids[1].hex();
    assert_eq!(
        content("repositories"),
        format!(r#"{{"app":{{"v1":"{l1}"}},"host:5000/team/app":{{"latest":"{l1}"}}}}"#)
    );

    // `podman load` refuses `repo:tag/with/slash:latest`, which is what a
    // split at the last ':' after the last '/' made of it.
    fs::write(&out, b"previous").unwrap();
    for bad in ["repo:tag/with/slash", "App:1", "app:", "app:a+b", "a___b:1"] {
        let err =
            write_docker_archive(&f.layout, &f.manifest, &[bad.to_owned()], &out, 0).unwrap_err();
        assert!(
            matches!(&err, ArchiveError::BadRepoTag { tag, .. } if tag == bad),
            "{bad}: {err:?}"
        );
    }
    assert_eq!(fs::read(&out).unwrap(), b"previous");
    no_temp_files(&f.dir);
}

#[test]
fn a_missing_directory_fails_before_any_work() {
    let f = fixture();
    let out = f.dir.join("no/such/dir/app.tar");
    let err = write_oci_archive(&f.layout, &out, 0).unwrap_err();
    assert!(
        matches!(&err, ArchiveError::MissingDirectory { dir, .. } if dir.ends_with("no/such/dir")),
        "{err:?}"
    );
    assert!(err.to_string().contains("does not exist"), "{err}");
    let err = write_oci_archive(&f.layout, &f.dir, 0).unwrap_err();
    assert!(matches!(err, ArchiveError::IsADirectory { .. }), "{err:?}");
    assert!(check_destination(Path::new("bare-name.tar")).is_ok());
}

#[test]
fn corrupt_blobs_fail_and_leave_the_old_archive() {
    let f = fixture();
    let out = f.dir.join("app.tar");
    fs::write(&out, b"previous").unwrap();
    // Same size, different bytes: only the digest check can tell.
    let blob = f.layout.blob_path(
        &f.image_manifest().layers()[1]
            .digest()
            .to_string()
            .parse()
            .unwrap(),
    );
    let mut bytes = fs::read(&blob).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&blob, &bytes).unwrap();

    let err = write_oci_archive(&f.layout, &out, 0).unwrap_err();
    assert!(
        matches!(err, ArchiveError::Oci(OciError::DigestMismatch { .. })),
        "{err:?}"
    );
    let err =
        write_docker_archive(&f.layout, &f.manifest, &["app:1".to_owned()], &out, 0).unwrap_err();
    assert!(
        matches!(
            err,
            ArchiveError::Source(crate::source::SourceError::DigestMismatch { .. })
        ),
        "{err:?}"
    );
    assert_eq!(fs::read(&out).unwrap(), b"previous");
    no_temp_files(&f.dir);
}

#[test]
fn unknown_layer_compression_is_refused_for_docker_archives() {
    let f = fixture();
    let lz4 = MediaType::Other("application/vnd.oci.image.layer.v1.tar+lz4".to_owned());
    let d = f.layout.put_blob(lz4, b"not really lz4").unwrap();
    let m = oci_spec::image::ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(f.image_manifest().config().clone())
        .layers(vec![d.clone(), d])
        .build()
        .unwrap();
    let md = f.layout.put_json(MediaType::ImageManifest, &m).unwrap();
    let err = write_docker_archive(&f.layout, &md, &[], &f.dir.join("z.tar"), 0).unwrap_err();
    assert!(
        matches!(&err, ArchiveError::UnsupportedLayer { media_type, .. } if media_type.ends_with("+lz4")),
        "{err:?}"
    );
}
