//! The transform stage of a build: read every file, transform it (or take
//! the result from the cache or the watch's memory), resolve its references
//! and hand its bytes to the spill store, in parallel, pages first.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use base64::Engine;
use rayon::prelude::*;

use super::session::{FileResult, Memo, stamp};
use crate::asset::{Asset, AssetKind};
use crate::cache::Cache;
use crate::config::Config;
use crate::diag::Diagnostic;
use crate::emit::compress::{CompressOptions, is_compressible};
use crate::emit::headers::content_type;
use crate::link::{Processed, Tree, resolve_refs};
use crate::progress::Progress;
use crate::spill::{Blob, Spill};
use crate::transform::variants::Variant;
use crate::transform::{TransformOptions, transform};

/// Largest host file (`_redirects`, `_headers`) read; Netlify's own limits
/// are far below.
const MAX_HOST_FILE: u64 = 4 << 20;

/// The text of the source's host file `name` (`_redirects`, `_headers`) when
/// the source has one. With `take`, it leaves the build's files: kiln writes
/// the file the hosts read, starting with this text.
pub(super) fn host_file(
    assets: &mut Vec<Asset>,
    name: &str,
    take: bool,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<(std::path::PathBuf, String)> {
    let at = assets.iter().position(|a| a.path == name)?;
    let asset = if take {
        assets.remove(at)
    } else {
        assets[at].clone()
    };
    let text = if asset.size > MAX_HOST_FILE {
        Err(format!("larger than {MAX_HOST_FILE} bytes"))
    } else {
        std::fs::read(&asset.source)
            .map_err(|e| e.to_string())
            .and_then(|b| String::from_utf8(b).map_err(|_| "not UTF-8".to_owned()))
    };
    match text {
        Ok(text) => Some((asset.source, text)),
        Err(e) => {
            diagnostics.push(Diagnostic::error(
                &asset.source,
                format!("cannot read {name}: {e}; its rules are not applied"),
            ));
            None
        }
    }
}

/// One file after the transform stage: ready to link.
pub(super) struct File {
    pub asset: Asset,
    pub processed: Processed,
    /// Time spent reading and transforming it.
    pub time: Duration,
}

impl File {
    /// A file the transforms generated (a source map, an image variant).
    fn generated(asset: Asset, processed: Processed) -> File {
        File {
            asset,
            processed,
            time: Duration::ZERO,
        }
    }
}

/// What the transform stage made of the tree.
pub(super) struct Read {
    /// Sorted by path, then the generated files.
    pub files: Vec<File>,
    pub diagnostics: Vec<Diagnostic>,
    /// The time the workers spent, summed.
    pub time: Duration,
}

/// Read and transform `assets` in parallel: the pages first, since how they
/// load scripts (`type="module"`) decides how the scripts are minified; then
/// everything else. Each file's references are resolved against `tree` on the
/// worker that read it.
pub(super) fn transform_all(
    config: &Config,
    assets: Vec<Asset>,
    tree: &Tree,
    cache: Option<&Cache>,
    spill: &Spill,
    memo: Option<&Memo>,
    progress: &dyn Progress,
) -> Read {
    let (pages, others): (Vec<Asset>, Vec<Asset>) =
        assets.into_iter().partition(|a| a.kind == AssetKind::Html);
    let transform = |mut assets: Vec<Asset>, modules: &HashSet<String>| -> Vec<Transformed> {
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
                let result = process(&asset, &options, config, cache, memo)
                    .map(|f| ready(&asset, f, tree, config, spill, memo));
                progress.advance();
                Transformed {
                    asset,
                    result,
                    time: t.elapsed(),
                }
            })
            .collect()
    };
    let mut results = transform(pages, &HashSet::new());
    let modules = module_scripts(&results);
    results.extend(transform(others, &modules));
    results.sort_by(|a, b| a.asset.path.cmp(&b.asset.path));

    let mut read = Read {
        files: Vec::with_capacity(results.len()),
        diagnostics: Vec::new(),
        time: Duration::ZERO,
    };
    let mut maps = Vec::new();
    let mut variants = Vec::new();
    for Transformed {
        asset,
        result,
        time,
    } in results
    {
        read.time += time;
        match result {
            Ok(ready) => {
                read.diagnostics.extend(ready.diagnostics);
                maps.extend(ready.map);
                variants.extend(ready.variants);
                read.files.push(File {
                    asset,
                    processed: ready.processed,
                    time,
                });
            }
            Err(d) => read.diagnostics.push(d),
        }
    }
    add_source_maps(&mut read.files, maps);
    add_variants(&mut read.files, variants);
    read
}

