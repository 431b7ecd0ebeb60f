//! The command line as the user types it (clap). Turning it into a
//! [`Config`](kiln::Config) is `config::resolve`'s job.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use kiln::config::{HashPolicy, Overrides};

#[derive(Debug, Parser)]
#[command(
    name = "kiln",
    version,
    about = "Turn a directory of built web assets into a CDN-ready origin",
    long_about = "Turn a directory of built web assets into a CDN-ready origin: content-hashed \
names with every reference rewritten, gzip and brotli variants, manifests and Cache-Control rules.",
    after_help = "Examples:\n  kiln build dist -o out          build dist/ into out/\n  \
kiln build dist -o out --json   print a machine-readable summary on stdout\n  \
kiln build --strict             fail on any warning (CI)\n\nExit codes: 0 success, 1 build \
failed (errors, or any diagnostic with --strict), 2 bad usage or configuration, 3 output could not be written."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build SRC into an output directory ready for a CDN.
    #[command(
        after_help = "Examples:\n  kiln build dist -o out\n  kiln build site -o out --base /docs/ --strict\n  kiln build --config kiln.toml --json > summary.json"
    )]
    Build(BuildArgs),
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Source directory (default: `source` in kiln.toml, else the current directory).
    pub src: Option<PathBuf>,
    /// Output directory (default: `output` in kiln.toml, else `kiln-out`).
    #[arg(short, long = "out", value_name = "OUT")]
    pub out: Option<PathBuf>,
    /// Configuration file (default: kiln.toml in SRC, else in the current directory).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// URL path the site is served under, e.g. /docs/.
    #[arg(long)]
    pub base: Option<String>,
    /// Which files get content-hashed names.
    #[arg(long, value_enum)]
    pub hash: Option<HashPolicy>,
    /// Write a source map for each minified JS and CSS file (chained to the input's map).
    #[arg(long)]
    pub sourcemaps: bool,
    /// Do not minify: only rename files and rewrite references.
    #[arg(long)]
    pub no_minify: bool,
    /// Fail the build on any diagnostic, warnings included.
    #[arg(long)]
    pub strict: bool,
    /// Replace the contents of a non-empty output directory that kiln did not write.
    #[arg(long)]
    pub force: bool,
    /// Print a machine-readable summary on stdout (and nothing else there).
    #[arg(long)]
    pub json: bool,
    /// Print only diagnostics.
    #[arg(short, long)]
    pub quiet: bool,
    /// Number of worker threads (default: one per core).
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,
}

impl BuildArgs {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            source: self.src.clone(),
            output: self.out.clone(),
            config: self.config.clone(),
            base: self.base.clone(),
            hash: self.hash,
            strict: self.strict,
            force: self.force,
            jobs: self.jobs,
            no_minify: self.no_minify,
            sourcemaps: self.sourcemaps,
        }
    }
}
