//! The build's memory budget: file contents that do not fit wait in a
//! temporary file in the output directory. A build that keeps nothing in
//! memory must write exactly what a build that keeps everything writes, and
//! leave nothing else behind.

use std::path::Path;

use crate::util::{build_into, fixture_path, tree};

/// Build `src` twice without the cache, once spilling every file's contents
/// (`--memory-budget 0`) and once keeping all of them in memory; the two
/// output trees, file by file.
fn both_ways(src: &Path, extra: &[&str]) {
    let spilled = tempfile::tempdir().unwrap();
    let kept = tempfile::tempdir().unwrap();
    let mut outputs = Vec::new();
    for (dir, budget) in [(&spilled, "0"), (&kept, "100000")] {
        let out = dir.path().join("out");
        let mut args = vec![
            "--no-cache",
            "--no-report",
            "--quiet",
            "--memory-budget",
            budget,
        ];
        args.extend_from_slice(extra);
        let built = build_into(src, &out, &args);
        assert_eq!(built.code, 0, "{}", built.stderr);
        outputs.push((tree(&out), built.stderr));
    }
    let (kept_tree, kept_log) = outputs.pop().unwrap();
    let (spilled_tree, spilled_log) = outputs.pop().unwrap();
    assert_eq!(spilled_log, kept_log, "the same diagnostics");
    assert_eq!(
        spilled_tree.keys().collect::<Vec<_>>(),
        kept_tree.keys().collect::<Vec<_>>(),
        "the same files, and no temporary file left behind"
    );
    for (path, bytes) in &kept_tree {
        assert!(spilled_tree[path] == *bytes, "{path} differs");
    }
}

#[test]
fn a_build_that_spills_every_file_writes_the_same_site() {
    // Hashed names over the asset graph, source maps moved by the link
    // stage's edits, precompressed variants.
    both_ways(&fixture_path("site"), &["--sourcemaps"]);
}

#[test]
fn a_build_that_spills_every_file_writes_the_same_images_and_pictures() {
    // Generated WebP variants and the `<picture>` markup that offers them.
    both_ways(&fixture_path("picture"), &[]);
}
