//! JSON (and web app manifests, source maps) minified losslessly: only the
//! whitespace between tokens goes; strings, numbers and key order stay byte
//! for byte.

use crate::diag::Diagnostic;

/// Minify a JSON text, or explain why it is not JSON.
pub fn minify(text: &str) -> Result<String, Diagnostic> {
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
        return Err(
            Diagnostic::warning("", format!("invalid JSON: {e}: kept as written"))
                .at(e.line() as u32, e.column() as u32),
        );
    }
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r' | '\u{feff}') {
            out.push(c);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_whitespace_between_tokens_goes() {
        let text = "{\n  \"a b\": [1.50, 2e10, -0.0],\n  \"s\": \"x \\\" y\",\n  \"z\": {}\n}\n";
        assert_eq!(
            minify(text).unwrap(),
            "{\"a b\":[1.50,2e10,-0.0],\"s\":\"x \\\" y\",\"z\":{}}"
        );
    }

    #[test]
    fn invalid_json_is_located() {
        let e = minify("{\n \"a\": }").unwrap_err();
        assert_eq!(e.line, Some(2));
    }
}
