//! The image's file plan and the standard files every image gets.

pub mod tree;

pub use tree::{Entry, ImagePath, Kind, Source, Tree};
