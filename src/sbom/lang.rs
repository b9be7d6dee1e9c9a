//! Language packages in the image, found the way scanners find them:
//! Python distributions by `*.dist-info/METADATA` (core metadata,
//! packaging.python.org "Core metadata specifications"), npm packages by
//! `node_modules/[@scope/]name/package.json`, and Maven artifacts by the
//! `META-INF/maven/<group>/<artifact>/pom.properties` that Maven writes
//! into every jar it builds. The parsers are pure; [`find`] reads the
//! files of the file tree.

use std::collections::BTreeMap;
use std::io::{Cursor, Read, Seek};
use std::path::{Component, Path};

use serde_json::Value;

use crate::rootfs::{Entry, ImagePath, Kind, LayerSet, Source};

/// Largest metadata file read: real ones are a few kB (numpy's METADATA
/// is 60 kB), and a bigger one is not metadata.
const METADATA_LIMIT: u64 = 4 * 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Ecosystem {
    Pypi,
    Npm,
    Maven,
}

impl Ecosystem {
    pub fn name(self) -> &'static str {
        match self {
            Ecosystem::Pypi => "pypi",
            Ecosystem::Npm => "npm",
            Ecosystem::Maven => "maven",
        }
    }
}

/// One package of a language ecosystem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LangPackage {
    pub ecosystem: Ecosystem,
    /// Maven's groupId, or an npm scope (`@types`).
    pub namespace: Option<String>,
    pub name: String,
    pub version: String,
    /// As declared (a classifier-free `License:` or an SPDX expression).
    pub license: Option<String>,
    /// Who wrote it, as the metadata says (`Name <mail>`).
    pub author: Option<String>,
    /// The metadata file it was found by.
    pub location: ImagePath,
}

impl LangPackage {
    /// The package URL (purl-spec: PURL-TYPES.rst): PyPI names are
    /// lowercased with `_` as `-`; an npm scope's `@` is percent-encoded.
    pub fn purl(&self) -> String {
        let version = super::purl_encode(&self.version);
        match self.ecosystem {
            Ecosystem::Pypi => format!(
                "pkg:pypi/{}@{version}",
                super::purl_encode(&self.name.to_ascii_lowercase().replace('_', "-"))
            ),
            Ecosystem::Npm => match &self.namespace {
                Some(scope) => format!(
                    "pkg:npm/{}/{}@{version}",
                    super::purl_encode(scope),
                    super::purl_encode(&self.name)
                ),
                None => format!("pkg:npm/{}@{version}", super::purl_encode(&self.name)),
            },
            Ecosystem::Maven => format!(
                "pkg:maven/{}/{}@{version}",
                super::purl_encode(self.namespace.as_deref().unwrap_or_default()),
                super::purl_encode(&self.name)
            ),
        }
    }

    /// What identifies the package whatever file it was found by.
    fn key(&self) -> (Ecosystem, Option<String>, String, String) {
        let name = match self.ecosystem {
            Ecosystem::Pypi => self.name.to_ascii_lowercase().replace('_', "-"),
            _ => self.name.clone(),
        };
        (
            self.ecosystem,
            self.namespace.clone(),
            name,
            self.version.clone(),
        )
    }
}

/// Every language package in the layers, each once (the first place it
/// is found by, in path order), sorted by ecosystem, name and version.
/// Files that cannot be read or parsed are skipped with a warning.
pub fn find(layers: &LayerSet, warnings: &mut Vec<String>) -> Vec<LangPackage> {
    let mut found: BTreeMap<_, LangPackage> = BTreeMap::new();
    let mut add = |p: LangPackage| {
        found.entry(p.key()).or_insert(p);
    };
    for (_, tree) in layers.layers() {
        for (path, entry) in tree.iter() {
            let Kind::File { source, .. } = &entry.kind else {
                continue;
            };
            let p = path.as_path();
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let parent = p.parent().and_then(Path::file_name);
            let result: Result<Vec<LangPackage>, String> = if name == "METADATA"
                && parent.is_some_and(|d| d.to_string_lossy().ends_with(".dist-info"))
            {
                read(entry).map(|b| {
                    pypi_metadata(&String::from_utf8_lossy(&b), path)
                        .into_iter()
                        .collect()
                })
            } else if name == "package.json" && in_node_modules(p) {
                read(entry).map(|b| npm_package(&b, path).into_iter().collect())
            } else if name.ends_with(".jar") {
                jar_artifacts(source, path)
            } else {
                continue;
            };
            match result {
                Ok(list) => list.into_iter().for_each(&mut add),
                Err(why) => warnings.push(format!(
                    "{path}: {why}; the SBOM does not list what it describes"
                )),
            }
        }
    }
    found.into_values().collect()
}

