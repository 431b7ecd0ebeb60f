//! CSS references with lightningcss: `url()` (including inside `image-set()`,
//! `@font-face` sources and custom properties), `@import`, and the
//! `sourceMappingURL` comment.
//!
//! lightningcss parses and reports each URL with its position; this module maps
//! the position back to the exact bytes of the URL in the source, so that the
//! rewrite touches nothing else.

use std::convert::Infallible;
use std::ops::Range;
use std::sync::{Arc, RwLock};

use lightningcss::dependencies::{Dependency, DependencyOptions};
use lightningcss::rules::CssRule;
use lightningcss::stylesheet::{
    MinifyOptions, ParserOptions, PrinterOptions, StyleAttribute, StyleSheet,
};
use lightningcss::targets::{Browsers, Targets};
use lightningcss::values::image::Image;
use lightningcss::values::url::Url;
use lightningcss::visit_types;
use lightningcss::visitor::{Visit, VisitTypes, Visitor};

use super::MinifiedCode;
use super::placeholder::{Restore, css_string_contents, css_unquoted_safe, restore};
use super::sourcemap::MapRequest;
use super::{Extracted, reference, source_mapping_url};
use crate::asset::{RefKind, Reference};
use crate::diag::{Diagnostic, LineIndex};

/// References in a stylesheet.
pub fn extract_stylesheet(text: &str) -> Extracted {
    let warnings = Arc::new(RwLock::new(Vec::new()));
    let options = ParserOptions {
        error_recovery: true,
        warnings: Some(warnings.clone()),
        ..ParserOptions::default()
    };
    let mut found = Extracted::default();
    let index = LineIndex::new(text.as_bytes());
    match StyleSheet::parse(text, options) {
        Ok(mut sheet) => {
            let mut urls = UrlCollector::default();
            let _ = sheet.visit(&mut urls);
            collect(text, &index, urls, &mut found);
        }
        Err(e) => found.diagnostics.push(parse_error(&e)),
    }
    for w in warnings.read().map(|w| w.clone()).unwrap_or_default() {
        let mut d = parse_error(&w);
        d.message = format!("{} (kept as written; browsers ignore it)", d.message);
        found.diagnostics.push(d);
    }
    if let Some(span) = source_mapping_url(text) {
        found.refs.push(reference(
            &index,
            span.clone(),
            text[span].to_owned(),
            RefKind::SourceMap,
        ));
    }
    found
}

/// References in the declarations of a `style` attribute. `offset` is where
/// `text` starts in the document, and `index` maps document offsets.
pub fn extract_declarations(text: &str, offset: usize, index: &LineIndex<'_>) -> Extracted {
    let mut found = Extracted::default();
    let options = ParserOptions {
        error_recovery: true,
        ..ParserOptions::default()
    };
    if let Ok(mut attr) = StyleAttribute::parse(text, options) {
        let mut urls = UrlCollector::default();
        let _ = attr.visit(&mut urls);
        collect_at(text, offset, index, urls, &mut found);
    }
    found
}

/// References in a `<style>` element whose text starts at `offset` in the document.
pub fn extract_embedded(text: &str, offset: usize, index: &LineIndex<'_>) -> Extracted {
    let mut found = Extracted::default();
    let options = ParserOptions {
        error_recovery: true,
        ..ParserOptions::default()
    };
    match StyleSheet::parse(text, options) {
        Ok(mut sheet) => {
            let mut urls = UrlCollector::default();
            let _ = sheet.visit(&mut urls);
            collect_at(text, offset, index, urls, &mut found);
        }
        Err(e) => {
            let (line, col) = index.line_col(offset);
            found.diagnostics.push(
                Diagnostic::warning("", format!("in <style> element: {}", e.kind)).at(line, col),
            );
        }
    }
    found
}

/// The browsers kiln compiles CSS for unless told otherwise: what was widely
/// available in 2023 (see `docs/config.md`).
pub const DEFAULT_TARGETS: &str =
    "chrome >= 109, edge >= 109, firefox >= 115, safari >= 15.6, ios_saf >= 15.6, samsung >= 21";

/// How CSS is minified (files, `<style>` elements and `style` attributes alike).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CssOptions {
    /// Browsers to compile for: vendor prefixes and syntax follow them.
    pub targets: Option<Browsers>,
}

