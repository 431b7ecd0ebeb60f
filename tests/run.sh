#!/usr/bin/env bash
# The whole test suite: installs what the tests need (node, Debian's chromium,
# the browser harness's npm packages, SeaweedFS for the deploy tests; see
# tests/setup.sh), starts the S3 server on a free loopback port, runs every
# Rust test, and stops the server. This is the README's test command, and what
# .ci/run runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup.sh
s3_dir="$(mktemp -d)"
trap 'python3 tests/s3/server.py stop --dir "$s3_dir" --timeout 0 >/dev/null 2>&1 || true; rm -rf "$s3_dir"' EXIT
KILN_TEST_S3="$(python3 tests/s3/server.py start --dir "$s3_dir")"
export KILN_TEST_S3
cargo test --locked "$@"