/// One file after the transform stage: ready to link, or unreadable.
struct Transformed {
    asset: Asset,
    result: std::result::Result<Ready, Diagnostic>,
    time: Duration,
}

/// The files the transforms may generate: a source map beside each script
/// and stylesheet, image variants beside each PNG and JPEG.
pub(super) fn generated_paths<'a>(
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
fn ready(
    asset: &Asset,
    f: FileResult,
    tree: &Tree,
    config: &Config,
    spill: &Spill,
    memo: Option<&Memo>,
) -> Ready {
    let remembered = memo.and_then(|m| m.resolved(&asset.path, &tree.fingerprint));
    let (refs, unresolved) = remembered.unwrap_or_else(|| {
        let resolved = resolve_refs(asset, f.refs, f.base.as_deref(), tree, &config.base);
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
fn add_variants(files: &mut Vec<File>, variants: Vec<(Asset, Processed)>) {
    let taken: HashSet<String> = files.iter().map(|f| f.asset.path.clone()).collect();
    files.extend(
        variants
            .into_iter()
            .filter(|(a, _)| !taken.contains(&a.path))
            .map(|(asset, processed)| File::generated(asset, processed)),
    );
}

/// Add the generated maps; each replaces the source file of its name (the
/// input map it was chained to), and takes its size.
fn add_source_maps(files: &mut Vec<File>, maps: Vec<(Asset, Processed)>) {
    if maps.is_empty() {
        return;
    }
    let mut replaced: HashMap<String, u64> =
        maps.iter().map(|(a, _)| (a.path.clone(), 0)).collect();
    files.retain(|f| match replaced.get_mut(&f.asset.path) {
        Some(size) => {
            *size = f.asset.size;
            false
        }
        None => true,
    });
    for (mut asset, processed) in maps {
        asset.size = replaced[&asset.path];
        files.push(File::generated(asset, processed));
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
    match crate::link::resolve::resolve(url, &asset.path, None, &config.base) {
        crate::link::resolve::Resolution::Local {
            path,
            directory: false,
        } => std::fs::read_to_string(config.source.join(path)).ok(),
        _ => None,
    }
}

/// A bundler's own `.gz`/`.br`/`.zst` beside a file (vite-plugin-compression and the
/// like) is left out: kiln makes the variants of the bytes it writes, and a
/// stale copy must not be served, or take the place of one.
/// Only for the encoders kiln runs: with `gzip = false`, a bundler's `.gz`
/// files are the only ones, and stay.
/// And only beside a file kiln would compress (a text type of at least
/// `min_size`): `release.tar.gz` beside `release.tar` is a download of its own.
pub(super) fn drop_precompressed(assets: &mut Vec<Asset>, compress: &CompressOptions) {
    let paths: HashSet<String> = assets
        .iter()
        .filter(|a| a.size >= compress.min_size && is_compressible(&content_type(&a.path, a.kind)))
        .map(|a| a.path.clone())
        .collect();
    let made = [
        (".gz", compress.gzip),
        (".br", compress.brotli),
        (".zst", compress.zstd),
    ];
    assets.retain(|a| {
        let base = made
            .iter()
            .filter(|(_, on)| *on)
            .find_map(|(suffix, _)| a.path.strip_suffix(suffix));
        !base.is_some_and(|base| paths.contains(base))
    });
}

/// Read and transform one file, or take it from the watch's memory.
fn process(
    asset: &Asset,
    options: &TransformOptions,
    config: &Config,
    cache: Option<&Cache>,
    memo: Option<&Memo>,
) -> std::result::Result<FileResult, Diagnostic> {
    // What depends on other files (a bundled stylesheet's imports, an input
    // source map) is never remembered.
    let depends_on_others = (config.css_bundle && asset.kind == AssetKind::Css)
        || (options.sourcemaps && matches!(asset.kind, AssetKind::Css | AssetKind::Js));
    let memo = memo.filter(|_| !depends_on_others);
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
