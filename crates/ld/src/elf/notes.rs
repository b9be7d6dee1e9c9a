//! ELF notes the loader never reads but mkimage does: the FDO
//! dlopen-metadata note (systemd's `.note.dlopen`, the libraries a
//! program dlopens, <https://uapi-group.org/specifications/specs/elf_dlopen_metadata/>)
//! and the GNU ABI tag (`.note.ABI-tag`, the kernel version ldconfig
//! records). Pure: the note bytes in, data out; every count and size is
//! checked before it is used.

use serde::Deserialize;

use super::parse::Ident;

/// `n_type` of the dlopen note, with owner `FDO`.
pub const NT_FDO_DLOPEN_METADATA: u32 = 0x407c_0c0a;
const FDO: &[u8] = b"FDO";
/// `NT_GNU_ABI_TAG`, owner `GNU`: os, major, minor, patch as 4 words.
const NT_GNU_ABI_TAG: u32 = 1;
const GNU: &[u8] = b"GNU";
/// More notes than any object has; a corrupt size cannot make us loop.
const MAX_NOTES: usize = 4096;
/// Largest dlopen JSON read (systemd's biggest is a few kilobytes).
pub const MAX_DLOPEN_JSON: usize = 64 * 1024;
/// Most features and sonames a note may list.
const MAX_FEATURES: usize = 1024;
const MAX_SONAMES: usize = 64;

/// How much a feature's libraries matter (the spec's `priority`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// The program does not work without it.
    Required,
    /// The spec's default: wanted unless the image is meant to be small.
    #[default]
    Recommended,
    /// Nice to have: listed by `mkimage ldd`, not added.
    Suggested,
}

impl Priority {
    pub fn name(self) -> &'static str {
        match self {
            Priority::Required => "required",
            Priority::Recommended => "recommended",
            Priority::Suggested => "suggested",
        }
    }
}

/// One element of the note's JSON array.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct DlopenFeature {
    #[serde(default)]
    pub feature: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub priority: Priority,
    /// Alternatives in order of preference: the first found is used.
    pub soname: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NoteError {
    #[error("dlopen note ({NT_FDO_DLOPEN_METADATA:#x}) of {0} bytes, more than {MAX_DLOPEN_JSON}")]
    TooLarge(usize),
    #[error("dlopen note is not the spec's JSON array of {{soname: [...]}}: {0}")]
    Json(String),
}

/// One note: owner name (without its NUL), type and descriptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note<'a> {
    pub name: &'a [u8],
    pub n_type: u32,
    pub desc: &'a [u8],
}

/// The notes in a note segment or section's bytes, `align` its
/// alignment (8 for GNU property notes in 64-bit files, else 4). Stops at
/// the first note that does not fit.
pub fn parse_notes<'a>(bytes: &'a [u8], ident: &Ident, align: u64) -> Vec<Note<'a>> {
    let align = if align == 8 { 8 } else { 4 };
    let word = |at: usize| -> Option<u32> {
        let b: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if ident.little_endian {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    };
    let mut out = Vec::new();
    let mut at = 0usize;
    while out.len() < MAX_NOTES {
        let (Some(namesz), Some(descsz), Some(n_type)) = (word(at), word(at + 4), word(at + 8))
        else {
            break;
        };
        let name_at = at + 12;
        let Some(desc_at) = name_at
            .checked_add(namesz as usize)
            .and_then(|n| n.checked_next_multiple_of(align))
        else {
            break;
        };
        let Some(end) = desc_at.checked_add(descsz as usize) else {
            break;
        };
        let (Some(name), Some(desc)) = (bytes.get(name_at..desc_at), bytes.get(desc_at..end))
        else {
            break;
        };
        let name = &name[..(namesz as usize).min(name.len())];
        out.push(Note {
            name: super::parse::c_str(name),
            n_type,
            desc,
        });
        match end.checked_next_multiple_of(align) {
            Some(next) if next > at => at = next,
            _ => break,
        }
    }
    out
}

/// The dlopen features of one note's descriptor: JSON, NUL-padded.
pub fn parse_dlopen(desc: &[u8]) -> Result<Vec<DlopenFeature>, NoteError> {
    let json = super::parse::c_str(desc);
    if json.len() > MAX_DLOPEN_JSON {
        return Err(NoteError::TooLarge(json.len()));
    }
    let features: Vec<DlopenFeature> =
        serde_json::from_slice(json).map_err(|e| NoteError::Json(e.to_string()))?;
    if features.len() > MAX_FEATURES || features.iter().any(|f| f.soname.len() > MAX_SONAMES) {
        return Err(NoteError::Json(format!(
            "more than {MAX_FEATURES} features or {MAX_SONAMES} sonames in one"
        )));
    }
    // A soname is a file name: a path would be opened as one, and an
    // empty name is no library.
    if let Some(bad) = features
        .iter()
        .flat_map(|f| &f.soname)
        .find(|s| s.is_empty() || s.contains('/') || s.contains('\0'))
    {
        return Err(NoteError::Json(format!("{bad:?} is not a soname")));
    }
    Ok(features)
}

