//! Progress events: the stages a build goes through and the observer that
//! hears about them (the CLI's progress bar, the watch's live reload).

use crate::emit::manifest::FileEntry;

/// The stages a build goes through, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Scan,
    Transform,
    Link,
    Emit,
    Manifest,
    Done,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Scan => "scan",
            Stage::Transform => "transform",
            Stage::Link => "link",
            Stage::Emit => "emit",
            Stage::Manifest => "manifest",
            Stage::Done => "done",
        }
    }
}

/// Receives progress events; called from worker threads.
pub trait Progress: Sync {
    /// A stage starts; `total` files will pass through it (0 if unknown).
    fn stage(&self, stage: Stage, total: usize);
    /// One file finished the current stage.
    fn advance(&self);
    /// Every output except the pages is written (pages follow): the source
    /// path and manifest entry of each. `kiln watch` swaps stylesheets here,
    /// before the pages that link them are rewritten.
    fn assets_written(&self, _outputs: &[(&str, &FileEntry)]) {}
}

/// Reports nothing.
pub struct Silent;

impl Progress for Silent {
    fn stage(&self, _: Stage, _: usize) {}
    fn advance(&self) {}
}
