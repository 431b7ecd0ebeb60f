// Live reload in a real browser: open a page served by `kiln watch --serve`,
// edit the source tree, and watch what the page does.
//
//   node live-reload.mjs --url http://127.0.0.1:PORT/ --src SRC_DIR
//
// The page must be the `small_site` of tests/integration/watch.rs: index.html
// links css/site.css and loads js/app.js. Steps:
//   1. a CSS edit swaps the stylesheet in place (no reload: a marker set on
//      `window` survives) and the new colour applies;
//   2. an HTML edit reloads the page (the marker is gone, the new text shows);
//   3. a JS edit reloads the page and the new script runs;
//   4. a syntax error shows the diagnostics overlay; the fix removes it.
// Prints one JSON object: { steps: [{ name, ok, detail }] }.

import fs from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, arg, i, all) => {
    if (arg.startsWith("--")) pairs.push([arg.slice(2), all[i + 1]]);
    return pairs;
  }, []),
);
const CHROMIUM_PATH = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const WAIT = 60_000; // a hang guard, not a timing assertion

const browser = await chromium.launch({
  executablePath: CHROMIUM_PATH,
  headless: true,
  args: ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run"],
});
const steps = [];
const step = async (name, body) => {
  try {
    const detail = await body();
    steps.push({ name, ok: true, detail });
  } catch (e) {
    steps.push({ name, ok: false, detail: String(e && e.stack ? e.stack : e) });
  }
};
const write = (rel, text) => fs.writeFileSync(path.join(args.src, rel), text);
const read = (rel) => fs.readFileSync(path.join(args.src, rel), "utf8");

try {
  const page = await browser.newPage();
  const connected = () =>
    page.waitForFunction(() => window.__kilnLive === "open", null, { timeout: WAIT });
  await page.goto(args.url);
  await connected();

  await step("css edit swaps the stylesheet without a reload", async () => {
    await page.evaluate(() => {
      window.__marker = "kept";
    });
    write("css/site.css", "body { background: rgb(1, 2, 3); }\n.note { color: rgb(200, 0, 0); }\n");
    await page.waitForFunction(
      () => getComputedStyle(document.body).backgroundColor === "rgb(1, 2, 3)",
      null,
      { timeout: WAIT },
    );
    const state = await page.evaluate(() => ({
      marker: window.__marker,
      note: getComputedStyle(document.querySelector(".note")).color,
      sheets: [...document.querySelectorAll('link[rel="stylesheet"]')].map((l) => l.getAttribute("href")),
    }));
    if (state.marker !== "kept") throw new Error("the page reloaded: " + JSON.stringify(state));
    if (state.note !== "rgb(200, 0, 0)") throw new Error("rule not applied: " + JSON.stringify(state));
    // The old sheet is removed once the new one has loaded.
    await page.waitForFunction(
      () => document.querySelectorAll('link[rel="stylesheet"]').length === 1,
      null,
      { timeout: WAIT },
    );
    return state;
  });

  await step("html edit reloads the page", async () => {
    await page.evaluate(() => {
      window.__marker = "kept";
    });
    write("index.html", read("index.html").replace(/>[^<]*<\/h1>/, ">Edited heading</h1>"));
    await page.waitForFunction(
      () => document.getElementById("title")?.textContent === "Edited heading",
      null,
      { timeout: WAIT },
    );
    const marker = await page.evaluate(() => window.__marker);
    if (marker !== undefined) throw new Error("the heading changed without a reload");
    await connected();
    return { marker: marker ?? null };
  });

  await step("js edit reloads and runs the new script", async () => {
    write("js/app.js", "document.getElementById('title').dataset.ran = 'second';\n");
    await page.waitForFunction(
      () => document.getElementById("title")?.dataset.ran === "second",
      null,
      { timeout: WAIT },
    );
    await connected();
    return { ran: "second" };
  });

  await step("a syntax error shows the overlay and the fix clears it", async () => {
    write("js/app.js", "document.getElementById('title').dataset.ran = ;\n");
    const text = await page
      .waitForFunction(
        () => document.getElementById("__kiln-diagnostics")?.textContent,
        null,
        { timeout: WAIT },
      )
      .then((h) => h.jsonValue());
    if (!text.includes("app.js:1:")) throw new Error("overlay without the file: " + text);
    write("js/app.js", "document.getElementById('title').dataset.ran = 'fixed';\n");
    await page.waitForFunction(
      () =>
        !document.getElementById("__kiln-diagnostics") &&
        document.getElementById("title")?.dataset.ran === "fixed",
      null,
      { timeout: WAIT },
    );
    return { overlay: text.split("\n")[0] };
  });
} finally {
  await browser.close();
}
console.log(JSON.stringify({ steps }, null, 2));
