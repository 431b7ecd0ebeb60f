#!/usr/bin/env node
// Self-test of framework-check.mjs on a real framework build: the harness must
// pass the site against an exact copy of itself and must catch deliberately
// broken copies.
//
//   node framework-check.selftest.mjs --dir SITE_DIR
//        (--sites SITES.json --name NAME | --site ENTRY.json | --site NAME)
//        [--out ARTIFACT_DIR] [--timeout MS] [--only v1,v2,...] [--keep]
//
// SITE_DIR is the framework's output (the "original"); the site entry is the one
// framework-check.mjs takes. Variants (each a copy of SITE_DIR in a temporary
// directory, checked with framework-check.mjs against SITE_DIR):
//   same        an exact copy: must be ok (exit 0), no problem, no regression.
//   markers     the hydration marker comments (<!--[-->, <!--]-->, <!---->,
//               <!--$-->, <!--/$-->, <!-- -->, …) removed from the <body> of every
//               listed page: must be NOT ok with a new console error/warning or
//               uncaught exception (the framework's hydration mismatch report).
//               Not applicable when no listed page has such comments.
//   whitespace  whitespace between tags inside <body> collapsed (what an HTML
//               minifier does wrongly when it ignores hydration): reported, not
//               asserted (a framework may well tolerate it; then the pages must
//               be identical and ok is right).
//   entry-js    the first same-site script the first page's HTML loads
//               (<script src>, <link rel=modulepreload>) renamed: must be NOT ok
//               with a new failed request on that page.
//   nav-chunk   the last script the first navigation loads after its click in
//               the original (as the `same` run's loadedAfterClick says), or when
//               the route was prefetched, the last script the `from` page loaded
//               at run time that its HTML does not name, renamed: that navigation
//               must fail (full load, target text missing, new failed request…).
//               Not applicable without navigation or when it loads no such script.
// The last line is "N passed, N failed" (not-applicable variants are skipped).
// Exit status: 0 when every applicable variant passed, 1 otherwise, 2 on usage errors.

import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { loadSite } from "./framework-check.mjs";
import { parseOptions } from "./lib.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const HARNESS = path.join(HERE, "framework-check.mjs");
const VARIANTS = ["same", "markers", "whitespace", "entry-js", "nav-chunk"];
const log = (s) => process.stderr.write(s + "\n");

function usage(msg) {
  if (msg) log(`framework-check.selftest: ${msg}`);
  log(
    "usage: node framework-check.selftest.mjs --dir SITE_DIR (--sites SITES.json --name NAME | --site ENTRY.json | --site NAME)\n" +
      "         [--out ARTIFACT_DIR] [--timeout MS] [--only same,markers,whitespace,entry-js,nav-chunk] [--keep]",
  );
  process.exit(2);
}

function parseArgs(argv) {
  const opts = parseOptions(
    argv,
    { valued: ["dir", "site", "sites", "name", "out", "timeout", "only"], flags: ["keep"], defaults: { keep: false } },
    usage,
  );
  if (!opts.dir) usage("--dir is required");
  if (!opts.site && !opts.name && !opts.sites) usage("--site or --sites/--name is required");
  const st = fs.statSync(opts.dir, { throwIfNoEntry: false });
  if (!st || !st.isDirectory()) usage(`--dir ${opts.dir}: not a directory`);
  opts.only = opts.only ? opts.only.split(",").map((s) => s.trim()).filter(Boolean) : VARIANTS;
  for (const v of opts.only) if (!VARIANTS.includes(v)) usage(`unknown variant ${v}`);
  return opts;
}

// ------------------------------------------------------------- site files

