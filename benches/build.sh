#!/usr/bin/env bash
# Benchmark `kiln build` on the tiny fixture and on a real documentation tree
# (the Python 3.11 HTML docs from Debian's python3.11-doc).
#
# Usage: benches/build.sh [EXTRA KILN ARGS...]     e.g. benches/build.sh --jobs 1
# Env:   KILN              kiln binary (default: ${CARGO_TARGET_DIR:-target}/release/kiln,
#                          built with cargo if missing)
#        KILN_BENCH_CACHE  doc tree, outputs and results (default: ~/.cache/kiln-bench)
# Needs: Debian/Ubuntu (apt), python3; installs python3.11-doc, hyperfine and time.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${KILN_BENCH_CACHE:-$HOME/.cache/kiln-bench}
RESULTS=$CACHE/results
DOC_PKG=python3.11-doc
EXTRA_ARGS=("$@")
SUDO=""
[[ $(id -u) -eq 0 ]] || SUDO=sudo
APT_UPDATED=no

log() { echo "bench: $*" >&2; }
die() { log "error: $*"; exit 1; }

# --- packages ---------------------------------------------------------------
apt_update_once() {
    if [[ $APT_UPDATED == no ]]; then
        $SUDO apt-get update -qq
        APT_UPDATED=yes
    fi
}

is_installed() {
    [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true) == "install ok installed" ]]
}

ensure_pkg() {
    if ! is_installed "$1"; then
        apt_update_once
        log "installing $1"
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null
    fi
}

# python3.11-doc is bookworm's name; elsewhere fall back to the generic python3-doc.
choose_doc_package() {
    is_installed "$DOC_PKG" && return
    apt_update_once
    local policy
    policy=$(apt-cache policy "$DOC_PKG")
    if [[ $policy != *"Candidate: "[0-9]* ]]; then
        log "$DOC_PKG not available here, using python3-doc"
        DOC_PKG=python3-doc
    fi
}

# --- kiln binary ------------------------------------------------------------
find_kiln() {
    if [[ -z ${KILN:-} ]]; then
        KILN=${CARGO_TARGET_DIR:-target}/release/kiln
        [[ -x $KILN ]] || cargo build --release --locked
    fi
    [[ -x $KILN ]] || die "no kiln binary at $KILN"
    KILN=$(realpath "$KILN")
}

# --- corpora ----------------------------------------------------------------
file_count() { find "$1" -type f | wc -l; }
size_mib() { du -sbL "$1" | awk '{printf "%.1f", $1 / 1048576}'; }

# Copy the package's HTML tree into $CACHE/python-docs, once per package version.
# -L dereferences Debian's links (jquery.js, underscore.js -> /usr/share/javascript).
assemble_docs() {
    local tree=$CACHE/python-docs stamp_file=$CACHE/python-docs.stamp stamp index html_dir
    stamp="$DOC_PKG $(dpkg-query -W -f='${Version}' "$DOC_PKG")"
    if [[ -d $tree && -f $stamp_file && $(<"$stamp_file") == "$stamp" ]]; then
        log "doc tree up to date ($stamp)"
    else
        index=$(dpkg -L "$DOC_PKG" | awk '/\/html\/index\.html$/ && !n++')
        [[ -n $index ]] || index=$(dpkg -L "$DOC_PKG" | awk '/\/html$/ && !n++')/index.html
        html_dir=$(dirname "$(realpath "$index")")
        [[ -f $html_dir/index.html ]] || die "no HTML tree found in $DOC_PKG"
        log "copying $html_dir -> $tree"
        rm -rf "$tree" "$tree.tmp"
        cp -rL "$html_dir" "$tree.tmp"
        [[ -z $(find "$tree.tmp" -type l) ]] || die "symlinks left in $tree.tmp"
        mv "$tree.tmp" "$tree"
        echo "$stamp" >"$stamp_file"
    fi
    log "doc tree: $tree, $(file_count "$tree") files, $(size_mib "$tree") MiB"
}

# --- measurements -----------------------------------------------------------
# The shell command hyperfine runs, every word quoted.
kiln_cmd() {
    printf '%q ' "$KILN" build "$1" -o "$2" --quiet "${EXTRA_ARGS[@]}"
}

