//! The documentation stays true: every `toml` example in README.md and
//! docs/*.md is a kiln.toml that kiln accepts (unknown keys and bad values
//! are configuration errors, exit 2), used on a small site.

use std::path::Path;

use crate::util::kiln;

/// The ```toml blocks of a Markdown file, each split at `# or` lines (a block
/// that shows two ways to write the same thing).
fn toml_examples(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_start()) {
            (None, l) if l.starts_with("```toml") => current = Some(String::new()),
            (Some(block), l) if l.starts_with("```") => {
                out.push(std::mem::take(block));
                current = None;
            }
            (Some(block), "# or") => out.push(std::mem::take(block)),
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    out
}

/// README.md and every page of docs/, sorted.
pub(crate) fn doc_pages() -> Vec<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    files.sort();
    files
}

#[test]
fn every_kiln_toml_example_in_the_docs_is_accepted() {
    let files = doc_pages();
    let mut checked = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (i, example) in toml_examples(&text).iter().enumerate() {
            let dir = tempfile::tempdir().unwrap();
            let dist = dir.path().join("dist");
            std::fs::create_dir_all(dist.join("js")).unwrap();
            std::fs::write(dist.join("index.html"), "<script src=js/app.js></script>").unwrap();
            std::fs::write(dist.join("js/app.js"), "console.log(1)").unwrap();
            let config = dir.path().join("kiln.toml");
            std::fs::write(&config, example).unwrap();
            let output = kiln()
                .arg("build")
                .arg(&dist)
                .arg("--config")
                .arg(&config)
                .arg("-o")
                .arg(dir.path().join("out"))
                .arg("--no-cache")
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            // 0, or 4 when an example's budget is tighter than this site.
            assert!(
                matches!(output.status.code(), Some(0) | Some(4)),
                "{} example {}: exit {:?}\n{example}\n{stderr}",
                file.display(),
                i + 1,
                output.status.code()
            );
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} examples found");
}
