//! Paths as kiln compares them: absolute, with the symbolic links of the part
//! that exists resolved.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// An absolute, lexically normalised path (the output may not exist yet).
pub fn absolute(path: &Path) -> Result<PathBuf> {
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
