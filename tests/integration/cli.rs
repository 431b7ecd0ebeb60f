//! The command line: help, version, JSON summary, configuration errors.

use predicates::prelude::*;

use crate::util::{Site, build, build_into, fixture_path, kiln};

#[test]
fn version_and_help() {
    kiln()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::starts_with(format!(
            "kiln {}",
            env!("CARGO_PKG_VERSION")
        )));
    kiln()
        .args(["build", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Examples:").and(predicate::str::contains("--strict")));
}

#[test]
fn json_summary_is_the_only_thing_on_stdout() {
    let built = build(&fixture_path("site"), &["--json"]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let summary: serde_json::Value = serde_json::from_str(&built.stdout).expect("stdout is JSON");
    assert_eq!(summary["ok"], true);
    let files = built.manifest().files.len() as u64;
    assert_eq!(summary["total"]["files"], files);
    assert!(
        summary["kinds"]["css"]["brotli"].as_u64().unwrap()
            < summary["kinds"]["css"]["bytes_in"].as_u64().unwrap()
    );
    assert_eq!(summary["slowest"].as_array().unwrap().len(), 5);
}

#[test]
fn summary_says_where_the_work_went() {
    let dir = tempfile::tempdir().unwrap();
    let (out, cache) = (dir.path().join("out"), dir.path().join("cache"));
    let cache_arg = format!("--cache-dir={}", cache.display());
    let args = ["--json", cache_arg.as_str()];
    let cold = build_into(&fixture_path("site"), &out, &args);
    assert_eq!(cold.code, 0, "{}", cold.stderr);
    let cold: serde_json::Value = serde_json::from_str(&cold.stdout).unwrap();
    for step in ["transform", "gzip", "brotli"] {
        assert!(
            cold["work_ms"][step].as_f64().unwrap() > 0.0,
            "{step}: {cold}"
        );
    }
    // A no-op rebuild compresses nothing: the variants on disk are reused.
    let warm = build_into(&fixture_path("site"), &out, &args);
    let warm: serde_json::Value = serde_json::from_str(&warm.stdout).unwrap();
    assert_eq!(warm["work_ms"]["gzip"].as_f64(), Some(0.0), "{warm}");
    assert_eq!(warm["work_ms"]["brotli"].as_f64(), Some(0.0), "{warm}");
    let text = build(&fixture_path("site"), &[]).stdout;
    assert!(
        text.lines()
            .any(|l| l.starts_with("work, summed over threads: transform ")),
        "{text}"
    );
}

/// The human summary itself is a snapshot (`summary::the_human_summary`);
/// `--quiet` prints none of it.
#[test]
fn quiet_prints_no_summary() {
    let quiet = build(&fixture_path("site"), &["--quiet"]);
    assert_eq!(quiet.code, 0, "{}", quiet.stderr);
    assert_eq!(quiet.stdout, "");
    assert!(quiet.out.join("kiln-manifest.json").is_file());
}

#[test]
fn configuration_errors_name_the_key_and_line() {
    let site = Site::new()
        .file("index.html", "x")
        .file("kiln.toml", "base = \"/\"\n\n[compress]\nlevel = 3\n");
    let built = build(site.path(), &[]);
    assert_eq!(built.code, 2);
    assert!(
        built
            .stderr
            .contains("kiln.toml:4:1: unknown field `level`"),
        "{}",
        built.stderr
    );
    let site = Site::new()
        .file("index.html", "x")
        .file("kiln.toml", "hash = \"sometimes\"\n");
    let built = build(site.path(), &[]);
    assert_eq!(built.code, 2);
    assert!(built.stderr.contains("kiln.toml:1:8"), "{}", built.stderr);
}

#[test]
fn flags_override_the_configuration_file() {
    let site = Site::new()
        .file("index.html", "<img src=a.png>")
        .file("a.png", "png")
        .file("kiln.toml", "hash = \"none\"\nbase = \"/x/\"\n");
    let from_file = build(site.path(), &[]).manifest();
    assert!(!from_file.files["a.png"].hashed);
    assert_eq!(from_file.base, "/x/");
    let overridden = build(site.path(), &["--hash", "referenced", "--base", "/"]).manifest();
    assert!(overridden.files["a.png"].hashed);
    assert_eq!(overridden.base, "/");
}

#[test]
fn watch_refuses_the_flags_of_a_one_shot_build() {
    let site = crate::util::Site::new().file("index.html", "<p>x</p>");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let output = crate::util::kiln()
        .arg("watch")
        .arg(site.path())
        .arg("-o")
        .arg(&out)
        .args(["--json", "--compare-to", "old"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("kiln watch does not take --json, --compare-to"),
        "{stderr}"
    );
    // Refused before anything was built.
    assert!(!out.exists());
}
