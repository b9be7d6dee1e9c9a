//! Table-driven tests of the loader rules over synthetic ELF trees.
