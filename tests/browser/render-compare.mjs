#!/usr/bin/env node
// Render-fidelity check: a kiln-built site must render pixel-identically to
// the original and must not add console errors, uncaught exceptions or failed
// requests.
//
//   node render-compare.mjs --original DIR_A --built DIR_B --out ARTIFACT_DIR
//                           [--pages p1,p2,...] [--base /] [--timeout MS]
//                           [--tolerance N]
//
// Both directories are served by this script (node:http, 127.0.0.1, ephemeral
// ports) under the URL prefix --base. Every page is opened in headless
// Chromium (Debian's /usr/bin/chromium, or $CHROMIUM_PATH) on both servers,
// screenshotted full-page, and the two PNGs are compared pixel by pixel.
//
// stdout: one JSON object {"pages":[...], "ok": bool}; progress goes to stderr.
// Exit status: 0 when ok, 1 when a page differs / errs / times out, 2 on usage
// errors.

import http from "node:http";
import fs from "node:fs";
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { chromium } from "playwright-core";
import pngjs from "pngjs";

const { PNG } = pngjs;

const CHROMIUM_PATH = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const CHROMIUM_ARGS = [
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
const VIEWPORT = { width: 1280, height: 800 };
const DEFAULT_PAGE_TIMEOUT_MS = 20_000;
const NETWORK_IDLE_CAP_MS = 5_000; // networkidle is best effort within this
const LAUNCH_TIMEOUT_MS = 30_000;
const CLOSE_TIMEOUT_MS = 5_000;

const MIME = {
  ".html": "text/html; charset=utf-8",
  ".htm": "text/html; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
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

// ---------------------------------------------------------------- arguments

function usage(msg) {
  if (msg) process.stderr.write(`render-compare: ${msg}\n`);
  process.stderr.write(
    "usage: node render-compare.mjs --original DIR_A --built DIR_B --out ARTIFACT_DIR " +
      "[--pages p1,p2,...] [--base /] [--timeout MS]\n",
  );
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { base: "/", timeout: DEFAULT_PAGE_TIMEOUT_MS, tolerance: 0 };
  const known = new Set(["original", "built", "out", "pages", "base", "timeout", "tolerance"]);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "-h" || arg === "--help") usage();
    const m = /^--([a-z]+)(?:=(.*))?$/s.exec(arg);
    if (!m || !known.has(m[1])) usage(`unknown argument ${JSON.stringify(arg)}`);
    let value = m[2];
    if (value === undefined) {
      if (i + 1 >= argv.length) usage(`--${m[1]} needs a value`);
      value = argv[++i];
    }
    opts[m[1]] = value;
  }
  for (const k of ["original", "built", "out"]) if (!opts[k]) usage(`--${k} is required`);
  // Largest difference per colour channel still counted as the same pixel
  // (0: exact). Decoders round alpha premultiplication differently.
  opts.tolerance = Number(opts.tolerance);
  if (!Number.isInteger(opts.tolerance) || opts.tolerance < 0) usage("--tolerance must be an integer >= 0");
  opts.timeout = Number(opts.timeout);
  if (!Number.isFinite(opts.timeout) || opts.timeout < 1000) usage("--timeout must be >= 1000 (ms)");
  let base = String(opts.base);
  if (!base.startsWith("/")) base = "/" + base;
  if (!base.endsWith("/")) base += "/";
  opts.base = base;
  return opts;
}

// ------------------------------------------------------------ static server

