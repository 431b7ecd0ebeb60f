#!/usr/bin/env bash
# Benchmark `kiln build` on the tiny fixture and on a real documentation tree
# (the Python 3.11 HTML docs from Debian's python3.11-doc).
#
# Usage: benches/build.sh [EXTRA KILN ARGS...]     e.g. benches/build.sh --jobs 1
# Env:   KILN              kiln binary (default: ${CARGO_TARGET_DIR:-target}/release/kiln,
#                          built with cargo if missing)
#        KILN_BENCH_CACHE  doc tree, outputs and results (default: ~/.cache/kiln-bench)
# Needs: Debian/Ubuntu (apt) and python3; installs python3.11-doc, hyperfine and time.
# Results (hyperfine Markdown/JSON, /usr/bin/time report, summary.md) go to $CACHE/results.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${KILN_BENCH_CACHE:-$HOME/.cache/kiln-bench}
RESULTS=$CACHE/results
DOC_PKG=python3.11-doc
EXTRA_ARGS=("$@")

log() { echo "bench: $*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=benches/lib.sh
source "$REPO/benches/lib.sh"


# python3.11-doc is bookworm's name; where it does not exist, use the generic python3-doc.
ensure_doc_package() {
    if ! is_installed "$DOC_PKG"; then
        apt_update_once
        local policy
        policy=$(apt-cache policy "$DOC_PKG")
        if [[ $policy != *"Candidate: "[0-9]* ]]; then
            log "$DOC_PKG not available here, using python3-doc"
            DOC_PKG=python3-doc
        fi
    fi
    ensure_pkg "$DOC_PKG"
}


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

# The shell command hyperfine runs, every word quoted.
# kiln's own cache lives in the bench cache; cold runs empty both it and the output.
KILN_CACHE=$CACHE/kiln-cache
kiln_cmd() { printf '%q ' "$KILN" build "$1" -o "$2" --quiet --cache-dir "$KILN_CACHE" "${EXTRA_ARGS[@]}"; }

# run_hyperfine NAME SRC OUT [HYPERFINE OPTIONS...]: exports $RESULTS/NAME.{md,json}.
run_hyperfine() {
    local name=$1 src=$2 out=$3
    shift 3
    hyperfine --shell=bash --command-name "kiln build $name" "$@" \
        --export-markdown "$RESULTS/$name.md" --export-json "$RESULTS/$name.json" \
        "$(kiln_cmd "$src" "$out")"
}

# "mean ± sd unit" (or "mean unit" with a second argument "mean") from a hyperfine JSON export.
hf_time() {
    python3 - "$1" "${2:-sd}" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
scale, unit, digits = (1000, "ms", 1) if r["mean"] < 1 else (1, "s", 2)
mean, sd = r["mean"] * scale, (r["stddev"] or 0) * scale
print(f"{mean:.{digits}f} {unit}" + ("" if sys.argv[2] == "mean" else f" ± {sd:.{digits}f} {unit}"))
EOF
}

# One cold build under /usr/bin/time -v; sets RSS_MIB and EFFICIENCY.
measure_resources() {
    local src=$1 out=$2 report=$RESULTS/$3-time.txt cores wall cpu
    cores=$(nproc)
    rm -rf "$out" "$KILN_CACHE"
    # The corpus has real broken links: keep its diagnostics out of the log.
    /usr/bin/time -v -o "$report" "$KILN" build "$src" -o "$out" --quiet --cache-dir "$KILN_CACHE" \
        "${EXTRA_ARGS[@]}" \
        2>"$RESULTS/$3-diagnostics.txt"
    read -r wall cpu RSS_MIB EFFICIENCY < <(parse_time_v "$report" "$cores")
    log "$3 cold: wall ${wall}s, user+sys ${cpu}s, max RSS ${RSS_MIB} MiB," \
        "parallel efficiency (user+sys)/(wall*nproc) = $EFFICIENCY on $cores cores"
}

# The README table: one row per corpus ("–" where a measurement is not taken).
print_summary() {
    local fixture=$1 docs=$2
    echo "| corpus | files | input (MiB) | cold build | no-op rebuild | one CSS file touched | one CSS rule added | peak RSS (MiB) | CPU efficiency |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    echo "| fixtures/site | $(file_count "$fixture") | $(size_mib "$fixture")" \
        "| $(hf_time "$RESULTS/fixture.json") | – | – | – | – | – |"
    echo "| Python 3.11 docs | $(file_count "$docs") | $(size_mib "$docs")" \
        "| $(hf_time "$RESULTS/python-docs.json") | $(hf_time "$RESULTS/python-docs-noop.json" mean)" \
        "| $(hf_time "$RESULTS/python-docs-touch-css.json" mean)" \
        "| $(hf_time "$RESULTS/python-docs-one-css.json" mean) | $RSS_MIB | $EFFICIENCY |"
}

main() {
    cd "$REPO"
    mkdir -p "$RESULTS" "$CACHE/out"
    ensure_pkg hyperfine
    ensure_pkg time
    ensure_doc_package
    assemble_docs
    find_kiln
    log "$("$KILN" --version), $(nproc) cores, extra kiln args: ${EXTRA_ARGS[*]:-none}"

    local fixture=$REPO/fixtures/site docs=$CACHE/python-docs
    local fixture_out=$CACHE/out/fixture docs_out=$CACHE/out/python-docs
    run_hyperfine fixture "$fixture" "$fixture_out" --warmup 1 --runs 5 \
        --prepare "rm -rf $(printf %q "$fixture_out") $(printf %q "$KILN_CACHE")"
    run_hyperfine python-docs "$docs" "$docs_out" --runs 3 \
        --prepare "rm -rf $(printf %q "$docs_out") $(printf %q "$KILN_CACHE")"
    # The last cold run left its output and cache: this rebuild finds nothing to change.
    run_hyperfine python-docs-noop "$docs" "$docs_out" --warmup 1 --runs 5
    # One CSS file edited before each run (a new rule). Every page links this
    # stylesheet, so its new name goes into all 530 pages, which are then
    # compressed again; the cache serves every other transform.
    local css=$docs/_static/pydoctheme.css pristine=$CACHE/pydoctheme.css.pristine
    cp "$css" "$pristine"
    run_hyperfine python-docs-one-css "$docs" "$docs_out" --runs 3 \
        --prepare "cp $(printf %q "$pristine") $(printf %q "$css") && echo \".kiln-edit-\$RANDOM{color:red}\" >> $(printf %q "$css")"
    cp "$pristine" "$css"
    # The same file touched (its bytes unchanged): nothing to redo.
    run_hyperfine python-docs-touch-css "$docs" "$docs_out" --runs 3 --prepare "touch $(printf %q "$css")"
    measure_resources "$docs" "$docs_out" python-docs

    print_summary "$fixture" "$docs" | tee "$RESULTS/summary.md"
    log "results in $RESULTS"
}

# Sourcing the script (for testing its functions) does not run it.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    main "$@"
fi
