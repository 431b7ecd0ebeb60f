//! The transform interface: a pure function of (bytes, kind, options) to
//! (bytes, references, diagnostics, source map). The minifiers plug in here
//! (swc for JS, lightningcss for CSS, kiln's edit list for HTML, lossless
//! passes for JSON and sitemaps); a file kept as written has its references
//! extracted by the same parsers.
//!
//! A transform never fails: a file it cannot parse is emitted as it came, with a
//! diagnostic. It does no I/O and knows nothing of other files, so its result can
//! be cached by input hash and options.

pub mod bundler_manifest;
pub mod css;
pub mod html;
pub mod jpeg;
pub mod js;
pub mod json;
pub mod placeholder;
pub mod png;
pub mod raster;
pub mod sourcemap;
pub mod svg;
pub mod variants;
pub mod webmanifest;
pub mod xml;

use crate::asset::Asset;
use crate::asset::{AssetKind, ImgTag, Reference};
use crate::diag::{Diagnostic, LineIndex};
use crate::glob::GlobList;

/// What the transforms do beyond extracting references. `Default` only
/// extracts (every file passes through); [`TransformOptions::minify`] turns
/// every minifier on.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TransformOptions {
    /// Minify CSS files.
    pub css: Option<css::CssOptions>,
    /// Minify JavaScript files.
    pub js: Option<js::JsOptions>,
    /// Minify HTML documents (and what is inline in them).
    pub html: Option<html::HtmlOptions>,
    /// Minify JSON, web app manifests, source maps and sitemaps (lossless).
    pub json: bool,
    /// Recompress PNG images losslessly (oxipng).
    pub png: Option<png::PngOptions>,
    /// Optimise JPEG images losslessly (Huffman tables, progressive scans).
    pub jpeg: bool,
    /// Also try a lossy re-encoding of JPEG images, kept when its perceptual
    /// score allows (`images.jpeg_quality`). Default: none.
    pub jpeg_lossy: Option<jpeg::Lossy>,
    /// Minify SVG documents (OXVG, the safe subset of SVGO's passes).
    pub svg: bool,
    /// Write smaller variants of PNG and JPEG images in other formats
    /// (`images.variants`). Default: none.
    pub variants: Option<variants::VariantOptions>,
    /// Write a source map for each minified JS and CSS file. Default: false.
    pub sourcemaps: bool,
    /// This file is loaded as an ES module (by a page's `<script type="module">`).
    pub module: bool,
}

impl TransformOptions {
    /// Every minifier on, with default options.
    pub fn minify() -> TransformOptions {
        TransformOptions {
            css: Some(css::CssOptions::default()),
            js: Some(js::JsOptions::default()),
            html: Some(html::HtmlOptions::default()),
            json: true,
            png: Some(png::PngOptions::default()),
            jpeg: true,
            jpeg_lossy: None,
            svg: true,
            variants: None,
            sourcemaps: false,
            module: false,
        }
    }
}

/// The result of transforming one file.
#[derive(Debug, Clone, Default)]
pub struct Transformed {
    /// The output bytes; references are still written as in the source.
    pub bytes: Vec<u8>,
    /// References inside `bytes`, sorted by position, not overlapping.
    pub refs: Vec<Reference>,
    /// Problems found; their `path` is empty until the pipeline fills it in.
    pub diagnostics: Vec<Diagnostic>,
    /// An HTML document's `<base href>`: its references resolve against it.
    pub base: Option<String>,
    /// The source map of `bytes`, to be written as `<path>.map` (JSON).
    pub map: Option<Vec<u8>>,
    /// An HTML document's `<img>` elements, located in `bytes`.
    pub images: Vec<ImgTag>,
    /// Smaller encodings of an image in other formats (`images.variants`).
    pub variants: Vec<variants::Variant>,
}

