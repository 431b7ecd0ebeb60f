//! The GitHub Action (`action.yml`) and the example workflows: actionlint and
//! the repository's own checks over them (`tests/action/lint.mjs`), and the
//! action run step by step by a simulated runner with this build of kiln as
//! `KILN_BINARY` (`tests/action/run_tests.py`: build, deploy to a `dir:`
//! origin, hostile inputs, budgets, the release download and its checksum).
//! Needs `tests/setup.sh` (node and `tests/action/node_modules`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn harness() -> PathBuf {
    let dir = repo().join("tests/action");
    assert!(
        dir.join("node_modules").is_dir(),
        "the action tests need `bash tests/setup.sh` (node, tests/action/node_modules)"
    );
    dir
}

fn describe(what: &str, output: &Output) -> String {
    format!(
        "{what}: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn action_and_workflows_pass_actionlint_and_the_expression_rules() {
    let dir = harness();
    let output = Command::new("node")
        .arg(dir.join("lint.mjs"))
        .arg(repo())
        .current_dir(repo())
        .output()
        .expect("node runs");
    assert!(output.status.success(), "{}", describe("lint.mjs", &output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("lint-ok"),
        "{}",
        describe("lint.mjs", &output)
    );
}

#[test]
fn the_action_builds_deploys_and_resists_hostile_inputs_in_a_simulated_runner() {
    let dir = harness();
    let kiln = Path::new(env!("CARGO_BIN_EXE_kiln"));
    let output = Command::new("python3")
        .arg(dir.join("run_tests.py"))
        .current_dir(repo())
        .env("KILN_BINARY", kiln)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.lines().any(|line| line.trim() == "action-ok"),
        "{}",
        describe("run_tests.py", &output)
    );
}
