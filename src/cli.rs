//! The command line as the user types it (clap). Turning it into a
//! [`Config`](kiln::Config) is `config::resolve`'s job.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use kiln::config::Overrides;
use kiln::deploy::DeploySettings;
use kiln::emit::compress::Effort;
use kiln::link::HashPolicy;

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
failed (errors, or any diagnostic with --strict), 2 bad usage or configuration, 3 output could not be written, 4 a size budget was exceeded."
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
    /// Serve a built output directory the way the CDN will (headers from the manifest,
    /// precompressed variants, ETag/304, Range, index.html, 404.html).
    #[command(after_help = "Examples:\n  kiln serve out\n  kiln serve out --addr 127.0.0.1:8080")]
    Serve {
        /// The output directory of a build (default: kiln-out).
        #[arg(default_value = "kiln-out")]
        out: PathBuf,
        /// Address to listen on; loopback unless you ask otherwise.
        #[arg(long, default_value = kiln::dev::serve::DEFAULT_ADDR)]
        addr: std::net::SocketAddr,
    },
    /// Build SRC, then rebuild on every change until Ctrl-C; with --serve, serve
    /// the output like the CDN will, with live reload.
    #[command(
        after_help = "Examples:\n  kiln watch dist -o out\n  kiln watch dist -o out --serve\n  kiln watch dist -o out --serve 127.0.0.1:8080\n\nRebuilds use fast compression (gzip 6, brotli 5) unless --compress-effort best is given."
    )]
    Watch {
        #[command(flatten)]
        build: BuildArgs,
        /// Serve the output with live reload (default address 127.0.0.1:4173).
        #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = kiln::dev::serve::DEFAULT_ADDR)]
        serve: Option<std::net::SocketAddr>,
    },
    /// Deploy a build to an S3-compatible bucket or a local origin directory: only what
    /// changed, assets before pages, stale files removed after a grace period.
    #[command(
        after_help = "Examples:\n  kiln deploy out --to s3://my-bucket/site --dry-run\n  kiln deploy out --to s3://site --endpoint https://ACCOUNT.r2.cloudflarestorage.com --region auto\n  kiln deploy out --to dir:/srv/www\n\nCredentials come from the AWS chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, SSO, web identity (GitHub OIDC), instance metadata. AWS_ENDPOINT_URL is honoured."
    )]
    Deploy(DeployArgs),
    /// Compare two builds: size changes per file, per kind and in total.
    #[command(
        after_help = "OLD and NEW are each a manifest (kiln-manifest.json), an output directory, or a\ndeploy target (s3://bucket/prefix, dir:/path) holding the last deploy.\n\nExamples:\n  kiln diff old-out out\n  kiln diff s3://my-bucket/site out --json"
    )]
    Diff(DiffArgs),
    /// Inspect or trim the transform and compression cache.
    #[command(subcommand)]
    Cache(CacheCommand),
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The build to deploy (default: `output` in kiln.toml, else kiln-out).
    pub out: Option<PathBuf>,
    /// s3://bucket/prefix or dir:/path (default: `deploy.to` in kiln.toml).
    #[arg(long, value_name = "TARGET")]
    pub to: Option<String>,
    /// Configuration file (default: ./kiln.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub endpoint: EndpointArgs,
    /// How precompressed variants are stored (default: negotiate).
    #[arg(long, value_enum)]
    pub encoding: Option<kiln::deploy::Encoding>,
    /// Uploads in flight at once (default: 16).
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Refuse a deploy that would delete more than N objects.
    #[arg(long, value_name = "N")]
    pub max_delete: Option<usize>,
    /// Deploys a removed file survives before it is deleted (default: 3).
    #[arg(long, value_name = "N")]
    pub keep_deploys: Option<u64>,
    /// Time a removed file survives before it is deleted: 0, 90s, 30m, 12h, 7d (default: 7d).
    #[arg(long, value_name = "DURATION")]
    pub keep_for: Option<String>,
    /// Also delete objects under the prefix that kiln never wrote.
    #[arg(long)]
    pub prune_foreign: bool,
    /// Compare with a full listing and each object's metadata, and repair drift.
    #[arg(long)]
    pub verify: bool,
    /// Print the plan; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Deploy a directory that is not a kiln build, every file as it is.
    #[arg(long)]
    pub raw: bool,
    /// Invalidate this CloudFront distribution for the changed paths.
    #[arg(long, value_name = "DISTRIBUTION_ID")]
    pub cloudfront: Option<String>,
    /// After the deploy, fetch the changed URLs under BASE_URL (br, gzip) to fill the CDN.
    #[arg(long, value_name = "BASE_URL")]
    pub warm: Option<String>,
    /// Purge the changed URLs from this Cloudflare zone (token in CLOUDFLARE_API_TOKEN).
    #[arg(long, value_name = "ZONE_ID")]
    pub cloudflare_zone: Option<String>,
    /// Purge the changed URLs from this Fastly service (token in FASTLY_API_TOKEN).
    #[arg(long, value_name = "SERVICE_ID")]
    pub fastly_service: Option<String>,
    /// The public URL of the site's root, for purges by URL (default: --warm's).
    #[arg(long, value_name = "URL")]
    pub site_url: Option<String>,
    /// Print the summary (with the plan) as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// One line per object written or deleted, on stderr.
    #[arg(short, long)]
    pub verbose: bool,
    /// Write step outputs to $GITHUB_OUTPUT and a job summary to $GITHUB_STEP_SUMMARY.
    #[arg(long)]
    pub github: bool,
}

