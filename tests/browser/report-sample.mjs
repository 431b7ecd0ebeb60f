#!/usr/bin/env node
// Sample data for the HTML build report (src/report/template.html), for
// trying the page by hand and for tests/browser/report.mjs.
//
//   node report-sample.mjs (--manifest OUT/kiln-manifest.json | --synthetic N | --empty)
//                          [--budgets] [--diff] [--tricky] [--json DATA.json] [--html REPORT.html]
//                          [--template src/report/template.html] [--seed S]
//
// --manifest   converts a real manifest (its `files` map) into the report's data shape;
// --synthetic  makes N files in a nested folder tree (deterministic for a given --seed);
// --empty      a build with no files.
// --budgets    adds budget results; the biggest JS file (else the biggest file) fails its
//              limit, and "budget_fail" on stdout says how many failed in all;
// --diff       adds a comparison with a synthetic baseline (changed, added, removed files).
// --tricky     adds two files: one whose path holds markup ("</script><img …>", "<!--") and
//              an unknown kind, one empty (0 bytes, no variants).
// --html       fills the template the way kiln does: the placeholder __KILN_REPORT_DATA__
//              is replaced by the JSON with every "<" written as \u003c.
//
// stdout: {"files": N, "budgets": N, "budget_fail": N, "diff": bool, "json": path, "html": path}

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PLACEHOLDER = "__KILN_REPORT_DATA__";

function usage(msg) {
  if (msg) process.stderr.write(`report-sample: ${msg}\n`);
  process.stderr.write(
    "usage: node report-sample.mjs (--manifest PATH | --synthetic N | --empty) [--budgets] [--diff] [--tricky] " +
      "[--json OUT] [--html OUT] [--template PATH] [--seed S]\n",
  );
  process.exit(2);
}

function parseArgs(argv) {
  const flags = new Set(["budgets", "diff", "empty", "tricky"]);
  const valued = new Set(["manifest", "synthetic", "json", "html", "template", "seed"]);
  const o = { template: path.resolve(HERE, "../../src/report/template.html"), seed: "1" };
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z]+)(?:=(.*))?$/s.exec(argv[i]);
    if (!m) usage(`unexpected ${JSON.stringify(argv[i])}`);
    if (flags.has(m[1])) o[m[1]] = true;
    else if (valued.has(m[1])) o[m[1]] = m[2] !== undefined ? m[2] : argv[++i];
    else usage(`unknown option --${m[1]}`);
    if (o[m[1]] === undefined) usage(`--${m[1]} needs a value`);
  }
  if ([o.manifest, o.synthetic, o.empty].filter(Boolean).length !== 1) usage("give one of --manifest, --synthetic, --empty");
  return o;
}

