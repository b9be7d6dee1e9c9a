//! What artifacts add to while a build gathers them: the layer trees, the
//! resolver, messages for the user, and why every file is there. Its
//! fields are private so that the rules that tie them together hold: a
//! file added is a file recorded, a profile's file replaced is a reason
//! forgotten, the image's architecture is the first program's, and what
//! the build writes is taken out once, by [`Assembly::finish`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::elf::{Arch, Ident};
use crate::resolve::{Input, Link, Resolver};
use crate::rootfs::base_view::BaseView;
use crate::rootfs::host::{self, Grant};
use crate::rootfs::{Entry, ImagePath, LayerKind, LayerSet};

use super::ArtifactError;

/// Why one image path is in the image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// For people: which artifact, and which dependency brought it in.
    pub why: String,
    /// The image path of the file that needs this one (a library's
    /// requester), so `inspect --why` can walk the chain back to the
    /// artifact.
    pub needed_by: Option<String>,
}

/// A symlink of a user's tree that leads out of it, kept as it is.
#[derive(Clone, Debug)]
pub struct KeptLink {
    pub at: ImagePath,
    /// Where the link is on the host.
    pub host: PathBuf,
    pub target: PathBuf,
    pub layer: LayerKind,
    pub origin: String,
}

/// What artifacts add to: the layer trees, the resolver (shared so ELF
/// headers are read once), messages for the user, and where every file
/// came from.
pub struct Assembly {
    /// Public: every artifact looks files up in the root and resolves
    /// through it, and the resolver's own methods are that interface;
    /// the assembly adds no rule to them.
    pub resolver: Resolver,
    /// Public: the build reads the trees (checks, `ld.so.cache`, users)
    /// and rewrites them as a whole (base files, hard links) through
    /// [`LayerSet`]'s methods. Files added for a reason go through
    /// [`Assembly::add`] and its kin, which record it.
    pub layers: LayerSet,
    warnings: Vec<String>,
    /// Informational lines for the summary (e.g. jlink sizes).
    notes: Vec<String>,
    /// How the resolver found each library, one line each, for `-v`.
    reasoning: Vec<String>,
    /// Image path → why it is in the image (for `mkimage inspect --why`).
    provenance: BTreeMap<String, Origin>,
    /// The program `--dlopen` libraries are opened by: the first one added.
    main_input: Option<Input>,
    /// Temporary trees (a jlink runtime) read when layers are written.
    temps: Vec<tempfile::TempDir>,
    /// The architecture of the first program added: the image's.
    ident: Option<Ident>,
    /// The platform `--platform` gave, which every program must match.
    platform: Option<Arch>,
    /// Files a profile wrote (its `[[file]]`s), which a later input at
    /// the same path replaces: their layer and who wrote them.
    generated: BTreeMap<ImagePath, (LayerKind, String)>,
    /// Symlinks of users' trees that lead out of them, kept as links
    /// ([`super::dir::Links::Keep`]); checked once the image is complete.
    kept_links: Vec<KeptLink>,
    /// `--base`: the base image's files; libraries it has where the
    /// loader looks are used from it and not copied.
    base: Option<Arc<BaseView>>,
    /// Programs that import `iconv_open` (image paths), for `--gconv auto`.
    iconv_users: Vec<String>,
}

/// What the artifacts gathered, taken out of the [`Assembly`] for the
/// build to write: the layer trees, why each file is there, and what to
/// tell the user.
pub struct Gathered {
    pub layers: LayerSet,
    /// Image path → why it is in the image; paths no layer holds (a
    /// file a later input replaced) are among them.
    pub provenance: BTreeMap<String, Origin>,
    pub warnings: Vec<String>,
    /// Informational lines for the summary (e.g. jlink sizes).
    pub notes: Vec<String>,
    /// How the resolver found each library, one line each, for `-v`.
    pub reasoning: Vec<String>,
    /// Temporary trees the layers' files are read from (a jlink runtime,
    /// `--copy-from` extracts): held until the layers are written.
    pub temps: Vec<tempfile::TempDir>,
}

impl Assembly {
    /// An empty image for `platform` (`--platform`, or a base image's),
    /// which every program must match; `base` is the `--base` image's
    /// files, whose libraries are used from it.
    pub fn new(resolver: Resolver, platform: Option<Arch>, base: Option<Arc<BaseView>>) -> Self {
        Assembly {
            resolver,
            layers: LayerSet::default(),
            warnings: Vec::new(),
            notes: Vec::new(),
            reasoning: Vec::new(),
            provenance: BTreeMap::new(),
            main_input: None,
            temps: Vec::new(),
            ident: None,
            platform,
            kept_links: Vec::new(),
            generated: BTreeMap::new(),
            base,
            iconv_users: Vec::new(),
        }
    }