/// Where an S3-compatible store is, for `deploy` and `diff` (over `[deploy]`
/// in kiln.toml; `build --compare-to` reads kiln.toml's alone).
#[derive(Debug, Args)]
pub struct EndpointArgs {
    /// S3 endpoint URL (R2, MinIO, SeaweedFS…); AWS when absent.
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// S3 region (default: from the AWS configuration, else us-east-1).
    #[arg(long)]
    pub region: Option<String>,
    /// Path-style S3 addressing (endpoint/bucket/key), for MinIO and most self-hosted stores.
    #[arg(long)]
    pub path_style: bool,
}

impl EndpointArgs {
    /// The flags given, as deploy settings (`None` where not given).
    pub fn settings(&self) -> DeploySettings {
        DeploySettings {
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            path_style: self.path_style.then_some(true),
            ..DeploySettings::default()
        }
    }
}

impl DeployArgs {
    /// The flags given, as deploy settings (`None` where not given), to
    /// override `[deploy]` in kiln.toml.
    pub fn settings(&self) -> DeploySettings {
        DeploySettings {
            to: self.to.clone(),
            encoding: self.encoding,
            concurrency: self.concurrency,
            max_delete: self.max_delete,
            keep_deploys: self.keep_deploys,
            keep_for: self.keep_for.clone(),
            prune_foreign: self.prune_foreign.then_some(true),
            cloudfront_distribution: self.cloudfront.clone(),
            warm: self.warm.clone(),
            cloudflare_zone: self.cloudflare_zone.clone(),
            fastly_service: self.fastly_service.clone(),
            site_url: self.site_url.clone(),
            ..self.endpoint.settings()
        }
    }
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The baseline.
    pub old: String,
    /// The build to compare with it.
    pub new: String,
    /// Configuration file (its [deploy] endpoint, region, path_style are used for s3:// targets).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub endpoint: EndpointArgs,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Entries and bytes in the cache.
    Stats {
        /// Cache directory (default: .kiln-cache).
        #[arg(long, value_name = "DIR", default_value = kiln::cache::DEFAULT_DIR)]
        cache_dir: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove the least recently used entries until the cache fits in SIZE.
    Prune {
        /// Cache directory (default: .kiln-cache).
        #[arg(long, value_name = "DIR", default_value = kiln::cache::DEFAULT_DIR)]
        cache_dir: PathBuf,
        /// Largest size to keep: bytes, or with a unit (500MB, 2GiB).
        #[arg(long, value_name = "SIZE", value_parser = kiln::units::parse_size)]
        max_size: u64,
    },
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
    /// Cache directory for transform and compression results (default: .kiln-cache).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Build without the cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Write a source map for each minified JS and CSS file (chained to the input's map).
    #[arg(long)]
    pub sourcemaps: bool,
    /// How hard gzip and brotli work: best (9/11, default) or fast (6/5).
    #[arg(long, value_enum, value_name = "EFFORT")]
    pub compress_effort: Option<Effort>,
    /// Write the output for one host: only the files it reads (default: all).
    #[arg(long, value_enum, value_name = "HOST")]
    pub host: Option<kiln::emit::host::Host>,
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
    /// File contents kept in memory between stages, in MiB (default 64); the
    /// rest waits in a temporary file in the output directory.
    #[arg(long, value_name = "MIB")]
    pub memory_budget: Option<u64>,
    /// Budgets file with `[[budget]]` tables (default: those in kiln.toml).
    #[arg(long, value_name = "FILE")]
    pub budgets: Option<PathBuf>,
    /// Report exceeded budgets without failing (exit 0 instead of 4).
    #[arg(long)]
    pub no_fail_on_budget: bool,
    /// Compare sizes with an earlier build: a manifest, an output directory, or a
    /// deploy target (s3://bucket/prefix, dir:/path) holding the previous deploy.
    #[arg(long, value_name = "BASELINE")]
    pub compare_to: Option<String>,
    /// Do not write kiln-report.html.
    #[arg(long)]
    pub no_report: bool,
    /// Write step outputs to $GITHUB_OUTPUT and a job summary to $GITHUB_STEP_SUMMARY.
    #[arg(long)]
    pub github: bool,
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
            memory_budget_mib: self.memory_budget,
            no_minify: self.no_minify,
            sourcemaps: self.sourcemaps,
            cache_dir: self.cache_dir.clone(),
            no_cache: self.no_cache,
            compress_effort: self.compress_effort,
            host: self.host,
            budgets: self.budgets.clone(),
            no_report: self.no_report,
        }
    }
}
