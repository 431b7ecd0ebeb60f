//! The build, stage by stage: scan → transform → link → emit → manifests.
//! This is the only module that knows the order of the stages.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::asset::Asset;
use crate::cache::Cache;
use crate::config::Config;
use crate::diag::Diagnostic;
use crate::emit;
use crate::emit::compress::EncodeTime;
use crate::emit::headers::HEADERS_FILE;
use crate::emit::manifest::{FileEntry, Manifest, REPORT_FILE, SCHEMA_VERSION};
use crate::error::{Error, Result};
use crate::link::{Linked, Linker, Tree};
use crate::progress::{Progress, Stage};
use crate::routes::{REDIRECTS_FILE, Routes};
use crate::scan::{Walk, scan};
use crate::spill::Spill;

mod read;
mod session;
mod write;

pub use session::{Memo, Session};
pub use write::{compress_pending, integrity};

/// What a build did.
#[derive(Debug)]
pub struct BuildOutcome {
    pub manifest: Manifest,
    pub diagnostics: Vec<Diagnostic>,
    /// Time spent on each file (transform and emit), by source path.
    pub timings: Vec<(String, Duration)>,
    pub files_written: usize,
    pub files_removed: usize,
    /// Transform and compression results found in / missing from the cache.
    pub cache_hits: usize,
    pub cache_misses: usize,
    pub duration: Duration,
    /// The manifest of the build this one replaced, if the output held one.
    pub previous: Option<Manifest>,
    /// Source paths whose gzip/brotli variants, or a page's integrity, were
    /// deferred ([`Session::defer_compression`]); empty otherwise.
    pub pending: Vec<String>,
    /// Time the workers spent in each step, summed over threads.
    pub work: Work,
}

/// Time spent in each step of a build, summed over the threads that ran it:
/// where a build's CPU goes. Cache hits cost (nearly) nothing.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Work {
    /// Reading, parsing, minifying and optimising each file (with its
    /// references resolved).
    pub transform: Duration,
    pub gzip: Duration,
    pub brotli: Duration,
    pub zstd: Duration,
}

impl BuildOutcome {
    /// Whether the build should fail: an error, or any diagnostic under `strict`.
    pub fn failed(&self, strict: bool) -> bool {
        self.diagnostics
            .iter()
            .any(|d| strict || d.severity == crate::diag::Severity::Error)
    }
}

/// Run a build.
pub fn build(config: &Config, progress: &dyn Progress) -> Result<BuildOutcome> {
    run_in_pool(config, None, progress)
}

/// Run one build of a watch `session`: what the session remembers is reused
/// where it still holds, and it learns what this build did.
pub fn rebuild(
    config: &Config,
    session: &Session,
    progress: &dyn Progress,
) -> Result<BuildOutcome> {
    run_in_pool(config, Some(session), progress)
}

fn run_in_pool(
    config: &Config,
    session: Option<&Session>,
    progress: &dyn Progress,
) -> Result<BuildOutcome> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(config.jobs.unwrap_or(0))
        .stack_size(WORKER_STACK)
        .build()
        .map_err(|e| Error::io(&config.source, std::io::Error::other(e)))?
        .install(|| run(config, session, progress))
}

/// Stack of each worker thread. Parsers recurse on nesting; 10 000 levels of
/// brackets must not overflow. Only the pages a thread touches are committed.
const WORKER_STACK: usize = 512 << 20;

