#!/usr/bin/env python3
"""Smoke test of the S3 test server with hand-signed (SigV4) requests. Standard library only.

    python3 tests/s3/smoke.py --dir DIR          # endpoint from DIR/server.json (server.py start)
    python3 tests/s3/smoke.py --endpoint URL     # or name it

Path-style addressing (http://127.0.0.1:PORT/bucket/key). Covers the upload shapes aws-sdk-s3
sends: a plain signed body with an x-amz-checksum-crc32 header (in-memory bodies), and aws-chunked
bodies with a checksum trailer (streaming bodies): chunk-signed over http, unsigned over https.
Uses bucket `kiln-smoke` and removes it at the end. Exits non-zero if any check fails; the last
line is 'N passed, N failed'. Lines starting with 'note:' report known differences from AWS S3;
they do not fail the run.
"""

import argparse
import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import sys
import urllib.parse
import zlib

sys.dont_write_bytecode = True  # no __pycache__ next to the scripts
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server import EMPTY_SHA256, REGION, SECRET_KEY, request, sign  # noqa: E402

BUCKET = "kiln-smoke"
passed = 0
failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok    {name}")
    else:
        failed += 1
        print(f"FAIL  {name}" + (f": {detail}" if detail else ""))
    return ok


def note(msg):
    print(f"note: {msg}")


def err_code(body):
    m = re.search(rb"<Code>([^<]*)</Code>", body or b"")
    return m.group(1).decode() if m else None


def crc32_b64(data):
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def aws_chunked(body, trailer_name, trailer_value, chunk=8192):
    """aws-chunked body with unsigned chunks and a checksum trailer
    (x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER), as the AWS SDKs send it."""
    out = bytearray()
    for i in range(0, len(body), chunk):
        part = body[i:i + chunk]
        out += f"{len(part):x}\r\n".encode() + part + b"\r\n"
    out += b"0\r\n" + f"{trailer_name}:{trailer_value}\r\n\r\n".encode()
    return bytes(out)


def send(ep, method, path, headers, body=b""):
    """Send already-signed headers and a raw body as they are. Returns (status, headers, body)."""
    u = urllib.parse.urlsplit(ep)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    try:
        conn.putrequest(method, urllib.parse.quote(path, safe="/-_.~"), skip_host=True, skip_accept_encoding=True)
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.endheaders()
        if body:
            conn.send(body)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def _hmac(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256)


def signing_key(secret, date, region=REGION, service="s3"):
    k = _hmac(("AWS4" + secret).encode(), date).digest()
    for part in (region, service, "aws4_request"):
        k = _hmac(k, part).digest()
    return k


def signed_aws_chunked(body, seed_signature, amz_date, secret, trailers=None, chunk=64 * 1024):
    """aws-chunked body with SigV4 chunk signatures: STREAMING-AWS4-HMAC-SHA256-PAYLOAD, or with
    `trailers` ([(name, value)]) STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER and an
    x-amz-trailer-signature, laid out as aws-sdk-s3 (aws-runtime 1.10) does over plain http
    (checked against that crate's own test vector)."""
    date = amz_date[:8]
    scope = f"{date}/{REGION}/s3/aws4_request"
    key = signing_key(secret, date)
    prev = seed_signature
    out = bytearray()
    for part in [body[i:i + chunk] for i in range(0, len(body), chunk)] + [b""]:
        sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, prev, EMPTY_SHA256,
                         hashlib.sha256(part).hexdigest()])
        prev = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
        out += f"{len(part):X};chunk-signature={prev}\r\n".encode() + part
        if part or trailers is None:
            out += b"\r\n"
    if trailers is not None:
        canon = "".join(f"{k.lower()}:{v.strip()}\n" for k, v in sorted(trailers, key=lambda kv: kv[0].lower()))
        sts = "\n".join(["AWS4-HMAC-SHA256-TRAILER", amz_date, scope, prev,
                         hashlib.sha256(canon.encode()).hexdigest()])
        tsig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
        for k, v in trailers:
            out += f"{k}:{v}\r\n".encode()
        out += f"x-amz-trailer-signature:{tsig}\r\n\r\n".encode()
    return bytes(out)


