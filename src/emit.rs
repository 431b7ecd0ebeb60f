//! Writing the output directory: atomic writes (temporary file + rename) that
//! never leave the output root, no rewrite of a file whose bytes did not
//! change, and removal of whatever a previous build left that this one did
//! not produce.
//!
//! The output directory belongs to kiln only if it is empty, new, or holds a
//! `kiln-manifest.json`; anything else is refused unless forced.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::manifest::{MANIFEST_FILE, Manifest};

/// Prefix of temporary files; a killed build may leave some, the next removes them.
pub const TEMP_PREFIX: &str = ".kiln-tmp-";

/// The output directory, checked and ready to receive files.
#[derive(Debug)]
pub struct OutputDir {
    pub root: PathBuf,
    /// The manifest of the build that wrote this directory last, if any.
    pub previous: Option<Manifest>,
    /// The output lies inside the source and must be skipped by the scan.
    pub inside_source: bool,
}

/// Check the source and output directories and take ownership of the output.
pub fn prepare(config: &Config) -> Result<OutputDir> {
    let source = config
        .source
        .canonicalize()
        .ok()
        .filter(|p| p.is_dir())
        .ok_or_else(|| Error::MissingSource(config.source.clone()))?;
    let out = absolute(&config.output)?;
    if source.starts_with(&out) {
        return Err(Error::OutputContainsSource {
            out: config.output.clone(),
            src: config.source.clone(),
            relation: if source == out { "is" } else { "contains" },
        });
    }
    let inside_source = out.starts_with(&source);
    let previous = match fs::read_to_string(out.join(MANIFEST_FILE)) {
        Ok(text) => serde_json::from_str::<Manifest>(&text).ok(),
        Err(_) => None,
    };
    let owned = previous.is_some() || out.join(MANIFEST_FILE).is_file();
    let empty = match fs::read_dir(&out) {
        Ok(mut entries) => entries.next().is_none(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => return Err(Error::io(&out, e)),
    };
    if !owned && !empty && !config.force {
        return Err(Error::OutputNotOwned(config.output.clone()));
    }
    fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
    if !owned {
        // Mark the directory as kiln's at once, so that a first build killed
        // part-way does not leave a directory the next build refuses.
        let marker = Manifest {
            schema: crate::manifest::SCHEMA_VERSION,
            generator: crate::generator(),
            base: config.base.clone(),
            compression: config.compress.clone(),
            files: Default::default(),
        };
        write_atomic(&out, MANIFEST_FILE, marker.to_json().as_bytes())?;
    }
    Ok(OutputDir {
        root: out,
        previous,
        inside_source,
    })
}

/// An absolute, lexically normalised path (the output may not exist yet).
pub(crate) fn absolute(path: &Path) -> Result<PathBuf> {
    let abs = std::path::absolute(path).map_err(|e| Error::io(path, e))?;
    // Resolve symbolic links in the part that exists.
    let mut existing = abs.clone();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.file_name(), existing.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name.to_owned());
                existing = parent.to_path_buf();
            }
            _ => break,
        }
    }
    let mut out = existing.canonicalize().unwrap_or(existing);
    for name in rest.into_iter().rev() {
        out.push(name);
    }
    Ok(out)
}

/// `root/relative`, refusing any relative path that could leave `root`.
pub fn safe_join(root: &Path, relative: &Path) -> Result<PathBuf> {
    let safe = relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)));
    if !safe || relative.as_os_str().is_empty() {
        return Err(Error::io(
            relative,
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "path would leave the output directory",
            ),
        ));
    }
    Ok(root.join(relative))
}

/// Write `bytes` to `root/relative` atomically, unless the file already holds
/// exactly these bytes (its modification time is then untouched). Returns
/// whether the file was written.
pub fn write_atomic(root: &Path, relative: impl AsRef<Path>, bytes: &[u8]) -> Result<bool> {
    let path = safe_join(root, relative.as_ref())?;
    if let Ok(meta) = fs::metadata(&path)
        && meta.is_file()
        && meta.len() == bytes.len() as u64
        && fs::read(&path).is_ok_and(|old| old == bytes)
    {
        return Ok(false);
    }
    let dir = path.parent().expect("joined paths have a parent");
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    tmp.write_all(bytes).map_err(|e| Error::io(&path, e))?;
    set_readable(tmp.as_file()).map_err(|e| Error::io(&path, e))?;
    tmp.persist(&path).map_err(|e| Error::io(&path, e.error))?;
    Ok(true)
}

/// Temporary files are created private; outputs must be readable by a web server.
fn set_readable(file: &fs::File) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o644))?;
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

/// Copy a file whose name is not UTF-8, byte for byte.
pub fn copy_opaque(root: &Path, relative: &Path, source: &Path) -> Result<bool> {
    let bytes = fs::read(source).map_err(|e| Error::io(source, e))?;
    write_atomic(root, relative, &bytes)
}

/// Remove every file under `root` that is not in `keep` (paths relative to
/// `root`), then the directories left empty. Returns the number of files removed.
pub fn remove_stale(root: &Path, keep: &HashSet<PathBuf>) -> Result<usize> {
    let mut removed = 0;
    let mut dirs = Vec::new();
    let walker = ignore::WalkBuilder::new(root)
        .standard_filters(false)
        .hidden(false)
        .follow_links(false)
        .build();
    for entry in walker {
        let entry = entry.map_err(|e| Error::io(root, std::io::Error::other(e.to_string())))?;
        let path = entry.path();
        let Ok(relative) = path.strip_prefix(root) else {
            continue;
        };
        if relative.as_os_str().is_empty() {
            continue;
        }
        let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
        if is_dir {
            dirs.push(path.to_path_buf());
        } else if !keep.contains(relative) {
            fs::remove_file(path).map_err(|e| Error::io(path, e))?;
            removed += 1;
        }
    }
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for dir in dirs {
        // Fails when not empty, which is what we want.
        let _ = fs::remove_dir(&dir);
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_paths_that_leave_the_root() {
        let dir = tempfile::tempdir().unwrap();
        assert!(write_atomic(dir.path(), "../x", b"x").is_err());
        assert!(write_atomic(dir.path(), "/etc/x", b"x").is_err());
        assert!(write_atomic(dir.path(), "a/./b", b"x").is_ok());
    }

    #[test]
    fn unchanged_files_are_not_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        assert!(write_atomic(dir.path(), "a/b.txt", b"one").unwrap());
        assert!(!write_atomic(dir.path(), "a/b.txt", b"one").unwrap());
        assert!(write_atomic(dir.path(), "a/b.txt", b"two").unwrap());
        assert_eq!(fs::read(dir.path().join("a/b.txt")).unwrap(), b"two");
    }

    #[test]
    fn stale_files_and_empty_dirs_go() {
        let dir = tempfile::tempdir().unwrap();
        write_atomic(dir.path(), "keep.txt", b"k").unwrap();
        write_atomic(dir.path(), "old/gone.txt", b"g").unwrap();
        let keep: HashSet<PathBuf> = [PathBuf::from("keep.txt")].into();
        assert_eq!(remove_stale(dir.path(), &keep).unwrap(), 1);
        assert!(dir.path().join("keep.txt").exists());
        assert!(!dir.path().join("old").exists());
    }
}