impl CssOptions {
    /// Options for a browserslist query.
    pub fn from_query(query: &str) -> Result<CssOptions, String> {
        let queries: Vec<&str> = query.split(',').map(str::trim).collect();
        CssOptions::from_queries(&queries)
    }

    /// Targets from browserslist queries, one per item.
    pub fn from_queries<S: AsRef<str>>(queries: &[S]) -> Result<CssOptions, String> {
        Browsers::from_browserslist(queries.iter().map(AsRef::as_ref))
            .map(|targets| CssOptions { targets })
            .map_err(|e| e.to_string())
    }
}

impl Default for CssOptions {
    fn default() -> Self {
        CssOptions::from_query(DEFAULT_TARGETS).expect("the default query is valid")
    }
}

/// Minify a stylesheet. A stylesheet lightningcss cannot parse is an error
/// (the caller then keeps the file as written): minifying around a syntax
/// error could drop rules a browser would keep.
pub fn minify_stylesheet(
    text: &str,
    options: &CssOptions,
    map: Option<MapRequest<'_>>,
) -> Result<MinifiedCode, Diagnostic> {
    let targets = Targets::from(options.targets);
    let parser_options = ParserOptions {
        filename: map.map_or_else(String::new, |m| m.file_name.to_owned()),
        ..ParserOptions::default()
    };
    let mut sheet = StyleSheet::parse(text, parser_options).map_err(|e| not_minified(&e))?;
    sheet
        .minify(MinifyOptions {
            targets,
            ..MinifyOptions::default()
        })
        .map_err(|e| not_minified(&e))?;
    let mut source_map = map.map(|m| {
        let mut sm = parcel_sourcemap::SourceMap::new("/");
        let id = sm.add_source(m.file_name);
        let _ = sm.set_source_content(id as usize, text);
        sm
    });
    let mut printer_options = printer(targets);
    printer_options.source_map = source_map.as_mut();
    let printed = sheet
        .to_css(printer_options)
        .map_err(|e| not_minified(&e))?;
    let printed_map = map.zip(source_map).and_then(|(m, mut sm)| {
        if let Some(mut input) = m
            .input_map
            .and_then(|t| parcel_sourcemap::SourceMap::from_json("/", t).ok())
        {
            let _ = sm.extends(&mut input);
        }
        let json = sm.to_json(None).ok()?;
        let parsed = swc_sourcemap::SourceMap::from_slice(json.as_bytes()).ok()?;
        Some((parsed, m.file_name))
    });
    Ok(restore_urls(
        printed.code,
        printed.dependencies.unwrap_or_default(),
        printed_map,
    ))
}

/// Minify the declarations of a `style` attribute.
pub fn minify_declarations(text: &str, options: &CssOptions) -> Option<MinifiedCode> {
    let targets = Targets::from(options.targets);
    let mut attr = StyleAttribute::parse(text, ParserOptions::default()).ok()?;
    attr.minify(MinifyOptions {
        targets,
        ..MinifyOptions::default()
    });
    let printed = attr.to_css(printer(targets)).ok()?;
    Some(restore_urls(
        printed.code,
        printed.dependencies.unwrap_or_default(),
        None,
    ))
}

fn printer<'a>(targets: Targets) -> PrinterOptions<'a> {
    PrinterOptions {
        minify: true,
        targets,
        analyze_dependencies: Some(DependencyOptions {
            remove_imports: false,
        }),
        ..PrinterOptions::default()
    }
}

fn not_minified<T: std::fmt::Display>(e: &lightningcss::error::Error<T>) -> Diagnostic {
    let mut d = parse_error(e);
    d.message = format!("{}: file kept as written, not minified", d.message);
    d
}

