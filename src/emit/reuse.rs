//! Reusing the files a watch's rebuilds displace. Replacing a file frees the
//! old one's inode and blocks, and creating a temporary file takes new ones:
//! on ext4 each costs about as much as writing the bytes (docs/performance.md,
//! "File churn on ext4"). Under `kiln watch`, a replaced or retired output is
//! moved to a temporary name and kept in [`Retired`]; a later write in the
//! same directory overwrites it in place, once nobody has it open (a write
//! lease), and swaps it in with `renameat2(RENAME_EXCHANGE)`.
//!
//! Linux only; elsewhere the swap is unsupported and writes fall back to a
//! plain rename. The renames go through rustix; the lease through libc, since
//! rustix has no `F_SETLEASE`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Files a watch displaced from the output, under temporary names
/// ([`TEMP_PREFIX`](super::TEMP_PREFIX)), by directory: writes there reuse those nobody has open
/// any more, the newest first (their pages are still in the page cache: an
/// old one's last partial block may have to be read from the disk first). Whoever owns them removes what is left; a
/// process killed first leaves them to the next build's stale-file removal.
#[derive(Debug, Default)]
pub struct Retired {
    files: Mutex<std::collections::HashMap<PathBuf, std::collections::VecDeque<PathBuf>>>,
    /// Reuse failed for a reason other than the file being in use (no leases
    /// on this file system): displaced files are removed from then on.
    stopped: std::sync::atomic::AtomicBool,
}

impl Retired {
    pub(super) fn push(&self, path: PathBuf) {
        if self.stopped.load(std::sync::atomic::Ordering::Relaxed) {
            let _ = fs::remove_file(path);
            return;
        }
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut dirs = self.files.lock().expect("no panics while locked");
        dirs.entry(dir).or_default().push_back(path);
    }

    /// The newest retired file of `dir`, to be reused.
    fn pop_in(&self, dir: &Path) -> Option<PathBuf> {
        if self.stopped.load(std::sync::atomic::Ordering::Relaxed) {
            return None;
        }
        self.files
            .lock()
            .expect("no panics while locked")
            .get_mut(dir)?
            .pop_back()
    }

    fn stop_reusing(&self) {
        self.stopped
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Write `bytes` at `path` (in `dir`) through a file retired in `dir`:
    /// overwritten in place, then swapped with the file at `path` (`swap`,
    /// which is then retired in its turn) or renamed over nothing. Returns
    /// whether it was placed; a spare in use or gone is removed and the next
    /// tried, and any other failure stops reuse for the session (reuse only
    /// saves time).
    pub(super) fn place(&self, dir: &Path, path: &Path, bytes: &[u8], swap: bool) -> bool {
        while let Some(spare) = self.pop_in(dir) {
            let placed = overwrite(&spare, bytes).and_then(|()| match swap {
                true => exchange(&spare, path),
                false => fs::rename(&spare, path),
            });
            match placed {
                Ok(()) => {
                    if swap {
                        self.push(spare);
                    }
                    return true;
                }
                Err(e) => {
                    let _ = fs::remove_file(&spare);
                    if !matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::NotFound
                    ) {
                        self.stop_reusing();
                    }
                }
            }
        }
        false
    }

    /// All retired files (absolute paths), emptying the list.
    pub fn take(&self) -> Vec<PathBuf> {
        let dirs = std::mem::take(&mut *self.files.lock().expect("no panics while locked"));
        dirs.into_values().flatten().collect()
    }

    /// Keep the retired files in the directories `keep` accepts; returns the others.
    pub fn split_off(&self, mut keep: impl FnMut(&Path) -> bool) -> Vec<PathBuf> {
        let mut dirs = self.files.lock().expect("no panics while locked");
        let gone: Vec<PathBuf> = dirs.keys().filter(|d| !keep(d)).cloned().collect();
        gone.iter()
            .filter_map(|d| dirs.remove(d))
            .flatten()
            .collect()
    }

    /// The retired files (absolute paths).
    pub fn paths(&self) -> Vec<PathBuf> {
        let dirs = self.files.lock().expect("no panics while locked");
        dirs.values().flatten().cloned().collect()
    }
}

/// Remove retired files; a missing one is fine.
pub fn remove_retired(paths: Vec<PathBuf>) {
    for path in paths {
        let _ = fs::remove_file(path);
    }
}

