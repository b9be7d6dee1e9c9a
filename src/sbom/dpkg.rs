//! The dpkg database of the root an image's files come from: which
//! installed package owns a file, from `var/lib/dpkg/status`,
//! `info/<package>.list`, `info/<package>.md5sums` and `diversions`
//! (dpkg(1), dpkg-divert(1)). Every path is looked up inside the root (`/`
//! or the `--sysroot`), never through the host's own database.
//!
//! Paths are bytes, as dpkg stores them; a file is matched to a list entry
//! by its real path in the root, so with merged /usr
//! `/lib/x86_64-linux-gnu/libc.so.6` in libc6's list is the same file as
//! the image's `/usr/lib/x86_64-linux-gnu/libc.so.6`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::codec::{Reader, Writer};
use super::deb822::{self, Stanza};
use super::{HashMemo, SbomError};
use crate::resolve::Root;

/// dpkg's administrative directory (dpkg(1), `--admindir`).
pub const ADMIN_DIR: &str = "/var/lib/dpkg";

/// Package states whose files are on disk (dpkg(1), "PACKAGE STATES");
/// `not-installed` and `config-files` packages have none but conffiles.
const STATES_WITH_FILES: &[&str] = &[
    "installed",
    "unpacked",
    "half-configured",
    "half-installed",
    "triggers-awaited",
    "triggers-pending",
];

/// Directories that images and minimal systems commonly leave out with
/// dpkg's `--path-exclude` (Docker's Debian images do), so that a listed
/// file missing there says nothing about the package's health.
const OFTEN_EXCLUDED: &[&str] = &[
    "/usr/share/doc/",
    "/usr/share/man/",
    "/usr/share/info/",
    "/usr/share/locale/",
    "/usr/share/lintian/",
    "/usr/share/doc-base/",
];

/// An installed package, as its `status` stanza says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Package {
    /// How dpkg names its info files: `libc6:amd64` for a `Multi-Arch:
    /// same` package, else `curl`.
    pub key: String,
    pub name: String,
    pub version: String,
    pub architecture: String,
    /// The third word of `Status:`, e.g. `installed`.
    pub state: String,
    pub stanza: Stanza,
}

impl Package {
    /// The source package and its version: the `Source:` field, whose
    /// version is written in parentheses only when it differs from the
    /// binary's (deb-control(5)); the package itself when there is none.
    pub fn source(&self) -> (String, String) {
        match self.stanza.first_line("Source") {
            None => (self.name.clone(), self.version.clone()),
            Some(s) => match s.split_once(' ') {
                Some((name, rest)) => {
                    let v = rest.trim().trim_start_matches('(').trim_end_matches(')');
                    (name.to_owned(), v.trim().to_owned())
                }
                None => (s.to_owned(), self.version.clone()),
            },
        }
    }

    pub fn maintainer(&self) -> Option<&str> {
        self.stanza.first_line("Maintainer")
    }
}

/// One `dpkg-divert` entry: files packages ship at `from` are installed at
/// `to`, except those of the diverting package itself (`by`; `None` for a
/// local diversion, which diverts every package's file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diversion {
    pub from: PathBuf,
    pub to: PathBuf,
    pub by: Option<String>,
}

/// A package whose file list names a wanted file, and how it names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    pub key: String,
    /// The path as the list writes it (`/lib/...` for `/usr/lib/...`).
    pub listed: PathBuf,
}

/// The root's database, read once per build.
#[derive(Debug)]
pub struct Database {
    /// Installed packages by [`Package::key`].
    pub packages: BTreeMap<String, Package>,
    pub diversions: Vec<Diversion>,
    /// Each package's file list on the host and its metadata, `None` when
    /// it is not there: what [`Database::listed`]'s memo is keyed by,
    /// taken when the database is opened (a build opens it on a thread of
    /// its own while it assembles the image: a thousand stats).
    lists: BTreeMap<String, Option<(PathBuf, std::fs::Metadata)>>,
    /// `status` and `diversions` on the host and their metadata, `None`
    /// when absent: with `lists`, what says this database is the same in
    /// a later build ([`Database::identity`]).
    admin: Vec<(PathBuf, Option<std::fs::Metadata>)>,
}

