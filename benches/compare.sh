#!/usr/bin/env bash
# kiln against the peer composite (benches/peers.sh), on each corpus of benches/corpus.sh:
#   kiln cold       `kiln build SRC -o OUT --json`, empty cache and output
#   kiln warm       the same command again (no-op rebuild); 3 runs, the median (by wall time) kept
#   peer composite  benches/peers.sh SRC OUT: esbuild, lightningcss, html-minifier-terser,
#                   oxipng, jpegtran, then gzip -9 / brotli -q 11, in parallel (xargs -P nproc)
# each under /usr/bin/time -v: wall time, CPU time (user + sys), peak RSS. Then the memory-growth
# check: kiln cold on the doc site copied 10 times (corpus.sh --scale 10) against the doc site.
#
# What is compared:
#   - CPU time is that of the whole process tree (children included).
#   - Peak RSS is /usr/bin/time's maximum resident set size: for kiln, its one process; for the
#     peer composite, the largest single process among all it ran (the RSS of the processes
#     running at the same time is not added up).
#   - Parallel efficiency = CPU / (wall × cores).
#   - Bytes served: what a client asking for each source file receives, summed over the source
#     files: raw = the output file; gzip / brotli = the .gz / .br variant when one is kept, else
#     the raw file. kiln keeps a variant when the file has at least 256 bytes and the variant is
#     at most 95% of it (compress.min_size / min_saving); its --json summary's total.bytes_out,
#     total.gzip and total.brotli are these sums. For the peers they are computed from the files
#     with the same rule. Manifests and kiln's report are not counted; nor is anything else
#     outside the source files' outputs.
#   - The peer composite does not hash names, rewrite references, compute integrity hashes or
#     write manifests (kiln does): it is the minify + compress part of the job only. It
#     recompresses JPEG with jpegtran and leaves JSON, XML and SVG as they are; the report says
#     how many files of these kinds the kiln measured changed.
#
# Usage: benches/compare.sh [--quick] [--no-wait] [--report-only]
#   --quick    the small subsets (corpus.sh --quick) and a ×2 copy for the growth check: seconds
#   --no-wait  do not wait for cargo/rustc to finish (default: wait, polling every 30 s, before
#              each measurement, and measure again, up to 3 times in all, when one was seen
#              during it: a poll every 2 s; --quick never waits). A measurement during which
#              one was seen is flagged in the table.
#   --report-only  write the report again from the last run's measurements and outputs
# Env:   KILN              kiln binary (default: ${CARGO_TARGET_DIR:-target}/release/kiln; never
#                          built here). It is copied once no cargo/rustc runs, before the first
#                          measurement, so a rebuild during the run does not change what is
#                          measured.
#        KILN_BENCH_CACHE  corpora, outputs and results (default: ~/.cache/kiln-bench)
#        KILN_BENCH_WAIT_MAX  seconds to wait for cargo/rustc before giving up (default 3600)
# Results: $CACHE/results/compare.md (the tables, also printed; compare-quick.md with --quick),
#          compare.json (every measurement), compare-logs/ (kiln's --json summaries and
#          diagnostics, the peers' logs, /usr/bin/time reports); compare-quick.* with --quick.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${KILN_BENCH_CACHE:-$HOME/.cache/kiln-bench}
RESULTS=$CACHE/results
WORK=$CACHE/compare
WAIT_MAX=${KILN_BENCH_WAIT_MAX:-3600}
WARM_RUNS=3