// mulberry32: small deterministic PRNG.
function rng(seed) {
  let a = [...String(seed)].reduce((h, c) => (Math.imul(h, 31) + c.charCodeAt(0)) >>> 0, 0x9e3779b9);
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const served = (f, k) => (f[k] == null ? f.bytes_out : f[k]);

function fromManifest(file) {
  const m = JSON.parse(fs.readFileSync(file, "utf8"));
  const files = Object.entries(m.files || {}).map(([src, e]) => ({
    path: src,
    output: e.output,
    kind: e.kind,
    bytes_in: e.bytes_in,
    bytes_out: e.bytes_out,
    gzip: e.gzip ?? null,
    brotli: e.brotli ?? null,
  }));
  return { generator: m.generator || "kiln", output: path.resolve(path.dirname(file)), files };
}

const EXT_KIND = {
  js: "js", mjs: "js", css: "css", html: "html", svg: "svg", png: "png", jpg: "jpeg", webp: "webp",
  woff2: "font", json: "json", map: "sourcemap", txt: "text", xml: "xml", avif: "avif", gif: "gif",
};
const COMPRESSIBLE = new Set(["js", "css", "html", "svg", "json", "sourcemap", "text", "xml"]);
const MINIFIED = new Set(["js", "css", "html", "svg", "json"]);

function synthetic(n, seed) {
  const r = rng(seed);
  const pick = (a) => a[Math.floor(r() * a.length)];
  const word = () => pick(["app", "core", "vendor", "chart", "grid", "table", "icons", "auth", "search", "editor",
    "theme", "layout", "intl", "utils", "store", "router", "media", "forms", "maps", "player"]);
  const tops = [
    ["assets/js", ["js", "js", "js", "map"]],
    ["assets/css", ["css"]],
    ["assets/img", ["png", "jpg", "webp", "svg", "avif"]],
    ["assets/fonts", ["woff2"]],
    ["docs", ["html", "html", "png", "svg"]],
    ["blog", ["html", "jpg"]],
    ["data", ["json", "xml", "txt"]],
  ];
  const weights = [0.3, 0.08, 0.25, 0.02, 0.2, 0.1, 0.05];
  const files = [];
  const seen = new Set();
  for (let i = 0; files.length < n; i++) {
    let x = r(), t = 0;
    while (x > weights[t] && t < weights.length - 1) x -= weights[t++];
    const [top, exts] = tops[t];
    const depth = Math.floor(r() * 3);
    const dirs = [top];
    for (let d = 0; d < depth; d++) dirs.push(word() + (r() < 0.5 ? "" : "-" + Math.floor(r() * 40)));
    const ext = pick(exts);
    const p = `${dirs.join("/")}/${word()}-${i.toString(36)}.${ext}`;
    if (seen.has(p)) continue;
    seen.add(p);
    const kind = EXT_KIND[ext];
    // log-uniform sizes, 50 B .. ~600 kB, images and fonts larger
    const big = ["png", "jpeg", "webp", "avif", "font"].includes(kind) ? 2.2 : 1;
    const bytesIn = Math.round(Math.exp(4 + r() * 8.5) * big);
    const bytesOut = MINIFIED.has(kind) ? Math.round(bytesIn * (0.55 + r() * 0.35)) : bytesIn;
    const small = bytesOut < 256;
    const gzip = COMPRESSIBLE.has(kind) && !small ? Math.round(bytesOut * (0.25 + r() * 0.15)) : null;
    const brotli = gzip != null ? Math.round(gzip * (0.78 + r() * 0.12)) : null;
    const hash = Math.floor(r() * 36 ** 8).toString(36).padStart(8, "0");
    const output = kind === "html" ? p : p.replace(/\.([a-z0-9]+)$/, `.${hash}.$1`);
    files.push({ path: p, output, kind, bytes_in: bytesIn, bytes_out: bytesOut, gzip, brotli });
  }
  return { generator: "kiln 0.1.0", output: `/tmp/synthetic-${n}/out`, files };
}

function sizes(list) {
  const s = { files: 0, bytes_in: 0, bytes_out: 0, gzip: 0, brotli: 0 };
  for (const f of list) {
    s.files++;
    s.bytes_in += f.bytes_in;
    s.bytes_out += f.bytes_out;
    s.gzip += served(f, "gzip");
    s.brotli += served(f, "brotli");
  }
  return s;
}

function complete(base) {
  const files = base.files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const total = sizes(files);
  const byKind = {};
  for (const f of files) (byKind[f.kind] ||= []).push(f);
  const kinds = Object.fromEntries(Object.keys(byKind).sort().map((k) => [k, sizes(byKind[k])]));
  return {
    generator: base.generator,
    output: base.output,
    total,
    kinds,
    stages: [
      { stage: "minify", before: total.bytes_in, after: total.bytes_out },
      { stage: "gzip", before: total.bytes_out, after: total.gzip },
      { stage: "brotli", before: total.bytes_out, after: total.brotli },
    ],
    files,
    budgets: [],
    diff: null,
  };
}

function addBudgets(data) {
  const js = data.files.filter((f) => f.kind === "js").sort((a, b) => served(b, "brotli") - served(a, "brotli"));
  const pool = js.length ? js : data.files.slice().sort((a, b) => served(b, "brotli") - served(a, "brotli"));
  const b = [];
  if (pool.length) {
    const big = pool[0];
    const second = pool[1] ? served(pool[1], "brotli") : 0;
    const limit = Math.max(second, Math.floor(served(big, "brotli") * 0.9));
    const rule = js.length ? "js/**/*.js" : "**";
    for (const f of pool.slice(0, 3)) {
      const actual = served(f, "brotli");
      b.push({ rule, metric: "brotli", scope: "file", unit: "bytes", limit, actual, path: f.path, ok: actual <= limit });
    }
  }
  const css = data.kinds.css;
  b.push({
    rule: "kind=css", metric: "gzip", scope: "total", unit: "bytes", limit: 50000,
    actual: css ? css.gzip : 0, path: null, ok: (css ? css.gzip : 0) <= 50000,
  });
  b.push({ rule: "**", metric: "brotli", scope: "growth", unit: "percent", limit: 10.0, actual: 2.5, path: null, ok: true });
  b.push({
    rule: "**", metric: "raw", scope: "total", unit: "bytes", limit: data.total.bytes_out * 2,
    actual: data.total.bytes_out, path: null, ok: true,
  });
  data.budgets = b;
}

function addDiff(data, seed) {
  const r = rng(seed + "-diff");
  const triple = (f) => ({ raw: f.bytes_out, gzip: served(f, "gzip"), brotli: served(f, "brotli") });
  const oldFiles = [];
  const entries = [];
  for (const f of data.files) {
    const x = r();
    if (x < 0.04) {
      entries.push({ path: f.path, status: "added", old: null, new: triple(f) });
    } else if (x < 0.2) {
      const k = 0.75 + r() * 0.4;
      const o = { kind: f.kind, bytes_out: Math.round(f.bytes_out * k) };
      o.gzip = f.gzip == null ? null : Math.round(f.gzip * k);
      o.brotli = f.brotli == null ? null : Math.round(f.brotli * k);
      oldFiles.push(o);
      if (o.bytes_out !== f.bytes_out) entries.push({ path: f.path, status: "changed", old: triple(o), new: triple(f) });
    } else {
      oldFiles.push(f);
    }
  }
  const removedCount = Math.max(1, Math.round(data.files.length * 0.02));
  for (let i = 0; i < removedCount; i++) {
    const kind = ["js", "css", "png"][i % 3];
    const size = Math.round(200 + r() * 20000);
    const o = { kind, bytes_out: size, gzip: kind === "png" ? null : Math.round(size * 0.35), brotli: kind === "png" ? null : Math.round(size * 0.3) };
    oldFiles.push(o);
    entries.push({ path: `old/${kind}/removed-${i}.${kind}`, status: "removed", old: triple(o), new: null });
  }
  const agg = (list) => list.reduce((s, f) => {
    const t = triple(f);
    s.raw += t.raw; s.gzip += t.gzip; s.brotli += t.brotli;
    return s;
  }, { raw: 0, gzip: 0, brotli: 0 });
  const kinds = {};
  for (const k of new Set([...oldFiles, ...data.files].map((f) => f.kind))) {
    kinds[k] = { old: agg(oldFiles.filter((f) => f.kind === k)), new: agg(data.files.filter((f) => f.kind === k)) };
  }
  data.diff = {
    old: "s3://example-bucket/site (kiln-manifest.json)",
    new: "this build",
    total: { old: agg(oldFiles), new: agg(data.files) },
    kinds,
    files: entries,
  };
}

export function fillTemplate(template, data) {
  const count = template.split(PLACEHOLDER).length - 1;
  if (count !== 1) throw new Error(`template must contain ${PLACEHOLDER} exactly once (found ${count})`);
  return template.replace(PLACEHOLDER, () => JSON.stringify(data).replace(/</g, "\\u003c"));
}

const isMain = process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const o = parseArgs(process.argv.slice(2));
  let base;
  if (o.manifest) base = fromManifest(o.manifest);
  else if (o.empty) base = { generator: "kiln 0.1.0", output: "/tmp/empty/out", files: [] };
  else {
    const n = Number(o.synthetic);
    if (!Number.isInteger(n) || n < 0) usage("--synthetic needs a whole number");
    base = synthetic(n, o.seed);
  }
  if (o.tricky) {
    base.files.push(
      { path: "x/</script><img src=x onerror=alert(1)><!--.js", output: "x/<b>.js", kind: "odd<kind>", bytes_in: 900, bytes_out: 700, gzip: 400, brotli: 350 },
      { path: "empty.txt", output: "empty.txt", kind: "text", bytes_in: 0, bytes_out: 0, gzip: null, brotli: null },
    );
  }
  const data = complete(base);
  if (o.budgets) addBudgets(data);
  if (o.diff) addDiff(data, o.seed);
  if (o.json) fs.writeFileSync(o.json, JSON.stringify(data, null, 1) + "\n");
  if (o.html) fs.writeFileSync(o.html, fillTemplate(fs.readFileSync(o.template, "utf8"), data));
  if (!o.json && !o.html) process.stdout.write(JSON.stringify(data, null, 1) + "\n");
  else {
    process.stdout.write(JSON.stringify({
      files: data.files.length,
      budgets: data.budgets.length,
      budget_fail: data.budgets.filter((b) => !b.ok).length,
      diff: data.diff != null,
      json: o.json ? path.resolve(o.json) : null,
      html: o.html ? path.resolve(o.html) : null,
    }) + "\n");
  }
}