# hyperfine NAME SRC OUT [HYPERFINE OPTIONS...]; exports $RESULTS/NAME.{md,json}.
run_hyperfine() {
    local name=$1 src=$2 out=$3
    shift 3
    hyperfine --shell=bash --command-name "kiln build $name" "$@" \
        --export-markdown "$RESULTS/$name.md" --export-json "$RESULTS/$name.json" \
        "$(kiln_cmd "$src" "$out")"
}

# "mean ± sd" (or just the mean with "mean") from a hyperfine JSON export.
hf_time() {
    python3 - "$1" "${2:-sd}" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
fmt = lambda s: f"{s * 1000:.1f} ms" if s < 1 else f"{s:.2f} s"
print(fmt(r["mean"]) if sys.argv[2] == "mean" else f"{fmt(r['mean'])} ± {fmt(r['stddev'])}")
EOF
}

# Parse `/usr/bin/time -v` output into "WALL_S CPU_S MAXRSS_KB" (CPU = user + sys).
parse_time_v() {
    awk -F': ' '
        /User time \(seconds\)/ { user = $2 }
        /System time \(seconds\)/ { sys = $2 }
        /Maximum resident set size/ { rss = $2 }
        /Elapsed \(wall clock\) time/ {
            n = split($NF, part, ":"); wall = 0
            for (i = 1; i <= n; i++) wall = wall * 60 + part[i]
        }
        END { printf "%.2f %.2f %d\n", wall, user + sys, rss }' "$1"
}

# One cold build under /usr/bin/time -v; sets RSS_MIB and EFFICIENCY.
measure_resources() {
    local src=$1 out=$2 report=$RESULTS/$3-time.txt wall cpu rss cores
    rm -rf "$out"
    /usr/bin/time -v -o "$report" "$KILN" build "$src" -o "$out" --quiet "${EXTRA_ARGS[@]}"
    read -r wall cpu rss < <(parse_time_v "$report")
    cores=$(nproc)
    RSS_MIB=$(awk -v k="$rss" 'BEGIN {printf "%.0f", k / 1024}')
    EFFICIENCY=$(awk -v c="$cpu" -v w="$wall" -v n="$cores" 'BEGIN {printf "%.0f%%", 100 * c / (w * n)}')
    log "$3 cold: wall ${wall}s, user+sys ${cpu}s, max RSS ${RSS_MIB} MiB," \
        "parallel efficiency $EFFICIENCY of $cores cores"
}

# --- main -------------------------------------------------------------------
main() {
    cd "$REPO"
    mkdir -p "$RESULTS" "$CACHE/out"
    ensure_pkg hyperfine
    ensure_pkg time
    choose_doc_package
    ensure_pkg "$DOC_PKG"
    assemble_docs
    find_kiln
    log "$("$KILN" --version), $(nproc) cores, extra args: ${EXTRA_ARGS[*]:-none}"

    local fixture=$REPO/fixtures/site docs=$CACHE/python-docs
    local fixture_out=$CACHE/out/fixture docs_out=$CACHE/out/python-docs
    run_hyperfine fixture "$fixture" "$fixture_out" --warmup 1 --runs 5 --prepare "rm -rf $(printf %q "$fixture_out")"
    run_hyperfine python-docs "$docs" "$docs_out" --runs 3 --prepare "rm -rf $(printf %q "$docs_out")"
    # Output left by the last cold run: this rebuild has nothing to change.
    run_hyperfine python-docs-noop "$docs" "$docs_out" --warmup 1 --runs 5
    measure_resources "$docs" "$docs_out" python-docs

    {
        echo "| corpus | files | input (MiB) | cold build (mean ± sd) | no-op rebuild | peak RSS (MiB) | CPU efficiency |"
        echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
        echo "| fixtures/site | $(file_count "$fixture") | $(size_mib "$fixture") | $(hf_time "$RESULTS/fixture.json") | – | – | – |"
        echo "| Python 3.11 docs | $(file_count "$docs") | $(size_mib "$docs") | $(hf_time "$RESULTS/python-docs.json")" \
            "| $(hf_time "$RESULTS/python-docs-noop.json" mean) | $RSS_MIB | $EFFICIENCY |"
    } | tee "$RESULTS/summary.md"
    log "results in $RESULTS"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    main "$@"
fi
