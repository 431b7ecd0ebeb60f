//! Size changes between two builds: per file, per kind and in total, as a
//! client receives them (raw, gzip, brotli). The baseline is a manifest file,
//! an output directory, or a deploy target whose last deploy left its
//! manifest beside the deploy state (`.kiln-manifest.json`).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use serde::Serialize;

use crate::deploy::DeployOptions;
use crate::deploy::DeploySettings;
use crate::emit::manifest::{FileEntry, Manifest};
use crate::error::{Error, Result};
use crate::report::budget::Metric;
use crate::units::{human_bytes, percent, signed_bytes};

/// What a client receives of a file, or of a group of files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Size {
    pub raw: u64,
    pub gzip: u64,
    pub brotli: u64,
}

impl Size {
    fn of(entry: &FileEntry) -> Size {
        Size {
            raw: Metric::Raw.of(entry),
            gzip: Metric::Gzip.of(entry),
            brotli: Metric::Brotli.of(entry),
        }
    }

    fn add(&mut self, other: Size) {
        self.raw += other.raw;
        self.gzip += other.gzip;
        self.brotli += other.brotli;
    }
}

/// Before and after.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Change {
    pub old: Size,
    pub new: Size,
}

impl Change {
    /// Brotli growth in bytes (negative: smaller).
    pub fn delta(&self) -> i64 {
        self.new.brotli as i64 - self.old.brotli as i64
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Added,
    Removed,
    Changed,
}

/// One file that differs, by source path.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileDiff {
    pub path: String,
    pub kind: String,
    pub status: Status,
    pub old: Option<Size>,
    pub new: Option<Size>,
}

impl FileDiff {
    pub fn delta(&self) -> i64 {
        self.new.map_or(0, |s| s.brotli as i64) - self.old.map_or(0, |s| s.brotli as i64)
    }
}

/// Two builds compared. Unchanged files are left out of `files`.
#[derive(Debug, Clone, Serialize)]
pub struct Diff {
    pub old: String,
    pub new: String,
    pub total: Change,
    pub kinds: BTreeMap<String, Change>,
    /// Sorted by brotli growth, largest first.
    pub files: Vec<FileDiff>,
}

/// Compare `old` with `new`.
pub fn diff(old: &Manifest, new: &Manifest, old_label: &str, new_label: &str) -> Diff {
    let mut total = Change::default();
    let mut kinds: BTreeMap<String, Change> = BTreeMap::new();
    let mut files = Vec::new();
    for (path, entry) in &old.files {
        let size = Size::of(entry);
        total.old.add(size);
        kinds
            .entry(entry.kind.name().to_owned())
            .or_default()
            .old
            .add(size);
        if !new.files.contains_key(path) {
            files.push(FileDiff {
                path: path.clone(),
                kind: entry.kind.name().to_owned(),
                status: Status::Removed,
                old: Some(size),
                new: None,
            });
        }
    }
    for (path, entry) in &new.files {
        let size = Size::of(entry);
        total.new.add(size);
        kinds
            .entry(entry.kind.name().to_owned())
            .or_default()
            .new
            .add(size);
        let status = match old.files.get(path) {
            None => Status::Added,
            Some(before) if before.blake3 != entry.blake3 || Size::of(before) != size => {
                Status::Changed
            }
            Some(_) => continue,
        };
        files.push(FileDiff {
            path: path.clone(),
            kind: entry.kind.name().to_owned(),
            status,
            old: old.files.get(path).map(Size::of),
            new: Some(size),
        });
    }
    files.sort_by(|a, b| b.delta().cmp(&a.delta()).then_with(|| a.path.cmp(&b.path)));
    Diff {
        old: old_label.to_owned(),
        new: new_label.to_owned(),
        total,
        kinds,
        files,
    }
}

impl Diff {
    /// The files that grew most, largest growth first.
    pub fn growers(&self, n: usize) -> impl Iterator<Item = &FileDiff> {
        self.files.iter().filter(|f| f.delta() > 0).take(n)
    }