/// Put the URLs back where lightningcss printed placeholders, unquoted when
/// that is safe, and report where they are.
fn restore_urls(
    code: String,
    dependencies: Vec<Dependency>,
    map: Option<(swc_sourcemap::SourceMap, &str)>,
) -> MinifiedCode {
    let mut restores: Vec<Restore> = Vec::new();
    let mut urls: Vec<(String, u32, u32)> = Vec::new();
    for dep in dependencies {
        let (url, placeholder, loc, import) = match dep {
            Dependency::Url(d) => (d.url, d.placeholder, d.loc.start, false),
            Dependency::Import(d) => (d.url, d.placeholder, d.loc.start, true),
        };
        let token = format!("\"{placeholder}\"");
        if restores.iter().any(|r| r.token == token) {
            continue;
        }
        let quoted = import || !css_unquoted_safe(&url);
        restores.push(Restore {
            token,
            before: if quoted { "\"".into() } else { String::new() },
            url_text: if quoted {
                css_string_contents(&url)
            } else {
                url.clone()
            },
            after: if quoted { "\"".into() } else { String::new() },
        });
        urls.push((url, loc.line, loc.column));
    }
    let restored = restore(&code, &restores);
    let shifted = map.as_ref().map(|(printed, _)| {
        let lines = super::sourcemap::InsertedLines {
            byte_columns: true,
            ..Default::default()
        };
        super::sourcemap::shift(printed, &code, lines, &restored.shifts)
    });
    let (mut code, spans) = (restored.text, restored.spans);
    let mut refs: Vec<Reference> = spans
        .into_iter()
        .map(|(span, i)| Reference {
            span,
            url: urls[i].0.clone(),
            kind: RefKind::Embed,
            line: urls[i].1,
            col: urls[i].2,
            pinned: false,
        })
        .collect();
    let map = shifted.zip(map).map(|(sm, (_, file_name))| {
        super::sourcemap::append_comment(&mut code, &mut refs, true, format!("{file_name}.map"));
        super::sourcemap::to_json(&sm)
    });
    MinifiedCode { code, refs, map }
}

fn collect(text: &str, index: &LineIndex<'_>, urls: UrlCollector, found: &mut Extracted) {
    collect_at(text, 0, index, urls, found)
}

fn collect_at(
    text: &str,
    offset: usize,
    index: &LineIndex<'_>,
    urls: UrlCollector,
    found: &mut Extracted,
) {
    for seen in urls.seen {
        let span = offset_of(text, seen.line, seen.column).and_then(|at| {
            // lightningcss may report the position of the whitespace before a
            // value; failing an exact match, take the URL's next occurrence.
            url_span(text, skip_space(text.as_bytes(), at)).or_else(|| {
                let window = &text[at..text.len().min(at + 4096)];
                window
                    .find(&seen.url)
                    .map(|i| at + i..at + i + seen.url.len())
            })
        });
        match span {
            Some(span) if text[span.clone()] == *seen.url => {
                let span = span.start + offset..span.end + offset;
                found
                    .refs
                    .push(reference(index, span, seen.url, RefKind::Embed));
            }
            Some(span) if text[span.clone()].contains('\\') => {
                let (line, col) = index.line_col(span.start + offset);
                found.diagnostics.push(
                    Diagnostic::warning(
                        "",
                        format!(
                            "URL `{}` is written with CSS escapes: left as written",
                            seen.url
                        ),
                    )
                    .at(line, col),
                );
            }
            _ => {
                let (line, col) = index.line_col(offset);
                found.diagnostics.push(
                    Diagnostic::warning(
                        "",
                        format!(
                            "could not locate URL `{}` in the source: left as written",
                            seen.url
                        ),
                    )
                    .at(line, col),
                );
            }
        }
    }
}

fn parse_error<T: std::fmt::Display>(e: &lightningcss::error::Error<T>) -> Diagnostic {
    let d = Diagnostic::warning("", format!("CSS: {}", e.kind));
    match &e.loc {
        Some(loc) => d.at(loc.line + 1, loc.column),
        None => d,
    }
}

struct SeenUrl {
    url: String,
    line: u32,
    column: u32,
}

#[derive(Default)]
struct UrlCollector {
    seen: Vec<SeenUrl>,
}

impl<'i> Visitor<'i> for UrlCollector {
    type Error = Infallible;

    fn visit_types(&self) -> VisitTypes {
        visit_types!(URLS | IMAGES | RULES | PROPERTIES | TOKENS)
    }

