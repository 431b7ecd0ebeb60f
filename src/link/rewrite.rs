//! Reference substitution: replace the file name in a reference with the
//! target's final (hashed) name, keeping everything else as the author wrote
//! it (directory part, query, fragment, quoting).

use std::ops::Range;

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

/// Characters percent-encoded in a file name written into HTML, CSS, JS or a
/// `srcset` (where `,` and spaces separate candidates).
const FILE_NAME: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'\'')
    .add(b'(')
    .add(b')')
    .add(b',')
    .add(b':')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// Percent-encode a file name for use in a URL.
pub fn encode_file_name(name: &str) -> String {
    utf8_percent_encode(name, FILE_NAME).to_string()
}

/// The range of the last path segment (the file name) of a URL as written.
pub fn file_name_range(raw: &str) -> Range<usize> {
    let end = raw.find(['?', '#']).unwrap_or(raw.len());
    let start = raw[..end].rfind(['/', '\\']).map_or(0, |i| i + 1);
    start..end
}

/// One replacement: bytes at `range` become `text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub range: Range<usize>,
    pub text: String,
}

/// Apply non-overlapping edits, sorted by position.
pub fn apply(bytes: &[u8], edits: &[Edit]) -> Vec<u8> {
    let grown: usize = edits.iter().map(|e| e.text.len()).sum();
    let mut out = Vec::with_capacity(bytes.len() + grown);
    let mut at = 0;
    for edit in edits {
        out.extend_from_slice(&bytes[at..edit.range.start]);
        out.extend_from_slice(edit.text.as_bytes());
        at = edit.range.end;
    }
    out.extend_from_slice(&bytes[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_name_of_a_url() {
        let raw = "../img/a.png?v=1#x";
        assert_eq!(&raw[file_name_range(raw)], "a.png");
        assert_eq!(&"a.png"[file_name_range("a.png")], "a.png");
        assert_eq!(file_name_range("dir/"), 4..4);
    }

    #[test]
    fn encodes_what_would_break_a_reference() {
        assert_eq!(
            encode_file_name("team photo.abc.jpg"),
            "team%20photo.abc.jpg"
        );
        assert_eq!(encode_file_name("a#b?c%d,e.png"), "a%23b%3Fc%25d%2Ce.png");
        assert_eq!(encode_file_name("café.png"), "caf%C3%A9.png");
    }

    #[test]
    fn applies_edits() {
        let edits = [
            Edit {
                range: 2..3,
                text: "XY".into(),
            },
            Edit {
                range: 5..5,
                text: "!".into(),
            },
        ];
        assert_eq!(apply(b"abcdefg", &edits), b"abXYde!fg");
    }
}
