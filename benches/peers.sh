#!/usr/bin/env bash
# The peer composite: the minify + precompress part of `kiln build`, done by best-in-class
# single-purpose CLIs run in parallel over a copy of a tree:
#   JS    esbuild --minify                       (benches/peers/package.json, exact versions)
#   CSS   lightningcss --minify --targets <kiln's default targets>
#   HTML  html-minifier-terser, safe options (collapse whitespace conservatively, remove
#         comments, minify inline CSS/JS), through benches/peers/html-minify.cjs;
#         KILN_PEER_HTML=minify-html uses @minify-html/node with its defaults instead
#   PNG   oxipng -o 2 --strip safe: the oxipng command if installed (or installable with apt),
#         else the oxipng library through pyoxipng (PyPI, pinned in benches/peers/
#         requirements.txt, in $CACHE/peers-venv), else skipped with a note
#   JPEG  jpegtran -copy none -optimize -progressive (libjpeg-turbo-progs); the result is kept
#         only when smaller
#   then  gzip -9 -n -k and brotli -q 11 -k on every text output (HTML, CSS, JS and the other
#         types kiln precompresses: txt, json, xml, svg, ...), except a file whose .gz or .br
#         already exists in the source tree
# The peers do NOT hash names or rewrite references, and write no manifest: this is the
# minify + compress part of the job only.
#
# How it runs: SRC is copied to OUT (cp -r), the files are grouped by tool into batches
# (at most 32 files or 2 MiB each; a larger file is a batch of its own), and the batches,
# largest first, go through `xargs -P $(nproc)`: one process per batch (a file at a time for
# lightningcss, jpegtran and the oxipng command), each batch's text files compressed right after
# they are minified. A file a tool fails on keeps its input bytes (logged; the run goes on).
#
# Usage: benches/peers.sh --setup          install / check the tools (idempotent), print versions
#        benches/peers.sh --versions       print the tools' versions, one per line
#        benches/peers.sh SRC OUT          run the composite (OUT is replaced)
# Env:   KILN_BENCH_CACHE  cache root (default: ~/.cache/kiln-bench); holds the pyoxipng venv
#        KILN_BENCH_JOBS   parallel processes (default: nproc)
#        KILN_PEER_HTML    html-minifier-terser (default) or minify-html
# Needs: Debian/Ubuntu (apt) for gzip, brotli, libjpeg-turbo-progs (installed when missing, as
#        root or with sudo), node >= 18 with npm, python3.
set -euo pipefail

SELF=$(realpath "${BASH_SOURCE[0]}")
REPO=$(cd "$(dirname "$SELF")/.." && pwd)
CACHE=${KILN_BENCH_CACHE:-$HOME/.cache/kiln-bench}
PEERS_DIR=$REPO/benches/peers
NODE_BIN=$PEERS_DIR/node_modules/.bin
VENV=$CACHE/peers-venv
JOBS=${KILN_BENCH_JOBS:-$(nproc)}
HTML_TOOL=${KILN_PEER_HTML:-html-minifier-terser}
# kiln's default CSS targets (src/transform/css.rs), as in benches/minify.sh.
CSS_TARGETS="chrome >= 109, edge >= 109, firefox >= 115, safari >= 15.6, ios_saf >= 15.6, samsung >= 21"
BATCH_FILES=32
BATCH_BYTES=$((2 * 1024 * 1024))
APT_TOOLS=(gzip:gzip brotli:brotli jpegtran:libjpeg-turbo-progs)

