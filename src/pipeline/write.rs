//! The emit stage of a build: decide each file's output plan, write it and
//! its precompressed siblings in an order that never leaves a page pointing
//! at a missing file, then the manifests and header files.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use rayon::prelude::*;
use sha2::{Digest, Sha384};

use super::{BuildOutcome, Session};
use crate::asset::{Asset, AssetKind};
use crate::cache::Cache;
use crate::config::Config;
use crate::diag::Diagnostic;
use crate::emit::apache::{HTACCESS_FILE, htaccess};
use crate::emit::compress::{EncodeTime, is_compressible, precompress};
use crate::emit::headers::{
    CADDY_FILE, HEADERS_FILE, Headers, NGINX_FILE, caddy_conf, content_type, headers_file_with,
    nginx_conf, prepend_source,
};
use crate::emit::host::{PAGES_DEFAULT_CACHE, wildcard_headers};
use crate::emit::manifest::{
    Alias, DJANGO_FILE, FileEntry, MANIFEST_FILE, Manifest, PROPSHAFT_FILE, REPORT_FILE,
    REV_MANIFEST_FILE,
};
use crate::emit::{self, OutputDir};
use crate::error::{Error, Result};
use crate::link::{Linked, Linker};
use crate::progress::Progress;
use crate::routes::{CLOUDFRONT_FUNCTION_FILE, REDIRECTS_FILE, Routes};
use crate::spill::{Bytes, Spill};

/// Renders one generated file from the manifest.
type Render = fn(&Manifest) -> String;

/// Where a build keeps results: the cache across builds, the spill store
/// within one.
#[derive(Clone, Copy)]
pub(super) struct Stores<'a> {
    pub cache: Option<&'a Cache>,
    pub spill: &'a Spill,
    pub encode: &'a EncodeTime,
    /// A build of this watch completed: outputs may be trusted by size.
    pub primed: bool,
    /// [`Session::defer_compression`].
    pub defer_compression: bool,
}