/// Why a root has no database to read, for the one note a build prints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoDatabase(pub String);

impl Database {
    /// Reads the root's `status` and `diversions`. A root without a
    /// `status` file (another distribution's sysroot, a bare tree) is
    /// `Ok(Err(..))`; a corrupt one is an error naming the file and line,
    /// as dpkg itself refuses it.
    pub fn open(root: &mut Root) -> Result<Result<Database, NoDatabase>, SbomError> {
        let status_at = Path::new(ADMIN_DIR).join("status");
        let div_at = Path::new(ADMIN_DIR).join("diversions");
        // Taken before the files are read: a change after this build
        // started is too fresh for a memo to trust its stamps anyway.
        let mut admin = Vec::new();
        for at in [&status_at, &div_at] {
            let stat = match root.lookup(at)? {
                Some(found) => {
                    let host = root.host(&found.real);
                    let m = std::fs::metadata(&host).ok();
                    (host, m)
                }
                None => (root.host(at), None),
            };
            admin.push(stat);
        }
        let Some(bytes) = root.read(&status_at)? else {
            return Ok(Err(NoDatabase(format!(
                "{} has no {}",
                root.dir().display(),
                status_at.display()
            ))));
        };
        let path = root.host(&status_at);
        let packages = parse_status(&bytes).map_err(|(line, why)| SbomError::Status {
            path: path.clone(),
            line,
            why,
        })?;
        let diversions = match root.read(&div_at)? {
            None => Vec::new(),
            Some(bytes) => parse_diversions(&bytes).map_err(|why| SbomError::Diversions {
                path: root.host(&div_at),
                why,
            })?,
        };
        let mut lists = BTreeMap::new();
        for key in packages.keys() {
            let list = match root.lookup(&info_path(key, "list"))? {
                Some(found) => {
                    let host = root.host(&found.real);
                    std::fs::metadata(&host).ok().map(|m| (host, m))
                }
                None => None,
            };
            lists.insert(key.clone(), list);
        }
        Ok(Ok(Database {
            packages,
            diversions,
            lists,
            admin,
        }))
    }

    /// For each of `wanted` (real paths in the root), the packages that own
    /// it, diversions applied: a file at a diversion's `to` belongs to the
    /// package (other than the diverter) that ships it at `from`; a file
    /// at `from` belongs to the diverter alone. Notes for diverted files go
    /// to `notes`; a package with no file list to `warnings`.
    pub fn owners(
        &self,
        root: &mut Root,
        wanted: &BTreeSet<PathBuf>,
        memo: Option<&dyn HashMemo>,
        notes: &mut BTreeMap<PathBuf, String>,
        warnings: &mut Vec<String>,
    ) -> Result<BTreeMap<PathBuf, Vec<Claim>>, SbomError> {
        // Diversions touching a wanted file, by the wanted path.
        let mut via_from: HashMap<PathBuf, &Diversion> = HashMap::new();
        let mut via_to: HashMap<PathBuf, (PathBuf, &Diversion)> = HashMap::new();
        for d in &self.diversions {
            if let Some(from) = real_path(root, &d.from)?
                && wanted.contains(&from)
            {
                via_from.insert(from.clone(), d);
            }
            if let Some(to) = real_path(root, &d.to)?
                && wanted.contains(&to)
                && let Some(from) = real_path(root, &d.from)?
            {
                via_to.insert(to, (from, d));
            }
        }
        // The real paths whose listers we need, and their file names (a
        // cheap first filter over ~100k list lines).
        // Hashed, not ordered: only asked about, ~1,000 times for the
        // lines that pass the name filter (ordered maps of long paths
        // were a tenth of a warm rebuild).
        let mut look: HashSet<&Path> = wanted.iter().map(PathBuf::as_path).collect();
        look.extend(via_to.values().map(|(from, _)| from.as_path()));
        let names: HashSet<OsString> = look
            .iter()
            .filter_map(|p| p.file_name().map(OsStr::to_os_string))
            .collect();

        let mut listers: HashMap<PathBuf, Vec<Claim>> = HashMap::new();
        for claim in self.listed(root, &names, memo, warnings)? {
            let Some(real) = real_path(root, &claim.listed)? else {
                continue;
            };
            if look.contains(real.as_path()) {
                let claims = listers.entry(real).or_default();
                if !claims.iter().any(|c| c.key == claim.key) {
                    claims.push(claim);
                }
            }
        }

        let mut out = BTreeMap::new();
        for w in wanted {
            let claims: Vec<Claim> = if let Some((from, d)) = via_to.get(w) {
                notes.insert(
                    w.clone(),
                    format!(
                        "{} is where dpkg-divert puts {} (diverted by {})",
                        w.display(),
                        d.from.display(),
                        d.by.as_deref().unwrap_or("the local admin")
                    ),
                );
                listers
                    .get(from)
                    .into_iter()
                    .flatten()
                    .filter(|c| Some(self.packages[&c.key].name.as_str()) != d.by.as_deref())
                    .cloned()
                    .collect()
            } else if let Some(d) = via_from.get(w) {
                notes.insert(
                    w.clone(),
                    format!(
                        "{} is diverted by {}: other packages' copies of it are at {}",
                        w.display(),
                        d.by.as_deref().unwrap_or("the local admin"),
                        d.to.display()
                    ),
                );
                listers
                    .get(w)
                    .into_iter()
                    .flatten()
                    .filter(|c| Some(self.packages[&c.key].name.as_str()) == d.by.as_deref())
                    .cloned()
                    .collect()
            } else {
                listers.get(w).cloned().unwrap_or_default()
            };
            if !claims.is_empty() {
                out.insert(w.clone(), claims);
            }
        }
        Ok(out)
    }

