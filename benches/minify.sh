#!/usr/bin/env bash
# Compare kiln's minifiers with peer tools, file by file, on real inputs:
#   JS   (jquery, lodash, d3, three.module, react-dom dev)  kiln, terser, esbuild
#   CSS  (bootstrap)                                        kiln, lightningcss-cli, esbuild
#   HTML (Python 3.11 docs, library/stdtypes.html)          kiln, html-minifier-terser, @minify-html/node
# For every output: raw bytes, gzip -9 bytes, brotli -q 11 bytes (all compressed here with
# the same CLIs, kiln's output included) and the mean wall time of hyperfine runs.
# kiln builds a directory: it is timed on a directory holding only the one file, with a
# kiln.toml that turns precompression off (the peers do not precompress); the time of the
# default build (gzip + brotli variants written) is reported beside it.
#
# Usage: benches/minify.sh
# Env:   KILN              kiln binary (default: ${CARGO_TARGET_DIR:-target}/release/kiln;
#                          this script never builds it)
#        KILN_BENCH_CACHE  cache root (default: ~/.cache/kiln-bench); everything goes in
#                          $KILN_BENCH_CACHE/minify: npm/ (pinned peers and inputs), src/
#                          (the inputs), work/ (outputs, hyperfine JSON), results.md
#        KILN_BENCH_RUNS   hyperfine runs per command (default 5, after 1 warm-up)
# Needs: Debian/Ubuntu (apt), node >= 18 with npm, python3. Installs hyperfine, brotli, gzip
#        and python3.11-doc with apt when missing.
# Exit:  0, or 1 when kiln failed on an input or a minified JS file fails `node --check`
#        (the results are written first). A failing peer is reported, not fatal.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${KILN_BENCH_CACHE:-$HOME/.cache/kiln-bench}
BENCH=$CACHE/minify
NPM_DIR=$BENCH/npm
SRC=$BENCH/src
WORK=$BENCH/work
RESULTS=$BENCH/results.md
TSV=$WORK/results.tsv
RUNS=${KILN_BENCH_RUNS:-5}
FAILED=0

# Exact versions (the newest that install and run on node 20 when this was written).
PEERS=(
    esbuild@0.28.2
    terser@5.51.4
    lightningcss-cli@1.33.0
    html-minifier-terser@7.2.0
    @minify-html/node@0.18.1
)
# three 0.170.0 is the last release whose build/three.module.js is one self-contained
# module; from 0.171 it is a thin file importing ./three.core.js.
CORPUS_PACKAGES=(
    jquery@4.0.0
    lodash@4.18.1
    d3@7.9.2
    three@0.170.0
    react@18.3.1
    react-dom@18.3.1
    bootstrap@5.3.9
)
# "name in src/=path under node_modules", in report order.
NPM_INPUTS=(
    jquery.js=jquery/dist/jquery.js
    lodash.js=lodash/lodash.js
    d3.js=d3/dist/d3.js
    three.module.js=three/build/three.module.js
    react-dom.development.js=react-dom/umd/react-dom.development.js
    bootstrap.css=bootstrap/dist/css/bootstrap.css
)
HTML_PAGE=library/stdtypes.html
DOC_PKG=python3.11-doc
# kiln's default CSS targets (src/transform/css.rs), given to lightningcss-cli as well.
CSS_TARGETS="chrome >= 109, edge >= 109, firefox >= 115, safari >= 15.6, ios_saf >= 15.6, samsung >= 21"

