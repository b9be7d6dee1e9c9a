//! The class path of the image's Java app: the jars the user's inputs
//! put in the image (`--from-jar`, and the jars of `--from-dir` and
//! `--include` trees) and the image paths their manifests' Class-Path
//! names. It says which jars are libraries (the dependencies layer) and
//! what jdeps analyses for `--jlink`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::image_path::normalise;
use crate::rootfs::ImagePath;

use super::jar::{is_zip, read_jar};
use super::{ArtifactError, source_name};

/// A jar that a Class-Path names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Named {
    /// The jar whose manifest names it (its file name, for messages).
    pub by: String,
    /// Where it is on the host: beside the naming jar, or where an input
    /// tree has it; `None` if neither has it.
    pub host: Option<PathBuf>,
}

#[derive(Clone, Debug, Default)]
pub struct ClassPath {
    /// The jars the app runs (`--from-jar`): host path, image path.
    pub apps: Vec<(PathBuf, ImagePath)>,
    /// The jars of the user's trees, by image path.
    pub tree_jars: BTreeMap<ImagePath, PathBuf>,
    /// Image paths a Class-Path names (jars only; directories are left
    /// to the class loader).
    pub named: BTreeMap<ImagePath, Named>,
    /// Jars that could not be read, for the build's warnings.
    pub warnings: Vec<String>,
}

impl ClassPath {
    /// Reads the manifests of `apps` and of every jar in `trees` (each a
    /// host path and where it goes in the image; a tree may be one file).
    pub fn scan(
        apps: &[(&Path, &ImagePath)],
        trees: &[(&Path, &ImagePath)],
    ) -> Result<ClassPath, ArtifactError> {
        let mut cp = ClassPath {
            apps: apps
                .iter()
                .map(|(h, i)| (h.to_path_buf(), (*i).clone()))
                .collect(),
            ..ClassPath::default()
        };
        for (host, image) in trees {
            cp.find_jars(host, image)?;
        }
        let mut jars: Vec<(PathBuf, ImagePath)> = cp.apps.clone();
        jars.extend(cp.tree_jars.iter().map(|(i, h)| (h.clone(), i.clone())));
        for (host, image) in jars {
            let manifest = match read_jar(&host) {
                Ok(jar) => jar.manifest,
                Err(e) => {
                    cp.warnings
                        .push(format!("{e}; its Class-Path, if any, is not read"));
                    continue;
                }
            };
            let Some(manifest) = manifest else { continue };
            let dir = image.parent().unwrap_or_else(ImagePath::root);
            let host_dir = host.parent().unwrap_or(Path::new("/"));
            for entry in &manifest.class_path {
                // Absolute URLs (file:, http:) name nothing in the image;
                // a trailing / is a directory of classes.
                if entry.contains(':') || entry.ends_with('/') || entry.starts_with('/') {
                    continue;
                }
                let Ok(target) = ImagePath::new(normalise(&dir.as_path().join(entry))) else {
                    continue;
                };
                let beside = host_dir.join(entry);
                let found = if beside.is_file() {
                    Some(beside)
                } else {
                    cp.tree_jars.get(&target).cloned()
                };
                cp.named.entry(target).or_insert(Named {
                    by: source_name(&host),
                    host: found,
                });
            }
        }
        Ok(cp)
    }

    /// Adds the jars (zip files named `*.jar`) of the tree at `host`.
    fn find_jars(&mut self, host: &Path, image: &ImagePath) -> Result<(), ArtifactError> {
        let meta = std::fs::metadata(host).map_err(|e| ArtifactError::io(host, e))?;
        if meta.is_file() {
            if is_jar(host) {
                self.tree_jars.insert(image.clone(), host.to_path_buf());
            }
            return Ok(());
        }
        let walk = walkdir::WalkDir::new(host)
            .follow_links(false)
            .sort_by_file_name();
        for item in walk {
            let item = item.map_err(|e| {
                let path = e.path().unwrap_or(host).to_path_buf();
                ArtifactError::io(&path, e.into())
            })?;
            if !item.file_type().is_file() || !is_jar(item.path()) {
                continue;
            }
            let rel = item.path().strip_prefix(host).unwrap_or(item.path());
            self.tree_jars
                .insert(image.join(rel)?, item.path().to_path_buf());
        }
        Ok(())
    }

    /// Every jar jdeps should see, on the host, each once, in order:
    /// the apps, the jars their Class-Path names, the trees' jars.
    pub fn host_jars(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        let all = self
            .apps
            .iter()
            .map(|(h, _)| h.clone())
            .chain(self.named.values().filter_map(|n| n.host.clone()))
            .chain(self.tree_jars.values().cloned());
        for p in all {
            let key = std::fs::canonicalize(&p).unwrap_or_else(|_| p.clone());
            if seen.insert(key) {
                out.push(p);
            }
        }
        out
    }
}

fn is_jar(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "jar") && is_zip(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::jar::tests::write_zip;

    fn p(s: &str) -> ImagePath {
        ImagePath::new(s).unwrap()
    }

    #[test]
    fn finds_the_jars_a_class_path_names_beside_it_or_in_a_tree() {
        let d = tempfile::tempdir().unwrap();
        let app = d.path().join("build/app.jar");
        std::fs::create_dir_all(app.parent().unwrap()).unwrap();
        write_zip(
            &app,
            &[(
                "META-INF/MANIFEST.MF",
                b"Main-Class: Main\nClass-Path: deps/driver.jar lib/ ../shared/x.jar http://e/y.jar\n",
            )],
        );
        let deps = d.path().join("deps");
        std::fs::create_dir_all(deps.join("sub")).unwrap();
        write_zip(&deps.join("driver.jar"), &[("a", b"")]);
        write_zip(&deps.join("sub/other.jar"), &[("a", b"")]);
        std::fs::write(deps.join("fake.jar"), b"not a zip").unwrap();
        std::fs::write(deps.join("notes.txt"), b"").unwrap();

        let (app_dst, deps_dst) = (p("/app/app.jar"), p("/app/deps"));
        let cp = ClassPath::scan(&[(&app, &app_dst)], &[(&deps, &deps_dst)]).unwrap();
        let jars: Vec<String> = cp.tree_jars.keys().map(|k| k.to_string()).collect();
        assert_eq!(jars, ["/app/deps/driver.jar", "/app/deps/sub/other.jar"]);
        let named: Vec<(String, Option<PathBuf>)> = cp
            .named
            .iter()
            .map(|(k, n)| (k.to_string(), n.host.clone()))
            .collect();
        assert_eq!(
            named,
            [
                (
                    "/app/deps/driver.jar".to_string(),
                    Some(deps.join("driver.jar"))
                ),
                ("/shared/x.jar".to_string(), None),
            ]
        );
        assert_eq!(cp.named[&p("/app/deps/driver.jar")].by, "app.jar");
        assert_eq!(
            cp.host_jars(),
            [
                app.clone(),
                deps.join("driver.jar"),
                deps.join("sub/other.jar")
            ]
        );
        assert!(cp.warnings.is_empty(), "{:?}", cp.warnings);
    }
}
