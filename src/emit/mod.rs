//! The emit stage: what a linked file becomes on disk. [`output`] writes the
//! output directory (atomically, never outside it; under a watch, reusing
//! displaced files through [`reuse`]), [`compress`] makes the
//! gzip and brotli siblings, [`manifest`] the manifests backends read, and
//! [`headers`] the Cache-Control policy and the files that carry it
//! (`_headers`, nginx, Caddy), [`apache`] the `.htaccess` for Apache, all for
//! the [`host`] the output is written for.

pub mod apache;
pub mod compress;
pub mod headers;
pub mod host;
pub mod manifest;
pub mod output;
pub mod paths;
pub mod reuse;

pub use output::{
    OutputDir, TEMP_PREFIX, copy_opaque, prepare, remove_stale, safe_join, write_atomic,
};
pub(crate) use paths::absolute;
pub use reuse::{Retired, remove_retired};
