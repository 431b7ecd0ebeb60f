// Deep links of a single-page app, opened in a real browser against any
// server (kiln serve, nginx, Caddy): each URL must answer 200, run the app and
// show the text its client-side router renders there.
//
//   node deep-link.mjs --origin http://127.0.0.1:PORT --check '[{"path": "/x", "text": "…"}]'
//
// Prints one JSON object: { links: [{ path, status, url, ok, text, errors }] },
// where `text` is body.innerText once the expected text appeared (or the wait
// gave up) and `errors` lists console errors, uncaught exceptions and failed
// requests of the page.

import { launchChromium, blockOtherOrigins, CONTEXT_OPTIONS, parseOptions, requireOptions } from "./lib.mjs";

const usage = (message) => {
  if (message) process.stderr.write(`deep-link.mjs: ${message}\n`);
  process.stderr.write("usage: node deep-link.mjs --origin URL --check JSON\n");
  process.exit(2);
};
const opts = parseOptions(process.argv.slice(2), { valued: ["origin", "check"] }, usage);
requireOptions(opts, ["origin", "check"], usage);
const checks = JSON.parse(opts.check);
const WAIT = 30_000; // a hang guard, not a timing assertion

const browser = await launchChromium();
const links = [];
try {
  for (const { path, text } of checks) {
    const context = await browser.newContext(CONTEXT_OPTIONS);
    await blockOtherOrigins(context, opts.origin);
    const page = await context.newPage();
    const errors = [];
    page.on("console", (m) => m.type() === "error" && errors.push(`console: ${m.text()}`));
    page.on("pageerror", (e) => errors.push(`exception: ${e.message}`));
    page.on("requestfailed", (r) => errors.push(`failed: ${r.url()}`));
    page.on("response", (r) => r.status() >= 400 && errors.push(`${r.status()}: ${r.url()}`));
    let status = 0;
    let ok = false;
    try {
      const response = await page.goto(opts.origin + path, { waitUntil: "load", timeout: WAIT });
      status = response ? response.status() : 0;
      await page.waitForFunction((t) => document.body && document.body.innerText.includes(t), text, {
        timeout: WAIT,
      });
      ok = true;
    } catch (e) {
      errors.push(`wait: ${String(e.message || e).split("\n")[0]}`);
    }
    const body = await page.evaluate(() => (document.body ? document.body.innerText : "")).catch(() => "");
    links.push({ path, status, url: page.url(), ok, text: body.slice(0, 2000), errors });
    await context.close();
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify({ links }) + "\n");
