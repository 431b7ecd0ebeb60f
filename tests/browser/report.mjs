#!/usr/bin/env node
// The HTML build report (OUT/kiln-report.html) in headless Chromium.
//
//   node report.mjs --report PATH.html --out ARTIFACT_DIR
//                   [--expect-files N] [--expect-budget-fail N] [--expect-diff] [--timeout MS]
//
// The report is opened from disk (file://). It must make no request at all
// besides its own document (any other request is blocked and reported), log
// no console error and throw nothing. Then:
//   - the page reaches body[data-ready="1"] and reads its embedded data;
//   - #files[data-total] equals the number of files in the data (and N with --expect-files);
//   - the treemap draws at least one .tile when some file has output bytes;
//     clicking a folder zooms in and the root breadcrumb zooms back out;
//   - the first page of the table shows min(total, page size) tr.file-row;
//   - clicking the "brotli" header sorts descending (first row is the largest served
//     brotli size of all files), clicking again ascending, with aria-sort to match;
//   - typing a path into the filter narrows the rows to exactly the matching files;
//   - #budgets lists as many failing budgets as the data (and N with --expect-budget-fail);
//   - #diff is visible iff the data has a diff (and must be with --expect-diff).
// Screenshots (full page, before any interaction): ARTIFACT_DIR/report.png (light)
// and ARTIFACT_DIR/report-dark.png (prefers-color-scheme: dark).
//
// stdout: one JSON object {"ok": bool, "problems": [...], ...}; progress on stderr.
// Exit status: 0 when ok, 1 when not, 2 on usage errors.

import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { chromium } from "playwright-core";
import { CHROMIUM_ARGS, CHROMIUM_PATH, CONTEXT_OPTIONS } from "./lib.mjs";

// lib.mjs's flags without --disable-quic, as this harness has always run (it
// opens a local file and lets no request through).
const REPORT_ARGS = CHROMIUM_ARGS.filter((a) => a !== "--disable-quic");
const MAX_TILES = 2600; // the template caps drawn rectangles at 2500 (+ a folder or two)

function usage(msg) {
  if (msg) process.stderr.write(`report: ${msg}\n`);
  process.stderr.write(
    "usage: node report.mjs --report PATH.html --out ARTIFACT_DIR " +
      "[--expect-files N] [--expect-budget-fail N] [--expect-diff] [--timeout MS]\n",
  );
  process.exit(2);
}

function parseArgs(argv) {
  const o = { timeout: 60_000, expectDiff: false };
  const valued = { report: "report", out: "out", "expect-files": "expectFiles", "expect-budget-fail": "expectBudgetFail", timeout: "timeout" };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "-h" || arg === "--help") usage();
    const m = /^--([a-z-]+)(?:=(.*))?$/s.exec(arg);
    if (!m) usage(`unexpected argument ${JSON.stringify(arg)}`);
    if (m[1] === "expect-diff") {
      o.expectDiff = true;
      continue;
    }
    const key = valued[m[1]];
    if (!key) usage(`unknown option --${m[1]}`);
    let v = m[2];
    if (v === undefined) {
      if (i + 1 >= argv.length) usage(`--${m[1]} needs a value`);
      v = argv[++i];
    }
    o[key] = v;
  }
  if (!o.report || !o.out) usage("--report and --out are required");
  for (const k of ["expectFiles", "expectBudgetFail"]) {
    if (o[k] === undefined) continue;
    o[k] = Number(o[k]);
    if (!Number.isInteger(o[k]) || o[k] < 0) usage(`--${k === "expectFiles" ? "expect-files" : "expect-budget-fail"} needs a whole number`);
  }
  o.timeout = Number(o.timeout);
  if (!Number.isFinite(o.timeout) || o.timeout < 1000) usage("--timeout must be >= 1000 (ms)");
  return o;
}

