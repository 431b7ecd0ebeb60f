//! Where the build keeps file contents between stages. The link stage needs
//! every file's transformed bytes before it can name anything (a page's name
//! depends on its stylesheet's), so a build holds the whole tree's bytes at
//! once. Up to a budget they stay in memory; past it they go to one anonymous
//! temporary file in the output directory and are read back when needed, so
//! that a build's memory does not grow with the size of the tree.
//!
//! The file has no name on Linux (`O_TMPFILE`): a killed build leaves nothing
//! behind. Elsewhere it is deleted when the build ends.

use std::borrow::Cow;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// Bytes kept in memory before spilling, by default: the doc-site corpus of
/// `benches/` (48 MiB of HTML) fits, ten copies of it do not.
pub const DEFAULT_BUDGET: u64 = 64 << 20;

/// The contents of one file, in memory or in the spill file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blob {
    Memory(Vec<u8>),
    Spilled {
        offset: u64,
        len: usize,
    },
    /// Shared with a watch's memory of its last build, which holds them
    /// anyway: not charged to the budget, never copied to be read.
    Shared(Arc<Vec<u8>>),
}

impl Blob {
    pub fn len(&self) -> usize {
        match self {
            Blob::Memory(b) => b.len(),
            Blob::Spilled { len, .. } => *len,
            Blob::Shared(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl From<Vec<u8>> for Blob {
    fn from(bytes: Vec<u8>) -> Self {
        Blob::Memory(bytes)
    }
}

/// The bytes of a blob given up ([`Spill::take`]).
#[derive(Debug)]
pub enum Bytes {
    Owned(Vec<u8>),
    Shared(Arc<Vec<u8>>),
}

impl Bytes {
    /// As a vector of their own (copied only when shared).
    pub fn into_vec(self) -> Vec<u8> {
        match self {
            Bytes::Owned(b) => b,
            Bytes::Shared(b) => Arc::unwrap_or_clone(b),
        }
    }
}

impl std::ops::Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Owned(b) => b,
            Bytes::Shared(b) => b,
        }
    }
}

/// A build's store of file contents.
#[derive(Debug)]
pub struct Spill {
    dir: PathBuf,
    /// Created on the first spill.
    file: OnceLock<std::io::Result<File>>,
    /// Where the next spilled blob goes.
    end: AtomicU64,
    /// Bytes that may still be kept in memory; below zero when bytes that
    /// could not be spilled were kept anyway.
    left: AtomicI64,
}

impl Spill {
    /// A store that keeps up to `budget` bytes in memory and spills the rest
    /// to a temporary file in `dir`.
    pub fn new(dir: impl Into<PathBuf>, budget: u64) -> Self {
        Spill {
            dir: dir.into(),
            file: OnceLock::new(),
            end: AtomicU64::new(0),
            left: AtomicI64::new(i64::try_from(budget).unwrap_or(i64::MAX)),
        }
    }

    /// A store that never spills.
    pub fn memory() -> Self {
        Spill::new(PathBuf::new(), u64::MAX)
    }

    /// Bytes written to the spill file so far.
    pub fn spilled(&self) -> u64 {
        self.end.load(Ordering::Relaxed)
    }

    /// Keep `bytes`: in memory while the budget lasts, else in the spill
    /// file. If the spill file cannot be written, they stay in memory: the
    /// build goes on, only larger.
    pub fn hold(&self, bytes: Vec<u8>) -> Blob {
        let n = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
        let reserved = self
            .left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                (left >= n).then(|| left - n)
            })
            .is_ok();
        if reserved || bytes.is_empty() {
            return Blob::Memory(bytes);
        }
        let written = self.file().and_then(|file| {
            let offset = self.end.fetch_add(n as u64, Ordering::Relaxed);
            write_at(file, &bytes, offset).ok().map(|()| offset)
        });
        match written {
            Some(offset) => Blob::Spilled {
                offset,
                len: bytes.len(),
            },
            None => {
                // Kept in memory after all: charged like any other, so that
                // taking it back does not raise the budget.
                self.left.fetch_sub(n, Ordering::Relaxed);
                Blob::Memory(bytes)
            }
        }
    }

    /// The bytes of `blob`, which is given up: memory it held returns to
    /// the budget.
    pub fn take(&self, blob: Blob) -> std::io::Result<Bytes> {
        match blob {
            Blob::Memory(bytes) => {
                self.release(bytes.len());
                Ok(Bytes::Owned(bytes))
            }
            Blob::Shared(bytes) => Ok(Bytes::Shared(bytes)),
            spilled => self.read(&spilled).map(|b| Bytes::Owned(b.into_owned())),
        }
    }

    /// The bytes of `blob`, which is kept.
    pub fn read<'a>(&self, blob: &'a Blob) -> std::io::Result<Cow<'a, [u8]>> {
        match blob {
            Blob::Memory(bytes) => Ok(Cow::Borrowed(bytes)),
            Blob::Shared(bytes) => Ok(Cow::Borrowed(bytes)),
            Blob::Spilled { offset, len } => {
                let file = self
                    .file
                    .get()
                    .and_then(|f| f.as_ref().ok())
                    .ok_or_else(|| std::io::Error::other("spill file missing"))?;
                let mut bytes = vec![0; *len];
                read_at(file, &mut bytes, *offset)?;
                Ok(Cow::Owned(bytes))
            }
        }
    }

    /// Give up a blob without reading it.
    pub fn discard(&self, blob: Blob) {
        if let Blob::Memory(bytes) = blob {
            self.release(bytes.len());
        }
    }

    fn release(&self, len: usize) {
        let n = i64::try_from(len).unwrap_or(i64::MAX);
        let _ = self
            .left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                Some(left.saturating_add(n))
            });
    }

    fn file(&self) -> Option<&File> {
        self.file
            .get_or_init(|| tempfile::tempfile_in(existing(&self.dir)))
            .as_ref()
            .ok()
    }
}