/// What the notes of one object say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NoteInfo {
    pub dlopen: Vec<DlopenFeature>,
    /// Why a dlopen note could not be read (the object still loads).
    pub dlopen_error: Option<String>,
    /// The ABI tag as ldconfig stores it: os << 24 | major << 16 |
    /// minor << 8 | patch (readelflib.c).
    pub osversion: Option<u32>,
}

impl NoteInfo {
    pub fn add(&mut self, note: &Note<'_>, ident: &Ident) {
        match (note.name, note.n_type) {
            (FDO, NT_FDO_DLOPEN_METADATA) => match parse_dlopen(note.desc) {
                Ok(f) => self.dlopen.extend(f),
                Err(e) => self.dlopen_error = Some(e.to_string()),
            },
            (GNU, NT_GNU_ABI_TAG) if note.desc.len() >= 16 => {
                let w = |i: usize| {
                    let b: [u8; 4] = note.desc[4 * i..4 * i + 4].try_into().unwrap_or_default();
                    if ident.little_endian {
                        u32::from_le_bytes(b)
                    } else {
                        u32::from_be_bytes(b)
                    }
                };
                let v =
                    (w(0) & 0xff) << 24 | (w(1) & 0xff) << 16 | (w(2) & 0xff) << 8 | (w(3) & 0xff);
                self.osversion.get_or_insert(v);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ident() -> Ident {
        Ident {
            is_64: true,
            little_endian: true,
            machine: 62,
            osabi: 0,
            abiversion: 0,
            elf_type: 3,
            flags: 0,
        }
    }

    /// A note as a linker writes it.
    pub(crate) fn note(name: &[u8], n_type: u32, desc: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(name.len() as u32 + 1).to_le_bytes());
        out.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        out.extend_from_slice(&n_type.to_le_bytes());
        out.extend_from_slice(name);
        out.push(0);
        out.resize(out.len().next_multiple_of(4), 0);
        out.extend_from_slice(desc);
        out.resize(out.len().next_multiple_of(4), 0);
        out
    }

    #[test]
    fn reads_dlopen_and_abi_tag_notes() {
        let json = br#"[{"feature":"idn","description":"IDN","priority":"required","soname":["libidn2.so.0"]},
            {"soname":["libzstd.so.1","libzstd.so.2"]},
            {"feature":"x","priority":"suggested","soname":["libx.so.1"],"extra":1}]"#;
        let mut bytes = note(
            b"GNU",
            NT_GNU_ABI_TAG,
            &[0, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0],
        );
        bytes.extend(note(b"FDO", NT_FDO_DLOPEN_METADATA, json));
        bytes.extend(note(b"GNU", 3, b"build-id"));
        let id = ident();
        let notes = parse_notes(&bytes, &id, 4);
        assert_eq!(notes.len(), 3);
        let mut info = NoteInfo::default();
        for n in &notes {
            info.add(n, &id);
        }
        assert_eq!(info.osversion, Some(0x0003_0200));
        assert_eq!(info.dlopen_error, None);
        let got: Vec<(Priority, Vec<String>)> = info
            .dlopen
            .iter()
            .map(|f| (f.priority, f.soname.clone()))
            .collect();
        assert_eq!(
            got,
            [
                (Priority::Required, vec!["libidn2.so.0".to_string()]),
                (
                    Priority::Recommended,
                    vec!["libzstd.so.1".into(), "libzstd.so.2".into()]
                ),
                (Priority::Suggested, vec!["libx.so.1".into()]),
            ]
        );
    }

    #[test]
    fn bad_dlopen_notes_are_errors_not_panics() {
        for bad in [
            &b"{}"[..],
            b"[{\"priority\":\"required\"}]",
            b"[{\"soname\":[\"../../etc/x\"]}]",
            b"[{\"soname\":[\"\"]}]",
            b"[{\"soname\":[\"a\"],\"priority\":\"maybe\"}]",
            b"\xff\xfe",
        ] {
            assert!(parse_dlopen(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(
            parse_dlopen(&vec![b' '; MAX_DLOPEN_JSON + 1]),
            Err(NoteError::TooLarge(_))
        ));
        // Every truncation and corrupted size of a note list parses to
        // fewer notes, never a panic.
        let full = note(b"FDO", NT_FDO_DLOPEN_METADATA, br#"[{"soname":["a.so"]}]"#);
        for n in 0..full.len() {
            let _ = parse_notes(&full[..n], &ident(), 4);
            for v in [0x00, 0xff, 0x7f] {
                let mut b = full.clone();
                b[n] = v;
                for note in parse_notes(&b, &ident(), 8) {
                    let _ = parse_dlopen(note.desc);
                }
            }
        }
    }
}
