//! What kiln will do: `kiln.toml` and the command-line flags resolved into one
//! [`Config`], defaults applied. The file is parsed strictly: an unknown key or a
//! bad value is an error that names the key and its line.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::cache::DEFAULT_DIR as DEFAULT_CACHE_DIR;
use crate::deploy::DeploySettings;
use crate::diag::LineIndex;
use crate::emit::compress::{CompressOptions, Effort};
use crate::emit::headers::{CacheControlOptions, HeaderRule};
use crate::emit::host::{Host, PAGES_DEFAULT_CACHE};
use crate::emit::manifest::OutputFormats;
use crate::error::ConfigError;
use crate::glob::GlobList;
use crate::link::{DEFAULT_KEEP_NAMES, HashPolicy, ImageTags, LinkOptions};
use crate::report::budget::{FileBudget, Rule};
use crate::routes::Routes;
use crate::scan::{DEFAULT_EXCLUDE, DEFAULT_PRIVATE, ScanOptions};
use crate::spill::DEFAULT_BUDGET as DEFAULT_MEMORY_BUDGET;
use crate::transform::css::CssOptions;
use crate::transform::html::HtmlOptions;
use crate::transform::js::JsOptions;
use crate::transform::png::PngOptions;
use crate::transform::variants::{Format, VariantOptions};
use crate::transform::{MinifySkip, TransformOptions};
use swc_core::ecma::ast::EsVersion;

/// The name kiln looks for in the source directory, then in the working directory.
pub const CONFIG_FILE: &str = "kiln.toml";

/// Everything a build needs, resolved from defaults, `kiln.toml` and flags:
/// each stage's own options, composed.
#[derive(Debug, Clone)]
pub struct Config {
    pub source: PathBuf,
    pub output: PathBuf,
    /// URL path the site is served under; always starts and ends with `/`. Default: `/`.
    pub base: String,
    /// Which files belong to the build.
    pub scan: ScanOptions,
    /// What the transforms do (minifiers and their options).
    pub transform: TransformOptions,
    /// Files each minifier leaves alone.
    pub skip: MinifySkip,
    /// Inline `@import`ed stylesheets into the stylesheet that imports them. Default: false.
    pub css_bundle: bool,
    /// Which files get hashed names, and what `<img>` elements gain.
    pub link: LinkOptions,
    pub compress: CompressOptions,
    pub cache_control: CacheControlOptions,
    pub outputs: OutputFormats,
    /// `host`: what the output is written for (the defaults of `outputs`,
    /// `compress` and `cache_control.html`, and where kiln's own files go).
    pub host: Host,
    /// `[[budget]]` rules, or those of `--budgets FILE`.
    pub budgets: Vec<Rule>,
    /// Write `kiln-report.html` into the output. Default: true.
    pub report: bool,
    /// `[[headers]]`: response headers by glob, in order.
    pub headers: Vec<HeaderRule>,
    /// `[routes]`: redirects, rewrites and the SPA fallback. The source's
    /// `_redirects` rules go before these (read by the build).
    pub routes: Routes,
    /// `[deploy]` as written in kiln.toml.
    pub deploy: DeploySettings,
    /// The transform and compression cache; `None` builds without one.
    /// Default: `.kiln-cache` in the working directory.
    pub cache_dir: Option<PathBuf>,
    /// Any diagnostic fails the build. Default: false.
    pub strict: bool,
    /// Replace a non-empty output directory that kiln did not write. Default: false.
    pub force: bool,
    /// Worker threads; `None` uses one per core.
    pub jobs: Option<usize>,
    /// Bytes of file contents a build keeps in memory between its stages;
    /// the rest waits in a temporary file in the output directory
    /// ([`crate::spill`]). Default: 64 MiB.
    pub memory_budget: u64,
    /// The configuration file that was read, if any.
    pub config_file: Option<PathBuf>,
}

