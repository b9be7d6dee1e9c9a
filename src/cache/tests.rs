//! The cache against real files: what it records, what it refuses to
//! trust, and the one warning it gives.

use std::fs::{self, File, FileTimes};
use std::time::{Duration, SystemTime};

use super::*;
use crate::layer::write_layer;
use crate::rootfs::{Entry, ImagePath, Source};

/// Longer than the kernel's coarse clock tick (1 to 10 ms), which stamps
/// files.
const TICK: Duration = Duration::from_millis(30);

const MEDIA: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

struct Fixture {
    dir: tempfile::TempDir,
    settings: CacheSettings,
    tree: Tree,
    host: PathBuf,
}

/// A tree of one host file stamped an hour ago (so not racy).
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let host = dir.path().join("app");
    fs::write(&host, b"hello, layer cache").unwrap();
    set_mtime(&host, SystemTime::now() - Duration::from_secs(3600));
    fs::create_dir(dir.path().join("layout")).unwrap();
    let mut tree = Tree::new();
    tree.insert(
        ImagePath::new("/app").unwrap(),
        Entry::file(Source::Host(host.clone()), 18, 0o755),
    )
    .unwrap();
    // Setting the mtime moved the ctime to now; a cache opened within the
    // same clock tick could not tell a later change from it.
    std::thread::sleep(TICK);
    let settings = CacheSettings {
        dir: dir.path().join("cache"),
        max_bytes: DEFAULT_MAX_BYTES,
    };
    Fixture {
        dir,
        settings,
        tree,
        host,
    }
}

fn set_mtime(path: &Path, t: SystemTime) {
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_times(FileTimes::new().set_modified(t))
        .unwrap();
}

impl Fixture {
    fn blob_at(&self) -> impl Fn(&Digest) -> PathBuf + use<> {
        let layout = self.dir.path().join("layout");
        move |d: &Digest| layout.join(d.hex())
    }

    /// A cold write of the layer into the "layout", recorded.
    fn write_and_record(&self, cache: &mut LayerCache) -> (LayerDigests, bool) {
        let opts = LayerOptions::default();
        let key = cache.key(&self.tree, &opts).unwrap();
        let mut blob = Vec::new();
        let digests = write_layer(&self.tree, &opts, &mut blob).unwrap();
        let path = (self.blob_at())(&digests.digest);
        fs::write(&path, &blob).unwrap();
        let recorded = cache.record(&key, &digests, MEDIA, &path);
        (digests, recorded)
    }

    fn lookup(&self, cache: &mut LayerCache) -> Option<LayerDigests> {
        let key = cache.key(&self.tree, &LayerOptions::default())?;
        cache.lookup(&key, MEDIA, &self.blob_at())
    }
}

#[test]
fn a_recorded_layer_is_found_again_from_either_place() {
    let f = fixture();
    let mut cache = LayerCache::open(&f.settings).unwrap();
    assert_eq!(f.lookup(&mut cache), None);
    let (digests, recorded) = f.write_and_record(&mut cache);
    assert!(recorded);
    let mut again = LayerCache::open(&f.settings).unwrap();
    assert_eq!(f.lookup(&mut again), Some(digests));
    // The layout lost its blob: it comes back from the cache.
    let at = (f.blob_at())(&digests.digest);
    let bytes = fs::read(&at).unwrap();
    fs::remove_file(&at).unwrap();
    assert_eq!(f.lookup(&mut again), Some(digests));
    assert_eq!(fs::read(&at).unwrap(), bytes);
    assert_eq!(again.take_warning(), None);
}

#[test]
fn a_file_changed_after_the_build_began_is_not_recorded() {
    let f = fixture();
    let mut cache = LayerCache::open(&f.settings).unwrap();
    // Written now: at or after the cache's clock reading, within the same
    // granule as far as its stamps can tell.
    fs::write(&f.host, b"HELLO, layer cache").unwrap();
    let (_, recorded) = f.write_and_record(&mut cache);
    assert!(!recorded);
    assert_eq!(f.lookup(&mut LayerCache::open(&f.settings).unwrap()), None);
}

#[test]
fn whole_second_stamps_get_two_seconds_of_slack() {
    let f = fixture();
    // A second ago, with no sub-second part, as FAT or ext3 would stamp.
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let whole = SystemTime::UNIX_EPOCH + Duration::from_secs(secs - 1);
    set_mtime(&f.host, whole);
    let mut cache = LayerCache::open(&f.settings).unwrap();
    let key = cache.key(&f.tree, &LayerOptions::default()).unwrap();
    // The ctime is fine-grained here, so force the coarse case.
    let coarse = LayerKey {
        newest: Some(i128::from(secs as i64 - 1) * 1_000_000_000),
        coarse: true,
        ..key
    };
    let d = LayerDigests {
        diff_id: Digest::of(b"t"),
        digest: Digest::of(b"b"),
        size: 1,
        uncompressed_size: 1,
    };
    let blob = f.dir.path().join("b");
    fs::write(&blob, b"b").unwrap();
    assert!(!cache.record(&coarse, &d, MEDIA, &blob));
    let old = LayerKey {
        newest: Some(i128::from(secs as i64 - 5) * 1_000_000_000),
        ..coarse
    };
    assert!(cache.record(&old, &d, MEDIA, &blob));
}