/// `…/node_modules/NAME/package.json` or `…/node_modules/@SCOPE/NAME/package.json`.
fn in_node_modules(p: &Path) -> bool {
    let c: Vec<Component> = p.components().collect();
    let n = c.len();
    let is = |i: usize, s: &str| n > i && c[n - 1 - i].as_os_str() == s;
    let scoped = n > 3 && c[n - 3].as_os_str().to_string_lossy().starts_with('@');
    is(2, "node_modules") || (scoped && is(3, "node_modules"))
}

fn read(entry: &Entry) -> Result<Vec<u8>, String> {
    match &entry.kind {
        Kind::File {
            source: Source::Bytes(b),
            ..
        } => Ok(b.to_vec()),
        Kind::File {
            source: Source::Host(h),
            ..
        } => {
            let f =
                std::fs::File::open(h).map_err(|e| format!("cannot read {}: {e}", h.display()))?;
            let mut out = Vec::new();
            f.take(METADATA_LIMIT)
                .read_to_end(&mut out)
                .map_err(|e| format!("cannot read {}: {e}", h.display()))?;
            Ok(out)
        }
        _ => Ok(Vec::new()),
    }
}

/// Core metadata: RFC 822 headers up to the first blank line.
pub fn pypi_metadata(text: &str, location: &ImagePath) -> Option<LangPackage> {
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = headers.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let get = |k: &str| {
        headers
            .iter()
            .find(|(n, v)| n == k && !v.is_empty() && v != "UNKNOWN")
            .map(|(_, v)| v.clone())
    };
    let author = match (get("author"), get("author-email")) {
        (Some(a), Some(e)) if !e.contains('<') => Some(format!("{a} <{e}>")),
        (_, Some(e)) => Some(e),
        (Some(a), None) => Some(a),
        (None, None) => get("maintainer-email").or_else(|| get("maintainer")),
    };
    Some(LangPackage {
        ecosystem: Ecosystem::Pypi,
        namespace: None,
        name: get("name")?,
        version: get("version")?,
        // Metadata 2.4's License-Expression is SPDX; License is free text.
        license: get("license-expression").or_else(|| get("license")),
        author,
        location: location.clone(),
    })
}

/// An installed package's `package.json` (npm's docs, "package.json").
pub fn npm_package(bytes: &[u8], location: &ImagePath) -> Option<LangPackage> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    let full = v["name"].as_str()?;
    let version = v["version"].as_str()?.to_owned();
    let (namespace, name) = match full.split_once('/') {
        Some((scope, name)) if scope.starts_with('@') => (Some(scope.to_owned()), name.to_owned()),
        _ => (None, full.to_owned()),
    };
    let person = |p: &Value| match p {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => {
            let name = o.get("name")?.as_str()?;
            Some(match o.get("email").and_then(Value::as_str) {
                Some(e) => format!("{name} <{e}>"),
                None => name.to_owned(),
            })
        }
        _ => None,
    };
    let author = person(&v["author"])
        .or_else(|| v["maintainers"].as_array()?.first().and_then(person))
        .or_else(|| v["contributors"].as_array()?.first().and_then(person));
    let license = match &v["license"] {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("type").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    };
    Some(LangPackage {
        ecosystem: Ecosystem::Npm,
        namespace,
        name,
        version,
        license,
        author,
        location: location.clone(),
    })
}

