//! Which layer a file of a user's tree goes to. Third-party code goes to
//! the dependencies layer, so that changing only the app's own code
//! changes only the last layer (and a push re-sends only it). Decided by
//! the file's image path and by what the file is:
//!
//! * anything below `node_modules`, `site-packages`, `dist-packages` or
//!   `.venv`;
//! * anything below `WEB-INF/lib` (a web app's jars, Servlet spec) or
//!   `BOOT-INF/lib` (an unpacked Spring Boot jar);
//! * a jar (a zip file named `*.jar`) that an app jar's manifest names in
//!   its Class-Path, or that sits in a directory named `lib` or `libs`.
//!
//! Everything else is the app's.

use std::collections::BTreeSet;
use std::path::{Component, Path};

use crate::rootfs::{ImagePath, LayerKind};

use super::jar::is_zip;

/// Directories whose whole contents are third-party packages.
const PACKAGE_DIRS: &[&str] = &["node_modules", "site-packages", "dist-packages", ".venv"];
/// `PARENT/lib` directories of library jars.
const JAR_LIB_PARENTS: &[&str] = &["WEB-INF", "BOOT-INF"];
/// Directory names that hold a Java app's library jars.
const LIB_DIRS: &[&str] = &["lib", "libs"];

/// The rule, with the jars a Class-Path names.
#[derive(Clone, Debug, Default)]
pub struct Layering {
    class_path: BTreeSet<ImagePath>,
}

impl Layering {
    pub fn new(class_path: impl IntoIterator<Item = ImagePath>) -> Self {
        Layering {
            class_path: class_path.into_iter().collect(),
        }
    }

    /// The layer of the file at `image`, whose bytes are at `host`.
    pub fn layer(&self, image: &ImagePath, host: &Path) -> LayerKind {
        let parts: Vec<&str> = image
            .as_path()
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => n.to_str(),
                _ => None,
            })
            .collect();
        let in_packages = parts.iter().any(|p| PACKAGE_DIRS.contains(p));
        let in_jar_lib = parts
            .windows(2)
            .any(|w| JAR_LIB_PARENTS.contains(&w[0]) && w[1] == "lib");
        if in_packages || in_jar_lib {
            return LayerKind::Deps;
        }
        let named = self.class_path.contains(image);
        let in_lib_dir = parts.len() >= 2 && LIB_DIRS.contains(&parts[parts.len() - 2]);
        let is_jar = image.as_path().extension().is_some_and(|e| e == "jar");
        if is_jar && (named || in_lib_dir) && is_zip(host) {
            return LayerKind::Deps;
        }
        LayerKind::App
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_by_image_path_and_content() {
        let d = tempfile::tempdir().unwrap();
        let zip = d.path().join("a.jar");
        crate::artifact::jar::tests::write_zip(&zip, &[("x", b"")]);
        let text = d.path().join("b.jar");
        std::fs::write(&text, b"not a zip").unwrap();
        let rule = Layering::new([ImagePath::new("/app/deps/driver.jar").unwrap()]);
        let cases = [
            ("/app/node_modules/express/index.js", &text, LayerKind::Deps),
            ("/app/node_modules", &text, LayerKind::Deps),
            (
                "/srv/venv/lib/python3.11/site-packages/x.py",
                &text,
                LayerKind::Deps,
            ),
            ("/app/WEB-INF/lib/spring.jar", &zip, LayerKind::Deps),
            ("/app/BOOT-INF/lib/spring.jar", &zip, LayerKind::Deps),
            ("/app/BOOT-INF/classes/App.class", &text, LayerKind::App),
            ("/app/lib/postgresql.jar", &zip, LayerKind::Deps),
            ("/opt/libs/postgresql.jar", &zip, LayerKind::Deps),
            ("/app/deps/driver.jar", &zip, LayerKind::Deps),
            ("/app/deps/other.jar", &zip, LayerKind::App),
            ("/app/app.jar", &zip, LayerKind::App),
            // Named like a jar, but not one.
            ("/app/lib/notes.jar", &text, LayerKind::App),
            ("/app/lib/helper.js", &text, LayerKind::App),
            ("/app/index.js", &text, LayerKind::App),
        ];
        for (image, host, want) in cases {
            let image = ImagePath::new(image).unwrap();
            assert_eq!(rule.layer(&image, host), want, "{image}");
        }
    }
}
