//! Synthetic ELF files for tests: just enough structure (header, PT_LOAD,
//! PT_INTERP, PT_DYNAMIC, dynstr) for the loader's view of a file, so the
//! resolver can be tested on generated trees with no third-party binaries.

use goblin::elf::dynamic::{
    DF_1_NODEFLIB, DT_FLAGS_1, DT_GNU_HASH, DT_HASH, DT_NEEDED, DT_NULL, DT_RPATH, DT_RUNPATH,
    DT_SONAME, DT_STRSZ, DT_STRTAB, DT_SYMENT, DT_SYMTAB,
};
use goblin::elf::header::{EM_386, EM_AARCH64, EM_X86_64, ET_DYN, ET_EXEC};
use goblin::elf::program_header::{PT_DYNAMIC, PT_INTERP, PT_LOAD};

#[derive(Clone, Debug)]
pub struct SynthElf {
    is_64: bool,
    little_endian: bool,
    machine: u16,
    elf_type: u16,
    osabi: u8,
    interp: Option<String>,
    needed: Vec<String>,
    soname: Option<String>,
    rpath: Option<String>,
    runpath: Option<String>,
    flags_1: u64,
    dynamic: bool,
    /// Undefined dynamic symbols, then defined ones.
    imports: Vec<String>,
    exports: Vec<String>,
    /// DT_GNU_HASH instead of DT_HASH.
    gnu_hash: bool,
}

const VADDR_BASE: u64 = 0x10000;

impl SynthElf {
    pub fn x86_64() -> Self {
        SynthElf {
            is_64: true,
            little_endian: true,
            machine: EM_X86_64,
            elf_type: ET_DYN,
            osabi: 0,
            interp: None,
            needed: Vec::new(),
            soname: None,
            rpath: None,
            runpath: None,
            flags_1: 0,
            dynamic: true,
            imports: Vec::new(),
            exports: Vec::new(),
            gnu_hash: false,
        }
    }

    pub fn i386() -> Self {
        SynthElf {
            is_64: false,
            machine: EM_386,
            ..Self::x86_64()
        }
    }

    pub fn aarch64() -> Self {
        SynthElf {
            machine: EM_AARCH64,
            ..Self::x86_64()
        }
    }

    /// An executable with the usual x86-64 interpreter.
    pub fn exe() -> Self {
        Self::x86_64().interp("/lib64/ld-linux-x86-64.so.2")
    }

    /// A static executable: no PT_INTERP, no PT_DYNAMIC.
    pub fn static_exe() -> Self {
        SynthElf {
            elf_type: ET_EXEC,
            dynamic: false,
            ..Self::x86_64()
        }
    }

    pub fn interp(mut self, p: &str) -> Self {
        self.interp = Some(p.to_string());
        self
    }
    pub fn needed(mut self, n: &str) -> Self {
        self.needed.push(n.to_string());
        self
    }
    pub fn soname(mut self, n: &str) -> Self {
        self.soname = Some(n.to_string());
        self
    }
    pub fn rpath(mut self, p: &str) -> Self {
        self.rpath = Some(p.to_string());
        self
    }
    pub fn runpath(mut self, p: &str) -> Self {
        self.runpath = Some(p.to_string());
        self
    }
    pub fn nodeflib(mut self) -> Self {
        self.flags_1 |= DF_1_NODEFLIB;
        self
    }
    /// An undefined dynamic symbol (a function the program imports).
    pub fn import(mut self, name: &str) -> Self {
        self.imports.push(name.to_string());
        self
    }
    /// A defined dynamic symbol.
    pub fn export(mut self, name: &str) -> Self {
        self.exports.push(name.to_string());
        self
    }
    pub fn gnu_hash(mut self, on: bool) -> Self {
        self.gnu_hash = on;
        self
    }
    pub fn big_endian(mut self) -> Self {
        self.little_endian = false;
        self
    }

    fn word(&self) -> usize {
        if self.is_64 { 8 } else { 4 }
    }

