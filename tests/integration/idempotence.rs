//! Building again changes nothing: a second build of the same tree into the
//! same output writes no file, removes none, leaves every modification time
//! and every byte as it was; with a warm cache and with none (the previous
//! manifest alone lets kiln reuse what is on disk).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use crate::util::{TestCommand, fixture_path, tree};

/// Every file of the output with its bytes and modification time.
fn snapshot(out: &Path) -> BTreeMap<String, (Vec<u8>, SystemTime)> {
    tree(out)
        .into_iter()
        .map(|(path, bytes)| {
            let mtime = std::fs::metadata(out.join(&path))
                .and_then(|m| m.modified())
                .expect("mtime");
            (path, (bytes, mtime))
        })
        .collect()
}

fn build(source: &Path, out: &Path, cache: Option<&Path>) -> serde_json::Value {
    let mut cmd = TestCommand::new(&["build"]);
    cmd.arg(source)
        .arg("-o")
        .arg(out)
        .arg("--json")
        .arg("--no-report");
    match cache {
        Some(dir) => cmd.arg("--cache-dir").arg(dir),
        None => cmd.arg("--no-cache"),
    };
    serde_json::from_str(&cmd.stdout()).expect("JSON summary")
}

#[test]
fn a_second_build_changes_nothing() {
    for name in [
        "site",
        "frameworks/built/vitepress",
        "frameworks/built/next",
    ] {
        let source = fixture_path(name);
        let dir = tempfile::tempdir().unwrap();
        let (out, cache) = (dir.path().join("out"), dir.path().join("cache"));
        let first = build(&source, &out, Some(&cache));
        assert!(
            first["files_written"].as_u64().unwrap() > 10,
            "{name}: {first}"
        );
        let before = snapshot(&out);
        for cache in [Some(cache.as_path()), None] {
            let again = build(&source, &out, cache);
            assert_eq!(again["files_written"], 0, "{name} ({cache:?}): {again}");
            assert_eq!(again["files_removed"], 0, "{name} ({cache:?}): {again}");
            let after = snapshot(&out);
            assert_eq!(
                before.keys().collect::<Vec<_>>(),
                after.keys().collect::<Vec<_>>(),
                "{name}"
            );
            for (path, (bytes, mtime)) in &before {
                let (bytes_now, mtime_now) = &after[path];
                assert!(bytes == bytes_now, "{name}: {path} changed");
                assert_eq!(mtime, mtime_now, "{name}: {path} was rewritten");
            }
        }
    }
}
