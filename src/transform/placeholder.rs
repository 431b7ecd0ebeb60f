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

/// Replace every occurrence of every token. Returns the new text and, for each
/// occurrence, the span of its URL text and the index of its [`Restore`].
pub fn restore(code: &str, restores: &[Restore]) -> (String, Vec<(Range<usize>, usize)>) {
    let mut hits: Vec<(usize, usize)> = restores
        .iter()
        .enumerate()
        .flat_map(|(i, r)| {
            code.match_indices(r.token.as_str())
                .map(move |(at, _)| (at, i))
        })
        .collect();
    hits.sort_unstable();
    let mut out = String::with_capacity(code.len());
    let mut spans = Vec::with_capacity(hits.len());
    let mut at = 0;
    for (pos, i) in hits {
        if pos < at {
            continue; // overlapping tokens cannot happen with distinct nonces
        }
        let r = &restores[i];
        out.push_str(&code[at..pos]);
        out.push_str(&r.before);
        let start = out.len();
        out.push_str(&r.url_text);
        spans.push((start..out.len(), i));
        out.push_str(&r.after);
        at = pos + r.token.len();
    }
    out.push_str(&code[at..]);
    (out, spans)
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
        let (out, spans) = restore(
            "x{a:url(\"P1\")}y{b:url(\"P2\")}z{c:url(\"P1\")}",
            &restores,
        );
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
