//! The build, stage by stage: scan → transform → link → emit → manifests.
//! This is the only module that knows the order of the stages.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use rayon::prelude::*;
use sha2::{Digest, Sha384};

use crate::asset::{Asset, AssetKind};
use crate::cache::Cache;
use crate::compress::{EncodeTime, is_compressible, precompress};
use crate::config::Config;
use crate::diag::Diagnostic;
use crate::emit::{self, OutputDir};
use crate::error::{Error, Result};
use crate::headers::{
    cache_control, content_type, headers_file, nginx_conf, variant_cache_control,
};
use crate::link::{Linked, Linker, Processed, Tree, resolve_refs};
use crate::manifest::{Alias, FileEntry, MANIFEST_FILE, Manifest, SCHEMA_VERSION};
use crate::report::{Progress, Stage};
use crate::scan::{ScanOptions, scan};
use crate::spill::{Blob, Bytes, Spill};
use crate::transform::variants::Variant;
use crate::transform::{TransformOptions, transform};

/// Names of the generated files, at the output root.
pub const REV_MANIFEST_FILE: &str = "rev-manifest.json";
pub const DJANGO_FILE: &str = "staticfiles.json";
pub const PROPSHAFT_FILE: &str = ".manifest.json";
pub const HEADERS_FILE: &str = "_headers";
pub const NGINX_FILE: &str = "kiln-nginx.conf";

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
    /// deferred ([`Config::defer_compression`]); empty otherwise.
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
    rayon::ThreadPoolBuilder::new()
        .num_threads(config.jobs.unwrap_or(0))
        .stack_size(WORKER_STACK)
        .build()
        .map_err(|e| Error::io(&config.source, std::io::Error::other(e)))?
        .install(|| run(config, progress))
}

/// Stack of each worker thread. Parsers recurse on nesting; 10 000 levels of
/// brackets must not overflow. Only the pages a thread touches are committed.
const WORKER_STACK: usize = 512 << 20;

fn run(config: &Config, progress: &dyn Progress) -> Result<BuildOutcome> {
    let started = Instant::now();
    let out = emit::prepare(config)?;

    progress.stage(Stage::Scan, 0);
    let mut scanned = scan(
        &config.source,
        &ScanOptions {
            exclude: &config.exclude,
            skip_dirs: std::iter::once(out.root.clone())
                .chain(config.cache_dir.clone())
                .collect(),
            fingerprints: config.detect_fingerprints.then_some(&config.keep_names),
        },
    );
    drop_precompressed(&mut scanned.assets, &config.compress);
    let mut diagnostics = scanned.diagnostics;

    let cache = config.cache_dir.as_ref().map(Cache::open);
    let cache = cache.as_ref();
    // A watch keeps every file in memory anyway (its memo): spilling would
    // only slow its rebuilds.
    let spill = if config.memo.is_some() {
        Spill::memory()
    } else {
        Spill::new(&out.root, config.memory_budget)
    };
    let tree = Tree::with_generated(&scanned.assets, generated_paths(&scanned.assets, config));
    progress.stage(Stage::Transform, scanned.assets.len());
    // HTML first: how pages load scripts (`type="module"`) decides how the
    // scripts are minified.
    let (pages, others): (Vec<Asset>, Vec<Asset>) = scanned
        .assets
        .into_iter()
        .partition(|a| a.kind == AssetKind::Html);
    let transform_all = |mut assets: Vec<Asset>, modules: &HashSet<String>| -> Vec<Transformed> {
        // Largest first, one file per task: a big photo starts at once
        // instead of forming the tail of the stage.
        assets.sort_by_key(|a| std::cmp::Reverse(a.size));
        assets
            .into_par_iter()
            .with_max_len(1)
            .map(|asset| {
                let t = Instant::now();
                let mut options = config.skip.options_for(&asset, &config.transform);
                options.module = modules.contains(&asset.path);
                let result = process(&asset, &options, config, cache)
                    .map(|f| ready(&asset, f, &tree, config, &spill));
                progress.advance();
                Transformed {
                    asset,
                    result,
                    time: t.elapsed(),
                }
            })
            .collect()
    };
    let mut results = transform_all(pages, &HashSet::new());
    let modules = module_scripts(&results);
    results.extend(transform_all(others, &modules));
    results.sort_by(|a, b| a.asset.path.cmp(&b.asset.path));
    let mut assets = Vec::with_capacity(results.len());
    let mut processed = Vec::with_capacity(results.len());
    let mut timings = Vec::with_capacity(results.len());
    let mut maps = Vec::new();
    let mut variants = Vec::new();
    let mut work = Work::default();
    for Transformed {
        asset,
        result,
        time,
    } in results
    {
        work.transform += time;
        match result {
            Ok(f) => {
                diagnostics.extend(f.diagnostics);
                timings.push((asset.path.clone(), time));
                maps.extend(f.map);
                variants.extend(f.variants);
                assets.push(asset);
                processed.push(f.processed);
            }
            Err(d) => diagnostics.push(d),
        }
    }
    add_source_maps(&mut assets, &mut processed, &mut timings, maps);
    add_variants(&mut assets, &mut processed, &mut timings, variants);
    let bytes_in: Vec<u64> = assets.iter().map(|a| a.size).collect();

    let generated_variants: Vec<usize> = (0..assets.len())
        .filter(|&i| processed[i].generated_variant)
        .collect();
    progress.stage(Stage::Link, assets.len());
    let linker = Linker::new(&assets, processed, config, &spill);
    check_collisions(&assets, linker.linked())?;

    progress.stage(Stage::Emit, assets.len());
    let encode = EncodeTime::default();
    let stores = Stores {
        cache,
        spill: &spill,
        encode: &encode,
    };
    let emitted = emit_all(config, &out, &assets, linker, &bytes_in, stores, progress);
    let mut files = BTreeMap::new();
    let mut keep: HashSet<PathBuf> = HashSet::new();
    let mut files_written = 0;
    let mut pending = Vec::new();
    for (i, result) in emitted.into_iter().enumerate() {
        match result {
            Ok(e) => {
                files_written += e.written;
                if e.deferred {
                    pending.push(assets[i].path.clone());
                }
                keep.extend(e.paths.into_iter().map(PathBuf::from));
                timings[i].1 += e.time;
                files.insert(assets[i].path.clone(), e.entry);
            }
            Err(d) => diagnostics.push(d),
        }
    }
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

    for i in generated_variants {
        let path = &assets[i].path;
        if let (Some(entry), Some((origin, _))) = (files.get_mut(path), path.rsplit_once('.')) {
            entry.variant_of = Some(origin.to_owned());
        }
    }

    progress.stage(Stage::Manifest, 0);
    let manifest = Manifest {
        schema: SCHEMA_VERSION,
        generator: crate::generator(),
        base: config.base.clone(),
        compression: config.compress.clone(),
        files,
    };
    files_written += write_generated(config, &out, &manifest, &mut keep, &mut diagnostics)?;
    if config.report {
        // Written by the caller once budgets and the diff are known.
        keep.insert(PathBuf::from(crate::report::REPORT_FILE));
    }
    // The files a watch's builds displaced: kept, for reuse, in directories
    // that still hold outputs.
    if let Some(retired) = &out.retired {
        let dirs: HashSet<&Path> = keep.iter().filter_map(|p| p.parent()).collect();
        let gone =
            retired.split_off(|dir| dir.strip_prefix(&out.root).is_ok_and(|d| dirs.contains(d)));
        keep.extend(
            retired
                .paths()
                .iter()
                .filter_map(|p| p.strip_prefix(&out.root).ok())
                .map(Path::to_path_buf),
        );
        emit::remove_retired(gone);
    }
    let files_removed = emit::remove_stale(&out.root, &keep)?;
    progress.stage(Stage::Done, 0);

    diagnostics.sort_by(|a, b| (&a.path, a.line, a.col).cmp(&(&b.path, b.line, b.col)));
    timings.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let (cache_hits, cache_misses) = cache.map_or((0, 0), Cache::counts);
    work.gzip = encode.gzip();
    work.brotli = encode.brotli();
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
        pending,
        work,
    };
    if let Some(memo) = &config.memo {
        memo.primed.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    Ok(outcome)
}

