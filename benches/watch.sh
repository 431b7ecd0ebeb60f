#!/usr/bin/env bash
# Watch latency: time from a file save to the live-reload event an open page
# receives from `kiln watch --serve`, for a CSS edit (stylesheet swap) and a
# JS edit (page reload), on the fixture site and on the Python 3.11 docs.
#
# Each edit is saved once kiln has been idle (no CPU time) for 0.3 s: the deferred
# gzip/brotli variants of the previous rebuild are done.
#
# Usage: benches/watch.sh [ROUNDS]          (default 15 edits of each kind per corpus)
# Env:   KILN              kiln binary (default: ${CARGO_TARGET_DIR:-target}/release/kiln)
#        KILN_WATCH_ARGS   extra `kiln watch` arguments, e.g. "--hash none"
#        KILN_WATCH_BURST  set: save each edit as soon as the previous event arrived
#        KILN_WATCH_PERF   css or js: record a `perf` profile (call graphs) of kiln between each
#                          save of that kind and its event only, one file per corpus:
#                          $CACHE/results/perf-<corpus>-<kind>.data (`perf report -i FILE`)
#        KILN_BENCH_CACHE  corpus and results (default: ~/.cache/kiln-bench; the Python
#                          docs tree is assembled by benches/build.sh, run it first)
# Prints a Markdown table (also written to $CACHE/results/watch.md).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${KILN_BENCH_CACHE:-$HOME/.cache/kiln-bench}
RESULTS=$CACHE/results
ROUNDS=${1:-15}

log() { echo "bench: $*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=benches/lib.sh
source "$REPO/benches/lib.sh"

# measure NAME SRC CSS JS: copy SRC to a scratch tree, watch it, edit CSS and JS
# ROUNDS times each, print one table row per kind.
measure() {
    local name=$1 src=$2 css=$3 js=$4 scratch
    scratch=$(mktemp -d)
    cp -r "$src" "$scratch/src"
    log "$name: $(find "$scratch/src" -type f | wc -l) files, first build (cold cache)"
    python3 - "$KILN" "$scratch" "$css" "$js" "$ROUNDS" "$name" "$RESULTS" <<'EOF'
import os, re, select, socket, statistics, subprocess, sys, threading, time

kiln, scratch, css, js, rounds, name, results_dir = sys.argv[1:8]
rounds = int(rounds)
src, out = os.path.join(scratch, "src"), os.path.join(scratch, "out")
proc = subprocess.Popen(
    [kiln, "watch", src, "-o", out, "--cache-dir", os.path.join(scratch, "cache"),
     "--serve", "127.0.0.1:0", *os.environ.get("KILN_WATCH_ARGS", "").split()],
    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
rebuild_ms = []

def line(want):
    while True:
        text = proc.stdout.readline()
        if not text:
            sys.exit(f"kiln watch exited: {proc.wait()}")
        m = re.search(r"rebuilt in (\d+) ms", text)
        if m:
            rebuild_ms.append(int(m.group(1)))
        if want in text:
            return text

addr = re.search(r"http://([^/]+)/", line("serving at")).group(1)
line("watching")
# Keep reading kiln's lines (its own rebuild times) while the edits run.
threading.Thread(target=lambda: line("never printed"), daemon=True).start()
host, port = addr.split(":")
sock = socket.create_connection((host, int(port)))
sock.sendall(f"GET /__kiln/events HTTP/1.1\r\nHost: {addr}\r\n\r\n".encode())
stream = sock.makefile("rb")

def event(want):
    name = None
    while True:
        text = stream.readline().decode().rstrip("\r\n")
        if text.startswith("event: "):
            name = text[7:]
        elif text == "" and name:
            if name == want:
                return time.perf_counter()
            name = None

def drain():
    # Stray events (an editor save seen as two changes) must not be mistaken
    # for the next edit's.
    while select.select([sock], [], [], 0.3)[0]:
        if not sock.recv(65536):
            break

def cpu_ticks():
    fields = open(f"/proc/{proc.pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])

def idle():
    # Each edit is measured from an idle watch, as a developer's next save
    # usually is: after a rebuild, kiln still makes the gzip/brotli variants
    # it deferred (seconds for 530 pages), and an edit that comes meanwhile
    # first waits for the batch in progress. KILN_WATCH_BURST=1 skips this
    # wait (edits back to back).
    if os.environ.get("KILN_WATCH_BURST"):
        return
    last, quiet = cpu_ticks(), 0
    while quiet < 3:
        time.sleep(0.1)
        now = cpu_ticks()
        quiet = quiet + 1 if now == last else 0
        last = now

def profiler():
    # perf starts disabled and is switched on and off through a control fifo.
    kind = os.environ.get("KILN_WATCH_PERF")
    if not kind:
        return None, None
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    ctl, ack = os.path.join(scratch, "perf-ctl"), os.path.join(scratch, "perf-ack")
    os.mkfifo(ctl)
    os.mkfifo(ack)
    data = os.path.join(results_dir, f"perf-{slug}-{kind}.data")
    perf = subprocess.Popen(
        ["perf", "record", "-g", "-F", "4000", "-D", "-1", f"--control=fifo:{ctl},{ack}",
         "-p", str(proc.pid), "-o", data], stderr=subprocess.DEVNULL)
    control, answer = open(ctl, "w"), open(ack)
    def switch(on):
        control.write("enable\n" if on else "disable\n")
        control.flush()
        answer.readline()
    return kind, (perf, switch, data)

event("ready")
profiled, perf = profiler()
results = {"css": [], "js": []}
originals = {path: open(os.path.join(src, path), "rb").read() for path in (css, js)}
for i in range(rounds):
    for kind, path, expect, extra in (
        ("css", css, "css", f"\n.kiln-bench-{i}{{color:#{i:06x}}}\n"),
        ("js", js, "reload", f"\n;window.__kilnBench={i};\n"),
    ):
        drain()
        idle()
        if kind == profiled:
            perf[1](True)
        with open(os.path.join(src, path), "wb") as f:
            f.write(originals[path] + extra.encode())
        saved = time.perf_counter()
        results[kind].append((event(expect) - saved) * 1000)
        if kind == profiled:
            perf[1](False)
if perf:
    perf[0].send_signal(2)
    perf[0].wait()
    print(f"bench: {name}: perf profile of the {profiled} edits: {perf[2]}", file=sys.stderr)
proc.terminate()
proc.wait()

def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]

files = sum(len(f) for _, _, f in os.walk(src))
print(f"bench: {name}: rebuild times reported by kiln: median "
      f"{statistics.median(rebuild_ms):.0f} ms", file=sys.stderr, flush=True)
for kind, path in (("css", css), ("js", js)):
    v = results[kind]
    print(f"| {name} ({files} files) | {kind}: `{path}` | {len(v)} | {pct(v, 50):.0f} ms "
          f"| {pct(v, 90):.0f} ms | {min(v):.0f} ms | {max(v):.0f} ms |")
EOF
    rm -rf "$scratch"
}

main() {
    mkdir -p "$RESULTS"
    find_kiln
    local docs=$CACHE/python-docs
    {
        echo "| corpus | edited file | edits | p50 save → event | p90 | min | max |"
        echo "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
        measure fixtures/site "$REPO/fixtures/site" css/typography.css js/app.js
        if [[ -d $docs ]]; then
            # pydoctheme.css is linked by every page: each edit renames it in all of them.
            measure "Python 3.11 docs" "$docs" _static/pydoctheme.css _static/sidebar.js
        else
            log "no $docs: run benches/build.sh first to include the Python docs"
        fi
    } | tee "$RESULTS/watch.md"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    main "$@"
fi
