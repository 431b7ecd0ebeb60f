#!/usr/bin/env bash
# The framework corpus (fixtures/frameworks/built/) before and after kiln, one Markdown row per
# site: files, raw bytes and brotli bytes of the framework's output as written (kiln with
# --no-minify --hash none, so every file gets the same brotli 11 treatment) and of kiln's build,
# and whether `kiln build --strict` passed. The browser checks are tests/integration/frameworks.rs.
#
# Usage: benches/frameworks.sh [SITE...]      Env: KILN (default: the release build)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log() { printf 'frameworks.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=benches/lib.sh
source "$REPO/benches/lib.sh"
find_kiln

CORPUS=$REPO/fixtures/frameworks/built
if [[ $# -gt 0 ]]; then sites=("$@"); else mapfile -t sites < <(ls "$CORPUS"); fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "| site | files | raw before | raw after | brotli before | brotli after | brotli after/before | --strict |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
for site in "${sites[@]}"; do
    "$KILN" build "$CORPUS/$site" -o "$work/$site-before" --no-minify --hash none --no-cache \
        --no-report --json -q > "$work/before.json"
    strict=passed
    "$KILN" build "$CORPUS/$site" -o "$work/$site-after" --strict --no-cache --no-report --json -q \
        > "$work/after.json" || strict="failed ($?)"
    python3 - "$site" "$work/before.json" "$work/after.json" "$strict" <<'PY'
import json, sys
site, before, after, strict = sys.argv[1], *map(lambda p: json.load(open(p))["total"], sys.argv[2:4]), sys.argv[4]
print(f"| {site} | {after['files']} | {before['bytes_out']:,} | {after['bytes_out']:,} | "
      f"{before['brotli']:,} | {after['brotli']:,} | {after['brotli'] / before['brotli']:.3f} | {strict} |")
PY
done