/// One file after the transform stage: ready to link, or unreadable.
struct Transformed {
    asset: Asset,
    result: std::result::Result<Ready, Diagnostic>,
    time: Duration,
}

/// Whether an output's name carries a content hash: kiln's, or a bundler's.
fn content_named(asset: &Asset, linked: &Linked) -> bool {
    linked.hashed || asset.fingerprinted
}

/// Renders one generated file from the manifest.
type Render = fn(&Manifest) -> String;

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

/// The files the transforms may generate: a source map beside each script
/// and stylesheet, image variants beside each PNG and JPEG.
fn generated_paths<'a>(
    assets: &'a [Asset],
    config: &'a Config,
) -> impl Iterator<Item = (String, AssetKind)> + 'a {
    assets.iter().flat_map(move |a| {
        let options = config.skip.options_for(a, &config.transform);
        let map = (options.sourcemaps && matches!(a.kind, AssetKind::Js | AssetKind::Css))
            .then(|| (format!("{}.map", a.path), AssetKind::SourceMap));
        let images = matches!(a.kind, AssetKind::Png | AssetKind::Jpeg);
        let variants = options
            .variants
            .filter(|_| images)
            .map(|v| {
                [
                    (v.webp, crate::transform::variants::Format::Webp),
                    (v.avif, crate::transform::variants::Format::Avif),
                ]
            })
            .into_iter()
            .flatten()
            .filter(|(on, _)| *on)
            .map(|(_, f)| (format!("{}.{}", a.path, f.extension()), f.kind()));
        map.into_iter().chain(variants)
    })
}

/// Scripts that pages load as ES modules (`<script type="module" src>`,
/// `<link rel="modulepreload">`), by source path.
fn module_scripts(pages: &[Transformed]) -> HashSet<String> {
    let mut modules = HashSet::new();
    for page in pages {
        let Ok(f) = &page.result else { continue };
        modules.extend(
            f.processed
                .refs
                .iter()
                .filter(|r| r.kind == crate::asset::RefKind::Import)
                .map(|r| r.target.clone()),
        );
    }
    modules
}

/// A file after its transform, as a watch remembers it: its references are
/// resolved again at each build, since the tree around it may change.
#[derive(Debug, Clone)]
struct FileResult {
    /// The transformed bytes, or `None` when they equal the source file's.
    /// Always `Some` when `refs` is not empty. Shared with the watch's memo.
    bytes: Option<std::sync::Arc<Vec<u8>>>,
    /// blake3 of the transformed bytes.
    hash: blake3::Hash,
    refs: Vec<crate::asset::Reference>,
    /// An HTML document's `<base href>`.
    base: Option<String>,
    /// An HTML document's `<img>` elements (positions in `bytes`).
    images: Vec<crate::asset::ImgTag>,
    /// A raster image's size as shown, in CSS pixels.
    dimensions: Option<(u32, u32)>,
    diagnostics: Vec<Diagnostic>,
    /// A source map written for it (`<path>.map`).
    map: Option<Vec<u8>>,
    /// Variants written beside it (`<path>.webp`).
    variants: Vec<Variant>,
}

/// A file ready for the link stage: its references resolved, its bytes and
/// those of the files generated from it held in the spill store.
struct Ready {
    processed: Processed,
    diagnostics: Vec<Diagnostic>,
    /// Its generated source map, as an asset of its own.
    map: Option<(Asset, Processed)>,
    /// Its generated variants, as assets of their own.
    variants: Vec<(Asset, Processed)>,
}