log() { echo "minify-bench: $*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=benches/lib.sh
source "$REPO/benches/lib.sh"

# ---------------------------------------------------------------- set-up



# npm peers and input packages in $NPM_DIR, reinstalled only when the pinned list changes.
install_npm_packages() {
    local stamp_file=$NPM_DIR/.bench-stamp stamp
    stamp="node $(node --version): ${PEERS[*]} ${CORPUS_PACKAGES[*]}"
    mkdir -p "$NPM_DIR"
    if [[ -d $NPM_DIR/node_modules && -f $stamp_file && $(<"$stamp_file") == "$stamp" ]]; then
        log "npm packages up to date in $NPM_DIR"
        return
    fi
    [[ -f $NPM_DIR/package.json ]] ||
        echo '{ "name": "kiln-minify-bench", "private": true }' >"$NPM_DIR/package.json"
    log "npm install in $NPM_DIR"
    (cd "$NPM_DIR" && npm install --no-audit --no-fund --save-exact --loglevel=error \
        "${PEERS[@]}" "${CORPUS_PACKAGES[@]}" >&2)
    echo "$stamp" >"$stamp_file"
}

# The big HTML page: from benches/build.sh's copy of the docs if there, else from the package.
find_html_page() {
    local cached=$CACHE/python-docs/$HTML_PAGE html_dir
    if [[ -f $cached ]]; then
        HTML_SOURCE=$cached
        return
    fi
    if ! is_installed "$DOC_PKG"; then
        apt_update_once
        if [[ $(apt-cache policy "$DOC_PKG") != *"Candidate: "[0-9]* ]]; then
            log "$DOC_PKG not available here, using python3-doc"
            DOC_PKG=python3-doc
        fi
    fi
    ensure_pkg "$DOC_PKG"
    html_dir=$(dpkg -L "$DOC_PKG" | awk '/\/html\/index\.html$/ && !n++')
    [[ -n $html_dir ]] || die "no HTML tree in $DOC_PKG"
    HTML_SOURCE=$(realpath "$(dirname "$html_dir")/$HTML_PAGE")
    [[ -f $HTML_SOURCE ]] || die "no $HTML_PAGE in $DOC_PKG"
}

copy_if_changed() {
    cmp -s "$1" "$2" 2>/dev/null || cp "$1" "$2"
}

# $SRC: the flat input tree. INPUTS: its file names, in report order.
assemble_inputs() {
    local entry name
    mkdir -p "$SRC"
    INPUTS=()
    for entry in "${NPM_INPUTS[@]}"; do
        name=${entry%%=*}
        [[ -f $NPM_DIR/node_modules/${entry#*=} ]] || die "missing node_modules/${entry#*=}"
        copy_if_changed "$NPM_DIR/node_modules/${entry#*=}" "$SRC/$name"
        INPUTS+=("$name")
    done
    name=$(basename "$HTML_PAGE")
    copy_if_changed "$HTML_SOURCE" "$SRC/$name"
    INPUTS+=("$name")
}

# ---------------------------------------------------------------- measuring

kind_of() {
    case $1 in
        *.js) echo js ;;
        *.css) echo css ;;
        *.html) echo html ;;
        *) die "unknown kind: $1" ;;
    esac
}
tools_for() {
    case $1 in
        js) echo kiln terser esbuild ;;
        css) echo kiln lightningcss esbuild ;;
        html) echo kiln html-minifier-terser minify-html ;;
    esac
}
is_module() { [[ $1 == *.module.js ]]; }

# "RAW GZIP BROTLI" byte counts of a file, compressed by the command-line tools.
sizes() {
    echo "$(stat -c %s "$1") $(gzip -9 -c "$1" | wc -c) $(brotli -q 11 -c "$1" | wc -c)"
}

# Shell command (for hyperfine, bash) that minifies IN into OUT with a peer.
peer_cmd() {
    local tool=$1 in=$2 out=$3 bin=$NPM_DIR/node_modules/.bin
    case $tool in
        terser)
            local module=()
            is_module "$in" && module=(--module)
            printf '%q ' "$bin/terser" "$in" --compress --mangle "${module[@]}" -o "$out" ;;
        esbuild)
            case $in in
                *.css) printf '%q ' "$bin/esbuild" --minify --loader=css; printf '< %q > %q' "$in" "$out" ;;
                *)
                    local format=()
                    is_module "$in" && format=(--format=esm)
                    printf '%q ' "$bin/esbuild" "$in" --minify "${format[@]}" --log-level=warning \
                        "--outfile=$out" ;;
            esac ;;
        lightningcss)
            printf '%q ' "$bin/lightningcss" --minify --targets "$CSS_TARGETS" "$in" -o "$out" ;;
        html-minifier-terser)
            printf '%q ' "$bin/html-minifier-terser" --collapse-whitespace --conservative-collapse \
                --remove-comments --minify-css true --minify-js true -o "$out" "$in" ;;
        minify-html)
            printf '%q ' node "$WORK/minify-html.cjs" "$in" "$out" ;;
        *) die "unknown tool $tool" ;;
    esac
}

