//! What the user sees of a build: progress while it runs, then a table per
//! kind (files, bytes in and out, gzip, brotli, saved) and the slowest files,
//! as text or as JSON. The library reports through [`Progress`]; printing is
//! the CLI's business.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use crate::diag::{Diagnostic, Severity};
use crate::pipeline::BuildOutcome;

/// The stages a build goes through, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Scan,
    Transform,
    Link,
    Emit,
    Manifest,
    Done,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Scan => "scan",
            Stage::Transform => "transform",
            Stage::Link => "link",
            Stage::Emit => "emit",
            Stage::Manifest => "manifest",
            Stage::Done => "done",
        }
    }
}

/// Receives progress events; called from worker threads.
pub trait Progress: Sync {
    /// A stage starts; `total` files will pass through it (0 if unknown).
    fn stage(&self, stage: Stage, total: usize);
    /// One file finished the current stage.
    fn advance(&self);
}

/// Reports nothing.
pub struct Silent;

impl Progress for Silent {
    fn stage(&self, _: Stage, _: usize) {}
    fn advance(&self) {}
}

/// Sizes of a group of files.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Sizes {
    pub files: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Bytes served to a gzip client (the variant when kept, else the file).
    pub gzip: u64,
    /// Bytes served to a brotli client (the variant when kept, else the file).
    pub brotli: u64,
}

impl Sizes {
    /// Fraction of the input saved for a brotli client.
    pub fn saved(&self) -> f64 {
        if self.bytes_in == 0 {
            0.0
        } else {
            1.0 - self.brotli as f64 / self.bytes_in as f64
        }
    }
}

/// The machine-readable summary (`--json`).
#[derive(Debug, Serialize)]
pub struct Summary {
    pub ok: bool,
    pub output: String,
    pub duration_ms: u128,
    pub files_written: usize,
    pub files_removed: usize,
    pub cache_hits: usize,
    pub cache_misses: usize,
    pub kinds: BTreeMap<String, Sizes>,
    pub total: Sizes,
    pub slowest: Vec<Timing>,
    pub diagnostics: Vec<Diagnostic>,
    pub warnings: usize,
    pub errors: usize,
}

#[derive(Debug, Serialize)]
pub struct Timing {
    pub path: String,
    pub ms: f64,
}

impl Summary {
    pub fn new(outcome: &BuildOutcome, output: &std::path::Path, strict: bool) -> Summary {
        let mut kinds: BTreeMap<String, Sizes> = BTreeMap::new();
        let mut total = Sizes::default();
        for entry in outcome.manifest.files.values() {
            for sizes in [
                kinds.entry(entry.kind.name().to_owned()).or_default(),
                &mut total,
            ] {
                sizes.files += 1;
                sizes.bytes_in += entry.bytes_in;
                sizes.bytes_out += entry.bytes_out;
                sizes.gzip += entry.gzip.unwrap_or(entry.bytes_out);
                sizes.brotli += entry.brotli.unwrap_or(entry.bytes_out);
            }
        }
        let count = |s| {
            outcome
                .diagnostics
                .iter()
                .filter(|d| d.severity == s)
                .count()
        };
        Summary {
            ok: !outcome.failed(strict),
            output: output.display().to_string(),
            duration_ms: outcome.duration.as_millis(),
            files_written: outcome.files_written,
            files_removed: outcome.files_removed,
            cache_hits: outcome.cache_hits,
            cache_misses: outcome.cache_misses,
            kinds,
            total,
            slowest: outcome
                .timings
                .iter()
                .take(5)
                .map(|(path, d)| Timing {
                    path: path.clone(),
                    ms: (d.as_secs_f64() * 1e5).round() / 100.0,
                })
                .collect(),
            diagnostics: outcome.diagnostics.clone(),
            warnings: count(Severity::Warning),
            errors: count(Severity::Error),
        }
    }

    /// The human summary: a table per kind, the slowest files, the verdict.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<12} {:>6} {:>11} {:>11} {:>11} {:>11} {:>7}",
            "kind", "files", "in", "out", "gzip", "brotli", "saved"
        );
        let row = |out: &mut String, name: &str, s: &Sizes| {
            let _ = writeln!(
                out,
                "{:<12} {:>6} {:>11} {:>11} {:>11} {:>11} {:>6.1}%",
                name,
                s.files,
                human_bytes(s.bytes_in),
                human_bytes(s.bytes_out),
                human_bytes(s.gzip),
                human_bytes(s.brotli),
                s.saved() * 100.0
            );
        };
        for (kind, sizes) in &self.kinds {
            row(&mut out, kind, sizes);
        }
        row(&mut out, "total", &self.total);
        if !self.slowest.is_empty() {
            let list: Vec<String> = self
                .slowest
                .iter()
                .map(|t| format!("{} ({:.1} ms)", t.path, t.ms))
                .collect();
            let _ = writeln!(out, "slowest: {}", list.join(", "));
        }
        let _ = writeln!(
            out,
            "{} files in {} ms → {} ({} written, {} removed; cache: {} hits, {} misses); {} warnings, {} errors",
            self.total.files,
            self.duration_ms,
            self.output,
            self.files_written,
            self.files_removed,
            self.cache_hits,
            self.cache_misses,
            self.warnings,
            self.errors
        );
        out
    }
}

/// `1234567` → `1.2 MB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_human() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1234), "1.2 kB");
        assert_eq!(human_bytes(5_600_000), "5.6 MB");
    }
}
