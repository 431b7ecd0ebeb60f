//! What the user sees of a build: progress while it runs, then a table per
//! kind (files, bytes in and out, gzip, brotli, saved) and the slowest files,
//! as text or as JSON. The library reports through [`Progress`](crate::progress::Progress); printing is
//! the CLI's business.

pub mod annotate;
pub mod budget;
pub mod diff;

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use crate::config::Config;
use crate::diag::{Diagnostic, Severity};
use crate::emit::manifest::Manifest;
use crate::pipeline::BuildOutcome;
use crate::report::diff::{Baseline, Diff};
use crate::units::human_bytes;

pub use crate::emit::manifest::REPORT_FILE;

/// The report page: inline CSS and JS, no network. The data replaces the
/// placeholder, as JSON inside `<script type="application/json">`.
const TEMPLATE: &str = include_str!("template.html");
const DATA_PLACEHOLDER: &str = "__KILN_REPORT_DATA__";

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

    /// A row of the size tables (text and Markdown): files, in, out, gzip,
    /// brotli, saved.
    fn cells(&self) -> [String; 6] {
        [
            self.files.to_string(),
            human_bytes(self.bytes_in),
            human_bytes(self.bytes_out),
            human_bytes(self.gzip),
            human_bytes(self.brotli),
            format!("{:.1}%", self.saved() * 100.0),
        ]
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
    /// Time the workers spent in each step, summed over threads.
    pub work_ms: WorkMs,
    pub diagnostics: Vec<Diagnostic>,
    pub warnings: usize,
    pub errors: usize,
    /// Budgets checked, when there are any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budgets: Option<budget::Report>,
    /// Changes against the baseline (`--compare-to`), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<Diff>,
    /// Path of kiln-report.html, when written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
}

/// [`crate::pipeline::Work`] in milliseconds (to 0.01 ms).
#[derive(Debug, Serialize)]
pub struct WorkMs {
    pub transform: f64,
    pub gzip: f64,
    pub brotli: f64,
    /// Only with `[compress] zstd`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zstd: Option<f64>,
}

impl From<crate::pipeline::Work> for WorkMs {
    fn from(w: crate::pipeline::Work) -> WorkMs {
        let ms = |d: std::time::Duration| (d.as_secs_f64() * 1e5).round() / 100.0;
        WorkMs {
            transform: ms(w.transform),
            gzip: ms(w.gzip),
            brotli: ms(w.brotli),
            zstd: (!w.zstd.is_zero()).then(|| ms(w.zstd)),
        }
    }
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
        let mut variants_total = Sizes::default();
        for entry in outcome.manifest.files.values() {
            // A generated variant is an alternative to its image, not one
            // more download: it has a row of its own and stays out of the total.
            let (name, total) = match entry.variant_of {
                Some(_) => (
                    format!("{} variants", entry.kind.name()),
                    &mut variants_total,
                ),
                None => (entry.kind.name().to_owned(), &mut total),
            };
            for sizes in [kinds.entry(name).or_default(), total] {
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
            work_ms: outcome.work.into(),
            diagnostics: outcome.diagnostics.clone(),
            warnings: count(Severity::Warning),
            errors: count(Severity::Error),
            budgets: None,
            diff: None,
            report: None,
        }
    }

    /// The status of the budgets: `pass`, `fail` or `none`.
    pub fn budget_status(&self) -> budget::Status {
        self.budgets
            .as_ref()
            .map_or(budget::Status::None, budget::Report::status)
    }

    /// Step outputs for GitHub Actions (`$GITHUB_OUTPUT`).
    pub fn github_outputs(&self, manifest_path: &str) -> Vec<(&'static str, String)> {
        vec![
            ("manifest", manifest_path.to_owned()),
            ("report", self.report.clone().unwrap_or_default()),
            ("files", self.total.files.to_string()),
            ("bytes-in", self.total.bytes_in.to_string()),
            ("bytes-out", self.total.bytes_out.to_string()),
            ("bytes-gzip", self.total.gzip.to_string()),
            ("bytes-brotli", self.total.brotli.to_string()),
            ("budget-status", self.budget_status().name().to_owned()),
        ]
    }