impl Config {
    /// A configuration with every default, for `source` → `output`.
    pub fn new(source: impl Into<PathBuf>, output: impl Into<PathBuf>) -> Config {
        Config {
            source: source.into(),
            output: output.into(),
            base: "/".into(),
            scan: ScanOptions::default(),
            transform: TransformOptions::minify(),
            skip: MinifySkip::default(),
            css_bundle: false,
            link: LinkOptions::default(),
            compress: CompressOptions::default(),
            cache_control: CacheControlOptions::default(),
            outputs: OutputFormats::default(),
            host: Host::All,
            budgets: Vec::new(),
            report: true,
            headers: Vec::new(),
            routes: Routes::default(),
            deploy: DeploySettings::default(),
            cache_dir: Some(PathBuf::from(DEFAULT_CACHE_DIR)),
            strict: false,
            force: false,
            jobs: None,
            memory_budget: DEFAULT_MEMORY_BUDGET,
            config_file: None,
        }
    }
}

impl Config {
    /// Where the manifests and the report go for an output at `root`: the
    /// output itself, or the folder beside it for a host that publishes
    /// every file.
    pub fn meta_dir_of(&self, root: &Path) -> PathBuf {
        if self.host.compresses_itself() {
            crate::emit::manifest::meta_dir_beside(root)
        } else {
            root.to_path_buf()
        }
    }

    /// [`Self::meta_dir_of`] the configured output.
    pub fn meta_dir(&self) -> PathBuf {
        self.meta_dir_of(&self.output)
    }
}

