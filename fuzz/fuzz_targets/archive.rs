//! The image reader on an archive as given (src/inspect/, over
//! src/oci/archive/'s formats): any bytes as an oci-archive or
//! docker-archive file, read as `mkimage inspect` reads it: the archive's
//! tar index, its JSON, each layer streamed and listed.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut bytes = data.to_vec();
    // A mutated header keeps its checksum valid, so that the fuzzer
    // reaches what follows the check.
    mkimage_fuzz::fix_tar_checksums(&mut bytes);
    let path = mkimage_fuzz::scratch_file("image.tar");
    if std::fs::write(&path, &bytes).is_err() {
        return;
    }
    mkimage_fuzz::inspect(&path.to_string_lossy());
});
