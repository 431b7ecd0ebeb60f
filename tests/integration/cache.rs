//! The transform and compression cache: hits and misses, invalidation by
//! content and options, damaged entries, builds sharing it at once, and the
//! `kiln cache` commands.

use std::path::Path;

use crate::util::{Site, build, build_into, fixture_path, kiln, tree};

/// Build into a fresh output with the given cache; the JSON summary.
fn build_cached(
    src: &Path,
    cache: &Path,
    extra: &[&str],
) -> (crate::util::Built, serde_json::Value) {
    let mut args = vec!["--json", "--cache-dir", cache.to_str().unwrap()];
    args.extend_from_slice(extra);
    let built = build(src, &args);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let summary = serde_json::from_str(&built.stdout).expect("JSON summary");
    (built, summary)
}

fn hits(s: &serde_json::Value) -> u64 {
    s["cache_hits"].as_u64().unwrap()
}

fn misses(s: &serde_json::Value) -> u64 {
    s["cache_misses"].as_u64().unwrap()
}

#[test]
fn a_second_build_is_served_from_the_cache_with_identical_output() {
    let cache = tempfile::tempdir().unwrap();
    let (first, s1) = build_cached(&fixture_path("site"), cache.path(), &[]);
    assert_eq!(hits(&s1), 0);
    assert!(misses(&s1) > 20);
    let (second, s2) = build_cached(&fixture_path("site"), cache.path(), &[]);
    assert_eq!(misses(&s2), 0, "{s2:#}");
    assert_eq!(hits(&s2), misses(&s1));
    assert!(
        tree(&first.out) == tree(&second.out),
        "cached and uncached builds agree"
    );
}

#[test]
fn a_no_op_rebuild_rewrites_nothing() {
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let args = ["--cache-dir", cache.path().to_str().unwrap()];
    let first = build_into(&fixture_path("site"), out.path(), &args);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let css = out.path().join(first.output_of("css/main.css"));
    let before = std::fs::metadata(&css).unwrap().modified().unwrap();
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let second = build_into(&fixture_path("site"), out.path(), &json_args);
    let s: serde_json::Value = serde_json::from_str(&second.stdout).unwrap();
    assert_eq!(s["files_written"], 0, "{s:#}");
    assert_eq!(misses(&s), 0);
    assert_eq!(std::fs::metadata(&css).unwrap().modified().unwrap(), before);
}

#[test]
fn edits_and_options_invalidate_exactly_what_they_change() {
    let cache = tempfile::tempdir().unwrap();
    let site = Site::new()
        .file(
            "index.html",
            "<link rel=stylesheet href=a.css><script src=a.js></script>\n<p>  hello  </p>",
        )
        .file("a.css", "body { color: #ff0000 }\n")
        .file("a.js", "var greeting = 'hello';\nconsole.log(greeting);\n");
    let (_, s1) = build_cached(site.path(), cache.path(), &["--no-minify"]);
    assert_eq!(
        (hits(&s1), misses(&s1)),
        (0, 3),
        "three text files; nothing big enough to compress"
    );
    let (_, s2) = build_cached(site.path(), cache.path(), &[]);
    assert_eq!(misses(&s2), 3, "minifier options are part of the key");
    site.write("a.css", "body { color: #0000ff }\n");
    let (_, s3) = build_cached(site.path(), cache.path(), &[]);
    assert_eq!(
        (hits(&s3), misses(&s3)),
        (2, 1),
        "only the edited file is transformed again"
    );
    site.write("kiln.toml", "[js]\necma = \"es2015\"\n");
    let (_, s4) = build_cached(site.path(), cache.path(), &[]);
    assert_eq!(
        (hits(&s4), misses(&s4)),
        (1, 2),
        "the JS options touch scripts and pages (inline scripts), not stylesheets"
    );
}