// The file a static host serves for a URL path (as framework-check's server does).
function fileForPath(root, urlPath) {
  let rel;
  try {
    rel = decodeURIComponent(urlPath.split(/[?#]/)[0]).replace(/^\/+/, "");
  } catch {
    return null;
  }
  const p = path.join(root, rel);
  const isFile = (f) => fs.statSync(f, { throwIfNoEntry: false })?.isFile();
  if (rel === "" || rel.endsWith("/")) return isFile(path.join(p, "index.html")) ? path.join(p, "index.html") : null;
  if (isFile(p)) return p;
  if (!path.extname(p) && isFile(p + ".html")) return p + ".html";
  if (isFile(path.join(p, "index.html"))) return path.join(p, "index.html");
  return null;
}

// Same-site script files an HTML file references (in document order):
// <script src>, <link rel=modulepreload|preload href=*.js>, <astro-island component-url>.
function scriptsOf(root, htmlFile, urlPath) {
  const html = fs.readFileSync(htmlFile, "utf8");
  const out = [];
  const base = new URL(urlPath, "http://site.invalid/");
  const tagRe = /<(script|link|astro-island)\b([^>]*)>/gi;
  for (const m of html.matchAll(tagRe)) {
    const attrs = m[2];
    const attr = (name) => {
      const a = new RegExp(`\\s${name}\\s*=\\s*(?:"([^"]*)"|'([^']*)'|([^\\s>]+))`, "i").exec(attrs);
      return a ? (a[1] ?? a[2] ?? a[3]) : null;
    };
    let ref = null;
    if (m[1].toLowerCase() === "script") ref = attr("src");
    else if (m[1].toLowerCase() === "astro-island") ref = attr("component-url");
    else if (/\b(modulepreload|preload)\b/i.test(attr("rel") || "") && /\.m?js(\?|#|$)/i.test(attr("href") || "")) ref = attr("href");
    if (!ref) continue;
    let u;
    try {
      u = new URL(ref.replace(/&amp;/g, "&"), base);
    } catch {
      continue;
    }
    if (u.origin !== base.origin) continue;
    const file = fileForPath(root, u.pathname);
    if (file && /\.m?js$/i.test(file) && !out.includes(file)) out.push(file);
  }
  return out;
}

function renameAside(file) {
  const renamed = file.replace(/(\.m?js)$/i, ".selftest-renamed$1");
  fs.renameSync(file, renamed);
  return renamed;
}

// Apply `fn` to the <body> part of an HTML file; whether it changed.
function editBody(file, fn) {
  const html = fs.readFileSync(file, "utf8");
  const i = html.search(/<body[\s>]/i);
  if (i < 0) return false;
  const body = html.slice(i);
  const edited = fn(body);
  if (edited === body) return false;
  fs.writeFileSync(file, html.slice(0, i) + edited);
  return true;
}

// Hydration marker comments: only brackets, $, /, !, ?, digits, dashes and
// spaces inside (Vue and Svelte fragments, React text separators and Suspense
// boundaries). Licence and other comments stay.
const MARKER_RE = /<!--([[\]$/!?\s\d-]*)-->/g;

// Collapse whitespace between tags, except inside pre/textarea/script/style.
function collapseWhitespace(body) {
  const parts = body.split(/(<(pre|textarea|script|style)\b[\s\S]*?<\/\2\s*>)/i);
  const out = [];
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    if (p === undefined) continue;
    if (/^<(pre|textarea|script|style)\b/i.test(p)) {
      out.push(p);
      i++; // skip the captured tag name
    } else out.push(p.replace(/>\s+</g, "><"));
  }
  return out.join("");
}

// ------------------------------------------------------------------ runner

function runHarness(args, timeoutMs) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [HARNESS, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    let partial = "";
    child.stderr.on("data", (d) => {
      stderr += d;
      const lines = (partial + d).split("\n");
      partial = lines.pop();
      for (const line of lines) process.stderr.write(`    | ${line}\n`);
    });
    child.stderr.on("end", () => partial && process.stderr.write(`    | ${partial}\n`));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      let report = null;
      try {
        report = JSON.parse(stdout);
      } catch {}
      resolve({ code, signal, report, stderr });
    });
  });
}

const hydrationEvidence = (e) =>
  !e.textSame ||
  !e.structureSame ||
  (e.ssrWordsNewlyMissing || []).length > 0 ||
  (e.originalHydrated === true && e.hydrated !== true) ||
  (e.ssrElementsReplaced && e.ssrElementsReplaced.built > e.ssrElementsReplaced.original);
