//! Reads the loader-relevant parts of an ELF file with positioned reads:
//! the header, the program headers, PT_INTERP, PT_DYNAMIC and the few
//! dynstr strings named there. A 200 MB library costs a few kilobytes.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use goblin::elf::header;

use super::parse::{self, Ident, ParseError};

/// Longest string (a NEEDED name, an RPATH) we accept from dynstr.
const MAX_DYNSTR: usize = 64 * 1024;
/// Largest PT_DYNAMIC segment we read; real ones are a few hundred bytes.
const MAX_DYNAMIC: u64 = 1 << 20;
/// Longest PT_INTERP path.
const MAX_INTERP: u64 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is a directory, not an ELF file")]
    Directory { path: PathBuf },
    #[error("{path} is a script ({shebang}), not an ELF file; {hint}")]
    Script {
        path: PathBuf,
        shebang: String,
        hint: &'static str,
    },
    #[error("{path} is not an ELF file")]
    NotElf { path: PathBuf },
    #[error("{path}: {source}")]
    Malformed {
        path: PathBuf,
        #[source]
        source: ParseError,
    },
}

/// What the dynamic loader needs to know about one ELF file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElfInfo {
    pub ident: Ident,
    /// PT_INTERP, exactly as written.
    pub interp: Option<PathBuf>,
    /// Whether the file has a PT_DYNAMIC segment at all.
    pub dynamic: bool,
    pub needed: Vec<OsString>,
    pub soname: Option<OsString>,
    pub rpath: Option<OsString>,
    pub runpath: Option<OsString>,
    pub nodeflib: bool,
    /// What its notes say (dlopen metadata, ABI tag).
    pub notes: super::notes::NoteInfo,
}

impl ElfInfo {
    /// Statically linked: nothing for the loader to do.
    pub fn is_static(&self) -> bool {
        self.interp.is_none() && self.needed.is_empty()
    }

    /// RPATH as the loader uses it: ignored entirely when RUNPATH is present.
    pub fn effective_rpath(&self) -> Option<&OsString> {
        if self.runpath.is_some() {
            None
        } else {
            self.rpath.as_ref()
        }
    }
}

/// Opens and reads `path` (a host path).
pub fn read_elf(path: &Path) -> Result<ElfInfo, ElfError> {
    let io_err = |source| ElfError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    let meta = file.metadata().map_err(io_err)?;
    if meta.is_dir() {
        return Err(ElfError::Directory {
            path: path.to_path_buf(),
        });
    }
    read_elf_from(&file, path)
}

/// Reads from an already opened file; `path` is for messages.
pub fn read_elf_from(file: &File, path: &Path) -> Result<ElfInfo, ElfError> {
    read_from(file, path)
}

/// Reads an ELF file already in memory, as [`read_elf_from`] reads a file;
/// `path` is for messages. For callers that hold the bytes (and the fuzz
/// targets in fuzz/).
pub fn read_elf_bytes(bytes: &[u8], path: &Path) -> Result<ElfInfo, ElfError> {
    read_from(bytes, path)
}

/// Where the bytes come from: positioned reads, so that a file is never
/// read whole.
pub(super) trait ReadAt {
    /// As pread(2): up to `buf.len()` bytes at `offset`, 0 at the end.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
}

impl ReadAt for File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        FileExt::read_at(self, buf, offset)
    }
}

impl ReadAt for [u8] {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let start = usize::try_from(offset).map_or(self.len(), |o| o.min(self.len()));
        let n = buf.len().min(self.len() - start);
        buf[..n].copy_from_slice(&self[start..start + n]);
        Ok(n)
    }
}

fn read_from(file: &(impl ReadAt + ?Sized), path: &Path) -> Result<ElfInfo, ElfError> {
    let bad = |source| ElfError::Malformed {
        path: path.to_path_buf(),
        source,
    };
    let Loaded {
        header,
        phdrs,
        interp,
        dynamic,
    } = load(file, path)?;
    let mut info = ElfInfo {
        ident: header.ident,
        interp,
        dynamic: false,
        needed: Vec::new(),
        soname: None,
        rpath: None,
        runpath: None,
        nodeflib: false,
        notes: Default::default(),
    };
    let Some(raw) = dynamic else {
        return Ok(info);
    };
    info.dynamic = true;
    info.notes = read_notes(file, &header, &phdrs);
    info.nodeflib = parse::has_nodeflib(&raw);

    let wants_strings = !raw.needed.is_empty()
        || raw.soname.is_some()
        || raw.rpath.is_some()
        || raw.runpath.is_some();
    if !wants_strings {
        return Ok(info);
    }
    let strtab = raw
        .strtab_vaddr
        .and_then(|v| parse::vaddr_to_offset(&phdrs, v))
        .ok_or_else(|| {
            bad(ParseError::Malformed(
                "DT_STRTAB outside any PT_LOAD".into(),
            ))
        })?;
    let string = |off: u64| -> Result<OsString, ElfError> {
        if raw.strsz != 0 && off >= raw.strsz {
            return Err(bad(ParseError::Malformed(format!(
                "string offset {off} past DT_STRSZ {}",
                raw.strsz
            ))));
        }
        let at = strtab.checked_add(off).ok_or_else(|| {
            bad(ParseError::Malformed(format!(
                "string offset {off} overflows the file offset"
            )))
        })?;
        read_c_string(file, at)
            .map(OsString::from_vec)
            .map_err(|e| bad(ParseError::Malformed(format!("dynstr: {e}"))))
    };
    for &off in &raw.needed {
        info.needed.push(string(off)?);
    }
    info.soname = raw.soname.map(string).transpose()?;
    info.rpath = raw.rpath.map(string).transpose()?;
    info.runpath = raw.runpath.map(string).transpose()?;
    Ok(info)
}