    /// The job summary for GitHub Actions (`$GITHUB_STEP_SUMMARY`), in Markdown.
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let verdict = if self.ok { "✅" } else { "❌" };
        let _ = writeln!(
            md,
            "## {verdict} kiln build: {} files, {} → {} brotli ({:.1}% saved)\n",
            self.total.files,
            human_bytes(self.total.bytes_in),
            human_bytes(self.total.brotli),
            self.total.saved() * 100.0
        );
        let _ = writeln!(
            md,
            "| kind | files | in | out | gzip | brotli | saved |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
        );
        let mut row = |name: &str, s: &Sizes| {
            let _ = writeln!(md, "| {name} | {} |", s.cells().join(" | "));
        };
        for (kind, sizes) in &self.kinds {
            row(kind, sizes);
        }
        row("**total**", &self.total);
        if self.errors + self.warnings > 0 {
            let _ = writeln!(
                md,
                "\n{} errors, {} warnings (annotated where the repository holds the file).",
                self.errors, self.warnings
            );
        }
        if let Some(budgets) = &self.budgets
            && budgets.status() != budget::Status::None
        {
            let _ = writeln!(
                md,
                "\n### Budgets: {}\n\n| | rule | size | of | actual | limit | file |\n| --- | --- | --- | --- | ---: | ---: | --- |",
                budgets.status().name()
            );
            for o in &budgets.outcomes {
                let _ = writeln!(
                    md,
                    "| {} | `{}` | {} | {} | {} | {} | {} |",
                    if o.ok { "✅" } else { "❌" },
                    md_escape(&o.rule),
                    o.metric.name(),
                    match o.scope {
                        budget::Scope::File => "each file",
                        budget::Scope::Total => "total",
                        budget::Scope::Growth => "growth",
                    },
                    budget::show(o.actual, o.unit),
                    budget::show(o.limit, o.unit),
                    o.path.as_deref().map(md_escape).unwrap_or_default()
                );
            }
            for u in &budgets.unchecked {
                let _ = writeln!(
                    md,
                    "| – | `{}` | brotli | growth | not checked: {} | | |",
                    md_escape(&u.rule),
                    md_escape(&u.reason)
                );
            }
            for rule in &budgets.unmatched {
                let _ = writeln!(
                    md,
                    "| ⚠️ | `{}` | | | selects no file | | |",
                    md_escape(rule)
                );
            }
        }
        if let Some(diff) = &self.diff {
            let _ = writeln!(
                md,
                "\n### Size changes against `{}` (brotli)\n\n| kind | before | after | change | |\n| --- | ---: | ---: | ---: | ---: |",
                md_escape(&diff.old)
            );
            let mut row = |name: &str, c: &crate::report::diff::Change| {
                let _ = writeln!(
                    md,
                    "| {name} | {} | {} | {} | {} |",
                    human_bytes(c.old.brotli),
                    human_bytes(c.new.brotli),
                    crate::units::signed_bytes(c.delta()),
                    crate::units::percent(c.old.brotli, c.new.brotli)
                );
            };
            for (kind, change) in &diff.kinds {
                if change.old != change.new {
                    row(kind, change);
                }
            }
            row("**total**", &diff.total);
            let growers: Vec<_> = diff.growers(10).collect();
            if !growers.is_empty() {
                let _ = writeln!(
                    md,
                    "\n**Top growers**\n\n| file | status | before | after | change |\n| --- | --- | ---: | ---: | ---: |"
                );
                for f in growers {
                    let _ = writeln!(
                        md,
                        "| {} | {} | {} | {} | {} |",
                        md_escape(&f.path),
                        serde_json::to_value(f.status)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default(),
                        f.old.map(|s| human_bytes(s.brotli)).unwrap_or_default(),
                        f.new.map(|s| human_bytes(s.brotli)).unwrap_or_default(),
                        crate::units::signed_bytes(f.delta())
                    );
                }
            }
        }
        md
    }

    /// The human summary: a table per kind, the slowest files, the verdict.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<14} {:>6} {:>11} {:>11} {:>11} {:>11} {:>7}",
            "kind", "files", "in", "out", "gzip", "brotli", "saved"
        );
        let row = |out: &mut String, name: &str, s: &Sizes| {
            let [files, bytes_in, bytes_out, gzip, brotli, saved] = s.cells();
            let _ = writeln!(
                out,
                "{name:<14} {files:>6} {bytes_in:>11} {bytes_out:>11} {gzip:>11} {brotli:>11} {saved:>7}"
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
        let w = &self.work_ms;
        if w.transform + w.gzip + w.brotli > 0.0 {
            let s = |ms: f64| match ms {
                ms if ms < 1000.0 => format!("{ms:.0} ms"),
                ms => format!("{:.1} s", ms / 1000.0),
            };
            let zstd = w
                .zstd
                .map(|z| format!(", zstd {}", s(z)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "work, summed over threads: transform {}, gzip {}, brotli {}{zstd}",
                s(w.transform),
                s(w.gzip),
                s(w.brotli)
            );
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

/// Text safe inside a Markdown table cell.
fn md_escape(text: &str) -> String {
    text.replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('`', "'")
        .replace('\n', " ")
}

/// One file in the report.
#[derive(Debug, Serialize)]
struct ReportFile<'a> {
    path: &'a str,
    output: &'a str,
    kind: &'static str,
    bytes_in: u64,
    bytes_out: u64,
    gzip: Option<u64>,
    brotli: Option<u64>,
}

/// Bytes before and after one stage.
#[derive(Debug, Serialize)]
struct StageSaving {
    stage: &'static str,
    before: u64,
    after: u64,
}

#[derive(Debug, Serialize)]
struct ReportData<'a> {
    generator: String,
    /// The output directory's name only: the report, like every output, is
    /// the same bytes wherever the build is written.
    output: String,
    total: &'a Sizes,
    kinds: &'a BTreeMap<String, Sizes>,
    stages: Vec<StageSaving>,
    files: Vec<ReportFile<'a>>,
    budgets: &'a [budget::Outcome],
    diff: Option<&'a Diff>,
}

/// The report page for a build: the template with the build's data in it.
pub fn html(summary: &Summary, manifest: &Manifest) -> String {
    let total = &summary.total;
    let data = ReportData {
        generator: crate::generator(),
        output: std::path::Path::new(&summary.output)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        total,
        kinds: &summary.kinds,
        stages: vec![
            StageSaving {
                stage: "minify",
                before: total.bytes_in,
                after: total.bytes_out,
            },
            StageSaving {
                stage: "gzip",
                before: total.bytes_out,
                after: total.gzip,
            },
            StageSaving {
                stage: "brotli",
                before: total.bytes_out,
                after: total.brotli,
            },
        ],
        files: manifest
            .files
            .iter()
            .map(|(path, e)| ReportFile {
                path,
                output: &e.output,
                kind: e.kind.name(),
                bytes_in: e.bytes_in,
                bytes_out: e.bytes_out,
                gzip: e.gzip,
                brotli: e.brotli,
            })
            .collect(),
        budgets: summary
            .budgets
            .as_ref()
            .map_or(&[][..], |b| b.outcomes.as_slice()),
        diff: summary.diff.as_ref(),
    };
    // `<` escaped, so no `</script>` can end the data early.
    let json = serde_json::to_string(&data)
        .expect("report data serialises")
        .replace('<', "\\u003c");
    TEMPLATE.replacen(DATA_PLACEHOLDER, &json, 1)
}

/// What a finished build tells its caller: its [`Summary`], with the budgets
/// checked, the diff against `baseline`, and the path of `kiln-report.html`
/// once written; and notes on what could not be done (each a warning for the
/// user, none a reason to fail). The CLI prints exactly this.
pub fn tell(
    config: &Config,
    outcome: &BuildOutcome,
    baseline: Option<&Baseline>,
) -> (Summary, Vec<String>) {
    let mut summary = Summary::new(outcome, &config.output, config.strict);
    let mut notes = Vec::new();
    // Growth budgets compare with the baseline, else with the build this one replaced.
    let growth_base = match baseline {
        Some(b) => b.manifest.as_ref(),
        None => outcome.previous.as_ref(),
    };
    if !config.budgets.is_empty() {
        summary.budgets = Some(budget::check(
            &config.budgets,
            &outcome.manifest,
            growth_base,
        ));
    }
    if let Some(b) = baseline {
        match &b.manifest {
            Some(old) => {
                summary.diff = Some(diff::diff(old, &outcome.manifest, &b.label, "this build"));
            }
            None => notes.push(format!(
                "{} holds no earlier kiln deploy; nothing to compare with",
                b.label
            )),
        }
    }
    let meta = config.meta_dir();
    let taken = meta == config.output
        && outcome
            .manifest
            .served()
            .iter()
            .any(|s| s.path == REPORT_FILE);
    if config.report && taken {
        notes.push(format!(
            "the source has a file served as {REPORT_FILE}; the size report is not written (report = false in kiln.toml silences this)"
        ));
    } else if config.report {
        match write_html(&meta, &summary, &outcome.manifest) {
            Ok(path) => summary.report = Some(path.display().to_string()),
            Err(e) => notes.push(e.to_string()),
        }
    }
    (summary, notes)
}

/// Write `kiln-report.html` into `out` (the output, or the folder beside
/// it); returns its path.
pub fn write_html(
    out: &std::path::Path,
    summary: &Summary,
    manifest: &Manifest,
) -> crate::Result<std::path::PathBuf> {
    crate::emit::write_atomic(out, REPORT_FILE, html(summary, manifest).as_bytes())?;
    Ok(out.join(REPORT_FILE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_has_one_placeholder() {
        assert_eq!(TEMPLATE.matches(DATA_PLACEHOLDER).count(), 1);
        assert!(TEMPLATE.contains(&format!(">{DATA_PLACEHOLDER}</script>")));
    }

    #[test]
    fn markdown_escapes_table_cells() {
        assert_eq!(md_escape("a|b<c>\nd"), "a\\|b&lt;c> d");
    }
}