write_minify_html_runner() {
    mkdir -p "$WORK"
    cat >"$WORK/minify-html.cjs" <<EOF
// @minify-html/node with its default options: node minify-html.cjs IN OUT
const fs = require("fs");
const { minify } = require("$NPM_DIR/node_modules/@minify-html/node");
fs.writeFileSync(process.argv[3], minify(fs.readFileSync(process.argv[2]), {}));
EOF
}

# hyperfine NAME CMD [OPTIONS...]: mean wall time in ms, JSON kept in $WORK/timings/NAME.json.
time_ms() {
    local name=$1 cmd=$2 json=$WORK/timings/$1.json
    shift 2
    mkdir -p "$WORK/timings"
    hyperfine --shell=bash --style=none --warmup 1 --runs "$RUNS" "$@" \
        --command-name "$name" --export-json "$json" "$cmd" >/dev/null
    python3 -c 'import json, sys; r = json.load(open(sys.argv[1]))["results"][0]; print("%.1f" % (r["mean"] * 1000))' "$json"
}

# record KIND FILE TOOL RAW GZ BR MS MS_FULL NOTE (one row of $TSV; "-" where not measured)
record() {
    local IFS=$'\t'
    echo "$*" >>"$TSV"
}

# A directory holding only FILE (and kiln.toml with precompression off when $3 = nocomp).
kiln_source_dir() {
    local name=$1 variant=$2 dir=$WORK/kiln-src/$2/$1
    mkdir -p "$dir"
    find "$dir" -mindepth 1 -maxdepth 1 ! -name "$name" ! -name kiln.toml -exec rm -rf {} +
    copy_if_changed "$SRC/$name" "$dir/$name"
    if [[ $variant == nocomp ]]; then
        printf '[compress]\ngzip = false\nbrotli = false\n' >"$dir/kiln.toml"
    else
        rm -f "$dir/kiln.toml"
    fi
    echo "$dir"
}

# The output path of a source path in OUT/kiln-manifest.json.
manifest_field() {
    python3 -c 'import json,sys; v=json.load(open(sys.argv[1]))["files"][sys.argv[2]][sys.argv[3]]; print("-" if v is None else v)' \
        "$2/kiln-manifest.json" "$1" "$3"
}

bench_kiln() {
    local name=$1 kind=$2 full_src nocomp_src out ms ms_full size
    local full_out=$WORK/kiln-out/full/$1 nocomp_out=$WORK/kiln-out/nocomp/$1 log=$WORK/logs/kiln-$1.log
    full_src=$(kiln_source_dir "$name" full)
    nocomp_src=$(kiln_source_dir "$name" nocomp)
    rm -rf "$full_out" "$nocomp_out"
    if ! "$KILN" build "$full_src" -o "$full_out" --quiet 2>"$log" ||
        ! "$KILN" build "$nocomp_src" -o "$nocomp_out" --quiet 2>>"$log"; then
        log "kiln FAILED on $name (see $log)"
        record "$kind" "$name" kiln - - - - - "kiln failed"
        FAILED=1
        return
    fi
    [[ -s $log ]] && log "kiln diagnostics on $name: $(wc -l <"$log") lines in $log"
    out=$full_out/$(manifest_field "$name" "$full_out" output)
    cmp -s "$out" "$nocomp_out/$(manifest_field "$name" "$nocomp_out" output)" ||
        log "warning: kiln output of $name differs with precompression off"
    mkdir -p "$WORK/out/kiln"
    cp "$out" "$WORK/out/kiln/$name"
    ms=$(time_ms "kiln-$name" "$(printf '%q ' "$KILN" build "$nocomp_src" -o "$nocomp_out" --quiet) 2>/dev/null" \
        --prepare "rm -rf $(printf %q "$nocomp_out")")
    ms_full=$(time_ms "kiln-full-$name" "$(printf '%q ' "$KILN" build "$full_src" -o "$full_out" --quiet) 2>/dev/null" \
        --prepare "rm -rf $(printf %q "$full_out")")
    read -ra size <<<"$(sizes "$out")"
    record "$kind" "$name" kiln "${size[@]}" "$ms" "$ms_full" \
        "manifest gzip=$(manifest_field "$name" "$full_out" gzip) brotli=$(manifest_field "$name" "$full_out" brotli)"
}