    fn visit_url(&mut self, url: &mut Url<'i>) -> Result<(), Self::Error> {
        self.seen.push(SeenUrl {
            url: url.url.to_string(),
            // `Url` positions have 1-based lines, unlike rule positions.
            line: url.loc.line.saturating_sub(1),
            column: url.loc.column,
        });
        Ok(())
    }

    fn visit_image(&mut self, image: &mut Image<'i>) -> Result<(), Self::Error> {
        visit_image_set(self, image)
    }

    fn visit_rule(&mut self, rule: &mut CssRule<'i>) -> Result<(), Self::Error> {
        if let CssRule::Import(import) = rule {
            self.seen.push(SeenUrl {
                url: import.url.to_string(),
                line: import.loc.line,
                column: import.loc.column,
            });
        }
        rule.visit_children(self)
    }
}

/// lightningcss does not descend into `image-set()` options by itself: visit
/// each option's image, and every other image as usual.
fn visit_image_set<'i, V: Visitor<'i, Error = Infallible>>(
    visitor: &mut V,
    image: &mut Image<'i>,
) -> Result<(), Infallible> {
    if let Image::ImageSet(set) = image {
        for option in &mut set.options {
            visitor.visit_image(&mut option.image)?;
        }
        return Ok(());
    }
    image.visit_children(visitor)
}

/// Byte offset of a cssparser position: 0-based line, 1-based column counted in
/// UTF-16 code units; lines end at `\n`, `\r\n`, `\r` or form feed.
fn offset_of(text: &str, line: u32, column: u32) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = 0;
    for _ in 0..line {
        let end = bytes[i..]
            .iter()
            .position(|&b| matches!(b, b'\n' | b'\r' | 0x0C))?
            + i;
        i = end + 1;
        if bytes[end] == b'\r' && bytes.get(i) == Some(&b'\n') {
            i += 1;
        }
    }
    let mut units = 0;
    for (off, ch) in text[i..].char_indices() {
        if units + 1 >= column {
            return Some(i + off);
        }
        units += ch.len_utf16() as u32;
    }
    Some(text.len())
}

/// The span of the URL text of the `url(…)`, string or `@import` starting at `at`.
fn url_span(text: &str, mut at: usize) -> Option<Range<usize>> {
    let bytes = text.as_bytes();
    if starts_with_ignore_case(&bytes[at..], b"@import") {
        at = skip_space(bytes, at + "@import".len());
    }
    if starts_with_ignore_case(&bytes[at..], b"url(") {
        at = skip_space(bytes, at + 4);
        return match bytes.get(at)? {
            b'"' | b'\'' => string_span(bytes, at),
            _ => {
                let start = at;
                while at < bytes.len()
                    && !matches!(bytes[at], b')' | b' ' | b'\t' | b'\n' | b'\r' | 0x0C)
                {
                    at += if bytes[at] == b'\\' { 2 } else { 1 };
                }
                Some(start..at.min(bytes.len()))
            }
        };
    }
    match bytes.get(at)? {
        b'"' | b'\'' => string_span(bytes, at),
        _ => None,
    }
}

fn string_span(bytes: &[u8], at: usize) -> Option<Range<usize>> {
    let quote = bytes[at];
    let mut i = at + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b if b == quote => return Some(at + 1..i),
            _ => i += 1,
        }
    }
    None
}

fn skip_space(bytes: &[u8], mut at: usize) -> usize {
    while at < bytes.len() && matches!(bytes[at], b' ' | b'\t' | b'\n' | b'\r' | 0x0C) {
        at += 1;
    }
    at
}