function startServer(rootDir, base) {
  const rootReal = fs.realpathSync(rootDir);
  const server = http.createServer((req, res) => {
    serve(rootReal, base, req, res).catch((err) => {
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

async function serve(root, base, req, res) {
  if (req.method !== "GET" && req.method !== "HEAD") {
    return send(res, 405, "method not allowed\n", { Allow: "GET, HEAD" });
  }
  let url;
  try {
    url = new URL(req.url, "http://127.0.0.1");
  } catch {
    return send(res, 400, "bad request\n");
  }
  const rawPath = url.pathname; // still percent-encoded, dot segments resolved
  if (rawPath + "/" === base) {
    return send(res, 301, "moved\n", { Location: base + url.search });
  }
  if (!rawPath.startsWith(base)) return send(res, 404, "not found\n");
  let rel;
  try {
    rel = decodeURIComponent(rawPath.slice(base.length));
  } catch {
    return send(res, 400, "bad percent-encoding\n");
  }
  if (rel.includes("\0")) return send(res, 400, "bad path\n");
  const target = path.resolve(root, "." + path.sep + rel);
  if (!isInside(root, target)) return send(res, 403, "forbidden\n");

  let real;
  let st;
  try {
    real = await fsp.realpath(target);
    st = await fsp.stat(real);
  } catch {
    return send(res, 404, "not found\n");
  }
  if (!isInside(root, real)) return send(res, 403, "forbidden\n"); // symlink escaping the root

  if (st.isDirectory()) {
    if (!rawPath.endsWith("/")) {
      return send(res, 301, "moved\n", { Location: rawPath + "/" + url.search });
    }
    real = path.join(real, "index.html");
    try {
      st = await fsp.stat(real);
    } catch {
      return send(res, 404, "not found\n");
    }
  }
  if (!st.isFile()) return send(res, 404, "not found\n");

  const type = MIME[path.extname(real).toLowerCase()] || "application/octet-stream";
  res.writeHead(200, {
    "Content-Type": type,
    "Content-Length": st.size,
    "Cache-Control": "no-store",
  });
  if (req.method === "HEAD") return res.end();
  await new Promise((resolve, reject) => {
    const stream = fs.createReadStream(real);
    stream.on("error", reject);
    res.on("close", resolve);
    stream.pipe(res);
  });
}

function stopServer(s) {
  return new Promise((resolve) => {
    s.server.close(() => resolve());
    s.server.closeAllConnections();
  });
}

// ---------------------------------------------------------------- pages

function encodePath(rel) {
  return rel.split("/").map(encodeURIComponent).join("/");
}

async function discoverPages(root) {
  const found = [];
  async function walk(dir, relDir) {
    const entries = await fsp.readdir(dir, { withFileTypes: true });
    for (const e of entries) {
      if (e.name === "node_modules") continue;
      const rel = relDir ? `${relDir}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(path.join(dir, e.name), rel);
      else if (e.isFile() && e.name.toLowerCase().endsWith(".html")) found.push(rel);
    }
  }
  await walk(root, "");
  // index.html is opened as its directory URL, the way a visitor reaches it.
  return found
    .map((rel) => {
      const p = rel === "index.html" ? "" : rel.endsWith("/index.html") ? rel.slice(0, -"index.html".length) : rel;
      return encodePath(p);
    })
    .sort();
}

function normalizePageArg(p) {
  p = p.trim().replace(/^\/+/, "");
  // Accept both raw ("img/team photo.html") and encoded ("team%20photo.html").
  try {
    if (decodeURIComponent(p) !== p) return p;
  } catch {
    return p;
  }
  return encodePath(p);
}

function slugFor(pagePath) {
  let s = pagePath.replace(/^\/+/, "");
  if (s === "" || s.endsWith("/")) s += "index";
  try {
    s = decodeURIComponent(s);
  } catch {}
  return s.replace(/\.html?$/i, "").replace(/[^A-Za-z0-9._-]+/g, "_");
}

// ----------------------------------------------------------- normalization

// Message and URL text with each server's origin replaced, so that the two
// sides can be compared.
function makeNormalizer(origins) {
  return (text) => {
    let out = String(text);
    for (const o of origins) out = out.split(o).join("<origin>");
    return out;
  };
}

// For matching only: kiln's content hash (name.<8 base36>.ext) is removed so
// that "img/x.png" in the original matches "img/x.1a2b3c4d.png" in the build.
function matchKey(text) {
  return text.replace(/\.[0-9a-z]{8}(?=\.[A-Za-z0-9]+(?:[?#:\s\])'"]|$))/g, "");
}

// Entries of `built` that have no counterpart in `original` (multiset).
function newEntries(original, built) {
  const pool = new Map();
  for (const e of original) pool.set(matchKey(e), (pool.get(matchKey(e)) || 0) + 1);
  const out = [];
  for (const e of built) {
    const k = matchKey(e);
    const n = pool.get(k) || 0;
    if (n > 0) pool.set(k, n - 1);
    else out.push(e);
  }
  return out;
}

// ----------------------------------------------------------------- capture

async function capture(browser, origin, url, shotPath, deadline, normalize, register) {
  const t0 = performance.now();
  const context = await browser.newContext({
    viewport: VIEWPORT,
    deviceScaleFactor: 1,
    reducedMotion: "reduce",
    colorScheme: "light",
    locale: "en-US",
    timezoneId: "UTC",
    acceptDownloads: false,
    serviceWorkers: "block",
  });
  register(context);
  const consoleErrors = [];
  const failedRequests = [];
  const notes = [];
  try {
    // Nothing leaves this machine: any request to another origin is aborted
    // (and reported as a failed request, on both sides alike).
    await context.route("**/*", (route) => {
      const u = route.request().url();
      if (u.startsWith(origin + "/") || u.startsWith("data:") || u.startsWith("blob:")) {
        return route.continue();
      }
      return route.abort("blockedbyclient");
    });
    const page = await context.newPage();
    const remaining = () => Math.max(1, deadline - Date.now());
    page.setDefaultTimeout(remaining());
    page.on("dialog", (d) => d.dismiss().catch(() => {}));
    page.on("console", (msg) => {
      if (msg.type() !== "error") return;
      const loc = msg.location();
      const where = loc && loc.url ? ` [${normalize(loc.url)}]` : "";
      consoleErrors.push(normalize(msg.text()) + where);
    });
    page.on("pageerror", (err) => {
      const name = err && err.name ? err.name : "Error";
      const message = err && err.message !== undefined ? err.message : String(err);
      consoleErrors.push(normalize(`Uncaught ${name}: ${message}`));
    });
    page.on("requestfailed", (request) => {
      const f = request.failure();
      failedRequests.push(`${request.method()} ${normalize(request.url())} failed: ${f ? f.errorText : "unknown"}`);
    });
    page.on("response", (response) => {
      if (response.status() >= 400) {
        failedRequests.push(
          `${response.request().method()} ${normalize(response.url())} status ${response.status()}`,
        );
      }
    });

    await page.goto(url, { waitUntil: "load", timeout: remaining() });
    let networkIdle = true;
    await page
      .waitForLoadState("networkidle", { timeout: Math.min(NETWORK_IDLE_CAP_MS, remaining()) })
      .catch(() => {
        networkIdle = false;
        notes.push("networkidle not reached; continued after the cap");
      });
    // Fonts, images inserted after load (e.g. by a lazy module), two frames.
    await page.evaluate(async () => {
      await document.fonts.ready;
      await Promise.all(
        Array.from(document.images, (img) =>
          img.complete
            ? img.decode().catch(() => {})
            : new Promise((r) => {
                img.addEventListener("load", r, { once: true });
                img.addEventListener("error", r, { once: true });
              }),
        ),
      );
      await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    });
    const title = await page.title();
    // What each <img> shows (a <picture> picks one of its sources).
    const images = await page.evaluate(() => Array.from(document.images, (img) => img.currentSrc));
    await page.screenshot({
      path: shotPath,
      fullPage: true,
      animations: "disabled",
      caret: "hide",
      scale: "css",
      timeout: remaining(),
    });
    // Messages logged while the screenshot was taken belong to the page too.
    return { consoleErrors, failedRequests, title, networkIdle, notes, images, ms: Math.round(performance.now() - t0) };
  } finally {
    await context.close().catch(() => {});
  }
}

// ----------------------------------------------------------------- compare

function comparePngs(fileA, fileB, diffFile, tolerance = 0) {
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

// -------------------------------------------------------------------- main

function withTimeout(promise, ms, what) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

const log = (s) => process.stderr.write(s + "\n");

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  for (const k of ["original", "built"]) {
    const st = fs.statSync(opts[k], { throwIfNoEntry: false });
    if (!st || !st.isDirectory()) usage(`--${k} ${opts[k]}: not a directory`);
  }
  const outDir = path.resolve(opts.out);
  fs.mkdirSync(outDir, { recursive: true });

  const pages = opts.pages
    ? opts.pages.split(",").filter((p) => p.trim() !== "").map(normalizePageArg)
    : await discoverPages(path.resolve(opts.original));
  if (pages.length === 0) usage("no pages to compare");

  const result = { pages: [], ok: false };
  let browser = null;
  const servers = [];
  const openContexts = new Set();
  let finished = false;

  // Hard bound on the whole run, whatever hangs.
  const hardLimitMs = LAUNCH_TIMEOUT_MS + pages.length * (opts.timeout + CLOSE_TIMEOUT_MS) + 30_000;
  const hardTimer = setTimeout(() => {
    if (finished) return;
    log(`render-compare: gave up after ${hardLimitMs} ms`);
    result.ok = false;
    result.error = `run exceeded ${hardLimitMs} ms`;
    process.stdout.write(JSON.stringify(result, null, 2) + "\n");
    process.exit(1); // playwright kills the browser it launched on exit
  }, hardLimitMs);
  hardTimer.unref();
  for (const sig of ["SIGINT", "SIGTERM"]) {
    process.once(sig, () => {
      log(`render-compare: ${sig}`);
      process.exit(1);
    });
  }

  const runStart = performance.now();
  try {
    const orig = await startServer(opts.original, opts.base);
    servers.push(orig);
    const built = await startServer(opts.built, opts.base);
    servers.push(built);
    const normalize = makeNormalizer([orig.origin, built.origin]);
    log(`render-compare: original ${orig.root} at ${orig.origin}${opts.base}`);
    log(`render-compare: built    ${built.root} at ${built.origin}${opts.base}`);

    browser = await chromium.launch({
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: CHROMIUM_ARGS,
      timeout: LAUNCH_TIMEOUT_MS,
      // Playwright starts the browser with a fresh temporary user-data-dir and
      // removes it on close.
      handleSIGINT: false,
      handleSIGTERM: false,
      handleSIGHUP: false,
    });
    log(`render-compare: chromium ${browser.version()}, ${pages.length} page(s)`);

    const register = (ctx) => {
      openContexts.add(ctx);
      ctx.on("close", () => openContexts.delete(ctx));
    };

    for (const p of pages) {
      const slug = slugFor(p);
      const pagePath = opts.base + p;
      const shotA = path.join(outDir, `${slug}.original.png`);
      const shotB = path.join(outDir, `${slug}.built.png`);
      const diffPng = path.join(outDir, `${slug}.diff.png`);
      const entry = {
        path: pagePath,
        identical: false,
        diffPixels: null,
        width: null,
        height: null,
        newConsoleErrors: [],
        newFailedRequests: [],
        originalConsoleErrors: [],
      };
      const t0 = performance.now();
      const deadline = Date.now() + opts.timeout;
      try {
        await withTimeout(
          (async () => {
            const a = await capture(browser, orig.origin, orig.origin + pagePath, shotA, deadline, normalize, register);
            const b = await capture(browser, built.origin, built.origin + pagePath, shotB, deadline, normalize, register);
            const cmp = comparePngs(shotA, shotB, diffPng, opts.tolerance);
            Object.assign(entry, {
              identical: cmp.identical,
              diffPixels: cmp.diffPixels,
              maxChannelDiff: cmp.maxChannelDiff,
              width: cmp.width,
              height: cmp.height,
              newConsoleErrors: newEntries(a.consoleErrors, b.consoleErrors),
              newFailedRequests: newEntries(a.failedRequests, b.failedRequests),
              originalConsoleErrors: a.consoleErrors,
              originalFailedRequests: a.failedRequests,
              builtImages: b.images.map(normalize),
            });
            if (cmp.builtWidth !== cmp.width || cmp.builtHeight !== cmp.height) {
              entry.builtWidth = cmp.builtWidth;
              entry.builtHeight = cmp.builtHeight;
            }
            if (!cmp.identical) {
              entry.diffBox = cmp.diffBox;
              entry.diffRowBands = cmp.diffRowBands;
              entry.diffImage = diffPng;
            }
            if (a.title !== b.title) entry.titles = { original: a.title, built: b.title };
            const notes = [...a.notes.map((n) => `original: ${n}`), ...b.notes.map((n) => `built: ${n}`)];
            if (notes.length) entry.notes = notes;
            entry.timingMs = { original: a.ms, built: b.ms };
          })(),
          opts.timeout + 2_000, // capture() honours the deadline; this is the backstop
          `page ${pagePath}`,
        );
      } catch (err) {
        entry.identical = false;
        entry.error = String(err && err.message ? err.message : err).split("\n")[0];
        // Abort whatever is still loading for this page.
        await Promise.all([...openContexts].map((c) => withTimeout(c.close(), CLOSE_TIMEOUT_MS, "close").catch(() => {})));
      }
      entry.timingMs = { ...(entry.timingMs || {}), total: Math.round(performance.now() - t0) };
      result.pages.push(entry);
      const status = entry.error
        ? `ERROR ${entry.error}`
        : `${entry.identical ? "identical" : `DIFFERS (${entry.diffPixels} px)`}` +
          `${entry.newConsoleErrors.length ? `, ${entry.newConsoleErrors.length} new console error(s)` : ""}` +
          `${entry.newFailedRequests.length ? `, ${entry.newFailedRequests.length} new failed request(s)` : ""}`;
      log(`  ${pagePath}  ${status}  [${entry.timingMs.total} ms]`);
    }
    result.ok = result.pages.every(
      (e) => !e.error && e.identical && e.newConsoleErrors.length === 0 && e.newFailedRequests.length === 0,
    );
  } catch (err) {
    result.ok = false;
    result.error = String(err && err.message ? err.message : err).split("\n")[0];
    log(`render-compare: ${result.error}`);
  } finally {
    if (browser) await withTimeout(browser.close(), CLOSE_TIMEOUT_MS, "browser close").catch(() => {});
    await Promise.all(servers.map((s) => withTimeout(stopServer(s), CLOSE_TIMEOUT_MS, "server close").catch(() => {})));
  }
  result.totalMs = Math.round(performance.now() - runStart);
  finished = true;
  fs.writeFileSync(path.join(outDir, "report.json"), JSON.stringify(result, null, 2) + "\n");
  process.stdout.write(JSON.stringify(result, null, 2) + "\n");
  log(`render-compare: ${result.ok ? "ok" : "NOT ok"} in ${result.totalMs} ms; artifacts in ${outDir}`);
  process.exitCode = result.ok ? 0 : 1;
  // Anything left (a wedged socket, a stray timer) must not keep us alive.
  setTimeout(() => process.exit(process.exitCode), 2_000).unref();
}

// The static server and the comparison are importable (for tests of this
// harness); running the file is what starts a comparison.
export { startServer, stopServer, comparePngs, discoverPages, newEntries };

if (process.argv[1] && import.meta.url === pathToFileURL(fs.realpathSync(process.argv[1])).href) {
  main().catch((err) => {
    log(`render-compare: ${err && err.stack ? err.stack : err}`);
    process.exit(1);
  });
}
