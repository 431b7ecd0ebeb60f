#!/usr/bin/env bash
# The whole test suite: installs what the fidelity tests need (node, Debian's
# chromium, the harness's npm packages; see tests/setup.sh), then runs every
# Rust test. This is the README's test command, and what .ci/run runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup.sh
cargo test --locked "$@"
