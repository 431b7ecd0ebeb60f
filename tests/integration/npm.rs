//! The npm packages (`npm/`): packed around the binary under test, installed
//! offline into a new project and run there (`npx kiln build`, `npm run
//! build`, the JS API), then the package's own `node --test` suite. The work
//! is in `tests/npm/run.sh`; it needs Node.js and npm (`tests/setup.sh`).

use std::path::Path;
use std::process::Command;

#[test]
fn the_npm_package_installs_offline_and_runs_kiln() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new("bash")
        .arg(root.join("tests/npm/run.sh"))
        .arg(env!("CARGO_BIN_EXE_kiln"))
        .current_dir(root)
        .output()
        .expect("bash runs tests/npm/run.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("npm-ok"),
        "tests/npm/run.sh failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
}
