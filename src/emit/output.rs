//! Writing the output directory: atomic writes (temporary file + rename) that
//! never leave the output root, no rewrite of a file whose bytes did not
//! change, and removal of whatever a previous build left that this one did
//! not produce.
//!
//! Under `kiln watch` ([`OutputDir::with_reuse`]), displaced files are kept
//! and reused ([`super::reuse`]); a build renames over files and keeps
//! nothing.
//!
//! The output directory belongs to kiln only if it is empty, new, or holds a
//! `kiln-manifest.json`; anything else is refused unless forced.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use super::reuse::{self, Retired, set_readable};
use crate::emit::manifest::{MANIFEST_FILE, Manifest, meta_dir_beside};
use crate::emit::paths::absolute;
use crate::error::{Error, Result};

/// Prefix of temporary files; a killed build may leave some, the next removes them.
pub const TEMP_PREFIX: &str = ".kiln-tmp-";

/// The output directory, checked and ready to receive files.
#[derive(Debug)]
pub struct OutputDir {
    pub root: PathBuf,
    /// Where kiln's own files go (the manifests, the report): the root, or
    /// a folder beside it for hosts that publish every file.
    pub meta: PathBuf,
    /// The manifest of the build that wrote this directory last, if any.
    pub previous: Option<Manifest>,
    /// The output lies inside the source and must be skipped by the scan.
    pub inside_source: bool,
    /// Under `kiln watch`: files displaced from the output, kept under
    /// temporary names for reuse. `None` (a build): replaced files go at once.
    pub retired: Option<std::sync::Arc<Retired>>,
}

impl OutputDir {
    /// This output, with the files its writes displace kept in `retired` and
    /// reused by later writes (a watch's session), instead of removed.
    pub fn with_reuse(mut self, retired: std::sync::Arc<Retired>) -> OutputDir {
        self.retired = Some(retired);
        self
    }

    /// [`write_atomic`] under the root, keeping a replaced file in [`Self::retired`].
    pub fn write(&self, relative: impl AsRef<Path>, bytes: &[u8]) -> Result<bool> {
        write_file(
            &self.root,
            relative.as_ref(),
            bytes,
            self.retired.as_deref(),
            true,
        )
    }

    /// [`Self::write`], for a caller that knows the file holds other bytes
    /// (the previous manifest says so): the old file is not read to compare.
    pub fn replace(&self, relative: impl AsRef<Path>, bytes: &[u8]) -> Result<bool> {
        write_file(
            &self.root,
            relative.as_ref(),
            bytes,
            self.retired.as_deref(),
            false,
        )
    }

    /// Take `relative` out of the output at once (nothing may serve it any
    /// more), keeping its bytes in [`Self::retired`] under a watch. A missing
    /// file is fine.
    pub fn retire(&self, relative: impl AsRef<Path>) -> Result<()> {
        let path = safe_join(&self.root, relative.as_ref())?;
        match fs::symlink_metadata(&path) {
            Ok(m) if !m.is_dir() => {}
            // Nothing there, or a directory (never a file kiln wrote).
            _ => return Ok(()),
        }
        let Some(retired) = &self.retired else {
            return remove(&path);
        };
        let dir = path.parent().expect("joined paths have a parent");
        let moved = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .make_in(dir, |to| reuse::rename_noreplace(&path, to));
        match moved {
            Ok(file) => {
                let (_, to) = file.into_parts();
                retired.push(to.keep().map_err(|e| Error::io(&path, e.error))?);
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            // No way to move it aside: remove it now.
            Err(_) => remove(&path),
        }
    }
}

/// Remove a file; a missing one is fine.
fn remove(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(path, e)),
        _ => Ok(()),
    }
}

