//! HTML references with lol_html: every attribute that holds a URL (`src`,
//! `href`, `srcset`, `poster`, `data`, `<meta>` images…), `style` attributes,
//! `<style>` elements and inline module scripts, located to the byte so that
//! the rewrite changes nothing else in the document. `<base href>` is reported
//! so that the linker resolves against it.
//!
//! Pages that a framework hydrates are minified around their hydrated roots
//! (`Hydration`): inside a root, text, comments, inline code and attribute
//! values stay byte for byte, and URLs are pinned (never rewritten), because
//! the client compares them with what it renders.

use std::cell::RefCell;
use std::ops::Range;

use std::cell::Cell;
use std::rc::Rc;

use lol_html::html_content::{Element, TextChunk, TextType};
use lol_html::{HtmlRewriter, Settings, doc_comments, doc_text, element, text};

use super::css::CssOptions;
use super::js::{JsOptions, ScriptKind};
use super::{Extracted, css, invalid_utf8, js, reference};
use crate::asset::{ImgTag, RefKind, Reference};
use crate::diag::{Diagnostic, LineIndex};

/// `<meta name|property>` values whose `content` is an image URL.
const IMAGE_META: &[&str] = &[
    "og:image",
    "og:image:url",
    "og:image:secure_url",
    "og:video",
    "og:audio",
    "twitter:image",
    "twitter:image:src",
    "msapplication-tileimage",
    "msapplication-config",
];

/// `<link rel>` values that load the linked resource.
const LOADING_RELS: &[&str] = &[
    "stylesheet",
    "icon",
    "shortcut",
    "apple-touch-icon",
    "apple-touch-icon-precomposed",
    "apple-touch-startup-image",
    "mask-icon",
    "fluid-icon",
    "manifest",
    "preload",
    "modulepreload",
    "prefetch",
];

/// What the text of the current raw-text element holds.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Inline {
    Style,
    Script(ScriptKind),
    Other,
}

/// How HTML is minified. Whitespace between elements is collapsed, never
/// removed (CSS decides what renders inline), except inside `<head>`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HtmlOptions {
    /// Minify `<style>` elements and `style` attributes. Default: the CSS options.
    pub css: Option<CssOptions>,
    /// Minify inline scripts. Default: the JS options.
    pub js: Option<JsOptions>,
    /// Collapse runs of whitespace in text to one space. Default: true.
    pub collapse_whitespace: bool,
    /// Collapse a run holding a newline to a newline rather than a space (for
    /// pages whose CSS uses `white-space: pre-line`). Default: false.
    pub keep_newlines: bool,
    /// Remove comments (conditional comments and `<!--!`/`<!--#` are kept). Default: true.
    pub remove_comments: bool,
    /// Leave text holding template syntax (`{{ }}`, `{% %}`, `{# #}`) and all
    /// comments as written. Default: false.
    pub templates: bool,
    /// Give `<img>` elements after the first N (in document order)
    /// `loading="lazy"` and `decoding="async"`, unless they say otherwise or
    /// have `fetchpriority="high"`. Default: `Some(2)`.
    pub lazy_images_after: Option<usize>,
}

impl Default for HtmlOptions {
    fn default() -> Self {
        HtmlOptions {
            css: Some(CssOptions::default()),
            js: Some(JsOptions::default()),
            collapse_whitespace: true,
            keep_newlines: false,
            remove_comments: true,
            templates: false,
            lazy_images_after: Some(2),
        }
    }
}

/// A replacement of source bytes, with the references inside the new text
/// (spans relative to it).
struct Edit {
    range: Range<usize>,
    text: String,
    refs: Vec<Reference>,
    kind: EditKind,
}

/// What an edit changes, which decides whether it may touch a hydrated root.
#[derive(Debug, Clone, Copy, PartialEq)]
enum EditKind {
    /// Whitespace inside a start tag: the DOM stays the same. Allowed anywhere.
    Tag,
    /// Whitespace in text.
    Text,
    /// A removed comment.
    Comment,
    /// Minified `<style>` or `<script>` contents.
    Inline(Inline),
    /// A minified `style` attribute.
    StyleAttribute,
    /// `loading`/`decoding` attributes added to an `<img>`.
    Lazy,
}

impl Edit {
    fn new(range: Range<usize>, text: impl Into<String>, kind: EditKind) -> Edit {
        Edit {
            range,
            text: text.into(),
            refs: Vec::new(),
            kind,
        }
    }
}

struct State<'a> {
    text: &'a str,
    index: LineIndex<'a>,
    found: Extracted,
    inline: Inline,
    buffer: String,
    buffer_span: Option<Range<usize>>,
    minify: Option<HtmlOptions>,
    edits: Vec<Edit>,
    /// Depth of elements whose whitespace renders as written (`<pre>`…).
    preserve: Rc<Cell<u32>>,
    /// Between `<head>` and the first element of the body.
    in_head: Rc<Cell<bool>>,
    /// `<img>` elements seen so far.
    images: usize,
    /// Depth of `<picture>` elements.
    pictures: Rc<Cell<u32>>,
    hydration: Hydration,
}

/// References in an HTML document. The document's `<base href>`, if any, is
/// returned as [`Extracted::base`].
pub fn extract(bytes: &[u8]) -> Extracted {
    match std::str::from_utf8(bytes) {
        Ok(text) => run(text, None).0,
        Err(e) => Extracted {
            diagnostics: vec![invalid_utf8(bytes, e)],
            ..Extracted::default()
        },
    }
}

/// A minified document with its references (spans into `code`).
#[derive(Debug)]
pub struct MinifiedHtml {
    pub code: String,
    pub found: Extracted,
}

/// Minify an HTML document: collapse whitespace, drop comments, minify
/// inline CSS and JavaScript; attributes and everything else stay byte for
/// byte.
pub fn minify(bytes: &[u8], options: &HtmlOptions) -> Result<MinifiedHtml, Diagnostic> {
    let text = std::str::from_utf8(bytes).map_err(|e| invalid_utf8(bytes, e))?;
    let (mut found, edits) = run(text, Some(*options));
    let (code, refs, moves) = apply_edits(text, std::mem::take(&mut found.refs), edits);
    found.refs = refs;
    for img in &mut found.images {
        img.tag = moves.span(&img.tag);
        img.attrs_at = moves.at(img.attrs_at);
        img.src = img.src.as_ref().map(|r| moves.span(r));
        img.srcset = img.srcset.as_ref().map(|r| moves.span(r));
        img.sizes = img.sizes.as_ref().map(|r| moves.span(r));
        img.media = img.media.as_ref().map(|r| moves.span(r));
    }
    Ok(MinifiedHtml { code, found })
}

fn run(text: &str, minify: Option<HtmlOptions>) -> (Extracted, Vec<Edit>) {
    let state = RefCell::new(State {
        text,
        index: LineIndex::new(text.as_bytes()),
        found: Extracted::default(),
        inline: Inline::Other,
        buffer: String::new(),
        buffer_span: None,
        minify,
        edits: Vec::new(),
        preserve: Rc::new(Cell::new(0)),
        in_head: Rc::new(Cell::new(false)),
        images: 0,
        pictures: Rc::new(Cell::new(0)),
        hydration: Hydration::default(),
    });
    let mut settings = Settings::new()
        .append_element_content_handler(element!("*", |el| {
            on_element(el, &mut state.borrow_mut());
            Ok(())
        }))
        .append_element_content_handler(text!("style, script", |chunk| {
            on_raw_text(chunk, &mut state.borrow_mut());
            Ok(())
        }))
        .with_strict(false);
    settings = settings.append_document_content_handler(doc_comments!(|comment| {
        on_comment(comment, &mut state.borrow_mut());
        Ok(())
    }));
    if minify.is_some() {
        settings = settings.append_document_content_handler(doc_text!(|chunk| {
            on_data_text(chunk, &mut state.borrow_mut());
            Ok(())
        }));
    }
    let mut rewriter = HtmlRewriter::new(settings, |_: &[u8]| {});
    let result = rewriter
        .write(text.as_bytes())
        .and_then(|()| rewriter.end());
    let mut state = state.into_inner();
    if let Err(e) = result {
        state.found.diagnostics.push(Diagnostic::warning(
            "",
            format!("HTML could not be parsed ({e}): references after this point not rewritten"),
        ));
        state.edits.clear();
    }
    protect_hydrated_roots(&mut state);
    (state.found, state.edits)
}

