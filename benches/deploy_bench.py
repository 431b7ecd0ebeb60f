#!/usr/bin/env python3
"""Helper for benches/deploy.sh (standard library only).

    deploy_bench.py proxy --upstream URL            tests/s3/proxy.py, also counting the bytes
                                                    it forwards upstream (see below)
    deploy_bench.py create-buckets --endpoint URL NAME...
    deploy_bench.py edit --src DIR --count N        add a <p> before </body> in N pages of library/
    deploy_bench.py run --tool T --step S --proxy URL --out DIR --logs DIR --results FILE -- CMD...
    deploy_bench.py table --results FILE [--note TEXT]...

`proxy` runs tests/s3/proxy.py unchanged, with two counters added to its stats JSON:
request_bytes (everything sent upstream: request heads and bodies) and request_body_bytes
(the bodies alone, as framed on the wire: aws-chunked or chunked framing included).

`run` resets the proxy's counters, runs CMD once under time.perf_counter, then reads the
proxy's stats and the tool's own output (which objects it uploaded) and appends one JSON
record to FILE.
"""

import argparse
import http.client
import json
import os
import subprocess
import sys
import time
import urllib.parse

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
S3_DIR = os.path.join(REPO, "tests", "s3")
STEPS = {"full": "full", "noop": "no-op", "change": "10 pages changed"}
TOOLS = {"kiln": "kiln deploy", "aws": "aws s3 sync", "rclone": "rclone sync --checksum"}


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def die(msg):
    log(f"error: {msg}")
    sys.exit(1)


# ------------------------------------------------------------------------------------------
# proxy: tests/s3/proxy.py plus byte counters
# ------------------------------------------------------------------------------------------

def cmd_proxy(argv):
    sys.path.insert(0, S3_DIR)
    import proxy as p  # tests/s3/proxy.py

    orig_zero = p.State._zero
    orig_snapshot = p.State.snapshot_locked
    orig_up_send = p.Connection.up_send
    orig_copy_body = p.copy_body

    def _zero(self):
        orig_zero(self)
        self.request_bytes = 0
        self.request_body_bytes = 0

    def snapshot_locked(self):
        snap = orig_snapshot(self)
        snap["request_bytes"] = self.request_bytes
        snap["request_body_bytes"] = self.request_body_bytes
        return snap

    def up_send(self, data):
        orig_up_send(self, data)
        with self.state.lock:
            self.state.request_bytes += len(data)

    def copy_body(rfile, write, framing, length, src_exc):
        # A request body goes client -> upstream through Connection.up_send; responses and
        # discarded bodies are written elsewhere.
        if getattr(write, "__func__", None) is up_send:
            state = write.__self__.state

            def counting(data):
                write(data)
                with state.lock:
                    state.request_body_bytes += len(data)

            return orig_copy_body(rfile, counting, framing, length, src_exc)
        return orig_copy_body(rfile, write, framing, length, src_exc)

    p.State._zero = _zero
    p.State.snapshot_locked = snapshot_locked
    p.Connection.up_send = up_send
    p.copy_body = copy_body
    return p.main(argv)


def control(endpoint, method, path):
    u = urllib.parse.urlsplit(endpoint)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.request(method, path, body=b"" if method == "POST" else None)
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            die(f"proxy {endpoint}: {method} {path} -> {resp.status}")
        return json.loads(data)
    finally:
        conn.close()


# ------------------------------------------------------------------------------------------
# buckets and edits
# ------------------------------------------------------------------------------------------

def cmd_create_buckets(args):
    sys.path.insert(0, S3_DIR)
    from server import request  # tests/s3/server.py: stdlib SigV4

    for name in args.names:
        status, _, body = request(args.endpoint, "PUT", f"/{name}", timeout=30.0)
        if status != 200:
            die(f"CreateBucket {name}: HTTP {status}: {body[:300]!r}")
        status, _, body = request(args.endpoint, "GET", f"/{name}", query={"list-type": "2"})
        if status != 200 or b"<Key>" in body:
            die(f"bucket {name} is not new and empty: HTTP {status}")
    log(f"created buckets {', '.join(args.names)}")


def cmd_edit(args):
    lib = os.path.join(args.src, "library")
    pages = sorted(f for f in os.listdir(lib) if f.endswith(".html"))
    if len(pages) < args.count:
        die(f"only {len(pages)} pages in {lib}")
    stride = len(pages) // args.count  # spread over the alphabet
    chosen = [pages[i * stride] for i in range(args.count)]
    mark = f'<p class="kiln-bench-edit">deploy bench edit {time.time_ns()}</p>\n'
    for name in chosen:
        path = os.path.join(lib, name)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        i = text.rfind("</body>")
        if i < 0:
            die(f"no </body> in {path}")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text[:i] + mark + text[i:])
    print(" ".join("library/" + n for n in chosen))