/// Most section headers read for notes, and most note bytes in all.
const MAX_SECTIONS: u64 = 4096;
const MAX_NOTE_BYTES: u64 = 1 << 20;
/// `SHT_NOTE` (gABI).
const SHT_NOTE: u32 = 7;

/// The notes of SHT_NOTE sections, or of PT_NOTE segments when the file
/// has no section headers: a note added with `objcopy --add-section` is
/// in no segment. Notes are not the loader's business, so a damaged or
/// unreadable table only means no notes.
fn read_notes(
    file: &(impl ReadAt + ?Sized),
    header: &parse::HeaderInfo,
    phdrs: &[goblin::elf::ProgramHeader],
) -> super::notes::NoteInfo {
    use goblin::elf::SectionHeader;
    let ident = &header.ident;
    let mut ranges: Vec<(u64, u64, u64)> = Vec::new();
    let shsize = SectionHeader::size(ident.ctx());
    if header.shoff != 0
        && header.shnum > 0
        && u64::from(header.shnum) <= MAX_SECTIONS
        && header.shentsize as usize == shsize
        && let Ok(bytes) =
            read_exact_vec(file, header.shoff, (shsize * header.shnum as usize) as u64)
        && let Ok(sections) =
            SectionHeader::parse_from(&bytes, 0, header.shnum as usize, ident.ctx())
    {
        ranges.extend(
            sections
                .iter()
                .filter(|s| s.sh_type == SHT_NOTE)
                .map(|s| (s.sh_offset, s.sh_size, s.sh_addralign)),
        );
    } else {
        ranges.extend(
            phdrs
                .iter()
                .filter(|p| p.p_type == goblin::elf::program_header::PT_NOTE)
                .map(|p| (p.p_offset, p.p_filesz, p.p_align)),
        );
    }
    let mut info = super::notes::NoteInfo::default();
    let mut budget = MAX_NOTE_BYTES;
    for (off, size, align) in ranges {
        if size > budget {
            continue;
        }
        budget -= size;
        if let Ok(bytes) = read_exact_vec(file, off, size) {
            for note in super::notes::parse_notes(&bytes, ident, align) {
                info.add(&note, ident);
            }
        }
    }
    info
}

/// The parts of an ELF file every reader starts from: the header, the
/// program headers, PT_INTERP and the PT_DYNAMIC entries.
pub(super) struct Loaded {
    pub(super) header: parse::HeaderInfo,
    pub(super) phdrs: Vec<goblin::elf::ProgramHeader>,
    pub(super) interp: Option<PathBuf>,
    /// `None` when there is no PT_DYNAMIC.
    pub(super) dynamic: Option<parse::DynamicRaw>,
}