log() { echo "peers: $*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=benches/lib.sh
source "$REPO/benches/lib.sh"

# ---------------------------------------------------------------- set-up

# Debian packages through lib.sh's ensure_pkg, which needs root or sudo.
ensure_debian_tool() {
    local cmd=$1 pkg=$2
    command -v "$cmd" >/dev/null && return
    if [[ $(id -u) -ne 0 ]] && ! command -v sudo >/dev/null; then
        die "$cmd is missing; install it as root: apt-get update && apt-get install -y $pkg"
    fi
    ensure_pkg "$pkg"
    command -v "$cmd" >/dev/null || die "$pkg installed but no $cmd command"
}

ensure_npm_tools() {
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        die "node and npm are needed (apt-get install nodejs npm)"
    fi
    local major
    major=$(node -p 'process.versions.node.split(".")[0]')
    ((major >= 18)) || die "node $(node --version) is too old: esbuild 0.28 needs node >= 18"
    if [[ ! -d $PEERS_DIR/node_modules || $PEERS_DIR/node_modules -ot $PEERS_DIR/package-lock.json ]]; then
        log "npm ci in benches/peers"
        (cd "$PEERS_DIR" && npm ci --no-audit --no-fund --loglevel=error >&2)
        touch "$PEERS_DIR/node_modules" # npm ci may keep the directory's old mtime
    fi
}

# The oxipng command; else Debian's package where the archive has one; else pyoxipng in $VENV.
ensure_png_tool() {
    command -v oxipng >/dev/null && return
    if [[ $(id -u) -eq 0 ]] || command -v sudo >/dev/null; then
        apt_update_once
        if [[ $(apt-cache policy oxipng) == *"Candidate: "[0-9]* ]]; then
            ensure_pkg oxipng
            return
        fi
    fi
    local want stamp_file=$VENV/.requirements
    want=$(<"$PEERS_DIR/requirements.txt")
    if [[ -x $VENV/bin/python && -f $stamp_file && $(<"$stamp_file") == "$want" ]]; then
        return
    fi
    log "no oxipng package in this Debian: installing pyoxipng (the oxipng library) in $VENV"
    rm -rf "$VENV"
    if python3 -m venv "$VENV" &&
        "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$PEERS_DIR/requirements.txt" >&2; then
        echo "$want" >"$stamp_file"
    else
        rm -rf "$VENV"
        log "warning: could not install pyoxipng: PNG files will be skipped by the peer composite"
    fi
}

# "oxipng", "pyoxipng" or "none".
png_tool() {
    if command -v oxipng >/dev/null; then
        echo oxipng
    elif [[ -x $VENV/bin/python && -f $VENV/.requirements ]]; then
        echo pyoxipng
    else
        echo none
    fi
}

check_tools() {
    local entry
    for entry in "${APT_TOOLS[@]}"; do
        command -v "${entry%%:*}" >/dev/null || die "${entry%%:*} is missing: run $0 --setup"
    done
    for entry in esbuild lightningcss html-minifier-terser; do
        [[ -x $NODE_BIN/$entry ]] || die "benches/peers/node_modules lacks $entry: run $0 --setup"
    done
    case $HTML_TOOL in
        html-minifier-terser | minify-html) ;;
        *) die "KILN_PEER_HTML must be html-minifier-terser or minify-html, not $HTML_TOOL" ;;
    esac
    command -v python3 >/dev/null || die "python3 is needed"
}

npm_version() { node -p "require('$PEERS_DIR/node_modules/$1/package.json').version"; }

versions() {
    local png
    echo "esbuild $("$NODE_BIN/esbuild" --version)"
    echo "lightningcss-cli $(npm_version lightningcss-cli)"
    if [[ $HTML_TOOL == minify-html ]]; then
        echo "@minify-html/node $(npm_version @minify-html/node) (default options)"
    else
        echo "html-minifier-terser $(npm_version html-minifier-terser) (collapseWhitespace, conservativeCollapse, removeComments, minifyCSS, minifyJS)"
    fi
    png=$(png_tool)
    case $png in
        oxipng) echo "$(oxipng --version | head -n1) (-o 2 --strip safe)" ;;
        pyoxipng) echo "pyoxipng $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("pyoxipng"))') (the oxipng library, level 2, strip safe)" ;;
        none) echo "PNG: no oxipng here, PNG files skipped" ;;
    esac
    echo "jpegtran (libjpeg-turbo $(dpkg-query -W -f='${Version}' libjpeg-turbo-progs 2>/dev/null || echo '?')) -copy none -optimize -progressive"
    echo "$(gzip --version | head -n1) -9 -n, $(brotli --version) -q 11"
    echo "node $(node --version), xargs -P $JOBS"
}

setup() {
    local entry
    for entry in "${APT_TOOLS[@]}"; do
        ensure_debian_tool "${entry%%:*}" "${entry#*:}"
    done
    command -v python3 >/dev/null || die "python3 is needed"
    ensure_npm_tools
    ensure_png_tool
    check_tools
    versions
}

# ---------------------------------------------------------------- planning