/// Resolve a transformed file's references against the tree and hand its
/// bytes to the spill store. Runs on the worker that transformed the file,
/// so that what the link stage does not need (URLs, links to pages) is
/// dropped at once instead of piling up over the whole tree.
/// A watch resolves a file's references once per tree: while no file is
/// added or removed, the resolution of an unchanged file is remembered.
fn ready(asset: &Asset, f: FileResult, tree: &Tree, config: &Config, spill: &Spill) -> Ready {
    let memo = config.memo.as_deref();
    let remembered = memo.and_then(|m| m.resolved(&asset.path, &tree.fingerprint));
    let (refs, unresolved) = remembered.unwrap_or_else(|| {
        let resolved = resolve_refs(asset, f.refs, f.base.as_deref(), tree, config);
        if let Some(m) = memo {
            m.put_resolved(&asset.path, tree.fingerprint, &resolved);
        }
        resolved
    });
    Ready {
        processed: Processed {
            // Shared when the memo holds them too: the page is read where it
            // lies, not copied.
            bytes: f.bytes.map(|b| match std::sync::Arc::try_unwrap(b) {
                Ok(b) => spill.hold(b),
                Err(shared) => Blob::Shared(shared),
            }),
            hash: f.hash,
            refs,
            generated_map: false,
            images: f.images,
            dimensions: f.dimensions,
            generated_variant: false,
        },
        diagnostics: f.diagnostics.into_iter().chain(unresolved).collect(),
        map: f.map.map(|m| source_map_asset(asset, m, spill)),
        variants: f
            .variants
            .into_iter()
            .map(|v| variant_asset(asset, v, spill))
            .collect(),
    }
}

/// The generated map of `asset` as an asset of its own, so that the link
/// stage names it and rewrites the comment that points at it.
fn source_map_asset(asset: &Asset, map: Vec<u8>, spill: &Spill) -> (Asset, Processed) {
    let path = format!("{}.map", asset.path);
    let mut source = asset.source.clone().into_os_string();
    source.push(".map");
    (
        Asset {
            path,
            source: source.into(),
            kind: AssetKind::SourceMap,
            size: 0,
            fingerprinted: false,
        },
        Processed {
            hash: blake3::hash(&map),
            bytes: Some(spill.hold(map)),
            refs: Vec::new(),
            generated_map: true,
            images: Vec::new(),
            dimensions: None,
            generated_variant: false,
        },
    )
}

/// A generated variant of `asset` as an asset of its own, at
/// `<path>.<format>`: the link stage names it with its own hash.
fn variant_asset(asset: &Asset, variant: Variant, spill: &Spill) -> (Asset, Processed) {
    let ext = variant.format.extension();
    let kind = variant.format.kind();
    let mut source = asset.source.clone().into_os_string();
    source.push(format!(".{ext}"));
    (
        Asset {
            path: format!("{}.{ext}", asset.path),
            source: source.into(),
            kind,
            size: 0,
            fingerprinted: false,
        },
        Processed {
            hash: blake3::hash(&variant.bytes),
            dimensions: crate::transform::intrinsic_size(kind, &variant.bytes),
            bytes: Some(spill.hold(variant.bytes)),
            refs: Vec::new(),
            generated_map: false,
            images: Vec::new(),
            generated_variant: true,
        },
    )
}

/// Add the generated variants; a source file of the same path wins over a
/// variant.
fn add_variants(
    assets: &mut Vec<Asset>,
    processed: &mut Vec<Processed>,
    timings: &mut Vec<(String, Duration)>,
    variants: Vec<(Asset, Processed)>,
) {
    let taken: HashSet<&str> = assets.iter().map(|a| a.path.as_str()).collect();
    let added: Vec<(Asset, Processed)> = variants
        .into_iter()
        .filter(|(a, _)| !taken.contains(a.path.as_str()))
        .collect();
    for (asset, p) in added {
        timings.push((asset.path.clone(), Duration::ZERO));
        assets.push(asset);
        processed.push(p);
    }
}

/// Add the generated maps; each replaces the source file of its name (the
/// input map it was chained to).
fn add_source_maps(
    assets: &mut Vec<Asset>,
    processed: &mut Vec<Processed>,
    timings: &mut Vec<(String, Duration)>,
    maps: Vec<(Asset, Processed)>,
) {
    if maps.is_empty() {
        return;
    }
    let replaced: HashSet<&str> = maps.iter().map(|(a, _)| a.path.as_str()).collect();
    let keep: Vec<bool> = assets
        .iter()
        .map(|a| !replaced.contains(a.path.as_str()))
        .collect();
    let sizes: std::collections::HashMap<String, u64> = assets
        .iter()
        .filter(|a| replaced.contains(a.path.as_str()))
        .map(|a| (a.path.clone(), a.size))
        .collect();
    // The same files leave the three parallel lists.
    let retain = |i: &mut usize| {
        *i += 1;
        keep[*i - 1]
    };
    let (mut a, mut p, mut t) = (0, 0, 0);
    assets.retain(|_| retain(&mut a));
    processed.retain(|_| retain(&mut p));
    timings.retain(|_| retain(&mut t));
    for (mut asset, p) in maps {
        asset.size = sizes.get(&asset.path).copied().unwrap_or(0);
        timings.push((asset.path.clone(), Duration::ZERO));
        assets.push(asset);
        processed.push(p);
    }
}

/// The map a script or stylesheet points at (`sourceMappingURL`), when it is
/// a file of the source tree or a `data:` URL: the new map chains to it.
fn input_map(asset: &Asset, bytes: &[u8], config: &Config) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?;
    let url = &text[crate::transform::source_mapping_url(text)?];
    if let Some(data) = url.strip_prefix("data:") {
        let (meta, payload) = data.split_once(',')?;
        let bytes = if meta.ends_with(";base64") {
            base64::engine::general_purpose::STANDARD
                .decode(payload)
                .ok()?
        } else {
            percent_encoding::percent_decode_str(payload).collect()
        };
        return String::from_utf8(bytes).ok();
    }
    match crate::resolve::resolve(url, &asset.path, None, &config.base) {
        crate::resolve::Resolution::Local {
            path,
            directory: false,
        } => std::fs::read_to_string(config.source.join(path)).ok(),
        _ => None,
    }
}

