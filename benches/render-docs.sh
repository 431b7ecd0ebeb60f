#!/usr/bin/env bash
# Fidelity on a real documentation site: build the Python 3.11 docs (Debian's
# python3.11-doc, assembled by benches/build.sh) with kiln, then render a sample
# of pages before and after in headless Chromium and compare the screenshots
# pixel by pixel (tests/browser/render-compare.mjs).
#
# Usage: benches/render-docs.sh [EVERY]   render every EVERY-th page (default 18: 30 pages; 1: all)
# Env:   KILN, KILN_BENCH_CACHE as in benches/build.sh
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${KILN_BENCH_CACHE:-$HOME/.cache/kiln-bench}
EVERY=${1:-18}
DOCS=$CACHE/python-docs
OUT=$CACHE/python-docs-built
ARTIFACTS=$CACHE/results/render-docs

log() { echo "render-docs: $*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=benches/lib.sh
source "$REPO/benches/lib.sh"
find_kiln
[[ -d $DOCS ]] || { echo "run benches/build.sh first: it assembles $DOCS" >&2; exit 1; }
bash "$REPO/tests/setup.sh"

rm -rf "$OUT"
mkdir -p "$CACHE/results"
"$KILN" build "$DOCS" -o "$OUT" --quiet 2>"$CACHE/results/render-docs-diagnostics.txt"
pages=$(cd "$DOCS" && find . -name '*.html' | sed 's|^\./|/|' | sort | awk -v n="$EVERY" 'NR % n == 1' | paste -sd, -)
echo "render-docs: $(tr ',' '\n' <<<"$pages" | wc -l) pages" >&2
node "$REPO/tests/browser/render-compare.mjs" --original "$DOCS" --built "$OUT" --out "$ARTIFACTS" \
    --pages "$pages" >"$ARTIFACTS.json"
python3 - "$ARTIFACTS.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
pages = report["pages"]
same = sum(p["identical"] and not p["newConsoleErrors"] and not p["newFailedRequests"] for p in pages)
print(f"{same}/{len(pages)} pages pixel-identical with no new errors; ok = {report['ok']}")
for p in pages:
    if not p["identical"]:
        print(f"  {p['path']}: {p['diffPixels']} pixels differ")
PY
