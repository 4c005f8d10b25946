//! Export writers. Every writer builds its files in a temporary sibling folder and renames it
//! into place at the end, so a failure or a cancel never leaves a half-written artifact under the
//! final name; bytes are deterministic for the same input and recipe.

pub mod atomic;
pub mod manifest;
pub mod safetensors;

pub use atomic::{FileSink, Opener, OutputDir, default_opener};
pub use manifest::{FileRecord, Manifest};
