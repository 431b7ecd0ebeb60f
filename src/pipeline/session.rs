//! What `kiln watch` keeps between its builds: a [`Session`].

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::diag::Diagnostic;
use crate::emit::{Retired, remove_retired};
use crate::transform::TransformOptions;
use crate::transform::variants::Variant;

/// The state one `kiln watch` keeps from build to build, owned by the watch
/// and handed to [`rebuild`](super::rebuild): what it remembers of each file
/// ([`Memo`]), the files its builds displaced from the output (kept to be
/// overwritten by the next ones), and whether compression waits until after
/// the outputs are written. A [`Config`](crate::Config) says only what a
/// build does; a session says what one process already knows.
///
/// Dropping the session removes the displaced files it kept.
#[derive(Debug, Default)]
pub struct Session {
    pub memo: Memo,
    /// Write outputs without waiting for gzip/brotli variants that are not
    /// cached: the build lists them in
    /// [`BuildOutcome::pending`](super::BuildOutcome::pending), and
    /// [`compress_pending`](super::compress_pending) makes them afterwards.
    /// Pages' integrity values wait with them. Default: false.
    pub defer_compression: bool,
}

impl Session {
    /// A session that defers compression from its first build (`kiln watch`
    /// turns deferral on after its first build).
    pub fn watching() -> Session {
        Session {
            memo: Memo::default(),
            defer_compression: true,
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.memo.remove_spares();
    }
}

/// What `kiln watch` remembers of the files of its last build: each file's
/// size and modification time when it was read, the options it was
/// transformed with, and the result. A rebuild reuses an entry only when all
/// of these still hold and the watcher did not report the file changed.
#[derive(Debug, Default)]
pub struct Memo {
    files: std::sync::Mutex<HashMap<String, Remembered>>,
    /// A build of this process completed: its outputs may be trusted by size.
    /// The first build of a session checks what a killed one left.
    pub(super) primed: AtomicBool,
    /// Files the builds displaced from the output, kept to be overwritten by
    /// the next ones ([`Retired`]).
    spares: Arc<Retired>,
}

/// What identifies a file's contents without reading them: size,
/// modification time, and on Unix the inode and change time (a file replaced
/// by rename, or edited with its mtime restored, changes those).
pub(super) type Stamp = (u64, std::time::SystemTime, u64, i64, i64);

pub(super) fn stamp(path: &std::path::Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let extra = {
        use std::os::unix::fs::MetadataExt;
        (m.ino(), m.ctime(), m.ctime_nsec())
    };
    #[cfg(not(unix))]
    let extra = (0, 0, 0);
    Some((m.len(), m.modified().ok()?, extra.0, extra.1, extra.2))
}

#[derive(Debug)]
struct Remembered {
    stamp: Stamp,
    options: TransformOptions,
    result: Arc<FileResult>,
    /// The result's references resolved against the tree of this
    /// fingerprint, with the warnings that gave.
    resolved: Option<(blake3::Hash, Resolution)>,
}

/// A file's references resolved, and the warnings for those that did not.
pub(super) type Resolution = (Vec<crate::link::Resolved>, Vec<Diagnostic>);

impl Memo {
    /// Forget these source paths (the watcher saw them change). The root
    /// (`""` or `"."`, a lost event) forgets everything.
    pub fn forget<'a>(&self, paths: impl IntoIterator<Item = &'a String>) {
        let mut files = self.files.lock().expect("no panics while locked");
        for p in paths {
            if p.is_empty() || p == "." {
                files.clear();
                continue;
            }
            files.remove(p);
            // A changed directory: everything under it.
            let prefix = format!("{}/", p.trim_end_matches('/'));
            files.retain(|k, _| !k.starts_with(&prefix));
        }
    }

    /// Forget everything (the configuration changed), and remove the
    /// displaced files kept (the output may change).
    pub fn clear(&self) {
        self.files.lock().expect("no panics while locked").clear();
        self.remove_spares();
    }

    /// Remove the files the builds displaced and kept for reuse (the watch ends).
    pub fn remove_spares(&self) {
        remove_retired(self.spares.take());
    }

    pub(crate) fn spares(&self) -> Arc<Retired> {
        Arc::clone(&self.spares)
    }

    /// How many files are remembered.
    pub fn len(&self) -> usize {
        self.files.lock().expect("no panics while locked").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a build of this process completed.
    pub fn primed(&self) -> bool {
        self.primed.load(Ordering::SeqCst)
    }

    pub(super) fn get(
        &self,
        path: &str,
        stamp: &Stamp,
        options: &TransformOptions,
    ) -> Option<FileResult> {
        let shared = {
            let files = self.files.lock().expect("no panics while locked");
            let r = files.get(path)?;
            (r.stamp == *stamp && r.options == *options).then(|| Arc::clone(&r.result))
        }?;
        // Copied outside the lock: the workers copy pages side by side.
        Some(FileResult::clone(&shared))
    }

    pub(super) fn put(
        &self,
        path: &str,
        stamp: Stamp,
        options: TransformOptions,
        result: &FileResult,
    ) {
        self.files.lock().expect("no panics while locked").insert(
            path.to_owned(),
            Remembered {
                stamp,
                options,
                result: Arc::new(result.clone()),
                resolved: None,
            },
        );
    }

    /// The remembered resolution of a remembered file, when it was made
    /// against the same tree.
    pub(super) fn resolved(&self, path: &str, tree: &blake3::Hash) -> Option<Resolution> {
        let files = self.files.lock().expect("no panics while locked");
        match &files.get(path)?.resolved {
            Some((fingerprint, r)) if fingerprint == tree => Some(r.clone()),
            _ => None,
        }
    }

    /// Remember the resolution of a file this build took from (or put into)
    /// the memo. A file the memo does not hold is not remembered.
    pub(super) fn put_resolved(&self, path: &str, tree: blake3::Hash, resolution: &Resolution) {
        let mut files = self.files.lock().expect("no panics while locked");
        if let Some(r) = files.get_mut(path) {
            r.resolved = Some((tree, resolution.clone()));
        }
    }
}

/// A file after its transform, as a watch remembers it: its references are
/// resolved again at each build, since the tree around it may change.
#[derive(Debug, Clone)]
pub(super) struct FileResult {
    /// The transformed bytes, or `None` when they equal the source file's.
    /// Always `Some` when `refs` is not empty. Shared with the watch's memo.
    pub(super) bytes: Option<std::sync::Arc<Vec<u8>>>,
    /// blake3 of the transformed bytes.
    pub(super) hash: blake3::Hash,
    pub(super) refs: Vec<crate::asset::Reference>,
    /// An HTML document's `<base href>`.
    pub(super) base: Option<String>,
    /// An HTML document's `<img>` elements (positions in `bytes`).
    pub(super) images: Vec<crate::asset::ImgTag>,
    /// A raster image's size as shown, in CSS pixels.
    pub(super) dimensions: Option<(u32, u32)>,
    pub(super) diagnostics: Vec<Diagnostic>,
    /// A source map written for it (`<path>.map`).
    pub(super) map: Option<Vec<u8>>,
    /// Variants written beside it (`<path>.webp`).
    pub(super) variants: Vec<Variant>,
}