/// `pom.properties`: Java properties with groupId, artifactId, version.
pub fn pom_properties(text: &str, location: &ImagePath) -> Option<LangPackage> {
    let mut get = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with(['#', '!']) {
            continue;
        }
        if let Some((k, v)) = line.split_once(['=', ':']) {
            get.insert(k.trim().to_owned(), v.trim().to_owned());
        }
    }
    Some(LangPackage {
        ecosystem: Ecosystem::Maven,
        namespace: Some(get.get("groupId")?.clone()),
        name: get.get("artifactId")?.clone(),
        version: get.get("version")?.clone(),
        license: None,
        author: None,
        location: location.clone(),
    })
}

/// The Maven artifacts a jar says it holds. Only the jar's own entries:
/// jars nested inside (a Spring Boot `BOOT-INF/lib`) are not opened.
fn jar_artifacts(source: &Source, path: &ImagePath) -> Result<Vec<LangPackage>, String> {
    match source {
        Source::Host(h) => {
            let f =
                std::fs::File::open(h).map_err(|e| format!("cannot read {}: {e}", h.display()))?;
            jar_entries(std::io::BufReader::new(f), path)
        }
        Source::Bytes(b) => jar_entries(Cursor::new(b.as_ref()), path),
    }
}

fn jar_entries(r: impl Read + Seek, path: &ImagePath) -> Result<Vec<LangPackage>, String> {
    let mut zip = zip::ZipArchive::new(r).map_err(|e| format!("not a readable jar: {e}"))?;
    let names: Vec<String> = zip
        .file_names()
        .filter_map(Result::ok)
        .filter(|n| n.starts_with("META-INF/maven/") && n.ends_with("/pom.properties"))
        .map(|n| n.into_owned())
        .collect();
    let mut out = Vec::new();
    for n in names {
        let mut text = String::new();
        zip.by_name(&n)
            .map_err(|e| format!("{n}: {e}"))?
            .take(METADATA_LIMIT)
            .read_to_string(&mut text)
            .map_err(|e| format!("{n}: {e}"))?;
        out.extend(pom_properties(&text, path));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(p: &str) -> ImagePath {
        ImagePath::new(p).unwrap()
    }

    #[test]
    fn pypi_npm_and_maven_metadata() {
        let m = pypi_metadata(
            "Metadata-Version: 2.1\nName: charset_normalizer\nVersion: 3.4.0\nAuthor: Ahmed TAHRI\nAuthor-email: tahri.ahmed@proton.me\nLicense: MIT\nClassifier: a\nClassifier: b\n\nName: not-me\n",
            &at("/v/METADATA"),
        )
        .unwrap();
        assert_eq!(m.purl(), "pkg:pypi/charset-normalizer@3.4.0");
        assert_eq!(
            m.author.as_deref(),
            Some("Ahmed TAHRI <tahri.ahmed@proton.me>")
        );
        assert_eq!(m.license.as_deref(), Some("MIT"));
        assert!(pypi_metadata("Name: x\n", &at("/m")).is_none());

        let n = npm_package(
            br#"{"name":"@types/node","version":"1.0.0-rc.1","license":"MIT","author":{"name":"A","email":"a@b"}}"#,
            &at("/p"),
        )
        .unwrap();
        assert_eq!(n.purl(), "pkg:npm/%40types/node@1.0.0-rc.1");
        assert_eq!(n.author.as_deref(), Some("A <a@b>"));
        assert!(npm_package(b"{\"name\":1}", &at("/p")).is_none());
        assert!(npm_package(b"not json", &at("/p")).is_none());

        let j = pom_properties(
            "#Generated by Maven\ngroupId=com.example\nartifactId=app\nversion=1.2\n",
            &at("/app.jar"),
        )
        .unwrap();
        assert_eq!(j.purl(), "pkg:maven/com.example/app@1.2");
    }

    #[test]
    fn node_modules_layout() {
        for (p, want) in [
            ("/app/node_modules/express/package.json", true),
            ("/app/node_modules/@types/node/package.json", true),
            ("/app/node_modules/express/lib/package.json", false),
            ("/app/package.json", false),
            ("/app/node_modules/a/node_modules/b/package.json", true),
        ] {
            assert_eq!(in_node_modules(Path::new(p)), want, "{p}");
        }
    }
}