#[test]
fn a_corrupt_record_is_ignored_with_one_warning() {
    let f = fixture();
    let mut cache = LayerCache::open(&f.settings).unwrap();
    f.write_and_record(&mut cache);
    let key = cache.key(&f.tree, &LayerOptions::default()).unwrap();
    let record = cache.store.record_path(&key.hex());
    let mut bytes = fs::read(&record).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x20;
    fs::write(&record, &bytes).unwrap();

    let mut cache = LayerCache::open(&f.settings).unwrap();
    assert_eq!(f.lookup(&mut cache), None);
    let warning = cache.take_warning().unwrap();
    assert!(warning.contains("checksum mismatch"), "{warning}");
    assert!(warning.contains(&record.display().to_string()), "{warning}");
    // Off for the rest of the build: no second warning, no records.
    assert_eq!(f.lookup(&mut cache), None);
    assert_eq!(cache.key(&f.tree, &LayerOptions::default()), None);
    assert_eq!(cache.take_warning(), None);
    // The bad record is gone, so the next build heals the cache.
    assert!(!record.exists());
    let mut next = LayerCache::open(&f.settings).unwrap();
    assert!(f.write_and_record(&mut next).1);
    assert!(
        f.lookup(&mut LayerCache::open(&f.settings).unwrap())
            .is_some()
    );
}

#[test]
fn a_truncated_blob_is_never_used() {
    let f = fixture();
    let mut cache = LayerCache::open(&f.settings).unwrap();
    let (digests, _) = f.write_and_record(&mut cache);
    let at = (f.blob_at())(&digests.digest);
    let cached = cache.store.blob_path(&digests.digest);
    // The cache's copy shares the layout's inode (a hard link): cut the
    // layout's to a new, shorter file, and the cache's too.
    fs::remove_file(&at).unwrap();
    let full = fs::read(&cached).unwrap();
    fs::remove_file(&cached).unwrap();
    fs::write(&cached, &full[..full.len() - 1]).unwrap();

    let mut cache = LayerCache::open(&f.settings).unwrap();
    assert_eq!(f.lookup(&mut cache), None);
    assert!(cache.take_warning().unwrap().contains("its record says"));
    assert!(!at.exists() && !cached.exists());
}

#[test]
fn a_record_of_another_version_or_key_is_not_trusted() {
    let f = fixture();
    let mut cache = LayerCache::open(&f.settings).unwrap();
    let (digests, _) = f.write_and_record(&mut cache);
    let key = cache.key(&f.tree, &LayerOptions::default()).unwrap();
    let path = cache.store.record_path(&key.hex());
    for (version, record_key, why) in [
        ("0.0.1", key.hex(), "written by mkimage 0.0.1"),
        (
            env!("CARGO_PKG_VERSION"),
            "cd".repeat(32),
            "not its own key",
        ),
    ] {
        let r = Record {
            version: version.into(),
            key: record_key,
            digests,
            media_type: MEDIA.into(),
        };
        fs::write(&path, r.encode()).unwrap();
        let mut cache = LayerCache::open(&f.settings).unwrap();
        assert_eq!(f.lookup(&mut cache), None);
        let w = cache.take_warning().unwrap();
        assert!(w.contains(why), "{w}");
    }
}

#[test]
fn an_unusable_directory_is_one_warning() {
    let f = fixture();
    fs::write(&f.settings.dir, b"a file, not a directory").unwrap();
    let w = LayerCache::open(&f.settings).err().unwrap();
    assert!(
        w.starts_with("the layer cache is not used: cannot use"),
        "{w}"
    );
}

#[test]
fn a_blob_damaged_in_place_is_never_used() {
    let f = fixture();
    let mut cache = LayerCache::open(&f.settings).unwrap();
    let (digests, _) = f.write_and_record(&mut cache);
    std::thread::sleep(TICK);
    // A warm build checks the blob once and stamps it; the next trusts
    // the stamp.
    let mut warm = LayerCache::open(&f.settings).unwrap();
    assert_eq!(f.lookup(&mut warm), Some(digests));
    let at = (f.blob_at())(&digests.digest);
    let stamp = warm.store.stamp_path(&at);
    assert!(stamp.exists());
    assert_eq!(f.lookup(&mut warm), Some(digests));

    // Same size, one byte changed, written in place (the cache's hard
    // link shares the damage); even the mtime put back.
    let before = fs::metadata(&at).unwrap();
    let mut bytes = fs::read(&at).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::OpenOptions::new()
        .write(true)
        .open(&at)
        .and_then(|mut file| std::io::Write::write_all(&mut file, &bytes))
        .unwrap();
    set_mtime(&at, before.modified().unwrap());
    let mut after = LayerCache::open(&f.settings).unwrap();
    assert_eq!(f.lookup(&mut after), None);
    let w = after.take_warning().unwrap();
    assert!(w.contains("does not hold the blob"), "{w}");
    assert!(!at.exists());
}