fn run(
    config: &Config,
    session: Option<&Session>,
    progress: &dyn Progress,
) -> Result<BuildOutcome> {
    let started = Instant::now();
    let memo = session.map(|s| &s.memo);
    let out = emit::prepare(
        &config.source,
        &config.output,
        config.host.compresses_itself(),
        config.force,
        manifest(config, BTreeMap::new()),
    )?;
    let out = match memo {
        Some(memo) => out.with_reuse(memo.spares()),
        None => out,
    };

    progress.stage(Stage::Scan, 0);
    let mut scanned = scan(
        &config.source,
        &config.scan,
        &Walk {
            skip_dirs: [out.root.clone(), out.meta.clone()]
                .into_iter()
                .chain(config.cache_dir.clone())
                .collect(),
            keep_names: Some(&config.link.keep_names),
        },
    );
    read::drop_precompressed(&mut scanned.assets, &config.compress);
    let mut diagnostics = scanned.diagnostics;
    let redirects = read::host_file(
        &mut scanned.assets,
        REDIRECTS_FILE,
        config.outputs.redirects,
        &mut diagnostics,
    )
    .map(|(path, text)| {
        let (rules, found) = crate::routes::parse_redirects(&path, &text);
        diagnostics.extend(found);
        (text, rules)
    });
    // With `headers = false` a source `_headers` is a file of the build like any other.
    let source_headers = config
        .outputs
        .headers
        .then(|| read::host_file(&mut scanned.assets, HEADERS_FILE, true, &mut diagnostics))
        .flatten()
        .map(|(_, text)| text);

    let cache = config.cache_dir.as_ref().map(Cache::open);
    let cache = cache.as_ref();
    // A watch keeps every file in memory anyway (its memo): spilling would
    // only slow its rebuilds.
    let spill = if session.is_some() {
        Spill::memory()
    } else {
        Spill::new(&out.root, config.memory_budget)
    };
    let generated = read::generated_paths(&scanned.assets, config);
    let tree = Tree::with_generated(&scanned.assets, generated);
    progress.stage(Stage::Transform, scanned.assets.len());
    let read = read::transform_all(config, scanned.assets, &tree, cache, &spill, memo, progress);
    diagnostics.extend(read.diagnostics);

    progress.stage(Stage::Link, read.files.len());
    let mut assets = Vec::with_capacity(read.files.len());
    let mut processed = Vec::with_capacity(read.files.len());
    let mut times = Vec::with_capacity(read.files.len());
    for file in read.files {
        assets.push(file.asset);
        processed.push(file.processed);
        times.push(file.time);
    }
    let linker = Linker::new(&assets, processed, &config.link, &spill);
    check_collisions(&assets, linker.linked())?;

    progress.stage(Stage::Emit, assets.len());
    let encode = EncodeTime::default();
    let stores = write::Stores {
        cache,
        spill: &spill,
        encode: &encode,
        primed: memo.is_some_and(Memo::primed),
        defer_compression: session.is_some_and(|s| s.defer_compression),
    };
    let written = write::emit_all(config, &out, &assets, linker, &times, stores, progress);
    diagnostics.extend(written.diagnostics);
    let mut keep = written.keep;
    let mut files_written = written.count;
    for opaque in &scanned.opaque {
        match emit::copy_opaque(&out.root, opaque, &config.source.join(opaque)) {
            Ok(w) => {
                files_written += usize::from(w);
                keep.insert(opaque.clone());
            }
            Err(e) => {
                diagnostics.push(Diagnostic::error(config.source.join(opaque), e.to_string()))
            }
        }
    }

    progress.stage(Stage::Manifest, 0);
    let mut manifest = manifest(config, written.files);
    let (redirects_text, source_rules) = redirects.unzip();
    let from_source = source_rules.as_ref().map_or(0, Vec::len);
    manifest.routes = Routes {
        rules: source_rules
            .into_iter()
            .flatten()
            .chain(config.routes.rules.iter().cloned())
            .collect(),
        fallback: config.routes.fallback.clone(),
    };
    diagnostics.extend(check_routes(config, &manifest, from_source));
    files_written += usize::from(write::write_redirects(
        config,
        &out,
        &manifest,
        redirects_text.as_deref(),
        &mut keep,
    )?);
    files_written += usize::from(write::write_cloudfront_function(
        config,
        &out,
        &manifest,
        &mut keep,
        &mut diagnostics,
    )?);
    files_written += usize::from(write::write_headers(
        config,
        &out,
        &manifest,
        source_headers.as_deref(),
        &mut keep,
        &mut diagnostics,
    )?);
    files_written += write::write_generated(config, &out, &manifest, &mut keep, &mut diagnostics)?;
    // The report is written by `report::tell` once budgets and the diff are known.
    let mut files_removed = if out.meta == out.root {
        if config.report {
            keep.insert(PathBuf::from(REPORT_FILE));
        }
        write::remove_beside(config, &out)?
    } else {
        write::remove_stale_meta(config, &out)?
    };
    write::keep_retired(&out, &mut keep);
    files_removed += emit::remove_stale(&out.root, &keep)?;
    progress.stage(Stage::Done, 0);

    diagnostics.sort_by(|a, b| (&a.path, a.line, a.col).cmp(&(&b.path, b.line, b.col)));
    let mut timings = written.timings;
    timings.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let (cache_hits, cache_misses) = cache.map_or((0, 0), Cache::counts);
    let outcome = BuildOutcome {
        manifest,
        diagnostics,
        timings,
        files_written,
        files_removed,
        cache_hits,
        cache_misses,
        duration: started.elapsed(),
        previous: out.previous,
        pending: written.pending,
        work: Work {
            transform: read.time,
            gzip: encode.gzip(),
            brotli: encode.brotli(),
            zstd: encode.zstd(),
        },
    };
    if let Some(memo) = memo {
        memo.primed.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    Ok(outcome)
}

/// The build's manifest, holding `files`.
fn manifest(config: &Config, files: BTreeMap<String, FileEntry>) -> Manifest {
    Manifest {
        schema: SCHEMA_VERSION,
        generator: crate::generator(),
        base: config.base.clone(),
        compression: config.compress.clone(),
        files,
        routes: Routes::default(),
    }
}

/// The fallback must be a page of the build, and a local target should be.
/// The first `from_source` rules came from the source's `_redirects`.
fn check_routes(config: &Config, manifest: &Manifest, from_source: usize) -> Vec<Diagnostic> {
    let served: HashSet<String> = manifest
        .served()
        .into_iter()
        .map(|s| format!("{}{}", manifest.base, s.path))
        .collect();
    let exists = |path: &str| {
        let dir = path.trim_end_matches('/');
        served.contains(path) || served.contains(&format!("{dir}/index.html"))
    };
    let config_file = config
        .config_file
        .clone()
        .unwrap_or_else(|| PathBuf::from(crate::config::CONFIG_FILE));
    let mut out = Vec::new();
    if let Some(page) = &manifest.routes.fallback
        && !exists(&format!("{}{page}", manifest.base))
    {
        out.push(Diagnostic::error(
            &config_file,
            format!("`routes.fallback`: `{page}` is not a file of the build"),
        ));
    }
    let first_plain = manifest.routes.rules.iter().position(|r| !r.force);
    for (i, rule) in manifest.routes.rules.iter().enumerate() {
        let file = if i < from_source {
            config.source.join(REDIRECTS_FILE)
        } else {
            config_file.clone()
        };
        if rule.force && first_plain.is_some_and(|p| p < i) && config.outputs.nginx {
            out.push(Diagnostic::warning(
                &file,
                format!(
                    "route `{} {}`: a forced rule after a rule that is not; kiln-nginx.conf applies forced rules first",
                    rule.from, rule.to
                ),
            ));
        }
        let local = rule.to.starts_with('/') && !rule.to.contains(':');
        let path = rule.to.split(['?', '#']).next().unwrap_or("");
        if local && !exists(path) && !manifest.routes.rules.iter().any(|r| r.from == path) {
            out.push(Diagnostic::warning(
                &file,
                format!(
                    "route `{} {}`: nothing in the build is served at `{path}`",
                    rule.from, rule.to
                ),
            ));
        }
    }
    out
}

/// Two files must never be written to one path: a hashed name that equals
/// another source file's path (or its original-name copy) is refused.
/// Pages, not linked yet (`None`), keep their paths.
fn check_collisions(assets: &[Asset], linked: &[Option<Linked>]) -> Result<()> {
    let mut taken: std::collections::HashMap<&str, &str> =
        std::collections::HashMap::with_capacity(assets.len() * 2);
    for (asset, l) in assets.iter().zip(linked) {
        let keep_original = l.as_ref().is_some_and(|l| l.keep_original);
        let output = l
            .as_ref()
            .map_or(asset.path.as_str(), |l| l.output.as_str());
        let alias = keep_original.then_some(asset.path.as_str());
        for path in std::iter::once(output).chain(alias) {
            if let Some(first) = taken.insert(path, &asset.path) {
                return Err(Error::OutputCollision {
                    path: path.to_owned(),
                    first: first.to_owned(),
                    second: asset.path.clone(),
                });
            }
        }
    }
    Ok(())
}
