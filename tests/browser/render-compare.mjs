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
// screenshotted full-page, and the two PNGs are compared pixel by pixel. The
// server, the Chromium setup and the comparison live in lib.mjs (shared with
// framework-check.mjs).
//
// stdout: one JSON object {"pages":[...], "ok": bool}; progress goes to stderr.
// Exit status: 0 when ok, 1 when a page differs / errs / times out, 2 on usage
// errors.

import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import { performance } from "node:perf_hooks";
import {
  CLOSE_TIMEOUT_MS,
  CONTEXT_OPTIONS,
  LAUNCH_TIMEOUT_MS,
  blockOtherOrigins,
  checkTimeout,
  checkTolerance,
  closeAll,
  comparePngs,
  contextTracker,
  emitReport,
  exitWhenDone,
  firstLine,
  guardRun,
  isMain,
  launchChromium,
  makeNormalizer,
  parseOptions,
  requireOptions,
  slugFor,
  startServer as serveDir,
  stopServer,
  unmatched,
  withTimeout,
} from "./lib.mjs";

const DEFAULT_PAGE_TIMEOUT_MS = 20_000;
const NETWORK_IDLE_CAP_MS = 5_000; // networkidle is best effort within this

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
  const opts = parseOptions(
    argv,
    {
      valued: ["original", "built", "out", "pages", "base", "timeout", "tolerance"],
      defaults: { base: "/", timeout: DEFAULT_PAGE_TIMEOUT_MS, tolerance: 0 },
    },
    usage,
  );
  requireOptions(opts, ["original", "built", "out"], usage);
  // Decoders round alpha premultiplication differently, hence --tolerance.
  checkTolerance(opts, usage);
  checkTimeout(opts, usage);
  let base = String(opts.base);
  if (!base.startsWith("/")) base = "/" + base;
  if (!base.endsWith("/")) base += "/";
  opts.base = base;
  return opts;
}

// ------------------------------------------------------------ static server

// rootDir under the URL prefix base: a directory URL serves its index.html,
// nothing else is rewritten, and a miss is a plain 404 (lib.mjs's server with
// its defaults).
function startServer(rootDir, base = "/") {
  return serveDir(rootDir, { base });
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

// ----------------------------------------------------------- normalization

// For matching only: kiln's content hash (name.<8 base36>.ext) is removed so
// that "img/x.png" in the original matches "img/x.1a2b3c4d.png" in the build.
function matchKey(text) {
  return text.replace(/\.[0-9a-z]{8}(?=\.[A-Za-z0-9]+(?:[?#:\s\])'"]|$))/g, "");
}

// Entries of `built` that have no counterpart in `original` (multiset).
function newEntries(original, built) {
  return unmatched(original, built, matchKey);
}

// ----------------------------------------------------------------- capture

async function capture(browser, origin, url, shotPath, deadline, normalize, register) {
  const t0 = performance.now();
  const context = await browser.newContext({ ...CONTEXT_OPTIONS });
  register(context);
  const consoleErrors = [];
  const failedRequests = [];
  const notes = [];
  try {
    // Nothing leaves this machine: any request to another origin is aborted
    // (and reported as a failed request, on both sides alike).
    await blockOtherOrigins(context, origin);
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

// -------------------------------------------------------------------- main

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
  const contexts = contextTracker();
  let finished = false;

  // Hard bound on the whole run, whatever hangs.
  const hardLimitMs = LAUNCH_TIMEOUT_MS + pages.length * (opts.timeout + CLOSE_TIMEOUT_MS) + 30_000;
  guardRun("render-compare", hardLimitMs, result, () => finished);

  const runStart = performance.now();
  try {
    const orig = await startServer(opts.original, opts.base);
    servers.push(orig);
    const built = await startServer(opts.built, opts.base);
    servers.push(built);
    const normalize = makeNormalizer([orig.origin, built.origin]);
    log(`render-compare: original ${orig.root} at ${orig.origin}${opts.base}`);
    log(`render-compare: built    ${built.root} at ${built.origin}${opts.base}`);

    browser = await launchChromium();
    log(`render-compare: chromium ${browser.version()}, ${pages.length} page(s)`);
    const register = contexts.register;

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
        entry.error = firstLine(err);
        // Abort whatever is still loading for this page.
        await contexts.closeAll();
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
    result.error = firstLine(err);
    log(`render-compare: ${result.error}`);
  } finally {
    await closeAll(browser, servers);
  }
  result.totalMs = Math.round(performance.now() - runStart);
  finished = true;
  emitReport(outDir, result);
  log(`render-compare: ${result.ok ? "ok" : "NOT ok"} in ${result.totalMs} ms; artifacts in ${outDir}`);
  exitWhenDone(result.ok);
}

// The static server and the comparison are importable (for tests of this
// harness); running the file is what starts a comparison.
export { startServer, stopServer, comparePngs, discoverPages, newEntries };

if (isMain(import.meta.url)) {
  main().catch((err) => {
    log(`render-compare: ${err && err.stack ? err.stack : err}`);
    process.exit(1);
  });
}
