//! Dependency resolution.