pub(super) fn load(file: &(impl ReadAt + ?Sized), path: &Path) -> Result<Loaded, ElfError> {
    let bad = |source| ElfError::Malformed {
        path: path.to_path_buf(),
        source,
    };
    let io_err = |source| ElfError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut head = [0u8; parse::MAX_EHDR_SIZE];
    let n = read_up_to(file, &mut head, 0).map_err(io_err)?;
    let head = &head[..n];
    let header = match parse::parse_header(head) {
        Ok(h) => h,
        Err(ParseError::NotElf) => return Err(not_elf(file, path, head)),
        Err(e) => return Err(bad(e)),
    };

    let ph_bytes = read_exact_vec(file, header.phoff, header.program_headers_size() as u64)
        .map_err(|_| {
            bad(ParseError::Malformed(
                "program headers past end of file".into(),
            ))
        })?;
    let phdrs = parse::parse_program_headers(&ph_bytes, &header).map_err(bad)?;

    let interp = match parse::interp_range(&phdrs) {
        Some((off, size)) if size <= MAX_INTERP => {
            let raw = read_exact_vec(file, off, size)
                .map_err(|_| bad(ParseError::Malformed("PT_INTERP past end of file".into())))?;
            Some(PathBuf::from(OsString::from_vec(
                parse::c_str(&raw).to_vec(),
            )))
        }
        Some(_) => return Err(bad(ParseError::Malformed("PT_INTERP too long".into()))),
        None => None,
    };

    let Some((dyn_off, dyn_size)) = parse::dynamic_range(&phdrs) else {
        return Ok(Loaded {
            header,
            phdrs,
            interp,
            dynamic: None,
        });
    };
    if dyn_size > MAX_DYNAMIC {
        return Err(bad(ParseError::Malformed(format!(
            "PT_DYNAMIC of {dyn_size} bytes"
        ))));
    }
    let dyn_bytes = read_exact_vec(file, dyn_off, dyn_size)
        .map_err(|_| bad(ParseError::Malformed("PT_DYNAMIC past end of file".into())))?;
    let raw = parse::parse_dynamic(&dyn_bytes, &header.ident).map_err(bad)?;
    Ok(Loaded {
        header,
        phdrs,
        interp,
        dynamic: Some(raw),
    })
}

/// Explains a non-ELF file, naming the input kind that fits scripts.
fn not_elf(file: &(impl ReadAt + ?Sized), path: &Path, head: &[u8]) -> ElfError {
    if head.starts_with(b"#!") {
        let mut line = [0u8; 256];
        let n = read_up_to(file, &mut line, 0).unwrap_or(0);
        let first = line[..n].split(|&b| b == b'\n').next().unwrap_or_default();
        let shebang = String::from_utf8_lossy(first).trim().to_string();
        let hint = if shebang.contains("python") {
            "package it with --from-venv, or --from-dir with --profile python"
        } else if shebang.contains("node") {
            "package it with --from-dir and --profile node"
        } else {
            "add it with --from-dir or --include, with a profile for its interpreter"
        };
        return ElfError::Script {
            path: path.to_path_buf(),
            shebang,
            hint,
        };
    }
    ElfError::NotElf {
        path: path.to_path_buf(),
    }
}

pub(super) fn read_up_to(
    file: &(impl ReadAt + ?Sized),
    buf: &mut [u8],
    offset: u64,
) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset.saturating_add(done as u64)) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Opens `path` (a host path) for positioned reads, with its length: what
/// the table readers bound every offset by.
pub(super) fn open_sized(path: &Path) -> Result<(File, u64), ElfError> {
    let io_err = |source| ElfError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    let len = file.metadata().map_err(io_err)?.len();
    Ok((file, len))
}

/// `len` bytes at `off`, if the file has them (checked before allocating,
/// so a corrupt size cannot ask for gigabytes).
pub(super) fn within(
    file: &(impl ReadAt + ?Sized),
    file_len: u64,
    off: u64,
    len: u64,
) -> Option<Vec<u8>> {
    if off.checked_add(len)? > file_len {
        return None;
    }
    read_exact_vec(file, off, len).ok()
}

pub(super) fn read_exact_vec(
    file: &(impl ReadAt + ?Sized),
    offset: u64,
    len: u64,
) -> io::Result<Vec<u8>> {
    let mut v = vec![0u8; len as usize];
    if read_up_to(file, &mut v, offset)? < v.len() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "failed to fill whole buffer",
        ));
    }
    Ok(v)
}

pub(super) fn read_c_string(file: &(impl ReadAt + ?Sized), offset: u64) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 256];
    loop {
        let n = read_up_to(file, &mut chunk, offset.saturating_add(out.len() as u64))?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "unterminated string",
            ));
        }
        if let Some(end) = chunk[..n].iter().position(|&b| b == 0) {
            out.extend_from_slice(&chunk[..end]);
            return Ok(out);
        }
        out.extend_from_slice(&chunk[..n]);
        if out.len() > MAX_DYNSTR {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "string too long",
            ));
        }
    }
}