/// Transform one file. `path` is the asset's relative path (it decides, for
/// instance, whether a `.json` file is a web app manifest).
pub fn transform(
    kind: AssetKind,
    path: &str,
    bytes: Vec<u8>,
    input_map: Option<&str>,
    options: &TransformOptions,
) -> Transformed {
    let raster = match kind {
        AssetKind::Png => options.png.map(|o| png::optimize(&bytes, &o)),
        AssetKind::Jpeg if options.jpeg => Some(jpeg::optimize(&bytes, options.jpeg_lossy)),
        _ => None,
    };
    if raster.is_some()
        || (matches!(kind, AssetKind::Png | AssetKind::Jpeg) && options.variants.is_some())
    {
        let (mut t, source) = match raster {
            Some(Ok(Some(smaller))) => (finish(smaller, Extracted::default()), Some(bytes)),
            Some(Err(d)) => (
                Transformed {
                    diagnostics: vec![d],
                    ..finish(bytes, Extracted::default())
                },
                None,
            ),
            Some(Ok(None)) | None => (finish(bytes, Extracted::default()), None),
        };
        if let Some(o) = options.variants
            && t.diagnostics.is_empty()
        {
            // From the source's pixels (a lossy JPEG must not be the
            // reference a variant is scored against), smaller than the output.
            let source = source.as_deref().unwrap_or(&t.bytes);
            t.variants = variants::make(kind, source, t.bytes.len(), &o);
        }
        return t;
    }
    if kind == AssetKind::Svg && options.svg {
        return match std::str::from_utf8(&bytes).map_err(|e| invalid_utf8(&bytes, e)) {
            Err(d) => Transformed {
                diagnostics: vec![d],
                ..finish(bytes, Extracted::default())
            },
            Ok(text) => match svg::minify(text) {
                Ok(Some(smaller)) => finish(smaller.into_bytes(), Extracted::default()),
                Ok(None) => finish(bytes, Extracted::default()),
                Err(d) => Transformed {
                    diagnostics: vec![d],
                    ..finish(bytes, Extracted::default())
                },
            },
        };
    }
    match minify(kind, path, &bytes, input_map, options) {
        // HTML may grow: lazy-loading attributes are worth their bytes.
        Some(Ok(m)) if m.code.len() < bytes.len() || kind == AssetKind::Html => {
            let mut t = finish(m.code.into_bytes(), m.found);
            t.map = m.map;
            t
        }
        Some(Err(d)) => {
            // Kept as written: its references still count.
            let mut found = extract(kind, path, &bytes);
            found.diagnostics = vec![d];
            finish(bytes, found)
        }
        _ => {
            let found = extract(kind, path, &bytes);
            finish(bytes, found)
        }
    }
}

/// What the CSS and JS minifiers return: the code, the references in it
/// (spans into `code`) and, when one was asked for, the source map (JSON).
#[derive(Debug)]
pub struct MinifiedCode {
    pub code: String,
    pub refs: Vec<Reference>,
    pub map: Option<Vec<u8>>,
}

impl From<MinifiedCode> for Minified {
    fn from(m: MinifiedCode) -> Minified {
        Minified {
            code: m.code,
            found: Extracted {
                refs: m.refs,
                ..Extracted::default()
            },
            map: m.map,
        }
    }
}

/// Minified text and what was found in it.
struct Minified {
    code: String,
    found: Extracted,
    map: Option<Vec<u8>>,
}

/// Run the minifier for this kind, if it is on.
fn minify(
    kind: AssetKind,
    path: &str,
    bytes: &[u8],
    input_map: Option<&str>,
    options: &TransformOptions,
) -> Option<Result<Minified, Diagnostic>> {
    let map = options.sourcemaps.then(|| sourcemap::MapRequest {
        file_name: path.rsplit('/').next().unwrap_or(path),
        input_map,
    });
    let text = || std::str::from_utf8(bytes).map_err(|e| invalid_utf8(bytes, e));
    Some(match kind {
        AssetKind::Css => {
            let o = options.css?;
            text()
                .and_then(|t| css::minify_stylesheet(t, &o, map))
                .map(Minified::from)
        }
        AssetKind::Js => {
            let o = options.js?;
            let script = if options.module || path.ends_with(".mjs") {
                js::ScriptKind::Module
            } else {
                js::ScriptKind::Detect
            };
            text()
                .and_then(|t| js::minify(t, script, false, &o, map))
                .map(Minified::from)
        }
        AssetKind::Html => {
            let o = options.html?;
            html::minify(bytes, &o).map(|m| Minified {
                code: m.code,
                found: m.found,
                map: None,
            })
        }
        AssetKind::Xml if options.json => {
            let text = text().ok()?;
            let code = xml::minify_sitemap(text)?;
            Ok(Minified {
                code,
                found: Extracted::default(),
                map: None,
            })
        }
        AssetKind::Json | AssetKind::WebManifest | AssetKind::SourceMap if options.json => {
            text().and_then(json::minify).map(|code| {
                let mut found = extract(kind, path, code.as_bytes());
                // Positions for diagnostics come from the source.
                let source = extract(kind, path, bytes);
                for (r, s) in found.refs.iter_mut().zip(source.refs) {
                    (r.line, r.col) = (s.line, s.col);
                }
                found.diagnostics = source.diagnostics;
                Minified {
                    code,
                    found,
                    map: None,
                }
            })
        }
        _ => return None,
    })
}

