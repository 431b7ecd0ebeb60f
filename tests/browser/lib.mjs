// What the browser harnesses share (render-compare.mjs, framework-check.mjs,
// framework-check.selftest.mjs, report.mjs); not a script of its own.
//
//   Chromium      CHROMIUM_PATH (Debian's /usr/bin/chromium, or $CHROMIUM_PATH),
//                 CHROMIUM_ARGS (render-compare's flags; framework-check adds two,
//                 report.mjs drops --disable-quic), launchChromium(), the browser
//                 context every harness opens (CONTEXT_OPTIONS: 1280x800, UTC,
//                 en-US, light, reduced motion, service workers blocked) and
//                 blockOtherOrigins() (requests leaving the server are aborted);
//   server        startServer(dir, {base, cleanUrls, notFoundPage}) / stopServer():
//                 node:http on 127.0.0.1, an ephemeral port, GET and HEAD, no-store,
//                 nothing outside the directory (symlinks included);
//   screenshots   comparePngs(): pixel by pixel, with a diff image;
//   arguments     parseOptions(), requireOptions(), checkTimeout(), checkTolerance();
//   a run         withTimeout(), firstLine(), makeNormalizer(), unmatched(), slugFor(),
//                 contextTracker(), guardRun(), closeAll(), emitReport(),
//                 exitWhenDone(), isMain().

import fs from "node:fs";
import fsp from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { chromium } from "playwright-core";
import pngjs from "pngjs";

const { PNG } = pngjs;

// ----------------------------------------------------------------- Chromium

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--headless",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--font-render-hinting=none",
  "--hide-scrollbars",
];
export const VIEWPORT = { width: 1280, height: 800 };
export const CONTEXT_OPTIONS = {
  viewport: VIEWPORT,
  deviceScaleFactor: 1,
  reducedMotion: "reduce",
  colorScheme: "light",
  locale: "en-US",
  timezoneId: "UTC",
  acceptDownloads: false,
  serviceWorkers: "block",
};
export const LAUNCH_TIMEOUT_MS = 30_000;
export const CLOSE_TIMEOUT_MS = 5_000;

// Headless Chromium with `args`; signals are the harness's to handle (see
// guardRun). Playwright starts the browser with a fresh temporary
// user-data-dir and removes it on close.
export function launchChromium(args = CHROMIUM_ARGS) {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args,
    timeout: LAUNCH_TIMEOUT_MS,
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
  });
}

// Nothing leaves this machine: any request to another origin than the
// server's is aborted (and reported as a failed request, on both sides alike).
export function blockOtherOrigins(context, origin) {
  return context.route("**/*", (route) => {
    const u = route.request().url();
    if (u.startsWith(origin + "/") || u === origin || u.startsWith("data:") || u.startsWith("blob:")) {
      return route.continue();
    }
    return route.abort("blockedbyclient");
  });
}

// ------------------------------------------------------------ static server

export const MIME = {
  ".html": "text/html; charset=utf-8",
  ".htm": "text/html; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".cjs": "text/javascript; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".webmanifest": "application/manifest+json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gif": "image/gif",
  ".webp": "image/webp",
  ".avif": "image/avif",
  ".ico": "image/x-icon",
  ".ttf": "font/ttf",
  ".otf": "font/otf",
  ".woff": "font/woff",
  ".woff2": "font/woff2",
  ".pdf": "application/pdf",
  ".xml": "application/xml; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
  ".wasm": "application/wasm",
  ".mp4": "video/mp4",
  ".webm": "video/webm",
};

// Serve rootDir under the URL prefix `base` ("/a/" form). A directory URL
// serves its index.html (`/dir` redirects to `/dir/`); what is missing is 404.
// Options, both off by default:
//   cleanUrls     `/a/b` serves `a/b.html` when that exists (before redirecting
//                 to a directory `a/b/`);
//   notFoundPage  a 404 answers with the root's `404.html` when there is one.
export function startServer(rootDir, { base = "/", cleanUrls = false, notFoundPage = false } = {}) {
  const rootReal = fs.realpathSync(rootDir);
  const opts = { base, cleanUrls, notFoundPage };
  const server = http.createServer((req, res) => {
    serve(rootReal, opts, req, res).catch((err) => {
      if (!res.headersSent) send(res, 500, `internal error: ${err.message}\n`);
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 1000;
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      resolve({ server, origin: `http://127.0.0.1:${port}`, root: rootReal });
    });
  });
}

