//! What kiln prints, as snapshots (`tests/integration/snapshots/`): the human
//! summary, `--json`, and the diagnostics of a tree with one problem of each
//! kind. What changes from run to run (times, temporary paths) is redacted;
//! everything else, sizes included, must stay as it is. `cargo insta review`
//! (or `INSTA_UPDATE=always`) accepts an intended change.

use std::path::Path;

use crate::util::{Site, TestCommand, fixture_path};

/// The human summary with its times and the output path redacted.
fn redact_text(text: &str, out: &Path) -> String {
    let text = text.replace(&out.display().to_string(), "[out]");
    text.lines()
        .map(|line| {
            if line.starts_with("slowest: ") {
                "slowest: [times]".to_owned()
            } else if line.starts_with("work, summed over threads: ") {
                "work, summed over threads: [times]".to_owned()
            } else if let Some((files, rest)) = line.split_once(" files in ")
                && let Some((_, after)) = rest.split_once(" ms → ")
            {
                format!("{files} files in [ms] ms → {after}")
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn build_site(json: bool) -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut cmd = TestCommand::new(&["build"]);
    cmd.arg(fixture_path("site"))
        .arg("-o")
        .arg(&out)
        .arg("--no-cache");
    if json {
        cmd.arg("--json");
    }
    (cmd.stdout(), dir)
}

#[test]
fn the_human_summary() {
    let (stdout, dir) = build_site(false);
    let text = redact_text(&stdout, &dir.path().join("out"));
    // The redaction left the lines it must.
    assert!(text.contains("files in [ms] ms → [out]"), "{text}");
    insta::assert_snapshot!("human_summary", text);
}

#[test]
fn the_json_summary() {
    let (stdout, dir) = build_site(true);
    let mut summary: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document");
    let out = dir.path().join("out").display().to_string();
    assert_eq!(summary["output"], out.as_str());
    assert!(summary["duration_ms"].as_u64().is_some());
    assert!(!summary["slowest"].as_array().unwrap().is_empty());
    summary["output"] = "[out]".into();
    summary["duration_ms"] = "[ms]".into();
    summary["slowest"] = "[times]".into();
    for step in ["transform", "gzip", "brotli"] {
        assert!(summary["work_ms"][step].as_f64().unwrap() > 0.0, "{step}");
        summary["work_ms"][step] = "[ms]".into();
    }
    let report = summary["report"].as_str().unwrap().replace(&out, "[out]");
    summary["report"] = report.into();
    insta::assert_json_snapshot!("json_summary", summary);
}

#[test]
fn the_diagnostics() {
    let site = Site::new()
        .file(
            "index.html",
            "<!doctype html>\n<link rel=stylesheet href=css/site.css>\n<img src=missing.png>\n<script type=module src=app.js></script>\n",
        )
        .file("css/site.css", "a { background: url(../gone.svg) }\nb { color: }\n")
        .file("app.js", "export const x = ;\n")
        .file("data.json", "{ \"a\": 1, }\n");
    let dir = tempfile::tempdir().unwrap();
    let stderr = TestCommand::new(&["build"])
        .arg(site.path())
        .arg("-o")
        .arg(dir.path().join("out"))
        .arg("--no-cache")
        .arg("--quiet")
        .arg("--strict")
        .fails_with(1);
    let text = stderr.replace(&site.path().display().to_string(), "[src]");
    assert!(text.lines().all(|l| l.starts_with("[src]/")), "{text}");
    insta::assert_snapshot!("diagnostics", text);
}