/// Whether the file at `path` starts with the ELF magic: cheap, for
/// telling which files of a tree to resolve before reading any fully.
pub fn is_elf(path: &Path) -> bool {
    let mut magic = [0u8; header::SELFMAG];
    File::open(path)
        .and_then(|f| f.read_exact_at(&mut magic, 0))
        .is_ok()
        && magic == *header::ELFMAG
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elf::synth::SynthElf;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn reads_synthetic_executable() {
        let d = tempfile::tempdir().unwrap();
        let p = write(
            d.path(),
            "app",
            &SynthElf::exe()
                .needed("libc.so.6")
                .rpath("/opt/lib")
                .build(),
        );
        let info = read_elf(&p).unwrap();
        assert_eq!(
            info.interp.as_deref(),
            Some(Path::new("/lib64/ld-linux-x86-64.so.2"))
        );
        assert_eq!(info.needed, vec![OsString::from("libc.so.6")]);
        assert_eq!(info.effective_rpath(), Some(&OsString::from("/opt/lib")));
        assert!(!info.is_static());
    }

    #[test]
    fn bad_inputs_give_clear_errors() {
        let d = tempfile::tempdir().unwrap();
        let script = write(d.path(), "s", b"#!/usr/bin/python3\nprint(1)\n");
        let text = write(d.path(), "t", b"hello");
        let full = SynthElf::exe().needed("libc.so.6").build();
        let trunc = write(d.path(), "trunc", &full[..100]);
        let cases: Vec<(PathBuf, &str)> = vec![
            (
                script,
                "is a script (#!/usr/bin/python3), not an ELF file; package it with --from-venv",
            ),
            (text, "is not an ELF file"),
            (trunc, "past end of file"),
            (d.path().to_path_buf(), "is a directory"),
            (d.path().join("missing"), "cannot read"),
        ];
        for (path, want) in cases {
            let err = read_elf(&path).unwrap_err().to_string();
            assert!(err.contains(want), "{}: {err}", path.display());
            assert!(err.contains(&path.display().to_string()), "{err}");
        }
    }

    #[test]
    fn static_binary_has_no_closure() {
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), "s", &SynthElf::static_exe().build());
        let info = read_elf(&p).unwrap();
        assert!(info.is_static() && !info.dynamic);
    }

    /// Corrupt input never panics: every single-byte change and every
    /// truncation of a dynamic executable, and random multi-byte damage,
    /// give a result or an error.
    #[test]
    fn corrupted_files_never_panic() {
        let d = tempfile::tempdir().unwrap();
        let good = SynthElf::exe()
            .needed("libc.so.6")
            .needed("libm.so.6")
            .soname("x")
            .rpath("$ORIGIN")
            .runpath("/opt")
            .build();
        let path = d.path().join("f");
        let mut cases: Vec<Vec<u8>> = Vec::new();
        for n in 0..good.len() {
            cases.push(good[..n].to_vec());
            for v in [0x00, 0xff, 0x80, 0x7f] {
                let mut b = good.clone();
                b[n] = v;
                cases.push(b);
            }
        }
        // xorshift: deterministic "random" damage.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2000 {
            let mut b = good.clone();
            for _ in 0..4 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let at = (x as usize) % b.len();
                b[at] = (x >> 32) as u8;
            }
            cases.push(b);
        }
        for bytes in cases {
            std::fs::write(&path, &bytes).unwrap();
            let _ = read_elf(&path);
        }
    }

    /// Found by fuzz/ (elf): a PT_LOAD whose p_offset is near u64::MAX
    /// made DT_STRTAB's file offset, or a string's offset from it,
    /// overflow (a panic in debug builds, a wrapped offset in release).
    #[test]
    fn offsets_past_the_end_of_u64_are_errors() {
        let good = SynthElf::exe().needed("libc.so.6").build();
        // p_offset of the first program header (the PT_LOAD) of an ELF64.
        let at = parse::MAX_EHDR_SIZE + 8;
        for k in 0..2048u64 {
            let mut b = good.clone();
            b[at..at + 8].copy_from_slice(&(u64::MAX - k).to_le_bytes());
            match read_elf_bytes(&b, Path::new("f")) {
                Err(ElfError::Malformed { .. }) => {}
                other => panic!("p_offset = u64::MAX - {k}: {other:?}"),
            }
        }
    }

    /// Bytes in memory read as the same bytes in a file do: the same info,
    /// or the same error.
    #[test]
    fn bytes_read_as_the_file_does() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("f");
        let good = SynthElf::exe()
            .needed("libc.so.6")
            .soname("x")
            .runpath("/opt")
            .build();
        let mut cases = vec![
            b"#!/bin/sh\n".to_vec(),
            b"hello".to_vec(),
            Vec::new(),
            SynthElf::static_exe().build(),
        ];
        for n in (0..good.len()).step_by(7) {
            cases.push(good[..n].to_vec());
            let mut b = good.clone();
            b[n] ^= 0xff;
            cases.push(b);
        }
        cases.push(good);
        for bytes in cases {
            std::fs::write(&path, &bytes).unwrap();
            let from_file = read_elf(&path).map_err(|e| e.to_string());
            let from_bytes = read_elf_bytes(&bytes, &path).map_err(|e| e.to_string());
            assert_eq!(from_bytes, from_file, "{bytes:?}");
        }
    }
}
