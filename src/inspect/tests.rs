//! Inspecting small hand-made images in all three formats: the summary,
//! the merged file tree (whiteouts), `why`, and the errors.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;

use super::*;
use crate::archive::{write_docker_archive, write_oci_archive};
use crate::oci::provenance::{ANNOTATION, FileOrigin, MEDIA_TYPE, Provenance};
use crate::oci::referrers::{Artifact, tag_with_referrers};
use crate::oci::{
    Descriptor, ImageSpec, LayerInfo, Layout, MediaType, write_image, write_untagged,
};

enum E<'a> {
    File(&'a str, &'a [u8], u32),
    Dir(&'a str),
    Link(&'a str, &'a str),
}

/// A gzip layer of `entries`, stored in `layout`, named `name`.
fn layer(layout: &Layout, name: &str, entries: &[E]) -> LayerInfo {
    let tar = tar_of(entries);
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(&tar).unwrap();
    store(
        layout,
        name,
        &tar,
        MediaType::ImageLayerGzip,
        &gz.finish().unwrap(),
    )
}

/// A zstd layer of two frames, as mkimage writes them for larger layers.
fn zstd_layer(layout: &Layout, name: &str, entries: &[E]) -> LayerInfo {
    let tar = tar_of(entries);
    let (a, b) = tar.split_at(tar.len() / 2);
    let blob = [a, b]
        .map(|half| zstd::bulk::compress(half, 3).unwrap())
        .concat();
    store(layout, name, &tar, MediaType::ImageLayerZstd, &blob)
}

fn tar_of(entries: &[E]) -> Vec<u8> {
    let mut tar = ::tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = ::tar::Header::new_ustar();
        h.set_mtime(0);
        match e {
            E::File(p, data, mode) => {
                h.set_entry_type(::tar::EntryType::Regular);
                h.set_size(data.len() as u64);
                h.set_mode(*mode);
                tar.append_data(&mut h, p, *data).unwrap();
            }
            E::Dir(p) => {
                h.set_entry_type(::tar::EntryType::Directory);
                h.set_size(0);
                h.set_mode(0o755);
                tar.append_data(&mut h, p, &[][..]).unwrap();
            }
            E::Link(p, target) => {
                h.set_entry_type(::tar::EntryType::Symlink);
                h.set_size(0);
                h.set_mode(0o777);
                tar.append_link(&mut h, p, target).unwrap();
            }
        }
    }
    tar.into_inner().unwrap()
}

fn store(layout: &Layout, name: &str, tar: &[u8], media_type: MediaType, blob: &[u8]) -> LayerInfo {
    let d = layout.put_blob(media_type.clone(), blob).unwrap();
    LayerInfo {
        diff_id: Digest::of(tar),
        digest: d.digest().to_string().parse().unwrap(),
        size: d.size(),
        media_type,
        created_by: name.to_owned(),
        annotations: [(
            crate::oci::names::LAYER_ANNOTATION.to_owned(),
            name.to_owned(),
        )]
        .into(),
    }
}

fn origin(layer: &str, why: &str, by: Option<&str>) -> FileOrigin {
    FileOrigin {
        layer: layer.into(),
        why: why.into(),
        needed_by: by.map(Into::into),
    }
}