const log = (msg) => process.stderr.write(`report: ${msg}\n`);

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const reportPath = path.resolve(opts.report);
  if (!fs.statSync(reportPath, { throwIfNoEntry: false })?.isFile()) usage(`no such file: ${reportPath}`);
  fs.mkdirSync(opts.out, { recursive: true });
  const reportUrl = pathToFileURL(reportPath).href;

  const result = {
    ok: false,
    problems: [],
    report: reportPath,
    ready_ms: null,
    files_total: null,
    rows_shown: null,
    tiles: null,
    budgets: null,
    budgets_failed: null,
    diff_visible: null,
    requests: [],
    console_errors: [],
    screenshots: [],
    checks: [],
  };
  const problem = (m) => result.problems.push(m);
  const passed = (m) => result.checks.push(m);

  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: REPORT_ARGS });
  const guard = setTimeout(() => {
    problem(`timed out after ${opts.timeout} ms`);
    finish(result);
    process.exit(1);
  }, opts.timeout);
  try {
    const context = await browser.newContext({ ...CONTEXT_OPTIONS });
    // The report may load nothing: every request other than the document itself
    // is recorded, and anything that is not a local file is aborted.
    await context.route("**/*", (route) => {
      const u = route.request().url();
      if (u.startsWith("file:") || u.startsWith("data:")) return route.continue();
      return route.abort("blockedbyclient");
    });
    const page = await context.newPage();
    page.setDefaultTimeout(Math.min(20_000, opts.timeout));
    page.on("request", (req) => {
      const u = req.url();
      if (u === reportUrl || u.startsWith("data:")) return;
      result.requests.push(`${req.method()} ${u.length > 200 ? u.slice(0, 200) + "…" : u}`);
    });
    page.on("console", (msg) => {
      if (msg.type() === "error") result.console_errors.push(msg.text());
    });
    page.on("pageerror", (err) => result.console_errors.push(`Uncaught ${err?.name || "Error"}: ${err?.message ?? err}`));
    page.on("dialog", (d) => d.dismiss().catch(() => {}));

    log(`opening ${reportUrl}`);
    await page.goto(reportUrl, { waitUntil: "load" });
    const became = await page
      .waitForSelector("body[data-ready]", { state: "attached", timeout: 15_000 })
      .then(() => true, () => false);
    if (!became) {
      problem("the page never set body[data-ready] (its script failed or hung)");
      return result;
    }
    const ready = await page.evaluate(() => ({
      state: document.body.getAttribute("data-ready"),
      ms: Number(document.body.getAttribute("data-ready-ms")),
    }));
    result.ready_ms = ready.ms;
    if (ready.state !== "1") {
      problem(`the page did not render its data (data-ready=${JSON.stringify(ready.state)})`);
      return result;
    }
    passed(`ready after ${ready.ms} ms`);

    // What the page embeds, as the test's own reference.
    const data = await page.evaluate(() => {
      const d = JSON.parse(document.getElementById("kiln-data").textContent);
      const files = (d.files || []).map((f) => ({
        path: String(f.path),
        brotli: f.brotli == null ? f.bytes_out : f.brotli,
        bytes_out: f.bytes_out,
      }));
      return {
        files,
        budgets: (d.budgets || []).length,
        budgetsFailed: (d.budgets || []).filter((b) => !b.ok).length,
        diff: d.diff != null,
      };
    });

    // Screenshots of the initial state, light and dark.
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    const shot = async (name) => {
      const file = path.join(opts.out, name);
      await page.screenshot({ path: file, fullPage: true, animations: "disabled", caret: "hide", scale: "css" });
      result.screenshots.push(path.resolve(file));
    };
    await shot("report.png");
    await page.emulateMedia({ colorScheme: "dark" });
    await shot("report-dark.png");
    await page.emulateMedia({ colorScheme: "light" });

    // ---- totals
    const table = page.locator("#files");
    const attr = async (name) => Number(await table.getAttribute(name));
    const total = await attr("data-total");
    result.files_total = total;
    if (total !== data.files.length) problem(`#files[data-total] is ${total}, the data has ${data.files.length} files`);
    if (opts.expectFiles !== undefined && total !== opts.expectFiles) problem(`expected ${opts.expectFiles} files, the report has ${total}`);
    else if (opts.expectFiles !== undefined) passed(`${total} files`);

    // ---- treemap
    const tiles = await page.locator("#treemap .tile").count();
    result.tiles = tiles;
    const drawable = data.files.some((f) => f.bytes_out > 0);
    if (drawable && tiles < 1) problem("the treemap draws no .tile");
    if (!drawable && tiles > 0) problem(`the treemap draws ${tiles} tiles for a build without output bytes`);
    if (tiles > MAX_TILES) problem(`the treemap draws ${tiles} tiles (cap ${MAX_TILES})`);
    if (tiles >= 1) passed(`treemap: ${tiles} tiles`);
    const fileTile = page.locator("#treemap .tile.file").first();
    if (await fileTile.count()) {
      await fileTile.hover({ position: { x: 2, y: 2 } });
      const tip = await page.evaluate(() => {
        const t = document.getElementById("tip");
        return t.hidden ? "" : t.textContent;
      });
      if (!tip) problem("hovering a treemap tile shows no tooltip");
      else passed("tooltip on hover");
      await page.mouse.move(0, 0);
    }
    const dirTile = page.locator("#treemap .tile.dir:not(.collapsed)").first();
    if (await dirTile.count()) {
      const depth = async () => Number(await page.locator("#crumbs").getAttribute("data-depth"));
      await dirTile.click({ position: { x: 4, y: 4 } });
      const zoomed = await depth();
      const zoomTiles = await page.locator("#treemap .tile").count();
      if (zoomed < 1) problem("clicking a folder in the treemap does not zoom in");
      else if (zoomTiles < 1) problem("the zoomed-in treemap draws no .tile");
      await page.locator("#crumbs button").first().click();
      if ((await depth()) !== 0) problem("the root breadcrumb does not zoom back out");
      else if (zoomed >= 1) passed("treemap zoom in and out");
    }

    // ---- table: first page
    const pageSize = await attr("data-page-size");
    const rowCount = () => page.locator("#files tbody tr.file-row").count();
    const shown = await rowCount();
    result.rows_shown = shown;
    if (shown !== Math.min(total, pageSize)) problem(`the table shows ${shown} rows, expected ${Math.min(total, pageSize)}`);

    // ---- sorting by brotli
    if (total >= 2) {
      const th = page.locator('#files thead th[data-key="brotli"]');
      const col = await th.evaluate((el) => el.cellIndex);
      const values = () =>
        page.$$eval("#files tbody tr.file-row", (rows, i) => rows.map((r) => Number(r.cells[i].getAttribute("data-v"))), col);
      const max = Math.max(...data.files.map((f) => f.brotli));
      const min = Math.min(...data.files.map((f) => f.brotli));
      await th.locator("button").click();
      let v = await values();
      let sort = await th.getAttribute("aria-sort");
      if (sort !== "descending") problem(`after one click the brotli header has aria-sort=${sort}, expected descending`);
      if (!(v[0] >= v[1])) problem(`sorted by brotli (desc), first row ${v[0]} < second row ${v[1]}`);
      if (v.some((x, i) => i > 0 && x > v[i - 1])) problem("sorted by brotli (desc), the rows are not in order");
      if (v[0] !== max) problem(`sorted by brotli (desc), first row ${v[0]} is not the largest (${max})`);
      await th.locator("button").click();
      v = await values();
      sort = await th.getAttribute("aria-sort");
      if (sort !== "ascending") problem(`after two clicks the brotli header has aria-sort=${sort}, expected ascending`);
      if (!(v[0] <= v[1])) problem(`sorted by brotli (asc), first row ${v[0]} > second row ${v[1]}`);
      if (v[0] !== min) problem(`sorted by brotli (asc), first row ${v[0]} is not the smallest (${min})`);
      const others = await page.$$eval("#files thead th[aria-sort]", (ths) => ths.length);
      if (others !== 1) problem(`${others} headers carry aria-sort, expected 1`);
      passed("sort by brotli, both directions");
    }

    // ---- filtering
    if (total >= 2) {
      // A whole path taken from the middle of the data: matches it (and any path containing it).
      const q = data.files[Math.floor(data.files.length / 2)].path;
      const want = data.files.filter((f) => f.path.toLowerCase().includes(q.toLowerCase())).length;
      await page.fill("#filter", q);
      await page
        .waitForFunction((n) => document.getElementById("files").getAttribute("data-matched") === String(n), want, { timeout: 5000 })
        .catch(() => {});
      const matched = await attr("data-matched");
      const rows = await page.$$eval("#files tbody tr.file-row", (rs) => rs.map((r) => r.getAttribute("data-path")));
      if (matched !== want) problem(`filter ${JSON.stringify(q)}: ${matched} files match, expected ${want}`);
      if (rows.length !== Math.min(want, pageSize)) problem(`filter ${JSON.stringify(q)}: ${rows.length} rows shown, expected ${Math.min(want, pageSize)}`);
      if (rows.some((p) => !p.toLowerCase().includes(q.toLowerCase()))) problem(`filter ${JSON.stringify(q)}: a row does not contain it`);
      if (!(matched < total) && want < total) problem("the filter does not narrow the rows");
      await page.fill("#filter", "");
      await page
        .waitForFunction((n) => document.getElementById("files").getAttribute("data-matched") === String(n), total, { timeout: 5000 })
        .catch(() => problem("clearing the filter does not restore all rows"));
      if (!result.problems.some((p) => p.startsWith("filter"))) passed(`filter narrows ${total} → ${matched}`);
    }

    // ---- budgets
    const budgets = page.locator("#budgets");
    result.budgets = await page.locator("#budgets tr.budget-row").count();
    result.budgets_failed = await page.locator("#budgets tr.budget-row.fail").count();
    const failAttr = Number(await budgets.getAttribute("data-failed"));
    if (result.budgets !== data.budgets) problem(`#budgets lists ${result.budgets} budgets, the data has ${data.budgets}`);
    if (result.budgets_failed !== data.budgetsFailed || failAttr !== data.budgetsFailed)
      problem(`#budgets shows ${result.budgets_failed} failing (data-failed=${failAttr}), the data has ${data.budgetsFailed}`);
    if (opts.expectBudgetFail !== undefined && result.budgets_failed !== opts.expectBudgetFail)
      problem(`expected ${opts.expectBudgetFail} failing budgets, the report shows ${result.budgets_failed}`);
    if (data.budgets === 0 && !/no budgets/i.test(await budgets.innerText())) problem("#budgets does not say that there are no budgets");
    if (!result.problems.some((p) => p.includes("budget"))) passed(`budgets: ${result.budgets_failed} of ${result.budgets} failing`);

    // ---- diff
    result.diff_visible = await page.locator("#diff").isVisible();
    if (opts.expectDiff && !result.diff_visible) problem("expected the #diff section, it is not visible");
    if (result.diff_visible !== data.diff) problem(`#diff visible=${result.diff_visible} but the data has ${data.diff ? "a" : "no"} diff`);
    if (result.diff_visible) {
      const rows = await page.locator("#diff tbody tr").count();
      if (rows < 3) problem(`the #diff section has ${rows} table rows (expected totals at least)`);
      else passed("diff section");
    }

    // Anything logged while interacting counts too.
    await page.evaluate(() => new Promise((r) => setTimeout(r, 100)));
    await context.close();
    return result;
  } finally {
    clearTimeout(guard);
    await browser.close().catch(() => {});
  }
}

function finish(result) {
  for (const r of result.requests) result.problems.push(`request made: ${r}`);
  for (const e of result.console_errors) result.problems.push(`console: ${e}`);
  result.ok = result.problems.length === 0;
  process.stdout.write(JSON.stringify(result, null, 2) + "\n");
}

main().then(
  (result) => {
    finish(result);
    process.exit(result.ok ? 0 : 1);
  },
  (err) => {
    process.stdout.write(JSON.stringify({ ok: false, problems: [`error: ${err?.stack || err}`] }, null, 2) + "\n");
    process.exit(1);
  },
);
