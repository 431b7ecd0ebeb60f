#!/usr/bin/env bash
# How a build grows with the tree (issue 21, "scale on paper"): a synthetic
# site of N small files, built cold, then rebuilt with nothing changed.
#
# Usage: benches/scale.sh [N...]          default: 50000 200000
# Env:   KILN              kiln binary (default: the release build, built if missing)
#        KILN_BENCH_CACHE  trees, outputs and results (default: ~/.cache/kiln-bench)
#        KILN_SCALE_ARGS   extra build flags (default: --compress-effort fast, so that
#                          the figures are about the tree, not brotli 11)
# Needs: python3, /usr/bin/time (Debian's `time`).
#
# The tree, per 10 files: 6 HTML pages (about 1.5 KB, each linking the shared
# stylesheet and script and two sibling pages), 2 JSON files, 1 SVG icon and
# 1 text file, 100 files per folder. Deterministic: the same N gives the same
# tree. Prints one Markdown row per N: files, input MiB, cold wall, CPU,
# peak RSS, manifest size, no-op rebuild (same cache) wall and peak RSS.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${KILN_BENCH_CACHE:-$HOME/.cache/kiln-bench}
RESULTS=$CACHE/results
read -r -a ARGS <<< "${KILN_SCALE_ARGS:---compress-effort fast}"
SIZES=("$@")
[[ ${#SIZES[@]} -gt 0 ]] || SIZES=(50000 200000)

log() { echo "bench: $*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=benches/lib.sh
source "$REPO/benches/lib.sh"
find_kiln
[[ -x /usr/bin/time ]] || ensure_pkg time
mkdir -p "$RESULTS"

make_tree() {
    python3 - "$1" "$2" <<'EOF'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
os.makedirs(root, exist_ok=True)
with open(os.path.join(root, "site.css"), "w") as f:
    f.write("body { margin: 0 auto; max-width: 60rem; font-family: system-ui, sans-serif; }\n" * 20)
with open(os.path.join(root, "site.js"), "w") as f:
    f.write("document.addEventListener('DOMContentLoaded', function () { console.log('ready'); });\n" * 10)
made = 2
i = 0
while made < n:
    folder = f"d{i // 100:05d}"
    os.makedirs(os.path.join(root, folder), exist_ok=True)
    kind = i % 10
    name = os.path.join(root, folder, f"f{i:07d}")
    if kind < 6:
        body = "".join(f"<p>Paragraph {j} of page {i}: the quick brown fox jumps over the lazy dog.</p>\n" for j in range(16))
        text = (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>Page {i}</title>"
                f"<link rel=stylesheet href=/site.css><script src=/site.js defer></script></head>"
                f"<body><h1>Page {i}</h1>{body}<a href=f{i + 1:07d}.html>next</a> <a href=f{max(i - 1, 0):07d}.html>previous</a></body></html>\n")
        path = name + ".html"
    elif kind < 8:
        text = '{"id": %d, "tags": ["a", "b", "c"], "title": "item %d", "body": "%s"}\n' % (i, i, "x" * 200)
        path = name + ".json"
    elif kind == 8:
        text = f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><circle cx="12" cy="12" r="{i % 10 + 1}" fill="#336699"/></svg>\n'
        path = name + ".svg"
    else:
        text = f"Notes for item {i}.\n" * 20
        path = name + ".txt"
    with open(path, "w") as f:
        f.write(text)
    made += 1
    i += 1
EOF
}

echo "| files | input (MiB) | cold build | CPU (user+sys) | peak RSS (MiB) | manifest (MiB) | no-op rebuild | no-op peak RSS (MiB) |"
echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for n in "${SIZES[@]}"; do
    tree=$CACHE/scale/tree-$n
    out=$CACHE/scale/out-$n
    if [[ ! -f $tree.stamp ]]; then
        log "making a tree of $n files"
        rm -rf "$tree"
        make_tree "$tree" "$n"
        touch "$tree.stamp"
    fi
    cache=$CACHE/scale/cache-$n
    rm -rf "$out" "$cache"
    cores=$(nproc)
    log "cold build of $n files"
    /usr/bin/time -v "$KILN" build "$tree" -o "$out" --cache-dir "$cache" -q "${ARGS[@]}" 2> "$RESULTS/scale-$n-cold.txt" >/dev/null \
        || { tail -20 "$RESULTS/scale-$n-cold.txt" >&2; die "cold build failed"; }
    read -r cold_wall cold_cpu cold_rss _ < <(parse_time_v "$RESULTS/scale-$n-cold.txt" "$cores")
    log "no-op rebuild of $n files"
    /usr/bin/time -v "$KILN" build "$tree" -o "$out" --cache-dir "$cache" -q "${ARGS[@]}" 2> "$RESULTS/scale-$n-noop.txt" >/dev/null \
        || die "no-op rebuild failed"
    read -r noop_wall _ noop_rss _ < <(parse_time_v "$RESULTS/scale-$n-noop.txt" "$cores")
    input_mib=$(du -sk --apparent-size "$tree" | awk '{printf "%.1f", $1 / 1024}')
    manifest_mib=$(stat -c %s "$out/kiln-manifest.json" | awk '{printf "%.1f", $1 / 1048576}')
    echo "| $n | $input_mib | ${cold_wall} s | ${cold_cpu} s | $cold_rss | $manifest_mib | ${noop_wall} s | $noop_rss |"
done