/// Three layers: base, libs (through a /lib symlink), app, whose layer
/// deletes one base file and empties /opt.
fn image(layout: &Layout, tag: &str, with_provenance: bool) -> Descriptor {
    let base = layer(
        layout,
        "base",
        &[
            E::Dir("etc/"),
            E::File("etc/passwd", b"root:x:0:0::/:/x\n", 0o644),
            E::File("etc/old", b"gone", 0o644),
            E::Dir("opt/"),
            E::File("opt/a", b"a", 0o644),
            E::Dir("usr/share/zoneinfo/"),
            E::File("usr/share/zoneinfo/UTC", b"TZif", 0o644),
        ],
    );
    // zstd, so that every format is also read from zstd frames.
    let libs = zstd_layer(
        layout,
        "libs",
        &[
            E::Link("lib", "usr/lib"),
            E::Dir("usr/lib/"),
            E::File("usr/lib/libc.so.6", &[1; 3000], 0o755),
            E::File("usr/lib/libz.so.1", &[2; 100], 0o644),
        ],
    );
    let app = layer(
        layout,
        "app",
        &[
            E::File("etc/.wh.old", b"", 0o644),
            E::File("opt/.wh..wh..opq", b"", 0o644),
            E::File("opt/b", b"bb", 0o644),
            E::File("usr/local/bin/app", &[3; 700], 0o755),
        ],
    );
    let mut artifacts = Vec::new();
    if with_provenance {
        let p = Provenance::new(
            [
                (
                    "/usr/local/bin/app",
                    origin("app", "--from-binary ./app", None),
                ),
                (
                    "/usr/lib/libz.so.1",
                    origin(
                        "libs",
                        "libz.so.1 (needed) of /lib/libc.so.6 [--from-binary ./app]",
                        Some("/usr/lib/libc.so.6"),
                    ),
                ),
                (
                    "/usr/lib/libc.so.6",
                    origin(
                        "libs",
                        "libc.so.6 (needed) of /usr/local/bin/app [--from-binary ./app]",
                        Some("/usr/local/bin/app"),
                    ),
                ),
                ("/etc/passwd", origin("base", "base files", None)),
                (
                    "/usr/share/zoneinfo",
                    origin("base", "time zone data", None),
                ),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        );
        artifacts.push(Artifact {
            artifact_type: MEDIA_TYPE.into(),
            bytes: p.to_json().unwrap(),
        });
        artifacts.push(Artifact {
            artifact_type: SBOM_TYPE.into(),
            bytes: SBOM.to_vec(),
        });
    }
    let spec = ImageSpec {
        entrypoint: vec!["/usr/local/bin/app".into()],
        cmd: vec!["--serve".into()],
        env: vec!["PATH=/bin".into()],
        user: "65532:65532".into(),
        workdir: Some("/srv".into()),
        labels: [("team".to_owned(), "infra".to_owned())].into(),
        exposed_ports: ["8080/tcp".to_owned()].into(),
        created_epoch: 86400,
        ..ImageSpec::default()
    };
    let manifest = write_untagged(
        layout,
        &spec,
        &[base, libs, app],
        &BTreeMap::new(),
        &[tag.to_owned()],
    )
    .unwrap();
    tag_with_referrers(layout, &manifest, &artifacts, &[tag.to_owned()]).unwrap()
}

/// The SBOM the fixture attaches.
const SBOM: &[u8] = br#"{"spdxVersion":"SPDX-2.3"}"#;

struct Fixture {
    _tmp: tempfile::TempDir,
    layout: PathBuf,
    oci_archive: PathBuf,
    docker_archive: PathBuf,
}

fn fixture(with_provenance: bool) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("img.oci");
    let layout = Layout::open_or_create(&dir).unwrap();
    let m = image(&layout, "app:1", with_provenance);
    let oci_archive = tmp.path().join("oci.tar");
    let docker_archive = tmp.path().join("docker.tar");
    write_oci_archive(&layout, &oci_archive, 0).unwrap();
    write_docker_archive(&layout, &m, &["app:1".into()], &docker_archive, 0).unwrap();
    Fixture {
        _tmp: tmp,
        layout: dir,
        oci_archive,
        docker_archive,
    }
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn listing(files: &FileTree) -> Vec<(String, FileKind, u64, usize)> {
    files
        .iter()
        .map(|f| (f.path.clone(), f.kind, f.size, f.layer))
        .collect()
}

#[test]
fn the_three_formats_read_the_same() {
    let f = fixture(true);
    use FileKind::{Dir, File, Symlink};
    let want = vec![
        ("/etc".to_owned(), Dir, 0, 1),
        ("/etc/passwd".to_owned(), File, 17, 1),
        ("/lib".to_owned(), Symlink, 0, 2),
        ("/opt".to_owned(), Dir, 0, 1),
        ("/opt/b".to_owned(), File, 2, 3),
        ("/usr/lib".to_owned(), Dir, 0, 2),
        ("/usr/lib/libc.so.6".to_owned(), File, 3000, 2),
        ("/usr/lib/libz.so.1".to_owned(), File, 100, 2),
        ("/usr/local/bin/app".to_owned(), File, 700, 3),
        ("/usr/share/zoneinfo".to_owned(), Dir, 0, 1),
        ("/usr/share/zoneinfo/UTC".to_owned(), File, 4, 1),
    ];
    let mut configs = Vec::new();
    for (path, format) in [
        (&f.layout, Format::OciLayout),
        (&f.oci_archive, Format::OciArchive),
        (&f.docker_archive, Format::DockerArchive),
    ] {
        let mut img = Image::open(&s(path)).unwrap();
        let files = img.files().unwrap();
        assert_eq!(listing(&files), want, "{format:?}");
        let sum = img.summary();
        assert_eq!(sum.format, format);
        assert_eq!(sum.tags, ["app:1"], "{format:?}");
        let layers: Vec<_> = sum
            .layers
            .iter()
            .map(|l| (l.index, l.files, l.uncompressed_size.is_some()))
            .collect();
        assert_eq!(
            layers,
            [(1, Some(4), true), (2, Some(3), true), (3, Some(2), true)],
            "{format:?}"
        );
        if format == Format::DockerArchive {
            assert!(sum.manifest.is_none());
            assert_eq!(sum.layers[0].what, "layer 1");
        } else {
            let whats: Vec<_> = sum.layers.iter().map(|l| l.what.as_str()).collect();
            assert_eq!(whats, ["base", "libs", "app"]);
        }
        assert!(sum.provenance.is_some());
        configs.push(serde_json::to_value(&sum.config).unwrap());
    }
    assert!(configs.windows(2).all(|w| w[0] == w[1]), "{configs:?}");
    let c = &configs[0];
    assert_eq!(c["entrypoint"], serde_json::json!(["/usr/local/bin/app"]));
    assert_eq!(c["cmd"], serde_json::json!(["--serve"]));
    assert_eq!(c["user"], "65532:65532");
    assert_eq!(c["workdir"], "/srv");
    assert_eq!(c["exposed_ports"], serde_json::json!(["8080/tcp"]));
    assert_eq!(c["labels"]["team"], "infra");
    assert_eq!(c["created"], "1970-01-02T00:00:00Z");
    assert_eq!(c["architecture"], "amd64");
}

#[test]
fn why_walks_the_chain_through_symlinks_and_directories() {
    let f = fixture(true);
    for path in [&f.layout, &f.oci_archive, &f.docker_archive] {
        let mut img = Image::open(&s(path)).unwrap();
        let why = img.why("/lib/libz.so.1").unwrap();
        assert_eq!(why.resolved, "/usr/lib/libz.so.1");
        assert_eq!(why.recorded, "/usr/lib/libz.so.1");
        let chain: Vec<_> = why
            .chain
            .iter()
            .map(|s| (s.path.as_str(), s.layer.as_str()))
            .collect();
        assert_eq!(
            chain,
            [
                ("/usr/lib/libz.so.1", "libs"),
                ("/usr/lib/libc.so.6", "libs"),
                ("/usr/local/bin/app", "app")
            ]
        );
        assert!(why.chain[0].why.contains("--from-binary ./app"));

        let why = img.why("/usr/share/zoneinfo/UTC").unwrap();
        assert_eq!(why.recorded, "/usr/share/zoneinfo");
        let why = img.why("/etc/passwd").unwrap();
        assert_eq!(why.chain[0].why, "base files");
        // `..` stops at `/`, as the kernel's lookup does.
        let why = img.why("/../etc/../etc/passwd").unwrap();
        assert_eq!(why.resolved, "/etc/passwd");

        assert!(matches!(
            img.why("/etc/old"),
            Err(InspectError::NotInImage { path }) if path == "/etc/old"
        ));
        assert!(matches!(
            img.why("/opt/a"),
            Err(InspectError::NotInImage { .. })
        ));
        assert!(matches!(
            img.why("/usr/lib"),
            Err(InspectError::NotRecorded { layer: Some(2), .. })
        ));
        assert!(matches!(
            img.why("/usr"),
            Err(InspectError::NotRecorded { layer: None, .. })
        ));
        assert!(matches!(
            img.why("etc/passwd"),
            Err(InspectError::BadPath { .. })
        ));
    }
}

#[test]
fn the_sbom_is_read_from_every_format() {
    let f = fixture(true);
    for path in [&f.layout, &f.oci_archive, &f.docker_archive] {
        let img = Image::open(&s(path)).unwrap();
        assert!(img.summary().sbom.is_some(), "{path:?}");
        assert_eq!(img.sbom().unwrap(), SBOM, "{path:?}");
    }
    let f = fixture(false);
    for path in [&f.layout, &f.oci_archive, &f.docker_archive] {
        let err = Image::open(&s(path)).unwrap().sbom().unwrap_err();
        assert!(matches!(err, InspectError::NoSbom { .. }), "{err:?}");
    }
}

#[test]
fn a_missing_referrers_index_makes_sbom_and_provenance_missing() {
    let f = fixture(true);
    let entry = &crate::oci::Layout::open(&f.layout)
        .unwrap()
        .read_index()
        .unwrap()
        .manifests()[0]
        .clone();
    let index: Digest = entry.annotations().as_ref().unwrap()[crate::oci::referrers::ANNOTATION]
        .parse()
        .unwrap();
    std::fs::remove_file(f.layout.join("blobs/sha256").join(index.hex())).unwrap();
    let mut img = Image::open(&s(&f.layout)).unwrap();
    let err = img.sbom().unwrap_err();
    assert!(matches!(err, InspectError::SbomMissing { .. }), "{err:?}");
    let err = img.why("/etc/passwd").unwrap_err();
    assert!(
        matches!(err, InspectError::ProvenanceMissing { .. }),
        "{err:?}"
    );
}

#[test]
fn provenance_named_by_the_old_manifest_annotation_is_still_read() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = Layout::open_or_create(tmp.path().join("old.oci")).unwrap();
    let layer = layer(&layout, "app", &[E::File("x", b"x", 0o644)]);
    let p = Provenance::new([("/x".to_owned(), origin("app", "--include x", None))].into());
    let d = layout
        .put_blob(MediaType::Other(MEDIA_TYPE.into()), &p.to_json().unwrap())
        .unwrap();
    let annotations = [(ANNOTATION.to_owned(), d.digest().to_string())].into();
    write_image(
        &layout,
        &ImageSpec::default(),
        &[layer],
        &annotations,
        &["old:1".to_owned()],
    )
    .unwrap();
    let mut img = Image::open(&s(&tmp.path().join("old.oci"))).unwrap();
    assert_eq!(img.why("/x").unwrap().chain[0].why, "--include x");
}