export function stopServer(s) {
  return new Promise((resolve) => {
    s.server.close(() => resolve());
    s.server.closeAllConnections();
  });
}

function send(res, status, body, headers = {}) {
  res.writeHead(status, {
    "Content-Type": "text/plain; charset=utf-8",
    "Cache-Control": "no-store",
    "Content-Length": Buffer.byteLength(body),
    ...headers,
  });
  res.end(res.req.method === "HEAD" ? undefined : body);
}

function isInside(root, p) {
  const rel = path.relative(root, p);
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel));
}

// A regular file inside root (after symlinks), or null.
async function fileAt(root, p) {
  try {
    const real = await fsp.realpath(p);
    if (!isInside(root, real)) return null;
    const st = await fsp.stat(real);
    return st.isFile() ? { real, st } : null;
  } catch {
    return null;
  }
}

async function sendFile(req, res, file, status = 200) {
  const type = MIME[path.extname(file.real).toLowerCase()] || "application/octet-stream";
  res.writeHead(status, { "Content-Type": type, "Content-Length": file.st.size, "Cache-Control": "no-store" });
  if (req.method === "HEAD") return res.end();
  await new Promise((resolve, reject) => {
    const stream = fs.createReadStream(file.real);
    stream.on("error", reject);
    res.on("close", resolve);
    stream.pipe(res);
  });
}

async function serve(root, { base, cleanUrls, notFoundPage }, req, res) {
  if (req.method !== "GET" && req.method !== "HEAD") {
    return send(res, 405, "method not allowed\n", { Allow: "GET, HEAD" });
  }
  let url;
  try {
    url = new URL(req.url, "http://127.0.0.1");
  } catch {
    return send(res, 400, "bad request\n");
  }
  const notFound = async () => {
    const page = notFoundPage && (await fileAt(root, path.join(root, "404.html")));
    if (page) return sendFile(req, res, page, 404);
    return send(res, 404, "not found\n");
  };
  const rawPath = url.pathname; // still percent-encoded, dot segments resolved
  if (rawPath + "/" === base) {
    return send(res, 301, "moved\n", { Location: base + url.search });
  }
  if (!rawPath.startsWith(base)) return notFound();
  let rel;
  try {
    rel = decodeURIComponent(rawPath.slice(base.length));
  } catch {
    return send(res, 400, "bad percent-encoding\n");
  }
  if (rel.includes("\0")) return send(res, 400, "bad path\n");
  const target = path.resolve(root, "." + path.sep + rel);
  if (!isInside(root, target)) return send(res, 403, "forbidden\n");

  let real = null;
  let st = null;
  try {
    real = await fsp.realpath(target);
    if (!isInside(root, real)) return send(res, 403, "forbidden\n"); // symlink escaping the root
    st = await fsp.stat(real);
  } catch {
    st = null;
  }
  if (st && st.isFile()) return sendFile(req, res, { real, st });
  if (rawPath.endsWith("/")) {
    if (st && st.isDirectory()) {
      const index = await fileAt(root, path.join(real, "index.html"));
      if (index) return sendFile(req, res, index);
    }
    return notFound();
  }
  // `/a/b` → `a/b.html` (clean URLs), before a directory `a/b/`.
  if (cleanUrls && (!path.extname(target) || (st && st.isDirectory()))) {
    const html = await fileAt(root, target + ".html");
    if (html) return sendFile(req, res, html);
  }
  if (st && st.isDirectory()) return send(res, 301, "moved\n", { Location: rawPath + "/" + url.search });
  return notFound();
}

// -------------------------------------------------------------- screenshots

