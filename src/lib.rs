//! kiln turns a directory of built web assets into a CDN-ready origin:
//! content-hashed names with every reference rewritten, precompressed
//! variants, manifests and Cache-Control rules.
//!
//! The modules follow the pipeline: [`scan`] → [`transform`] → [`link`]
//! (with [`resolve`], [`graph`], [`hash`], [`rewrite`]) → [`emit`] (with
//! [`compress`], [`manifest`], [`headers`]) → [`report`] (with [`budget`]
//! and [`diff`]). [`pipeline`] wires
//! them together; [`build`] is the entry point.

pub mod asset;
pub mod budget;
pub mod cache;
pub mod compress;
pub mod config;
pub mod deploy;
pub mod diag;
pub mod diff;
pub mod emit;
pub mod error;
pub mod fingerprint;
pub mod graph;
pub mod hash;
pub mod headers;
pub mod link;
pub mod manifest;
pub mod picture;
pub mod pipeline;
pub mod report;
pub mod resolve;
pub mod rewrite;
pub mod scan;
pub mod serve;
pub mod spill;
pub mod transform;
pub mod watch;

pub use config::Config;
pub use error::{Error, Result};
pub use pipeline::{BuildOutcome, build};

/// `kiln <version>`, recorded in manifests.
pub fn generator() -> String {
    format!("kiln {}", env!("CARGO_PKG_VERSION"))
}
