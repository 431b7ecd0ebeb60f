#!/usr/bin/env python3
"""Fault-injecting, request-counting HTTP/1.1 reverse proxy for S3 tests.

Sits between an S3 client (kiln's aws-sdk-s3) and a real S3 server
(SeaweedFS, or moto) on loopback.  Python 3 standard library only.

    python3 tests/s3/proxy.py --upstream http://127.0.0.1:8333 \
        [--fault-rate 0.2] [--faults 500,503,slowdown,drop] [--seed N] \
        [--stats FILE] [--port 0] [--timeout 300] [--verbose]

Once listening it prints exactly one JSON line on stdout,
    {"endpoint":"http://127.0.0.1:PORT","pid":PID}
flushes, and then runs in the foreground until SIGTERM/SIGINT (exit 0).
Nothing else is ever written to stdout; --verbose logs go to stderr.

Forwarding is byte-exact: the request head (request line and every header,
Host included, in their original order and spelling) and the body (framed by
Content-Length or Transfer-Encoding: chunked, chunk-size lines, extensions and
trailers relayed raw) go upstream untouched.  Keeping the Host header is what
keeps SigV4 valid: the client signs "host:127.0.0.1:<proxy port>", and the
upstream server checks the signature against the Host header it receives.
Responses come back the same way (Content-Length, chunked or read-until-close
bodies; none for HEAD, 1xx, 204 and 304).  Interim 1xx responses (100 Continue)
are relayed, and a request with "Expect: 100-continue" is streamed full-duplex
so that both clients that wait for 100 Continue (botocore) and clients that
send the body at once (hyper) work.

Fault injection happens before forwarding, so the upstream never sees a
faulted request.  Kinds: 500 (InternalError), 503 (ServiceUnavailable),
slowdown (503 SlowDown) and drop (the request is read in full, then the TCP
connection is closed without any response).  A request with the header
"x-kiln-test-nofault: 1" is never faulted.

Control endpoints, answered by the proxy itself and never counted:
    GET  /__proxy/stats                 the stats JSON
    POST /__proxy/reset                 zero all counters
    POST /__proxy/faults?rate=0.3       change the fault rate
         (optional: &faults=500,drop  &seed=N)
"""

import argparse
import json
import os
import random
import select
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
from email.utils import formatdate
from urllib.parse import parse_qsl, urlsplit

FAULT_KINDS = ("500", "503", "slowdown", "drop")
MAX_LINE = 65536
MAX_HEADERS = 256
COPY_CHUNK = 65536
CRLF = b"\r\n"


class ClientGone(Exception):
    """The client side closed or broke its connection."""


class UpstreamError(Exception):
    """Talking to the upstream server failed."""


# --------------------------------------------------------------------------
# Stats and fault state
# --------------------------------------------------------------------------