const hasMessages = (e) => e.newConsoleErrors.length + e.newConsoleWarnings.length + e.newPageErrors.length > 0;

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  let site;
  try {
    site = loadSite({ site: opts.site, sites: opts.sites, name: opts.name });
  } catch (err) {
    usage(err.message);
  }
  const siteArgs = opts.site ? ["--site", opts.site] : [];
  if (opts.sites) siteArgs.push("--sites", opts.sites);
  if (opts.name) siteArgs.push("--name", opts.name);
  if (opts.timeout) siteArgs.push("--timeout", String(opts.timeout));
  const entry = site.entry;
  const original = path.resolve(opts.dir);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-fc-selftest-"));
  const outDir = path.resolve(opts.out || path.join(work, "artifacts"));
  fs.mkdirSync(outDir, { recursive: true });
  const items = entry.pages.length + (entry.navigation || []).length + (entry.interaction || []).length;
  const childTimeout = 120_000 + items * 2 * (Number(opts.timeout) || 30_000) * 1.5;

  const results = [];
  let baseline = null; // the `same` variant's report
  const copy = (name) => {
    const dir = path.join(work, name);
    fs.cpSync(original, dir, { recursive: true, verbatimSymlinks: true });
    return dir;
  };
  const pageFiles = (dir) =>
    entry.pages.map((p) => ({ p, file: fileForPath(dir, p) })).filter((x) => x.file && /\.html?$/i.test(x.file));

  // Each variant: build the copy (or say why it does not apply), run, judge.
  const variants = {
    same: () => ({ dir: copy("same"), what: "exact copy" }),
    markers: () => {
      const dir = copy("markers");
      let n = 0;
      const touched = [];
      for (const { p, file } of pageFiles(dir)) {
        let count = 0;
        if (editBody(file, (b) => b.replace(MARKER_RE, () => (count++, "")))) touched.push(p);
        n += count;
      }
      if (n === 0) return { skip: "no hydration marker comments in the listed pages" };
      return { dir, what: `${n} marker comment(s) removed from ${touched.join(", ")}` };
    },
    whitespace: () => {
      const dir = copy("whitespace");
      const touched = pageFiles(dir).filter(({ file }) => editBody(file, collapseWhitespace)).map((x) => x.p);
      if (touched.length === 0) return { skip: "no whitespace between tags in the listed pages" };
      return { dir, what: `whitespace between tags collapsed in ${touched.join(", ")}` };
    },
    "entry-js": () => {
      const dir = copy("entry-js");
      const first = entry.pages[0];
      const file = fileForPath(dir, first);
      if (!file) return { skip: `no file for ${first}` };
      const scripts = scriptsOf(dir, file, first);
      if (scripts.length === 0) return { skip: `${first} references no same-site script` };
      const renamed = renameAside(scripts[0]);
      return { dir, what: `${path.relative(dir, scripts[0])} renamed to ${path.basename(renamed)}`, page: first };
    },
    "nav-chunk": async () => {
      const step = (entry.navigation || [])[0];
      if (!step) return { skip: "no navigation in the site entry" };
      // What the first navigation loads in the original, from a baseline run
      // (the `same` variant's, or one made now).
      let base = baseline;
      if (!base) {
        log("  baseline run (exact copy) to see what the navigation loads");
        base = (await runHarness(["--original", original, "--built", copy("baseline"), "--out", path.join(outDir, "baseline"), ...siteArgs], childTimeout)).report;
      }
      const nav0 = base && base.navigation && base.navigation[0] ? base.navigation[0].original : {};
      const dir = copy("nav-chunk");
      const scriptFiles = (lines) => {
        const out = [];
        for (const line of lines || []) {
          const m = /^script (\/[^?#]*)/.exec(line);
          const file = m && fileForPath(dir, m[1]);
          if (file && /\.m?js$/i.test(file) && !out.includes(file)) out.push(file);
        }
        return out;
      };
      // Scripts the click loads; else (the route was prefetched, as Next does)
      // scripts the `from` page loaded at run time, not named in its HTML.
      let scripts = scriptFiles(nav0.loadedAfterClick);
      let how = "loaded by the click";
      if (scripts.length === 0) {
        const fromFile = fileForPath(dir, step.from);
        const inHtml = new Set(fromFile ? scriptsOf(dir, fromFile, step.from) : []);
        scripts = scriptFiles(nav0.loadedBeforeClick).filter((f) => !inHtml.has(f));
        how = "prefetched by the from page";
      }
      if (scripts.length === 0) {
        const loaded = [...(nav0.loadedBeforeClick || []), ...(nav0.loadedAfterClick || [])];
        return { skip: `the first navigation loads no script at run time (${loaded.length} request(s): ${loaded.slice(0, 4).join(", ")})` };
      }
      // The most specific one: the last loaded (the page's own chunk).
      const target = scripts[scripts.length - 1];
      const renamed = renameAside(target);
      return { dir, what: `${path.relative(dir, target)} (${how}) renamed to ${path.basename(renamed)}` };
    },
  };

  const judge = {
    same: (r, code) => {
      if (code !== 0 || !r.ok) return `expected ok, got ${r.ok} (exit ${code}): ${[...r.problems, ...r.regressions].slice(0, 5).join(" | ") || r.error}`;
      return null;
    },
    markers: (r, code) => {
      if (r.ok || code !== 1) return `expected NOT ok, got ok=${r.ok} exit ${code}`;
      // The framework's mismatch report, or what a silent repair left behind
      // (Svelte 5 re-mounts without a word when a start marker is missing, and
      // removes the nodes after a missing end marker).
      const caught = r.pages.filter((e) => hasMessages(e) || hydrationEvidence(e)).map((e) => e.path);
      if (caught.length === 0) return `NOT ok, but no page shows a hydration message or a changed DOM: ${r.regressions.slice(0, 3).join(" | ")}`;
      return null;
    },
    whitespace: () => null,
    "entry-js": (r, code, v) => {
      if (r.ok || code !== 1) return `expected NOT ok, got ok=${r.ok} exit ${code}`;
      const e = r.pages.find((x) => x.path === v.page);
      if (!e || e.newFailedRequests.length === 0) return `NOT ok, but ${v.page} has no new failed request`;
      return null;
    },
    "nav-chunk": (r, code) => {
      if (r.ok || code !== 1) return `expected NOT ok, got ok=${r.ok} exit ${code}`;
      const e = r.navigation[0];
      if (!e || e.ok) return "NOT ok, but the first navigation passed";
      return null;
    },
  };

  const t0 = performance.now();
  try {
    for (const name of opts.only) {
      const vt0 = performance.now();
      log(`framework-check.selftest: ${name}`);
      let v;
      try {
        v = await variants[name]();
      } catch (err) {
        results.push({ variant: name, passed: false, detail: `could not build the variant: ${err.message}` });
        continue;
      }
      if (v.skip) {
        log(`  not applicable: ${v.skip}`);
        results.push({ variant: name, passed: null, detail: `not applicable: ${v.skip}` });
        continue;
      }
      log(`  ${v.what}`);
      const run = await runHarness(
        ["--original", original, "--built", v.dir, "--out", path.join(outDir, name), ...siteArgs],
        childTimeout,
      );
      const r = run.report;
      if (name === "same") baseline = r;
      let verdict;
      if (!r) verdict = `no JSON report (exit ${run.code}${run.signal ? ", " + run.signal : ""})`;
      else if (run.code === 2) verdict = "usage error";
      else verdict = judge[name](r, run.code, v);
      const res = {
        variant: name,
        passed: verdict === null,
        what: v.what,
        harnessOk: r ? r.ok : null,
        exit: run.code,
        detail: verdict || (r && !r.ok ? r.regressions.slice(0, 6) : "ok"),
        ms: Math.round(performance.now() - vt0),
      };
      if (name === "whitespace" && r) {
        res.note = r.ok
          ? "the framework tolerates collapsed whitespace (identical pages, no mismatch)"
          : `caught: ${[...r.problems, ...r.regressions].slice(0, 4).join(" | ")}`;
      }
      if (r && r.problems.length) res.problems = r.problems;
      results.push(res);
      log(`  ${res.passed ? "PASS" : "FAIL"} ${name}: ${typeof res.detail === "string" ? res.detail : res.detail.join(" | ")}  [${res.ms} ms]`);
    }
  } finally {
    if (!opts.keep) fs.rmSync(path.join(work), { recursive: true, force: true, maxRetries: 2 });
  }
  const passed = results.filter((r) => r.passed === true).length;
  const failed = results.filter((r) => r.passed === false).length;
  const skipped = results.filter((r) => r.passed === null).length;
  const summary = { site: site.name, dir: original, variants: results, passed, failed, skipped, totalMs: Math.round(performance.now() - t0) };
  const same = results.find((r) => r.variant === "same");
  if (same && same.passed === false) {
    summary.note = "the exact copy is NOT ok: the site or the harness is flaky, so what the broken copies report proves little";
    log(`framework-check.selftest: ${summary.note}`);
  }
  process.stdout.write(JSON.stringify(summary, null, 2) + "\n");
  process.stdout.write(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}\n`);
  process.exitCode = failed === 0 && passed > 0 ? 0 : 1;
}

main().catch((err) => {
  log(`framework-check.selftest: ${err && err.stack ? err.stack : err}`);
  process.exit(1);
});