def put_signed_streaming(ep, path, body, trailers=None, tamper=None):
    """PutObject with a chunk-signed aws-chunked body. tamper: None, 'chunk-signature',
    'trailer-signature'."""
    mode = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" + ("-TRAILER" if trailers is not None else "")
    # the encoded length does not depend on the signature values
    enc_len = len(signed_aws_chunked(body, "0" * 64, "20000101T000000Z", "x", trailers))
    hdrs = {
        "Content-Encoding": "aws-chunked",
        "Content-Type": "text/plain",
        "Content-Length": str(enc_len),
        "x-amz-decoded-content-length": str(len(body)),
    }
    if trailers is not None:
        hdrs["x-amz-trailer"] = ",".join(k for k, _ in trailers)
        hdrs["x-amz-sdk-checksum-algorithm"] = "CRC32"
    signed = sign("PUT", ep.split("://", 1)[1], path, headers=hdrs, payload_hash=mode)
    seed = re.search(r"Signature=([0-9a-f]{64})", signed["Authorization"]).group(1)
    enc = signed_aws_chunked(body, seed, signed["X-Amz-Date"], SECRET_KEY, trailers)
    marker = {"chunk-signature": b";chunk-signature=", "trailer-signature": b"x-amz-trailer-signature:"}.get(tamper)
    if marker:
        i = enc.index(marker) + len(marker)
        enc = enc[:i] + (b"0" if enc[i:i + 1] != b"0" else b"1") + enc[i + 1:]
    return send(ep, "PUT", path, signed, enc)