class State:
    def __init__(self, upstream, fault_rate, faults, seed, stats_path):
        self.lock = threading.Lock()
        self.upstream = upstream
        self.fault_rate = fault_rate
        self.faults = list(faults)
        self.seed = seed
        self.rng = random.Random(seed)
        self.stats_path = stats_path
        self.started = time.time()
        self.request_seq = 0
        self._zero()

    def _zero(self):
        self.total = 0
        self.by_method = {}
        self.by_outcome = {}
        self.by_operation = {}
        self.by_operation_outcome = {}
        self.by_status = {}
        self.by_feature = {}
        self.connections = 0

    # -- faults --
    def draw_fault(self):
        """Returns a fault kind or None.  One rng.random() per eligible
        request (plus one choice() when it hits), in arrival order."""
        with self.lock:
            if self.fault_rate <= 0 or not self.faults:
                return None
            if self.rng.random() < self.fault_rate:
                return self.rng.choice(self.faults)
            return None

    def next_request_id(self):
        with self.lock:
            self.request_seq += 1
            return "KILNPROXY%08d" % self.request_seq

    def set_faults(self, rate=None, faults=None, seed=None):
        with self.lock:
            if rate is not None:
                self.fault_rate = rate
            if faults is not None:
                self.faults = list(faults)
            if seed is not None:
                self.seed = seed
                self.rng = random.Random(seed)

    # -- counters --
    def connection_opened(self):
        with self.lock:
            self.connections += 1

    def record(self, method, operation, outcome, status, features=()):
        with self.lock:
            self.total += 1
            for f in features:
                _inc(self.by_feature, f)
            _inc(self.by_method, method)
            _inc(self.by_outcome, outcome)
            _inc(self.by_operation, operation)
            _inc(self.by_operation_outcome.setdefault(operation, {}), outcome)
            if status is not None:
                _inc(self.by_status, str(status))
            self._write_locked()

    def reset(self):
        with self.lock:
            self._zero()
            self._write_locked()

    def snapshot_locked(self):
        faulted = sum(v for k, v in self.by_outcome.items() if k.startswith("fault_"))
        return {
            "total": self.total,
            "forwarded": self.by_outcome.get("forwarded", 0),
            "faulted": faulted,
            "by_method": dict(self.by_method),
            "by_outcome": dict(self.by_outcome),
            "by_operation": dict(self.by_operation),
            "by_operation_outcome": {k: dict(v) for k, v in self.by_operation_outcome.items()},
            "by_status": dict(self.by_status),
            "by_feature": dict(self.by_feature),
            "connections": self.connections,
            "config": {
                "upstream": self.upstream,
                "fault_rate": self.fault_rate,
                "faults": list(self.faults),
                "seed": self.seed,
            },
            "started": self.started,
            "updated": time.time(),
        }

    def snapshot(self):
        with self.lock:
            return self.snapshot_locked()

    def write(self):
        with self.lock:
            self._write_locked()

    def _write_locked(self):
        if not self.stats_path:
            return
        data = json.dumps(self.snapshot_locked(), indent=1, sort_keys=True) + "\n"
        d = os.path.dirname(os.path.abspath(self.stats_path))
        fd, tmp = tempfile.mkstemp(prefix=".proxy-stats-", suffix=".tmp", dir=d)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(data)
            os.replace(tmp, self.stats_path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise


def _inc(d, key):
    d[key] = d.get(key, 0) + 1


# --------------------------------------------------------------------------
# S3 operation classification (best effort, path-style addressing)
# --------------------------------------------------------------------------

_BUCKET_SUBRESOURCES = (
    "accelerate", "acl", "analytics", "cors", "encryption",
    "intelligent-tiering", "inventory", "lifecycle", "location", "logging",
    "metrics", "notification", "object-lock", "ownershipControls", "policy",
    "policyStatus", "publicAccessBlock", "replication", "requestPayment",
    "tagging", "versioning", "website",
)


def _camel(sub):
    return "".join(p[:1].upper() + p[1:] for p in sub.replace("-", " ").split())


def classify(method, target):
    split = urlsplit(target)
    path = split.path or "/"
    q = dict(parse_qsl(split.query, keep_blank_values=True))
    parts = path.lstrip("/").split("/", 1)
    bucket = parts[0]
    key = parts[1] if len(parts) > 1 else ""
    m = method.upper()

    if not bucket:
        return "ListBuckets" if m == "GET" else "Service" + m.capitalize()

    if key:  # object level
        if m == "PUT":
            if "uploadId" in q and "partNumber" in q:
                return "UploadPart"
            if "tagging" in q:
                return "PutObjectTagging"
            if "acl" in q:
                return "PutObjectAcl"
            return "PutObject"  # CopyObject shows up here too (x-amz-copy-source)
        if m == "GET":
            if "uploadId" in q:
                return "ListParts"
            if "tagging" in q:
                return "GetObjectTagging"
            if "acl" in q:
                return "GetObjectAcl"
            return "GetObject"
        if m == "HEAD":
            return "HeadObject"
        if m == "DELETE":
            if "uploadId" in q:
                return "AbortMultipartUpload"
            if "tagging" in q:
                return "DeleteObjectTagging"
            return "DeleteObject"
        if m == "POST":
            if "uploads" in q:
                return "CreateMultipartUpload"
            if "uploadId" in q:
                return "CompleteMultipartUpload"
            return "PostObject"
        return "Object" + m.capitalize()

    # bucket level
    sub = next((s for s in _BUCKET_SUBRESOURCES if s in q), None)
    if m == "GET":
        if q.get("list-type") == "2":
            return "ListObjectsV2"
        if "uploads" in q:
            return "ListMultipartUploads"
        if "versions" in q:
            return "ListObjectVersions"
        if sub == "location":
            return "GetBucketLocation"
        if sub:
            return "GetBucket" + _camel(sub)
        return "ListObjects"
    if m == "PUT":
        return "PutBucket" + _camel(sub) if sub else "CreateBucket"
    if m == "HEAD":
        return "HeadBucket"
    if m == "DELETE":
        return "DeleteBucket" + _camel(sub) if sub else "DeleteBucket"
    if m == "POST":
        return "DeleteObjects" if "delete" in q else "PostBucket"
    return "Bucket" + m.capitalize()


# --------------------------------------------------------------------------
# HTTP/1.1 message plumbing
# --------------------------------------------------------------------------


def read_head(rfile, eof_exc):
    """Reads a start line plus header block.  Returns (raw_bytes, start_line,
    [(name, value)]) or None on a clean EOF before any byte."""
    raw = bytearray()
    first = rfile.readline(MAX_LINE + 1)
    # Tolerate stray empty lines between messages (RFC 7230 3.5).
    while first in (b"\r\n", b"\n"):
        first = rfile.readline(MAX_LINE + 1)
    if not first:
        return None
    if len(first) > MAX_LINE or not first.endswith(b"\n"):
        raise eof_exc("start line too long or truncated")
    raw += first
    headers = []
    while True:
        line = rfile.readline(MAX_LINE + 1)
        if not line:
            raise eof_exc("EOF inside header block")
        if len(line) > MAX_LINE:
            raise eof_exc("header line too long")
        raw += line
        if line in (b"\r\n", b"\n"):
            break
        if len(headers) >= MAX_HEADERS:
            raise eof_exc("too many headers")
        text = line.decode("latin-1")
        if text[:1] in (" ", "\t") and headers:  # obsolete line folding
            n, v = headers[-1]
            headers[-1] = (n, v + " " + text.strip())
            continue
        name, _, value = text.partition(":")
        headers.append((name.strip().lower(), value.strip()))
    return bytes(raw), first.decode("latin-1").rstrip("\r\n"), headers


def header(headers, name):
    """Last value of a header (names already lower-case), or None."""
    val = None
    for n, v in headers:
        if n == name:
            val = v
    return val


def header_tokens(headers, name):
    toks = []
    for n, v in headers:
        if n == name:
            toks += [t.strip().lower() for t in v.split(",") if t.strip()]
    return toks


def body_framing(headers):
    """('chunked', None) | ('length', n) | ('none', None) for a request, or for
    a response that may have a body; ('close', None) is decided by callers."""
    te = header_tokens(headers, "transfer-encoding")
    if te:
        if te[-1] == "chunked":
            return "chunked", None
        return "close", None
    cl = header(headers, "content-length")
    if cl is not None:
        try:
            n = int(cl.split(",")[0].strip())
        except ValueError:
            raise UpstreamError("bad Content-Length %r" % cl)
        return "length", n
    return "none", None


def wants_close(version, headers):
    conn = header_tokens(headers, "connection")
    if "close" in conn:
        return True
    if version.upper() == "HTTP/1.0" and "keep-alive" not in conn:
        return True
    return False


def copy_body(rfile, write, framing, length, src_exc):
    """Copies one message body raw from rfile to write().  Returns bytes copied.
    src_exc is raised when the source ends early."""
    total = 0
    if framing == "length":
        left = length
        while left > 0:
            data = rfile.read(min(COPY_CHUNK, left))
            if not data:
                raise src_exc("EOF with %d body bytes left" % left)
            write(data)
            left -= len(data)
            total += len(data)
    elif framing == "chunked":
        while True:
            line = rfile.readline(MAX_LINE + 1)
            if not line or not line.endswith(b"\n"):
                raise src_exc("EOF in chunk-size line")
            write(line)
            total += len(line)
            size_txt = line.split(b";", 1)[0].strip()
            try:
                size = int(size_txt, 16)
            except ValueError:
                raise src_exc("bad chunk size %r" % size_txt)
            if size == 0:
                # trailer section, ends with an empty line
                while True:
                    t = rfile.readline(MAX_LINE + 1)
                    if not t:
                        raise src_exc("EOF in chunked trailers")
                    write(t)
                    total += len(t)
                    if t in (b"\r\n", b"\n"):
                        return total
            left = size + 2  # chunk data plus its CRLF
            while left > 0:
                data = rfile.read(min(COPY_CHUNK, left))
                if not data:
                    raise src_exc("EOF inside chunk data")
                write(data)
                left -= len(data)
                total += len(data)
    elif framing == "close":
        while True:
            data = rfile.read1(COPY_CHUNK) if hasattr(rfile, "read1") else rfile.read(COPY_CHUNK)
            if not data:
                return total
            write(data)
            total += len(data)
    return total


def discard_body(rfile, framing, length):
    copy_body(rfile, lambda b: None, framing, length, ClientGone)


def s3_error_response(status, reason, code, message, resource, request_id,
                      head_only, close):
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<Error><Code>%s</Code><Message>%s</Message><Resource>%s</Resource>"
        "<RequestId>%s</RequestId></Error>\n"
        % (code, message, _xml_escape(resource), request_id)
    ).encode()
    return _response(status, reason, "application/xml", body, head_only, close,
                     [("x-amz-request-id", request_id)])