#[test]
fn damaged_entries_are_detected_and_rebuilt() {
    let cache = tempfile::tempdir().unwrap();
    let (clean, _) = build_cached(&fixture_path("site"), cache.path(), &[]);
    let mut damaged = 0;
    for (path, bytes) in tree(cache.path()) {
        let full = cache.path().join(&path);
        if damaged % 2 == 0 {
            std::fs::write(&full, &bytes[..bytes.len() / 2]).unwrap();
        } else {
            let mut bytes = bytes;
            bytes[7] ^= 0x55;
            std::fs::write(&full, bytes).unwrap();
        }
        damaged += 1;
    }
    assert!(damaged > 20);
    let (rebuilt, s) = build_cached(&fixture_path("site"), cache.path(), &[]);
    assert_eq!(hits(&s), 0, "no damaged entry is used");
    assert!(tree(&clean.out) == tree(&rebuilt.out));
    let (_, again) = build_cached(&fixture_path("site"), cache.path(), &[]);
    assert_eq!(misses(&again), 0, "the entries were rebuilt");
}

#[test]
fn builds_sharing_a_cache_at_once_do_not_corrupt_it() {
    let cache = tempfile::tempdir().unwrap();
    let outs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let children: Vec<std::process::Child> = outs
        .iter()
        .map(|out| {
            std::process::Command::new(assert_cmd::cargo::cargo_bin("kiln"))
                .arg("build")
                .arg(fixture_path("site"))
                .arg("-o")
                .arg(out.path().join("site"))
                .args(["--quiet", "--cache-dir"])
                .arg(cache.path())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let first = tree(&outs[0].path().join("site"));
    for out in &outs[1..] {
        assert!(tree(&out.path().join("site")) == first);
    }
    let (_, s) = build_cached(&fixture_path("site"), cache.path(), &[]);
    assert_eq!(misses(&s), 0, "every entry written at once is whole");
}

#[test]
fn cache_stats_and_prune() {
    let cache = tempfile::tempdir().unwrap();
    build_cached(&fixture_path("site"), cache.path(), &[]);
    let stats = kiln()
        .args(["cache", "stats", "--json", "--cache-dir"])
        .arg(cache.path())
        .output()
        .unwrap();
    let stats: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    let total =
        stats["transform_bytes"].as_u64().unwrap() + stats["variants_bytes"].as_u64().unwrap();
    assert!(
        stats["transform_entries"].as_u64().unwrap() > 10
            && stats["variants_entries"].as_u64().unwrap() > 5
    );
    let pruned = kiln()
        .args([
            "cache",
            "prune",
            "--max-size",
            &format!("{}", total / 2),
            "--cache-dir",
        ])
        .arg(cache.path())
        .output()
        .unwrap();
    assert!(pruned.status.success());
    let after: serde_json::Value = serde_json::from_slice(
        &kiln()
            .args(["cache", "stats", "--json", "--cache-dir"])
            .arg(cache.path())
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let left =
        after["transform_bytes"].as_u64().unwrap() + after["variants_bytes"].as_u64().unwrap();
    assert!(left <= total / 2 && left > 0, "{left} of {total}");
    let refused = kiln()
        .args(["cache", "prune", "--max-size", "lots"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
}

#[test]
fn no_cache_builds_without_one() {
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().join("c");
    let built = build(
        &fixture_path("site"),
        &["--no-cache", "--cache-dir", dir.to_str().unwrap()],
    );
    assert_eq!(built.code, 0);
    assert!(!dir.exists());
}

#[test]
fn a_cache_inside_the_source_is_not_published() {
    let site = Site::new().file("a.css", "body { color: #ff0000 }\n".repeat(30));
    let cache = site.path().join(".cache");
    let out = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        let built = build_into(
            site.path(),
            out.path(),
            &["--cache-dir", cache.to_str().unwrap()],
        );
        assert_eq!(built.code, 0, "{}", built.stderr);
    }
    assert!(
        site.path().join(".cache").is_dir(),
        "the configured cache was used"
    );
    assert!(tree(out.path()).keys().all(|p| !p.starts_with(".cache")));
}
