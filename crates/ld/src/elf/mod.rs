//! ELF input: the loader's view of a file (header, PT_INTERP, dynamic
//! section, the imported symbols) and the root's loader configuration
//! (ld.so.cache, ld.so.conf).

pub mod arch;
pub mod dynsym;
pub mod imports;
pub mod ldcache;
pub mod ldcache_write;
pub mod ldconf;
pub mod notes;
pub mod parse;
pub mod read;
pub mod strings;
pub mod symver;
#[cfg(test)]
pub(crate) mod synth;
pub mod versions;

pub use arch::Arch;
pub use imports::{read_imports, read_path_strings};
pub use ldcache::LdCache;
pub use parse::Ident;
pub use read::{ElfError, ElfInfo, is_elf, read_elf};
pub use versions::{Versions, read_versions};