    /// Ends the gathering: what the build writes. Kept links must have
    /// been checked ([`Assembly::check_kept_links`]) by then.
    pub fn finish(self) -> Gathered {
        debug_assert!(self.kept_links.is_empty(), "kept links not checked");
        Gathered {
            layers: self.layers,
            provenance: self.provenance,
            warnings: self.warnings,
            notes: self.notes,
            reasoning: self.reasoning,
            temps: self.temps,
        }
    }

    /// A warning for the user, in the order given.
    pub fn warn(&mut self, warning: impl Into<String>) {
        self.warnings.push(warning.into());
    }

    /// [`Assembly::warn`] for each of `warnings`, as collected by code
    /// that writes to a `Vec` while it borrows the assembly's root.
    pub fn warn_all(&mut self, warnings: impl IntoIterator<Item = String>) {
        self.warnings.extend(warnings);
    }

    /// An informational line for the summary.
    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// Adds a note unless it is there already.
    pub fn note_once(&mut self, note: String) {
        if !self.notes.contains(&note) {
            self.notes.push(note);
        }
    }

    /// A line of the resolver's reasoning, shown with `-v`.
    pub fn explain(&mut self, line: String) {
        self.reasoning.push(line);
    }

    /// Keeps a temporary tree alive until the layers are written.
    pub fn keep_temp(&mut self, dir: tempfile::TempDir) {
        self.temps.push(dir);
    }

    /// The platform every program must match, if one was given.
    pub fn platform(&self) -> Option<Arch> {
        self.platform
    }

    /// The architecture of the first program added: the image's.
    pub fn ident(&self) -> Option<Ident> {
        self.ident
    }

    /// The image's platform as its first program says it; `None` before
    /// a program was added.
    pub fn arch(&self) -> Option<Arch> {
        self.ident.and_then(|i| i.arch())
    }

    /// The `--base` image's files, if there is one.
    pub fn base(&self) -> Option<&BaseView> {
        self.base.as_deref()
    }

    /// Offers a program as the one `--dlopen` libraries are opened by:
    /// the first offered is kept.
    pub fn offer_main_input(&mut self, input: Input) {
        if self.main_input.is_none() {
            self.main_input = Some(input);
        }
    }

    /// The program `--dlopen` libraries are opened by, if one was added.
    pub fn main_input(&self) -> Option<&Input> {
        self.main_input.as_ref()
    }

    /// Records that the program at `image` imports `iconv_open`.
    pub fn add_iconv_user(&mut self, image: String) {
        self.iconv_users.push(image);
    }

    /// The programs that import `iconv_open`, in the order added.
    pub fn iconv_users(&self) -> &[String] {
        &self.iconv_users
    }

    /// A symlink of a user's tree that leads out of it, kept as a link
    /// and checked by [`Assembly::check_kept_links`].
    pub fn keep_link(&mut self, link: KeptLink) {
        self.kept_links.push(link);
    }

    /// Warns about each kept link whose target the finished image lacks,
    /// naming the flag that adds it. A link whose target the image holds
    /// anyway is fine and says nothing; so is one that reaches a file the
    /// image holds through further symlinks of the root (a venv's
    /// `bin/python3 -> /usr/bin/python3 -> python3.11`, once the
    /// interpreter is added): those symlinks are added, and they carry no
    /// host content.
    pub fn check_kept_links(&mut self) -> Result<(), ArtifactError> {
        for link in std::mem::take(&mut self.kept_links) {
            if self.layers.resolves(&link.at) {
                continue;
            }
            let parent = link.at.parent().unwrap_or_else(ImagePath::root);
            let host = crate::image_path::normalise(&parent.as_path().join(&link.target));
            if let Ok(Some(found)) = self.resolver.root().lookup(&host)
                && ImagePath::new(&found.real).is_ok_and(|real| self.layers.contains(&real))
            {
                let why = format!("symlink on the way from {} [{}]", link.at, link.origin);
                self.add_links(link.layer, &found.links, &why, None)?;
                if self.layers.resolves(&link.at) {
                    continue;
                }
            }
            let host_target = link.host.parent().map_or_else(
                || link.target.clone(),
                |dir| crate::image_path::normalise(&dir.join(&link.target)),
            );
            self.warnings.push(format!(
                "{} -> {} leads out of the tree and its target is not in the image: \
                 kept as a dangling link; add the target with --include {}[:DST], \
                 or follow such links with --follow-links [{}]",
                link.at,
                link.target.display(),
                host_target.display(),
                link.origin
            ));
        }
        Ok(())
    }