/// The regions of a page that a framework hydrates, found from the
/// frameworks' own signatures. The client compares these with what it
/// renders (text byte for byte, comments as fragment markers), so they stay
/// as written; see [`protect_hydrated_roots`].
#[derive(Debug, Default)]
struct Hydration {
    /// Hydrated elements, from their start tag to the end of their end tag
    /// (`usize::MAX` while open, or when the end tag never comes).
    roots: Rc<std::cell::RefCell<Vec<Range<usize>>>>,
    /// Where the body begins: `<body>`, or the first element that cannot be
    /// in the head.
    body_start: Option<usize>,
    /// The whole body is hydrated (SvelteKit, Solid, markers outside any
    /// known root).
    body: bool,
    /// The whole document is hydrated (Next's App Router, Remix and React
    /// Router, Qwik on `<html>`).
    document: bool,
    /// Positions of framework marker comments.
    markers: Vec<usize>,
    /// Elements whose text a script reads back by character count: Sphinx's
    /// search cuts each result's summary from the `textContent` of the
    /// page's `[role="main"]` (240 characters around the match), so its
    /// whitespace stays as written (comments and tags may still change).
    read_back: Rc<std::cell::RefCell<Vec<Range<usize>>>>,
    /// A Sphinx page (`<html data-content_root>`, `documentation_options.js`).
    sphinx: bool,
}

/// `id`s of the elements frameworks mount and hydrate: Vue and VitePress
/// (`app`), Nuxt, Next's Pages Router, React roots, Gatsby, Svelte.
const ROOT_IDS: &[&str] = &["app", "__nuxt", "__next", "root", "___gatsby", "svelte"];

/// Attributes that mark a hydrated element: Vue 2 SSR, React 16 SSR,
/// Angular, Qwik containers.
const ROOT_ATTRIBUTES: &[&str] = &[
    "data-server-rendered",
    "data-reactroot",
    "ng-version",
    "ng-server-context",
    "q:container",
];

/// Inline script text by which a framework hydrates the whole document or
/// the body.
const DOCUMENT_SCRIPTS: &[&str] = &["self.__next_f", "__remixContext", "__reactRouterContext"];
const BODY_SCRIPTS: &[&str] = &["__sveltekit_", "_$HY"];

impl Hydration {
    fn on_element(&mut self, el: &mut Element<'_, '_>, tag: &str) {
        let start = el.source_location().bytes().start;
        if self.body_start.is_none() && (tag == "body" || !HEAD.contains(&tag)) {
            self.body_start = Some(start);
        }
        let html = el.namespace_uri() == HTML_NS;
        let id = el.get_attribute("id");
        let root = ROOT_IDS.contains(&id.as_deref().unwrap_or_default())
            || ROOT_ATTRIBUTES.iter().any(|a| el.has_attribute(a))
            // Astro islands, Lit and Stencil components: custom elements.
            || (html && tag.contains('-'))
            // Declarative shadow DOM (Lit SSR).
            || (tag == "template"
                && (el.has_attribute("shadowrootmode") || el.has_attribute("shadowroot")));
        if el.attributes().iter().any(|a| {
            let name = a.name();
            name.starts_with("data-sveltekit-") || name == "data-hk"
        }) {
            self.body = true;
        }
        if tag == "html" && el.has_attribute("q:container") {
            self.document = true;
        }
        self.sphinx |= (tag == "html" && el.has_attribute("data-content_root"))
            || (tag == "script"
                && el
                    .get_attribute("src")
                    .is_some_and(|src| src.contains("documentation_options.js")));
        if !el.can_have_content() || el.is_self_closing() {
            return;
        }
        if root {
            track_region(el, start, &self.roots);
        } else if self.sphinx && el.get_attribute("role").as_deref() == Some("main") {
            track_region(el, start, &self.read_back);
        }
    }

    /// Whether `at` is inside an element whose text a script reads back.
    fn read_back(&self, at: usize) -> bool {
        self.read_back
            .borrow()
            .iter()
            .any(|r| r.start <= at && at < r.end)
    }

    fn on_script(&mut self, code: &str) {
        if DOCUMENT_SCRIPTS.iter().any(|s| code.contains(s)) {
            self.document = true;
        } else if BODY_SCRIPTS.iter().any(|s| code.contains(s)) {
            self.body = true;
        }
    }

    /// Whether position `at` is inside a region known to be hydrated so far.
    fn inside(&self, at: usize) -> bool {
        self.document || (self.body && self.body_start.is_some_and(|b| at >= b)) || self.in_root(at)
    }

    fn in_root(&self, at: usize) -> bool {
        self.roots
            .borrow()
            .iter()
            .any(|r| r.start <= at && at < r.end)
    }

    /// Settle the page once parsed: a marker comment outside every root means
    /// the body is hydrated as a whole.
    fn finish(&mut self) {
        let stray = self
            .markers
            .iter()
            .any(|&m| !self.in_root(m) && self.body_start.is_some_and(|b| m >= b));
        self.body |= stray;
    }
}

/// Record an element's byte range in `regions`: from its start tag to the end
/// of its end tag (`usize::MAX` until that comes, or if it never does).
fn track_region(
    el: &mut Element<'_, '_>,
    start: usize,
    regions: &Rc<std::cell::RefCell<Vec<Range<usize>>>>,
) {
    let regions = Rc::clone(regions);
    let i = {
        let mut r = regions.borrow_mut();
        r.push(start..usize::MAX);
        r.len() - 1
    };
    let _ = el.on_end_tag(Box::new(move |end| {
        regions.borrow_mut()[i].end = end.source_location().bytes().end;
        Ok(())
    }));
}

/// Whether a comment is one a hydrating framework places and looks for:
/// fragment and Suspense boundaries (`<!--[-->`, `<!--]-->`, `<!--$-->`,
/// `<!--/$-->`, `<!--$?-->`), empty placeholders and React's text separators
/// (`<!---->`, `<!-- -->`), Lit parts, Qwik virtual nodes and text, Astro,
/// Vue teleports, Svelte 4's `{@html}` bounds, Stencil and Marko.
fn is_framework_marker(text: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "lit-part",
        "/lit-part",
        "?lit$",
        "lit-node",
        "qv",
        "/qv",
        "q:",
        "t=",
        "astro:",
        "teleport",
        "HTML_TAG_",
        "ngtns",
        "ngetn",
        "M#",
        "M/",
        "M^",
        "M*",
        "s.",
        "t.",
        "o.",
        "c.",
    ];
    let t = text.trim();
    (t.len() <= 4
        && t.chars().all(|c| {
            matches!(c, '[' | ']' | '!' | '$' | '?' | '/' | '#' | '-') || c.is_ascii_digit()
        }))
        || PREFIXES.iter().any(|p| t.starts_with(p))
}

/// Keep hydrated roots as written: drop every edit inside one but the start
/// tags' whitespace, pin the references there (the client renders the URLs
/// as written), and leave their images alone (no `<picture>`, no sizes).
/// References of inline code whose minified form is dropped are extracted
/// again from the source.
fn protect_hydrated_roots(state: &mut State<'_>) {
    state.hydration.finish();
    let h = &state.hydration;
    let edits = std::mem::take(&mut state.edits);
    for edit in edits {
        let read_back = edit.kind == EditKind::Text && h.read_back(edit.range.start);
        if edit.kind == EditKind::Tag || (!h.inside(edit.range.start) && !read_back) {
            state.edits.push(edit);
            continue;
        }
        let raw = &state.text[edit.range.clone()];
        let found = match edit.kind {
            EditKind::Inline(Inline::Style) => {
                css::extract_embedded(raw, edit.range.start, &state.index)
            }
            EditKind::Inline(_) => js::extract_at(raw, edit.range.start, &state.index),
            EditKind::StyleAttribute if !raw.contains('&') => {
                css::extract_declarations(raw, edit.range.start, &state.index)
            }
            _ => continue,
        };
        state.found.refs.extend(found.refs);
    }
    for r in &mut state.found.refs {
        r.pinned |= h.inside(r.span.start);
    }
    state.found.images.retain(|img| !h.inside(img.tag.start));
}