/// What `kiln watch` remembers of the files of its last build: each file's
/// size and modification time when it was read, the options it was
/// transformed with, and the result. A rebuild reuses an entry only when all
/// of these still hold and the watcher did not report the file changed.
#[derive(Debug, Default)]
pub struct Memo {
    files: std::sync::Mutex<HashMap<String, Remembered>>,
    /// A build of this process completed: its outputs may be trusted by size.
    /// The first build of a session checks what a killed one left.
    primed: std::sync::atomic::AtomicBool,
    /// Files the builds displaced from the output, kept to be overwritten by
    /// the next ones ([`emit::Retired`]).
    spares: std::sync::Arc<emit::Retired>,
}

/// What identifies a file's contents without reading them: size,
/// modification time, and on Unix the inode and change time (a file replaced
/// by rename, or edited with its mtime restored, changes those).
type Stamp = (u64, std::time::SystemTime, u64, i64, i64);

fn stamp(path: &std::path::Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let extra = {
        use std::os::unix::fs::MetadataExt;
        (m.ino(), m.ctime(), m.ctime_nsec())
    };
    #[cfg(not(unix))]
    let extra = (0, 0, 0);
    Some((m.len(), m.modified().ok()?, extra.0, extra.1, extra.2))
}

#[derive(Debug)]
struct Remembered {
    stamp: Stamp,
    options: TransformOptions,
    result: std::sync::Arc<FileResult>,
    /// The result's references resolved against the tree of this
    /// fingerprint, with the warnings that gave.
    resolved: Option<(blake3::Hash, Resolution)>,
}

/// A file's references resolved, and the warnings for those that did not.
type Resolution = (Vec<crate::link::Resolved>, Vec<Diagnostic>);