bench_peer() {
    local tool=$1 name=$2 kind=$3 in=$SRC/$2 out=$WORK/out/$1/$2 log=$WORK/logs/$1-$2.log cmd ms size
    mkdir -p "$WORK/out/$tool"
    rm -f "$out"
    cmd=$(peer_cmd "$tool" "$in" "$out")
    if ! bash -c "$cmd" 2>"$log" || [[ ! -s $out ]]; then
        log "$tool FAILED on $name: $(head -c 300 "$log")"
        record "$kind" "$name" "$tool" - - - - - "failed: $(head -n1 "$log" | tr '\t' ' ' | cut -c1-120)"
        return
    fi
    ms=$(time_ms "$tool-$name" "$cmd")
    read -ra size <<<"$(sizes "$out")"
    record "$kind" "$name" "$tool" "${size[@]}" "$ms" - ""
}

# node --check every minified JS file (three through a .mjs copy); the note goes in the TSV.
check_js() {
    local tool name file check=$WORK/check
    mkdir -p "$check"
    for tool in kiln terser esbuild; do
        for name in "${INPUTS[@]}"; do
            [[ $(kind_of "$name") == js ]] || continue
            file=$WORK/out/$tool/$name
            [[ -s $file ]] || continue
            if is_module "$name"; then
                cp "$file" "$check/$tool-${name%.js}.mjs"
                file=$check/$tool-${name%.js}.mjs
            fi
            if node --check "$file" 2>"$WORK/logs/check-$tool-$name.log"; then
                echo "$tool $name ok"
            else
                log "node --check FAILED: $tool $name"
                echo "$tool $name FAILED"
                FAILED=1
            fi
        done
    done >"$WORK/checks.txt"
}

# ---------------------------------------------------------------- report

load_average() { cut -d' ' -f1-3 /proc/loadavg; }

versions() {
    echo "kiln: $("$KILN" --version)"
    echo "node: $(node --version), npm packages: ${PEERS[*]}"
    echo "inputs: ${CORPUS_PACKAGES[*]}, $DOC_PKG $(dpkg-query -W -f='${Version}' "$DOC_PKG" 2>/dev/null || echo '?')"
    echo "compressors: $(gzip --version | sed -n 1p), $(brotli --version); $(hyperfine --version)"
    echo "machine: $(nproc) cores; load average $LOAD_START at the start, $(load_average) at the end" \
        "(timings are only comparable on an otherwise idle machine)"
}