    /// Every line of the packages' file lists whose last component is one
    /// of `names`, as a claim, in package then line order; a package
    /// without a list is a warning. Reading the lists is most of a warm
    /// rebuild's work (tens of MB on a desktop's root), so the answer is
    /// remembered in `memo`, keyed by `names` and by each list's stamps
    /// (path, device, inode, size, mtime, ctime, as the layer cache knows
    /// a file): a list changed in any way is read again. What the lines
    /// mean in the root (its symlinks) is worked out afresh by the caller.
    fn listed(
        &self,
        root: &mut Root,
        names: &HashSet<OsString>,
        memo: Option<&dyn HashMemo>,
        warnings: &mut Vec<String>,
    ) -> Result<Vec<Claim>, SbomError> {
        let key = match memo {
            Some(m) => self.lists_key(names, m)?,
            None => None,
        };
        if let (Some(m), Some(key)) = (memo, &key)
            && let Some(bytes) = m.recall(key)
            && let Some(answer) = Listed::decode(&bytes)
        {
            warnings.extend(answer.unlisted.iter().map(|k| self.unlisted(root, k)));
            return Ok(answer.claims);
        }
        let mut answer = Listed::default();
        for key in self.packages.keys() {
            let Some(bytes) = root.read(&info_path(key, "list"))? else {
                warnings.push(self.unlisted(root, key));
                answer.unlisted.push(key.clone());
                continue;
            };
            for line in bytes.split(|b| *b == b'\n') {
                let listed = Path::new(OsStr::from_bytes(line));
                if listed.file_name().is_some_and(|n| names.contains(n)) {
                    answer.claims.push(Claim {
                        key: key.clone(),
                        listed: listed.to_path_buf(),
                    });
                }
            }
        }
        if let (Some(m), Some(key)) = (memo, key) {
            m.remember(key, answer.encode());
        }
        Ok(answer.claims)
    }

    fn unlisted(&self, root: &Root, key: &str) -> String {
        format!(
            "dpkg: {} is installed but {} is missing, so no file is attributed to it",
            key,
            root.host(&info_path(key, "list")).display()
        )
    }