/// Extract references from bytes kept as they are.
fn extract(kind: AssetKind, path: &str, bytes: &[u8]) -> Extracted {
    match kind {
        AssetKind::Html => html::extract(bytes),
        AssetKind::Css => with_text(bytes, css::extract_stylesheet),
        AssetKind::Js => with_text(bytes, js::extract),
        AssetKind::WebManifest => with_text(bytes, webmanifest::extract),
        AssetKind::Json if bundler_manifest::candidate(path) => match std::str::from_utf8(bytes) {
            Ok(text) => match bundler_manifest::classify(path, text) {
                bundler_manifest::ManifestKind::WebApp => webmanifest::extract(text),
                bundler_manifest::ManifestKind::Bundler => bundler_manifest::extract(path, text),
            },
            Err(e) => Extracted {
                diagnostics: vec![invalid_utf8(bytes, e)],
                ..Extracted::default()
            },
        },
        _ => Extracted::default(),
    }
}

fn finish(bytes: Vec<u8>, found: Extracted) -> Transformed {
    let mut refs = found.refs;
    refs.sort_by_key(|r| r.span.start);
    refs.dedup_by(|b, a| b.span.start < a.span.end);
    Transformed {
        bytes,
        refs,
        diagnostics: found.diagnostics,
        base: found.base,
        map: None,
        images: found.images,
        variants: Vec::new(),
    }
}

/// The size at which an image is shown by default, in CSS pixels: a raster
/// image's dimensions, swapped when its EXIF orientation turns it by 90°; an
/// SVG's `width` and `height` when both are whole pixel numbers.
pub fn intrinsic_size(kind: AssetKind, bytes: &[u8]) -> Option<(u32, u32)> {
    if kind == AssetKind::Svg {
        return svg::intrinsic_size(bytes);
    }
    if !matches!(
        kind,
        AssetKind::Png | AssetKind::Jpeg | AssetKind::Gif | AssetKind::Webp | AssetKind::Avif
    ) {
        return None;
    }
    let size = imagesize::blob_size(bytes).ok()?;
    let (w, h) = (
        u32::try_from(size.width).ok()?,
        u32::try_from(size.height).ok()?,
    );
    if w == 0 || h == 0 {
        return None;
    }
    let orientation = match kind {
        AssetKind::Jpeg => jpeg::orientation(bytes),
        AssetKind::Png => png::orientation(bytes),
        _ => None,
    };
    let turned = orientation.is_some_and(|o| o >= 5);
    Some(if turned { (h, w) } else { (w, h) })
}

/// References and diagnostics found by an extractor.
#[derive(Debug, Default)]
pub struct Extracted {
    pub refs: Vec<Reference>,
    pub diagnostics: Vec<Diagnostic>,
    pub base: Option<String>,
    /// `<img>` elements (HTML).
    pub images: Vec<ImgTag>,
}

fn with_text(bytes: &[u8], extract: fn(&str) -> Extracted) -> Extracted {
    match std::str::from_utf8(bytes) {
        Ok(text) => extract(text),
        Err(e) => Extracted {
            diagnostics: vec![invalid_utf8(bytes, e)],
            ..Extracted::default()
        },
    }
}