/// Elements in which whitespace renders as written.
const PRESERVE: &[&str] = &["pre", "textarea", "listing", "plaintext", "xmp"];
/// Elements that belong in `<head>`; any other element starts the body.
const HEAD: &[&str] = &[
    "html", "head", "title", "meta", "link", "style", "script", "base", "noscript", "template",
];

fn on_element(el: &mut Element<'_, '_>, state: &mut State<'_>) {
    let tag = el.tag_name();
    state.hydration.on_element(el, &tag);
    state.inline = match tag.as_str() {
        "style" => Inline::Style,
        "script" if el.get_attribute("src").is_none() => {
            match script_kind(el.get_attribute("type")) {
                Some(kind) => Inline::Script(kind),
                None => Inline::Other,
            }
        }
        "script" => Inline::Other,
        _ => state.inline,
    };
    if el.namespace_uri() == HTML_NS {
        if tag == "picture" {
            let depth = Rc::clone(&state.pictures);
            depth.set(depth.get() + 1);
            let _ = el.on_end_tag(Box::new(move |_| {
                depth.set(depth.get().saturating_sub(1));
                Ok(())
            }));
        } else if tag == "img" {
            let img = img_tag(el, &tag, state);
            state.found.images.push(img);
        } else if tag == "source" && state.pictures.get() > 0 {
            let mut source = img_tag(el, &tag, state);
            source.source = true;
            source.src = None;
            source.source_type = el
                .get_attribute("type")
                .map(|t| t.trim().to_ascii_lowercase());
            state.found.images.push(source);
        } else if tag == "link" && preloads_image(el) {
            let img = preload_tag(el, state);
            state.found.images.push(img);
        }
    }
    if let Some(options) = state.minify {
        track_context(el, &tag, state);
        let range = el.source_location().bytes();
        let void = VOID.contains(&tag.as_str()) && el.namespace_uri() == HTML_NS;
        if tag == "img" && el.namespace_uri() == HTML_NS {
            state.images += 1;
            if let Some(text) = lazy_attributes(el, state.images, options.lazy_images_after) {
                // Right after the tag name, before any edit inside the tag.
                let at = range.start + 1 + tag.len();
                state.edits.push(Edit::new(at..at, text, EditKind::Lazy));
            }
        }
        if let Some(raw) = state.text.get(range.clone()) {
            for (r, text) in start_tag_edits(raw, void) {
                state.edits.push(Edit::new(
                    range.start + r.start..range.start + r.end,
                    text,
                    EditKind::Tag,
                ));
            }
        }
    }
    let rel = el
        .get_attribute("rel")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let meta_name = el
        .get_attribute("property")
        .or_else(|| el.get_attribute("name"))
        .unwrap_or_default()
        .to_ascii_lowercase();
    for attr in el.attributes() {
        let Some(location) = attr.value_source_location() else {
            continue;
        };
        let span = location.bytes();
        let name = attr.name();
        if tag == "base" && name == "href" {
            if state.found.base.is_none() {
                state.found.base = Some(decode_character_references(
                    &state.text[trim_span(state.text, span)],
                ));
            }
        } else if name == "style" {
            on_style_attribute(span, state);
        } else if name == "srcset" || (tag == "link" && name == "imagesrcset") {
            on_srcset(span, state);
        } else if let Some(mut kind) = url_attribute(&tag, &name, &rel, &meta_name) {
            let module = (tag == "script"
                && script_kind(el.get_attribute("type")) == Some(ScriptKind::Module))
                || (tag == "link" && rel.split_ascii_whitespace().any(|r| r == "modulepreload"));
            if module {
                kind = RefKind::Import;
            }
            let span = trim_span(state.text, span);
            if !span.is_empty() {
                push_url(span, kind, state);
            }
        }
    }
}

/// An `<img>` start tag and the values the link stage reads, at their source
/// positions.
fn img_tag(el: &Element<'_, '_>, tag: &str, state: &State<'_>) -> ImgTag {
    let range = el.source_location().bytes();
    let mut img = ImgTag {
        attrs_at: range.start + 1 + tag.len(),
        tag: range,
        sized: el.has_attribute("width") || el.has_attribute("height"),
        in_picture: state.pictures.get() > 0,
        ..ImgTag::default()
    };
    for attr in el.attributes() {
        let name = attr.name();
        img.scripted |= lazy_loader_attribute(&name, &attr.value());
        let Some(location) = attr.value_source_location() else {
            continue;
        };
        let span = trim_span(state.text, location.bytes());
        // The first of repeated attributes counts, as in browsers.
        let slot = match name.as_str() {
            "src" => &mut img.src,
            "srcset" => &mut img.srcset,
            "sizes" => &mut img.sizes,
            "media" => &mut img.media,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(span);
        }
    }
    img
}

/// Attributes by which a script swaps an image in (lazysizes, lozad,
/// vanilla-lazyload, slick's `data-lazy`, echo.js, layzr, jQuery Lazy's
/// `data-original`…), or the `lazyload` class they look for.
fn lazy_loader_attribute(name: &str, value: &str) -> bool {
    const WORDS: &[&str] = &["src", "lazy", "original", "echo", "normal", "retina", "bg"];
    if let Some(rest) = name.strip_prefix("data-") {
        return WORDS.iter().any(|w| rest.contains(w));
    }
    name == "class"
        && value
            .split_ascii_whitespace()
            .any(|c| c.to_ascii_lowercase().contains("lazy"))
}

/// Whether a `<link>` preloads an image.
fn preloads_image(el: &Element<'_, '_>) -> bool {
    let rel = el.get_attribute("rel").unwrap_or_default();
    rel.split_ascii_whitespace()
        .any(|r| r.eq_ignore_ascii_case("preload"))
        && el
            .get_attribute("as")
            .is_some_and(|a| a.trim().eq_ignore_ascii_case("image"))
}

/// A `<link rel=preload as=image>`, recorded like an `<img>`: `href` as its
/// `src`, `imagesrcset` as its `srcset`.
fn preload_tag(el: &Element<'_, '_>, state: &State<'_>) -> ImgTag {
    let range = el.source_location().bytes();
    let mut tag = ImgTag {
        attrs_at: range.start + "<link".len(),
        tag: range,
        preload: true,
        ..ImgTag::default()
    };
    for attr in el.attributes() {
        let Some(location) = attr.value_source_location() else {
            continue;
        };
        let span = trim_span(state.text, location.bytes());
        let slot = match attr.name().as_str() {
            "href" => &mut tag.src,
            "imagesrcset" => &mut tag.srcset,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(span);
        }
    }
    tag
}

/// The attributes to add to the `n`th `<img>` (1-based) of a document:
/// `loading="lazy"` and `decoding="async"`, each unless the tag has its own,
/// and none for the first `after` images or a `fetchpriority="high"` one.
fn lazy_attributes(el: &Element<'_, '_>, n: usize, after: Option<usize>) -> Option<String> {
    let after = after?;
    let high = el
        .get_attribute("fetchpriority")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("high"));
    if n <= after || high {
        return None;
    }
    let mut text = String::new();
    if !el.has_attribute("loading") {
        text.push_str(" loading=\"lazy\"");
    }
    if !el.has_attribute("decoding") {
        text.push_str(" decoding=\"async\"");
    }
    (!text.is_empty()).then_some(text)
}

const HTML_NS: &str = "http://www.w3.org/1999/xhtml";
/// HTML elements that never have content: their ` />` is only noise.
const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
    "wbr",
];