// Compare two PNG files pixel by pixel: a pixel is the same when no colour
// channel differs by more than `tolerance`. Writes diffFile (differing pixels
// red, pixels only one image has magenta, the rest a faded grey copy of A)
// when they differ, and removes it when they do not.
export function comparePngs(fileA, fileB, diffFile, tolerance = 0) {
  const a = PNG.sync.read(fs.readFileSync(fileA));
  const b = PNG.sync.read(fs.readFileSync(fileB));
  const width = Math.max(a.width, b.width);
  const height = Math.max(a.height, b.height);
  const diff = new PNG({ width, height });
  let diffPixels = 0;
  let maxChannelDiff = 0;
  let box = null;
  const rowHasDiff = new Uint8Array(height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 4;
      const inA = x < a.width && y < a.height;
      const inB = x < b.width && y < b.height;
      let same = false;
      let ia = 0;
      if (inA) ia = (y * a.width + x) * 4;
      if (inA && inB) {
        const ib = (y * b.width + x) * 4;
        let worst = 0;
        for (let c = 0; c < 4; c++) worst = Math.max(worst, Math.abs(a.data[ia + c] - b.data[ib + c]));
        if (worst > maxChannelDiff) maxChannelDiff = worst;
        same = worst <= tolerance;
      }
      if (same) {
        // Faded grey copy of the original as context.
        const lum = 0.299 * a.data[ia] + 0.587 * a.data[ia + 1] + 0.114 * a.data[ia + 2];
        const v = Math.round(255 - (255 - lum) * 0.15);
        diff.data[o] = diff.data[o + 1] = diff.data[o + 2] = v;
        diff.data[o + 3] = 255;
      } else {
        diffPixels++;
        rowHasDiff[y] = 1;
        if (inA && inB) {
          diff.data[o] = 255; // red: pixel differs
          diff.data[o + 1] = 0;
          diff.data[o + 2] = 0;
        } else {
          diff.data[o] = 255; // magenta: only one screenshot has this pixel
          diff.data[o + 1] = 0;
          diff.data[o + 2] = 255;
        }
        diff.data[o + 3] = 255;
        if (!box) box = { x0: x, y0: y, x1: x, y1: y };
        else {
          if (x < box.x0) box.x0 = x;
          if (x > box.x1) box.x1 = x;
          if (y > box.y1) box.y1 = y;
        }
      }
    }
  }
  // Horizontal bands of rows that contain differences (for a quick reading).
  const bands = [];
  for (let y = 0; y < height; y++) {
    if (!rowHasDiff[y]) continue;
    const start = y;
    while (y + 1 < height && rowHasDiff[y + 1]) y++;
    bands.push([start, y]);
  }
  if (diffPixels > 0) fs.writeFileSync(diffFile, PNG.sync.write(diff));
  else fs.rmSync(diffFile, { force: true });
  return {
    identical: diffPixels === 0,
    diffPixels,
    maxChannelDiff,
    width: a.width,
    height: a.height,
    builtWidth: b.width,
    builtHeight: b.height,
    diffBox: box ? { x: box.x0, y: box.y0, width: box.x1 - box.x0 + 1, height: box.y1 - box.y0 + 1 } : null,
    diffRowBands: bands.length > 40 ? bands.slice(0, 40).concat([["…", bands.length - 40 + " more"]]) : bands,
  };
}

// ---------------------------------------------------------------- arguments

// `--name VALUE` or `--name=VALUE` for each name in `valued`, a bare `--name`
// (true, any `=value` ignored) for each in `flags`, on top of `defaults`.
// -h/--help, an unknown argument and a missing value call usage(), which
// exits.
export function parseOptions(argv, { valued, flags = [], defaults = {} }, usage) {
  const opts = { ...defaults };
  const known = new Set([...valued, ...flags]);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "-h" || arg === "--help") usage();
    const m = /^--([a-z]+)(?:=(.*))?$/s.exec(arg);
    if (!m || !known.has(m[1])) usage(`unknown argument ${JSON.stringify(arg)}`);
    if (flags.includes(m[1])) {
      opts[m[1]] = true;
      continue;
    }
    let value = m[2];
    if (value === undefined) {
      if (i + 1 >= argv.length) usage(`--${m[1]} needs a value`);
      value = argv[++i];
    }
    opts[m[1]] = value;
  }
  return opts;
}

export function requireOptions(opts, names, usage) {
  for (const k of names) if (!opts[k]) usage(`--${k} is required`);
}

// --timeout: milliseconds, at least 1000.
export function checkTimeout(opts, usage) {
  opts.timeout = Number(opts.timeout);
  if (!Number.isFinite(opts.timeout) || opts.timeout < 1000) usage("--timeout must be >= 1000 (ms)");
}