impl Memo {
    /// Forget these source paths (the watcher saw them change). The root
    /// (`""` or `"."`, a lost event) forgets everything.
    pub fn forget<'a>(&self, paths: impl IntoIterator<Item = &'a String>) {
        let mut files = self.files.lock().expect("no panics while locked");
        for p in paths {
            if p.is_empty() || p == "." {
                files.clear();
                continue;
            }
            files.remove(p);
            // A changed directory: everything under it.
            let prefix = format!("{}/", p.trim_end_matches('/'));
            files.retain(|k, _| !k.starts_with(&prefix));
        }
    }

    /// Forget everything (the configuration changed), and remove the
    /// displaced files kept (the output may change).
    pub fn clear(&self) {
        self.files.lock().expect("no panics while locked").clear();
        self.remove_spares();
    }

    /// Remove the files the builds displaced and kept for reuse (the watch ends).
    pub fn remove_spares(&self) {
        emit::remove_retired(self.spares.take());
    }

    pub(crate) fn spares(&self) -> std::sync::Arc<emit::Retired> {
        std::sync::Arc::clone(&self.spares)
    }

    /// How many files are remembered.
    pub fn len(&self) -> usize {
        self.files.lock().expect("no panics while locked").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a build of this process completed.
    pub fn primed(&self) -> bool {
        self.primed.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn get(&self, path: &str, stamp: &Stamp, options: &TransformOptions) -> Option<FileResult> {
        let shared = {
            let files = self.files.lock().expect("no panics while locked");
            let r = files.get(path)?;
            (r.stamp == *stamp && r.options == *options).then(|| std::sync::Arc::clone(&r.result))
        }?;
        // Copied outside the lock: the workers copy pages side by side.
        Some(FileResult::clone(&shared))
    }

    fn put(&self, path: &str, stamp: Stamp, options: TransformOptions, result: &FileResult) {
        self.files.lock().expect("no panics while locked").insert(
            path.to_owned(),
            Remembered {
                stamp,
                options,
                result: std::sync::Arc::new(result.clone()),
                resolved: None,
            },
        );
    }

    /// The remembered resolution of a remembered file, when it was made
    /// against the same tree.
    fn resolved(&self, path: &str, tree: &blake3::Hash) -> Option<Resolution> {
        let files = self.files.lock().expect("no panics while locked");
        match &files.get(path)?.resolved {
            Some((fingerprint, r)) if fingerprint == tree => Some(r.clone()),
            _ => None,
        }
    }

    /// Remember the resolution of a file this build took from (or put into)
    /// the memo. A file the memo does not hold is not remembered.
    fn put_resolved(&self, path: &str, tree: blake3::Hash, resolution: &Resolution) {
        let mut files = self.files.lock().expect("no panics while locked");
        if let Some(r) = files.get_mut(path) {
            r.resolved = Some((tree, resolution.clone()));
        }
    }
}

/// A bundler's own `.gz`/`.br` beside a file (vite-plugin-compression and the
/// like) is left out: kiln makes the variants of the bytes it writes, and a
/// stale copy must not be served, or take the place of one.
/// Only for the encoders kiln runs: with `gzip = false`, a bundler's `.gz`
/// files are the only ones, and stay.
/// And only beside a file kiln would compress (a text type of at least
/// `min_size`): `release.tar.gz` beside `release.tar` is a download of its own.
fn drop_precompressed(assets: &mut Vec<Asset>, compress: &crate::config::CompressOptions) {
    let paths: HashSet<String> = assets
        .iter()
        .filter(|a| a.size >= compress.min_size && is_compressible(&content_type(&a.path, a.kind)))
        .map(|a| a.path.clone())
        .collect();
    assets.retain(|a| {
        let base = compress
            .gzip
            .then(|| a.path.strip_suffix(".gz"))
            .flatten()
            .or_else(|| {
                compress
                    .brotli
                    .then(|| a.path.strip_suffix(".br"))
                    .flatten()
            });
        !base.is_some_and(|base| paths.contains(base))
    });
}

/// Read and transform one file, or take it from the watch's memory.
fn process(
    asset: &Asset,
    options: &TransformOptions,
    config: &Config,
    cache: Option<&Cache>,
) -> std::result::Result<FileResult, Diagnostic> {
    // What depends on other files (a bundled stylesheet's imports, an input
    // source map) is never remembered.
    let depends_on_others = (config.css_bundle && asset.kind == AssetKind::Css)
        || (options.sourcemaps && matches!(asset.kind, AssetKind::Css | AssetKind::Js));
    let memo = config.memo.as_deref().filter(|_| !depends_on_others);
    let Some(memo) = memo else {
        return process_file(asset, options, config, cache);
    };
    let Some(stamp) = stamp(&asset.source) else {
        return process_file(asset, options, config, cache);
    };
    if let Some(result) = memo.get(&asset.path, &stamp, options) {
        return Ok(result);
    }
    let result = process_file(asset, options, config, cache)?;
    memo.put(&asset.path, stamp, *options, &result);
    Ok(result)
}

/// Read and transform one file. Diagnostics get the file's path.
fn process_file(
    asset: &Asset,
    options: &TransformOptions,
    config: &Config,
    cache: Option<&Cache>,
) -> std::result::Result<FileResult, Diagnostic> {
    let bytes = std::fs::read(&asset.source)
        .map_err(|e| Diagnostic::error(&asset.source, format!("cannot read file: {e}")))?;
    let input_hash = blake3::hash(&bytes);
    let recompressed = (asset.kind == AssetKind::Png && options.png.is_some())
        || (asset.kind == AssetKind::Jpeg && options.jpeg)
        || (matches!(asset.kind, AssetKind::Png | AssetKind::Jpeg) && options.variants.is_some());
    if !asset.kind.is_text() && !recompressed {
        return Ok(FileResult {
            bytes: None,
            hash: input_hash,
            refs: Vec::new(),
            base: None,
            images: Vec::new(),
            dimensions: crate::transform::intrinsic_size(asset.kind, &bytes),
            diagnostics: Vec::new(),
            map: None,
            variants: Vec::new(),
        });
    }
    let mut bundle_diagnostics = Vec::new();
    let mut source_hash = input_hash;
    let bytes = if config.css_bundle && asset.kind == AssetKind::Css && options.css.is_some() {
        match crate::transform::css::bundle(&config.source, &asset.path, &config.base) {
            Ok(text) => {
                source_hash = blake3::hash(text.as_bytes());
                text.into_bytes()
            }
            Err(d) => {
                bundle_diagnostics.push(d);
                bytes
            }
        }
    } else {
        bytes
    };
    let wants_map = options.sourcemaps && matches!(asset.kind, AssetKind::Js | AssetKind::Css);
    let input_map = wants_map
        .then(|| input_map(asset, &bytes, config))
        .flatten();
    let key = cache.map(|_| {
        Cache::transform_key(
            asset.kind,
            &asset.path,
            &source_hash,
            input_map.as_deref(),
            options,
        )
    });
    let cached = cache
        .zip(key.as_ref())
        .and_then(|(c, k)| c.get_transform(k));
    let t = cached.unwrap_or_else(|| {
        let t = guarded_transform(asset, bytes, input_map.as_deref(), options);
        if let Some((c, k)) = cache.zip(key.as_ref()) {
            c.put_transform(k, &t);
        }
        t
    });
    let hash = blake3::hash(&t.bytes);
    let keep = !t.refs.is_empty() || hash != input_hash;
    let diagnostics = bundle_diagnostics
        .into_iter()
        .chain(t.diagnostics)
        .map(|mut d| {
            d.path = asset.source.clone();
            d
        })
        .collect();
    Ok(FileResult {
        dimensions: crate::transform::intrinsic_size(asset.kind, &t.bytes),
        bytes: keep.then(|| std::sync::Arc::new(t.bytes)),
        hash,
        refs: t.refs,
        base: t.base,
        images: t.images,
        diagnostics,
        map: t.map,
        variants: t.variants,
    })
}

/// Transform, and never let a panic in a parser or minifier take the build
/// down: the file is then copied as written (with its references if plain
/// extraction works), with a diagnostic.
fn guarded_transform(
    asset: &Asset,
    bytes: Vec<u8>,
    input_map: Option<&str>,
    options: &TransformOptions,
) -> crate::transform::Transformed {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    let attempt = |options: &TransformOptions, bytes: Vec<u8>| {
        catch_unwind(AssertUnwindSafe(|| {
            transform(asset.kind, &asset.path, bytes, input_map, options)
        }))
        .ok()
    };
    if let Some(t) = attempt(options, bytes.clone()) {
        return t;
    }
    let mut t = attempt(&TransformOptions::default(), bytes.clone()).unwrap_or_else(|| {
        crate::transform::Transformed {
            bytes,
            ..Default::default()
        }
    });
    t.diagnostics.push(Diagnostic::warning(
        "",
        "internal error while minifying this file: copied as written (please report it)",
    ));
    t
}

/// One file written: its manifest entry and the paths it occupies.
struct Emitted {
    entry: FileEntry,
    paths: Vec<String>,
    written: usize,
    /// Variants left for [`compress_pending`].
    deferred: bool,
    time: Duration,
}

/// Where a build keeps results: the cache across builds, the spill store
/// within one.
#[derive(Clone, Copy)]
struct Stores<'a> {
    cache: Option<&'a Cache>,
    spill: &'a Spill,
    encode: &'a EncodeTime,
}