/// Edits that tidy a start tag without touching names or values: whitespace
/// between attributes becomes one space, whitespace before `>` and around
/// `=` goes, and a void element's ` /` goes. In foreign content (SVG) `/>`
/// closes the element and stays.
fn start_tag_edits(raw: &str, void: bool) -> Vec<(Range<usize>, String)> {
    let b = raw.as_bytes();
    let mut edits = Vec::new();
    if b.first() != Some(&b'<') || b.last() != Some(&b'>') {
        return edits;
    }
    let space = |i: usize| i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0C);
    let skip_space = |mut i: usize| {
        while space(i) {
            i += 1;
        }
        i
    };
    let mut i = 1;
    while i < b.len() && !space(i) && b[i] != b'/' && b[i] != b'>' {
        i += 1;
    }
    let mut unquoted_before = false;
    loop {
        let gap = i;
        i = skip_space(i);
        if i >= b.len() {
            return Vec::new();
        }
        if b[i] == b'>' {
            if i > gap {
                edits.push((gap..i, String::new()));
            }
            return edits;
        }
        if b[i] == b'/' && b.get(i + 1) == Some(&b'>') {
            if void {
                edits.push((gap..i + 1, String::new()));
            } else if i > gap && !unquoted_before {
                edits.push((gap..i, String::new()));
            }
            return edits;
        }
        if b[i] == b'/' {
            return edits; // a stray slash: leave the rest as written
        }
        if i - gap != 1 || b[gap] != b' ' {
            if gap == i {
                // Attributes written without a space between them stay so.
            } else {
                edits.push((gap..i, " ".to_owned()));
            }
        }
        // The attribute name.
        let name_start = i;
        while i < b.len() && !space(i) && !matches!(b[i], b'=' | b'>' | b'/') {
            i += 1;
        }
        if i == name_start {
            return edits;
        }
        let after_name = i;
        let j = skip_space(i);
        unquoted_before = false;
        if b.get(j) != Some(&b'=') {
            continue;
        }
        if j > after_name {
            edits.push((after_name..j, String::new()));
        }
        let k = skip_space(j + 1);
        if k > j + 1 {
            edits.push((j + 1..k, String::new()));
        }
        i = k;
        match b.get(i) {
            Some(&q) if q == b'"' || q == b'\'' => {
                i += 1;
                while i < b.len() && b[i] != q {
                    i += 1;
                }
                i += 1;
            }
            Some(_) => {
                while i < b.len() && !space(i) && b[i] != b'>' {
                    i += 1;
                }
                unquoted_before = true;
            }
            None => return Vec::new(),
        }
    }
}

/// Keep track of `<pre>`-like elements and of the head, for whitespace.
fn track_context(el: &mut Element<'_, '_>, tag: &str, state: &mut State<'_>) {
    if PRESERVE.contains(&tag) {
        let depth = Rc::clone(&state.preserve);
        depth.set(depth.get() + 1);
        let closed = el.on_end_tag(Box::new(move |_| {
            depth.set(depth.get().saturating_sub(1));
            Ok(())
        }));
        if closed.is_err() {
            // No end tag can come: whitespace stays preserved to the end, the safe side.
        }
    }
    if tag == "head" {
        let in_head = Rc::clone(&state.in_head);
        in_head.set(true);
        let _ = el.on_end_tag(Box::new(move |_| {
            in_head.set(false);
            Ok(())
        }));
    } else if !HEAD.contains(&tag) {
        state.in_head.set(false);
    }
}

fn on_raw_text(chunk: &mut TextChunk<'_>, state: &mut State<'_>) {
    if state.inline == Inline::Other {
        return;
    }
    let location = chunk.source_location().bytes();
    let contiguous = match &state.buffer_span {
        None => true,
        Some(span) => span.end == location.start,
    };
    if contiguous {
        state.buffer.push_str(chunk.as_str());
        let start = state
            .buffer_span
            .as_ref()
            .map_or(location.start, |s| s.start);
        state.buffer_span = Some(start..location.end);
    } else {
        state.buffer_span = Some(usize::MAX..usize::MAX);
    }
    if !chunk.last_in_text_node() {
        return;
    }
    let buffer = std::mem::take(&mut state.buffer);
    let span = state.buffer_span.take();
    let Some(span) = span.filter(|s| s.start != usize::MAX && !buffer.trim().is_empty()) else {
        return;
    };
    if matches!(state.inline, Inline::Script(_)) {
        state.hydration.on_script(&buffer);
    }
    if !state.hydration.inside(span.start)
        && let Some(edit) = minify_raw_text(&buffer, &span, state)
    {
        state.edits.push(edit);
        return;
    }
    let found = match state.inline {
        Inline::Style => css::extract_embedded(&buffer, span.start, &state.index),
        _ => js::extract_at(&buffer, span.start, &state.index),
    };
    state.found.refs.extend(found.refs);
    state.found.diagnostics.extend(found.diagnostics);
}

/// Minify the contents of a `<style>` or `<script>` element, when asked and
/// when it gets smaller; `None` keeps it as written.
fn minify_raw_text(buffer: &str, span: &Range<usize>, state: &mut State<'_>) -> Option<Edit> {
    let options = state.minify?;
    let located = |d: Diagnostic, state: &State<'_>| {
        let (line, col) = state.index.line_col(span.start);
        let (dl, dc) = (d.line.unwrap_or(1), d.col.unwrap_or(1));
        let col = if dl == 1 { col + dc - 1 } else { dc };
        Diagnostic {
            line: Some(line + dl - 1),
            col: Some(col),
            ..d
        }
    };
    let relocate = |refs: Vec<Reference>, state: &State<'_>| -> Vec<Reference> {
        let (line, col) = state.index.line_col(span.start);
        refs.into_iter()
            .map(|r| Reference {
                col: if r.line == 1 { col + r.col - 1 } else { r.col },
                line: line + r.line - 1,
                ..r
            })
            .collect()
    };
    let (code, refs) = match state.inline {
        Inline::Style => match css::minify_stylesheet(buffer, options.css.as_ref()?, None) {
            Ok(m) => (m.code, m.refs),
            Err(d) => {
                let d = located(d, state);
                state.found.diagnostics.push(d);
                return None;
            }
        },
        Inline::Script(kind) => match js::minify(buffer, kind, true, options.js.as_ref()?, None) {
            Ok(m) => (m.code, m.refs),
            Err(d) => {
                let d = located(d, state);
                state.found.diagnostics.push(d);
                return None;
            }
        },
        Inline::Other => return None,
    };
    // Minified CSS may print an escaped `</style` literally; it must not end
    // the element (scripts are escaped by the JS minifier).
    let closes = code.to_ascii_lowercase().contains("</style");
    (code.len() < buffer.len() && !closes).then(|| Edit {
        range: span.clone(),
        text: code,
        refs: relocate(refs, state),
        kind: EditKind::Inline(state.inline),
    })
}

/// Collapse whitespace in text that renders.
fn on_data_text(chunk: &mut TextChunk<'_>, state: &mut State<'_>) {
    let Some(options) = state.minify else { return };
    if !options.collapse_whitespace
        || chunk.text_type() != TextType::Data
        || state.preserve.get() > 0
    {
        return;
    }
    let text = chunk.as_str();
    let location = chunk.source_location().bytes();
    if location.len() != text.len() || (options.templates && has_template_syntax(text)) {
        return;
    }
    let drop_all = state.in_head.get() && text.bytes().all(is_space_byte);
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if !is_space_byte(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && is_space_byte(bytes[i]) {
            i += 1;
        }
        let run = &text[start..i];
        let replacement = if drop_all {
            ""
        } else if options.keep_newlines && run.contains('\n') {
            "\n"
        } else {
            " "
        };
        if run != replacement {
            state.edits.push(Edit::new(
                location.start + start..location.start + i,
                replacement,
                EditKind::Text,
            ));
        }
    }
}