    /// Records a program's architecture; one image holds one, which
    /// `--platform` (when given) names.
    pub fn check_arch(&mut self, ident: Ident, path: &Path) -> Result<(), ArtifactError> {
        let Some(arch) = ident.arch() else {
            return Err(ArtifactError::UnsupportedMachine {
                path: path.to_path_buf(),
                found: ident.describe(),
            });
        };
        if let Some(given) = self.platform
            && given != arch
        {
            return Err(ArtifactError::PlatformMismatch {
                path: path.to_path_buf(),
                found: ident.describe(),
                given,
                actual: arch,
            });
        }
        match &self.ident {
            None => {
                self.ident = Some(ident);
                Ok(())
            }
            Some(first) if first.compatible_with(&ident) => Ok(()),
            Some(first) => Err(ArtifactError::MixedArch {
                path: path.to_path_buf(),
                found: ident.describe(),
                expected: first.describe(),
            }),
        }
    }

    /// Records why `path` is in the image; the first reason given wins
    /// (a library two programs need is there for the first).
    pub fn record(&mut self, path: impl ToString, why: impl Into<String>) {
        self.record_origin(path, why, None);
    }

    /// [`Assembly::record`] for a file that `needed_by` (an image path)
    /// needs.
    pub fn record_origin(
        &mut self,
        path: impl ToString,
        why: impl Into<String>,
        needed_by: Option<String>,
    ) {
        self.provenance
            .entry(path.to_string())
            .or_insert_with(|| Origin {
                why: why.into(),
                needed_by,
            });
    }

    /// Adds an entry to a layer (once per image) and records why. An
    /// entry at the path of a file a profile wrote replaces that file, as
    /// `COPY nginx.conf /etc/nginx/` does in a Dockerfile, and the build
    /// says so.
    pub fn add(
        &mut self,
        kind: LayerKind,
        path: ImagePath,
        entry: Entry,
        why: impl Into<String>,
    ) -> Result<(), ArtifactError> {
        let why = why.into();
        if let Some((layer, writer)) = self.generated.get(&path).cloned() {
            let tree = self.layers.tree(layer);
            let same = match tree.get(&path) {
                Some(old) => host::same_entry(old, &entry)?,
                None => false,
            };
            if !same {
                tree.remove(&path);
                self.generated.remove(&path);
                self.notes
                    .push(format!("{path}: {why} replaces the file {writer} writes"));
                self.provenance.remove(&path.to_string());
            }
        }
        self.record(&path, why);
        self.layers.insert(kind, path, entry)?;
        Ok(())
    }

    /// [`Assembly::add`] for a file a profile writes, which a later input
    /// at the same path replaces.
    pub fn add_generated(
        &mut self,
        kind: LayerKind,
        path: ImagePath,
        entry: Entry,
        writer: &str,
    ) -> Result<(), ArtifactError> {
        self.add(kind, path.clone(), entry, writer)?;
        self.generated.insert(path, (kind, writer.to_string()));
        Ok(())
    }

    /// Adds the symlinks a lookup crossed, in order, each recorded as there
    /// for `why` (and for `needed_by`, when a file needs it).
    pub fn add_links(
        &mut self,
        kind: LayerKind,
        links: &[Link],
        why: &str,
        needed_by: Option<&String>,
    ) -> Result<(), ArtifactError> {
        for link in links {
            let at = ImagePath::new(&link.at)?;
            self.record_origin(&at, why, needed_by.cloned());
            self.add(kind, at, Entry::symlink(&link.target), why)?;
        }
        Ok(())
    }

    /// Adds a host file (or symlink, or directory entry) that mkimage
    /// found (a library, a runtime's file) at `image`, shared no more
    /// widely than the host shares it.
    pub fn add_host(
        &mut self,
        kind: LayerKind,
        host_path: &Path,
        image: ImagePath,
        why: impl Into<String>,
    ) -> Result<(), ArtifactError> {
        self.add_with(kind, host_path, image, Grant::Host, why)
    }

    /// Adds a host file the user named (`--from-binary`, `--include
    /// FILE`, a jar) at `image`: readable by the image's user.
    pub fn add_named(
        &mut self,
        kind: LayerKind,
        host_path: &Path,
        image: ImagePath,
        why: impl Into<String>,
    ) -> Result<(), ArtifactError> {
        self.add_with(kind, host_path, image, Grant::Named, why)
    }

    fn add_with(
        &mut self,
        kind: LayerKind,
        host_path: &Path,
        image: ImagePath,
        grant: Grant,
        why: impl Into<String>,
    ) -> Result<(), ArtifactError> {
        let entry = host::host_entry(host_path, &image, grant, &mut self.warnings)?;
        self.add(kind, image, entry, why)
    }
}