/// Check the source and output directories and take ownership of the output:
/// refused when it holds files kiln did not write, unless `force`. A new
/// output gets `marker` (a manifest with no file) at once, so that a first
/// build killed part-way leaves a directory the next build accepts. With
/// `meta_beside`, the manifests live in [`meta_dir_beside`]. A manifest an
/// earlier build for another host left in the other place still makes the
/// output kiln's; the pipeline then removes it.
pub fn prepare(
    source: &Path,
    output: &Path,
    meta_beside: bool,
    force: bool,
    marker: Manifest,
) -> Result<OutputDir> {
    let source_dir = source
        .canonicalize()
        .ok()
        .filter(|p| p.is_dir())
        .ok_or_else(|| Error::MissingSource(source.to_path_buf()))?;
    let out = absolute(output)?;
    if source_dir.starts_with(&out) {
        return Err(Error::OutputContainsSource {
            out: output.to_path_buf(),
            src: source.to_path_buf(),
            relation: if source_dir == out { "is" } else { "contains" },
        });
    }
    let inside_source = out.starts_with(&source_dir);
    // The manifests live in the output or beside it; an earlier build for
    // another host left them in the other place.
    let beside = meta_dir_beside(&out);
    let (meta, other) = if meta_beside {
        (beside.clone(), out.clone())
    } else {
        (out.clone(), beside.clone())
    };
    let manifests = [meta.join(MANIFEST_FILE), other.join(MANIFEST_FILE)];
    let previous = manifests.iter().find_map(|path| {
        let text = fs::read_to_string(path).ok()?;
        serde_json::from_str::<Manifest>(&text).ok()
    });
    let owned = previous.is_some() || manifests.iter().any(|p| p.is_file());
    let is_empty = |dir: &Path| match fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(Error::io(dir, e)),
    };
    if !owned && !is_empty(&out)? && !force {
        return Err(Error::OutputNotOwned(output.to_path_buf()));
    }
    // The folder beside the output holds nothing but kiln's files.
    if meta_beside && !meta.join(MANIFEST_FILE).is_file() && !is_empty(&meta)? && !force {
        return Err(Error::OutputNotOwned(meta.clone()));
    }
    fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
    fs::create_dir_all(&meta).map_err(|e| Error::io(&meta, e))?;
    if !owned {
        write_atomic(&meta, MANIFEST_FILE, marker.to_json().as_bytes())?;
    }
    Ok(OutputDir {
        root: out,
        meta,
        previous,
        inside_source,
        retired: None,
    })
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
    write_file(root, relative.as_ref(), bytes, None, true)
}

