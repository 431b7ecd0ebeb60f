//! HTML references with lol_html: every attribute that holds a URL (`src`,
//! `href`, `srcset`, `poster`, `data`, `<meta>` images…), `style` attributes,
//! `<style>` elements and inline module scripts, located to the byte so that
//! the rewrite changes nothing else in the document. `<base href>` is reported
//! so that the linker resolves against it.

use std::cell::RefCell;
use std::ops::Range;

use lol_html::html_content::{Element, TextChunk};
use lol_html::{HtmlRewriter, Settings, element, text};

use super::{Extracted, css, invalid_utf8, js, reference};
use crate::asset::RefKind;
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
#[derive(Clone, Copy, PartialEq)]
enum Inline {
    Style,
    Script,
    Other,
}

struct State<'a> {
    text: &'a str,
    index: LineIndex<'a>,
    found: Extracted,
    inline: Inline,
    buffer: String,
    buffer_span: Option<Range<usize>>,
}

/// References in an HTML document. The document's `<base href>`, if any, is
/// returned as [`Extracted::base`].
pub fn extract(bytes: &[u8]) -> Extracted {
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            return Extracted {
                diagnostics: vec![invalid_utf8(bytes, e)],
                ..Extracted::default()
            };
        }
    };
    let state = RefCell::new(State {
        text,
        index: LineIndex::new(bytes),
        found: Extracted::default(),
        inline: Inline::Other,
        buffer: String::new(),
        buffer_span: None,
    });
    let settings = Settings::new()
        .append_element_content_handler(element!("*", |el| {
            on_element(el, &mut state.borrow_mut());
            Ok(())
        }))
        .append_element_content_handler(text!("style, script", |chunk| {
            on_text(chunk, &mut state.borrow_mut());
            Ok(())
        }))
        .with_strict(false);
    let mut rewriter = HtmlRewriter::new(settings, |_: &[u8]| {});
    let result = rewriter.write(bytes).and_then(|()| rewriter.end());
    let mut state = state.into_inner();
    if let Err(e) = result {
        state.found.diagnostics.push(Diagnostic::warning(
            "",
            format!("HTML could not be parsed ({e}): references after this point not rewritten"),
        ));
    }
    state.found
}

fn on_element(el: &mut Element<'_, '_>, state: &mut State<'_>) {
    let tag = el.tag_name();
    state.inline = match tag.as_str() {
        "style" => Inline::Style,
        "script" if el.get_attribute("src").is_none() && is_js_type(el.get_attribute("type")) => {
            Inline::Script
        }
        "script" => Inline::Other,
        _ => state.inline,
    };
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
                    state.text[trim_span(state.text, span)].as_ref(),
                ));
            }
        } else if name == "style" {
            on_style_attribute(span, state);
        } else if name == "srcset" || (tag == "link" && name == "imagesrcset") {
            on_srcset(span, state);
        } else if let Some(kind) = url_attribute(&tag, &name, &rel, &meta_name) {
            let span = trim_span(state.text, span);
            if !span.is_empty() {
                push_url(span, kind, state);
            }
        }
    }
}

fn on_text(chunk: &mut TextChunk<'_>, state: &mut State<'_>) {
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
    let found = match state.inline {
        Inline::Style => css::extract_embedded(&buffer, span.start, &state.index),
        _ => js::extract_at(&buffer, span.start, &state.index),
    };
    state.found.refs.extend(found.refs);
    state.found.diagnostics.extend(found.diagnostics);
}

fn on_style_attribute(span: Range<usize>, state: &mut State<'_>) {
    let raw = &state.text[span.clone()];
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

fn is_js_type(ty: Option<String>) -> bool {
    match ty {
        None => true,
        Some(t) => matches!(
            t.trim().to_ascii_lowercase().as_str(),
            "" | "module" | "text/javascript" | "application/javascript" | "text/ecmascript"
        ),
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