render_report() {
    python3 - "$TSV" "$WORK/checks.txt" "$RUNS" <<'EOF'
import sys
from collections import defaultdict

tsv, checks_path, runs = sys.argv[1:4]
rows = [line.rstrip("\n").split("\t") for line in open(tsv) if line.strip()]
KINDS = [("js", "JavaScript"), ("css", "CSS"), ("html", "HTML")]

def num(v):
    return None if v == "-" else float(v)

def fmt_int(v):
    return "–" if v is None else f"{int(v):,}"

def fmt_ms(v):
    return "–" if v is None else f"{v:,.1f}"

def ratio(a, b):
    return "–" if a is None or b is None or b == 0 else f"{a / b:.3f}"

print(f"Sizes in bytes; gzip = `gzip -9`, brotli = `brotli -q 11`, both applied by this script "
      f"to every tool's output. Time = mean wall time of {runs} hyperfine runs after 1 warm-up, "
      "process start-up included; kiln's is a build of a directory holding only that file, "
      "precompression off. Ratios are kiln / peer: below 1 means kiln is smaller or faster.\n")
for kind, title in KINDS:
    krows = [r for r in rows if r[0] == kind]
    if not krows:
        continue
    print(f"### {title}\n")
    print("| file | tool | raw | gzip | brotli | time (ms) | brotli kiln/peer | time kiln/peer |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    totals = defaultdict(lambda: [0, 0, 0, 0.0, 0, False])  # raw gz br ms files failed
    files = list(dict.fromkeys(r[1] for r in krows))
    for f in files:
        frows = [r for r in krows if r[1] == f]
        kiln = next((r for r in frows if r[2] == "kiln"), None)
        kbr, kms = (num(kiln[5]), num(kiln[6])) if kiln else (None, None)
        for i, (_, _, tool, raw, gz, br, ms, _full, note) in enumerate(frows):
            raw, gz, br, ms = num(raw), num(gz), num(br), num(ms)
            peer = tool not in ("kiln", "input")
            label = tool if tool != "input" else "*input*"
            if note.startswith("failed"):
                label += f" ({note})"
            print(f"| {f if i == 0 else ''} | {label} | {fmt_int(raw)} | {fmt_int(gz)} | {fmt_int(br)} "
                  f"| {fmt_ms(ms)} | {ratio(kbr, br) if peer else '–'} | {ratio(kms, ms) if peer else '–'} |")
            t = totals[tool]
            if raw is None:
                t[5] = True
            else:
                t[0] += raw; t[1] += gz; t[2] += br; t[3] += ms or 0; t[4] += 1
    print()
    print(f"**{title} totals**\n")
    print("| tool | files | raw | gzip | brotli | time (ms) | brotli kiln/peer | time kiln/peer |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    k = totals.get("kiln")
    for tool, (raw, gz, br, ms, n, failed) in totals.items():
        peer = tool not in ("kiln", "input")
        comparable = peer and k and not failed and not k[5]
        label = (tool if tool != "input" else "*input*") + (" (incomplete)" if failed else "")
        print(f"| {label} | {n} | {fmt_int(raw)} | {fmt_int(gz)} | {fmt_int(br)} "
              f"| {fmt_ms(ms) if tool != 'input' else '–'} | {ratio(k[2], br) if comparable else '–'} "
              f"| {ratio(k[3], ms) if comparable else '–'} |")
    print()

print("### kiln with and without precompression\n")
print("kiln's default build also writes the `.gz` and `.br` variants (its own gzip and brotli q11); "
      "the peers write only the minified file.\n")
print("| file | time, precompression off (ms) | time, default build (ms) | kiln's .gz | kiln's .br |")
print("| --- | ---: | ---: | ---: | ---: |")
for r in rows:
    if r[2] == "kiln" and r[6] != "-":
        m = dict(p.split("=") for p in r[8].replace("manifest ", "").split())
        print(f"| {r[1]} | {fmt_ms(num(r[6]))} | {fmt_ms(num(r[7]))} | {fmt_int(num(m['gzip']))} "
              f"| {fmt_int(num(m['brotli']))} |")
print()
checks = [l.split() for l in open(checks_path) if l.strip()]
bad = [f"{t} {n}" for t, n, s in checks if s != "ok"]
print(f"`node --check` on the minified JS: {len(checks) - len(bad)}/{len(checks)} pass"
      + (f"; FAILED: {', '.join(bad)}" if bad else "") + ".")
EOF
}

# ---------------------------------------------------------------- main

main() {
    local name kind tool size
    ensure_pkg hyperfine
    ensure_pkg brotli
    ensure_pkg gzip
    command -v node >/dev/null || die "node is needed (apt-get install nodejs npm)"
    find_kiln
    install_npm_packages
    find_html_page
    assemble_inputs
    mkdir -p "$WORK/logs"
    write_minify_html_runner
    : >"$TSV"
    LOAD_START=$(load_average)

    for name in "${INPUTS[@]}"; do
        kind=$(kind_of "$name")
        read -ra size <<<"$(sizes "$SRC/$name")"
        record "$kind" "$name" input "${size[@]}" - - ""
        for tool in $(tools_for "$kind"); do
            log "$name: $tool"
            if [[ $tool == kiln ]]; then
                bench_kiln "$name" "$kind"
            else
                bench_peer "$tool" "$name" "$kind"
            fi
        done
    done
    check_js

    {
        echo "## Minification: kiln vs peers"
        echo
        versions | sed 's/^/- /'
        echo
        render_report
    } >"$RESULTS"
    cat "$RESULTS"
    log "results in $RESULTS, outputs in $WORK/out"
    return "$FAILED"
}

# Sourcing the script (for testing its functions) does not run it.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    main "$@"
fi
