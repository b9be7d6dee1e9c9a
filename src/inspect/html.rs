//! `mkimage inspect IMAGE --html FILE [--diff OTHER]`: one self-contained
//! page to look at an image's bytes. It reads nothing new: the summary,
//! the merged file tree and the provenance that `inspect` already reads
//! go into the page as embedded JSON, and the page's own script
//! (`report.html`, inlined: no network, no external file) draws the
//! treemap (layer ▸ package ▸ directory), the tables, each file's
//! why-chain, and the comparison with OTHER.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{FileKind, FileTree, Image, InspectError, Summary, WhyStep};
use crate::oci::provenance::Provenance;

/// The page; `/*MKIMAGE-DATA*/` is replaced by the JSON.
const TEMPLATE: &str = include_str!("report.html");
const PLACEHOLDER: &str = "/*MKIMAGE-DATA*/";

/// One file for the page: `[path, kind, size, layer, package, chain,
/// target]`.
type PageFile = (String, char, u64, usize, i64, i64, Option<String>);

/// What the page shows of one image.
#[derive(Serialize)]
struct Side<'a> {
    summary: &'a Summary,
    /// Arrays, not objects, so a 10,000-file image stays a page of a few
    /// MiB. Kind is one letter (f, d, l, h, o); package and chain index
    /// `packages` and `chains`, -1 for none.
    files: Vec<PageFile>,
    packages: Vec<String>,
    /// Distinct why-chains, the file first, then what needed it.
    chains: Vec<Vec<WhyStep>>,
    /// Whether the image has provenance (built by mkimage).
    provenance: bool,
}

#[derive(Serialize)]
struct Data<'a> {
    image: Side<'a>,
    /// The image compared against (`--diff OTHER`): the older one.
    other: Option<Side<'a>>,
}

/// An image's tree and provenance, read once for the page.
pub struct Loaded {
    tree: FileTree,
    provenance: Option<Provenance>,
}

impl Loaded {
    /// This image for [`super::diff::diff`].
    pub fn side(&self) -> super::diff::Side<'_> {
        super::diff::Side {
            tree: &self.tree,
            provenance: self.provenance.as_ref(),
        }
    }
}

/// Reads `image`'s layers and provenance (an image mkimage did not build
/// has none: its page lacks why-chains, nothing else).
pub fn load(image: &mut Image) -> Result<Loaded, InspectError> {
    let tree = image.files()?;
    let provenance = match image.provenance() {
        Ok(p) => Some(p),
        Err(InspectError::NotBuiltByMkimage { .. } | InspectError::ProvenanceMissing { .. }) => {
            None
        }
        Err(e) => return Err(e),
    };
    Ok(Loaded { tree, provenance })
}

/// The page for `image` (with `other` to compare against).
pub fn render(image: (&Image, &Loaded), other: Option<(&Image, &Loaded)>) -> String {
    let data = Data {
        image: side(image.0.summary(), image.1),
        other: other.map(|(i, l)| side(i.summary(), l)),
    };
    // Serialising plain strings and numbers cannot fail.
    let json = serde_json::to_string(&data).unwrap_or_default();
    TEMPLATE.replacen(PLACEHOLDER, &embeddable(&json), 1)
}

/// JSON fit for a `<script>` element: `</script>` or `<!--` in a file
/// name would end or change the element, so every `<`, `>` and `&` is
/// spelled as a \u escape (the same string to JSON.parse), which the HTML
/// parser never looks into (HTML, "Restrictions for contents of script
/// elements").
fn embeddable(json: &str) -> String {
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

fn side<'a>(summary: &'a Summary, loaded: &Loaded) -> Side<'a> {
    let mut packages: BTreeMap<String, i64> = BTreeMap::new();
    for f in loaded.tree.iter() {
        if let Some(p) = &f.package {
            packages.entry(p.clone()).or_insert(0);
        }
    }
    for (i, v) in packages.values_mut().enumerate() {
        *v = i as i64;
    }
    let mut chains: Vec<Vec<WhyStep>> = Vec::new();
    let mut chain_of: BTreeMap<String, i64> = BTreeMap::new();
    let files = loaded
        .tree
        .iter()
        .map(|f| {
            let kind = match f.kind {
                FileKind::File => 'f',
                FileKind::Dir => 'd',
                FileKind::Symlink => 'l',
                FileKind::Hardlink => 'h',
                FileKind::Other => 'o',
            };
            let package = f
                .package
                .as_ref()
                .and_then(|p| packages.get(p).copied())
                .unwrap_or(-1);
            let chain = match (&loaded.provenance, recorded(loaded, &f.path)) {
                (Some(p), Some(rec)) => *chain_of.entry(rec.clone()).or_insert_with(|| {
                    chains.push(
                        p.chain(&rec)
                            .into_iter()
                            .map(|(path, o)| WhyStep {
                                path: path.to_owned(),
                                layer: o.layer.clone(),
                                why: o.why.clone(),
                            })
                            .collect(),
                    );
                    chains.len() as i64 - 1
                }),
                _ => -1,
            };
            (
                f.path.clone(),
                kind,
                f.size,
                f.layer,
                package,
                chain,
                f.target.clone(),
            )
        })
        .collect();
    Side {
        summary,
        files,
        packages: packages.into_keys().collect(),
        chains,
        provenance: loaded.provenance.is_some(),
    }
}

/// The provenance entry that speaks for `path`, as `inspect --why` finds
/// it: the path itself, else its resolved path or the nearest recorded
/// directory above that (a time zone under /usr/share/zoneinfo).
fn recorded(loaded: &Loaded, path: &str) -> Option<String> {
    let p = loaded.provenance.as_ref()?;
    if p.files.contains_key(path) {
        return Some(path.to_owned());
    }
    let resolved = loaded.tree.resolve(path)?;
    let mut at = Some(resolved.as_str());
    while let Some(dir) = at {
        if p.files.contains_key(dir) {
            return Some(dir.to_owned());
        }
        at = dir
            .rsplit_once('/')
            .map(|(d, _)| d)
            .filter(|d| !d.is_empty());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_cannot_close_its_script_element() {
        let name = "/x</script><script>alert(1)</script><!--&amp;";
        let json = serde_json::to_string(&[name]).unwrap();
        let safe = embeddable(&json);
        assert!(!safe.contains(['<', '>', '&']), "{safe}");
        let back: Vec<String> = serde_json::from_str(&safe).unwrap();
        assert_eq!(back, [name]);
        assert_eq!(TEMPLATE.matches(PLACEHOLDER).count(), 1);
    }
}