fn starts_with_ignore_case(bytes: &[u8], prefix: &[u8]) -> bool {
    bytes.len() >= prefix.len() && bytes[..prefix.len()].eq_ignore_ascii_case(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(css: &str) -> Vec<String> {
        let found = extract_stylesheet(css);
        found
            .refs
            .iter()
            .map(|r| {
                assert_eq!(
                    &css[r.span.clone()],
                    r.url,
                    "span must cover the URL exactly"
                );
                r.url.clone()
            })
            .collect()
    }

    #[test]
    fn finds_every_url_form() {
        let css = "@import \"base.css\";\n@import url(print.css) print;\n\
            a { background: url(a.png) }\n\
            b { background: url( 'b c.png' ) }\n\
            c { background-image: image-set(\"c.png\" 1x, url(\"c@2x.png\") 2x) }\n\
            @font-face { font-family: X; src: url(f.woff2) format(\"woff2\"), url(f.ttf) }\n\
            .é { --icon: url(é.svg) }\n\
            /*# sourceMappingURL=x.css.map */";
        let mut got = urls(css);
        got.sort();
        let mut want = vec![
            "base.css",
            "print.css",
            "a.png",
            "b c.png",
            "c.png",
            "c@2x.png",
            "f.woff2",
            "f.ttf",
            "é.svg",
            "x.css.map",
        ];
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn positions_survive_crlf_and_astral_characters() {
        let css = "/* 😀 */\r\n.a{}\r\n.b { background: url(\"x.png\") }";
        assert_eq!(urls(css), ["x.png"]);
        let r = &extract_stylesheet(css).refs[0];
        assert_eq!(r.line, 3);
    }

    #[test]
    fn data_urls_and_externals_are_reported_for_the_linker_to_skip() {
        let css = "a{background:url(data:image/png;base64,AAAA)} b{background:url(https://x.example/a.png)}";
        assert_eq!(urls(css).len(), 2);
    }

    #[test]
    fn invalid_css_gives_a_located_warning() {
        let found =
            extract_stylesheet("a { color: red }\nc{background:url(ok.png)}\n.b[ { width: 1px }");
        assert!(!found.diagnostics.is_empty());
        assert!(found.diagnostics[0].line.is_some());
        assert!(found.refs.iter().any(|r| r.url == "ok.png"));
    }

    #[test]
    fn style_attribute_offsets_are_document_offsets() {
        let doc = "<p style=\"background: url('/a.png')\">";
        let index = LineIndex::new(doc.as_bytes());
        let value = "background: url('/a.png')";
        let found = extract_declarations(value, 10, &index);
        assert_eq!(&doc[found.refs[0].span.clone()], "/a.png");
    }
}

#[cfg(test)]
mod minify_tests {
    use super::*;

    fn minify(css: &str) -> MinifiedCode {
        let m = minify_stylesheet(css, &CssOptions::default(), None).expect("minifies");
        for r in &m.refs {
            let written = &m.code[r.span.clone()];
            assert!(
                written == r.url || written == css_string_contents(&r.url),
                "{written} vs {}",
                r.url
            );
        }
        m
    }

    #[test]
    fn urls_survive_minification_with_exact_spans() {
        let m = minify(
            "/*! license */\n@import \"base.css\";\n.a { background: url( '../img/a.png' ) }\n.b { background: url(\"b c.png\") }\n.c { background: url(a.png) }",
        );
        assert!(m.code.starts_with("/*! license */"), "{}", m.code);
        assert!(m.code.contains("@import \"base.css\""), "{}", m.code);
        assert!(m.code.contains("url(../img/a.png)"), "{}", m.code);
        assert!(m.code.contains("url(\"b c.png\")"), "{}", m.code);
        let urls: Vec<&str> = m.refs.iter().map(|r| r.url.as_str()).collect();
        assert_eq!(urls, ["base.css", "../img/a.png", "b c.png", "a.png"]);
        assert_eq!((m.refs[1].line, m.refs[1].col), (3, 22));
    }

    #[test]
    fn minifies_and_follows_targets() {
        let m =
            minify(".a {\n  color: #ff0000;\n  margin: 0px 0px 0px 0px;\n}\n.a { padding: 0 }\n");
        assert_eq!(m.code, ".a{color:red;margin:0;padding:0}");
        let old = CssOptions::from_query("safari 8").unwrap();
        let prefixed = minify_stylesheet(".a { user-select: none }", &old, None).unwrap();
        assert!(
            prefixed.code.contains("-webkit-user-select"),
            "{}",
            prefixed.code
        );
    }

    #[test]
    fn syntax_errors_refuse_to_minify() {
        let e = minify_stylesheet(
            "a { color: red }\n.b[ { x: y }",
            &CssOptions::default(),
            None,
        )
        .unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("not minified"), "{}", e.message);
    }

    #[test]
    fn declarations_minify() {
        let m = minify_declarations(
            "color: #ff0000; background: url('/a.png')",
            &CssOptions::default(),
        )
        .unwrap();
        assert_eq!(m.code, "color:red;background:url(/a.png)");
        assert_eq!(&m.code[m.refs[0].span.clone()], "/a.png");
    }
}

/// Reads stylesheets for the bundler from the source tree only: imports
/// resolve like every other reference (relative, or root-relative under the
/// site's `base`), and nothing outside the tree is read.
struct TreeProvider<'a> {
    root: &'a std::path::Path,
    base: &'a str,
    texts: elsa::sync::FrozenVec<String>,
}