    /// A table per kind, then the files that changed most.
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        let _ = writeln!(text, "size changes: {} → {} (brotli)", self.old, self.new);
        let row = |text: &mut String, name: &str, c: &Change| {
            let _ = writeln!(
                text,
                "  {name:<12} {:>10} → {:<10} {:>12} {:>8}",
                human_bytes(c.old.brotli),
                human_bytes(c.new.brotli),
                signed_bytes(c.delta()),
                percent(c.old.brotli, c.new.brotli)
            );
        };
        for (kind, change) in &self.kinds {
            if change.old != change.new {
                row(&mut text, kind, change);
            }
        }
        row(&mut text, "total", &self.total);
        let added = self.count(Status::Added);
        let removed = self.count(Status::Removed);
        let changed = self.count(Status::Changed);
        let _ = writeln!(
            text,
            "  {changed} changed, {added} added, {removed} removed"
        );
        let mut shown: Vec<&FileDiff> = self.files.iter().filter(|f| f.delta() != 0).collect();
        shown.sort_by_key(|f| std::cmp::Reverse(f.delta().unsigned_abs()));
        for f in shown.iter().take(10) {
            let _ = writeln!(
                text,
                "  {:<8} {:>12}  {}",
                match f.status {
                    Status::Added => "added",
                    Status::Removed => "removed",
                    Status::Changed => "changed",
                },
                signed_bytes(f.delta()),
                f.path
            );
        }
        text
    }

    fn count(&self, status: Status) -> usize {
        self.files.iter().filter(|f| f.status == status).count()
    }
}

/// A baseline to compare with.
#[derive(Debug)]
pub struct Baseline {
    /// How it is named in reports.
    pub label: String,
    /// `None`: a deploy target with no deploy yet (or from before kiln kept its manifest).
    pub manifest: Option<Manifest>,
}

/// Read a baseline: `s3://…` or `dir:…` (the last deploy's manifest), a
/// manifest file, or an output directory holding `kiln-manifest.json`.
pub fn read_baseline(spec: &str, settings: &DeploySettings) -> Result<Baseline> {
    if spec.starts_with("s3://") || spec.starts_with("dir:") {
        // Only where the store is: a deploy setting that does not apply to
        // reading (a bad `keep_for`) must not stop a comparison.
        let target = DeploySettings {
            to: Some(spec.to_owned()),
            endpoint: settings.endpoint.clone(),
            region: settings.region.clone(),
            path_style: settings.path_style,
            ..DeploySettings::default()
        };
        let mut options = DeployOptions::from_settings(&target)?;
        // A comparison is not worth a minute of retries against a wrong endpoint.
        options.max_attempts = 3;
        let manifest = crate::deploy::fetch_manifest(&options)?
            .map(|bytes| Manifest::parse(spec, &bytes))
            .transpose()?;
        return Ok(Baseline {
            label: spec.to_owned(),
            manifest,
        });
    }
    let path = Path::new(spec);
    let file = if path.is_dir() {
        crate::emit::manifest::manifest_file(path)
    } else {
        path.to_path_buf()
    };
    let bytes = std::fs::read(&file).map_err(|e| Error::io(&file, e))?;
    Ok(Baseline {
        label: spec.to_owned(),
        manifest: Some(Manifest::parse(&file.display().to_string(), &bytes)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asset::AssetKind;

    use crate::emit::manifest::testing::manifest;

    fn entry(kind: AssetKind, hash: &str, raw: u64, brotli: Option<u64>) -> FileEntry {
        crate::emit::manifest::testing::entry(kind, hash, raw, None, brotli)
    }

    #[test]
    fn added_removed_changed_and_totals() {
        let old = manifest(&[
            ("a.js", entry(AssetKind::Js, "1", 1000, Some(400))),
            ("gone.css", entry(AssetKind::Css, "2", 500, Some(200))),
            ("same.png", entry(AssetKind::Png, "3", 800, None)),
        ]);
        let new = manifest(&[
            ("a.js", entry(AssetKind::Js, "9", 1500, Some(600))),
            ("new.js", entry(AssetKind::Js, "4", 100, None)),
            ("same.png", entry(AssetKind::Png, "3", 800, None)),
        ]);
        let d = diff(&old, &new, "old", "new");
        let got: Vec<_> = d
            .files
            .iter()
            .map(|f| (f.path.as_str(), f.status))
            .collect();
        assert_eq!(
            got,
            [
                ("a.js", Status::Changed),
                ("new.js", Status::Added),
                ("gone.css", Status::Removed)
            ]
        );
        assert_eq!(d.total.old.brotli, 400 + 200 + 800);
        assert_eq!(d.total.new.brotli, 600 + 100 + 800);
        assert_eq!(d.kinds["js"].delta(), 300);
        assert_eq!(d.kinds["css"].delta(), -200);
        assert_eq!(d.growers(5).count(), 2);
        let text = d.to_text();
        assert!(text.contains("1 changed, 1 added, 1 removed"), "{text}");
        assert!(text.contains("+200 B  a.js"), "{text}");
    }
}
