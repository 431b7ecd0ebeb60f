//! Placeholders: how references survive a minifier. Before printing, each URL
//! is replaced by a unique token; afterwards each token is found in the output
//! and replaced by the URL again, written for its context, and its byte span
//! becomes the [`Reference`](crate::asset::Reference) that the link stage
//! rewrites.

use std::ops::Range;

/// One placeholder to put back.
#[derive(Debug, Clone)]
pub struct Restore {
    /// The exact text to find in the printed output (quotes included if the
    /// printer wrote them).
    pub token: String,
    /// Text written before the URL, in place of the token.
    pub before: String,
    /// The URL as written into the output.
    pub url_text: String,
    /// Text written after the URL.
    pub after: String,
}

/// Text with its placeholders put back.
#[derive(Debug)]
pub struct Restored {
    pub text: String,
    /// For each occurrence: the span of its URL text and the index of its [`Restore`].
    pub spans: Vec<(Range<usize>, usize)>,
    /// Where the text changed width, for source maps: byte offset in the
    /// printed text, and the change in UTF-16 units.
    pub shifts: Vec<(usize, i64)>,
}

/// Replace every occurrence of every token.
pub fn restore(code: &str, restores: &[Restore]) -> Restored {
    let mut hits: Vec<(usize, usize)> = restores
        .iter()
        .enumerate()
        .flat_map(|(i, r)| {
            code.match_indices(r.token.as_str())
                .map(move |(at, _)| (at, i))
        })
        .collect();
    hits.sort_unstable();
    let mut text = String::with_capacity(code.len());
    let mut spans = Vec::with_capacity(hits.len());
    let mut shifts = Vec::with_capacity(hits.len());
    let mut at = 0;
    for (pos, i) in hits {
        if pos < at {
            continue; // overlapping tokens cannot happen with distinct nonces
        }
        let r = &restores[i];
        text.push_str(&code[at..pos]);
        let written = text.len();
        text.push_str(&r.before);
        let start = text.len();
        text.push_str(&r.url_text);
        spans.push((start..text.len(), i));
        text.push_str(&r.after);
        let width = |s: &str| s.encode_utf16().count() as i64;
        shifts.push((pos, width(&text[written..]) - width(&r.token)));
        at = pos + r.token.len();
    }
    text.push_str(&code[at..]);
    Restored {
        text,
        spans,
        shifts,
    }
}

/// A URL as the contents of a double-quoted CSS string.
pub fn css_string_contents(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    for c in url.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\{:x} ", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Whether a URL can be written in an unquoted CSS `url()`.
pub fn css_unquoted_safe(url: &str) -> bool {
    !url.is_empty()
        && !url.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '(' | ')' | '\\')
        })
}

/// A URL as the contents of a JavaScript string literal with either quote,
/// safe inside an inline `<script>` too.
pub fn js_string_contents(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    for c in url.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '<' => out.push_str("\\x3c"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restores_every_occurrence_with_spans() {
        let restores = vec![
            Restore {
                token: "\"P1\"".into(),
                before: String::new(),
                url_text: "a.png".into(),
                after: String::new(),
            },
            Restore {
                token: "\"P2\"".into(),
                before: "\"".into(),
                url_text: "b c.png".into(),
                after: "\"".into(),
            },
        ];
        let r = restore(
            "x{a:url(\"P1\")}y{b:url(\"P2\")}z{c:url(\"P1\")}",
            &restores,
        );
        // Each token of 4 bytes became 5, 9 and 5 bytes.
        assert_eq!(r.shifts, [(8, 1), (22, 5), (36, 1)]);
        let (out, spans) = (r.text, r.spans);
        assert_eq!(out, "x{a:url(a.png)}y{b:url(\"b c.png\")}z{c:url(a.png)}");
        let texts: Vec<&str> = spans.iter().map(|(r, _)| &out[r.clone()]).collect();
        assert_eq!(texts, ["a.png", "b c.png", "a.png"]);
    }

    #[test]
    fn escaping() {
        assert_eq!(css_string_contents("a\"b\\c"), "a\\\"b\\\\c");
        assert!(css_unquoted_safe("../img/a.png?x=1#f"));
        assert!(!css_unquoted_safe("a b.png"));
        assert_eq!(js_string_contents("</script>'\""), "\\x3c/script>\\'\\\"");
    }
}