# Write the batch lists into $1 (the tree is the current directory): one file per batch,
# named NNNNN-KIND, one "FLAG<TAB>./PATH" line per file, FLAG c when the file is to be
# compressed after. Prints a summary per kind on stderr.
plan_batches() {
    python3 - "$1" "$BATCH_FILES" "$BATCH_BYTES" "$(png_tool)" <<'EOF'
import os, sys
from collections import defaultdict

dest, max_files, max_bytes, png_tool = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
MINIFY = {"js": "js", "mjs": "mjs", "cjs": "cjs", "css": "css", "html": "html", "htm": "html",
          "png": "png", "jpg": "jpeg", "jpeg": "jpeg"}
# Compressed but not minified: the text types kiln precompresses (src/compress.rs).
TEXT = {"txt", "md", "markdown", "csv", "tsv", "xml", "svg", "json", "map", "webmanifest",
        "jsonld", "py", "rst", "atom", "rss", "xhtml", "ttf", "otf", "eot", "ico", "bmp", "wasm"}

paths = []
for d, _, files in os.walk("."):
    for f in files:
        rel = os.path.join(d, f)[2:]
        if "\n" in rel or "\t" in rel:
            sys.exit(f"peers: error: a file name with a newline or tab: {rel!r}")
        paths.append(rel)
present = set(paths)
groups, kept_variant, unhandled = defaultdict(list), 0, 0
for rel in paths:
    ext = rel.rsplit(".", 1)[-1].lower() if "." in os.path.basename(rel) else ""
    kind = MINIFY.get(ext) or ("text" if ext in TEXT else None)
    if kind == "png" and png_tool == "none":
        kind = None
    if kind is None:
        unhandled += 1
        continue
    compress = kind not in ("png", "jpeg")
    if compress and (rel + ".gz" in present or rel + ".br" in present):
        compress = False
        kept_variant += 1
    if kind == "text" and not compress:
        unhandled += 1
        continue
    groups[kind].append((os.path.getsize(rel), rel, compress))

batches = []
for kind, items in groups.items():
    items.sort(key=lambda t: (-t[0], t[1]))
    batch, size = [], 0
    for item in items:
        if batch and (len(batch) >= max_files or size + item[0] > max_bytes):
            batches.append((size, kind, batch))
            batch, size = [], 0
        batch.append(item)
        size += item[0]
    if batch:
        batches.append((size, kind, batch))
batches.sort(key=lambda b: -b[0])
for i, (_, kind, batch) in enumerate(batches):
    with open(os.path.join(dest, f"{i:05d}-{kind}"), "w") as f:
        for _, rel, compress in batch:
            f.write(f"{'c' if compress else '-'}\t./{rel}\n")

summary = ", ".join(
    f"{kind} {len(items)} files/{sum(s for s, _, _ in items) / 1048576:.1f} MiB"
    for kind, items in sorted(groups.items()))
print(f"peers: {len(paths)} files, {len(batches)} batches: {summary}; "
      f"{unhandled} files copied as they are", file=sys.stderr)
if kept_variant:
    print(f"peers: {kept_variant} files not compressed: their .gz/.br is already in the source",
          file=sys.stderr)
EOF
}

# ---------------------------------------------------------------- one batch (run by xargs)

# fail TOOL FILE MESSAGE: one line in this batch's failure log.
fail() {
    printf '%s\t%s\t%s\n' "$1" "$2" "${3//$'\t'/ }" >>"$FAIL_LOG"
}

# fail_from_stdout TOOL: "FILE<TAB>message" lines from a runner become failure lines.
fail_from_stdout() {
    local file message
    while IFS=$'\t' read -r file message; do
        [[ -n $file ]] && fail "$1" "$file" "$message"
    done
}

minify_js() {
    local kind=$1 err=$BATCH_WORK.err f
    shift
    local args=(--minify --allow-overwrite --log-level=error --outdir=. --outbase=.)
    # esbuild names every JS output .js unless told otherwise.
    [[ $kind == js ]] || args+=("--out-extension:.js=.$kind")
    "$NODE_BIN/esbuild" "${args[@]}" "$@" 2>"$err" && return
    # One bad file stops the whole batch: do them one by one.
    for f in "$@"; do
        "$NODE_BIN/esbuild" "${args[@]}" "$f" 2>"$err" ||
            fail esbuild "$f" "$(grep -m1 -v '^\s*$' "$err" || true)"
    done
}

minify_css() {
    local err=$BATCH_WORK.err f
    for f in "$@"; do
        if "$NODE_BIN/lightningcss" --minify --targets "$CSS_TARGETS" "$f" -o "$f.peer-tmp" 2>"$err"; then
            mv "$f.peer-tmp" "$f"
        else
            rm -f "$f.peer-tmp"
            fail lightningcss "$f" "$(head -n1 "$err")"
        fi
    done
}

minify_html() {
    node "$PEERS_DIR/html-minify.cjs" "$HTML_TOOL" "$@" | fail_from_stdout "$HTML_TOOL"
}

optimize_png() {
    local err=$BATCH_WORK.err f
    case $PEER_PNG in
        oxipng)
            for f in "$@"; do
                oxipng -o 2 --strip safe --quiet "$f" 2>"$err" || fail oxipng "$f" "$(head -n1 "$err")"
            done ;;
        pyoxipng)
            "$VENV/bin/python" "$PEERS_DIR/run-oxipng.py" "$@" | fail_from_stdout pyoxipng ;;
    esac
}

