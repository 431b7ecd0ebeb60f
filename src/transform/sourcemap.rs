//! Source maps of minified files: the printer's map, moved to match what kiln
//! does to the printed text afterwards (license comments put first,
//! placeholders replaced by URLs of another width), serialised as JSON.

use swc_sourcemap::{SourceMap, SourceMapBuilder};

use crate::asset::{RefKind, Reference};

/// What a source map needs: the file's name (the map is `<name>.map` beside
/// it) and the map of the input, if it had one, to chain to.
#[derive(Debug, Clone, Copy)]
pub struct MapRequest<'a> {
    pub file_name: &'a str,
    pub input_map: Option<&'a str>,
}

/// Lines inserted into the printed text: `count` lines before line `at`.
#[derive(Debug, Clone, Copy, Default)]
pub struct InsertedLines {
    pub at: u32,
    pub count: u32,
    /// The map's generated columns count bytes (lightningcss) rather than
    /// UTF-16 units (the source map format, swc): convert them.
    pub byte_columns: bool,
}

/// The UTF-16 column of byte column `col` on line `line` of `text`.
fn utf16_column(text: &str, line: u32, col: u32) -> u32 {
    let Some(line_text) = text.split('\n').nth(line as usize) else {
        return col;
    };
    let mut end = (col as usize).min(line_text.len());
    while !line_text.is_char_boundary(end) {
        end -= 1;
    }
    line_text[..end].encode_utf16().count() as u32
}

/// Move the tokens of `map` (a map of the printed text before the edits) to
/// the edited text. `text` is the text after the inserted lines and before
/// the width `shifts` (byte offset in `text`, change in UTF-16 units).
pub fn shift(
    map: &SourceMap,
    text: &str,
    lines: InsertedLines,
    shifts: &[(usize, i64)],
) -> SourceMap {
    let positions = utf16_positions(text, shifts.iter().map(|(at, _)| *at));
    let mut builder = SourceMapBuilder::new(None);
    for id in 0..map.get_source_count() {
        let source = map.get_source(id).cloned().unwrap_or_default();
        let new_id = builder.add_source(source);
        builder.set_source_contents(new_id, map.get_source_contents(id).cloned());
    }
    for id in 0..map.get_name_count() {
        if let Some(name) = map.get_name(id) {
            builder.add_name(name.clone());
        }
    }
    for token in map.tokens() {
        let (mut line, col) = token.get_dst();
        let col = if lines.byte_columns {
            utf16_column(text, line, col)
        } else {
            col
        };
        if line >= lines.at {
            line += lines.count;
        }
        let delta: i64 = positions
            .iter()
            .zip(shifts)
            .filter(|((l, c), _)| *l == line && *c < col)
            .map(|(_, (_, d))| *d)
            .sum();
        let col = (i64::from(col) + delta).max(0) as u32;
        let source = (token.get_src_id() != !0).then(|| token.get_src_id());
        let name = (token.get_name_id() != !0).then(|| token.get_name_id());
        let (src_line, src_col) = token.get_src();
        builder.add_raw(line, col, src_line, src_col, source, name, false);
    }
    builder.into_sourcemap()
}

/// Line and UTF-16 column of each byte offset (offsets in increasing order).
fn utf16_positions(text: &str, offsets: impl Iterator<Item = usize>) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    let (mut line, mut col, mut at) = (0u32, 0u32, 0usize);
    for offset in offsets {
        for c in text[at..offset.min(text.len())].chars() {
            if c == '\n' {
                line += 1;
                col = 0;
            } else {
                col += c.len_utf16() as u32;
            }
        }
        at = offset.min(text.len());
        out.push((line, col));
    }
    out
}

/// A map as JSON bytes.
pub fn to_json(map: &SourceMap) -> Vec<u8> {
    let mut out = Vec::new();
    map.to_writer(&mut out)
        .expect("writing to memory cannot fail");
    out
}

/// Point a script or stylesheet at its map: the comment goes at the end of
/// `code`, and its URL becomes a reference, renamed with the map.
pub fn append_comment(code: &mut String, refs: &mut Vec<Reference>, css: bool, url: String) {
    let (open, close) = if css {
        ("\n/*# sourceMappingURL=", " */")
    } else {
        ("\n//# sourceMappingURL=", "")
    };
    let at = code.len() + open.len();
    code.push_str(open);
    code.push_str(&url);
    code.push_str(close);
    refs.push(Reference {
        span: at..at + url.len(),
        url,
        kind: RefKind::SourceMap,
        line: 1,
        col: 1,
        pinned: false,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_move_with_inserted_lines_and_wider_text() {
        let mut b = SourceMapBuilder::new(None);
        b.add(0, 0, 0, 0, Some("a.js".into()), None, false);
        b.add(0, 10, 1, 4, Some("a.js".into()), None, false);
        b.add(1, 3, 2, 0, Some("a.js".into()), None, false);
        let map = b.into_sourcemap();
        // One license line inserted at the top; on (new) line 1 a token at
        // column 5 grew by 3.
        let text = "/*! x */\nimport'kilnXYZ';f()\ng()";
        let lines = InsertedLines {
            at: 0,
            count: 1,
            byte_columns: false,
        };
        let shifted = shift(&map, text, lines, &[(16, 3)]);
        let dst: Vec<(u32, u32)> = shifted.tokens().map(|t| t.get_dst()).collect();
        assert_eq!(dst, [(1, 0), (1, 13), (2, 3)]);
    }
}