log() { echo "compare: $*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=benches/lib.sh
source "$REPO/benches/lib.sh"

# ---------------------------------------------------------------- set-up

# KILN, else the release build; copied to $WORK/kiln.
snapshot_kiln() {
    local bin=${KILN:-${CARGO_TARGET_DIR:-$REPO/target}/release/kiln}
    [[ -x $bin ]] || die "no kiln binary at $bin: build it (cargo build --release) or set KILN"
    KILN_ORIGIN=$(realpath "$bin")
    mkdir -p "$WORK"
    cp "$KILN_ORIGIN" "$WORK/kiln.tmp"
    mv "$WORK/kiln.tmp" "$WORK/kiln"
    KILN=$WORK/kiln
    KILN_DESC="$("$KILN" --version), $KILN_ORIGIN, built $(date -r "$KILN_ORIGIN" '+%Y-%m-%d %H:%M'), sha256 $(sha256sum "$KILN" | cut -c1-12)"
}

compilers() { { pgrep -a -x cargo; pgrep -a rustc; } 2>/dev/null | cut -c1-120 || true; }

# Before a measurement: wait while cargo or rustc runs (unless NO_WAIT).
wait_idle() {
    local busy waited=0
    busy=$(compilers)
    [[ -z $busy ]] && return
    if [[ $NO_WAIT == yes ]]; then
        log "warning: cargo/rustc running, measuring anyway (the run will be flagged): $(head -n1 <<<"$busy")"
        return
    fi
    log "cargo/rustc running: waiting until it ends (polling every 30 s): $(head -n1 <<<"$busy")"
    while [[ -n $(compilers) ]]; do
        ((waited < WAIT_MAX)) || die "cargo/rustc still running after ${WAIT_MAX}s: giving up"
        sleep 30
        waited=$((waited + 30))
    done
    log "idle after ${waited}s"
}

# ---------------------------------------------------------------- measuring

# A watcher polls for cargo/rustc every 2 s while a measurement runs.
watch_start() {
    rm -f "$WORK/disturbed"
    (
        while :; do
            [[ -z $(compilers) ]] || : >"$WORK/disturbed"
            sleep 2
        done
    ) &
    WATCHER=$!
}

# Stops the watcher; true when it saw a compiler.
watch_stop() {
    kill "$WATCHER" 2>/dev/null || true
    wait "$WATCHER" 2>/dev/null || true
    [[ -e $WORK/disturbed ]] || return 1
    rm -f "$WORK/disturbed"
}

# measure CORPUS RUN SRC OUT SUMMARY LOG PREPARE -- COMMAND...: COMMAND under /usr/bin/time -v,
# stdout to SUMMARY (unless -), stderr to LOG, after `eval PREPARE`. A run during which
# cargo/rustc was seen is made again (up to MAX_ATTEMPTS in all, unless NO_WAIT); one line of
# $RECORDS: CORPUS RUN SRC OUT TIME_REPORT SUMMARY LOG DISTURBED LOAD_AT_START.
MAX_ATTEMPTS=3
measure() {
    local corpus=$1 run=$2 src=$3 out=$4 summary=$5 logfile=$6 prepare=$7 attempt disturbed load
    local report=$LOGS/$corpus-$run.time stdout=$5 suffix=""
    shift 8
    [[ $stdout != - ]] || stdout=/dev/null
    for ((attempt = 1; ; attempt++)); do
        wait_idle
        eval "$prepare"
        ((attempt == 1)) || suffix=" (attempt $attempt)"
        log "$corpus: $run$suffix"
        load=$(cut -d' ' -f1 /proc/loadavg)
        watch_start
        if ! /usr/bin/time -v -o "$report" "$@" >"$stdout" 2>"$logfile"; then
            watch_stop || true
            tail -n 20 "$logfile" >&2
            die "$corpus: $run failed (see $logfile)"
        fi
        disturbed=no
        watch_stop && disturbed=yes
        if [[ $disturbed == yes && $NO_WAIT == no ]] && ((attempt < MAX_ATTEMPTS)); then
            log "cargo/rustc ran during this measurement: measuring again"
            continue
        fi
        break
    done
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$corpus" "$run" "$src" "$out" "$report" \
        "$summary" "$logfile" "$disturbed" "$load" >>"$RECORDS"
}

# kiln_run CORPUS RUN SRC OUT CACHE_DIR cold|warm: one `kiln build`; cold empties the cache and
# the output first (before every attempt).
kiln_run() {
    local corpus=$1 run=$2 src=$3 out=$4 cache=$5 prepare=:
    local base=$LOGS/$corpus-$run
    [[ $6 == cold ]] && prepare="rm -rf $(printf %q "$out") $(printf %q "$cache")"
    measure "$corpus" "$run" "$src" "$out" "$base.json" "$base.diagnostics" "$prepare" -- \
        "$KILN" build "$src" -o "$out" --cache-dir "$cache" --json --quiet
}

peers_run() {
    local corpus=$1 src=$2 out=$3 base=$LOGS/$1-peers
    measure "$corpus" peers "$src" "$out" - "$base.log" : -- "$REPO/benches/peers.sh" "$src" "$out"
    grep -v '^peers: note:' "$base.log" | sed 's/^/  /' >&2 || true
}

# brotli_run CORPUS SRC PEERS_OUT: `brotli -q 11` alone, again, over the files the composite
# compressed (those it wrote a .br for), xargs -P nproc: the CPU that brotli 11 costs either side.
brotli_run() {
    local corpus=$1 src out=$3 list=$LOGS/$1-brotli.files
    src=$(realpath "$2")
    (cd "$out" && find . -name '*.br' -type f | sed 's/\.br$//' | sort |
        while IFS= read -r f; do
            if [[ -f $f && ! -e $src/$f.br ]]; then printf '%s\n' "$f"; fi
        done) >"$list"
    [[ -s $list ]] || return 0
    # shellcheck disable=SC2016 # expanded by the inner shells
    measure "$corpus" peers-brotli "$src" "$out" - "$LOGS/$corpus-brotli.log" : -- \
        bash -c 'cd "$1" && tr "\n" "\0" <"$2" |
            xargs -0 -P "$(nproc)" -n 16 sh -c '\''for f; do brotli -q 11 -c "$f" >/dev/null; done'\'' sh' \
        sh "$out" "$list"
}

# measure_corpus NAME SRC: kiln cold, kiln warm ×WARM_RUNS, the peer composite, its brotli alone.
measure_corpus() {
    local name=$1 src=$2 out=$WORK/out/$1 cache=$WORK/cache/$1 i
    kiln_run "$name" kiln-cold "$src" "$out" "$cache" cold
    for ((i = 1; i <= WARM_RUNS; i++)); do
        kiln_run "$name" "kiln-warm-$i" "$src" "$out" "$cache" warm
    done
    peers_run "$name" "$src" "$WORK/peers-out/$name"
    brotli_run "$name" "$src" "$WORK/peers-out/$name"
}

# ---------------------------------------------------------------- report

render() {
    python3 - "$RECORDS" "$(nproc)" "$RESULTS_JSON" "$GROWTH_BASE" "$GROWTH_SCALED" "$SCALE" <<'EOF'
import json, os, re, statistics, sys

records_path, cores, json_out, growth_base, growth_scaled, scale = sys.argv[1:7]
cores = int(cores)
MIN_SIZE, MIN_SAVING = 256, 0.05  # kiln's defaults: compress.min_size, compress.min_saving
LABELS = {
    "python-docs": "Python 3.11 docs",
    "npm-site": "npm library dist files",
    "images": "Debian images",
}
def label(c):
    return LABELS.get(c.removeprefix("quick-"), c) + (" (quick)" if c.startswith("quick-") else "")

def parse_time(path):
    t = {}
    for line in open(path):
        key, _, value = line.strip().rpartition(": ")
        if key == "User time (seconds)": t["user"] = float(value)
        elif key == "System time (seconds)": t["sys"] = float(value)
        elif key == "Maximum resident set size (kbytes)": t["rss_mib"] = int(value) / 1024
        elif key.startswith("Elapsed (wall clock) time"):
            wall = 0.0
            for part in value.split(":"):
                wall = wall * 60 + float(part)
            t["wall"] = wall
        elif key == "Exit status": t["exit"] = int(value)
    t["cpu"] = t["user"] + t["sys"]
    t["efficiency"] = t["cpu"] / (t["wall"] * cores) if t["wall"] > 0 else 0.0
    return t

def source_files(src):
    out = []
    for d, _, files in os.walk(src):
        for f in files:
            p = os.path.join(d, f)
            out.append((os.path.relpath(p, src), os.path.getsize(p)))
    return out

def served(raw, variant):
    """Bytes served: the variant when kiln's rule keeps it, else the raw file."""
    if variant is not None and raw >= MIN_SIZE and variant <= raw * (1 - MIN_SAVING):
        return variant
    return raw

def peer_sizes(src, out):
    """Per source path: (raw, gzip served, brotli served) from the peers' output tree."""
    files = source_files(src)
    present = {p for p, _ in files}
    sizes = {}
    for rel, _ in files:
        raw = os.path.getsize(os.path.join(out, rel))
        v = {}
        for ext in ("gz", "br"):
            p = os.path.join(out, f"{rel}.{ext}")
            # A .gz/.br that is itself a source file is not a variant.
            v[ext] = os.path.getsize(p) if f"{rel}.{ext}" not in present and os.path.exists(p) else None
        sizes[rel] = (raw, served(raw, v["gz"]), served(raw, v["br"]))
    return sizes

rows = []
for line in open(records_path):
    corpus, run, src, out, time_path, summary, logp, disturbed, load = line.rstrip("\n").split("\t")
    r = dict(corpus=corpus, run=run, src=src, out=out, disturbed=disturbed == "yes",
             load=float(load), **parse_time(time_path))
    files = source_files(src)
    r["files"], r["bytes_in"] = len(files), sum(s for _, s in files)
    if run == "peers-brotli":
        pass
    elif run == "peers":
        sizes = peer_sizes(src, out)
        r["raw"] = sum(s[0] for s in sizes.values())
        r["gzip"] = sum(s[1] for s in sizes.values())
        r["brotli"] = sum(s[2] for s in sizes.values())
        r["per_file"] = sizes
    else:
        s = json.load(open(summary))
        r["raw"], r["gzip"], r["brotli"] = (s["total"][k] for k in ("bytes_out", "gzip", "brotli"))
        r["kiln_files"], r["cache_hits"], r["cache_misses"] = s["total"]["files"], s["cache_hits"], s["cache_misses"]
        if "work_ms" in s:
            r["work"] = {k: v / 1000 for k, v in s["work_ms"].items()}
    rows.append(r)

def mib(b): return f"{b / 1048576:,.2f}"
def secs(s): return f"{s:,.2f} s" if s >= 1 else f"{s * 1000:,.0f} ms"
def ratio(a, b): return f"{a / b:.3f}" if b else "–"
def flag(r): return " †" if r["disturbed"] else ""

corpora = list(dict.fromkeys(r["corpus"] for r in rows if r["corpus"] != "growth"))
out = []
p = out.append
p("| corpus | run | wall | CPU (user+sys) | parallel efficiency | peak RSS (MiB) | served raw (MiB) | served gzip (MiB) | served brotli (MiB) |")
p("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
summary_rows = {}
for c in corpora:
    cold = next(r for r in rows if r["corpus"] == c and r["run"] == "kiln-cold")
    warms = [r for r in rows if r["corpus"] == c and r["run"].startswith("kiln-warm")]
    warm = sorted(warms, key=lambda r: r["wall"])[len(warms) // 2]
    peer = next(r for r in rows if r["corpus"] == c and r["run"] == "peers")
    summary_rows[c] = dict(cold=cold, warm=warm, peer=peer)
    head = f"{label(c)}: {cold['files']} files, {mib(cold['bytes_in'])} MiB"
    def line(label, r, sizes=True, first=False):
        cells = [head if first else "", label + flag(r), secs(r["wall"]), secs(r["cpu"]),
                 f"{r['efficiency']:.0%}", f"{r['rss_mib']:,.0f}"]
        cells += [mib(r["raw"]), mib(r["gzip"]), mib(r["brotli"])] if sizes else ["–", "–", "–"]
        p("| " + " | ".join(cells) + " |")
    line("kiln cold", cold, first=True)
    line(f"kiln warm (no-op; median of {len(warms)})", warm, sizes=False)
    line("peer composite (RSS: largest process)", peer)
    p("| | **kiln cold ÷ peers** | " + " | ".join([
        ratio(cold["wall"], peer["wall"]), ratio(cold["cpu"], peer["cpu"]), "–",
        ratio(cold["rss_mib"], peer["rss_mib"]), ratio(cold["raw"], peer["raw"]),
        ratio(cold["gzip"], peer["gzip"]), ratio(cold["brotli"], peer["brotli"])]) + " |")
main_table = "\n".join(out)

# Brotli 11 alone: the work neither side can shed without lowering the quality.
out = []
p = out.append
p(f"| corpus | kiln's brotli 11 (wall time of each call, summed) | of kiln's CPU | composite's `brotli -q 11` alone (CPU) | floor: kiln's brotli ÷ {cores} cores | floor ÷ composite wall | kiln cold ÷ composite wall |")
p("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for c in corpora:
    cold, peer = summary_rows[c]["cold"], summary_rows[c]["peer"]
    alone = next((r for r in rows if r["corpus"] == c and r["run"] == "peers-brotli"), None)
    work = cold.get("work")
    if not work or not work["brotli"]:
        continue
    floor = work["brotli"] / cores
    p(f"| {label(c)} | {secs(work['brotli'])} | {work['brotli'] / cold['cpu']:.0%} | "
      + (secs(alone["cpu"]) + flag(alone) if alone else "–")
      + f" | {secs(floor)} | {ratio(floor, peer['wall'])} | {ratio(cold['wall'], peer['wall'])} |")
brotli_table = "\n".join(out) if len(out) > 2 else ""

# Per kind (kiln's classification of each source file), brotli-served bytes.
out = []
p = out.append
p("| corpus | kind | files | input (MiB) | kiln raw (MiB) | peers raw (MiB) | kiln brotli (MiB) | peers brotli (MiB) | brotli kiln ÷ peers |")
p("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
variant_notes = []
for c in corpora:
    cold, peer = summary_rows[c]["cold"], summary_rows[c]["peer"]
    manifest = json.load(open(os.path.join(cold["out"], "kiln-manifest.json")))["files"]
    kinds, only_kiln, only_peer = {}, 0, 0
    for rel, (raw, gz, br) in peer["per_file"].items():
        e = manifest.get(rel)
        if e is None:
            continue
        k = kinds.setdefault(e["kind"], [0, 0, 0, 0, 0, 0])
        k[0] += 1; k[1] += e["bytes_in"]; k[2] += e["bytes_out"]; k[3] += raw
        k[4] += e["brotli"] if e["brotli"] is not None else e["bytes_out"]; k[5] += br
        only_kiln += e["brotli"] is not None and br == raw
        only_peer += e["brotli"] is None and br != raw
    missing = len(peer["per_file"]) - sum(k[0] for k in kinds.values())
    for i, (kind, k) in enumerate(sorted(kinds.items(), key=lambda kv: -kv[1][1])):
        p(f"| {label(c) if i == 0 else ''} | {kind} | {k[0]} | {mib(k[1])} | {mib(k[2])} | {mib(k[3])} | {mib(k[4])} | {mib(k[5])} | {ratio(k[4], k[5])} |")
    variant_notes.append(f"{label(c)}: {only_kiln} files served with a brotli variant by kiln only, {only_peer} by the peers only"
                         + (f"; {missing} source files not in kiln's manifest" if missing else ""))
kind_table = "\n".join(out)

growth_table = ""
base = next((r for r in rows if r["src"] == growth_base and r["run"] == "kiln-cold"), None)
scaled = next((r for r in rows if r["corpus"] == "growth"), None)
if base and scaled:
    out = []
    p = out.append
    p("| tree | files | input (MiB) | wall | CPU (user+sys) | cache hits / misses | peak RSS (MiB) | RSS ÷ ×1 |")
    p("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, r in (("doc site ×1", base), (f"doc site ×{scale} (copies in subfolders)", scaled)):
        p(f"| {label}{flag(r)} | {r['files']} | {mib(r['bytes_in'])} | {secs(r['wall'])} | {secs(r['cpu'])} "
          f"| {r['cache_hits']} / {r['cache_misses']} | {r['rss_mib']:,.0f} | {ratio(r['rss_mib'], base['rss_mib'])} |")
    growth_table = "\n".join(out)

notes = variant_notes[:]
entries = [e for c in corpora
           for e in json.load(open(os.path.join(summary_rows[c]["cold"]["out"], "kiln-manifest.json")))["files"].values()]
changed = []
for kind in ("jpeg", "svg", "json", "xml"):
    of_kind = [e for e in entries if e["kind"] == kind]
    if of_kind:
        changed.append(f"{sum(e['bytes_in'] != e['bytes_out'] for e in of_kind)} of {len(of_kind)} {kind.upper()}")
if changed:
    notes.append("Files the peers leave as they are, or (JPEG) give to jpegtran: kiln changed " + ", ".join(changed) + " files")
kiln_counts = [f"{label(c)}: kiln counted {summary_rows[c]['cold']['kiln_files']} of {summary_rows[c]['cold']['files']} source files"
               for c in corpora if summary_rows[c]["cold"]["kiln_files"] != summary_rows[c]["cold"]["files"]]
notes += kiln_counts
if any(r["disturbed"] for r in rows):
    notes.append("† cargo or rustc ran during this measurement (polled every 2 s; measured again up to "
                 "3 times unless --quick or --no-wait): it may be slowed")
print(json.dumps(dict(main=main_table, kinds=kind_table, brotli=brotli_table, growth=growth_table, notes=notes)))
json.dump([{k: v for k, v in r.items() if k != "per_file"} for r in rows], open(json_out, "w"), indent=1)
EOF
}

write_report() {
    TABLES=$1 KILN_DESC=$KILN_DESC QUICK_TITLE=$QUICK_TITLE SCALE=$SCALE COMMAND=$COMMAND \
        LOAD_START=$LOAD_START LOAD_END=$LOAD_END CORES=$(nproc) \
        MEM_GIB=$(free -g | awk '/^Mem:/ {print $2}') DATE=$DATE \
        PEERS=$(awk 'NR > 1 { printf "; " } { printf "%s", $0 }' "$LOGS/peer-versions.txt") \
        python3 - <<'EOF'
import json, os
e = os.environ
t = json.load(open(e["TABLES"]))
cores = e["CORES"]
print(f"""## kiln against the peer composite{e["QUICK_TITLE"]}

- kiln: {e["KILN_DESC"]}
- peers (benches/peers.sh): {e["PEERS"]}
- machine: {cores} cores, {e["MEM_GIB"]} GiB; load average {e["LOAD_START"]} at the start, {e["LOAD_END"]} at the end
- date: {e["DATE"]}; command: `{e["COMMAND"]}`

One run of each (kiln warm: the median of 3). Wall and CPU time by `/usr/bin/time -v`; CPU =
user + sys of the whole process tree; parallel efficiency = CPU / (wall × {cores} cores). Peak
RSS: kiln's process; for the peer composite, the largest single process it ran (not the sum of
those running at once). Bytes served: summed over the source files, the raw output, or the
.gz / .br variant where kept under kiln's rule (file ≥ 256 B and variant ≤ 95% of it), applied
to both sides; kiln's from its `--json` summary (total.bytes_out / gzip / brotli). The peer
composite only minifies and compresses: no content-hashed names, no reference rewriting, no
manifests; it does not minify JSON, XML or SVG. Page cache warm for both sides.
""")
print(t["main"])
print("\n### Bytes by kind (kiln's classification of each source file)\n")
print(t["kinds"])
if t.get("brotli"):
    print("\n### Brotli 11 alone\n")
    print("kiln's time in brotli (its `--json` summary's `work_ms.brotli`: the wall time of each call,")
    print("summed over threads, so it counts time a thread waited for a core), and the composite's")
    print("`brotli -q 11` run again alone over the files it compressed (`xargs -P` cores). kiln's")
    print("brotli time divided by the cores is the least wall time a build at brotli 11 can take.\n")
    print(t["brotli"])
if t["growth"]:
    scale = e["SCALE"]
    print(f"\n### Memory growth: kiln cold on the doc site and on {scale} copies of it\n")
    print("The copies are byte-identical: within the same cold build, kiln's content-addressed cache")
    print("serves the later copies' transforms and compressions once the first copy's are done.\n")
    print(t["growth"])
if t["notes"]:
    print()
    for n in t["notes"]:
        print(f"- {n}")
EOF
}

# ---------------------------------------------------------------- main

# The run's facts that the report needs, kept so that --report-only can write it again.
save_meta() {
    declare -p KILN_DESC LOAD_START LOAD_END DATE COMMAND SCALE QUICK_TITLE GROWTH_BASE \
        GROWTH_SCALED >"$META"
}

# Tables from $RECORDS and the outputs still on disk, then $RESULTS/$report.md.
report() {
    render >"$WORK/$REPORT-tables.json"
    write_report "$WORK/$REPORT-tables.json" >"$RESULTS/$REPORT.md"
    cp "$RESULTS/$REPORT.md" "$LOGS/"
    cat "$RESULTS/$REPORT.md"
    log "results in $RESULTS/$REPORT.md, measurements in $RESULTS_JSON, logs in $LOGS"
}

main() {
    local quick=no report_only=no
    NO_WAIT=no
    COMMAND="benches/compare.sh${*:+ $*}"
    while (($#)); do
        case $1 in
            --quick) quick=yes ;;
            --no-wait) NO_WAIT=yes ;;
            --report-only) report_only=yes ;;
            -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
            *) die "unknown argument: $1 (usage: $0 [--quick] [--no-wait] [--report-only])" ;;
        esac
        shift
    done
    local corpus_dir=$CACHE/corpus prefix=""
    REPORT=compare
    SCALE=10
    QUICK_TITLE=""
    if [[ $quick == yes ]]; then
        NO_WAIT=yes
        SCALE=2
        prefix=quick-
        REPORT=compare-quick
        QUICK_TITLE=" (quick subsets: testing the script, not a measurement)"
        corpus_dir=$CACHE/corpus/quick
    fi
    LOGS=$RESULTS/$REPORT-logs
    RECORDS=$WORK/$REPORT-records.tsv
    META=$WORK/$REPORT-meta.sh
    RESULTS_JSON=$RESULTS/$REPORT.json
    if [[ $report_only == yes ]]; then
        [[ -s $RECORDS && -f $META ]] || die "no measurements to report ($RECORDS, $META): run it without --report-only first"
        # shellcheck source=/dev/null
        source "$META"
        report
        return
    fi
    mkdir -p "$RESULTS" "$LOGS" "$WORK"
    rm -f "$LOGS"/* "$META"
    : >"$RECORDS"

    ensure_pkg time
    log "assembling the corpora (benches/corpus.sh)"
    local corpus_args=(--scale "$SCALE")
    [[ $quick == yes ]] && corpus_args+=(--quick)
    "$REPO/benches/corpus.sh" "${corpus_args[@]}" >"$LOGS/corpus.md"
    "$REPO/benches/peers.sh" --setup >"$LOGS/peer-versions.txt"

    local docs=$CACHE/python-docs
    [[ $quick == yes ]] && docs=$corpus_dir/python-docs
    GROWTH_BASE=$docs
    GROWTH_SCALED=$corpus_dir/python-docs-x$SCALE
    [[ -d $GROWTH_SCALED ]] || die "corpus.sh made no $GROWTH_SCALED"
    # After any compile under way has finished: the binary it may rewrite is the one measured.
    wait_idle
    snapshot_kiln
    log "kiln: $KILN_DESC"
    LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
    DATE=$(date -u '+%Y-%m-%d %H:%M UTC')

    measure_corpus "${prefix}python-docs" "$docs"
    measure_corpus "${prefix}npm-site" "$corpus_dir/npm-site"
    measure_corpus "${prefix}images" "$corpus_dir/images"
    # Memory growth: one cold build of the ×SCALE tree (its output and cache, 1 GB at ×10, are
    # removed once measured: the report needs only its summary).
    local scaled_out=$WORK/out/docs-x$SCALE scaled_cache=$WORK/cache/docs-x$SCALE
    kiln_run growth "kiln-cold-x$SCALE" "$GROWTH_SCALED" "$scaled_out" "$scaled_cache" cold
    rm -rf "$scaled_out" "$scaled_cache"
    LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
    save_meta
    report
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    main "$@"
fi