/// What the emit stage wrote.
#[derive(Default)]
pub(super) struct Written {
    /// Manifest entries by source path.
    pub files: BTreeMap<String, FileEntry>,
    /// Every path the build's files occupy (outputs, aliases, variants).
    pub keep: HashSet<PathBuf>,
    /// Files whose bytes changed on disk.
    pub count: usize,
    /// Source paths whose compression was deferred.
    pub pending: Vec<String>,
    /// Time spent on each file, transform and emit, by source path.
    pub timings: Vec<(String, Duration)>,
    pub diagnostics: Vec<Diagnostic>,
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

/// The image a generated variant was made from (`a.png` for `a.png.webp`).
fn variant_of(asset: &Asset, linked: &Linked) -> Option<String> {
    linked
        .generated_variant
        .then(|| {
            asset
                .path
                .rsplit_once('.')
                .map(|(origin, _)| origin.to_owned())
        })
        .flatten()
}

/// Where a linked file goes and how it is served: decided here, once, for the
/// files a build writes and for the outputs a watch trusts unchanged.
#[derive(Debug, PartialEq)]
struct OutputPlan {
    /// The output path, then the original name when a copy is kept there.
    paths: Vec<String>,
    alias: Option<Alias>,
    content_type: String,
    cache_control: String,
    /// Other response headers, from `[[headers]]`.
    headers: std::collections::BTreeMap<String, String>,
    /// The output's name carries a content hash: kiln's, or a bundler's.
    hashed: bool,
}

fn plan(config: &Config, asset: &Asset, linked: &Linked) -> OutputPlan {
    let hashed = linked.hashed || asset.fingerprinted;
    // An `immutable` glob vouches for the files it names, not for the
    // variants kiln makes of them (`a.png.webp`), whose bytes change with
    // kiln's options under the same name.
    let vouched = !linked.generated_variant && config.link.immutable.is_match(&asset.path);
    let policy = &config.cache_control;
    // The copy under the original name: its own class of policy, with the
    // `[[headers]]` rules applied as to the file.
    let alias = linked.keep_original.then(|| Alias {
        path: asset.path.clone(),
        cache_control: Headers::apply(
            &config.headers,
            &asset.path,
            &asset.path,
            String::new(),
            policy.for_file(&asset.path, asset.kind, vouched),
        )
        .cache_control,
    });
    let mut paths = vec![linked.output.clone()];
    paths.extend(alias.iter().map(|a| a.path.clone()));
    let headers = Headers::apply(
        &config.headers,
        &asset.path,
        &linked.output,
        content_type(&asset.path, asset.kind),
        policy.for_file(&asset.path, asset.kind, hashed || vouched),
    );
    OutputPlan {
        paths,
        alias,
        content_type: headers.content_type,
        cache_control: headers.cache_control,
        headers: headers.extra,
        hashed,
    }
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
///
/// `transform_times[i]` is the time `assets[i]` spent in the transform stage.
pub(super) fn emit_all(
    config: &Config,
    out: &OutputDir,
    assets: &[Asset],
    mut linker: Linker<'_>,
    transform_times: &[Duration],
    stores: Stores<'_>,
    progress: &dyn Progress,
) -> Written {
    let mut groups: [Vec<(usize, Linked)>; 2] = Default::default();
    for (i, l) in linker.take_linked().into_iter().enumerate() {
        // Pages are not linked yet (group 2): linked and written last, below.
        let Some(l) = l else { continue };
        let group = emit_group(Some(&l), linker.names_hashed(i));
        groups[usize::from(group)].push((i, l));
    }
    let emit = |i: usize, l: Linked| {
        let r = emit_one(config, out, &assets[i], l, stores);
        progress.advance();
        (i, r)
    };
    let mut results: Vec<(usize, std::result::Result<Emitted, Diagnostic>)> = Vec::new();
    for (g, mut members) in groups.into_iter().enumerate() {
        // Within a group, largest first: big files do not form the tail.
        members.sort_by_key(|(i, _)| std::cmp::Reverse(assets[*i].size));
        results.par_extend(
            members
                .into_par_iter()
                .with_max_len(1)
                .map(|(i, l)| emit(i, l)),
        );
        if g == 1 {
            let written: Vec<(&str, &FileEntry)> = results
                .iter()
                .filter_map(|(i, r)| Some((assets[*i].path.as_str(), &r.as_ref().ok()?.entry)))
                .collect();
            progress.assets_written(&written);
        }
    }
    // Pages, the last group: each written as soon as it is linked.
    results.extend(linker.link_pages_with(|i, page| emit(i, page).1));

    let mut written = Written::default();
    results.sort_by_key(|(i, _)| *i);
    for (i, result) in results {
        let asset = &assets[i];
        match result {
            Ok(e) => {
                written.count += e.written;
                if e.deferred {
                    written.pending.push(asset.path.clone());
                }
                written.keep.extend(e.paths.into_iter().map(PathBuf::from));
                written
                    .timings
                    .push((asset.path.clone(), transform_times[i] + e.time));
                written.files.insert(asset.path.clone(), e.entry);
            }
            Err(d) => {
                written
                    .timings
                    .push((asset.path.clone(), transform_times[i]));
                written.diagnostics.push(d);
            }
        }
    }
    written
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
    Stores {
        cache,
        spill,
        encode,
        primed,
        defer_compression,
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
    let plan = plan(config, asset, &linked);
    let variant_of = variant_of(asset, &linked);
    if primed
        && linked.bytes.is_ok()
        && let Some(emitted) = unchanged_output(config, out, asset, &linked, &plan, started)
    {
        if let Ok(Some(b)) = linked.bytes {
            spill.discard(b);
        }
        return Ok(emitted);
    }
    let bytes = match linked.bytes {
        Ok(Some(b)) => spill.take(b).map_err(|e| lost(&e))?,
        Ok(None) => std::fs::read(&asset.source)
            .map(Bytes::Owned)
            .map_err(|e| Diagnostic::error(&asset.source, format!("cannot read file: {e}")))?,
        Err(e) => return Err(lost(&e)),
    };
    let OutputPlan {
        paths,
        alias,
        content_type,
        cache_control,
        headers,
        hashed,
    } = plan;
    let blake3_hex = linked.hash.to_hex().to_string();

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
        && config.compress.any();
    let mut deferred = false;
    let (sizes, variants) = if !is_compressible(&content_type) {
        (Sizes::default(), None)
    } else if let Some(prev) = previous
        .filter(|p| !(worth && Sizes::of(p).none()))
        .filter(|p| variants_exist(&out.root, &paths, p))
    {
        // An entry without variants for a file worth compressing may be one
        // whose compression a watch deferred and never finished: it is not
        // trusted (the cache knows when compression did not pay).
        (Sizes::of(prev), None)
    } else if defer_compression && worth {
        let key = Cache::variants_key(&linked.hash, &config.compress);
        match cache.and_then(|c| c.get_variants(&key)) {
            Some(v) => (Sizes::made(&v), Some(v)),
            None => {
                deferred = true;
                (Sizes::default(), None)
            }
        }
    } else {
        let v = compress_cached(&bytes, &linked.hash, &config.compress, cache, encode);
        (Sizes::made(&v), Some(v))
    };

    // A page's integrity (SHA-384 over every byte) serves no browser: a
    // watch computes it after the live-reload event, with the variants. An
    // empty value is one a watch deferred and never finished.
    let integrity = match same.filter(|e| !e.integrity.is_empty()) {
        Some(e) => e.integrity.clone(),
        None if defer_compression && asset.kind == AssetKind::Html => {
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
            (".gz", sizes.gzip.is_some() || !config.compress.gzip),
            (".br", sizes.brotli.is_some() || !config.compress.brotli),
            (".zst", sizes.zstd.is_some() || !config.compress.zstd),
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
            for (suffix, bytes) in v.each() {
                written += usize::from(out.write(format!("{path}{suffix}"), bytes).map_err(fail)?);
            }
        }
        all_paths.extend(sizes.suffixes().map(|suffix| format!("{path}{suffix}")));
    }
    all_paths.extend(paths);
    let entry = FileEntry {
        output: linked.output,
        kind: asset.kind,
        content_type,
        cache_control,
        hashed,
        bytes_in: asset.size,
        bytes_out: bytes.len() as u64,
        gzip: sizes.gzip,
        brotli: sizes.brotli,
        zstd: sizes.zstd,
        integrity,
        blake3: blake3_hex,
        aliases: alias.into_iter().collect(),
        variant_of,
        private: config.scan.private.is_match(&asset.path),
        headers,
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
    plan: &OutputPlan,
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
    let worth = is_compressible(&plan.content_type)
        && prev.bytes_out >= config.compress.min_size
        && config.compress.any();
    if (worth && Sizes::of(prev).none()) || prev.integrity.is_empty() {
        return None;
    }
    let paths = &plan.paths;
    let sized =
        |p: &str| std::fs::metadata(out.root.join(p)).is_ok_and(|m| m.len() == prev.bytes_out);
    if !paths.iter().all(|p| sized(p)) || !variants_exist(&out.root, paths, prev) {
        return None;
    }
    let mut all_paths = Vec::new();
    for p in paths {
        all_paths.extend(
            Sizes::of(prev)
                .suffixes()
                .map(|suffix| format!("{p}{suffix}")),
        );
    }
    all_paths.extend(paths.iter().cloned());
    Some(Emitted {
        entry: FileEntry {
            output: linked.output.clone(),
            kind: asset.kind,
            content_type: plan.content_type.clone(),
            cache_control: plan.cache_control.clone(),
            hashed: plan.hashed,
            bytes_in: asset.size,
            aliases: plan.alias.iter().cloned().collect(),
            variant_of: variant_of(asset, linked),
            private: config.scan.private.is_match(&asset.path),
            headers: plan.headers.clone(),
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
    session: &Session,
    outcome: &mut BuildOutcome,
    mut stop: impl FnMut() -> bool,
) -> Result<usize> {
    if outcome.pending.is_empty() {
        return Ok(0);
    }
    let root = emit::absolute(&config.output)?;
    let out = OutputDir {
        meta: config.meta_dir_of(&root),
        root,
        previous: None,
        inside_source: false,
        retired: Some(session.memo.spares()),
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
        let done: Vec<(String, Sizes, String)> = now
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
                let mut sizes = Sizes::made(&v);
                for path in paths {
                    for (suffix, bytes) in v.each() {
                        if out.write(format!("{path}{suffix}"), bytes).is_err() {
                            sizes.drop(suffix);
                        }
                    }
                }
                Some((source.clone(), sizes, integrity))
            })
            .collect();
        for (source, sizes, integrity) in done {
            if let Some(entry) = manifest.files.get_mut(&source) {
                entry.gzip = sizes.gzip;
                entry.brotli = sizes.brotli;
                entry.zstd = sizes.zstd;
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
    outcome.work.zstd += encode.zstd();
    let mut keep = HashSet::new();
    write_generated(config, &out, manifest, &mut keep, &mut Vec::new())?;
    Ok(finished)
}

/// Precompress, or take the variants from the cache.
fn compress_cached(
    bytes: &[u8],
    hash: &blake3::Hash,
    options: &crate::emit::compress::CompressOptions,
    cache: Option<&Cache>,
    time: &EncodeTime,
) -> crate::emit::compress::Variants {
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
            && prev.zstd.is_none_or(|n| size(".zst") == Some(n))
    })
}

/// The sizes of a file's siblings, by encoding.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Sizes {
    gzip: Option<u64>,
    brotli: Option<u64>,
    zstd: Option<u64>,
}

impl Sizes {
    fn of(entry: &FileEntry) -> Sizes {
        Sizes {
            gzip: entry.gzip,
            brotli: entry.brotli,
            zstd: entry.zstd,
        }
    }

    fn made(v: &crate::emit::compress::Variants) -> Sizes {
        let len = |b: &Option<Vec<u8>>| b.as_ref().map(|b| b.len() as u64);
        Sizes {
            gzip: len(&v.gzip),
            brotli: len(&v.brotli),
            zstd: len(&v.zstd),
        }
    }

    fn none(&self) -> bool {
        self.gzip.is_none() && self.brotli.is_none() && self.zstd.is_none()
    }

    /// The file-name suffixes of the siblings there are.
    fn suffixes(self) -> impl Iterator<Item = &'static str> {
        [
            (".gz", self.gzip),
            (".br", self.brotli),
            (".zst", self.zstd),
        ]
        .into_iter()
        .filter_map(|(suffix, size)| size.map(|_| suffix))
    }

    fn drop(&mut self, suffix: &str) {
        match suffix {
            ".gz" => self.gzip = None,
            ".br" => self.brotli = None,
            _ => self.zstd = None,
        }
    }
}

/// Subresource integrity of the final bytes.
pub fn integrity(bytes: &[u8]) -> String {
    let digest = Sha384::digest(bytes);
    format!(
        "sha384-{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// The files a watch's builds displaced: kept for reuse in directories that
/// still hold outputs (added to `keep`), removed from the others.
pub(super) fn keep_retired(out: &OutputDir, keep: &mut HashSet<PathBuf>) {
    let Some(retired) = &out.retired else { return };
    let dirs: HashSet<&Path> = keep.iter().filter_map(|p| p.parent()).collect();
    let gone = retired.split_off(|dir| dir.strip_prefix(&out.root).is_ok_and(|d| dirs.contains(d)));
    let kept: Vec<PathBuf> = retired
        .paths()
        .iter()
        .filter_map(|p| p.strip_prefix(&out.root).ok())
        .map(Path::to_path_buf)
        .collect();
    keep.extend(kept);
    emit::remove_retired(gone);
}

/// Write the manifests and header files; returns how many files changed.
pub(super) fn write_generated(
    config: &Config,
    out: &OutputDir,
    manifest: &Manifest,
    keep: &mut HashSet<PathBuf>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Result<usize> {
    let formats = config.outputs;
    let generated: [(&str, bool, Render); 7] = [
        (
            REV_MANIFEST_FILE,
            formats.rev_manifest,
            Manifest::rev_manifest,
        ),
        (DJANGO_FILE, formats.django, Manifest::django),
        (PROPSHAFT_FILE, formats.propshaft, Manifest::propshaft),
        (NGINX_FILE, formats.nginx, nginx_conf),
        (CADDY_FILE, formats.caddy, caddy_conf),
        (HTACCESS_FILE, formats.apache, htaccess),
        // Last: the manifest says the build is complete.
        (MANIFEST_FILE, true, Manifest::to_json),
    ];
    let enabled: Vec<(&str, Render)> = generated
        .into_iter()
        .filter(|(_, on, _)| *on)
        .map(|(name, _, render)| (name, render))
        .collect();
    let in_root = out.meta == out.root;
    for (name, _) in &enabled {
        if in_root && !keep.insert(PathBuf::from(name)) {
            diagnostics.push(Diagnostic::warning(
                config.source.join(name),
                format!(
                    "the source has a file named `{name}`; kiln's generated {name} replaces it"
                ),
            ));
        }
    }
    let write = |(name, render): &(&str, Render)| {
        emit::write_atomic(&out.meta, name, render(manifest).as_bytes()).map(usize::from)
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

/// The files kiln may keep in a folder beside the output, and whether this
/// build writes each.
fn meta_files(config: &Config) -> [(&'static str, bool); 8] {
    let f = config.outputs;
    [
        (REV_MANIFEST_FILE, f.rev_manifest),
        (DJANGO_FILE, f.django),
        (PROPSHAFT_FILE, f.propshaft),
        (NGINX_FILE, f.nginx),
        (CADDY_FILE, f.caddy),
        (HTACCESS_FILE, f.apache),
        (MANIFEST_FILE, true),
        (REPORT_FILE, config.report),
    ]
}

/// Remove from a meta folder beside the output what this build does not
/// write there (an adapter turned off, the report with `report = false`).
/// Only kiln's own names: anything else there is left alone.
pub(super) fn remove_stale_meta(config: &Config, out: &OutputDir) -> Result<usize> {
    remove_named(&out.meta, meta_files(config).iter().filter(|(_, on)| !on))
}

fn remove_named<'a>(
    dir: &Path,
    files: impl Iterator<Item = &'a (&'static str, bool)>,
) -> Result<usize> {
    let mut removed = 0;
    for (name, _) in files {
        let path = dir.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&path, e)),
        }
    }
    Ok(removed)
}

/// A build that keeps its manifests in the output removes those an earlier
/// build for Netlify or Cloudflare Pages left beside it (only kiln's files,
/// and the folder if that empties it).
pub(super) fn remove_beside(config: &Config, out: &OutputDir) -> Result<usize> {
    let beside = crate::emit::manifest::meta_dir_beside(&out.root);
    if !beside.join(MANIFEST_FILE).is_file() {
        return Ok(0);
    }
    let removed = remove_named(&beside, meta_files(config).iter())?;
    // Not empty (a file of the user's): it stays.
    let _ = std::fs::remove_dir(&beside);
    Ok(removed)
}

/// Write `_headers`: the source's own file (taken out of the build's files)
/// first, then kiln's rules (wildcards for the hosts that compress
/// themselves, [`crate::emit::host::wildcard_headers`]); returns whether it
/// changed. Written once per build: deferred compression changes no header.
pub(super) fn write_headers(
    config: &Config,
    out: &OutputDir,
    manifest: &Manifest,
    source_text: Option<&str>,
    keep: &mut HashSet<PathBuf>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Result<bool> {
    if !config.outputs.headers {
        return Ok(false);
    }
    let text = if config.host.compresses_itself() {
        let (rules, count) = wildcard_headers(manifest, PAGES_DEFAULT_CACHE);
        let own = source_text.map_or(0, count_header_rules);
        if let Some(limit) = config.host.rule_limit()
            && own + count > limit
        {
            diagnostics.push(Diagnostic::warning(
                out.root.join(HEADERS_FILE),
                format!(
                    "{} rules ({own} from the source's _headers): {} reads the first {limit} only (hashed files beside files with their original names need a rule each: keep_originals = false, or fewer folders mixing them)",
                    own + count,
                    config.host.name()
                ),
            ));
        }
        prepend_source(source_text, rules)
    } else {
        headers_file_with(source_text, manifest)
    };
    write_host_file(out, keep, HEADERS_FILE, &text)
}

/// The rules of a `_headers` file: its lines that are not indented, blank or comments.
fn count_header_rules(text: &str) -> usize {
    text.lines()
        .filter(|l| !l.starts_with([' ', '\t', '#']) && !l.trim().is_empty())
        .count()
}

/// Write `_redirects` (when the site has routes or the source had the file);
/// returns whether it changed.
pub(super) fn write_redirects(
    config: &Config,
    out: &OutputDir,
    manifest: &Manifest,
    source_text: Option<&str>,
    keep: &mut HashSet<PathBuf>,
) -> Result<bool> {
    if !config.outputs.redirects || (source_text.is_none() && manifest.routes.is_empty()) {
        // Off: a source `_redirects` goes out as a file of the build.
        return Ok(false);
    }
    let text = redirects_file(source_text, &config.routes, &manifest.base);
    write_host_file(out, keep, REDIRECTS_FILE, &text)
}

/// Write the CloudFront Function of the routes (when the site has any);
/// returns whether it changed.
pub(super) fn write_cloudfront_function(
    config: &Config,
    out: &OutputDir,
    manifest: &Manifest,
    keep: &mut HashSet<PathBuf>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Result<bool> {
    if !config.outputs.cloudfront_function || manifest.routes.is_empty() {
        return Ok(false);
    }
    let indexes: Vec<String> = manifest
        .served()
        .into_iter()
        .filter_map(|s| {
            let dir = s.path.strip_suffix("index.html")?;
            (dir.is_empty() || dir.ends_with('/')).then(|| format!("{}{dir}", manifest.base))
        })
        .collect();
    let text = manifest
        .routes
        .cloudfront_function(&manifest.base, &indexes);
    if text.len() > CLOUDFRONT_FUNCTION_LIMIT {
        diagnostics.push(Diagnostic::warning(
            out.root.join(CLOUDFRONT_FUNCTION_FILE),
            format!(
                "{} bytes: CloudFront refuses a function over {CLOUDFRONT_FUNCTION_LIMIT} (fewer rules, or fewer folders with an index.html)",
                text.len()
            ),
        ));
    }
    write_host_file(out, keep, CLOUDFRONT_FUNCTION_FILE, &text)
}

/// Write one of the files a host reads at the output root, and keep it;
/// returns whether it changed.
fn write_host_file(
    out: &OutputDir,
    keep: &mut HashSet<PathBuf>,
    name: &str,
    text: &str,
) -> Result<bool> {
    keep.insert(PathBuf::from(name));
    emit::write_atomic(&out.root, name, text.as_bytes())
}

/// CloudFront's limit on a function's code, in bytes.
const CLOUDFRONT_FUNCTION_LIMIT: usize = 10 * 1024;

/// `_redirects` for Netlify and Cloudflare Pages: the source's file as
/// written (with the lines only those hosts understand), then kiln.toml's.
fn redirects_file(source: Option<&str>, configured: &Routes, base: &str) -> String {
    let mut out =
        String::from("# Generated by kiln: the source's _redirects, then kiln.toml [routes].\n");
    if let Some(text) = source {
        out.push_str(text);
        if !text.ends_with('\n') {
            out.push('\n');
        }
    }
    out.push_str(&configured.netlify(base));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linked(output: &str, hashed: bool, keep_original: bool, generated_variant: bool) -> Linked {
        Linked {
            output: output.into(),
            hashed,
            keep_original,
            bytes: Ok(None),
            hash: blake3::hash(output.as_bytes()),
            generated_variant,
        }
    }

    fn asset(path: &str, kind: AssetKind) -> Asset {
        Asset {
            path: path.into(),
            source: path.into(),
            kind,
            size: 1,
            fingerprinted: false,
        }
    }

    /// One plan for the file written and for the output a watch trusts: an
    /// `immutable` glob vouches for the files it names (and their copies
    /// under their own names), never for the variants kiln makes of them.
    #[test]
    fn the_output_plan_decides_names_and_cache_policy() {
        use crate::emit::headers::{DEFAULT_CACHE_HASHED, DEFAULT_CACHE_HTML, DEFAULT_CACHE_OTHER};
        let mut config = Config::new("s", "o");
        config.link.immutable = crate::glob::GlobList::new(&["vendor/**"]).unwrap();

        let hashed = plan(
            &config,
            &asset("css/a.css", AssetKind::Css),
            &linked("css/a.1234abcd.css", true, true, false),
        );
        assert_eq!(hashed.paths, ["css/a.1234abcd.css", "css/a.css"]);
        assert!(hashed.hashed);
        assert_eq!(hashed.cache_control, DEFAULT_CACHE_HASHED);
        let alias = hashed.alias.expect("the original name is kept");
        assert_eq!(
            (alias.path.as_str(), alias.cache_control.as_str()),
            ("css/a.css", DEFAULT_CACHE_OTHER)
        );

        let vouched = plan(
            &config,
            &asset("vendor/x.js", AssetKind::Js),
            &linked("vendor/x.js", false, false, false),
        );
        assert_eq!(
            (vouched.hashed, vouched.cache_control.as_str()),
            (false, DEFAULT_CACHE_HASHED)
        );

        // kiln's own variant under the glob: immutable only when hashed.
        let variant = |hashed| {
            plan(
                &config,
                &asset("vendor/a.png.webp", AssetKind::Webp),
                &linked("vendor/a.png.webp", hashed, false, true),
            )
            .cache_control
        };
        assert_eq!(variant(false), DEFAULT_CACHE_OTHER);
        assert_eq!(variant(true), DEFAULT_CACHE_HASHED);

        let mut fingerprinted = asset("assets/index-CwOdOtxP.js", AssetKind::Js);
        fingerprinted.fingerprinted = true;
        let bundled = plan(
            &config,
            &fingerprinted,
            &linked("assets/index-CwOdOtxP.js", false, false, false),
        );
        assert!(bundled.hashed && bundled.alias.is_none());
        assert_eq!(bundled.cache_control, DEFAULT_CACHE_HASHED);

        let page = plan(
            &config,
            &asset("index.html", AssetKind::Html),
            &linked("index.html", false, false, false),
        );
        assert_eq!(page.paths, ["index.html"]);
        assert_eq!(
            (page.cache_control.as_str(), page.content_type.as_str()),
            (DEFAULT_CACHE_HTML, "text/html; charset=utf-8")
        );
    }

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
