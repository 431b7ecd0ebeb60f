//! Size budgets: `[[budget]]` rules in kiln.toml (or a file given with
//! `--budgets`) checked against a build's manifest, and against a baseline
//! manifest for growth limits.
//!
//! A rule selects files by a glob over their source paths, by kind, or both,
//! and limits any of: the size of each file (raw, gzip, brotli), the total of
//! the selected files, and the growth of that total against the baseline in
//! percent. Sizes are what a client receives: the gzip or brotli variant when
//! one is kept, else the file itself.

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::emit::manifest::{FileEntry, Manifest};
use crate::error::ConfigError;
use crate::glob::GlobList;
use crate::units::human_bytes;

/// A size in kiln.toml: bytes, or a string with a unit (`"170kB"`, `"1.5MiB"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum SizeValue {
    Bytes(u64),
    Text(String),
}

/// A percentage: `10`, `2.5` or `"10%"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum PercentValue {
    Number(f64),
    Text(String),
}

/// One `[[budget]]` table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileBudget {
    path: Option<Spanned<String>>,
    kind: Option<Spanned<String>>,
    max_raw: Option<Spanned<SizeValue>>,
    max_gzip: Option<Spanned<SizeValue>>,
    max_brotli: Option<Spanned<SizeValue>>,
    max_total_raw: Option<Spanned<SizeValue>>,
    max_total_gzip: Option<Spanned<SizeValue>>,
    max_total_brotli: Option<Spanned<SizeValue>>,
    max_growth: Option<Spanned<PercentValue>>,
}

/// A file of budgets (`--budgets FILE`): only `[[budget]]` tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BudgetsFile {
    #[serde(default)]
    budget: Vec<FileBudget>,
}

/// Which size of a file a limit applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    Raw,
    Gzip,
    Brotli,
}

impl Metric {
    /// The size a client of this metric receives.
    pub fn of(self, entry: &FileEntry) -> u64 {
        match self {
            Metric::Raw => entry.bytes_out,
            Metric::Gzip => entry.gzip.unwrap_or(entry.bytes_out),
            Metric::Brotli => entry.brotli.unwrap_or(entry.bytes_out),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Metric::Raw => "raw",
            Metric::Gzip => "gzip",
            Metric::Brotli => "brotli",
        }
    }
}

/// A resolved rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// How the rule reads in reports: the glob, `kind=js`, or both.
    pub label: String,
    glob: Option<GlobList>,
    kind: Option<String>,
    per_file: Vec<(Metric, u64)>,
    total: Vec<(Metric, u64)>,
    /// Largest growth of the selected files' brotli total, in percent.
    growth: Option<f64>,
}

impl Rule {
    /// Generated variants are alternatives to the images pages link, not
    /// more bytes to download: no rule counts them.
    fn selects(&self, source: &str, entry: &FileEntry) -> bool {
        entry.variant_of.is_none()
            && self.glob.as_ref().is_none_or(|g| g.is_match(source))
            && self.kind.as_deref().is_none_or(|k| k == entry.kind.name())
    }

    fn selected<'m>(&self, manifest: &'m Manifest) -> Vec<(&'m str, &'m FileEntry)> {
        manifest
            .files
            .iter()
            .filter(|(source, entry)| self.selects(source, entry))
            .map(|(source, entry)| (source.as_str(), entry))
            .collect()
    }
}

/// What a limit applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Each selected file.
    File,
    /// The sum over the selected files.
    Total,
    /// The sum's growth against the baseline.
    Growth,
}

/// One checked limit.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Outcome {
    pub rule: String,
    pub metric: Metric,
    pub scope: Scope,
    /// `bytes`, or `percent` for growth.
    pub unit: &'static str,
    pub limit: f64,
    pub actual: f64,
    /// The file, for a per-file limit: the offender, or the largest file when all pass.
    pub path: Option<String>,
    pub ok: bool,
}

/// The result of checking every rule.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub outcomes: Vec<Outcome>,
    /// Growth limits that could not be checked, and why.
    pub unchecked: Vec<Unchecked>,
    /// Rules that select no file (a glob written with hashed names, a typo).
    pub unmatched: Vec<String>,
}

/// The verdict over all budgets (`budget-status` of the Action).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// No budget is set.
    None,
    Pass,
    Fail,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::None => "none",
            Status::Pass => "pass",
            Status::Fail => "fail",
        }
    }
}

/// A growth limit that was not checked.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Unchecked {
    pub rule: String,
    pub reason: String,
}

impl Report {
    pub fn failed(&self) -> usize {
        self.outcomes.iter().filter(|o| !o.ok).count()
    }

    /// Whether every budget held; [`Status::None`] when there are none.
    pub fn status(&self) -> Status {
        if self.outcomes.is_empty() && self.unchecked.is_empty() && self.unmatched.is_empty() {
            Status::None
        } else if self.failed() > 0 {
            Status::Fail
        } else {
            Status::Pass
        }
    }