# ------------------------------------------------------------------------------------------
# run: one timed deploy
# ------------------------------------------------------------------------------------------

def uploaded_keys(tool, stdout_path, stderr_path, aux_log):
    """(keys the tool says it uploaded, tool summary dict or None)."""
    if tool == "kiln":
        with open(stdout_path) as f:
            summary = json.load(f)
        keys = summary["plan"]["uploads"] + summary["plan"]["updates"]
        return keys, summary
    if tool == "aws":
        # "upload: /abs/out/dir/file.html to s3://bucket/dir/file.html"
        keys = []
        with open(stdout_path, errors="replace") as f:
            for line in f:
                if line.startswith("upload: ") and " to s3://" in line:
                    url = line.rstrip("\n").rsplit(" to ", 1)[1]
                    keys.append(url[len("s3://"):].split("/", 1)[1])
        return keys, None
    if tool == "rclone":
        # --use-json-log: {"level":"info","msg":"Copied (new)","object":"about.html",...}
        keys = []
        with open(aux_log, errors="replace") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if str(rec.get("msg", "")).startswith("Copied (") and rec.get("object"):
                    keys.append(rec["object"])
        return keys, None
    raise ValueError(tool)


def cmd_run(args):
    if not args.cmd or args.cmd[0] != "--":
        die("run: the command goes after --")
    cmd = args.cmd[1:]
    name = f"{args.tool}-{args.step}"
    os.makedirs(args.logs, exist_ok=True)
    stdout_path = os.path.join(args.logs, name + ".stdout")
    stderr_path = os.path.join(args.logs, name + ".stderr")
    aux_log = os.path.join(args.logs, name + ".log")  # the tool's own log file, if any
    if os.path.exists(aux_log):
        os.remove(aux_log)
    env = dict(os.environ, BENCH_TOOL_LOG=aux_log)
    cmd = [c.replace("{LOG}", aux_log) for c in cmd]

    control(args.proxy, "POST", "/__proxy/reset")
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        t0 = time.perf_counter()
        rc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env).returncode
        wall = time.perf_counter() - t0
    stats = control(args.proxy, "GET", "/__proxy/stats")
    if rc != 0:
        with open(stderr_path, errors="replace") as f:
            tail = f.read()[-3000:]
        die(f"{TOOLS[args.tool]} ({STEPS[args.step]}) exited {rc}; stderr tail:\n{tail}")

    keys, summary = uploaded_keys(args.tool, stdout_path, stderr_path, aux_log)
    payload = 0
    for key in keys:
        path = os.path.join(args.out, key)
        if os.path.isfile(path):
            payload += os.path.getsize(path)
    record = {
        "tool": args.tool,
        "step": args.step,
        "wall_s": wall,
        "requests": stats["total"],
        "puts": stats["by_method"].get("PUT", 0),
        "by_operation": stats["by_operation"],
        "by_status": stats["by_status"],
        "by_feature": stats["by_feature"],
        "connections": stats["connections"],
        "request_bytes": stats["request_bytes"],
        "request_body_bytes": stats["request_body_bytes"],
        "uploaded_objects": len(keys),
        "payload_bytes": payload,
    }
    if summary is not None:
        record["kiln"] = {k: summary[k] for k in (
            "uploaded", "updated", "unchanged", "deleted", "uploaded_bytes", "updated_bytes",
            "requests", "duration_ms")}
        record["payload_bytes"] = summary["uploaded_bytes"] + summary["updated_bytes"]
    errors = {s: n for s, n in stats["by_status"].items() if not s.startswith("2")}
    with open(args.results, "a") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")
    extra = ""
    if summary is not None:
        extra = (f"; kiln says: {summary['uploaded']} uploaded, {summary['updated']} updated, "
                 f"{summary['unchanged']} unchanged, {summary['requests']} requests, "
                 f"{summary['duration_ms']} ms")
    log(f"{TOOLS[args.tool]} / {STEPS[args.step]}: {wall:.2f} s, {stats['total']} requests "
        f"({record['puts']} PUT), {len(keys)} objects uploaded, "
        f"{human_bytes(stats['request_body_bytes'])} of request bodies"
        + (f", non-2xx statuses {errors}" if errors else "") + extra)


# ------------------------------------------------------------------------------------------
# table
# ------------------------------------------------------------------------------------------

