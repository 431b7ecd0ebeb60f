//! The walk: find every file under the source root that belongs in the build.
//!
//! Dot-folders (`.well-known/`) are kept; `exclude` globs and `.kilnignore` files
//! (gitignore syntax) are honoured; the output directory is skipped when it lies
//! inside the source; symbolic links are followed only while they stay inside
//! the source tree, and loops are reported, never followed. Classification is
//! by extension. This stage reads no file contents.

pub mod fingerprint;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::asset::{Asset, AssetKind};
use crate::diag::Diagnostic;
use crate::glob::GlobList;

/// Name of the per-directory ignore file (gitignore syntax).
pub const IGNORE_FILE: &str = ".kilnignore";

/// Which files belong to the build, and how they are classified.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Files never read from the source tree. Default: [`DEFAULT_EXCLUDE`].
    pub exclude: GlobList,
    /// Mark names a bundler fingerprinted ([`fingerprint`]): they keep their
    /// names and are served immutable. Default: true.
    pub detect_fingerprints: bool,
    /// Files a backend reads from the output directory, never served or
    /// deployed (Vite's `.vite/` manifests). Default: [`DEFAULT_PRIVATE`].
    pub private: GlobList,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            exclude: GlobList::new(DEFAULT_EXCLUDE).expect("default globs are valid"),
            detect_fingerprints: true,
            private: GlobList::new(DEFAULT_PRIVATE).expect("default globs are valid"),
        }
    }
}

/// Where a walk stops besides `exclude`.
#[derive(Debug, Default)]
pub struct Walk<'a> {
    /// Directories to skip (the output and the cache when they lie inside the source).
    pub skip_dirs: Vec<PathBuf>,
    /// Names never marked fingerprinted (`keep_names`): other software
    /// requests them by name.
    pub keep_names: Option<&'a GlobList>,
}

/// What the walk found: the assets (sorted by path) and diagnostics.
#[derive(Debug, Default)]
pub struct Scanned {
    pub assets: Vec<Asset>,
    /// Files whose names are not UTF-8: copied through, but left out of manifests.
    pub opaque: Vec<PathBuf>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Walk `root` (which must be a directory) and collect its assets.
pub fn scan(root: &Path, options: &ScanOptions, walk: &Walk<'_>) -> Scanned {
    let canonical_root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let skip_dirs: Vec<PathBuf> = walk
        .skip_dirs
        .iter()
        .filter_map(|d| d.canonicalize().ok())
        .collect();
    let mut found = Scanned::default();
    let escaped = Arc::new(Mutex::new(Vec::new()));

    let walker = ignore::WalkBuilder::new(root)
        .standard_filters(false)
        .hidden(false)
        .follow_links(true)
        .add_custom_ignore_filename(IGNORE_FILE)
        .sort_by_file_name(|a, b| a.cmp(b))
        .filter_entry({
            let canonical_root = canonical_root.clone();
            let escaped = Arc::clone(&escaped);
            move |entry| {
                if entry.depth() == 0 {
                    return true;
                }
                if !skip_dirs.is_empty()
                    && entry.file_type().is_some_and(|t| t.is_dir())
                    && entry
                        .path()
                        .canonicalize()
                        .is_ok_and(|p| skip_dirs.contains(&p))
                {
                    return false;
                }
                if entry.path_is_symlink() {
                    match entry.path().canonicalize() {
                        Ok(target) if target.starts_with(&canonical_root) => true,
                        Ok(target) => {
                            escaped
                                .lock()
                                .expect("no panics while locked")
                                .push((entry.path().to_path_buf(), target));
                            false
                        }
                        // A dangling link: let the walker report it.
                        Err(_) => true,
                    }
                } else {
                    true
                }
            }
        })
        .build();

    for result in walker {
        let entry = match result {
            Ok(entry) => entry,
            Err(err) => {
                found.diagnostics.push(walk_diagnostic(root, err));
                continue;
            }
        };
        match entry.file_type() {
            Some(t) if t.is_file() => {}
            Some(t) if t.is_dir() => continue,
            _ => {
                found.diagnostics.push(Diagnostic::warning(
                    entry.path(),
                    "not a regular file (a FIFO, socket or device): skipped",
                ));
                continue;
            }
        }
        let Ok(relative) = entry.path().strip_prefix(root) else {
            continue;
        };
        let Some(path) = relative_path(relative) else {
            found.diagnostics.push(Diagnostic::warning(
                entry.path(),
                "file name is not valid UTF-8: copied unchanged, but not listed in manifests and never rewritten",
            ));
            found.opaque.push(relative.to_path_buf());
            continue;
        };
        if options.exclude.is_match(&path) {
            continue;
        }
        let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
        found.assets.push(Asset {
            kind: AssetKind::from_path(&path),
            path,
            source: entry.path().to_path_buf(),
            size,
            fingerprinted: false,
        });
    }
    let escaped = std::mem::take(&mut *escaped.lock().expect("no panics while locked"));
    for (link, target) in escaped {
        found.diagnostics.push(Diagnostic::warning(
            link,
            format!(
                "symbolic link points outside the source directory (to {}): not followed",
                target.display()
            ),
        ));
    }
    found.assets.sort_by(|a, b| a.path.cmp(&b.path));
    if options.detect_fingerprints {
        let paths: Vec<&str> = found.assets.iter().map(|a| a.path.as_str()).collect();
        let marks = fingerprint::detect(&paths);
        let kept = |path: &str| walk.keep_names.is_some_and(|k| k.is_match(path));
        for (a, mark) in found.assets.iter_mut().zip(marks) {
            a.fingerprinted = mark && a.kind != AssetKind::Html && !kept(&a.path);
        }
    }
    // A bundler's `.gz`/`.br` beside a file are found like any file; the
    // pipeline leaves out those it replaces (`pipeline::drop_precompressed`).
    found
}

/// A `/`-separated relative path, or `None` when a component is not UTF-8.
fn relative_path(relative: &Path) -> Option<String> {
    let parts: Option<Vec<&str>> = relative
        .components()
        .map(|c| c.as_os_str().to_str())
        .collect();
    Some(parts?.join("/"))
}

fn walk_diagnostic(root: &Path, err: ignore::Error) -> Diagnostic {
    let mut path = root.to_path_buf();
    let mut err = err;
    loop {
        err = match err {
            ignore::Error::WithPath { path: p, err } => {
                path = p;
                *err
            }
            ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
                *err
            }
            other => break walk_error(path, other),
        }
    }
}