    /// The table printed after a build.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut text = String::new();
        if self.outcomes.is_empty() && self.unchecked.is_empty() && self.unmatched.is_empty() {
            return text;
        }
        let _ = writeln!(text, "budgets:");
        for o in &self.outcomes {
            let _ = writeln!(
                text,
                "  {} {:<24} {:<6} {:<6} {:>10} / {:<10}{}",
                if o.ok { "ok  " } else { "FAIL" },
                o.rule,
                o.metric.name(),
                scope_name(o.scope),
                show(o.actual, o.unit),
                show(o.limit, o.unit),
                o.path
                    .as_deref()
                    .map(|p| format!("  {p}"))
                    .unwrap_or_default()
            );
        }
        for u in &self.unchecked {
            let _ = writeln!(
                text,
                "  --   {:<24} growth not checked: {}",
                u.rule, u.reason
            );
        }
        for rule in &self.unmatched {
            let _ = writeln!(
                text,
                "  warning: budget `{rule}` selects no file (globs match source paths, not hashed names)"
            );
        }
        let failed = self.failed();
        if failed > 0 {
            let _ = writeln!(text, "{failed} budget(s) exceeded");
        }
        text
    }
}

fn scope_name(scope: Scope) -> &'static str {
    match scope {
        Scope::File => "file",
        Scope::Total => "total",
        Scope::Growth => "growth",
    }
}

/// `1234` bytes as `1.2 kB`; a percentage as `2.5%`.
pub fn show(value: f64, unit: &str) -> String {
    if unit == "percent" {
        format!("{value:.1}%")
    } else {
        human_bytes(value as u64)
    }
}

/// Check every rule against `manifest`; growth against `baseline` when there is one.
pub fn check(rules: &[Rule], manifest: &Manifest, baseline: Option<&Manifest>) -> Report {
    let mut report = Report::default();
    for rule in rules {
        let files = rule.selected(manifest);
        for &(metric, limit) in &rule.per_file {
            let over: Vec<_> = files.iter().filter(|(_, e)| metric.of(e) > limit).collect();
            let outcome = |path: &str, actual: u64, ok: bool| Outcome {
                rule: rule.label.clone(),
                metric,
                scope: Scope::File,
                unit: "bytes",
                limit: limit as f64,
                actual: actual as f64,
                path: Some(path.to_owned()),
                ok,
            };
            if over.is_empty() {
                if let Some((path, entry)) = files.iter().max_by_key(|(_, e)| metric.of(e)) {
                    report.outcomes.push(outcome(path, metric.of(entry), true));
                }
            } else {
                for (path, entry) in over {
                    report.outcomes.push(outcome(path, metric.of(entry), false));
                }
            }
        }
        let sum = |files: &[(&str, &FileEntry)], metric: Metric| -> u64 {
            files.iter().map(|(_, e)| metric.of(e)).sum()
        };
        for &(metric, limit) in &rule.total {
            let actual = sum(&files, metric);
            report.outcomes.push(Outcome {
                rule: rule.label.clone(),
                metric,
                scope: Scope::Total,
                unit: "bytes",
                limit: limit as f64,
                actual: actual as f64,
                path: None,
                ok: actual <= limit,
            });
        }
        if files.is_empty() {
            report.unmatched.push(rule.label.clone());
        }
        if let Some(limit) = rule.growth {
            let unchecked = |reason: &str| Unchecked {
                rule: rule.label.clone(),
                reason: reason.to_owned(),
            };
            match baseline {
                None => report.unchecked.push(unchecked(
                    "no baseline (a previous build in the output, or --compare-to)",
                )),
                Some(old) if old.compression != manifest.compression => report
                    .unchecked
                    .push(unchecked("the baseline was compressed with other settings")),
                Some(old) => {
                    let before = sum(&rule.selected(old), Metric::Brotli);
                    let after = sum(&files, Metric::Brotli);
                    if before == 0 {
                        // Growth from nothing has no percentage; the size
                        // limits judge new files.
                        report
                            .unchecked
                            .push(unchecked("the baseline has no such files"));
                    } else {
                        let growth = (after as f64 / before as f64 - 1.0) * 100.0;
                        let shown = (growth * 10.0).round() / 10.0;
                        report.outcomes.push(Outcome {
                            rule: rule.label.clone(),
                            metric: Metric::Brotli,
                            scope: Scope::Growth,
                            unit: "percent",
                            limit,
                            actual: shown,
                            path: None,
                            // Judged on the figure shown, so the table never
                            // says "5.0% / 5.0%: FAIL".
                            ok: shown <= limit,
                        });
                    }
                }
            }
        }
    }
    report
}