def json_response(status, reason, obj, close):
    body = (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode()
    return _response(status, reason, "application/json", body, False, close, [])


def _response(status, reason, ctype, body, head_only, close, extra):
    lines = [
        "HTTP/1.1 %d %s" % (status, reason),
        "Date: %s" % formatdate(usegmt=True),
        "Server: kiln-s3-proxy",
        "Content-Type: %s" % ctype,
        "Content-Length: %d" % (0 if head_only else len(body)),
    ]
    lines += ["%s: %s" % kv for kv in extra]
    lines.append("Connection: %s" % ("close" if close else "keep-alive"))
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + body


def _xml_escape(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


FAULT_RESPONSES = {
    "500": (500, "Internal Server Error", "InternalError",
            "We encountered an internal error. Please try again."),
    "503": (503, "Service Unavailable", "ServiceUnavailable",
            "Service is unable to handle request."),
    "slowdown": (503, "Slow Down", "SlowDown",
                 "Please reduce your request rate."),
}


# --------------------------------------------------------------------------
# Connection handling
# --------------------------------------------------------------------------


class Connection:
    def __init__(self, proxy, sock, addr):
        self.proxy = proxy
        self.state = proxy.state
        self.sock = sock
        self.addr = addr
        self.rfile = sock.makefile("rb", buffering=COPY_CHUNK)
        self.up = None
        self.up_rfile = None
        self.features = ()

    def log(self, msg):
        if self.proxy.verbose:
            sys.stderr.write("proxy[%s:%d] %s\n" % (self.addr[0], self.addr[1], msg))
            sys.stderr.flush()

    def record(self, method, operation, outcome, status):
        self.state.record(method, operation, outcome, status, self.features)

    def send(self, data):
        try:
            self.sock.sendall(data)
        except OSError as e:
            raise ClientGone(str(e))

    # -- upstream socket --
    def close_upstream(self):
        if self.up is not None:
            try:
                self.up_rfile.close()
            except OSError:
                pass
            try:
                self.up.close()
            except OSError:
                pass
        self.up = None
        self.up_rfile = None

    def upstream_usable(self):
        """A pooled upstream connection that is readable while idle has been
        closed by the server (or sent junk): don't reuse it."""
        if self.up is None:
            return False
        try:
            r, _, _ = select.select([self.up], [], [], 0)
        except (OSError, ValueError):
            return False
        return not r

    def connect_upstream(self):
        host, port = self.proxy.upstream_addr
        try:
            s = socket.create_connection((host, port), timeout=self.proxy.timeout)
        except OSError as e:
            raise UpstreamError("connect %s:%d: %s" % (host, port, e))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.up = s
        self.up_rfile = s.makefile("rb", buffering=COPY_CHUNK)

    def up_send(self, data):
        try:
            self.up.sendall(data)
        except OSError as e:
            raise UpstreamError("send: %s" % e)

    # -- main loop --
    def run(self):
        try:
            self.sock.settimeout(self.proxy.timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while self.handle_one():
                pass
        except (ClientGone, socket.timeout, ConnectionError) as e:
            self.log("client connection ended: %s" % e)
        except Exception:
            sys.stderr.write("proxy: unexpected error\n" + traceback.format_exc())
            sys.stderr.flush()
        finally:
            self.close_upstream()
            try:
                self.rfile.close()
            except OSError:
                pass
            try:
                self.sock.close()
            except OSError:
                pass

    def handle_one(self):
        """Handles one request.  Returns True to keep the connection."""
        try:
            head = read_head(self.rfile, ClientGone)
        except OSError as e:
            raise ClientGone(str(e))
        if head is None:
            return False
        raw_head, start, headers = head
        parts = start.split()
        if len(parts) != 3:
            self.send(s3_error_response(400, "Bad Request", "BadRequest",
                                        "Malformed request line", "", "-",
                                        False, True))
            return False
        method, target, version = parts
        try:
            framing, length = body_framing(headers)
        except UpstreamError:
            self.send(s3_error_response(400, "Bad Request", "BadRequest",
                                        "Malformed Content-Length", target, "-",
                                        False, True))
            return False
        if framing == "close":  # a request can't be framed by close
            self.send(s3_error_response(501, "Not Implemented", "NotImplemented",
                                        "Unsupported Transfer-Encoding", target,
                                        "-", False, True))
            return False
        client_close = wants_close(version, headers)
        expect_continue = "100-continue" in header_tokens(headers, "expect")

        if target.startswith("/__proxy/"):
            return self.handle_control(method, target, framing, length,
                                       expect_continue, client_close)

        operation = classify(method, target)
        features = []
        if expect_continue:
            features.append("expect-100-continue")
        if framing == "chunked":
            features.append("transfer-encoding-chunked")
        if "aws-chunked" in header_tokens(headers, "content-encoding"):
            features.append("content-encoding-aws-chunked")
        trailer = header(headers, "x-amz-trailer")
        if trailer:
            features.append("x-amz-trailer:" + trailer.strip().lower())
        self.features = features
        nofault = (header(headers, "x-kiln-test-nofault") or "").strip() == "1"
        fault = None if nofault else self.state.draw_fault()
        if fault is not None:
            return self.inject(fault, method, target, operation, framing,
                               length, expect_continue, client_close)
        return self.forward(method, target, operation, raw_head, framing,
                            length, expect_continue, client_close)

    def read_request_body(self, framing, length, expect_continue):
        if expect_continue and framing != "none" and not (framing == "length" and length == 0):
            self.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        try:
            discard_body(self.rfile, framing, length)
        except OSError as e:
            raise ClientGone(str(e))

    def handle_control(self, method, target, framing, length, expect_continue,
                       client_close):
        self.read_request_body(framing, length, expect_continue)
        split = urlsplit(target)
        q = dict(parse_qsl(split.query, keep_blank_values=True))
        path = split.path.rstrip("/")
        if path == "/__proxy/stats" and method == "GET":
            self.send(json_response(200, "OK", self.state.snapshot(), client_close))
        elif path == "/__proxy/reset" and method == "POST":
            self.state.reset()
            self.send(json_response(200, "OK", self.state.snapshot(), client_close))
        elif path == "/__proxy/faults" and method == "POST":
            try:
                rate = float(q["rate"]) if "rate" in q else None
                if rate is not None and not 0.0 <= rate <= 1.0:
                    raise ValueError("rate must be within [0, 1]")
                faults = parse_faults(q["faults"]) if "faults" in q else None
                seed = int(q["seed"]) if "seed" in q else None
            except (ValueError, argparse.ArgumentTypeError) as e:
                self.send(json_response(400, "Bad Request", {"error": str(e)}, client_close))
                return not client_close
            self.state.set_faults(rate, faults, seed)
            self.state.write()
            self.send(json_response(200, "OK", self.state.snapshot()["config"], client_close))
        else:
            self.send(json_response(404, "Not Found",
                                    {"error": "unknown control endpoint %s %s" % (method, path)},
                                    client_close))
        return not client_close

    def inject(self, fault, method, target, operation, framing, length,
               expect_continue, client_close):
        # Read the whole request first: the client has sent it, the upstream
        # never sees it.
        self.read_request_body(framing, length, expect_continue)
        if fault == "drop":
            self.log("%s %s -> fault drop" % (method, target))
            self.record(method, operation, "fault_drop", None)
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return False
        status, reason, code, message = FAULT_RESPONSES[fault]
        rid = self.state.next_request_id()
        resource = urlsplit(target).path
        self.log("%s %s -> fault %s" % (method, target, fault))
        self.record(method, operation, "fault_" + fault, status)
        self.send(s3_error_response(status, reason, code, message, resource, rid,
                                    method.upper() == "HEAD", client_close))
        return not client_close

    def forward(self, method, target, operation, raw_head, framing, length,
                expect_continue, client_close):
        has_body = framing == "chunked" or (framing == "length" and length > 0)
        head_only = method.upper() == "HEAD"
        resource = urlsplit(target).path
        recorded = []

        def record(status):
            # Called once the final status is known and before any of the
            # final response reaches the client, so a client that has its
            # answer always finds the request already counted.
            if not recorded:
                recorded.append(status)
                self.record(method, operation, "forwarded", status)

        # A request without a body can be replayed if a pooled upstream
        # connection turns out to be dead; one with a body can't (it has been
        # consumed), so it only gets the cheap idle-readability check.
        for attempt in (1, 2):
            reused = self.upstream_usable()
            if not reused:
                self.close_upstream()
                try:
                    self.connect_upstream()
                except UpstreamError as e:
                    return self.upstream_failed(method, target, operation, e,
                                                framing, length, expect_continue)
            try:
                self.up_send(raw_head)
            except UpstreamError as e:
                self.close_upstream()
                if reused and attempt == 1:
                    continue
                return self.upstream_failed(method, target, operation, e,
                                            framing, length, expect_continue)

            pump = None
            pump_err = []
            if has_body and expect_continue:
                # Full duplex: the client may wait for 100 Continue, which
                # only the upstream can send, or may stream the body at once.
                def run_pump():
                    try:
                        copy_body(self.rfile, self.up_send, framing, length, ClientGone)
                    except BaseException as e:  # reported through pump_err
                        pump_err.append(e)
                pump = threading.Thread(target=run_pump, daemon=True)
                pump.start()
            elif has_body:
                try:
                    copy_body(self.rfile, self.up_send, framing, length, ClientGone)
                except UpstreamError as e:
                    # The client body may be partly unread: close both sides.
                    self.close_upstream()
                    self.record(method, operation, "upstream_error", 502)
                    self.log("%s %s -> upstream error %s" % (method, target, e))
                    self.send(s3_error_response(502, "Bad Gateway", "BadGateway",
                                                "proxy: %s" % e, resource, "-",
                                                head_only, True))
                    return False
                except OSError as e:
                    raise ClientGone(str(e))

            try:
                status, resp_close = self.relay_response(method, record)
                break
            except UpstreamError as e:
                self.close_upstream()
                if pump is not None:
                    self._stop_pump(pump)
                partial = getattr(e, "partial", False)
                if reused and attempt == 1 and not has_body and not partial:
                    self.log("%s %s: pooled upstream connection was dead, retrying"
                             % (method, target))
                    continue
                self.log("%s %s -> upstream error %s" % (method, target, e))
                if not recorded:
                    self.record(method, operation, "upstream_error",
                                None if partial else 502)
                if not partial:
                    try:
                        self.send(s3_error_response(502, "Bad Gateway", "BadGateway",
                                                    "proxy: %s" % e, resource, "-",
                                                    head_only, True))
                    except ClientGone:
                        pass
                return False

        keep = not (client_close or resp_close)
        if pump is not None:
            pump.join(timeout=2.0)
            if pump.is_alive() or pump_err:
                # The upstream answered without taking the whole body (e.g. an
                # early 4xx to an Expect: 100-continue request): the client's
                # body stream is in an unknown state, so drop both connections.
                keep = False
                self._stop_pump(pump)
        self.log("%s %s -> %d" % (method, target, status))
        if not keep:
            self.close_upstream()
            try:
                self.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        return keep

    def _stop_pump(self, pump):
        try:
            self.sock.shutdown(socket.SHUT_RD)
        except OSError:
            pass
        self.close_upstream()
        pump.join(timeout=5.0)

    def upstream_failed(self, method, target, operation, err, framing, length,
                        expect_continue):
        """Nothing of the request reached the upstream: read the body and
        answer 502 ourselves, keeping the client connection."""
        self.log("%s %s -> upstream error %s" % (method, target, err))
        try:
            self.read_request_body(framing, length, expect_continue)
        except ClientGone:
            self.record(method, operation, "upstream_error", None)
            return False
        self.record(method, operation, "upstream_error", 502)
        self.send(s3_error_response(502, "Bad Gateway", "BadGateway",
                                    "proxy: %s" % err, urlsplit(target).path, "-",
                                    method.upper() == "HEAD", False))
        return True

    def relay_response(self, method, on_final):
        """Relays 1xx interim responses and the final response; calls
        on_final(status) before the final response is sent on.  Returns
        (final_status, must_close)."""
        sent_any = False
        while True:
            try:
                head = read_head(self.up_rfile, UpstreamError)
            except OSError as e:
                err = UpstreamError("read: %s" % e)
                err.partial = sent_any
                raise err
            if head is None:
                err = UpstreamError("upstream closed the connection without a response")
                err.partial = sent_any
                raise err
            raw, start, headers = head
            parts = start.split(None, 2)
            try:
                version, status = parts[0], int(parts[1])
            except (IndexError, ValueError):
                err = UpstreamError("bad status line %r" % start)
                err.partial = sent_any
                raise err
            if 100 <= status < 200 and status != 101:
                self.send(raw)  # interim; a 502 may still follow it
                continue
            on_final(status)
            self.send(raw)
            sent_any = True
            break

        if method.upper() == "HEAD" or status in (204, 304) or 100 <= status < 200:
            framing, length = "none", None
        else:
            try:
                framing, length = body_framing(headers)
            except UpstreamError as e:
                e.partial = True
                raise
            if framing == "none":
                framing = "close"  # no length and not chunked: read until EOF
        try:
            copy_body(self.up_rfile, self.send, framing, length, UpstreamError)
        except UpstreamError as e:
            e.partial = True
            raise
        except OSError as e:
            err = UpstreamError("read body: %s" % e)
            err.partial = True
            raise err
        must_close = framing == "close" or wants_close(version, headers)
        return status, must_close


class Proxy:
    def __init__(self, state, upstream_addr, port, timeout, verbose):
        self.state = state
        self.upstream_addr = upstream_addr
        self.timeout = timeout
        self.verbose = verbose
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen(256)
        self.port = self.listener.getsockname()[1]

    def serve_forever(self):
        while True:
            try:
                sock, addr = self.listener.accept()
            except OSError:
                if self.listener.fileno() == -1:
                    return
                continue
            self.state.connection_opened()
            conn = Connection(self, sock, addr)
            threading.Thread(target=conn.run, daemon=True).start()


def parse_faults(text):
    kinds = [k.strip().lower() for k in text.split(",") if k.strip()]
    bad = [k for k in kinds if k not in FAULT_KINDS]
    if bad:
        raise argparse.ArgumentTypeError(
            "unknown fault kind(s) %s; known: %s" % (",".join(bad), ",".join(FAULT_KINDS)))
    return kinds


def parse_rate(text):
    r = float(text)
    if not 0.0 <= r <= 1.0:
        raise argparse.ArgumentTypeError("fault rate must be within [0, 1]")
    return r


def parse_upstream(text):
    u = urlsplit(text)
    if u.scheme != "http" or not u.hostname or u.path not in ("", "/"):
        raise argparse.ArgumentTypeError("--upstream must look like http://HOST:PORT")
    return u.hostname, u.port or 80


def main(argv=None):
    ap = argparse.ArgumentParser(description="Fault-injecting S3 test proxy (stdlib only).")
    ap.add_argument("--upstream", required=True, help="http://HOST:PORT of the real S3 server")
    ap.add_argument("--fault-rate", type=parse_rate, default=0.0,
                    help="probability of faulting a request (default 0)")
    ap.add_argument("--faults", type=parse_faults, default=list(FAULT_KINDS),
                    help="comma list of 500,503,slowdown,drop (default: all)")
    ap.add_argument("--seed", type=int, default=None, help="RNG seed for fault choice")
    ap.add_argument("--stats", default=None, help="write stats JSON here after every request")
    ap.add_argument("--port", type=int, default=0, help="listen port (default: a free one)")
    ap.add_argument("--timeout", type=float, default=300.0,
                    help="socket idle timeout in seconds (default 300)")
    ap.add_argument("-v", "--verbose", action="store_true", help="log requests to stderr")
    args = ap.parse_args(argv)

    upstream_addr = parse_upstream(args.upstream)
    state = State(args.upstream, args.fault_rate, args.faults, args.seed, args.stats)
    proxy = Proxy(state, upstream_addr, args.port, args.timeout, args.verbose)

    def on_term(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    state.write()
    sys.stdout.write(json.dumps({"endpoint": "http://127.0.0.1:%d" % proxy.port,
                                 "pid": os.getpid()}, separators=(",", ":")) + "\n")
    sys.stdout.flush()
    try:
        proxy.serve_forever()
    except SystemExit:
        pass
    finally:
        try:
            proxy.listener.close()
        except OSError:
            pass
        try:
            state.write()
        except Exception:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
