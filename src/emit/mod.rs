//! The emit stage: what a linked file becomes on disk. [`output`] writes the
//! output directory (atomically, never outside it), [`compress`] makes the
//! gzip and brotli siblings, [`manifest`] the manifests backends read, and
//! [`headers`] the Cache-Control policy and the files that carry it
//! (`_headers`, nginx).

pub mod compress;
pub mod headers;
pub mod manifest;
pub mod output;

pub(crate) use output::absolute;
pub use output::{
    OutputDir, Retired, TEMP_PREFIX, copy_opaque, prepare, remove_retired, remove_stale, safe_join,
    write_atomic,
};