/// Parse a budgets file (`--budgets FILE`): `[[budget]]` tables only.
pub fn parse_file(path: &std::path::Path, text: &str) -> Result<Vec<Rule>, ConfigError> {
    let file: BudgetsFile = toml::from_str(text).map_err(|e| {
        let (line, col) = e
            .span()
            .map(|s| crate::diag::LineIndex::new(text.as_bytes()).line_col(s.start))
            .map_or((None, None), |(l, c)| (Some(l), Some(c)));
        ConfigError {
            path: path.to_path_buf(),
            line,
            col,
            message: e.message().to_owned(),
        }
    })?;
    let at = |span: std::ops::Range<usize>, message: String| {
        let (line, col) = crate::diag::LineIndex::new(text.as_bytes()).line_col(span.start);
        ConfigError {
            path: path.to_path_buf(),
            line: Some(line),
            col: Some(col),
            message,
        }
    };
    resolve(&file.budget, &at)
}

/// Resolve `[[budget]]` tables; `at` turns a span into an error at that place.
pub fn resolve(
    tables: &[FileBudget],
    at: &dyn Fn(std::ops::Range<usize>, String) -> ConfigError,
) -> Result<Vec<Rule>, ConfigError> {
    let mut rules = Vec::new();
    for table in tables {
        let glob = match &table.path {
            Some(p) => Some(GlobList::new(&[p.get_ref()]).map_err(|(_, e)| {
                at(
                    p.span(),
                    format!("`budget.path`: invalid glob: {}", e.kind()),
                )
            })?),
            None => None,
        };
        let kind = match &table.kind {
            Some(k) => {
                let name = k.get_ref().to_ascii_lowercase();
                if !crate::asset::AssetKind::ALL
                    .iter()
                    .any(|kind| kind.name() == name)
                {
                    let known: Vec<_> = crate::asset::AssetKind::ALL
                        .iter()
                        .map(|k| k.name())
                        .collect();
                    return Err(at(
                        k.span(),
                        format!(
                            "`budget.kind`: unknown kind `{name}` (one of {})",
                            known.join(", ")
                        ),
                    ));
                }
                Some(name)
            }
            None => None,
        };
        let size = |value: &Option<Spanned<SizeValue>>, key: &str| -> Result<Option<u64>, _> {
            match value {
                None => Ok(None),
                Some(v) => match v.get_ref() {
                    SizeValue::Bytes(n) => Ok(Some(*n)),
                    SizeValue::Text(t) => crate::units::parse_size(t)
                        .map(Some)
                        .map_err(|m| at(v.span(), format!("`budget.{key}`: {m}"))),
                },
            }
        };
        let mut per_file = Vec::new();
        let mut total = Vec::new();
        for (metric, value, key, is_total) in [
            (Metric::Raw, &table.max_raw, "max_raw", false),
            (Metric::Gzip, &table.max_gzip, "max_gzip", false),
            (Metric::Brotli, &table.max_brotli, "max_brotli", false),
            (Metric::Raw, &table.max_total_raw, "max_total_raw", true),
            (Metric::Gzip, &table.max_total_gzip, "max_total_gzip", true),
            (
                Metric::Brotli,
                &table.max_total_brotli,
                "max_total_brotli",
                true,
            ),
        ] {
            if let Some(limit) = size(value, key)? {
                if is_total { &mut total } else { &mut per_file }.push((metric, limit));
            }
        }
        let growth = match &table.max_growth {
            None => None,
            Some(v) => {
                let number = match v.get_ref() {
                    PercentValue::Number(n) => Some(*n),
                    PercentValue::Text(t) => t.trim().trim_end_matches('%').trim().parse().ok(),
                };
                match number {
                    Some(n) if n.is_finite() && n >= 0.0 => Some(n),
                    _ => {
                        return Err(at(
                            v.span(),
                            "`budget.max_growth`: a percentage such as 10 or \"10%\"".into(),
                        ));
                    }
                }
            }
        };
        let label = match (&table.path, &kind) {
            (Some(p), Some(k)) => format!("{} (kind={k})", p.get_ref()),
            (Some(p), None) => p.get_ref().clone(),
            (None, Some(k)) => format!("kind={k}"),
            (None, None) => "**".to_owned(),
        };
        if per_file.is_empty() && total.is_empty() && growth.is_none() {
            let span = table
                .path
                .as_ref()
                .map(|p| p.span())
                .or_else(|| table.kind.as_ref().map(|k| k.span()))
                .unwrap_or(0..0);
            return Err(at(
                span,
                format!(
                    "budget `{label}` sets no limit (max_raw, max_gzip, max_brotli, max_total_raw, max_total_gzip, max_total_brotli or max_growth)"
                ),
            ));
        }
        rules.push(Rule {
            label,
            glob,
            kind,
            per_file,
            total,
            growth,
        });
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asset::AssetKind;

    use crate::emit::manifest::testing::manifest;

    fn entry(kind: AssetKind, raw: u64, gzip: Option<u64>, brotli: Option<u64>) -> FileEntry {
        crate::emit::manifest::testing::entry(kind, "", raw, gzip, brotli)
    }

    fn rules(text: &str) -> Result<Vec<Rule>, ConfigError> {
        parse_file(std::path::Path::new("budgets.toml"), text)
    }

    #[test]
    fn per_file_limits_name_each_offender() {
        let m = manifest(&[
            (
                "js/app.js",
                entry(AssetKind::Js, 9000, Some(3000), Some(2500)),
            ),
            ("js/small.js", entry(AssetKind::Js, 900, None, None)),
            (
                "css/a.css",
                entry(AssetKind::Css, 50_000, Some(9000), Some(8000)),
            ),
        ]);
        let r = rules("[[budget]]\npath = \"js/**\"\nmax_brotli = \"2kB\"\n").unwrap();
        let report = check(&r, &m, None);
        assert_eq!(report.failed(), 1);
        assert_eq!(report.outcomes[0].path.as_deref(), Some("js/app.js"));
        assert_eq!(report.outcomes[0].actual, 2500.0);
        assert_eq!(report.status(), Status::Fail);
        // A file without a brotli variant is served raw: 900 bytes, under the limit.
        let r = rules("[[budget]]\npath = \"js/small.js\"\nmax_brotli = 1000\n").unwrap();
        let report = check(&r, &m, None);
        assert_eq!(report.status(), Status::Pass);
        assert_eq!(report.outcomes[0].actual, 900.0);
    }

    #[test]
    fn totals_by_kind_and_growth_against_a_baseline() {
        let old = manifest(&[("a.js", entry(AssetKind::Js, 1000, Some(500), Some(400)))]);
        let new = manifest(&[
            ("a.js", entry(AssetKind::Js, 1000, Some(500), Some(400))),
            ("b.js", entry(AssetKind::Js, 100, None, Some(60))),
            ("c.css", entry(AssetKind::Css, 100, None, None)),
        ]);
        let r = rules("[[budget]]\nkind = \"js\"\nmax_total_gzip = 600\nmax_growth = \"10%\"\n")
            .unwrap();
        let report = check(&r, &new, Some(&old));
        assert_eq!(report.outcomes.len(), 2);
        // gzip total: 500 + 100 (b.js has no gzip variant).
        assert_eq!(report.outcomes[0].actual, 600.0);
        assert!(report.outcomes[0].ok);
        assert_eq!(report.outcomes[1].scope, Scope::Growth);
        assert_eq!(report.outcomes[1].actual, 15.0);
        assert!(!report.outcomes[1].ok);
        // Without a baseline the growth limit is reported as not checked.
        let report = check(&r, &new, None);
        assert_eq!(report.unchecked[0].rule, "kind=js");
        assert_eq!(report.status(), Status::Pass);
        // Nor against a baseline compressed otherwise, or one without such files.
        let mut other = old.clone();
        other.compression.effort = crate::emit::compress::Effort::Fast;
        assert!(
            check(&r, &new, Some(&other)).unchecked[0]
                .reason
                .contains("other settings")
        );
        let empty = manifest(&[]);
        assert!(
            check(&r, &new, Some(&empty)).unchecked[0]
                .reason
                .contains("no such files")
        );
        // A rule selecting nothing is reported.
        let r = rules("[[budget]]\npath = \"assets/app.*.js\"\nmax_brotli = 1\n").unwrap();
        let report = check(&r, &new, None);
        assert_eq!(report.unmatched, vec!["assets/app.*.js".to_owned()]);
        assert!(report.to_text().contains("selects no file"));
    }

    #[test]
    fn bad_rules_are_errors_with_a_position() {
        let e = rules("[[budget]]\npath = \"js/**\"\n").unwrap_err();
        assert!(e.message.contains("sets no limit"), "{e}");
        assert_eq!(e.line, Some(2));
        let e = rules("[[budget]]\nkind = \"jsx\"\nmax_raw = 1\n").unwrap_err();
        assert!(e.message.contains("unknown kind `jsx`"), "{e}");
        let e = rules("[[budget]]\nmax_raw = \"12 parsecs\"\n").unwrap_err();
        assert!(e.message.contains("max_raw"), "{e}");
        let e = rules("[[budget]]\nmax_growth = \"lots\"\n").unwrap_err();
        assert!(e.message.contains("max_growth"), "{e}");
        let e = rules("[[budget]]\nmax_size = 1\n").unwrap_err();
        assert!(e.message.contains("max_size"), "{e}");
    }

    #[test]
    fn no_rules_is_status_none() {
        let report = check(&[], &Manifest::empty("/"), None);
        assert_eq!(report.status(), Status::None);
        assert_eq!(report.to_text(), "");
    }
}