fn walk_error(path: PathBuf, err: ignore::Error) -> Diagnostic {
    if let ignore::Error::Loop { child, .. } = err {
        return Diagnostic::warning(child, "symbolic link loop: not followed");
    }
    let missing = err
        .io_error()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound);
    if missing && path.is_symlink() {
        return Diagnostic::error(
            path,
            "broken symbolic link (its target does not exist): skipped",
        );
    }
    Diagnostic::error(path, err.to_string())
}

/// Files never read from the source tree (besides the output directory).
pub const DEFAULT_EXCLUDE: &[&str] = &[
    ".git/**",
    ".hg/**",
    ".svn/**",
    "**/.DS_Store",
    "**/Thumbs.db",
    // Editors' swap, backup and save-by-rename files.
    "**/*.swp",
    "**/*.swx",
    "**/*~",
    "**/.#*",
    "**/4913",
    "**/*___jb_tmp___",
    "**/*___jb_old___",
    "kiln.toml",
    ".kilnignore",
    ".kiln-cache/**",
];

/// Files written for a backend to read from disk, not for browsers: Vite's
/// manifests ("should not be served", Vite's backend integration guide).
pub const DEFAULT_PRIVATE: &[&str] = &["**/.vite/**"];

#[cfg(test)]
mod tests {
    use super::*;

    /// Scan `root` with `exclude` instead of the default, fingerprints not looked for.
    fn scan_excluding(root: &Path, exclude: GlobList) -> Scanned {
        let options = ScanOptions {
            exclude,
            detect_fingerprints: false,
            ..ScanOptions::default()
        };
        scan(root, &options, &Walk::default())
    }

    fn paths(scanned: &Scanned) -> Vec<&str> {
        scanned.assets.iter().map(|a| a.path.as_str()).collect()
    }

    #[test]
    fn keeps_dot_folders_and_honours_excludes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for p in [
            ".well-known/security.txt",
            "a/b.css",
            "a/b.css.br",
            "a/c.map",
            ".git/HEAD",
            "x.tmp",
            "data.tar.gz",
        ] {
            std::fs::create_dir_all(root.join(p).parent().unwrap()).unwrap();
            std::fs::write(root.join(p), "x").unwrap();
        }
        std::fs::write(root.join(IGNORE_FILE), "*.tmp\n").unwrap();
        let scanned = scan_excluding(
            root,
            GlobList::new(&[".git/**", ".kilnignore", "*.map"]).unwrap(),
        );
        assert_eq!(
            paths(&scanned),
            [
                ".well-known/security.txt",
                "a/b.css",
                "a/b.css.br",
                "data.tar.gz"
            ]
        );
        assert!(scanned.diagnostics.is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_outside_and_loops_are_reported_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.txt"), "s").unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("d")).unwrap();
        std::fs::write(root.join("d/in.txt"), "i").unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("out")).unwrap();
        std::os::unix::fs::symlink(root.join("d"), root.join("d/loop")).unwrap();
        std::os::unix::fs::symlink(root.join("d/in.txt"), root.join("alias.txt")).unwrap();
        let scanned = scan_excluding(root, GlobList::new::<&str>(&[]).unwrap());
        assert_eq!(paths(&scanned), ["alias.txt", "d/in.txt"]);
        let messages: Vec<String> = scanned
            .diagnostics
            .iter()
            .map(|d| d.message.clone())
            .collect();
        assert!(
            messages.iter().any(|m| m.contains("outside the source")),
            "{messages:?}"
        );
        assert!(messages.iter().any(|m| m.contains("loop")), "{messages:?}");
    }
}