/// [`write_atomic`]; under a watch (`retired`), the replaced file is kept
/// there. Without `compare`, an existing file is replaced without being read.
fn write_file(
    root: &Path,
    relative: &Path,
    bytes: &[u8],
    retired: Option<&Retired>,
    compare: bool,
) -> Result<bool> {
    let path = safe_join(root, relative)?;
    let old = fs::symlink_metadata(&path).ok();
    if compare
        && let Some(meta) = &old
        && meta.is_file()
        && meta.len() == bytes.len() as u64
        && fs::read(&path).is_ok_and(|old| old == bytes)
    {
        return Ok(false);
    }
    let dir = path.parent().expect("joined paths have a parent");
    // Under a watch, a file of the same directory retired earlier,
    // overwritten in place: no inode to create, no blocks to free (only the
    // tail past the new length). Not with a directory in the way.
    let in_the_way = old.as_ref().is_some_and(|m| m.is_dir());
    let swap = retired.is_some() && old.is_some() && !in_the_way;
    if let Some(retired) = retired.filter(|_| !in_the_way)
        && retired.place(dir, &path, bytes, swap)
    {
        return Ok(true);
    }
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    tmp.write_all(bytes).map_err(|e| Error::io(&path, e))?;
    set_readable(tmp.as_file()).map_err(|e| Error::io(&path, e))?;
    let tmp = tmp.into_temp_path();
    // Swapped (a watch), the temporary name holds the old file. A build
    // renames over it, as does a watch with no file to swap with or no way to
    // swap: a directory in the way fails the rename.
    match swap.then(|| reuse::exchange(&tmp, &path)) {
        Some(Ok(())) => {
            if let Some(retired) = retired {
                retired.push(tmp.keep().map_err(|e| Error::io(&path, e.error))?);
            }
        }
        // No file to swap with, or no way to swap: a plain rename.
        _ => tmp.persist(&path).map_err(|e| Error::io(&path, e.error))?,
    }
    Ok(true)
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

    /// A watch's output directory.
    fn out_dir(root: &Path) -> OutputDir {
        OutputDir {
            root: root.to_path_buf(),
            meta: root.to_path_buf(),
            previous: None,
            inside_source: false,
            retired: Some(Default::default()),
        }
    }

    #[cfg(target_os = "linux")]
    fn inode(path: &Path) -> u64 {
        std::os::unix::fs::MetadataExt::ino(&fs::metadata(path).unwrap())
    }

    fn temporaries(dir: &Path) -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(TEMP_PREFIX)
            })
            .collect();
        found.sort();
        found
    }

    #[test]
    fn a_build_keeps_no_displaced_file() {
        let dir = tempfile::tempdir().unwrap();
        write_atomic(dir.path(), "a.txt", b"one").unwrap();
        write_atomic(dir.path(), "a.txt", b"two!").unwrap();
        assert_eq!(fs::read(dir.path().join("a.txt")).unwrap(), b"two!");
        let out = OutputDir {
            retired: None,
            ..out_dir(dir.path())
        };
        out.write("a.txt", b"three").unwrap();
        out.write("a.txt.br", b"br").unwrap();
        out.retire("a.txt.br").unwrap();
        assert_eq!(fs::read(dir.path().join("a.txt")).unwrap(), b"three");
        assert!(!dir.path().join("a.txt.br").exists());
        assert!(temporaries(dir.path()).is_empty());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_displaced_file_still_open_is_not_reused() {
        use std::io::Read;
        let dir = tempfile::tempdir().unwrap();
        let out = out_dir(dir.path());
        out.write("a.html", b"one").unwrap();
        // A response being sent from the page: it holds the file open.
        let mut reader = fs::File::open(dir.path().join("a.html")).unwrap();
        out.write("a.html", b"two").unwrap();
        out.write("a.html", b"three").unwrap();
        assert_eq!(fs::read(dir.path().join("a.html")).unwrap(), b"three");
        let mut sent = Vec::new();
        reader.read_to_end(&mut sent).unwrap();
        assert_eq!(sent, b"one");
        // Once closed, the file that holds "two" is reused.
        drop(reader);
        let spares = temporaries(dir.path());
        assert_eq!(spares.len(), 1);
        assert_eq!(fs::read(&spares[0]).unwrap(), b"two");
        let two = inode(&spares[0]);
        out.write("a.html", b"four").unwrap();
        assert_eq!(inode(&dir.path().join("a.html")), two);
        let kept: Vec<Vec<u8>> = temporaries(dir.path())
            .iter()
            .map(|p| fs::read(p).unwrap())
            .collect();
        assert_eq!(kept, [b"three".to_vec()]);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn replaced_files_are_retired_then_overwritten_by_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let out = out_dir(dir.path());
        out.write("page.html", b"first version, rather long")
            .unwrap();
        out.write("page.html", b"second").unwrap();
        assert_eq!(fs::read(dir.path().join("page.html")).unwrap(), b"second");
        // The old bytes wait under a temporary name.
        let spares = temporaries(dir.path());
        assert_eq!(spares.len(), 1);
        assert_eq!(fs::read(&spares[0]).unwrap(), b"first version, rather long");
        assert_eq!(out.retired.as_ref().unwrap().paths(), spares);

        // The next write takes that file (shorter bytes: no stale tail), and
        // the one it displaces waits in its place.
        let spare_inode = inode(&spares[0]);
        out.write("page.html", b"third").unwrap();
        assert_eq!(fs::read(dir.path().join("page.html")).unwrap(), b"third");
        assert_eq!(inode(&dir.path().join("page.html")), spare_inode);
        let spares = temporaries(dir.path());
        assert_eq!(spares.len(), 1);
        assert_eq!(fs::read(&spares[0]).unwrap(), b"second");

        // A new file takes a spare too: nothing is left over.
        out.write("new.html", b"new").unwrap();
        assert_eq!(fs::read(dir.path().join("new.html")).unwrap(), b"new");
        assert!(temporaries(dir.path()).is_empty());
        assert!(out.retired.as_ref().unwrap().take().is_empty());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn retiring_takes_a_file_out_of_the_output_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let out = out_dir(dir.path());
        out.write("a.html.br", b"old variant").unwrap();
        out.retire("a.html.br").unwrap();
        assert!(!dir.path().join("a.html.br").exists());
        assert_eq!(temporaries(dir.path()).len(), 1);
        // Nothing there, or a directory: nothing to do.
        out.retire("missing.br").unwrap();
        fs::create_dir(dir.path().join("d.gz")).unwrap();
        out.retire("d.gz").unwrap();
        assert!(dir.path().join("d.gz").is_dir());
        assert!(out.retire("../x.br").is_err());
        crate::emit::remove_retired(out.retired.as_ref().unwrap().take());
        assert!(temporaries(dir.path()).is_empty());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_spare_linked_elsewhere_is_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let out = out_dir(dir.path());
        out.write("a.html", b"one").unwrap();
        out.write("a.html", b"two").unwrap();
        let spare = temporaries(dir.path()).remove(0);
        // A backup made with `cp -al` shares the spare's inode.
        let backup = outside.path().join("backup.html");
        fs::hard_link(&spare, &backup).unwrap();
        out.write("a.html", b"three").unwrap();
        assert_eq!(fs::read(&backup).unwrap(), b"one");
        assert_eq!(fs::read(dir.path().join("a.html")).unwrap(), b"three");
        // Reuse stopped for this output: displaced files go at once.
        assert!(temporaries(dir.path()).is_empty());
        out.write("a.html", b"three and a half").unwrap();
        assert!(temporaries(dir.path()).is_empty());

        // A spare replaced by a link to a file outside is not followed.
        let dir = tempfile::tempdir().unwrap();
        let out = out_dir(dir.path());
        out.write("a.html", b"one").unwrap();
        out.write("a.html", b"two").unwrap();
        let spare = temporaries(dir.path()).remove(0);
        let target = outside.path().join("target.txt");
        fs::write(&target, b"outside").unwrap();
        fs::remove_file(&spare).unwrap();
        std::os::unix::fs::symlink(&target, &spare).unwrap();
        out.write("a.html", b"four").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"outside");
        assert_eq!(fs::read(dir.path().join("a.html")).unwrap(), b"four");
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