// --tolerance: the largest difference per colour channel still counted as the
// same pixel (0: exact), as comparePngs() takes it.
export function checkTolerance(opts, usage) {
  opts.tolerance = Number(opts.tolerance);
  if (!Number.isInteger(opts.tolerance) || opts.tolerance < 0) usage("--tolerance must be an integer >= 0");
}

// ---------------------------------------------------------------- a run

export function withTimeout(promise, ms, what) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

export const firstLine = (err) => String(err && err.message ? err.message : err).split("\n")[0];

const log = (s) => process.stderr.write(s + "\n");

// Message and URL text with each server's origin replaced, so that the two
// sides can be compared.
export function makeNormalizer(origins) {
  return (text) => {
    let out = String(text);
    for (const o of origins) out = out.split(o).join("<origin>");
    return out;
  };
}

// Entries of `built` that have no counterpart in `original`, matched as a
// multiset on key(entry). A side that failed before it recorded anything
// (a timeout) has no list: none is empty, and its error is judged elsewhere.
export function unmatched(original = [], built = [], key) {
  const pool = new Map();
  for (const e of original) pool.set(key(e), (pool.get(key(e)) || 0) + 1);
  const out = [];
  for (const e of built) {
    const k = key(e);
    const n = pool.get(k) || 0;
    if (n > 0) pool.set(k, n - 1);
    else out.push(e);
  }
  return out;
}

// A file-name-safe slug of a URL path ("" and "dir/" end in "index").
export function slugFor(pagePath) {
  let s = pagePath.replace(/^\/+/, "");
  if (s === "" || s.endsWith("/")) s += "index";
  try {
    s = decodeURIComponent(s);
  } catch {}
  return s.replace(/\.html?$/i, "").replace(/[^A-Za-z0-9._-]+/g, "_");
}

// The browser contexts still open: register(ctx) for each new one; closeAll()
// aborts whatever they are still loading.
export function contextTracker() {
  const open = new Set();
  return {
    register(ctx) {
      open.add(ctx);
      ctx.on("close", () => open.delete(ctx));
    },
    closeAll() {
      return Promise.all([...open].map((c) => withTimeout(c.close(), CLOSE_TIMEOUT_MS, "close").catch(() => {})));
    },
  };
}

// Hard bound on the whole run, whatever hangs: after hardLimitMs (unless
// finished() by then) print `result` as it is, with ok false and an error, and
// exit 1; SIGINT/SIGTERM exit 1 too. Playwright kills the browser it launched
// on exit.
export function guardRun(name, hardLimitMs, result, finished) {
  const hardTimer = setTimeout(() => {
    if (finished()) return;
    log(`${name}: gave up after ${hardLimitMs} ms`);
    result.ok = false;
    result.error = `run exceeded ${hardLimitMs} ms`;
    process.stdout.write(JSON.stringify(result, null, 2) + "\n");
    process.exit(1);
  }, hardLimitMs);
  hardTimer.unref();
  for (const sig of ["SIGINT", "SIGTERM"]) {
    process.once(sig, () => {
      log(`${name}: ${sig}`);
      process.exit(1);
    });
  }
}

// Close the browser (if any) and the servers, each bounded.
export async function closeAll(browser, servers) {
  if (browser) await withTimeout(browser.close(), CLOSE_TIMEOUT_MS, "browser close").catch(() => {});
  await Promise.all(servers.map((s) => withTimeout(stopServer(s), CLOSE_TIMEOUT_MS, "server close").catch(() => {})));
}

// The report, to OUT_DIR/report.json and to stdout.
export function emitReport(outDir, result) {
  fs.writeFileSync(path.join(outDir, "report.json"), JSON.stringify(result, null, 2) + "\n");
  process.stdout.write(JSON.stringify(result, null, 2) + "\n");
}

// Exit status 0 when ok, 1 when not; anything left (a wedged socket, a stray
// timer) must not keep the process alive.
export function exitWhenDone(ok) {
  process.exitCode = ok ? 0 : 1;
  setTimeout(() => process.exit(process.exitCode), 2_000).unref();
}

// Whether the module at moduleUrl (import.meta.url) is the script node runs.
export function isMain(moduleUrl) {
  return Boolean(process.argv[1]) && moduleUrl === pathToFileURL(fs.realpathSync(process.argv[1])).href;
}
