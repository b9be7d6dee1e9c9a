//! Jars: the manifest (its main section's Main-Class, Class-Path and
//! Multi-Release, as the JAR File Specification lays it out), and what a
//! Spring Boot fat jar nests (BOOT-INF/classes, BOOT-INF/lib/*.jar).
//! Parsing a manifest is pure, bytes in and data out; the zip crate reads
//! the archive.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::ArtifactError;

/// Where a jar's manifest is.
const MANIFEST: &str = "META-INF/MANIFEST.MF";
/// Where Spring Boot's executable jar keeps the app's classes and its
/// dependency jars.
pub const BOOT_CLASSES: &str = "BOOT-INF/classes/";
pub const BOOT_LIB: &str = "BOOT-INF/lib/";
/// Largest manifest read; real ones are a few kilobytes.
const MAX_MANIFEST: u64 = 1 << 20;
/// Most bytes a fat jar may unpack to for analysis.
const MAX_UNPACKED: u64 = 4 << 30;

/// The main section of a manifest, as far as mkimage cares.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    pub main_class: Option<String>,
    /// Class-Path: relative URLs of further jars (or directories, ending
    /// in `/`), percent-decoded, resolved against the jar's directory.
    pub class_path: Vec<String>,
    pub multi_release: bool,
}

/// Parses a manifest. Lines end in CR LF, LF or CR; a line that starts
/// with a space continues the one before (lines are at most 72 bytes);
/// the main section ends at the first blank line. Attribute names are
/// case-insensitive.
pub fn parse_manifest(bytes: &[u8]) -> Manifest {
    let text = String::from_utf8_lossy(bytes);
    let mut attributes: Vec<(String, String)> = Vec::new();
    for line in text.split("\r\n").flat_map(|l| l.split(['\n', '\r'])) {
        if line.is_empty() {
            if !attributes.is_empty() {
                break;
            }
            continue;
        }
        if let Some(more) = line.strip_prefix(' ') {
            if let Some((_, value)) = attributes.last_mut() {
                value.push_str(more);
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            let value = value.strip_prefix(' ').unwrap_or(value);
            attributes.push((name.trim().to_ascii_lowercase(), value.to_string()));
        }
    }
    let get = |name: &str| {
        attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.trim().to_string())
    };
    Manifest {
        main_class: get("main-class").filter(|v| !v.is_empty()),
        class_path: get("class-path")
            .map(|v| v.split_whitespace().map(percent_decode).collect())
            .unwrap_or_default(),
        multi_release: get("multi-release").is_some_and(|v| v.eq_ignore_ascii_case("true")),
    }
}

/// `%20` and the like in a relative URL.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether the file starts like a zip archive (a local file header, or
/// the end record of an empty archive).
pub fn is_zip(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && (magic == *b"PK\x03\x04" || magic == *b"PK\x05\x06")
}

/// What mkimage reads of a jar.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Jar {
    /// `None` when the jar has no manifest.
    pub manifest: Option<Manifest>,
    /// Names of the jars under BOOT-INF/lib/ (a Spring Boot fat jar).
    pub boot_libs: Vec<String>,
}

fn open(path: &Path) -> Result<zip::ZipArchive<File>, ArtifactError> {
    let file = File::open(path).map_err(|e| ArtifactError::io(path, e))?;
    zip::ZipArchive::new(file)
        .map_err(|e| ArtifactError::invalid(path.display(), format!("is not a jar (zip): {e}")))
}

/// Reads a jar's manifest and the names of what it nests.
pub fn read_jar(path: &Path) -> Result<Jar, ArtifactError> {
    let mut zip = open(path)?;
    let bad = |e: &dyn std::fmt::Display| ArtifactError::invalid(path.display(), e.to_string());
    let mut boot_libs: Vec<String> = zip
        .file_names()
        .filter_map(Result::ok)
        .filter(|n| {
            n.strip_prefix(BOOT_LIB)
                .is_some_and(|rest| !rest.contains('/') && rest.ends_with(".jar"))
        })
        .map(|n| n.into_owned())
        .collect();
    boot_libs.sort();
    let manifest = match zip.index_for_name(MANIFEST) {
        None => None,
        Some(i) => {
            let entry = zip.by_index(i).map_err(|e| bad(&e))?;
            let mut bytes = Vec::new();
            entry
                .take(MAX_MANIFEST)
                .read_to_end(&mut bytes)
                .map_err(|e| bad(&format!("{MANIFEST}: {e}")))?;
            Some(parse_manifest(&bytes))
        }
    };
    Ok(Jar {
        manifest,
        boot_libs,
    })
}

/// What a fat jar unpacks to for analysis: the app's classes and its
/// dependency jars.
#[derive(Debug, Default)]
pub struct Unpacked {
    pub classes: Option<PathBuf>,
    pub libs: Vec<PathBuf>,
}

