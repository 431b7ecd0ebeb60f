//! kiln turns a directory of built web assets into a CDN-ready origin:
//! content-hashed names with every reference rewritten, precompressed
//! variants, manifests and Cache-Control rules.
//!
//! The modules follow the pipeline: [`scan`] → [`transform`] → [`link`] →
//! [`emit`] → [`report`], then [`deploy`]. [`pipeline`] runs the stages in
//! order; [`build`] is the entry point. [`dev`] holds `kiln watch` and
//! `kiln serve`; [`config`] resolves `kiln.toml` and flags into each stage's
//! options.

pub mod asset;
pub mod cache;
pub mod config;
pub mod deploy;
pub mod dev;
pub mod diag;
pub mod emit;
pub mod error;
pub mod glob;
pub mod link;
pub mod pipeline;
pub mod progress;
pub mod report;
pub mod scan;
pub mod spill;
pub mod transform;
pub mod units;

pub use config::Config;
pub use error::{Error, Result};
pub use pipeline::{BuildOutcome, build};

/// `kiln <version>`, recorded in manifests.
pub fn generator() -> String {
    format!("kiln {}", env!("CARGO_PKG_VERSION"))
}