def empty_bucket(ep, bucket):
    st, _, body = request(ep, "GET", f"/{bucket}", query={"list-type": "2"})
    if st != 200:
        return
    for key in re.findall(rb"<Key>([^<]*)</Key>", body):
        k = key.decode().replace("&amp;", "&").replace("&#39;", "'").replace("&#34;", '"') \
            .replace("&lt;", "<").replace("&gt;", ">")
        request(ep, "DELETE", f"/{bucket}/{k}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--dir", help="the --dir given to server.py start")
    g.add_argument("--endpoint", help="e.g. http://127.0.0.1:8333")
    args = ap.parse_args()
    ep = args.endpoint
    if args.dir:
        with open(os.path.join(args.dir, "server.json")) as f:
            ep = json.load(f)["endpoint"]
    print(f"endpoint {ep}")

    # --- the chunk signer itself, against aws-runtime 1.10's test vector (no server involved) --------
    vec = signed_aws_chunked(b"a" * 65 * 1024, "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e",
                             "20130524T000000Z", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                             [("x-amz-checksum-crc32c", "sOO8/Q==")])
    check("chunk signer matches aws-sdk-s3's test vector", vec.startswith(
        b"10000;chunk-signature=b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2\r\n") and vec.endswith(
        b"\r\n400;chunk-signature=1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7\r\n" + b"a" * 1024 +
        b"\r\n0;chunk-signature=2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992\r\n"
        b"x-amz-checksum-crc32c:sOO8/Q==\r\n"
        b"x-amz-trailer-signature:d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435\r\n\r\n"))

    # --- authentication ------------------------------------------------------------------------
    st, _, body = request(ep, "GET", "/", signed=False)
    check("anonymous ListBuckets is refused (403)", st == 403, f"{st} {err_code(body)}")
    st, _, body = request(ep, "GET", "/")
    check("signed ListBuckets (200)", st == 200, f"{st} {body[:200]!r}")
    st, _, body = request(ep, "GET", "/", secret_key=SECRET_KEY + "x")
    check("wrong secret key is refused (403 SignatureDoesNotMatch)",
          st == 403 and err_code(body) == "SignatureDoesNotMatch", f"{st} {err_code(body)}")
    st, _, body = request(ep, "GET", "/", access_key="nobody")
    check("unknown access key is refused (403 InvalidAccessKeyId)",
          st == 403 and err_code(body) == "InvalidAccessKeyId", f"{st} {err_code(body)}")

    # --- bucket ----------------------------------------------------------------------------------
    st, _, body = request(ep, "PUT", f"/{BUCKET}")
    if st == 409 and err_code(body) == "BucketAlreadyOwnedByYou":  # left over from an aborted run
        empty_bucket(ep, BUCKET)
        st = 200
    check(f"CreateBucket {BUCKET}", st == 200, f"{st} {body[:200]!r}")
    st, _, _ = request(ep, "HEAD", f"/{BUCKET}")
    check("HeadBucket (200)", st == 200, str(st))
    st, _, body = request(ep, "PUT", "/kiln-smoke-missing/k", body=b"x")
    check("PutObject into a missing bucket is NoSuchBucket (404)",
          st == 404 and err_code(body) == "NoSuchBucket", f"{st} {err_code(body)}")

    # --- PutObject with headers, HeadObject, GetObject, ListObjectsV2 ------------------------------
    key = "assets/app.3f2a9c.css"
    data = b"body{color:#c0ffee}\n" * 50
    hdrs = {
        "Content-Type": "text/css; charset=utf-8",
        "Cache-Control": "public, max-age=31536000, immutable",
        "x-amz-meta-kiln": "sha256-3f2a9c",
    }
    st, h, body = request(ep, "PUT", f"/{BUCKET}/{key}", headers=hdrs, body=data)
    check("PutObject with Content-Type, Cache-Control, x-amz-meta-kiln (200)", st == 200, f"{st} {body[:200]!r}")
    md5 = hashlib.md5(data).hexdigest()
    check("PutObject ETag is the MD5 of the body", h.get("etag", "").strip('"') == md5, h.get("etag"))

    st, h, _ = request(ep, "HEAD", f"/{BUCKET}/{key}")
    check("HeadObject (200)", st == 200, str(st))
    for name, want in (("content-type", hdrs["Content-Type"]), ("cache-control", hdrs["Cache-Control"]),
                       ("x-amz-meta-kiln", hdrs["x-amz-meta-kiln"]), ("content-length", str(len(data)))):
        check(f"HeadObject returns {name}: {want}", h.get(name) == want, repr(h.get(name)))
    check("HeadObject ETag", h.get("etag", "").strip('"') == md5, h.get("etag"))

    st, h, body = request(ep, "GET", f"/{BUCKET}/{key}")
    check("GetObject returns the bytes", st == 200 and body == data, f"{st} len={len(body)}")

    st, _, body = request(ep, "GET", f"/{BUCKET}", query={"list-type": "2", "prefix": "assets/"})
    keys = [k.decode() for k in re.findall(rb"<Key>([^<]*)</Key>", body)]
    check("ListObjectsV2 with prefix lists the key", st == 200 and keys == [key], f"{st} {keys}")

    # a request whose signed header is changed afterwards must be refused
    signed = sign("PUT", ep.split("://", 1)[1], f"/{BUCKET}/tampered",
                  headers={"Content-Type": "text/plain"}, payload_hash=hashlib.sha256(b"t").hexdigest())
    signed["Content-Type"] = "text/html"
    signed["Content-Length"] = "1"
    st, _, tbody = send(ep, "PUT", f"/{BUCKET}/tampered", signed, b"t")
    check("a signed header changed after signing is refused (403)",
          st == 403 and err_code(tbody) == "SignatureDoesNotMatch", f"{st} {err_code(tbody)}")

    # --- keys that need URI encoding ---------------------------------------------------------------
    odd = "fonts/My Font (v2)/ü+=&;,$@!'*.woff2"
    st, _, _ = request(ep, "PUT", f"/{BUCKET}/{odd}", body=b"odd", headers={"Content-Type": "font/woff2"})
    st2, _, body = request(ep, "GET", f"/{BUCKET}/{odd}")
    check("key with spaces, unicode and reserved characters round-trips", st == 200 and st2 == 200 and body == b"odd",
          f"put {st}, get {st2} {body[:80]!r}")

    # --- checksums (the AWS SDKs send these by default) ---------------------------------------------
    cdata = b"checksummed" * 100
    st, h, body = request(ep, "PUT", f"/{BUCKET}/crc-header", body=cdata, headers={
        "x-amz-sdk-checksum-algorithm": "CRC32", "x-amz-checksum-crc32": crc32_b64(cdata)})
    check("PutObject with x-amz-checksum-crc32 header (200)", st == 200, f"{st} {body[:200]!r}")
    check("PutObject echoes x-amz-checksum-crc32", h.get("x-amz-checksum-crc32") == crc32_b64(cdata),
          repr(h.get("x-amz-checksum-crc32")))
    st, _, body = request(ep, "PUT", f"/{BUCKET}/crc-header-bad", body=cdata, headers={
        "x-amz-sdk-checksum-algorithm": "CRC32", "x-amz-checksum-crc32": crc32_b64(b"other")})
    check("a wrong x-amz-checksum-crc32 header is refused (400)", st == 400, f"{st} {err_code(body)}")
    st, _, body = request(ep, "PUT", f"/{BUCKET}/md5-bad", body=cdata, headers={
        "Content-MD5": base64.b64encode(hashlib.md5(b"other").digest()).decode()})
    check("a wrong Content-MD5 is refused (400 BadDigest)", st == 400 and err_code(body) == "BadDigest",
          f"{st} {err_code(body)}")

    # aws-chunked upload with an unsigned payload and a CRC32 trailer, with Content-Length (not
    # Transfer-Encoding: chunked), several chunks: what aws-sdk-s3 sends for a streaming body.
    sdata = bytes(range(256)) * 160  # 40 KiB -> 5 chunks of 8 KiB
    enc = aws_chunked(sdata, "x-amz-checksum-crc32", crc32_b64(sdata))
    chunk_hdrs = {
        "Content-Encoding": "aws-chunked",
        "Content-Type": "application/javascript",
        "Cache-Control": "no-cache",
        "Content-Length": str(len(enc)),
        "x-amz-decoded-content-length": str(len(sdata)),
        "x-amz-trailer": "x-amz-checksum-crc32",
        "x-amz-sdk-checksum-algorithm": "CRC32",
        "x-amz-meta-kiln": "streamed",
    }
    st, h, body = request(ep, "PUT", f"/{BUCKET}/streamed.js", headers=chunk_hdrs, body=enc,
                          payload_hash="STREAMING-UNSIGNED-PAYLOAD-TRAILER")
    check("aws-chunked PutObject with STREAMING-UNSIGNED-PAYLOAD-TRAILER + CRC32 trailer (200)", st == 200,
          f"{st} {body[:200]!r}")
    st, h, body = request(ep, "GET", f"/{BUCKET}/streamed.js", headers={"x-amz-checksum-mode": "ENABLED"})
    check("aws-chunked object reads back decoded", st == 200 and body == sdata, f"{st} len={len(body)}")
    check("aws-chunked object keeps Content-Type, Cache-Control, x-amz-meta-kiln",
          (h.get("content-type"), h.get("cache-control"), h.get("x-amz-meta-kiln"))
          == ("application/javascript", "no-cache", "streamed"),
          repr((h.get("content-type"), h.get("cache-control"), h.get("x-amz-meta-kiln"))))
    check("GetObject with checksum mode returns the trailer's CRC32",
          h.get("x-amz-checksum-crc32") == crc32_b64(sdata), repr(h.get("x-amz-checksum-crc32")))
    if h.get("content-encoding"):
        note(f"Content-Encoding is stored and returned as {h.get('content-encoding')!r} after an aws-chunked "
             "upload (AWS S3 drops the aws-chunked token and returns no Content-Encoding)")
    enc_bad = aws_chunked(sdata, "x-amz-checksum-crc32", crc32_b64(b"other"))
    st, _, body = request(ep, "PUT", f"/{BUCKET}/streamed-bad.js", body=enc_bad,
                          headers=dict(chunk_hdrs, **{"Content-Length": str(len(enc_bad))}),
                          payload_hash="STREAMING-UNSIGNED-PAYLOAD-TRAILER")
    check("aws-chunked upload with a wrong CRC32 trailer is refused (400)", st == 400, f"{st} {err_code(body)}")

    # Chunk-signed aws-chunked upload (STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER): what aws-sdk-s3
    # sends for a streaming body (ByteStream::from_path) to a plain-http endpoint such as this one.
    sig_data = bytes(range(256)) * 280  # 70 KiB -> a 64 KiB chunk, a 6 KiB chunk, the final chunk
    crc_trailer = [("x-amz-checksum-crc32", crc32_b64(sig_data))]
    st, _, body = put_signed_streaming(ep, f"/{BUCKET}/signed-stream.txt", sig_data, crc_trailer)
    check("chunk-signed aws-chunked PutObject with a CRC32 trailer (200)", st == 200, f"{st} {body[:200]!r}")
    st, h, body = request(ep, "GET", f"/{BUCKET}/signed-stream.txt", headers={"x-amz-checksum-mode": "ENABLED"})
    check("chunk-signed object reads back decoded, with its CRC32",
          st == 200 and body == sig_data and h.get("x-amz-checksum-crc32") == crc32_b64(sig_data),
          f"{st} same={body == sig_data} crc={h.get('x-amz-checksum-crc32')!r}")
    st, _, body = put_signed_streaming(ep, f"/{BUCKET}/signed-plain.txt", sig_data)
    st2, _, body2 = request(ep, "GET", f"/{BUCKET}/signed-plain.txt")
    check("chunk-signed aws-chunked PutObject without trailer (STREAMING-AWS4-HMAC-SHA256-PAYLOAD)",
          st == 200 and st2 == 200 and body2 == sig_data, f"put {st} {body[:120]!r}, get {st2}")
    st, _, body = put_signed_streaming(ep, f"/{BUCKET}/signed-bad.txt", sig_data, crc_trailer, tamper="chunk-signature")
    check("a wrong chunk signature is refused", st >= 400, f"{st} {err_code(body)}")
    if st != 403:
        note(f"a wrong chunk signature is refused with {st} {err_code(body)} (AWS S3: 403 SignatureDoesNotMatch; "
             "aws-sdk-s3 retries 500s)")
    st, _, body = put_signed_streaming(ep, f"/{BUCKET}/signed-badtrailer.txt", sig_data, crc_trailer,
                                       tamper="trailer-signature")
    if st == 200:
        note("a wrong x-amz-trailer-signature is accepted (AWS S3 refuses it); the chunk signatures and the "
             "trailer's checksum value are verified")
    else:
        check("a wrong x-amz-trailer-signature is refused", st >= 400, f"{st} {err_code(body)}")

    # Content-Encoding set by the client (pre-compressed assets) must come back untouched
    gz = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + os.urandom(64)
    st, _, _ = request(ep, "PUT", f"/{BUCKET}/app.css.gz", body=gz,
                       headers={"Content-Encoding": "gzip", "Content-Type": "text/css"})
    st2, h, body = request(ep, "GET", f"/{BUCKET}/app.css.gz", headers={"Accept-Encoding": "gzip"})
    check("Content-Encoding: gzip object comes back byte for byte with its header",
          st == 200 and st2 == 200 and body == gz and h.get("content-encoding") == "gzip",
          f"put {st}, get {st2}, same={body == gz}, content-encoding={h.get('content-encoding')!r}")

    # payload hash: AWS refuses a body whose SHA-256 differs from the signed x-amz-content-sha256
    st, _, body = request(ep, "PUT", f"/{BUCKET}/sha-mismatch", body=b"real",
                          payload_hash=hashlib.sha256(b"other").hexdigest())
    if st == 200:
        note("a body that does not match the signed x-amz-content-sha256 is accepted "
             "(AWS S3 answers 400 XAmzContentSHA256Mismatch); the signature itself is verified")
        request(ep, "DELETE", f"/{BUCKET}/sha-mismatch")
    else:
        check("a body that does not match x-amz-content-sha256 is refused (400)", st == 400,
              f"{st} {err_code(body)}")

    # --- delete ------------------------------------------------------------------------------------
    st, _, body = request(ep, "DELETE", f"/{BUCKET}")
    check("DeleteBucket on a non-empty bucket is BucketNotEmpty (409)",
          st == 409 and err_code(body) == "BucketNotEmpty", f"{st} {err_code(body)}")
    st, _, _ = request(ep, "DELETE", f"/{BUCKET}/{key}")
    check("DeleteObject (204)", st == 204, str(st))
    st, _, _ = request(ep, "HEAD", f"/{BUCKET}/{key}")
    check("HeadObject after delete (404)", st == 404, str(st))
    empty_bucket(ep, BUCKET)
    st, _, body = request(ep, "GET", f"/{BUCKET}", query={"list-type": "2"})
    check("bucket is empty after deleting every key", st == 200 and b"<Key>" not in body, f"{st} {body[:300]!r}")
    st, _, body = request(ep, "DELETE", f"/{BUCKET}")
    check("DeleteBucket (204)", st == 204, f"{st} {err_code(body)}")
    st, _, _ = request(ep, "HEAD", f"/{BUCKET}")
    check("HeadBucket after delete (404)", st == 404, str(st))

    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