/// Unpacks BOOT-INF/classes/ to `dir/classes` and BOOT-INF/lib/*.jar to
/// `dir/lib` (names the zip crate checks stay inside, `enclosed_name`).
pub fn unpack_boot(jar: &Path, dir: &Path) -> Result<Unpacked, ArtifactError> {
    let mut zip = open(jar)?;
    let bad = |e: &dyn std::fmt::Display| ArtifactError::invalid(jar.display(), e.to_string());
    let mut out = Unpacked::default();
    let mut total: u64 = 0;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| bad(&e))?;
        let Some(name) = entry.enclosed_name() else {
            continue;
        };
        let (dest, is_lib) = if let Ok(rest) = name.strip_prefix(BOOT_CLASSES) {
            (dir.join("classes").join(rest), false)
        } else if let Ok(rest) = name.strip_prefix(BOOT_LIB)
            && rest.components().count() == 1
            && rest.extension().is_some_and(|e| e == "jar")
        {
            (dir.join("lib").join(rest), true)
        } else {
            continue;
        };
        if entry.is_dir() {
            std::fs::create_dir_all(&dest).map_err(|e| ArtifactError::io(&dest, e))?;
            continue;
        }
        total = total.saturating_add(entry.size());
        if total > MAX_UNPACKED {
            return Err(bad(&format!(
                "unpacks to more than {} GiB",
                MAX_UNPACKED >> 30
            )));
        }
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| ArtifactError::io(parent, e))?;
        }
        let mut file = File::create(&dest).map_err(|e| ArtifactError::io(&dest, e))?;
        io::copy(&mut entry, &mut file).map_err(|e| bad(&format!("{}: {e}", name.display())))?;
        if is_lib {
            out.libs.push(dest);
        } else {
            out.classes = Some(dir.join("classes"));
        }
    }
    out.libs.sort();
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn manifests_parse_as_the_jar_spec_says() {
        let m = parse_manifest(
            b"Manifest-Version: 1.0\r\nMain-Class: com.example.Main\r\nClass-Path: lib/postgre\r\n sql.jar lib/my%20lib.jar\r\n  deps/\r\nmulti-release: TRUE\r\n\r\nName: x\r\nClass-Path: other.jar\r\n",
        );
        assert_eq!(m.main_class.as_deref(), Some("com.example.Main"));
        assert_eq!(
            m.class_path,
            ["lib/postgresql.jar", "lib/my lib.jar", "deps/"]
        );
        assert!(m.multi_release);
        let m = parse_manifest(b"Manifest-Version: 1.0\nClass-Path:\n");
        assert_eq!(m, Manifest::default());
        assert_eq!(parse_manifest(b"\xff\xfe garbage"), Manifest::default());
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%41%zz"), "A%zz");
    }

    /// A zip with `entries` (name, bytes), written with the zip crate.
    pub(crate) fn write_zip(path: &Path, entries: &[(&str, &[u8])]) {
        let mut w = zip::ZipWriter::new(File::create(path).unwrap());
        for (name, bytes) in entries {
            w.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            w.write_all(bytes).unwrap();
        }
        w.finish().unwrap();
    }

    #[test]
    fn reads_a_fat_jar_and_unpacks_its_parts() {
        let d = tempfile::tempdir().unwrap();
        let jar = d.path().join("boot.jar");
        write_zip(
            &jar,
            &[
                (
                    MANIFEST,
                    b"Main-Class: org.springframework.boot.loader.JarLauncher\n",
                ),
                ("org/springframework/boot/loader/JarLauncher.class", b"c"),
                ("BOOT-INF/classes/com/example/App.class", b"a"),
                ("BOOT-INF/lib/postgresql.jar", b"PK\x05\x06"),
                ("BOOT-INF/lib/nested/not-a-lib.jar", b"x"),
                ("../escape.jar", b"x"),
            ],
        );
        assert!(is_zip(&jar));
        let j = read_jar(&jar).unwrap();
        assert_eq!(j.boot_libs, ["BOOT-INF/lib/postgresql.jar"]);
        assert!(j.manifest.unwrap().main_class.is_some());
        let out = d.path().join("out");
        let u = unpack_boot(&jar, &out).unwrap();
        assert_eq!(u.libs, [out.join("lib/postgresql.jar")]);
        assert_eq!(u.classes, Some(out.join("classes")));
        assert!(out.join("classes/com/example/App.class").is_file());
        assert!(!d.path().join("escape.jar").exists());

        let not = d.path().join("not.jar");
        std::fs::write(&not, b"hello").unwrap();
        assert!(!is_zip(&not));
        let err = read_jar(&not).unwrap_err().to_string();
        assert!(
            err.contains("is not a jar (zip)") && err.contains("not.jar"),
            "{err}"
        );
    }
}
