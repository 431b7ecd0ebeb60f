#!/usr/bin/env bash
# How often the SVG rendering check keeps each minified form (docs/frameworks.md, part 4):
# assembles an SVG corpus from pinned packages, idempotently, in the bench cache (outside the
# repo), and runs benches/svg_fidelity.rs over it.
#   openclipart  every 6th file of Debian's openclipart-svg (real-world illustrations)
#   tango        Debian's tango-icon-theme, scalable/ (Inkscape-authored icons, gradients)
#   simple-icons, bootstrap-icons, octicons   icon sets from npm (one path each, many decimals)
#   svg-fixtures, frameworks                  kiln's own fixtures/svg and fixtures/frameworks
#
# Usage: benches/svg.sh        Env: KILN_BENCH_CACHE (default ~/.cache/kiln-bench)
# Needs: Debian/Ubuntu (apt-get download, nothing installed), npm, cargo.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${KILN_BENCH_CACHE:-$HOME/.cache/kiln-bench}
SVG=$CACHE/corpus/svg
DEBS=(openclipart-svg=1:0.18+dfsg-19 tango-icon-theme=0.8.90-11)
NPM=(simple-icons@16.37.0 bootstrap-icons@1.13.2 @primer/octicons@19.42.0)

log() { printf 'svg.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

mkdir -p "$SVG"
if [[ ! -d $SVG/openclipart || ! -d $SVG/tango ]]; then
    work=$(mktemp -d)
    (cd "$work" && apt-get download "${DEBS[@]}" >/dev/null 2>&1) || die "apt-get download failed"
    for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$work/x"; done
    rm -rf "$SVG/openclipart" "$SVG/tango"
    mkdir -p "$SVG/openclipart" "$SVG/tango"
    find "$work/x/usr/share/openclipart" -name '*.svg' | LC_ALL=C sort | awk 'NR % 6 == 1' |
        while read -r f; do cp "$f" "$SVG/openclipart/$(basename "$(dirname "$f")")-$(basename "$f")"; done
    cp -r "$work/x/usr/share/icons/Tango/scalable/." "$SVG/tango/"
    rm -rf "$work"
fi
for spec in "${NPM[@]}"; do
    name=${spec%@*}
    dir=$SVG/${name##*/}
    [[ -d $dir ]] && continue
    work=$(mktemp -d)
    (cd "$work" && npm pack --silent "$spec" >/dev/null) || die "npm pack $spec failed"
    mkdir -p "$dir"
    tar -xzf "$work"/*.tgz -C "$dir"
    rm -rf "$work"
done
mkdir -p "$SVG/frameworks"
find "$REPO/fixtures/frameworks/built" -name '*.svg' -exec cp {} "$SVG/frameworks/" \;

cd "$REPO"
cargo bench --locked --bench svg_fidelity -- \
    "$SVG/openclipart" "$SVG/tango" "$SVG/simple-icons" "$SVG/bootstrap-icons" "$SVG/octicons" \
    "$REPO/fixtures/svg" "$SVG/frameworks"