/// The diagnostic for text that is not UTF-8; the file passes through unchanged.
pub fn invalid_utf8(bytes: &[u8], e: std::str::Utf8Error) -> Diagnostic {
    let (line, col) = LineIndex::new(bytes).line_col(e.valid_up_to());
    Diagnostic::warning(
        "",
        format!(
            "invalid UTF-8 at byte {}: file copied unchanged, its references not rewritten",
            e.valid_up_to()
        ),
    )
    .at(line, col)
}

/// A reference found at `span` (byte offsets in `text`), located for diagnostics.
pub(crate) fn reference(
    index: &LineIndex<'_>,
    span: std::ops::Range<usize>,
    url: String,
    kind: crate::asset::RefKind,
) -> Reference {
    let (line, col) = index.line_col(span.start);
    Reference {
        span,
        url,
        kind,
        line,
        col,
        pinned: false,
    }
}

/// Find a `sourceMappingURL` comment (`//# sourceMappingURL=…` or
/// `/*# sourceMappingURL=… */`) and return the span of its URL.
pub fn source_mapping_url(text: &str) -> Option<std::ops::Range<usize>> {
    const KEY: &str = "sourceMappingURL=";
    let at = text.rfind(KEY)?;
    let before = text[..at].trim_end_matches([' ', '\t']);
    if !(before.ends_with("//#")
        || before.ends_with("//@")
        || before.ends_with("/*#")
        || before.ends_with("/*@"))
    {
        return None;
    }
    let start = at + KEY.len();
    let len = text[start..]
        .find(|c: char| c.is_whitespace() || c == '*')
        .unwrap_or(text.len() - start);
    (len > 0).then(|| start..start + len)
}

/// Files each minifier leaves alone (`skip` globs per kind).
#[derive(Debug, Clone)]
pub struct MinifySkip {
    pub css: GlobList,
    pub js: GlobList,
    pub html: GlobList,
    pub json: GlobList,
    /// Leave JavaScript and CSS whose names a bundler fingerprinted as
    /// written: the bundler minified them already, a second minifier saves
    /// 0.1–2% and can break them. Default: true (`minify_fingerprinted = false`).
    pub fingerprinted: bool,
}

impl Default for MinifySkip {
    fn default() -> Self {
        let none = || GlobList::new::<&str>(&[]).expect("empty glob list");
        MinifySkip {
            css: none(),
            js: none(),
            html: none(),
            json: none(),
            fingerprinted: true,
        }
    }
}

impl MinifySkip {
    /// The transform options for one file: minifiers whose `skip` globs match
    /// are off, and so are the JS and CSS minifiers for a fingerprinted file.
    pub fn options_for(&self, asset: &Asset, options: &TransformOptions) -> TransformOptions {
        let path = asset.path.as_str();
        let mut o = *options;
        let bundled = self.fingerprinted && asset.fingerprinted;
        if bundled || self.css.is_match(path) {
            o.css = None;
        }
        if bundled || self.js.is_match(path) {
            o.js = None;
        }
        if self.html.is_match(path) {
            o.html = None;
        }
        if self.json.is_match(path) {
            o.json = false;
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_source_mapping_urls() {
        let js = "f();\n//# sourceMappingURL=app.js.map\n";
        assert_eq!(&js[source_mapping_url(js).unwrap()], "app.js.map");
        let css = "a{}\n/*# sourceMappingURL=a.css.map */";
        assert_eq!(&css[source_mapping_url(css).unwrap()], "a.css.map");
        assert_eq!(source_mapping_url("let sourceMappingURL=1"), None);
    }

    #[test]
    fn invalid_utf8_is_located() {
        let t = transform(
            AssetKind::Css,
            "a.css",
            b"a{}\nb{color:\xff}".to_vec(),
            None,
            &TransformOptions::default(),
        );
        assert_eq!(t.bytes, b"a{}\nb{color:\xff}");
        assert_eq!(t.diagnostics.len(), 1);
        assert_eq!(
            (t.diagnostics[0].line, t.diagnostics[0].col),
            (Some(2), Some(9))
        );
    }
}