    pub fn build(&self) -> Vec<u8> {
        let (ehdr_size, phent) = if self.is_64 { (64, 56) } else { (52, 32) };
        let mut phnum = 1;
        if self.interp.is_some() {
            phnum += 1;
        }
        if self.dynamic {
            phnum += 1;
        }

        // Dynamic string table.
        let mut dynstr = vec![0u8];
        let mut add = |s: &str| {
            let off = dynstr.len() as u64;
            dynstr.extend_from_slice(s.as_bytes());
            dynstr.push(0);
            off
        };
        let mut dyns: Vec<(u64, u64)> = Vec::new();
        for n in &self.needed {
            dyns.push((DT_NEEDED, add(n)));
        }
        if let Some(s) = &self.soname {
            dyns.push((DT_SONAME, add(s)));
        }
        if let Some(s) = &self.rpath {
            dyns.push((DT_RPATH, add(s)));
        }
        if let Some(s) = &self.runpath {
            dyns.push((DT_RUNPATH, add(s)));
        }
        if self.flags_1 != 0 {
            dyns.push((DT_FLAGS_1, self.flags_1));
        }
        let import_names: Vec<u64> = self.imports.iter().map(|n| add(n)).collect();
        let export_names: Vec<u64> = self.exports.iter().map(|n| add(n)).collect();

        let interp_off = ehdr_size + phnum * phent;
        let interp_bytes: Vec<u8> = self
            .interp
            .as_ref()
            .map(|s| {
                let mut v = s.as_bytes().to_vec();
                v.push(0);
                v
            })
            .unwrap_or_default();
        let dynstr_off = interp_off + interp_bytes.len();
        let symtab_off = (dynstr_off + dynstr.len()).next_multiple_of(8);
        let (symtab, hash) = self.symbols(&import_names, &export_names);
        let hash_off = (symtab_off + symtab.len()).next_multiple_of(8);
        let dynamic_off = (hash_off + hash.len()).next_multiple_of(8);
        if !symtab.is_empty() {
            dyns.push((DT_SYMTAB, VADDR_BASE + symtab_off as u64));
            dyns.push((DT_SYMENT, if self.is_64 { 24 } else { 16 }));
            let tag = if self.gnu_hash { DT_GNU_HASH } else { DT_HASH };
            dyns.push((tag, VADDR_BASE + hash_off as u64));
        }
        dyns.push((DT_STRTAB, VADDR_BASE + dynstr_off as u64));
        dyns.push((DT_STRSZ, dynstr.len() as u64));
        dyns.push((DT_NULL, 0));
        let dynamic_size = if self.dynamic {
            dyns.len() * 2 * self.word()
        } else {
            0
        };
        let total = dynamic_off + dynamic_size;

        let mut out = Vec::with_capacity(total);
        // e_ident
        out.extend_from_slice(b"\x7fELF");
        out.push(if self.is_64 { 2 } else { 1 });
        out.push(if self.little_endian { 1 } else { 2 });
        out.push(1); // EI_VERSION
        out.push(self.osabi);
        out.extend_from_slice(&[0; 8]);
        self.put(&mut out, self.elf_type as u64, 2);
        self.put(&mut out, self.machine as u64, 2);
        self.put(&mut out, 1, 4); // e_version
        self.put(&mut out, VADDR_BASE, self.word()); // e_entry
        self.put(&mut out, ehdr_size as u64, self.word()); // e_phoff
        self.put(&mut out, 0, self.word()); // e_shoff
        self.put(&mut out, 0, 4); // e_flags
        self.put(&mut out, ehdr_size as u64, 2);
        self.put(&mut out, phent as u64, 2);
        self.put(&mut out, phnum as u64, 2);
        self.put(&mut out, 0, 2); // e_shentsize
        self.put(&mut out, 0, 2); // e_shnum
        self.put(&mut out, 0, 2); // e_shstrndx
        debug_assert_eq!(out.len(), ehdr_size);

        self.phdr(&mut out, PT_LOAD, 0, total as u64);
        if self.interp.is_some() {
            self.phdr(
                &mut out,
                PT_INTERP,
                interp_off as u64,
                interp_bytes.len() as u64,
            );
        }
        if self.dynamic {
            self.phdr(
                &mut out,
                PT_DYNAMIC,
                dynamic_off as u64,
                dynamic_size as u64,
            );
        }
        out.extend_from_slice(&interp_bytes);
        out.extend_from_slice(&dynstr);
        out.resize(symtab_off, 0);
        out.extend_from_slice(&symtab);
        out.resize(hash_off, 0);
        out.extend_from_slice(&hash);
        out.resize(dynamic_off, 0);
        if self.dynamic {
            for (tag, val) in dyns {
                self.put(&mut out, tag, self.word());
                self.put(&mut out, val, self.word());
            }
        }
        out
    }

