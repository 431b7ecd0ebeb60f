//! `dir:/path`: a local origin directory, what an nginx (or any file server)
//! origin serves. Objects are copied with atomic writes under the directory
//! and never outside it; headers live in the state object (and in the
//! build's `_headers` / `kiln-nginx.conf`). The same plan and order as S3.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::{Listing, Object, safe_key};
use crate::emit::{TEMP_PREFIX, safe_join, write_atomic};
use crate::error::{Error, Result};

pub struct DirOrigin {
    root: PathBuf,
}

impl DirOrigin {
    pub fn new(root: &Path) -> DirOrigin {
        DirOrigin {
            root: root.to_path_buf(),
        }
    }

    pub fn error(&self, message: String) -> Error {
        Error::Deploy {
            target: format!("dir:{}", self.root.display()),
            message,
        }
    }

    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let path = safe_join(&self.root, Path::new(key))?;
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Every file under the root. A directory has no metadata, so with
    /// `verify` each file that a build object names is compared with the
    /// object's bytes: equal files get the object's identity, others none
    /// that could match.
    pub fn list(&self, verify: Option<&[Object]>) -> Result<Listing> {
        let mut listing = Listing::new();
        if !self.root.is_dir() {
            return Ok(listing);
        }
        for entry in ignore::WalkBuilder::new(&self.root)
            .standard_filters(false)
            .hidden(false)
            .build()
        {
            let entry = entry.map_err(|e| Error::io(&self.root, std::io::Error::other(e)))?;
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                continue;
            }
            let rel = entry
                .path()
                .strip_prefix(&self.root)
                .unwrap_or(entry.path());
            if let Some(key) = rel.to_str().map(|k| k.replace('\\', "/"))
                && safe_key(&key)
                && !key
                    .rsplit('/')
                    .next()
                    .is_some_and(|n| n.starts_with(TEMP_PREFIX))
            {
                listing.insert(key, None);
            }
        }
        if let Some(objects) = verify {
            let checked: Vec<(String, String)> = objects
                .par_iter()
                .filter(|o| listing.contains_key(&o.key))
                .map(|o| {
                    let same = std::fs::read(self.root.join(&o.key))
                        .ok()
                        .zip(std::fs::read(&o.file).ok())
                        .is_some_and(|(a, b)| a == b);
                    let identity = if same {
                        o.identity.clone()
                    } else {
                        "drifted".into()
                    };
                    (o.key.clone(), identity)
                })
                .collect();
            for (key, identity) in checked {
                listing.insert(key, Some(identity));
            }
        }
        Ok(listing)
    }

    pub fn put_bytes(&self, key: &str, bytes: &[u8]) -> Result<()> {
        self.no_symlinks(key)?;
        write_atomic(&self.root, key, bytes).map(|_| ())
    }

    /// Refuse a key whose path under the root passes through a symbolic
    /// link: a write or delete there would land outside the directory.
    fn no_symlinks(&self, key: &str) -> Result<()> {
        let mut path = self.root.clone();
        for segment in key.split('/') {
            path.push(segment);
            match std::fs::symlink_metadata(&path) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(self.error(format!(
                        "{} is a symbolic link: kiln does not write or delete through links in an origin directory",
                        path.display()
                    )));
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        Ok(())
    }

    /// Copy a batch in parallel; the first failure stops the deploy.
    /// Write `objects`, telling `sent` about each.
    pub fn put_all(&self, objects: &[&Object], sent: &(dyn Fn(&Object) + Sync)) -> Result<()> {
        objects.par_iter().try_for_each(|object| {
            let bytes = std::fs::read(&object.file).map_err(|e| Error::io(&object.file, e))?;
            self.put_bytes(&object.key, &bytes)?;
            sent(object);
            Ok(())
        })
    }

    /// Delete one of kiln's own files; a missing one is fine.
    pub fn delete_meta(&self, key: &str) -> Result<()> {
        let path = safe_join(&self.root, Path::new(key))?;
        self.no_symlinks(key)?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Delete `keys` (never kiln's own), telling `deleted` about each.
    pub fn delete_all(&self, keys: &[String], deleted: &(dyn Fn(&str) + Sync)) -> Result<()> {
        for key in keys {
            if super::is_meta_key(key) {
                continue;
            }
            let path = safe_join(&self.root, Path::new(key))?;
            self.no_symlinks(key)?;
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(path, e)),
            }
            // Empty directories left behind go too, up to the root.
            let mut dir = path.parent();
            while let Some(d) = dir {
                if d == self.root || std::fs::remove_dir(d).is_err() {
                    break;
                }
                dir = d.parent();
            }
            deleted(key);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_inside_the_origin_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = dir.path().join("www");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(outside.path().join("keep.txt"), "mine").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(outside.path(), root.join("assets")).unwrap();
        let origin = DirOrigin::new(&root);
        #[cfg(unix)]
        {
            assert!(origin.put_bytes("assets/x.css", b"x").is_err());
            assert!(
                origin
                    .delete_all(&["assets/keep.txt".into()], &|_| {})
                    .is_err()
            );
            assert!(outside.path().join("keep.txt").exists());
            assert!(!outside.path().join("x.css").exists());
        }
        origin.put_bytes("css/x.css", b"x").unwrap();
        assert_eq!(std::fs::read(root.join("css/x.css")).unwrap(), b"x");
    }
}
