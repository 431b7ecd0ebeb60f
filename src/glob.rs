//! Lists of globs matched against `/`-separated paths relative to the source
//! root, as `kiln.toml` writes them.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// A list of globs, matched against `/`-separated paths relative to the source root.
/// A pattern without `/` matches at any depth; a leading `/` anchors it at the
/// root (as in `.gitignore`).
#[derive(Debug, Clone)]
pub struct GlobList {
    set: GlobSet,
}

impl GlobList {
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<GlobList, (usize, globset::Error)> {
        let mut builder = GlobSetBuilder::new();
        for (i, p) in patterns.iter().enumerate() {
            builder.add(compile_glob(p.as_ref()).map_err(|e| (i, e))?);
        }
        Ok(GlobList {
            set: builder.build().map_err(|e| (0, e))?,
        })
    }

    /// A list that matches nothing.
    pub fn empty() -> GlobList {
        GlobList::new::<&str>(&[]).expect("an empty list is valid")
    }

    pub fn is_match(&self, path: &str) -> bool {
        self.set.is_match(path)
    }
}

fn compile_glob(pattern: &str) -> Result<globset::Glob, globset::Error> {
    let full = if let Some(anchored) = pattern.strip_prefix('/') {
        anchored.to_owned()
    } else if pattern.contains('/') {
        pattern.to_owned()
    } else {
        format!("**/{pattern}")
    };
    GlobBuilder::new(&full).literal_separator(true).build()
}