/// `dir`, or the system's temporary directory when `dir` is not set. On
/// Windows the file has a name while it is open, and the output directory's
/// clean-up could not remove it: it goes to the temporary directory there.
fn existing(dir: &Path) -> PathBuf {
    if dir.as_os_str().is_empty() || cfg!(windows) {
        std::env::temp_dir()
    } else {
        dir.to_path_buf()
    }
}

#[cfg(unix)]
fn write_at(file: &File, bytes: &[u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, offset)
}

#[cfg(unix)]
fn read_at(file: &File, bytes: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, bytes, offset)
}

#[cfg(windows)]
fn write_at(file: &File, mut bytes: &[u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !bytes.is_empty() {
        let n = file.seek_write(bytes, offset)?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        bytes = &bytes[n..];
        offset += n as u64;
    }
    Ok(())
}

#[cfg(windows)]
fn read_at(file: &File, mut bytes: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !bytes.is_empty() {
        let n = file.seek_read(bytes, offset)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        bytes = &mut bytes[n..];
        offset += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_bytes_in_memory_within_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let spill = Spill::new(dir.path(), 10);
        let a = spill.hold(b"0123456789".to_vec());
        assert!(matches!(a, Blob::Memory(_)));
        // The budget is spent: the next blob goes to disk.
        let b = spill.hold(b"abc".to_vec());
        assert_eq!(b, Blob::Spilled { offset: 0, len: 3 });
        assert_eq!(spill.spilled(), 3);
        assert_eq!(spill.take(a).unwrap().into_vec(), b"0123456789");
        // Taken back: memory is available again.
        assert!(matches!(spill.hold(b"xyz".to_vec()), Blob::Memory(_)));
        assert_eq!(&*spill.read(&b).unwrap(), b"abc");
        assert_eq!(spill.take(b).unwrap().into_vec(), b"abc");
        // Nothing is left in the directory, named or not.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn spilled_blobs_read_back_from_many_threads() {
        let dir = tempfile::tempdir().unwrap();
        let spill = Spill::new(dir.path(), 0);
        let blobs: Vec<(Vec<u8>, Blob)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8u8)
                .map(|t| {
                    let spill = &spill;
                    s.spawn(move || {
                        (0..50u32)
                            .map(|i| {
                                let bytes = vec![t; (i as usize * 37) % 1000 + 1];
                                (bytes.clone(), spill.hold(bytes))
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        let total: usize = blobs.iter().map(|(b, _)| b.len()).sum();
        assert_eq!(spill.spilled(), total as u64);
        for (bytes, blob) in blobs {
            assert!(matches!(blob, Blob::Spilled { .. }));
            assert_eq!(spill.take(blob).unwrap().into_vec(), bytes);
        }
    }

    #[test]
    fn an_unwritable_directory_keeps_bytes_in_memory() {
        let spill = Spill::new("/nonexistent/kiln-spill", 4);
        let kept = spill.hold(b"kept".to_vec());
        let over = spill.hold(b"over".to_vec());
        assert_eq!(over, Blob::Memory(b"over".to_vec()));
        assert_eq!(spill.take(over).unwrap().into_vec(), b"over");
        assert_eq!(spill.take(kept).unwrap().into_vec(), b"kept");
        // Both given back, the budget is what it was: four bytes fit again.
        assert_eq!(spill.left.load(Ordering::Relaxed), 4);
        assert!(matches!(spill.hold(b"four".to_vec()), Blob::Memory(_)));
        assert_eq!(spill.left.load(Ordering::Relaxed), 0);
    }
}