fn on_comment(comment: &mut lol_html::html_content::Comment<'_>, state: &mut State<'_>) {
    let text = comment.text();
    let range = comment.source_location().bytes();
    if is_framework_marker(&text) {
        // Never removed; outside every root it means the body is hydrated.
        state.hydration.markers.push(range.start);
        return;
    }
    let Some(options) = state.minify else { return };
    if !options.remove_comments || options.templates {
        return;
    }
    let keep = text.starts_with("[if")
        || text.starts_with("<![endif]")
        || text.starts_with('!')
        || text.starts_with('#');
    if !keep {
        state.edits.push(Edit::new(range, "", EditKind::Comment));
    }
}

fn has_template_syntax(text: &str) -> bool {
    text.contains("{{") || text.contains("{%") || text.contains("{#")
}

fn is_space_byte(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0C)
}

/// Apply the edits to the source and move every reference to its place in
/// the output: references outside edits shift, references inside an edit's
/// new text are placed where that text lands.
fn apply_edits(
    text: &str,
    refs: Vec<Reference>,
    mut edits: Vec<Edit>,
) -> (String, Vec<Reference>, Moves) {
    edits.sort_by_key(|e| e.range.start);
    let mut out = String::with_capacity(text.len());
    let mut moved = Vec::with_capacity(refs.len());
    let mut refs = refs;
    refs.sort_by_key(|r| r.span.start);
    let mut pending = refs.into_iter().peekable();
    let mut moves = Moves(Vec::with_capacity(edits.len()));
    let mut at = 0;
    for edit in edits {
        if edit.range.start < at {
            continue; // overlapping edits cannot happen; be safe
        }
        let delta = out.len() as isize - at as isize;
        while let Some(r) = pending.next_if(|r| r.span.start < edit.range.start) {
            moved.push(shift(r, delta));
        }
        // A reference inside replaced text is replaced by the edit's own.
        while pending.next_if(|r| r.span.start < edit.range.end).is_some() {}
        out.push_str(&text[at..edit.range.start]);
        let base = out.len();
        out.push_str(&edit.text);
        moved.extend(edit.refs.into_iter().map(|r| Reference {
            span: r.span.start + base..r.span.end + base,
            ..r
        }));
        at = edit.range.end;
        moves.0.push((at, out.len() as isize - at as isize));
    }
    let delta = out.len() as isize - at as isize;
    moved.extend(pending.map(|r| shift(r, delta)));
    out.push_str(&text[at..]);
    (out, moved, moves)
}

/// Where source positions land in the output of [`apply_edits`]: for each
/// applied edit, the source position where it ends and the shift from there.
struct Moves(Vec<(usize, isize)>);

impl Moves {
    /// The output position of a source position outside every replaced range.
    fn at(&self, p: usize) -> usize {
        let i = self.0.partition_point(|&(end, _)| end <= p);
        let delta = if i == 0 { 0 } else { self.0[i - 1].1 };
        (p as isize + delta) as usize
    }

    /// The output range of a source range that no edit cuts into.
    fn span(&self, r: &Range<usize>) -> Range<usize> {
        self.at(r.start)..self.at(r.end)
    }
}

fn shift(r: Reference, delta: isize) -> Reference {
    Reference {
        span: (r.span.start as isize + delta) as usize..(r.span.end as isize + delta) as usize,
        ..r
    }
}

fn on_style_attribute(span: Range<usize>, state: &mut State<'_>) {
    let raw = &state.text[span.clone()];
    if let Some(options) = state.minify.and_then(|m| m.css)
        && !state.hydration.inside(span.start)
        && !raw.contains('&')
        && let Some(m) = css::minify_declarations(raw, &options)
        && m.code.len() < raw.len()
        && fits_attribute(
            &m.code,
            state
                .text
                .as_bytes()
                .get(span.start.wrapping_sub(1))
                .copied(),
        )
    {
        let (line, col) = state.index.line_col(span.start);
        let refs = m
            .refs
            .into_iter()
            .map(|r| Reference { line, col, ..r })
            .collect();
        state.edits.push(Edit {
            range: span,
            text: m.code,
            refs,
            kind: EditKind::StyleAttribute,
        });
        return;
    }
    if !raw.contains("url(") && !raw.contains("URL(") {
        return;
    }
    if raw.contains('&') {
        let (line, col) = state.index.line_col(span.start);
        state.found.diagnostics.push(
            Diagnostic::warning(
                "",
                "style attribute written with character references: its URLs are left as written",
            )
            .at(line, col),
        );
        return;
    }
    let found = css::extract_declarations(raw, span.start, &state.index);
    state.found.refs.extend(found.refs);
}

/// Whether minified CSS can stand in an attribute value delimited by
/// `quote` (the byte before the value: `"`, `'`, or `=` when unquoted)
/// without changing how the attribute parses.
fn fits_attribute(code: &str, quote: Option<u8>) -> bool {
    if code.contains('&') {
        return false;
    }
    match quote {
        Some(q @ (b'"' | b'\'')) => !code.as_bytes().contains(&q),
        _ => !code.bytes().any(|b| {
            matches!(
                b,
                b' ' | b'\t' | b'\n' | b'\r' | 0x0C | b'"' | b'\'' | b'=' | b'<' | b'>' | b'`'
            )
        }),
    }
}

fn on_srcset(span: Range<usize>, state: &mut State<'_>) {
    let raw = &state.text[span.clone()];
    for candidate in srcset_urls(raw) {
        push_url(
            span.start + candidate.start..span.start + candidate.end,
            RefKind::Embed,
            state,
        );
    }
}

fn push_url(span: Range<usize>, kind: RefKind, state: &mut State<'_>) {
    let url = decode_character_references(&state.text[span.clone()]);
    state
        .found
        .refs
        .push(reference(&state.index, span, url, kind));
}

/// The kind of an inline or external script from its `type`, or `None` for
/// data blocks (`application/ld+json`, templates).
fn script_kind(ty: Option<String>) -> Option<ScriptKind> {
    match ty
        .as_deref()
        .map(|t| t.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("" | "text/javascript" | "application/javascript" | "text/ecmascript") => {
            Some(ScriptKind::Classic)
        }
        Some("module") => Some(ScriptKind::Module),
        _ => None,
    }
}

/// How an attribute of an element refers to another file, if it does.
fn url_attribute(tag: &str, attr: &str, rel: &str, meta_name: &str) -> Option<RefKind> {
    match (tag, attr) {
        ("a" | "area", "href") => Some(RefKind::Navigation),
        ("iframe" | "frame", "src") => Some(RefKind::Navigation),
        ("img" | "source" | "video" | "audio" | "track" | "embed" | "input" | "script", "src") => {
            Some(RefKind::Embed)
        }
        ("video", "poster") | ("object", "data") => Some(RefKind::Embed),
        ("image" | "use" | "feimage", "href" | "xlink:href") => Some(RefKind::Embed),
        ("link", "href") => {
            let loads = rel
                .split_ascii_whitespace()
                .any(|r| LOADING_RELS.contains(&r));
            Some(if loads {
                RefKind::Embed
            } else {
                RefKind::Navigation
            })
        }
        ("meta", "content") if IMAGE_META.contains(&meta_name) => Some(RefKind::Embed),
        _ => None,
    }
}

/// A URL attribute's value without the leading and trailing ASCII whitespace
/// that browsers strip.
fn trim_span(text: &str, span: Range<usize>) -> Range<usize> {
    let raw = &text[span.clone()];
    let start = span.start + (raw.len() - raw.trim_start_matches(is_html_space).len());
    let end = span.end - (raw.len() - raw.trim_end_matches(is_html_space).len());
    start..end.max(start)
}

fn is_html_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0C')
}