    /// The key [`listed`](Database::listed) remembers its answer under;
    /// `None` when a list is too fresh for its stamps to tell a change.
    fn lists_key(
        &self,
        names: &HashSet<OsString>,
        memo: &dyn HashMemo,
    ) -> Result<Option<[u8; 32]>, SbomError> {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        let mut field = |b: &[u8]| {
            h.update((b.len() as u64).to_le_bytes());
            h.update(b);
        };
        field(b"mkimage dpkg lists 2");
        field(env!("CARGO_PKG_VERSION").as_bytes());
        let mut sorted: Vec<&OsString> = names.iter().collect();
        sorted.sort();
        for n in sorted {
            field(n.as_bytes());
        }
        if self.stamp_lists(&mut field, memo).is_none() {
            return Ok(None);
        }
        Ok(Some(h.finalize().into()))
    }

    /// Feeds `field` what tells this database from any other: the stamps
    /// of `status`, `diversions` and every package's file list (what an
    /// answer drawn from it depends on). `None` when one is too fresh for
    /// its stamps to tell a later change.
    pub fn identity(&self, field: &mut dyn FnMut(&[u8]), memo: &dyn HashMemo) -> Option<()> {
        for (host, m) in &self.admin {
            field(host.as_os_str().as_bytes());
            match m {
                None => field(b"absent"),
                Some(m) => {
                    for n in memo.stamps(m)? {
                        field(&n.to_le_bytes());
                    }
                }
            }
        }
        self.stamp_lists(field, memo)
    }

    /// Every package's key and its file list's host path and stamps.
    fn stamp_lists(&self, field: &mut dyn FnMut(&[u8]), memo: &dyn HashMemo) -> Option<()> {
        for key in self.packages.keys() {
            field(key.as_bytes());
            let Some(Some((host, m))) = self.lists.get(key) else {
                field(b"absent");
                continue;
            };
            let stamps = memo.stamps(m)?;
            field(host.as_os_str().as_bytes());
            for n in stamps {
                field(&n.to_le_bytes());
            }
        }
        Some(())
    }

    /// What a package's `md5sums` says each file held when installed, by
    /// the path as listed (absolute). A package may have none (it ships no
    /// regular files, or was built without).
    pub fn shipped_md5s(
        &self,
        root: &mut Root,
        key: &str,
    ) -> Result<HashMap<PathBuf, [u8; 16]>, SbomError> {
        let at = info_path(key, "md5sums");
        let Some(bytes) = root.read(&at)? else {
            return Ok(HashMap::new());
        };
        Ok(parse_md5sums(&bytes))
    }

    /// The files `key`'s list names that are not in the root, outside the
    /// directories often excluded on purpose.
    pub fn missing_files(&self, root: &mut Root, key: &str) -> Result<Vec<PathBuf>, SbomError> {
        let Some(bytes) = root.read(&info_path(key, "list"))? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for line in bytes.split(|b| *b == b'\n') {
            let listed = Path::new(OsStr::from_bytes(line));
            if line.is_empty()
                || listed == Path::new("/.")
                || OFTEN_EXCLUDED
                    .iter()
                    .any(|d| line.starts_with(d.as_bytes()))
            {
                continue;
            }
            if !root.exists(listed)? && !is_dir_path(root, listed)? {
                out.push(listed.to_path_buf());
            }
        }
        Ok(out)
    }
}

/// [`Database::listed`]'s answer, as remembered: length-prefixed fields.
#[derive(Debug, Default, PartialEq)]
struct Listed {
    claims: Vec<Claim>,
    unlisted: Vec<String>,
}

impl Listed {
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.count(self.claims.len());
        for c in &self.claims {
            w.field(c.key.as_bytes());
            w.field(c.listed.as_os_str().as_bytes());
        }
        w.count(self.unlisted.len());
        for k in &self.unlisted {
            w.field(k.as_bytes());
        }
        w.into_bytes()
    }

    fn decode(bytes: &[u8]) -> Option<Listed> {
        let mut r = Reader::new(bytes);
        let mut out = Listed::default();
        for _ in 0..r.count()? {
            let key = r.text()?;
            let listed = PathBuf::from(OsStr::from_bytes(r.field()?));
            out.claims.push(Claim { key, listed });
        }
        for _ in 0..r.count()? {
            out.unlisted.push(r.text()?);
        }
        r.is_done().then_some(out)
    }
}