/// Write every file in three groups ([`emit_group`]): first the files with
/// hashed names and every other file that names none (a text file, a font,
/// an image); then the other assets; then the pages. A build killed part-way
/// never leaves a page, or a file without a hashed name, pointing at a
/// missing hashed file (hashed files within the first group are written in
/// parallel, in no order). The pages are linked only once the other files
/// are written: a watch swaps stylesheets in open pages before then. The
/// first group is the largest: its biggest files (a 3 MB search index at
/// brotli 11) do not leave a core idle at its end.
fn emit_all(
    config: &Config,
    out: &OutputDir,
    assets: &[Asset],
    mut linker: Linker<'_>,
    bytes_in: &[u64],
    stores: Stores<'_>,
    progress: &dyn Progress,
) -> Vec<std::result::Result<Emitted, Diagnostic>> {
    let linked = linker.take_linked();
    let group = |i: usize| emit_group(linked[i].as_ref(), linker.names_hashed(i));
    let mut order: Vec<usize> = (0..assets.len()).collect();
    // Within a group, largest first: big files do not form the tail.
    order.sort_by_key(|&i| (group(i), std::cmp::Reverse(bytes_in[i])));
    let groups: Vec<u8> = order.iter().map(|&i| group(i)).collect();
    let mut results: Vec<Option<std::result::Result<Emitted, Diagnostic>>> =
        (0..assets.len()).map(|_| None).collect();
    let linked: Vec<std::sync::Mutex<Option<Linked>>> =
        linked.into_iter().map(std::sync::Mutex::new).collect();
    let mut linker = Some(linker);
    for g in 0..=2u8 {
        // Pages, the last group: each written as soon as it is linked.
        if g == 2
            && let Some(linker) = linker.take()
        {
            for (i, r) in linker.link_pages_with(|i, page| {
                let r = emit_one(config, out, &assets[i], page, bytes_in[i], stores);
                progress.advance();
                r
            }) {
                results[i] = Some(r);
            }
            continue;
        }
        let members: Vec<usize> = order
            .iter()
            .zip(&groups)
            .filter(|(_, gg)| **gg == g)
            .map(|(i, _)| *i)
            .collect();
        let done: Vec<(usize, std::result::Result<Emitted, Diagnostic>)> = members
            .par_iter()
            .with_max_len(1)
            .map(|&i| {
                let l = linked[i]
                    .lock()
                    .expect("no panics while locked")
                    .take()
                    .expect("emitted once");
                let r = emit_one(config, out, &assets[i], l, bytes_in[i], stores);
                progress.advance();
                (i, r)
            })
            .collect();
        for (i, r) in done {
            results[i] = Some(r);
        }
        if g == 1 {
            let written: Vec<(&str, &FileEntry)> = results
                .iter()
                .enumerate()
                .filter_map(|(i, r)| match r {
                    Some(Ok(e)) => Some((assets[i].path.as_str(), &e.entry)),
                    _ => None,
                })
                .collect();
            progress.assets_written(&written);
        }
    }
    results
        .into_iter()
        .map(|r| r.expect("every file emitted"))
        .collect()
}

/// The emit group of a file: 0 for a hashed file or one that names no hashed
/// file, 1 for another file linked with the assets, 2 for a page (linked last).
fn emit_group(linked: Option<&Linked>, names_hashed: bool) -> u8 {
    match linked {
        Some(l) if l.hashed || !names_hashed => 0,
        Some(_) => 1,
        None => 2,
    }
}

fn emit_one(
    config: &Config,
    out: &OutputDir,
    asset: &Asset,
    linked: Linked,
    bytes_in: u64,
    Stores {
        cache,
        spill,
        encode,
    }: Stores<'_>,
) -> std::result::Result<Emitted, Diagnostic> {
    let started = Instant::now();
    let fail = |e: Error| Diagnostic::error(&asset.source, format!("cannot write output: {e}"));
    let lost = |e: &dyn std::fmt::Display| {
        Diagnostic::error(
            &asset.source,
            format!("cannot read back the transformed file from the build's temporary file: {e}"),
        )
    };
    if config.memo.as_deref().is_some_and(Memo::primed)
        && linked.bytes.is_ok()
        && let Some(emitted) = unchanged_output(config, out, asset, &linked, bytes_in, started)
    {
        if let Ok(Some(b)) = linked.bytes {
            spill.discard(b);
        }
        return Ok(emitted);
    }
    let named = content_named(asset, &linked);
    let bytes = match linked.bytes {
        Ok(Some(b)) => spill.take(b).map_err(|e| lost(&e))?,
        Ok(None) => std::fs::read(&asset.source)
            .map(Bytes::Owned)
            .map_err(|e| Diagnostic::error(&asset.source, format!("cannot read file: {e}")))?,
        Err(e) => return Err(lost(&e)),
    };
    let content_type = content_type(&asset.path, asset.kind);
    let blake3_hex = linked.hash.to_hex().to_string();
    let mut paths = vec![linked.output.clone()];
    let policy = if linked.generated_variant {
        variant_cache_control
    } else {
        cache_control
    };
    let alias = linked.keep_original.then(|| Alias {
        path: asset.path.clone(),
        cache_control: policy(&asset.path, asset.kind, false, config),
    });
    if let Some(a) = &alias {
        paths.push(a.path.clone());
    }

    // The same file in the build this one replaces: its variants (when
    // still on disk) and its integrity are reused.
    let same = out
        .previous
        .as_ref()
        .and_then(|m| m.files.get(&asset.path))
        .filter(|e| e.blake3 == blake3_hex);
    let previous = same.filter(|e| {
        e.output == linked.output
            && out
                .previous
                .as_ref()
                .is_some_and(|m| m.compression == config.compress)
    });
    let worth = is_compressible(&content_type)
        && bytes.len() as u64 >= config.compress.min_size
        && (config.compress.gzip || config.compress.brotli);
    let mut deferred = false;
    let (gzip, brotli, variants) = if !is_compressible(&content_type) {
        (None, None, None)
    } else if let Some(prev) = previous
        .filter(|p| !(worth && p.gzip.is_none() && p.brotli.is_none()))
        .filter(|p| variants_exist(&out.root, &paths, p))
    {
        // An entry without variants for a file worth compressing may be one
        // whose compression a watch deferred and never finished: it is not
        // trusted (the cache knows when compression did not pay).
        (prev.gzip, prev.brotli, None)
    } else if config.defer_compression && worth {
        let key = Cache::variants_key(&linked.hash, &config.compress);
        match cache.and_then(|c| c.get_variants(&key)) {
            Some(v) => (
                v.gzip.as_ref().map(|b| b.len() as u64),
                v.brotli.as_ref().map(|b| b.len() as u64),
                Some(v),
            ),
            None => {
                deferred = true;
                (None, None, None)
            }
        }
    } else {
        let v = compress_cached(&bytes, &linked.hash, &config.compress, cache, encode);
        (
            v.gzip.as_ref().map(|b| b.len() as u64),
            v.brotli.as_ref().map(|b| b.len() as u64),
            Some(v),
        )
    };

    // A page's integrity (SHA-384 over every byte) serves no browser: a
    // watch computes it after the live-reload event, with the variants. An
    // empty value is one a watch deferred and never finished.
    let integrity = match same.filter(|e| !e.integrity.is_empty()) {
        Some(e) => e.integrity.clone(),
        None if config.defer_compression && asset.kind == AssetKind::Html => {
            deferred = true;
            String::new()
        }
        None => integrity(&bytes),
    };

    let mut written = 0;
    let mut all_paths = Vec::new();
    for path in &paths {
        // A same-named file's old variants must never be served for its new
        // bytes: those this build does not write go first (the rest are
        // overwritten right after).
        // Only where kiln may have written variants before (`worth`): beside
        // anything else, `X.gz` is a file of the site (`release.tar.gz`).
        for (suffix, kept) in [
            (".gz", gzip.is_some() || !config.compress.gzip),
            (".br", brotli.is_some() || !config.compress.brotli),
        ] {
            if worth && !kept {
                out.retire(format!("{path}{suffix}")).map_err(fail)?;
            }
        }
        // The previous build wrote other bytes there: no need to read them back.
        let differs = *path == linked.output
            && out
                .previous
                .as_ref()
                .and_then(|m| m.files.get(&asset.path))
                .is_some_and(|e| e.output == linked.output && e.blake3 != blake3_hex);
        let write = if differs {
            OutputDir::replace
        } else {
            OutputDir::write
        };
        written += usize::from(write(out, path, &bytes).map_err(fail)?);
        if let Some(v) = &variants {
            if let Some(gz) = &v.gzip {
                written += usize::from(out.write(format!("{path}.gz"), gz).map_err(fail)?);
            }
            if let Some(br) = &v.brotli {
                written += usize::from(out.write(format!("{path}.br"), br).map_err(fail)?);
            }
        }
        if gzip.is_some() {
            all_paths.push(format!("{path}.gz"));
        }
        if brotli.is_some() {
            all_paths.push(format!("{path}.br"));
        }
    }
    all_paths.extend(paths);
    let entry = FileEntry {
        output: linked.output,
        kind: asset.kind,
        content_type,
        cache_control: policy(&asset.path, asset.kind, named, config),
        hashed: named,
        bytes_in,
        bytes_out: bytes.len() as u64,
        gzip,
        brotli,
        integrity,
        blake3: blake3_hex,
        aliases: alias.into_iter().collect(),
        variant_of: None,
        private: config.private.is_match(&asset.path),
    };
    Ok(Emitted {
        entry,
        paths: all_paths,
        written,
        deferred,
        time: started.elapsed(),
    })
}