    /// The dynamic symbol table (null symbol, imports, exports) and its
    /// hash table; both empty without symbols.
    fn symbols(&self, imports: &[u64], exports: &[u64]) -> (Vec<u8>, Vec<u8>) {
        if imports.is_empty() && exports.is_empty() {
            return (Vec::new(), Vec::new());
        }
        const STB_GLOBAL_FUNC: u64 = 1 << 4 | 2;
        let mut symtab = Vec::new();
        let mut sym = |name: u64, shndx: u64| {
            if self.is_64 {
                self.put(&mut symtab, name, 4);
                self.put(&mut symtab, if name == 0 { 0 } else { STB_GLOBAL_FUNC }, 1);
                self.put(&mut symtab, 0, 1);
                self.put(&mut symtab, shndx, 2);
                self.put(&mut symtab, 0, 8);
                self.put(&mut symtab, 0, 8);
            } else {
                self.put(&mut symtab, name, 4);
                self.put(&mut symtab, 0, 4);
                self.put(&mut symtab, 0, 4);
                self.put(&mut symtab, if name == 0 { 0 } else { STB_GLOBAL_FUNC }, 1);
                self.put(&mut symtab, 0, 1);
                self.put(&mut symtab, shndx, 2);
            }
        };
        sym(0, 0);
        for &n in imports {
            sym(n, 0);
        }
        for &n in exports {
            sym(n, 1);
        }
        let nsyms = (1 + imports.len() + exports.len()) as u64;
        let mut hash = Vec::new();
        if self.gnu_hash {
            // One bucket, one all-ones bloom word; the exports are hashed
            // from symoffset on, the last chain word has bit 0 set.
            let symoffset = 1 + imports.len() as u64;
            for v in [1, symoffset, 1, 6] {
                self.put(&mut hash, v, 4);
            }
            self.put(&mut hash, u64::MAX, self.word());
            self.put(&mut hash, if exports.is_empty() { 0 } else { symoffset }, 4);
            for i in 0..exports.len() {
                let last = i + 1 == exports.len();
                self.put(&mut hash, if last { 0x1235 } else { 0x1234 }, 4);
            }
        } else {
            // nbucket 1, nchain = every symbol, all chains empty.
            self.put(&mut hash, 1, 4);
            self.put(&mut hash, nsyms, 4);
            for _ in 0..=nsyms {
                self.put(&mut hash, 0, 4);
            }
        }
        (symtab, hash)
    }

    fn phdr(&self, out: &mut Vec<u8>, p_type: u32, offset: u64, size: u64) {
        let vaddr = VADDR_BASE + offset;
        if self.is_64 {
            self.put(out, p_type as u64, 4);
            self.put(out, 4, 4); // p_flags: R
            self.put(out, offset, 8);
            self.put(out, vaddr, 8);
            self.put(out, vaddr, 8);
            self.put(out, size, 8);
            self.put(out, size, 8);
            self.put(out, 8, 8);
        } else {
            self.put(out, p_type as u64, 4);
            self.put(out, offset, 4);
            self.put(out, vaddr, 4);
            self.put(out, vaddr, 4);
            self.put(out, size, 4);
            self.put(out, size, 4);
            self.put(out, 4, 4);
            self.put(out, 4, 4);
        }
    }

    fn put(&self, out: &mut Vec<u8>, v: u64, width: usize) {
        let bytes = if self.little_endian {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        };
        if self.little_endian {
            out.extend_from_slice(&bytes[..width]);
        } else {
            out.extend_from_slice(&bytes[8 - width..]);
        }
    }
}