/// What the user typed on the command line; `None` means "not given".
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub source: Option<PathBuf>,
    pub output: Option<PathBuf>,
    pub config: Option<PathBuf>,
    pub base: Option<String>,
    pub hash: Option<HashPolicy>,
    pub strict: bool,
    pub force: bool,
    pub jobs: Option<usize>,
    /// `--memory-budget MIB`.
    pub memory_budget_mib: Option<u64>,
    /// `--no-minify`: only rewrite references.
    pub no_minify: bool,
    /// `--sourcemaps`: write a source map per minified JS and CSS file.
    pub sourcemaps: bool,
    /// `--cache-dir`.
    pub cache_dir: Option<PathBuf>,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--compress-effort`.
    pub compress_effort: Option<Effort>,
    /// `--host`.
    pub host: Option<Host>,
    /// `--budgets FILE`: replaces the `[[budget]]` rules of kiln.toml.
    pub budgets: Option<PathBuf>,
    /// `--no-report`.
    pub no_report: bool,
}

/// `kiln.toml` as written. Every key is optional; unknown keys are errors.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    source: Option<String>,
    output: Option<String>,
    base: Option<Spanned<String>>,
    exclude: Option<Vec<Spanned<String>>>,
    hash: Option<HashPolicy>,
    hash_length: Option<Spanned<usize>>,
    keep_names: Option<Vec<Spanned<String>>>,
    immutable: Option<Vec<Spanned<String>>>,
    keep_originals: Option<bool>,
    detect_fingerprints: Option<bool>,
    minify_fingerprinted: Option<bool>,
    private: Option<Vec<Spanned<String>>>,
    strict: Option<bool>,
    jobs: Option<usize>,
    memory_budget: Option<u64>,
    compress: Option<FileCompress>,
    cache_control: Option<FileCacheControl>,
    outputs: Option<FileOutputs>,
    host: Option<Host>,
    minify: Option<bool>,
    sourcemaps: Option<bool>,
    cache_dir: Option<String>,
    css: Option<FileCss>,
    js: Option<FileJs>,
    html: Option<FileHtml>,
    json: Option<FileJson>,
    images: Option<FileImages>,
    routes: Option<FileRoutes>,
    headers: Option<Vec<FileHeaders>>,
    deploy: Option<DeploySettings>,
    budget: Option<Vec<FileBudget>>,
    report: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCss {
    enabled: Option<bool>,
    skip: Option<Vec<Spanned<String>>>,
    targets: Option<Spanned<String>>,
    bundle: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileJs {
    enabled: Option<bool>,
    skip: Option<Vec<Spanned<String>>>,
    ecma: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileHtml {
    enabled: Option<bool>,
    skip: Option<Vec<Spanned<String>>>,
    collapse_whitespace: Option<bool>,
    keep_newlines: Option<bool>,
    remove_comments: Option<bool>,
    templates: Option<bool>,
    minify_css: Option<bool>,
    minify_js: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileJson {
    enabled: Option<bool>,
    skip: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileImages {
    /// Recompress PNG losslessly. Default: true.
    png: Option<bool>,
    /// oxipng preset, 0–6. Default: 2.
    png_level: Option<Spanned<u8>>,
    /// Optimise JPEG losslessly (mozjpeg: Huffman tables, progressive scans). Default: true.
    jpeg: Option<bool>,
    /// Minify SVG (OXVG, SVGO's safe passes). Default: true.
    svg: Option<bool>,
    /// Also try a lossy JPEG re-encoding at this quality (1–100). Default: none.
    jpeg_quality: Option<Spanned<u8>>,
    /// Lowest SSIMULACRA2 score (0–100) a lossy JPEG may have. Default: 90.
    jpeg_min_score: Option<Spanned<u8>>,
    /// `loading="lazy"` + `decoding="async"` on images after the first `lazy_after`. Default: true.
    lazy: Option<bool>,
    /// Images at the top of a page that load eagerly. Default: 2.
    lazy_after: Option<usize>,
    /// Formats to write smaller variants in (`["webp"]`). Default: none.
    variants: Option<Vec<Spanned<String>>>,
    /// libwebp quality for the WebP variant of a JPEG. Default: 85.
    webp_quality: Option<Spanned<u8>>,
    /// ravif quality for AVIF variants. Default: 90.
    avif_quality: Option<Spanned<u8>>,
    /// Wrap images that have variants in `<picture>`. Default: true.
    picture: Option<bool>,
    /// Add intrinsic `width`/`height` to `<img>` that has neither. Default: false.
    dimensions: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCompress {
    gzip: Option<bool>,
    brotli: Option<bool>,
    zstd: Option<bool>,
    min_size: Option<u64>,
    min_saving: Option<Spanned<f64>>,
    effort: Option<Effort>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCacheControl {
    hashed: Option<String>,
    html: Option<String>,
    other: Option<String>,
    #[serde(default)]
    rules: Vec<FileCacheRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCacheRule {
    glob: Spanned<String>,
    value: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileOutputs {
    rev_manifest: Option<bool>,
    django: Option<bool>,
    propshaft: Option<bool>,
    headers: Option<bool>,
    nginx: Option<bool>,
    caddy: Option<bool>,
    apache: Option<bool>,
    redirects: Option<bool>,
    cloudfront_function: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileHeaders {
    #[serde(rename = "for")]
    glob: Spanned<String>,
    values: Spanned<std::collections::BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRoutes {
    fallback: Option<Spanned<String>>,
    #[serde(default)]
    redirects: Vec<Spanned<crate::routes::Rule>>,
}

/// Resolve the configuration: find and read `kiln.toml`, apply flags over it.
pub fn resolve(overrides: Overrides) -> Result<Config, ConfigError> {
    let cwd_source = overrides.source.clone();
    let config_path = match &overrides.config {
        Some(p) => Some(p.clone()),
        None => find_config(cwd_source.as_deref()),
    };
    let (file, text) = match &config_path {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
                path: path.clone(),
                line: None,
                col: None,
                message: format!("cannot read configuration: {e}"),
            })?;
            (parse_file(path, &text)?, text)
        }
        None => (FileConfig::default(), String::new()),
    };
    let path = config_path
        .clone()
        .unwrap_or_else(|| PathBuf::from(CONFIG_FILE));
    let at = |span: std::ops::Range<usize>, message: String| {
        let (line, col) = LineIndex::new(text.as_bytes()).line_col(span.start);
        ConfigError {
            path: path.clone(),
            line: Some(line),
            col: Some(col),
            message,
        }
    };
    let config_dir = config_path
        .as_deref()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();

    let source = overrides
        .source
        .or_else(|| file.source.as_ref().map(|s| config_dir.join(s)))
        .unwrap_or_else(|| PathBuf::from("."));
    let output = overrides
        .output
        .or_else(|| file.output.as_ref().map(|s| config_dir.join(s)))
        .unwrap_or_else(|| PathBuf::from("kiln-out"));
    let mut config = Config::new(source, output);
    config.config_file = config_path;
    config.deploy = file.deploy.clone().unwrap_or_default();
    config.report = !overrides.no_report && file.report.unwrap_or(true);
    config.budgets = match &overrides.budgets {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
                path: path.clone(),
                line: None,
                col: None,
                message: format!("cannot read budgets: {e}"),
            })?;
            crate::report::budget::parse_file(path, &text)?
        }
        None => crate::report::budget::resolve(file.budget.as_deref().unwrap_or(&[]), &at)?,
    };

    if let Some(base) = &file.base {
        config.base =
            normalise_base(base.get_ref()).map_err(|m| at(base.span(), format!("`base`: {m}")))?;
    }
    if let Some(base) = &overrides.base {
        config.base = normalise_base(base).map_err(|m| ConfigError {
            path: "--base".into(),
            line: None,
            col: None,
            message: m,
        })?;
    }
    let globs = |key: &str, defaults: &[&str], given: &Option<Vec<Spanned<String>>>| {
        let mut patterns: Vec<String> = defaults.iter().map(|s| s.to_string()).collect();
        let given = given.as_deref().unwrap_or(&[]);
        patterns.extend(given.iter().map(|s| s.get_ref().clone()));
        GlobList::new(&patterns).map_err(|(i, e)| {
            let span = given
                .get(i.saturating_sub(defaults.len()))
                .map(|s| s.span())
                .unwrap_or(0..0);
            at(span, format!("`{key}`: invalid glob: {}", e.kind()))
        })
    };
    config.scan.exclude = globs("exclude", DEFAULT_EXCLUDE, &file.exclude)?;
    config.link.keep_names = globs("keep_names", DEFAULT_KEEP_NAMES, &file.keep_names)?;
    config.link.immutable = globs("immutable", &[], &file.immutable)?;
    config.link.hash = overrides.hash.or(file.hash).unwrap_or_default();
    if let Some(len) = &file.hash_length {
        let n = *len.get_ref();
        if !(4..=32).contains(&n) {
            return Err(at(
                len.span(),
                format!("`hash_length` must be between 4 and 32, got {n}"),
            ));
        }
        config.link.hash_length = n;
    }
    config.link.keep_originals = file.keep_originals.unwrap_or(true);
    config.scan.detect_fingerprints = file.detect_fingerprints.unwrap_or(true);
    config.scan.private = globs("private", DEFAULT_PRIVATE, &file.private)?;
    config.cache_dir = if overrides.no_cache {
        None
    } else {
        Some(
            overrides
                .cache_dir
                .clone()
                .or_else(|| file.cache_dir.as_ref().map(|d| config_dir.join(d)))
                .unwrap_or_else(|| PathBuf::from(crate::cache::DEFAULT_DIR)),
        )
    };
    config.strict = overrides.strict || file.strict.unwrap_or(false);
    config.force = overrides.force;
    config.jobs = overrides.jobs.or(file.jobs).filter(|&n| n > 0);
    if let Some(mib) = overrides.memory_budget_mib.or(file.memory_budget) {
        config.memory_budget = mib.saturating_mul(1 << 20);
    }
    config.host = overrides.host.or(file.host).unwrap_or_default();
    config.outputs = config.host.outputs();
    config.compress.gzip = config.host.precompress();
    config.compress.brotli = config.host.precompress();
    if config.host.compresses_itself() {
        config.cache_control.html = PAGES_DEFAULT_CACHE.into();
    }
    if let Some(c) = &file.compress {
        let d = config.compress.clone();
        config.compress = CompressOptions {
            gzip: c.gzip.unwrap_or(d.gzip),
            brotli: c.brotli.unwrap_or(d.brotli),
            zstd: c.zstd.unwrap_or(d.zstd),
            min_size: c.min_size.unwrap_or(d.min_size),
            min_saving: match &c.min_saving {
                Some(s) if !(0.0..1.0).contains(s.get_ref()) => {
                    return Err(at(
                        s.span(),
                        "`compress.min_saving` must be a fraction in [0, 1)".into(),
                    ));
                }
                Some(s) => *s.get_ref(),
                None => d.min_saving,
            },
            effort: c.effort.unwrap_or(d.effort),
        };
    }
    if let Some(effort) = overrides.compress_effort {
        config.compress.effort = effort;
    }
    resolve_minify(
        &file,
        overrides.no_minify,
        overrides.sourcemaps,
        &mut config,
        &at,
        &globs,
    )?;
    if let Some(c) = file.cache_control {
        let d = config.cache_control.clone();
        let mut rules = Vec::new();
        for rule in c.rules {
            let glob = GlobList::new(&[rule.glob.get_ref()]).map_err(|(_, e)| {
                at(
                    rule.glob.span(),
                    format!("`cache_control.rules.glob`: invalid glob: {}", e.kind()),
                )
            })?;
            rules.push((glob, rule.value));
        }
        config.cache_control = CacheControlOptions {
            hashed: c.hashed.unwrap_or(d.hashed),
            html: c.html.unwrap_or(d.html),
            other: c.other.unwrap_or(d.other),
            rules,
        };
    }
    if let Some(o) = file.outputs {
        let d = config.outputs;
        config.outputs = OutputFormats {
            rev_manifest: o.rev_manifest.unwrap_or(d.rev_manifest),
            django: o.django.unwrap_or(d.django),
            propshaft: o.propshaft.unwrap_or(d.propshaft),
            headers: o.headers.unwrap_or(d.headers),
            nginx: o.nginx.unwrap_or(d.nginx),
            caddy: o.caddy.unwrap_or(d.caddy),
            apache: o.apache.unwrap_or(d.apache),
            redirects: o.redirects.unwrap_or(d.redirects),
            cloudfront_function: o.cloudfront_function.unwrap_or(d.cloudfront_function),
        };
    }
    for rule in file.headers.iter().flatten() {
        let glob = GlobList::new(&[rule.glob.get_ref()]).map_err(|(_, e)| {
            at(
                rule.glob.span(),
                format!("`headers.for`: invalid glob: {}", e.kind()),
            )
        })?;
        let mut values = Vec::new();
        for (name, value) in rule.values.get_ref() {
            crate::emit::headers::check_header(name, value)
                .map_err(|m| at(rule.values.span(), format!("`headers.values`: {m}")))?;
            values.push((name.clone(), value.clone()));
        }
        config.headers.push(HeaderRule { glob, values });
    }
    if let Some(r) = &file.routes {
        for rule in &r.redirects {
            rule.get_ref()
                .validate()
                .map_err(|m| at(rule.span(), format!("`routes.redirects`: {m}")))?;
        }
        config.routes = Routes {
            rules: r.redirects.iter().map(|r| r.get_ref().clone()).collect(),
            fallback: match &r.fallback {
                Some(page) => {
                    let path = page.get_ref().trim_start_matches('/');
                    if path.is_empty() || path.split('/').any(|s| s == "..") {
                        return Err(at(
                            page.span(),
                            format!(
                                "`routes.fallback`: `{}` is not a file of the output",
                                page.get_ref()
                            ),
                        ));
                    }
                    Some(path.to_owned())
                }
                None => None,
            },
        };
    }
    Ok(config)
}

type At<'a> = dyn Fn(std::ops::Range<usize>, String) -> ConfigError + 'a;
type Globs<'a> =
    dyn Fn(&str, &[&str], &Option<Vec<Spanned<String>>>) -> Result<GlobList, ConfigError> + 'a;

/// `minify`, `[css]`, `[js]`, `[html]`, `[json]` and `--no-minify`.
fn resolve_minify(
    file: &FileConfig,
    no_minify: bool,
    sourcemaps: bool,
    config: &mut Config,
    at: &At<'_>,
    globs: &Globs<'_>,
) -> Result<(), ConfigError> {
    let on = !no_minify && file.minify.unwrap_or(true);
    let css = match file.css.as_ref().and_then(|c| c.targets.as_ref()) {
        Some(query) => CssOptions::from_query(query.get_ref())
            .map_err(|e| at(query.span(), format!("`css.targets`: {e}")))?,
        None => browserslist_targets(&config.source)?.unwrap_or_default(),
    };
    let js = match file.js.as_ref().and_then(|j| j.ecma.as_ref()) {
        Some(ecma) => JsOptions {
            ecma: parse_ecma(ecma.get_ref()).ok_or_else(|| {
                at(
                    ecma.span(),
                    format!(
                        "`js.ecma` must be one of es5, es2015 … es2022, esnext; got `{}`",
                        ecma.get_ref()
                    ),
                )
            })?,
        },
        None => JsOptions::default(),
    };
    let enabled = |e: Option<bool>| on && e.unwrap_or(true);
    let h = file.html.as_ref();
    let html = HtmlOptions {
        css: h.and_then(|h| h.minify_css).unwrap_or(true).then_some(css),
        js: h.and_then(|h| h.minify_js).unwrap_or(true).then_some(js),
        collapse_whitespace: h.and_then(|h| h.collapse_whitespace).unwrap_or(true),
        keep_newlines: h.and_then(|h| h.keep_newlines).unwrap_or(false),
        remove_comments: h.and_then(|h| h.remove_comments).unwrap_or(true),
        templates: h.and_then(|h| h.templates).unwrap_or(false),
        lazy_images_after: file
            .images
            .as_ref()
            .and_then(|i| i.lazy)
            .unwrap_or(true)
            .then(|| file.images.as_ref().and_then(|i| i.lazy_after).unwrap_or(2)),
    };
    let images = file.images.as_ref();
    let png = match images.and_then(|i| i.png_level.as_ref()) {
        Some(level) if *level.get_ref() > 6 => {
            return Err(at(
                level.span(),
                format!("`images.png_level` must be 0 to 6, got {}", level.get_ref()),
            ));
        }
        Some(level) => PngOptions {
            level: *level.get_ref(),
        },
        None => PngOptions::default(),
    };
    let min_score = match images.and_then(|i| i.jpeg_min_score.as_ref()) {
        Some(m) if *m.get_ref() > 100 => {
            return Err(at(
                m.span(),
                format!(
                    "`images.jpeg_min_score` must be 0 to 100, got {}",
                    m.get_ref()
                ),
            ));
        }
        Some(m) => *m.get_ref(),
        None => 90,
    };
    let quality = |key: &str, q: Option<&Spanned<u8>>| match q {
        Some(q) if !(1..=100).contains(q.get_ref()) => Err(at(
            q.span(),
            format!("`images.{key}` must be 1 to 100, got {}", q.get_ref()),
        )),
        q => Ok(q.map(|q| *q.get_ref())),
    };
    let jpeg_lossy = quality("jpeg_quality", images.and_then(|i| i.jpeg_quality.as_ref()))?
        .map(|quality| crate::transform::jpeg::Lossy { quality, min_score });
    let webp_quality = quality("webp_quality", images.and_then(|i| i.webp_quality.as_ref()))?;
    let avif_quality = quality("avif_quality", images.and_then(|i| i.avif_quality.as_ref()))?;
    let variants = match images.and_then(|i| i.variants.as_ref()) {
        None => None,
        Some(list) => {
            let defaults = VariantOptions::default();
            let mut options = VariantOptions {
                webp: false,
                webp_quality: webp_quality.unwrap_or(defaults.webp_quality),
                avif: false,
                avif_quality: avif_quality.unwrap_or(defaults.avif_quality),
                min_score,
            };
            for name in list {
                match Format::from_name(name.get_ref()) {
                    Some(Format::Webp) => options.webp = true,
                    Some(Format::Avif) => options.avif = true,
                    None => {
                        return Err(at(
                            name.span(),
                            format!(
                                "`images.variants`: kiln writes `avif` and `webp` variants; `{}` is not one",
                                name.get_ref()
                            ),
                        ));
                    }
                }
            }
            (options.webp || options.avif).then_some(options)
        }
    };
    config.link.images = ImageTags {
        picture: images.and_then(|i| i.picture).unwrap_or(true),
        dimensions: images.and_then(|i| i.dimensions).unwrap_or(false),
    };
    config.transform = TransformOptions {
        variants: variants.filter(|_| on),
        png: enabled(images.and_then(|i| i.png)).then_some(png),
        jpeg: enabled(images.and_then(|i| i.jpeg)),
        jpeg_lossy: jpeg_lossy.filter(|_| enabled(images.and_then(|i| i.jpeg))),
        svg: enabled(images.and_then(|i| i.svg)),
        css: enabled(file.css.as_ref().and_then(|c| c.enabled)).then_some(css),
        js: enabled(file.js.as_ref().and_then(|j| j.enabled)).then_some(js),
        html: enabled(h.and_then(|h| h.enabled)).then_some(html),
        json: enabled(file.json.as_ref().and_then(|j| j.enabled)),
        sourcemaps: sourcemaps || file.sourcemaps.unwrap_or(false),
        module: false,
    };
    config.css_bundle = file.css.as_ref().and_then(|c| c.bundle).unwrap_or(false);
    config.skip = MinifySkip {
        css: globs(
            "css.skip",
            &[],
            &file.css.as_ref().and_then(|c| c.skip.clone()),
        )?,
        js: globs(
            "js.skip",
            &[],
            &file.js.as_ref().and_then(|c| c.skip.clone()),
        )?,
        html: globs("html.skip", &[], &h.and_then(|c| c.skip.clone()))?,
        json: globs(
            "json.skip",
            &[],
            &file.json.as_ref().and_then(|c| c.skip.clone()),
        )?,
        fingerprinted: !file.minify_fingerprinted.unwrap_or(false),
    };
    Ok(())
}

fn parse_ecma(name: &str) -> Option<EsVersion> {
    Some(match name.to_ascii_lowercase().as_str() {
        "es5" => EsVersion::Es5,
        "es2015" | "es6" => EsVersion::Es2015,
        "es2016" => EsVersion::Es2016,
        "es2017" => EsVersion::Es2017,
        "es2018" => EsVersion::Es2018,
        "es2019" => EsVersion::Es2019,
        "es2020" => EsVersion::Es2020,
        "es2021" => EsVersion::Es2021,
        "es2022" => EsVersion::Es2022,
        "esnext" => EsVersion::EsNext,
        _ => return None,
    })
}

/// A `browserslist` query from the working directory: `package.json`'s
/// `browserslist` field, else `.browserslistrc`.
/// The names browserslist reads its configuration from, in each folder.
const BROWSERSLIST_FILES: [&str; 2] = ["browserslist", ".browserslistrc"];

/// Where the browserslist configuration for `source` is, as browserslist
/// finds it: `BROWSERSLIST` or `BROWSERSLIST_CONFIG` in the environment, else
/// the nearest folder (the source's own, then its parents) with a
/// `browserslist`, a `.browserslistrc` or a `package.json` holding a
/// `browserslist` key. `None`: there is none, and kiln's default targets apply.
fn browserslist_origin(source: &Path) -> Option<PathBuf> {
    for name in ["BROWSERSLIST", "BROWSERSLIST_CONFIG"] {
        if std::env::var_os(name).is_some_and(|v| !v.is_empty()) {
            return Some(PathBuf::from(format!("${name}")));
        }
    }
    let start = std::path::absolute(source).ok()?;
    start.ancestors().find_map(|dir| {
        let file = BROWSERSLIST_FILES
            .iter()
            .map(|name| dir.join(name))
            .find(|p| p.is_file());
        file.or_else(|| {
            let package = dir.join("package.json");
            let text = std::fs::read_to_string(&package).ok()?;
            let json: serde_json::Value = serde_json::from_str(&text).ok()?;
            json.get("browserslist").is_some().then_some(package)
        })
    })
}

/// The CSS targets of the browserslist configuration that applies to
/// `source`, loaded by browserslist itself: every form it reads (a string,
/// an array or an object of environments in package.json, `[env]` sections,
/// `extends`), the environment from `BROWSERSLIST_ENV` or `NODE_ENV`
/// (default `production`, then the `defaults` section), and its errors.
fn browserslist_targets(source: &Path) -> Result<Option<CssOptions>, ConfigError> {
    let Some(origin) = browserslist_origin(source) else {
        return Ok(None);
    };
    let failed = |message: String| ConfigError {
        path: origin.clone(),
        line: None,
        col: None,
        message: format!("browserslist: {message}"),
    };
    let opts = browserslist::Opts {
        path: std::path::absolute(source)
            .ok()
            .map(|p| p.to_string_lossy().into_owned()),
        ..browserslist::Opts::default()
    };
    let distribs = browserslist::execute(&opts).map_err(|e| failed(e.to_string()))?;
    let queries: Vec<String> = distribs
        .iter()
        .map(|d| format!("{} {}", d.name(), d.version()))
        .collect();
    CssOptions::from_queries(&queries).map(Some).map_err(failed)
}

fn find_config(source: Option<&Path>) -> Option<PathBuf> {
    let in_source = source.map(|s| s.join(CONFIG_FILE));
    in_source
        .into_iter()
        .chain(std::iter::once(PathBuf::from(CONFIG_FILE)))
        .find(|p| p.is_file())
}

fn parse_file(path: &Path, text: &str) -> Result<FileConfig, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let (line, col) = match e.span() {
            Some(span) => {
                let (l, c) = LineIndex::new(text.as_bytes()).line_col(span.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        ConfigError {
            path: path.to_path_buf(),
            line,
            col,
            message: e.message().trim().to_owned(),
        }
    })
}

fn normalise_base(base: &str) -> Result<String, String> {
    if base.contains("://") || base.starts_with("//") {
        return Err(format!(
            "must be a URL path such as `/docs/`, not a full URL (`{base}`)"
        ));
    }
    let trimmed = base.trim_matches('/');
    if trimmed.split('/').any(|s| s == ".." || s == ".") {
        return Err(format!("must not contain `.` or `..` segments (`{base}`)"));
    }
    Ok(if trimmed.is_empty() {
        "/".into()
    } else {
        format!("/{trimmed}/")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kiln.toml");
        std::fs::write(&path, text).unwrap();
        resolve(Overrides {
            config: Some(path),
            source: Some(dir.path().into()),
            ..Overrides::default()
        })
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let err = parse("base = \"/\"\nhash_lenght = 4\n").unwrap_err();
        assert_eq!(err.line, Some(2));
        assert!(err.message.contains("hash_lenght"), "{}", err.message);
    }

    #[test]
    fn bad_value_names_key_and_line() {
        let err = parse("\n\nhash = \"sometimes\"\n").unwrap_err();
        assert_eq!(err.line, Some(3));
        assert!(err.message.contains("sometimes"), "{}", err.message);
        let err = parse("hash_length = 2\n").unwrap_err();
        assert!(err.message.contains("hash_length"), "{}", err.message);
        assert_eq!(err.line, Some(1));
    }

    #[test]
    fn nested_unknown_key_is_an_error() {
        let err = parse("[compress]\nlz4 = true\n").unwrap_err();
        assert_eq!(err.line, Some(2));
        assert!(err.message.contains("lz4"));
    }

    #[test]
    fn invalid_glob_is_located() {
        let err = parse("exclude = [\"ok/**\", \"bad[\"]\n").unwrap_err();
        assert!(err.message.contains("exclude"), "{}", err.message);
        assert_eq!((err.line, err.col), (Some(1), Some(21)));
    }

    #[test]
    fn base_is_normalised() {
        assert_eq!(normalise_base("docs").unwrap(), "/docs/");
        assert_eq!(normalise_base("/a/b/").unwrap(), "/a/b/");
        assert_eq!(normalise_base("").unwrap(), "/");
        assert!(normalise_base("https://x.example/").is_err());
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kiln.toml");
        std::fs::write(&path, "hash = \"all\"\nbase = \"/a/\"\n").unwrap();
        let config = resolve(Overrides {
            config: Some(path),
            hash: Some(HashPolicy::None),
            base: Some("/b".into()),
            ..Overrides::default()
        })
        .unwrap();
        assert_eq!(config.link.hash, HashPolicy::None);
        assert_eq!(config.base, "/b/");
    }

    #[test]
    fn globs_without_slash_match_at_any_depth() {
        let globs = GlobList::new(&["*.pdf", "docs/*.txt", "/robots.txt"]).unwrap();
        assert!(globs.is_match("robots.txt"));
        assert!(!globs.is_match("x/robots.txt"));
        assert!(globs.is_match("a.pdf"));
        assert!(globs.is_match("x/y/a.pdf"));
        assert!(globs.is_match("docs/a.txt"));
        assert!(!globs.is_match("docs/x/a.txt"));
    }
}
