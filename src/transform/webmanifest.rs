//! Web app manifests: the `src` of every image resource (`icons`,
//! `screenshots`, `shortcuts[].icons`, …). Each is resolved against the
//! manifest's own URL, as browsers do.

use super::{Extracted, reference};
use crate::asset::RefKind;
use crate::diag::{Diagnostic, LineIndex};

/// References in a web app manifest.
pub fn extract(text: &str) -> Extracted {
    let mut found = Extracted::default();
    let index = LineIndex::new(text.as_bytes());
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
        found.diagnostics.push(
            Diagnostic::warning("", format!("invalid JSON: {e}"))
                .at(e.line() as u32, e.column() as u32),
        );
        return found;
    }
    let strings = json_strings(text);
    for pair in strings.windows(2) {
        let (key, value) = (&pair[0], &pair[1]);
        if key.is_key && &text[key.span.clone()] == "src" && !value.is_key {
            let raw = &text[value.span.clone()];
            if raw.contains('\\') {
                continue;
            }
            found.refs.push(reference(
                &index,
                value.span.clone(),
                raw.to_owned(),
                RefKind::Embed,
            ));
        }
    }
    found
}

struct JsonString {
    /// Contents, without the quotes.
    span: std::ops::Range<usize>,
    /// Followed by `:`.
    is_key: bool,
}

/// Every string token of a (valid) JSON text, in order.
fn json_strings(text: &str) -> Vec<JsonString> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'"' {
            i += 1;
            continue;
        }
        let start = i + 1;
        let mut j = start;
        while j < bytes.len() && bytes[j] != b'"' {
            j += if bytes[j] == b'\\' { 2 } else { 1 };
        }
        let mut k = j + 1;
        while k < bytes.len() && bytes[k].is_ascii_whitespace() {
            k += 1;
        }
        out.push(JsonString {
            span: start..j.min(bytes.len()),
            is_key: bytes.get(k) == Some(&b':'),
        });
        i = j + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_icon_sources() {
        let text = r#"{"name": "src", "icons": [{"src": "/i/192.png", "sizes": "192x192"},
            {"sizes": "512x512", "src" : "i/512.png"}], "shortcuts": [{"url": "/a", "icons": [{"src": "s.png"}]}]}"#;
        let found = extract(text);
        let urls: Vec<&str> = found.refs.iter().map(|r| r.url.as_str()).collect();
        assert_eq!(urls, ["/i/192.png", "i/512.png", "s.png"]);
        for r in &found.refs {
            assert_eq!(&text[r.span.clone()], r.url);
        }
    }

    #[test]
    fn invalid_json_is_located() {
        let found = extract("{\n  \"icons\": [,]\n}");
        assert_eq!(found.diagnostics[0].line, Some(2));
    }
}