def human_bytes(n):
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def cmd_table(args):
    with open(args.results) as f:
        records = [json.loads(line) for line in f if line.strip()]
    runs = {(r["tool"], r["step"]): r for r in records}
    lines = [
        "| tool | step | wall time | × kiln | requests | PUTs | objects uploaded "
        "| bytes sent (request bodies) | file bytes uploaded |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for step in STEPS:
        base = runs.get(("kiln", step))
        for tool in TOOLS:
            r = runs.get((tool, step))
            if r is None:
                continue
            ratio = f"{r['wall_s'] / base['wall_s']:.2f}" if base and base["wall_s"] > 0 else "–"
            lines.append(
                f"| {TOOLS[tool]} | {STEPS[step]} | {r['wall_s']:.2f} s | {ratio} | {r['requests']} "
                f"| {r['puts']} | {r['uploaded_objects']} | {human_bytes(r['request_body_bytes'])} "
                f"| {human_bytes(r['payload_bytes'])} |")
    lines.append("")

    # kiln's own view, and the targets.
    own = []
    for step in STEPS:
        r = runs.get(("kiln", step))
        if r and "kiln" in r:
            k = r["kiln"]
            own.append(f"{STEPS[step]}: {k['requests']} requests (proxy: {r['requests']}), "
                       f"{k['uploaded']} uploaded + {k['updated']} updated, {k['unchanged']} "
                       f"unchanged, {k['duration_ms']} ms")
    if own:
        lines.append("kiln's own summary (`--json`): " + "; ".join(own) + ".")
        lines.append("")
    checks = []
    noop = runs.get(("kiln", "noop"))
    if noop:
        ok = noop["puts"] == 0 and noop["uploaded_objects"] == 0 and noop["requests"] <= 5
        checks.append(f"- no-op deploy: 0 uploads and ≤ 5 requests: **{'met' if ok else 'MISSED'}** "
                      f"({noop['uploaded_objects']} uploads, {noop['puts']} PUTs, "
                      f"{noop['requests']} requests)")
    full, aws_full = runs.get(("kiln", "full")), runs.get(("aws", "full"))
    if full and aws_full:
        ok = full["wall_s"] <= aws_full["wall_s"]
        checks.append(f"- full deploy no slower than `aws s3 sync`: **{'met' if ok else 'MISSED'}** "
                      f"(kiln {full['wall_s']:.2f} s, aws {aws_full['wall_s']:.2f} s)")
    if checks:
        lines.append("Targets (issue):")
        lines.extend(checks)
        lines.append("")

    lines.append("Requests by S3 operation (counted at each tool's proxy):")
    lines.append("")
    for step in STEPS:
        for tool in TOOLS:
            r = runs.get((tool, step))
            if r is None:
                continue
            ops = ", ".join(f"{op} {n}" for op, n in sorted(r["by_operation"].items(),
                                                           key=lambda kv: -kv[1]))
            bad = {s: n for s, n in r["by_status"].items() if not s.startswith("2")}
            feats = ", ".join(f"{f} {n}" for f, n in sorted(r["by_feature"].items()))
            lines.append(f"- {TOOLS[tool]} / {STEPS[step]}: {ops or 'none'}"
                         + (f"; non-2xx: {bad}" if bad else "")
                         + (f"; request features: {feats}" if feats else "")
                         + f"; {r['connections']} connections")
    lines.append("")
    for note in args.note or []:
        lines.append(note)
    print("\n".join(lines).rstrip() + "\n")


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "proxy":
        sys.exit(cmd_proxy(sys.argv[2:]))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd_name", required=True)
    sub.add_parser("proxy", help="tests/s3/proxy.py with byte counters (its own options)")
    p = sub.add_parser("create-buckets")
    p.add_argument("--endpoint", required=True)
    p.add_argument("names", nargs="+")
    p = sub.add_parser("edit")
    p.add_argument("--src", required=True)
    p.add_argument("--count", type=int, default=10)
    p = sub.add_parser("run")
    p.add_argument("--tool", required=True, choices=list(TOOLS))
    p.add_argument("--step", required=True, choices=list(STEPS))
    p.add_argument("--proxy", required=True)
    p.add_argument("--out", required=True, help="the build directory being deployed")
    p.add_argument("--logs", required=True)
    p.add_argument("--results", required=True)
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    p = sub.add_parser("table")
    p.add_argument("--results", required=True)
    p.add_argument("--note", action="append")
    args = ap.parse_args()
    {"create-buckets": cmd_create_buckets, "edit": cmd_edit, "run": cmd_run,
     "table": cmd_table}[args.cmd_name](args)


if __name__ == "__main__":
    main()