/// `info/<key>.<what>` in the admin directory.
fn info_path(key: &str, what: &str) -> PathBuf {
    Path::new(ADMIN_DIR)
        .join("info")
        .join(format!("{key}.{what}"))
}

/// Whether `p` names a directory, through links inside the root.
fn is_dir_path(root: &mut Root, p: &Path) -> Result<bool, SbomError> {
    Ok(root.is_dir(p)?)
}

/// A listed path's real path in the root: its directory resolved through
/// the root's symlinks (merged /usr), its last component as is.
fn real_path(root: &mut Root, listed: &Path) -> Result<Option<PathBuf>, SbomError> {
    let (Some(dir), Some(name)) = (listed.parent(), listed.file_name()) else {
        return Ok(None);
    };
    Ok(root.real_dir(dir)?.map(|real| real.join(name)))
}

/// Installed packages from `status` (deb822; must be UTF-8, as dpkg
/// requires of control data). The error is (line, why).
pub fn parse_status(bytes: &[u8]) -> Result<BTreeMap<String, Package>, (usize, String)> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        (line, "not UTF-8".to_owned())
    })?;
    let stanzas = deb822::parse(text).map_err(|e| (e.line, e.why.to_owned()))?;
    let mut out = BTreeMap::new();
    for s in stanzas {
        let field = |name: &str| {
            s.first_line(name)
                .map(str::to_owned)
                .ok_or_else(|| (s.line, format!("the stanza has no {name} field")))
        };
        let name = field("Package")?;
        let status = field("Status")?;
        let state = status.split_whitespace().nth(2).unwrap_or_default();
        if !STATES_WITH_FILES.contains(&state) {
            continue;
        }
        let version = field("Version")?;
        let architecture = field("Architecture")?;
        let key = if s.first_line("Multi-Arch") == Some("same") {
            format!("{name}:{architecture}")
        } else {
            name.clone()
        };
        if out.contains_key(&key) {
            return Err((s.line, format!("{key} is listed twice")));
        }
        out.insert(
            key.clone(),
            Package {
                key,
                name,
                version,
                architecture,
                state: state.to_owned(),
                stanza: s,
            },
        );
    }
    Ok(out)
}

/// `diversions`: three lines per entry (from, to, package; `:` for a
/// local diversion).
pub fn parse_diversions(bytes: &[u8]) -> Result<Vec<Diversion>, String> {
    let mut lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    if !lines.len().is_multiple_of(3) {
        return Err(format!(
            "{} lines, not three per diversion (from, to, package); is it truncated?",
            lines.len()
        ));
    }
    Ok(lines
        .chunks(3)
        .map(|c| Diversion {
            from: PathBuf::from(OsStr::from_bytes(c[0])),
            to: PathBuf::from(OsStr::from_bytes(c[1])),
            by: match c[2] {
                b":" => None,
                by => Some(String::from_utf8_lossy(by).into_owned()),
            },
        })
        .collect())
}

/// `md5sums`: `<32 hex digits>  <path relative to />` per line; lines of
/// another shape are skipped (they name no file we could match).
pub fn parse_md5sums(bytes: &[u8]) -> HashMap<PathBuf, [u8; 16]> {
    let mut out = HashMap::new();
    for line in bytes.split(|b| *b == b'\n') {
        if line.len() < 35 || &line[32..34] != b"  " {
            continue;
        }
        let Some(md5) = unhex16(&line[..32]) else {
            continue;
        };
        let path = Path::new("/").join(OsStr::from_bytes(&line[34..]));
        out.insert(path, md5);
    }
    out
}