/// Under `kiln watch`: an output whose bytes and name did not change since
/// the previous build, still on disk at its size with its variants, is
/// trusted without reading or comparing it.
fn unchanged_output(
    config: &Config,
    out: &OutputDir,
    asset: &Asset,
    linked: &Linked,
    bytes_in: u64,
    started: Instant,
) -> Option<Emitted> {
    let previous = out.previous.as_ref()?;
    if previous.compression != config.compress {
        return None;
    }
    let prev = previous.files.get(&asset.path)?;
    let hex = linked.hash.to_hex();
    if prev.blake3 != hex.as_str() || prev.output != linked.output {
        return None;
    }
    let content_type = content_type(&asset.path, asset.kind);
    let worth = is_compressible(&content_type)
        && prev.bytes_out >= config.compress.min_size
        && (config.compress.gzip || config.compress.brotli);
    if (worth && prev.gzip.is_none() && prev.brotli.is_none()) || prev.integrity.is_empty() {
        return None;
    }
    let policy = if linked.generated_variant {
        variant_cache_control
    } else {
        cache_control
    };
    let alias = linked.keep_original.then(|| Alias {
        path: asset.path.clone(),
        cache_control: policy(&asset.path, asset.kind, false, config),
    });
    let mut paths = vec![linked.output.clone()];
    paths.extend(alias.iter().map(|a| a.path.clone()));
    let sized =
        |p: &str| std::fs::metadata(out.root.join(p)).is_ok_and(|m| m.len() == prev.bytes_out);
    if !paths.iter().all(|p| sized(p)) || !variants_exist(&out.root, &paths, prev) {
        return None;
    }
    let mut all_paths = Vec::new();
    for p in &paths {
        if prev.gzip.is_some() {
            all_paths.push(format!("{p}.gz"));
        }
        if prev.brotli.is_some() {
            all_paths.push(format!("{p}.br"));
        }
    }
    all_paths.extend(paths);
    Some(Emitted {
        entry: FileEntry {
            output: linked.output.clone(),
            kind: asset.kind,
            content_type,
            cache_control: policy(
                &asset.path,
                asset.kind,
                content_named(asset, linked),
                config,
            ),
            hashed: content_named(asset, linked),
            bytes_in,
            aliases: alias.into_iter().collect(),
            variant_of: None,
            private: config.private.is_match(&asset.path),
            ..prev.clone()
        },
        paths: all_paths,
        written: 0,
        deferred: false,
        time: started.elapsed(),
    })
}

