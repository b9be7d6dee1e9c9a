//! The image reader on the documents of an image (src/inspect/,
//! src/oci/layout.rs): index, manifest and config JSON and layer tars,
//! framed as named sections (see fuzz/src/lib.rs), repaired (tar checksums,
//! digest names) so that mutations reach the code behind the digest
//! checks, then written as a layout directory or an archive and read as
//! `inspect`, `build` and `push` read them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mkimage_fuzz::{AS_TAR, TAG};

fuzz_target!(|data: &[u8]| {
    let mut files = mkimage_fuzz::sections(data);
    for (_, content) in files.iter_mut() {
        mkimage_fuzz::fix_tar_checksums(content);
    }
    mkimage_fuzz::fix_digests(&mut files);
    let tag = files
        .iter()
        .find(|(n, _)| n == TAG)
        .map(|(_, t)| String::from_utf8_lossy(t).trim().to_owned());
    let as_tar = files
        .iter()
        .any(|(n, _)| n == AS_TAR || n == "manifest.json");
    let path = if as_tar {
        let path = mkimage_fuzz::scratch_file("image.tar");
        mkimage_fuzz::write_tar(&path, &files);
        path
    } else {
        let path = mkimage_fuzz::scratch_file("image.oci");
        mkimage_fuzz::write_dir(&path, &files);
        path
    };
    let mut reference = path.to_string_lossy().into_owned();
    if let Some(tag) = tag {
        reference = format!("{reference}:{tag}");
    }
    mkimage_fuzz::inspect(&reference);
    if !as_tar {
        mkimage_fuzz::read_layout(&path);
    }
});