fn unhex16(hex: &[u8]) -> Option<[u8; 16]> {
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The remembered list answer reads back as written, and a cut or an
    /// extra byte reads as nothing.
    #[test]
    fn listed_round_trips() {
        let answer = Listed {
            claims: vec![Claim {
                key: "libc6:amd64".into(),
                listed: PathBuf::from(OsStr::from_bytes(b"/lib/x\xff.so")),
            }],
            unlisted: vec!["gone".into()],
        };
        let bytes = answer.encode();
        assert_eq!(Listed::decode(&bytes), Some(answer));
        for cut in 0..bytes.len() {
            assert_eq!(Listed::decode(&bytes[..cut]), None, "cut at {cut}");
        }
        assert_eq!(Listed::decode(&[&bytes[..], b"x"].concat()), None);
    }

    const STATUS: &str = "\
Package: libc6
Status: install ok installed
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u13

Package: libssl3
Status: install ok installed
Architecture: amd64
Multi-Arch: same
Source: openssl (3.0.17-1~deb12u2)
Version: 3.0.17-1~deb12u2+b1

Package: gone
Status: deinstall ok config-files
Architecture: all
Version: 1
";

    #[test]
    fn status_keys_sources_and_states() {
        let p = parse_status(STATUS.as_bytes()).unwrap();
        assert_eq!(
            p.keys().collect::<Vec<_>>(),
            ["libc6:amd64", "libssl3:amd64"]
        );
        assert_eq!(
            p["libc6:amd64"].source(),
            ("glibc".into(), "2.36-9+deb12u13".into())
        );
        assert_eq!(
            p["libssl3:amd64"].source(),
            ("openssl".into(), "3.0.17-1~deb12u2".into())
        );
    }

    #[test]
    fn corrupt_status_names_the_line() {
        let cases = [
            ("Package: a\nStatus: install ok installed\nbroken\n", 3),
            ("Package: a\nVersion: 1\n", 1),
            (
                "Package: a\nStatus: install ok installed\nArchitecture: all\nVersion: 1\n\nPackage: a\nStatus: install ok installed\nArchitecture: all\nVersion: 2\n",
                6,
            ),
        ];
        for (text, line) in cases {
            let (got, why) = parse_status(text.as_bytes()).unwrap_err();
            assert_eq!(got, line, "{text:?}: {why}");
        }
        let (line, why) = parse_status(b"Package: a\nStatus: \xff\n").unwrap_err();
        assert_eq!((line, why.as_str()), (2, "not UTF-8"));
    }

    #[test]
    fn diversions_and_md5sums() {
        let d = parse_diversions(b"/bin/sh\n/bin/sh.distrib\ndash\n/x\n/x.orig\n:\n").unwrap();
        assert_eq!(d[0].by.as_deref(), Some("dash"));
        assert_eq!(d[1].by, None);
        assert!(parse_diversions(b"/a\n/b\n").is_err());
        let m = parse_md5sums(
            b"0123456789abcdef0123456789abcdef  usr/bin/x\nshort\nzz23456789abcdef0123456789abcdef  usr/bin/y\n",
        );
        assert_eq!(m.len(), 1);
        assert_eq!(m[Path::new("/usr/bin/x")][0], 0x01);
    }

    /// A memo that keeps results in memory and calls every file settled
    /// unless told otherwise.
    #[derive(Default)]
    struct Memo {
        results: std::sync::Mutex<HashMap<[u8; 32], Vec<u8>>>,
        hits: std::sync::atomic::AtomicUsize,
        unsettled: bool,
    }

    impl HashMemo for Memo {
        fn lookup(
            &self,
            _: &Path,
            _: &std::fs::Metadata,
            _: &[u8],
        ) -> Result<Vec<u8>, Option<[u8; 32]>> {
            Err(None)
        }
        fn store(&self, _: [u8; 32], _: Vec<u8>) {}
        fn stamps(&self, m: &std::fs::Metadata) -> Option<[i128; 5]> {
            use std::os::unix::fs::MetadataExt;
            let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
            (!self.unsettled).then(|| {
                [
                    i128::from(m.dev()),
                    i128::from(m.ino()),
                    i128::from(m.size()),
                    ns(m.mtime(), m.mtime_nsec()),
                    ns(m.ctime(), m.ctime_nsec()),
                ]
            })
        }
        fn recall(&self, key: &[u8; 32]) -> Option<Vec<u8>> {
            let found = self.results.lock().unwrap().get(key).cloned();
            if found.is_some() {
                self.hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            found
        }
        fn remember(&self, key: [u8; 32], value: Vec<u8>) {
            self.results.lock().unwrap().insert(key, value);
        }
    }

    /// The remembered list lines give the same owners as reading the
    /// lists, and any change to a list (even one that keeps its size and
    /// mtime) or to the names asked about is read afresh.
    #[test]
    fn remembered_lists_answer_as_read_ones() {
        let dir = tempfile::tempdir().unwrap();
        let info = dir.path().join("var/lib/dpkg/info");
        std::fs::create_dir_all(&info).unwrap();
        std::fs::create_dir_all(dir.path().join("usr/lib")).unwrap();
        std::os::unix::fs::symlink("usr/lib", dir.path().join("lib")).unwrap();
        std::fs::write(dir.path().join("var/lib/dpkg/status"), STATUS).unwrap();
        // libssl3 has no list: a warning, remembered too.
        std::fs::write(
            info.join("libc6:amd64.list"),
            "/.\n/lib\n/lib/libc.so.6\n/usr/lib/libm.so.6\n",
        )
        .unwrap();
        for f in ["libc.so.6", "libm.so.6"] {
            std::fs::write(dir.path().join("usr/lib").join(f), f).unwrap();
        }
        let wanted: BTreeSet<PathBuf> = ["/usr/lib/libc.so.6", "/usr/lib/libm.so.6"]
            .iter()
            .map(PathBuf::from)
            .collect();
        let mut root = Root::new(dir.path());
        // Each call is a build's: it opens the database (and states the
        // lists) afresh.
        let owners = |root: &mut Root, memo: Option<&dyn HashMemo>, wanted: &BTreeSet<PathBuf>| {
            let db = Database::open(root).unwrap().unwrap();
            let (mut notes, mut warnings) = (BTreeMap::new(), Vec::new());
            let o = db
                .owners(root, wanted, memo, &mut notes, &mut warnings)
                .unwrap();
            let o: Vec<(PathBuf, Vec<(String, PathBuf)>)> = o
                .into_iter()
                .map(|(p, c)| (p, c.into_iter().map(|c| (c.key, c.listed)).collect()))
                .collect();
            (o, warnings)
        };
        let read = owners(&mut root, None, &wanted);
        assert_eq!(read.0.len(), 2, "{read:?}");
        assert_eq!(
            read.0[0].1,
            [("libc6:amd64".to_owned(), PathBuf::from("/lib/libc.so.6"))]
        );
        assert_eq!(read.1.len(), 1, "{:?}", read.1);

        let memo = Memo::default();
        assert_eq!(owners(&mut root, Some(&memo), &wanted), read);
        assert_eq!(memo.results.lock().unwrap().len(), 1);
        // Answered from the memo, the same.
        let hits = || memo.hits.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(owners(&mut root, Some(&memo), &wanted), read);
        assert_eq!(hits(), 1);
        let list = info.join("libc6:amd64.list");
        let keep = std::fs::metadata(&list).unwrap();

        // The same bytes' length and mtime, other content: the ctime moves.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&list, "/.\n/lib\n/lib/libc.so.6\n/usr/lib/libX.so.6\n").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&list)
            .unwrap()
            .set_modified(keep.modified().unwrap())
            .unwrap();
        assert_eq!(std::fs::metadata(&list).unwrap().len(), keep.len());
        let changed = owners(&mut root, None, &wanted);
        assert_eq!(changed.0.len(), 1);
        assert_eq!(owners(&mut root, Some(&memo), &wanted), changed);
        assert_eq!(hits(), 1);

        // Other names asked about: read afresh.
        let one: BTreeSet<PathBuf> = [PathBuf::from("/usr/lib/libc.so.6")].into();
        assert_eq!(
            owners(&mut root, Some(&memo), &one),
            owners(&mut root, None, &one)
        );

        // A list too fresh to tell a change later is not remembered.
        let fresh = Memo {
            unsettled: true,
            ..Memo::default()
        };
        assert_eq!(owners(&mut root, Some(&fresh), &wanted), changed);
        assert!(fresh.results.lock().unwrap().is_empty());
    }
}