/// Make the gzip/brotli variants, and the pages' integrity, a build deferred
/// ([`BuildOutcome::pending`]), largest files first, and rewrite the
/// manifests with them. `stop` is asked between batches: when it says yes,
/// the work done so far is recorded and the rest stays in `pending` (the next
/// build makes it). Returns the number of files finished.
pub fn compress_pending(
    config: &Config,
    outcome: &mut BuildOutcome,
    mut stop: impl FnMut() -> bool,
) -> Result<usize> {
    if outcome.pending.is_empty() {
        return Ok(0);
    }
    let out = OutputDir {
        root: emit::absolute(&config.output)?,
        previous: None,
        inside_source: false,
        retired: config.memo.as_ref().map(|m| m.spares()),
    };
    let root = &out.root;
    let cache = config.cache_dir.as_ref().map(Cache::open);
    let cache = cache.as_ref();
    let manifest = &mut outcome.manifest;
    let mut pending = std::mem::take(&mut outcome.pending);
    pending.sort_by_key(|p| std::cmp::Reverse(manifest.files.get(p).map_or(0, |e| e.bytes_out)));
    let batch = (rayon::current_num_threads() * 2).max(2);
    let encode = EncodeTime::default();
    let mut finished = 0;
    let mut rest = pending.as_slice();
    while !rest.is_empty() {
        let (now, later) = rest.split_at(batch.min(rest.len()));
        let done: Vec<(String, Option<u64>, Option<u64>, String)> = now
            .par_iter()
            .filter_map(|source| {
                let entry = manifest.files.get(source)?;
                let bytes = std::fs::read(root.join(&entry.output)).ok()?;
                let hash = blake3::hash(&bytes);
                // Changed on disk since the build: leave it to the next build.
                if hash.to_hex().as_str() != entry.blake3 {
                    return None;
                }
                let integrity = if entry.integrity.is_empty() {
                    integrity(&bytes)
                } else {
                    entry.integrity.clone()
                };
                let v = compress_cached(&bytes, &hash, &config.compress, cache, &encode);
                let mut paths = vec![entry.output.as_str()];
                paths.extend(entry.aliases.iter().map(|a| a.path.as_str()));
                // A variant that cannot be written is left out of the entry
                // (the next build tries again); the integrity is kept.
                let (mut gzip, mut brotli) = (v.gzip.is_some(), v.brotli.is_some());
                for path in paths {
                    if let Some(gz) = &v.gzip {
                        gzip &= out.write(format!("{path}.gz"), gz).is_ok();
                    }
                    if let Some(br) = &v.brotli {
                        brotli &= out.write(format!("{path}.br"), br).is_ok();
                    }
                }
                Some((
                    source.clone(),
                    v.gzip.as_ref().filter(|_| gzip).map(|b| b.len() as u64),
                    v.brotli.as_ref().filter(|_| brotli).map(|b| b.len() as u64),
                    integrity,
                ))
            })
            .collect();
        for (source, gzip, brotli, integrity) in done {
            if let Some(entry) = manifest.files.get_mut(&source) {
                entry.gzip = gzip;
                entry.brotli = brotli;
                entry.integrity = integrity;
                finished += 1;
            }
        }
        rest = later;
        if !rest.is_empty() && stop() {
            break;
        }
    }
    outcome.pending = rest.to_vec();
    outcome.work.gzip += encode.gzip();
    outcome.work.brotli += encode.brotli();
    let mut keep = HashSet::new();
    write_generated(config, &out, manifest, &mut keep, &mut Vec::new())?;
    Ok(finished)
}

/// Precompress, or take the variants from the cache.
fn compress_cached(
    bytes: &[u8],
    hash: &blake3::Hash,
    options: &crate::config::CompressOptions,
    cache: Option<&Cache>,
    time: &EncodeTime,
) -> crate::compress::Variants {
    let Some(cache) = cache.filter(|_| bytes.len() as u64 >= options.min_size) else {
        return precompress(bytes, options, time);
    };
    let key = Cache::variants_key(hash, options);
    cache.get_variants(&key).unwrap_or_else(|| {
        let v = precompress(bytes, options, time);
        cache.put_variants(&key, &v);
        v
    })
}

fn variants_exist(root: &std::path::Path, paths: &[String], prev: &FileEntry) -> bool {
    paths.iter().all(|p| {
        let size = |suffix: &str| {
            std::fs::metadata(root.join(format!("{p}{suffix}")))
                .map(|m| m.len())
                .ok()
        };
        prev.gzip.is_none_or(|n| size(".gz") == Some(n))
            && prev.brotli.is_none_or(|n| size(".br") == Some(n))
    })
}

/// Subresource integrity of the final bytes.
pub fn integrity(bytes: &[u8]) -> String {
    let digest = Sha384::digest(bytes);
    format!(
        "sha384-{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// Write the manifests and header files; returns how many files changed.
fn write_generated(
    config: &Config,
    out: &OutputDir,
    manifest: &Manifest,
    keep: &mut HashSet<PathBuf>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Result<usize> {
    let formats = config.outputs;
    let generated: [(&str, bool, Render); 6] = [
        (
            REV_MANIFEST_FILE,
            formats.rev_manifest,
            Manifest::rev_manifest,
        ),
        (DJANGO_FILE, formats.django, Manifest::django),
        (PROPSHAFT_FILE, formats.propshaft, Manifest::propshaft),
        (HEADERS_FILE, formats.headers, headers_file),
        (NGINX_FILE, formats.nginx, nginx_conf),
        // Last: the manifest says the build is complete.
        (MANIFEST_FILE, true, Manifest::to_json),
    ];
    let enabled: Vec<(&str, Render)> = generated
        .into_iter()
        .filter(|(_, on, _)| *on)
        .map(|(name, _, render)| (name, render))
        .collect();
    for (name, _) in &enabled {
        if !keep.insert(PathBuf::from(name)) {
            diagnostics.push(Diagnostic::warning(
                config.source.join(name),
                format!(
                    "the source has a file named `{name}`; kiln's generated {name} replaces it"
                ),
            ));
        }
    }
    let write = |(name, render): &(&str, Render)| {
        emit::write_atomic(&out.root, name, render(manifest).as_bytes()).map(usize::from)
    };
    // The adapters side by side (each renders every entry), then the manifest.
    let (manifest_file, adapters) = enabled
        .split_last()
        .expect("the manifest is always written");
    let adapters: Vec<Result<usize>> = adapters.par_iter().map(write).collect();
    let mut written = 0;
    for w in adapters {
        written += w?;
    }
    Ok(written + write(manifest_file)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_names_a_hashed_file_waits_for_the_first_group() {
        let linked = |hashed| Linked {
            output: "x".into(),
            hashed,
            keep_original: hashed,
            bytes: Ok(None),
            hash: blake3::hash(b"x"),
            generated_variant: false,
        };
        // Hashed: first, whatever it names (hashed files may name each other).
        assert_eq!(emit_group(Some(&linked(true)), true), 0);
        assert_eq!(emit_group(Some(&linked(true)), false), 0);
        // Not hashed, names nothing hashed: nothing it points at can be missing.
        assert_eq!(emit_group(Some(&linked(false)), false), 0);
        // Not hashed, names a hashed file: after every hashed file.
        assert_eq!(emit_group(Some(&linked(false)), true), 1);
        // Pages are linked, and written, last.
        assert_eq!(emit_group(None, false), 2);
        assert_eq!(emit_group(None, true), 2);
    }
}