#[test]
fn images_without_provenance_say_so() {
    let f = fixture(false);
    for path in [&f.layout, &f.oci_archive, &f.docker_archive] {
        let mut img = Image::open(&s(path)).unwrap();
        assert!(img.summary().provenance.is_none());
        let err = img.why("/etc/passwd").unwrap_err();
        assert!(
            matches!(err, InspectError::NotBuiltByMkimage { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("not built by mkimage"), "{err}");
    }
}

#[test]
fn a_missing_provenance_blob_is_named() {
    let f = fixture(true);
    let img = Image::open(&s(&f.layout)).unwrap();
    let digest: Digest = img.summary().provenance.clone().unwrap().parse().unwrap();
    std::fs::remove_file(f.layout.join("blobs/sha256").join(digest.hex())).unwrap();
    let err = Image::open(&s(&f.layout))
        .unwrap()
        .why("/etc/passwd")
        .unwrap_err();
    assert!(
        matches!(&err, InspectError::ProvenanceMissing { digest: d, .. } if *d == digest.to_string()),
        "{err:?}"
    );
}

#[test]
fn tags_pick_one_of_several_images() {
    let f = fixture(true);
    let layout = Layout::open(&f.layout).unwrap();
    let layer = layer(&layout, "other", &[E::File("x", b"x", 0o644)]);
    write_image(
        &layout,
        &ImageSpec::default(),
        &[layer],
        &BTreeMap::new(),
        &["other:2".to_owned()],
    )
    .unwrap();
    let dir = s(&f.layout);
    let err = Image::open(&dir).unwrap_err();
    assert!(
        matches!(&err, InspectError::Source(SourceError::ChooseTag { tags, .. }) if tags == &["app:1", "other:2"]),
        "{err:?}"
    );
    let err = Image::open(&format!("{dir}:nope")).unwrap_err();
    assert!(
        matches!(err, InspectError::Source(SourceError::TagNotFound { .. })),
        "{err:?}"
    );
    let img = Image::open(&format!("{dir}:other:2")).unwrap();
    assert_eq!(img.summary().tags, ["other:2"]);
    assert_eq!(img.summary().layers.len(), 1);
    assert_eq!(
        Image::open(&format!("{dir}:app:1"))
            .unwrap()
            .summary()
            .layers
            .len(),
        3
    );
    let err = Image::open(&format!("{dir}-missing:app:1")).unwrap_err();
    assert!(
        matches!(err, InspectError::Source(SourceError::NotFound { .. })),
        "{err:?}"
    );
}

#[test]
fn a_corrupt_layer_fails_the_listing() {
    let f = fixture(true);
    let img = Image::open(&s(&f.layout)).unwrap();
    let digest = img.summary().layers[2].digest.unwrap();
    let blob = f.layout.join("blobs/sha256").join(digest.hex());
    // Gzip tolerates nothing; append instead, which only the digest sees.
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes.extend_from_slice(b"\x1f\x8b");
    std::fs::write(&blob, &bytes).unwrap();
    let mut img = Image::open(&s(&f.layout)).unwrap();
    let err = img.files().unwrap_err();
    // One byte more than the manifest says: cut off there.
    assert!(
        matches!(
            &err,
            InspectError::Source(crate::source::SourceError::SizeMismatch {
                expected,
                found,
                ..
            }) if *found == *expected + 1
        ),
        "{err:?}"
    );
    // The same size, other bytes: the digest says so, not the decoder.
    bytes.truncate(bytes.len() - 2);
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&blob, &bytes).unwrap();
    let mut img = Image::open(&s(&f.layout)).unwrap();
    let err = img.files().unwrap_err();
    assert!(
        matches!(&err, InspectError::DigestMismatch { expected, .. } if *expected == digest),
        "{err:?}"
    );
    assert!(img.verify_layers().is_err());
}

#[test]
fn other_files_are_not_images() {
    let tmp = tempfile::tempdir().unwrap();
    let err = Image::open(&s(tmp.path())).unwrap_err();
    assert!(
        matches!(err, InspectError::Source(SourceError::NotAnImage { .. })),
        "{err:?}"
    );
    let file = tmp.path().join("x.tar");
    let mut b = ::tar::Builder::new(std::fs::File::create(&file).unwrap());
    let mut h = ::tar::Header::new_ustar();
    h.set_size(1);
    b.append_data(&mut h, "hello", &b"x"[..]).unwrap();
    b.into_inner().unwrap();
    let err = Image::open(&s(&file)).unwrap_err();
    assert!(
        matches!(
            err,
            InspectError::Source(SourceError::UnknownArchive { .. })
        ),
        "{err:?}"
    );
}