/// Overwrite a retired file with `bytes`, in place (never truncated to zero
/// first: ext4 then flushes the file on close, taking it for an editor's
/// save).
pub(super) fn overwrite(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Never through a link put in its place.
        options.custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32);
    }
    let file = options.open(path)?;
    let meta = file.metadata()?;
    #[cfg(unix)]
    let shared = std::os::unix::fs::MetadataExt::nlink(&meta) > 1;
    #[cfg(not(unix))]
    let shared = false;
    // Hard-linked elsewhere (a backup made with `cp -al`): not ours to change.
    if !meta.is_file() || shared {
        return Err(std::io::ErrorKind::InvalidInput.into());
    }
    // Still open elsewhere (a response being sent from it, a server's cache
    // of open files): its reader must keep the bytes it has.
    #[cfg(target_os = "linux")]
    let _lease = Lease::take(&file)?;
    (&file).write_all(bytes)?;
    if meta.len() > bytes.len() as u64 {
        file.set_len(bytes.len() as u64)?;
    }
    // Retired outputs are readable already.
    #[cfg(unix)]
    if std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777 == 0o644 {
        return Ok(());
    }
    set_readable(&file)
}

/// A write lease on a file: Linux grants one only when no other open file
/// description of the file exists, in any process, and makes any new open
/// wait until it is released (when dropped, before the file is swapped in).
#[cfg(target_os = "linux")]
struct Lease<'a>(&'a fs::File);

#[cfg(target_os = "linux")]
impl<'a> Lease<'a> {
    fn take(file: &'a fs::File) -> std::io::Result<Lease<'a>> {
        use std::os::fd::AsRawFd;
        // SAFETY: fcntl on a descriptor the `File` owns and keeps open.
        let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLEASE, libc::F_WRLCK) };
        if r != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let lease = Lease(file);
        // Someone opening the file now waits for the lease to go, and the
        // kernel signals its owner: SIGIO, which would end the process. No
        // owner, no signal.
        // SAFETY: as above.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETOWN, 0) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(lease)
    }
}

#[cfg(target_os = "linux")]
impl Drop for Lease<'_> {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        // SAFETY: as in `take`.
        unsafe { libc::fcntl(self.0.as_raw_fd(), libc::F_SETLEASE, libc::F_UNLCK) };
    }
}

/// Swap two existing files atomically (Linux's `renameat2`); `Unsupported`
/// elsewhere.
pub(super) fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    rename_with(a, b, true)
}

/// Rename, failing with `AlreadyExists` if the target exists; `Unsupported`
/// off Linux.
pub(super) fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    rename_with(from, to, false)
}

#[cfg(target_os = "linux")]
fn rename_with(from: &Path, to: &Path, exchange: bool) -> std::io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    let flags = if exchange {
        RenameFlags::EXCHANGE
    } else {
        RenameFlags::NOREPLACE
    };
    renameat_with(CWD, from, CWD, to, flags).map_err(std::io::Error::from)
}

#[cfg(not(target_os = "linux"))]
fn rename_with(from: &Path, to: &Path, exchange: bool) -> std::io::Result<()> {
    let _ = (from, to, exchange);
    Err(std::io::ErrorKind::Unsupported.into())
}

/// Temporary files are created private; outputs must be readable by a web server.
pub(super) fn set_readable(file: &fs::File) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o644))?;
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn opening_a_leased_file_waits_for_it_and_signals_nobody() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spare");
        fs::write(&path, b"old").unwrap();
        let file = fs::OpenOptions::new().write(true).open(&path).unwrap();
        let lease = Lease::take(&file).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let opener = std::thread::spawn(move || {
            tx.send("opening").unwrap();
            let bytes = fs::read(&path).unwrap();
            tx.send("opened").unwrap();
            bytes
        });
        assert_eq!(rx.recv().unwrap(), "opening");
        // The open waits while the lease is held. Were the process signalled
        // (SIGIO), it would end here.
        let waited = rx.recv_timeout(std::time::Duration::from_millis(300));
        assert!(waited.is_err(), "{waited:?}");
        (&file).write_all(b"new").unwrap();
        drop(lease);
        assert_eq!(rx.recv().unwrap(), "opened");
        assert_eq!(opener.join().unwrap(), b"new");
    }
}