impl TreeProvider<'_> {
    fn relative(&self, file: &std::path::Path) -> Option<String> {
        let rel = file.strip_prefix(self.root).ok()?;
        let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
        Some(parts?.join("/"))
    }
}

impl lightningcss::bundler::SourceProvider for TreeProvider<'_> {
    type Error = std::io::Error;

    fn read<'a>(&'a self, file: &std::path::Path) -> Result<&'a str, Self::Error> {
        if self.relative(file).is_none() {
            return Err(std::io::Error::other("outside the source directory"));
        }
        Ok(self.texts.push_get(std::fs::read_to_string(file)?))
    }

    fn resolve(
        &self,
        specifier: &str,
        originating_file: &std::path::Path,
    ) -> Result<lightningcss::bundler::ResolveResult, Self::Error> {
        use crate::link::resolve::{Resolution, resolve};
        use lightningcss::bundler::ResolveResult;
        let from = self
            .relative(originating_file)
            .ok_or_else(|| std::io::Error::other("outside the source directory"))?;
        match resolve(specifier, &from, None, self.base) {
            Resolution::External => Ok(ResolveResult::External(specifier.to_owned())),
            Resolution::Local {
                path,
                directory: false,
            } => Ok(ResolveResult::File(self.root.join(path))),
            _ => Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("`{specifier}` is not a stylesheet of the source tree"),
            )),
        }
    }
}

/// `@import`s inlined into one stylesheet, with every `url()` rewritten to be
/// relative to the bundle (`entry`, a path relative to `root`). The result is
/// CSS text for the usual transform (minification, references).
pub fn bundle(root: &std::path::Path, entry: &str, base: &str) -> Result<String, Diagnostic> {
    use lightningcss::bundler::Bundler;
    let provider = TreeProvider {
        root,
        base,
        texts: elsa::sync::FrozenVec::new(),
    };
    let mut bundler = Bundler::new(&provider, None, ParserOptions::default());
    let mut sheet = bundler
        .bundle(&root.join(entry))
        .map_err(|e| Diagnostic::warning("", format!("CSS bundle: {}: kept as written", e.kind)))?;
    let sources: Vec<Option<String>> = sheet
        .sources
        .iter()
        .map(|s| provider.relative(std::path::Path::new(s)))
        .collect();
    let mut rebase = Rebase {
        sources: &sources,
        entry,
        base,
        current: None,
    };
    let _ = sheet.visit(&mut rebase);
    sheet
        .to_css(PrinterOptions::default())
        .map(|printed| printed.code)
        .map_err(|e| Diagnostic::warning("", format!("CSS bundle: {}: kept as written", e.kind)))
}

/// Rewrites each `url()` from its own file's point of view to the bundle's.
struct Rebase<'a> {
    sources: &'a [Option<String>],
    entry: &'a str,
    base: &'a str,
    /// The file the rule being visited came from (urls carry no file).
    current: Option<u32>,
}

impl<'i> Visitor<'i> for Rebase<'_> {
    type Error = Infallible;

    fn visit_types(&self) -> VisitTypes {
        visit_types!(URLS | IMAGES | RULES | PROPERTIES | TOKENS)
    }

    fn visit_rule(&mut self, rule: &mut CssRule<'i>) -> Result<(), Self::Error> {
        let outer = self.current;
        if let Some(index) = rule_source(rule) {
            self.current = Some(index);
        }
        let result = rule.visit_children(self);
        self.current = outer;
        result
    }

    fn visit_url(&mut self, url: &mut Url<'i>) -> Result<(), Self::Error> {
        let Some(Some(from)) = self.current.and_then(|i| self.sources.get(i as usize)) else {
            return Ok(());
        };
        if let Some(rebased) = rebase_url(&url.url, from, self.entry, self.base) {
            url.url = rebased.into();
        }
        Ok(())
    }

    fn visit_image(&mut self, image: &mut Image<'i>) -> Result<(), Self::Error> {
        visit_image_set(self, image)
    }
}

