//! Diagnostics: problems found in input files, carried as data with a location
//! and printed like a compiler (`path:line:col: warning: message`), or as GitHub
//! workflow annotations when running in GitHub Actions.
//!
//! A diagnostic never stops a build; the exit code is decided at the end.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The file was written, perhaps not as well as it could be (an unresolved
    /// reference, a file passed through unchanged).
    Warning,
    /// The file could not be processed or written at all.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// A problem in one input, with its position when one exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// The path as the user knows it (source directory joined with the asset path).
    /// Serialised lossily: a file name that is not UTF-8 must not break `--json`.
    #[serde(serialize_with = "lossy_path")]
    pub path: PathBuf,
    /// 1-based line, when the problem has a position.
    pub line: Option<u32>,
    /// 1-based column (in characters), when the problem has a position.
    pub col: Option<u32>,
    pub message: String,
}

fn lossy_path<S: serde::Serializer>(path: &std::path::Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&path.to_string_lossy())
}

impl Diagnostic {
    pub fn warning(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            path: path.into(),
            line: None,
            col: None,
            message: message.into(),
        }
    }

    pub fn error(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            ..Diagnostic::warning(path, message)
        }
    }

    /// Attach a 1-based line and column.
    pub fn at(mut self, line: u32, col: u32) -> Self {
        self.line = Some(line);
        self.col = Some(col);
        self
    }

    /// The diagnostic as a GitHub Actions workflow command.
    pub fn github_annotation(&self) -> String {
        let mut props = format!("file={}", escape_property(&self.path.to_string_lossy()));
        if let Some(line) = self.line {
            props.push_str(&format!(",line={line}"));
        }
        if let Some(col) = self.col {
            props.push_str(&format!(",col={col}"));
        }
        format!(
            "::{} {}::{}",
            self.severity,
            props,
            escape_data(&self.message)
        )
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.col {
                write!(f, ":{col}")?;
            }
        }
        write!(f, ": {}: {}", self.severity, self.message)
    }
}

fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// Maps byte offsets in a text to 1-based line and column numbers.
pub struct LineIndex<'a> {
    text: &'a [u8],
    line_starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub fn new(text: &'a [u8]) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(memchr_iter(b'\n', text).map(|i| i + 1));
        LineIndex { text, line_starts }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (u32, u32) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&start| start <= offset) - 1;
        let start = self.line_starts[line];
        let col = String::from_utf8_lossy(&self.text[start..offset])
            .chars()
            .count();
        (line as u32 + 1, col as u32 + 1)
    }
}

fn memchr_iter(needle: u8, haystack: &[u8]) -> impl Iterator<Item = usize> + '_ {
    haystack
        .iter()
        .enumerate()
        .filter(move |(_, b)| **b == needle)
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters_from_one() {
        let text = "ab\ncé d\n".as_bytes();
        let index = LineIndex::new(text);
        assert_eq!(index.line_col(0), (1, 1));
        assert_eq!(index.line_col(3), (2, 1));
        // 'd' is after 'c', 'é' (2 bytes) and a space.
        assert_eq!(index.line_col(7), (2, 4));
    }

    #[test]
    fn prints_like_a_compiler_and_as_annotation() {
        let d = Diagnostic::warning("site/a,b.css", "unresolved reference `x.png`").at(3, 7);
        assert_eq!(
            d.to_string(),
            "site/a,b.css:3:7: warning: unresolved reference `x.png`"
        );
        assert_eq!(
            d.github_annotation(),
            "::warning file=site/a%2Cb.css,line=3,col=7::unresolved reference `x.png`"
        );
    }
}