/// The URLs of a `srcset` value, as byte ranges into it (HTML's candidate
/// parsing: a URL is a run of non-space characters; trailing commas end the
/// candidate; descriptors run to the next comma).
pub fn srcset_urls(value: &str) -> Vec<Range<usize>> {
    let bytes = value.as_bytes();
    let is_space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0C);
    let mut urls = Vec::new();
    let mut i = 0;
    loop {
        while i < bytes.len() && (is_space(bytes[i]) || bytes[i] == b',') {
            i += 1;
        }
        if i >= bytes.len() {
            return urls;
        }
        let start = i;
        while i < bytes.len() && !is_space(bytes[i]) {
            i += 1;
        }
        let mut end = i;
        let ended_by_comma = bytes[start..end].ends_with(b",");
        while end > start && bytes[end - 1] == b',' {
            end -= 1;
        }
        if end > start {
            urls.push(start..end);
        }
        if !ended_by_comma {
            let mut depth = 0u32;
            while i < bytes.len() {
                match bytes[i] {
                    b'(' => depth += 1,
                    b')' => depth = depth.saturating_sub(1),
                    b',' if depth == 0 => break,
                    _ => {}
                }
                i += 1;
            }
        }
    }
}

/// Decode the character references that appear in URLs (`&amp;`, `&#47;`, …).
pub fn decode_character_references(raw: &str) -> String {
    if !raw.contains('&') {
        return raw.to_owned();
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let decoded = rest.find(';').filter(|&end| end <= 10).and_then(|end| {
            let name = &rest[1..end];
            let ch = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some('\u{a0}'),
                _ => name
                    .strip_prefix("#x")
                    .or_else(|| name.strip_prefix("#X"))
                    .map(|h| u32::from_str_radix(h, 16))
                    .or_else(|| name.strip_prefix('#').map(str::parse::<u32>))
                    .and_then(Result::ok)
                    .and_then(char::from_u32),
            };
            ch.map(|c| (c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(html: &str) -> Vec<(String, RefKind)> {
        extract(html.as_bytes())
            .refs
            .into_iter()
            .map(|r| {
                assert_eq!(
                    decode_character_references(&html[r.span.clone()]),
                    r.url,
                    "span must cover the URL"
                );
                (r.url, r.kind)
            })
            .collect()
    }

    fn urls(html: &str) -> Vec<String> {
        refs(html).into_iter().map(|(u, _)| u).collect()
    }

    #[test]
    fn finds_attribute_references() {
        let html = r#"<!doctype html><html><head>
<link rel="stylesheet" href="css/a.css"><link rel="canonical" href="/page/">
<link rel="icon" href="/favicon.ico"><meta property="og:image" content="/og.png">
<meta name="description" content="not a url">
<script type="module" src="/js/app.js"></script></head>
<body><img src=" img/a.png " srcset="img/a.png 1x, img/a@2x.png 2x" alt="">
<video poster="p.jpg"><source src="v.mp4" type="video/mp4"></video>
<object data="d.svg"></object><a href="b.html?x=1&amp;y=2#top">b</a>
<svg><use href="sprite.svg#i"/></svg></body></html>"#;
        let got = refs(html);
        let urls: Vec<&str> = got.iter().map(|(u, _)| u.as_str()).collect();
        assert_eq!(
            urls,
            [
                "css/a.css",
                "/page/",
                "/favicon.ico",
                "/og.png",
                "/js/app.js",
                "img/a.png",
                "img/a.png",
                "img/a@2x.png",
                "p.jpg",
                "v.mp4",
                "d.svg",
                "b.html?x=1&y=2#top",
                "sprite.svg#i"
            ]
        );
        assert_eq!(got[1].1, RefKind::Navigation);
        assert_eq!(got[11].1, RefKind::Navigation);
        assert_eq!(got[0].1, RefKind::Embed);
        assert_eq!(got[4].1, RefKind::Import, "a module script is an import");
    }

    #[test]
    fn finds_css_and_module_references_inline() {
        let html = "<style>\n.a { background: url(\"bg.png\") }\n</style>\n\
            <p style=\"background-image: url('/dot.png')\">x</p>\n\
            <script type=\"module\">import { x } from './m.js'; x();</script>\n\
            <script type=\"application/ld+json\">{\"image\": \"./not-a-ref.png\"}</script>";
        assert_eq!(urls(html), ["bg.png", "/dot.png", "./m.js"]);
    }

    #[test]
    fn srcset_candidates() {
        let v = "a.png 1x,b.png  2x , c,d.png 100w, data:image/png;base64,AA== 3x";
        let got: Vec<&str> = srcset_urls(v).into_iter().map(|r| &v[r]).collect();
        // A comma inside a URL belongs to it; only trailing commas end a candidate.
        assert_eq!(
            got,
            ["a.png", "b.png", "c,d.png", "data:image/png;base64,AA=="]
        );
    }

    #[test]
    fn character_references() {
        assert_eq!(
            decode_character_references("a&amp;b&#47;c&#x41;&bogus;"),
            "a&b/cA&bogus;"
        );
    }

    #[test]
    fn locations_are_one_based() {
        let found = extract(b"<p>\n  <img src=\"x.png\">");
        assert_eq!((found.refs[0].line, found.refs[0].col), (2, 13));
    }
}

#[cfg(test)]
mod minify_tests {
    use super::*;

    fn min(html: &str) -> MinifiedHtml {
        let m = minify(html.as_bytes(), &HtmlOptions::default()).expect("minifies");
        for r in &m.found.refs {
            assert_eq!(
                decode_character_references(&m.code[r.span.clone()]),
                r.url,
                "in {}",
                m.code
            );
        }
        m
    }

    #[test]
    fn whitespace_between_elements_collapses_but_never_disappears() {
        let m = min(
            "<!doctype html>\n<html>\n  <head>\n    <title>t</title>\n  </head>\n  <body>\n    <ul>\n      <li>a</li>\n      <li>b</li>\n    </ul>\n    <input>  <button>go</button>\n    <p><b>x</b> <i>y</i></p>\n  </body>\n</html>\n",
        );
        assert_eq!(
            m.code,
            "<!doctype html> <html> <head><title>t</title></head> <body> <ul> <li>a</li> <li>b</li> </ul> <input> <button>go</button> <p><b>x</b> <i>y</i></p> </body> </html> "
        );
        let newlines = HtmlOptions {
            keep_newlines: true,
            ..HtmlOptions::default()
        };
        let kept = minify(b"<p>a\n   b  c</p>", &newlines).unwrap();
        assert_eq!(kept.code, "<p>a\nb c</p>");
    }

    #[test]
    fn pre_and_textarea_keep_their_whitespace() {
        let html = "<body><pre>  a\n\n    b  </pre> <textarea>\n  x  y\n</textarea>  <div>a    b</div></body>";
        let m = min(html);
        assert_eq!(
            m.code,
            "<body><pre>  a\n\n    b  </pre> <textarea>\n  x  y\n</textarea> <div>a b</div></body>"
        );
    }

    #[test]
    fn comments_go_except_conditional_ones() {
        let m = min("<p>a<!-- note -->b</p><!--[if IE]><p>ie</p><![endif]--><!--! keep -->");
        assert_eq!(
            m.code,
            "<p>ab</p><!--[if IE]><p>ie</p><![endif]--><!--! keep -->"
        );
    }

    #[test]
    fn inline_css_and_js_are_minified_and_references_move_with_them() {
        let html = "<head>\n<style>\n  .a { background: url( 'bg.png' ) }\n</style>\n</head>\n<body style=\"color: #ff0000; background: url('/dot.png')\">\n<img   src=\"a.png\">\n<script type=\"module\">\n  import { x } from './m.js';\n  x();\n</script>\n</body>";
        let m = min(html);
        assert!(
            m.code.contains("<style>.a{background:url(bg.png)}</style>"),
            "{}",
            m.code
        );
        assert!(
            m.code
                .contains("style=\"color:red;background:url(/dot.png)\""),
            "{}",
            m.code
        );
        assert!(
            m.code.contains("<script type=\"module\">import{x as "),
            "{}",
            m.code
        );
        let urls: Vec<&str> = m.found.refs.iter().map(|r| r.url.as_str()).collect();
        assert_eq!(urls.len(), 4, "{urls:?}");
        for u in ["bg.png", "/dot.png", "a.png", "./m.js"] {
            assert!(urls.contains(&u), "{u} in {urls:?}");
        }
        let img = m.found.refs.iter().find(|r| r.url == "a.png").unwrap();
        assert_eq!((img.line, img.col), (7, 13));
    }

    #[test]
    fn templates_are_left_alone_when_asked() {
        let options = HtmlOptions {
            templates: true,
            ..HtmlOptions::default()
        };
        let html = "<p>{% if x %}\n   a   {% endif %}</p><!-- {{ keep }} -->";
        let m = minify(html.as_bytes(), &options).unwrap();
        assert_eq!(m.code, html);
    }

    #[test]
    fn data_blocks_are_not_scripts() {
        let html = "<script type=\"application/ld+json\">\n{ \"a\": 1 }\n</script>";
        assert_eq!(min(html).code, html);
    }
}

#[cfg(test)]
mod start_tag_tests {
    use super::*;

    fn tidy(raw: &str, void: bool) -> String {
        let edits = start_tag_edits(raw, void)
            .into_iter()
            .map(|(range, text)| crate::link::rewrite::Edit { range, text })
            .collect::<Vec<_>>();
        String::from_utf8(crate::link::rewrite::apply(raw.as_bytes(), &edits)).unwrap()
    }

    #[test]
    fn tags_are_tidied_without_touching_names_or_values() {
        assert_eq!(
            tidy("<meta charset=\"utf-8\" />", true),
            "<meta charset=\"utf-8\">"
        );
        assert_eq!(
            tidy("<link\n   rel=\"search\"\n   title='a  b'  >", true),
            "<link rel=\"search\" title='a  b'>"
        );
        assert_eq!(tidy("<a href = \"x\" >", false), "<a href=\"x\">");
        assert_eq!(tidy("<img src=x />", true), "<img src=x>");
        assert_eq!(tidy("<path d=\"M0 0\" />", false), "<path d=\"M0 0\"/>");
        assert_eq!(tidy("<circle r=1 />", false), "<circle r=1 />");
        assert_eq!(
            tidy("<input disabled   checked>", true),
            "<input disabled checked>"
        );
        assert_eq!(tidy("<p>", false), "<p>");
    }
}

#[cfg(test)]
mod quoting_tests {
    use super::*;

    fn min(html: &str) -> String {
        minify(html.as_bytes(), &HtmlOptions::default())
            .unwrap()
            .code
    }

    #[test]
    fn minified_css_never_breaks_its_attribute_or_element() {
        let quoted = "<p style=\"font-family: 'Font Awesome 5 Free'; color: #ff0000\">x</p>";
        assert_eq!(
            min(quoted),
            quoted,
            "lightningcss would print double quotes"
        );
        let single = "<p style='color: #ff0000; margin: 0px'>x</p>";
        assert_eq!(min(single), "<p style='color:red;margin:0'>x</p>");
        let unquoted = "<p style=color:#ff0000>x</p>";
        assert_eq!(min(unquoted), "<p style=color:red>x</p>");
        let closing = "<style>\n.a::after { content: \"\\3c/style><b>x</b>\" }\n</style>";
        assert!(
            !min(closing).to_ascii_lowercase().contains("</style><b>"),
            "{}",
            min(closing)
        );
    }
}

#[cfg(test)]
mod lazy_image_tests {
    use super::*;

    fn min(html: &str, after: Option<usize>) -> String {
        let options = HtmlOptions {
            lazy_images_after: after,
            ..HtmlOptions::default()
        };
        minify(html.as_bytes(), &options).unwrap().code
    }

    #[test]
    fn images_after_the_first_n_load_lazily() {
        let page = "<p><img src=a.png><IMG   src=b.png alt=b /><img src=c.png><img/><svg><image href=d.png /></svg>";
        assert_eq!(
            min(page, Some(2)),
            "<p><img src=a.png><IMG src=b.png alt=b><img loading=\"lazy\" decoding=\"async\" src=c.png>\
             <img loading=\"lazy\" decoding=\"async\"><svg><image href=d.png /></svg>"
        );
        assert_eq!(min(page, None), min(page, Some(100)));
    }

    #[test]
    fn a_tag_that_says_otherwise_keeps_its_word() {
        let page = "<img src=a.png><img loading=eager src=b.png><img decoding=sync src=c.png>\
                    <img fetchpriority=HIGH src=d.png>";
        assert_eq!(
            min(page, Some(0)),
            "<img loading=\"lazy\" decoding=\"async\" src=a.png><img decoding=\"async\" loading=eager src=b.png>\
             <img loading=\"lazy\" decoding=sync src=c.png><img fetchpriority=HIGH src=d.png>"
        );
    }

    #[test]
    fn references_stay_located_after_the_insertion() {
        let m = minify(
            b"<img src=a.png><img src=b.png>",
            &HtmlOptions {
                lazy_images_after: Some(1),
                ..HtmlOptions::default()
            },
        )
        .unwrap();
        for r in &m.found.refs {
            assert_eq!(&m.code[r.span.clone()], r.url, "{}", m.code);
        }
    }
}

#[cfg(test)]
mod img_tag_tests {
    use super::*;

    /// Pages assembled from fragments that move bytes around an `<img>`
    /// (whitespace runs, comments, inline CSS and JS, lazy attributes, messy
    /// start tags): after minification every recorded tag and value still
    /// points at the right bytes of the output.
    #[test]
    fn positions_survive_minification() {
        const PARTS: &[&str] = &[
            "\n   \n",
            "<!-- a comment -->",
            "<style> a { color : red } </style>",
            "<script> var  x = 1 ;  </script>",
            "<p>  text  </p>",
            "<div style=\"color : red ; margin : 0\">",
            "</div>",
            "<picture><source srcset=p.webp>",
            "<picture><source media=\"(min-width: 9px)\"  srcset=\"q.png\" type=image/png>",
            "</picture>",
            "<link rel=preload as=image href=\"pre.png\" >",
        ];
        const IMGS: &[&str] = &[
            "<img src=\"a.png\" alt=\"x\">",
            "<IMG  SRC = 'b c.png'   alt = y  />",
            "<img\n  srcset=\"s1.png 1x,  s2.png 2x\"\n  sizes=\"50vw\" src=t.png >",
            "<img src=u.png src=v.png data-src=w.png>",
            "<img/src=z.png>",
        ];
        let mut seed = 0x9e37_79b9u32;
        let mut next = |n: usize| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 16) as usize % n
        };
        for _ in 0..300 {
            let mut page = String::from("<!doctype html><html><head><title>t</title></head><body>");
            for _ in 0..12 {
                if next(2) == 0 {
                    page.push_str(IMGS[next(IMGS.len())]);
                } else {
                    page.push_str(PARTS[next(PARTS.len())]);
                }
            }
            let source = extract(page.as_bytes());
            let m = minify(page.as_bytes(), &HtmlOptions::default()).unwrap();
            assert_eq!(m.found.images.len(), source.images.len(), "{page}");
            for (img, was) in m.found.images.iter().zip(&source.images) {
                let tag = &m.code[img.tag.clone()];
                let name = match (img.preload, img.source) {
                    (true, _) => "<link",
                    (_, true) => "<source",
                    _ => "<img",
                };
                assert!(
                    tag.to_ascii_lowercase().starts_with(name),
                    "{tag:?} in {page}"
                );
                assert!(tag.ends_with('>'), "{tag:?}");
                // Attributes go in right after the name (and after the lazy
                // attributes, which are inserted there too): at a boundary.
                let head = &m.code[img.tag.start..img.attrs_at];
                assert!(
                    head.len() == name.len() || head.ends_with("decoding=\"async\""),
                    "{head:?}"
                );
                assert!(
                    matches!(m.code.as_bytes()[img.attrs_at], b' ' | b'\n' | b'/' | b'>'),
                    "{tag:?}"
                );
                for (now, then) in [
                    (&img.src, &was.src),
                    (&img.srcset, &was.srcset),
                    (&img.sizes, &was.sizes),
                    (&img.media, &was.media),
                ] {
                    assert_eq!(
                        now.as_ref().map(|r| &m.code[r.clone()]),
                        then.as_ref().map(|r| &page[r.clone()]),
                        "{page}"
                    );
                }
                if let Some(src) = &img.src {
                    assert!(
                        m.found.refs.iter().any(|r| r.span == *src),
                        "the src value is a reference span: {page}"
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod hydration_tests {
    use super::*;

    fn min(html: &str) -> MinifiedHtml {
        minify(html.as_bytes(), &HtmlOptions::default()).expect("minifies")
    }

    #[test]
    fn a_vue_root_keeps_its_text_and_markers_and_the_rest_is_minified() {
        let root = "<div id=\"app\"><div class=\"VPDoc\"><!--[--><p>Hello   <b>world</b>\n</p><!----><!--]--><!-- a note --></div></div>";
        let page = format!(
            "<!doctype html>\n<html>\n<head>\n  <title>t</title>\n</head>\n<body>\n  {root}\n  <p>a   b</p><!-- note -->\n</body>\n</html>\n"
        );
        let m = min(&page);
        assert!(m.code.contains(root), "{}", m.code);
        assert!(m.code.contains("<p>a b</p> </body>"), "{}", m.code);
        assert!(
            m.code.contains("<head><title>t</title></head>"),
            "{}",
            m.code
        );
    }

    #[test]
    fn marker_comments_are_never_removed() {
        for marker in [
            "<!--[-->",
            "<!--]-->",
            "<!--$-->",
            "<!--/$-->",
            "<!--$?-->",
            "<!---->",
            "<!-- -->",
            "<!--[!-->",
            "<!--lit-part cI7PGs8mxHY=-->",
            "<!--/lit-part-->",
            "<!--qv q:id=1-->",
            "<!--t=3-->",
            "<!--teleport start-->",
        ] {
            let page = format!("<head><!-- note --></head><body><p>x</p>{marker}<p>y</p></body>");
            let m = min(&page);
            assert!(m.code.contains(marker), "{marker}: {}", m.code);
            assert!(!m.code.contains("note"), "{}", m.code);
        }
    }

    #[test]
    fn markers_outside_any_known_root_protect_the_whole_body() {
        let page = "<html><head>\n  <title>t</title>\n</head><body><main>\n  <p>a   b</p><!--$--><p>c  d</p><!--/$--></main></body></html>";
        let m = min(page);
        assert_eq!(
            m.code,
            "<html><head><title>t</title></head><body><main>\n  <p>a   b</p><!--$--><p>c  d</p><!--/$--></main></body></html>"
        );
    }

    #[test]
    fn the_next_app_router_hydrates_the_whole_document() {
        let page = "<!DOCTYPE html><html lang=\"en\"><head>\n<title>x</title>\n</head><body>\n<main>  a   b  <!-- -->c</main>\n<script>(self.__next_f=self.__next_f||[]).push([0])</script>\n<script>self.__next_f.push([1,\"  x  \"])</script></body></html>";
        let m = min(page);
        assert_eq!(m.code, page);
    }

    #[test]
    fn sveltekit_pages_keep_their_body_and_its_hydration_script() {
        let page = "<html><head>\n<link rel=\"modulepreload\" href=\"./_app/immutable/entry/start.Bq9xZ2aK.js\">\n</head>\n<body data-sveltekit-preload-data=\"hover\">\n<div style=\"display: contents\">  <!--[--><h1>Hi  there</h1><!--]-->\n<script>\n  {\n    __sveltekit_abc = { base: new URL(\".\", location).pathname.slice(0, -1) };\n    Promise.all([import(\"./_app/immutable/entry/start.Bq9xZ2aK.js\")]);\n  }\n</script>\n</div></body></html>";
        let m = min(page);
        let body = &page[page.find("<body").unwrap()..];
        assert!(m.code.ends_with(body), "{}", m.code);
        let imports: Vec<(&str, bool)> = m
            .found
            .refs
            .iter()
            .map(|r| (r.url.as_str(), r.pinned))
            .collect();
        assert_eq!(
            imports,
            [
                ("./_app/immutable/entry/start.Bq9xZ2aK.js", false),
                ("./_app/immutable/entry/start.Bq9xZ2aK.js", true)
            ]
        );
    }

    #[test]
    fn astro_islands_are_roots_and_the_static_page_around_them_is_not() {
        let island = "<astro-island uid=\"Z1\" component-url=\"/_astro/Counter.Bq9xZ2aK.js\" ssr=\"\"><button class=\"c\">  count   is 0 </button><!--astro:end--></astro-island>";
        let page = format!("<body><h1>A   title</h1>\n\n{island}\n<p>text   here</p></body>");
        let m = min(&page);
        assert_eq!(
            m.code,
            format!("<body><h1>A title</h1> {island} <p>text here</p></body>")
        );
    }

    #[test]
    fn urls_and_images_in_a_root_are_left_as_written() {
        let page = "<body><div id=\"__next\"><img src=\"a.png\" style=\"color : red\"><p style=\"background: url( 'bg.png' )\">x</p></div>\
                    <img src=\"b.png\"><img src=\"c.png\"><img src=\"d.png\"></body>";
        let m = minify(
            page.as_bytes(),
            &HtmlOptions {
                lazy_images_after: Some(0),
                ..HtmlOptions::default()
            },
        )
        .unwrap();
        assert!(
            m.code.starts_with(
                "<body><div id=\"__next\"><img src=\"a.png\" style=\"color : red\"><p style=\"background: url( 'bg.png' )\">x</p></div><img loading=\"lazy\""
            ),
            "{}",
            m.code
        );
        let refs: Vec<(&str, bool)> = m
            .found
            .refs
            .iter()
            .map(|r| (r.url.as_str(), r.pinned))
            .collect();
        assert_eq!(
            refs,
            [
                ("a.png", true),
                ("bg.png", true),
                ("b.png", false),
                ("c.png", false),
                ("d.png", false)
            ]
        );
        for r in &m.found.refs {
            assert_eq!(&m.code[r.span.clone()], r.url);
        }
        assert_eq!(m.found.images.len(), 3, "the root's image is left alone");
        // Extraction alone pins the same references.
        let pinned: Vec<bool> = extract(page.as_bytes())
            .refs
            .iter()
            .map(|r| r.pinned)
            .collect();
        assert_eq!(pinned, [true, true, false, false, false]);
    }

    #[test]
    fn a_page_without_framework_signatures_is_minified_as_before() {
        let page = "<body><div id=\"content\"><p>a   b</p><!-- x --></div></body>";
        assert_eq!(
            min(page).code,
            "<body><div id=\"content\"><p>a b</p></div></body>"
        );
    }

    #[test]
    fn prose_comments_are_not_markers() {
        for text in [
            " note ",
            " / .container ",
            "TODO",
            "[if IE]>x<![endif]",
            "end",
        ] {
            assert!(!is_framework_marker(text), "{text}");
        }
    }
}

#[cfg(test)]
mod read_back_tests {
    use super::*;

    #[test]
    fn sphinx_keeps_the_whitespace_its_search_counts_in_the_main_text() {
        let page = "<html data-content_root=\"./\"><head>\n<title>t</title>\n</head><body>\n<div class=\"sidebar\">a   b</div>\n<div class=\"body\" role=\"main\">\n  <p>Some   text\n  here</p><!-- c -->\n</div>\n<p>x   y</p></body></html>";
        let m = minify(page.as_bytes(), &HtmlOptions::default()).unwrap();
        assert_eq!(
            m.code,
            "<html data-content_root=\"./\"><head><title>t</title></head><body> <div class=\"sidebar\">a b</div> <div class=\"body\" role=\"main\">\n  <p>Some   text\n  here</p>\n</div> <p>x y</p></body></html>"
        );
        // Not a Sphinx page: `role="main"` is minified like the rest.
        let plain = "<body><main role=\"main\"><p>a   b</p></main></body>";
        assert_eq!(
            minify(plain.as_bytes(), &HtmlOptions::default())
                .unwrap()
                .code,
            "<body><main role=\"main\"><p>a b</p></main></body>"
        );
    }
}