/// The source file (index into the sheet's sources) of a rule.
fn rule_source(rule: &CssRule<'_>) -> Option<u32> {
    let loc = match rule {
        CssRule::Style(r) => r.loc,
        CssRule::Media(r) => r.loc,
        CssRule::FontFace(r) => r.loc,
        CssRule::Supports(r) => r.loc,
        CssRule::Keyframes(r) => r.loc,
        CssRule::Page(r) => r.loc,
        CssRule::LayerBlock(r) => r.loc,
        CssRule::Container(r) => r.loc,
        CssRule::Import(r) => r.loc,
        _ => return None,
    };
    Some(loc.source_index)
}

/// `url`, written in the file `from`, as seen from the file `to` (both
/// source-relative). Root-relative, external and out-of-tree URLs stay.
fn rebase_url(url: &str, from: &str, to: &str, base: &str) -> Option<String> {
    use crate::link::resolve::{Resolution, path_part, resolve};
    if from == to || url.starts_with('/') {
        return None;
    }
    let Resolution::Local { path, directory } = resolve(url, from, None, base) else {
        return None;
    };
    let suffix = &url[path_part(url).len()..];
    let to_dir: Vec<&str> = to.split('/').collect::<Vec<_>>()[..to.matches('/').count()].to_vec();
    let target: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let common = to_dir
        .iter()
        .zip(&target)
        .take_while(|(a, b)| a == b)
        .count();
    let mut parts: Vec<String> = vec!["..".to_owned(); to_dir.len() - common];
    parts.extend(
        target[common..]
            .iter()
            .map(|s| crate::link::rewrite::encode_file_name(s)),
    );
    let mut rebased = parts.join("/");
    if directory {
        rebased.push('/');
    }
    if rebased.is_empty() {
        rebased.push_str("./");
    }
    Some(format!("{rebased}{suffix}"))
}

#[cfg(test)]
mod bundle_tests {
    use super::*;

    #[test]
    fn urls_are_rebased_to_the_bundle() {
        assert_eq!(
            rebase_url(
                "../../img/a.png?v=1",
                "css/parts/x.css",
                "css/main.css",
                "/"
            )
            .as_deref(),
            Some("../img/a.png?v=1")
        );
        assert_eq!(
            rebase_url("../img/a.png", "css/parts/x.css", "css/main.css", "/").as_deref(),
            Some("img/a.png")
        );
        assert_eq!(
            rebase_url("icons/b c.svg", "css/parts/x.css", "css/main.css", "/").as_deref(),
            Some("parts/icons/b%20c.svg")
        );
        assert_eq!(
            rebase_url("/img/a.png", "css/parts/x.css", "main.css", "/"),
            None
        );
        assert_eq!(
            rebase_url("https://x.example/a.png", "a/x.css", "main.css", "/"),
            None
        );
        assert_eq!(rebase_url("a.png", "css/x.css", "css/x.css", "/"), None);
    }

    #[test]
    fn imports_are_inlined_and_urls_follow() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("css/parts")).unwrap();
        std::fs::write(root.join("css/main.css"), "@import url(https://fonts.example/f.css);\n@import \"parts/x.css\";\nbody { color: red }\n").unwrap();
        std::fs::write(
            root.join("css/parts/x.css"),
            ".x { background: url(../../img/a.png) }\n",
        )
        .unwrap();
        std::fs::write(root.join("secret.css"), ".s{}").unwrap();
        let css = bundle(root, "css/main.css", "/").unwrap_or_else(|e| panic!("{}", e.message));
        assert!(css.contains("url(\"../img/a.png\")"), "{css}");
        assert!(!css.contains("parts/x.css"), "{css}");
        assert!(css.contains("fonts.example"), "{css}");
        std::fs::write(
            root.join("css/evil.css"),
            "@import \"../../../../etc/x.css\";",
        )
        .unwrap();
        assert!(bundle(root, "css/evil.css", "/").is_err());
    }
}
