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
pub mod routes;
pub mod scan;
pub mod spill;
pub mod transform;
pub mod units;

pub use config::Config;
pub use error::{Error, Result};
pub use pipeline::BuildOutcome;

use progress::Progress;
use report::Summary;
use report::diff::Baseline;

/// A build, and what it tells: the same summary `kiln build` prints.
#[derive(Debug)]
pub struct Built {
    pub outcome: BuildOutcome,
    pub summary: Summary,
    /// What could not be done besides the build itself (the size report, the
    /// comparison): warnings for the user.
    pub notes: Vec<String>,
}

/// Build `config`, then check its budgets, compare it with `baseline` (read
/// with [`report::diff::read_baseline`]) and write `kiln-report.html`: what
/// `kiln build` does, without the printing. [`pipeline::build`] is the build
/// alone.
pub fn build(
    config: &Config,
    baseline: Option<&Baseline>,
    progress: &dyn Progress,
) -> Result<Built> {
    let outcome = pipeline::build(config, progress)?;
    let (summary, notes) = report::tell(config, &outcome, baseline);
    Ok(Built {
        outcome,
        summary,
        notes,
    })
}

/// `kiln <version>`, recorded in manifests.
pub fn generator() -> String {
    format!("kiln {}", env!("CARGO_PKG_VERSION"))
}