optimize_jpeg() {
    local err=$BATCH_WORK.err f
    for f in "$@"; do
        if jpegtran -copy none -optimize -progressive -outfile "$f.peer-tmp" "$f" 2>"$err"; then
            if (($(stat -c %s "$f.peer-tmp") < $(stat -c %s "$f"))); then
                mv "$f.peer-tmp" "$f"
            else
                rm -f "$f.peer-tmp"
            fi
        else
            rm -f "$f.peer-tmp"
            fail jpegtran "$f" "$(head -n1 "$err")"
        fi
    done
}

run_batch() {
    local list=$1 kind flag path files=() compress=()
    kind=${list##*-}
    BATCH_WORK=$PEER_WORK/tmp/$(basename "$list")
    FAIL_LOG=$PEER_WORK/fail/$(basename "$list")
    while IFS=$'\t' read -r flag path; do
        files+=("$path")
        [[ $flag == c ]] && compress+=("$path")
    done <"$list"
    cd "$PEER_OUT"
    case $kind in
        js | mjs | cjs) minify_js "$kind" "${files[@]}" ;;
        css) minify_css "${files[@]}" ;;
        html) minify_html "${files[@]}" ;;
        png) optimize_png "${files[@]}" ;;
        jpeg) optimize_jpeg "${files[@]}" ;;
        text) ;;
        *) die "unknown batch kind $kind" ;;
    esac
    if ((${#compress[@]})); then
        gzip -9 -n -k "${compress[@]}" 2>"$BATCH_WORK.err" || fail gzip "${compress[0]}…" "$(head -n1 "$BATCH_WORK.err")"
        brotli -q 11 -k "${compress[@]}" 2>"$BATCH_WORK.err" || fail brotli "${compress[0]}…" "$(head -n1 "$BATCH_WORK.err")"
    fi
    rm -f "$BATCH_WORK.err"
}

# ---------------------------------------------------------------- the run

run() {
    local src=$1 out=$2 work start t_copy t_plan t_end failures
    [[ -d $src ]] || die "no source directory $src"
    check_tools
    src=$(realpath "$src")
    mkdir -p "$(dirname "$out")"
    out=$(realpath -m "$out")
    case $out/ in "$src"/*) die "OUT must not be inside SRC" ;; esac
    work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-peers.XXXXXX")
    # shellcheck disable=SC2064 # expand now: the path is fixed
    trap "rm -rf '$work'" EXIT
    mkdir -p "$work/batches" "$work/fail" "$work/tmp"

    start=$(date +%s.%N)
    rm -rf "$out"
    cp -r "$src" "$out"
    t_copy=$(date +%s.%N)
    (cd "$out" && plan_batches "$work/batches")
    t_plan=$(date +%s.%N)
    find "$work/batches" -type f -print0 | sort -z |
        PEER_OUT=$out PEER_WORK=$work PEER_PNG=$(png_tool) KILN_PEER_HTML=$HTML_TOOL \
            xargs -0 -n 1 -P "$JOBS" "$SELF" --batch
    t_end=$(date +%s.%N)

    log "$(awk -v a="$start" -v b="$t_copy" -v c="$t_plan" -v d="$t_end" \
        'BEGIN { printf "copy %.2f s, planning %.2f s, tools %.2f s", b - a, c - b, d - c }')"
    find "$work/fail" -type f -exec cat {} + >"$work/failures.tsv"
    failures=$(wc -l <"$work/failures.tsv")
    if ((failures)); then
        log "$failures failures (those files keep their input bytes), by tool:"
        cut -f1 "$work/failures.tsv" | sort | uniq -c | sed 's/^/peers:   /' >&2
        sed -n '1,10p' "$work/failures.tsv" | sed 's/^/peers:   /' >&2
    fi
    [[ $(png_tool) != none ]] || log "note: no oxipng here: PNG files were copied unchanged"
    log "note: the peer composite does not hash names, rewrite references or write manifests:" \
        "it is the minify + compress part of kiln's job only"
}

main() {
    case ${1:-} in
        --setup) setup ;;
        --versions) check_tools; versions ;;
        --batch)
            [[ -n ${PEER_OUT:-} && -n ${PEER_WORK:-} ]] || die "--batch is internal (run by xargs)"
            run_batch "$2" ;;
        -h | --help | "") sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; [[ -n ${1:-} ]] ;;
        *)
            (($# == 2)) || die "usage: $0 SRC OUT | --setup | --versions"
            run "$1" "$2" ;;
    esac
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    main "$@"
fi
