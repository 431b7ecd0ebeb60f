//! The README's shell examples run as written: each `kiln …` line of its
//! ```sh blocks, in a project whose `dist/` is the bundled example site.
//! What the test changes, and why:
//! - `cargo run --release --` is the binary under test (a release build of
//!   the same code would take minutes);
//! - `s3://bucket/` is a fresh bucket on the test S3 server (SeaweedFS),
//!   whose endpoint a kiln.toml `[deploy]` in the project gives, with the
//!   test credentials in the environment;
//! - `dir:/srv/www` is a folder of the project;
//! - `kiln serve` and `kiln watch --serve` must print where they listen,
//!   then are stopped;
//! - `npm i -D kiln` is left out (it would reach the registry; tests/npm
//!   installs the same package from its packed tarball and runs `npx kiln`),
//!   and `npx kiln` runs the binary;
//! - `tests/run.sh` is the suite running this test; `.ci/run` must call it.

use std::path::Path;
use std::process::Command;

use crate::deploy::{bucket, server};
use crate::util::{copy_dir, fixture_path, kiln};

/// The command lines of the README's ```sh blocks, comments removed, `&&`
/// chains split.
fn shell_examples(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") {
            inside = !inside && trimmed.starts_with("```sh");
            continue;
        }
        if !inside {
            continue;
        }
        let command = line.split(" # ").next().unwrap_or("").trim();
        for part in command.split(" && ") {
            if !part.is_empty() && !part.starts_with('#') {
                out.push(part.trim().to_owned());
            }
        }
    }
    out
}

#[test]
fn every_shell_example_in_the_readme_runs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let examples = shell_examples(&readme);
    assert!(examples.len() >= 15, "{examples:#?}");

    let project = tempfile::tempdir().unwrap();
    let dir = project.path();
    copy_dir(&fixture_path("site"), &dir.join("dist"));
    // The set-up command builds the bundled site from the repository's root.
    copy_dir(&fixture_path("site"), &dir.join("fixtures/site"));
    // What the examples expect to exist: a configuration naming source and
    // output, and an earlier build to compare with.
    std::fs::create_dir_all(dir.join("site")).unwrap();
    std::fs::write(
        dir.join("site/kiln.toml"),
        "source = \"../dist\"\noutput = \"../out-config\"\n",
    )
    .unwrap();
    let s3 = server();
    std::fs::write(
        dir.join("kiln.toml"),
        format!(
            "[deploy]\nendpoint = \"{}\"\npath_style = true\n",
            s3.endpoint
        ),
    )
    .unwrap();
    let output = kiln()
        .current_dir(dir)
        .args(["build", "dist", "-o", "old-out", "-q"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let bucket = bucket("readme");
    let www = dir.join("srv/www");

    let mut ran = 0;
    for example in &examples {
        let line = example
            .replace("cargo run --release -- ", "kiln ")
            .replace("npx kiln ", "kiln ")
            .replace("s3://bucket/", &format!("s3://{bucket}/"))
            .replace("dir:/srv/www", &format!("dir:{}", www.display()));
        if line == "tests/run.sh" {
            let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap();
            assert!(
                ci.contains("tests/run.sh"),
                ".ci/run does not call tests/run.sh"
            );
            continue;
        }
        if line.starts_with("npm i") {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            words[0], "kiln",
            "an example this test cannot run: {example}"
        );
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
        cmd.current_dir(dir)
            .env_remove("GITHUB_ACTIONS")
            .env_remove("CI")
            .args(&words[1..])
            .env("AWS_ACCESS_KEY_ID", &s3.access_key)
            .env("AWS_SECRET_ACCESS_KEY", &s3.secret_key)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ENDPOINT_URL");
        let serves = words[1] == "serve" || words.contains(&"--serve");
        if serves {
            // A long-running server: it must say where it listens (a
            // watch first says what it built).
            use std::io::BufRead;
            let mut child = cmd
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            let mut lines = Vec::new();
            for line in std::io::BufReader::new(child.stdout.take().unwrap())
                .lines()
                .map_while(Result::ok)
                .take(5)
            {
                let found = line.contains("http://");
                lines.push(line);
                if found {
                    break;
                }
            }
            let _ = child.kill();
            let _ = child.wait();
            assert!(
                lines.iter().any(|l| l.contains("http://127.0.0.1:")),
                "{example}: {lines:?}"
            );
        } else {
            let output = cmd.output().unwrap();
            assert!(
                output.status.success(),
                "{example}: exit {:?}\n{}",
                output.status.code(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        ran += 1;
    }
    assert!(ran >= 14, "{ran} examples ran");
    // What the examples left: the deploys reached their origins.
    assert!(www.join("index.html").is_file());
    assert!(dir.join("out-config/kiln-manifest.json").is_file());
    assert!(dir.join("kiln-out/kiln-manifest.json").is_file());
}

/// Every flag a README or docs command line gives `kiln SUBCOMMAND` is one
/// that subcommand's `--help` lists.
#[test]
fn every_flag_the_docs_give_a_command_is_in_its_help() {
    let pages = crate::docs::doc_pages();
    let mut helps = std::collections::HashMap::new();
    let mut checked = 0;
    for page in &pages {
        let text = std::fs::read_to_string(page).unwrap();
        for line in text.lines() {
            // Command lines, in code blocks or spans: `kiln SUB … --flag …`.
            for start in line.match_indices("kiln ").map(|(i, _)| i) {
                let rest = &line[start + 5..];
                let command: &str = rest.split(['`', '#', '|', ';', ')']).next().unwrap_or("");
                let mut words = command.split_whitespace();
                let Some(mut sub) = words.next().map(str::to_owned) else {
                    continue;
                };
                if !["build", "deploy", "serve", "watch", "diff", "cache"].contains(&sub.as_str()) {
                    continue;
                }
                if sub == "cache" {
                    // `kiln cache stats|prune`: the flags are the inner command's.
                    match words.next() {
                        Some(inner) if !inner.starts_with('-') => sub = format!("cache {inner}"),
                        _ => continue,
                    }
                }
                let help = helps.entry(sub.clone()).or_insert_with(|| {
                    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
                        .args(sub.split(' '))
                        .arg("--help")
                        .output()
                        .unwrap();
                    String::from_utf8_lossy(&out.stdout).into_owned()
                });
                for word in words.take_while(|w| *w != "&&") {
                    let flag = word.split('=').next().unwrap_or(word);
                    if flag.starts_with("--") && flag.len() > 2 {
                        let flag = flag.trim_end_matches([',', '.', ':', '"', '\'']);
                        assert!(
                            help.contains(&format!("{flag} "))
                                || help.contains(&format!("{flag}\n"))
                                || help.contains(&format!("{flag}="))
                                || help.contains(&format!("{flag} <")),
                            "{}: `kiln {sub}` has no {flag} ({line})",
                            page.display()
                        );
                        checked += 1;
                    }
                }
            }
        }
    }
    assert!(checked >= 30, "only {checked} flags found");
}
