#!/usr/bin/env node
// Framework fidelity check: a kiln-built framework site (Vite, VitePress,
// Astro, SvelteKit, Next…) must render pixel-identically to the original,
// hydrate without mismatch, keep its server-rendered content after hydration,
// and navigate client-side exactly as the original does.
//
//   node framework-check.mjs --original DIR_A --built DIR_B --out ARTIFACT_DIR
//        (--sites SITES.json --name NAME | --site ENTRY.json | --site NAME)
//        [--timeout MS] [--tolerance N]
//
//   --sites FILE --name NAME  the entry NAME of a sites file ({"name": {...}, ...});
//   --site FILE               a file holding one entry ({"framework": ..., "pages": ...}),
//                             or a sites file with one entry (or with --name);
//   --site NAME               NAME in --sites, by default fixtures/frameworks/sites.json;
//   --timeout MS              cap for one side of one item (page, step), default 30000;
//   --tolerance N             largest per-channel difference still counted as the same
//                             pixel (default 0), as in render-compare.mjs.
//
// A site entry: {"framework", "hydrates", "pages": ["/", ...], "ready"?: SELECTOR,
//   "navigation"?: [{"from", "click", "expect_path", "expect_text"?, "client_side"?}],
//   "interaction"?: [{"page", "click", "expect_text"}]}.
// `client_side: false` declares a navigation that is a full page load in the
// original too (Sphinx, Astro without view transitions); by default every
// navigation must be client-side in the original. expect_path is compared with
// location.pathname, plus location.hash when it has a `#` ("/#/about").
//
// Both directories are served at `/` (lib.mjs's server: node:http, 127.0.0.1,
// ephemeral ports) the way static hosts do: a directory URL serves its
// index.html, `/a/b` serves `a/b.html` when that exists (before redirecting to a
// directory `a/b/`), and anything missing answers 404 with `404.html` when there
// is one. Requests that leave 127.0.0.1 are aborted (they fail on both sides
// alike, so they are no new failure). Every item runs in a fresh browser context
// per side: viewport 1280x800, UTC, en-US, light, reduced motion, service workers
// blocked, the caret hidden (caret-color: transparent, added just before each
// screenshot). The server, the Chromium setup and the screenshot comparison are
// lib.mjs's, shared with render-compare.mjs.
//
// For each side:
//   pages        open, wait for `load`, `networkidle` (best effort, capped), the
//                `ready` selector (capped), the framework's hydration probe (polled
//                until true, capped), network quiet, fonts/images/finite animations,
//                two animation frames + 100 ms; then record body.innerText, the
//                element structure of <body> (count and tag names in document
//                order, hashed), the hydration probe, ssrTextPresent (up to 20
//                distinct 6+-letter words of the raw HTML's <body> text, fetched
//                from the same server, all found in the DOM's text after
//                hydration), ssrElementsReplaced (elements of <body> as parsed,
//                snapshotted before any deferred/module script ran, that are no
//                longer connected after hydration), console errors and warnings,
//                uncaught exceptions, failed requests (requestfailed other than
//                net::ERR_ABORTED, and responses with status >= 400), and a
//                full-page screenshot.
//   navigation   open `from`, wait as above, set window.__kilnMarker, click the
//                first match of `click` (scrolled into view), wait for the URL to
//                reach expect_path, wait again (load, ready, probe, quiet, settle),
//                look for expect_text; clientSide is whether the marker survived
//                (no full load). loadedBeforeClick / loadedAfterClick list what the
//                step fetched (same-origin documents, scripts, fetch/xhr).
//   interaction  open `page`, wait, click, wait for expect_text in body.innerText.
// Screenshots after a click are taken with the pointer moved to (0,0) and the
// page scrolled to the top.
//
// Hydration probes (hydrated: true/false, null where the framework has none),
// each checked on real builds (fixtures/frameworks/built/*) and on copies broken
// on purpose:
//   vue/vitepress/nuxt  an element among #app, #__nuxt, [data-v-app] carries
//                       __vue_app__ (set by app.mount(), hydrating or not);
//   react               a __reactContainer$* key on the root (or document) and a
//                       __reactFiber$* key on some element of <body>;
//   next                window.next, a React root (document for the App Router,
//                       #__next for the Pages Router) with fibers in <body>, and
//                       self.__next_f (App Router) / window.__NEXT_DATA__ (Pages);
//   sveltekit           window.__sveltekit_*, history.state['sveltekit:history'] and
//                       history.scrollRestoration === 'manual' (kit sets it in
//                       _start_router(), which runs only after _hydrate() resolved);
//   svelte              window.__svelte (the runtime) and Svelte's own keys on DOM
//                       nodes (Symbol(events)/Symbol(text)…, or __click/__t… in older 5.x);
//   astro               every <astro-island> due to hydrate at load (client:load,
//                       idle, only, and visible ones inside the viewport) has lost its
//                       `ssr` attribute (astro-island removes it after hydrating); null
//                       when the page has no such island.
// A probe says the framework started; whether it hydrated cleanly is told by the
// rest: mismatches are console errors/warnings or uncaught exceptions (Vue
// "Hydration completed but contains mismatches.", React #418/#423/#425 or
// "Hydration failed", Svelte "hydration_mismatch"/"Failed to hydrate"); a
// framework that silently threw the server markup away and rendered anew (Svelte
// 5 does when a start marker is missing) shows in ssrElementsReplaced; lost or
// changed content in ssrTextPresent, textSame, structureSame and the screenshot.
//
// Verdict (built against original), all needed for ok:
//   pages        identical screenshots; no new console errors, warnings,
//                uncaught exceptions or failed requests (matched as a multiset,
//                with both origins, kiln's `.<hash>` in file names, stack frames,
//                line:column and query strings neutralised); the same status;
//                hydrated whenever the original is; textSame; structureSame; no
//                SSR word missing that the original keeps (ssrWordsNewlyMissing);
//                no more replaced server elements than the original.
//   navigation   client-side whenever the original is, expect_path reached,
//                expect_text found, identical screenshots, same innerText, no new
//                messages or failed requests, hydrated whenever the original is.
//   interaction  expect_text found, identical screenshots, no new messages.
// Where the ORIGINAL fails, the fixture or this harness is wrong: page status
// >= 400, hydration probe false though `hydrates`, more than a quarter of its SSR
// words gone after hydration, no SSR words at all though `hydrates`, ready
// selector missing, click target missing, navigation not client-side (unless
// client_side: false), expect_path / expect_text not reached, a timeout. Those
// are listed in `problems` and make ok false too, so a broken corpus never
// passes. A side that timed out or crashed is an error, never a pass.
//
// stdout: one JSON object {"site", "framework", "probe", "original", "built",
// "pages": [...], "navigation": [...], "interaction": [...], "problems": [...],
// "regressions": [...], "ok", "totalMs"}; each entry has the verdict fields, its
// own "failures"/"problems"/"ok", and both sides' facts under "original" and
// "built". The same goes to ARTIFACT_DIR/report.json. Screenshots:
// ARTIFACT_DIR/{page,nav,interact}-<slug>.{original,built}.png, and .diff.png
// where they differ. Progress on stderr. Exit status: 0 when ok, 1 when not, 2 on
// usage errors.
//
// How this harness was checked (framework-check.selftest.mjs re-checks it on any
// site dir): the original against an exact copy of itself must be ok (and was,
// for every site of fixtures/frameworks, with no flaky pixel); against a copy
// whose pages lost their hydration marker comments (<!--[-->, <!--]-->, <!---->,
// <!--$-->, <!-- -->…) it must be NOT ok through the framework's mismatch report
// or a changed/replaced DOM (VitePress: Vue's mismatch error; Next: React #418;
// SvelteKit: removed nodes; Astro's Svelte islands: silent re-mount, caught by
// ssrElementsReplaced); against a copy where a script the first page loads is
// renamed, it must report new failed requests; against a copy where the last
// script the first navigation loads is renamed, that navigation must fail.

import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import {
  CHROMIUM_ARGS,
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
  slugFor as pathSlug,
  startServer as serveDir,
  stopServer,
  unmatched,
  withTimeout,
} from "./lib.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const DEFAULT_SITES = path.resolve(HERE, "../../fixtures/frameworks/sites.json");

// The flags of render-compare.mjs (lib.mjs's CHROMIUM_ARGS), plus
// --disable-partial-raster: with partial raster, Chromium re-rasterises only
// invalidated rects, and the anti-aliased edges of rounded boxes then depend on
// the paint history (1-5 levels off at random between two loads of the same
// page); --disable-skia-runtime-opts keeps Skia off CPU-specific fast paths.
const CHROMIUM_FLAGS = [...CHROMIUM_ARGS, "--disable-partial-raster", "--disable-skia-runtime-opts"];
const DEFAULT_TIMEOUT_MS = 30_000; // one side of one item
const NETWORK_IDLE_CAP_MS = 5_000; // networkidle / network quiet are best effort within this
const QUIET_MS = 300; // no request in flight for this long = network quiet
const HYDRATION_WAIT_MS = 5_000; // the probe is polled this long for `true`
const READY_WAIT_MS = 10_000; // the ready selector (at most half of what is left)
const TEXT_WAIT_MS = 5_000; // expect_text is polled this long
const SETTLE_MS = 100;
const SSR_WORDS = 20;
const SSR_MISSING_TOLERATED = 0.25; // share of the original's words it may drop itself
const MAX_MESSAGE = 600; // characters kept of one console message
const CARET_CSS = "*{caret-color:transparent !important}";

const log = (s) => process.stderr.write(s + "\n");

// ---------------------------------------------------------------- arguments

class UsageError extends Error {}

function usage(msg) {
  if (msg) process.stderr.write(`framework-check: ${msg}\n`);
  process.stderr.write(
    "usage: node framework-check.mjs --original DIR_A --built DIR_B --out ARTIFACT_DIR\n" +
      "         (--sites SITES.json --name NAME | --site ENTRY.json | --site NAME)\n" +
      "         [--timeout MS] [--tolerance N]\n",
  );
  process.exit(2);
}

function parseArgs(argv) {
  const opts = parseOptions(
    argv,
    {
      valued: ["original", "built", "out", "site", "sites", "name", "timeout", "tolerance"],
      defaults: { timeout: DEFAULT_TIMEOUT_MS, tolerance: 0 },
    },
    usage,
  );
  requireOptions(opts, ["original", "built", "out"], usage);
  if (!opts.site && !opts.name && !opts.sites) usage("--site or --sites/--name is required");
  checkTimeout(opts, usage);
  checkTolerance(opts, usage);
  return opts;
}

function readJson(file) {
  let text;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    throw new UsageError(`${file}: ${err.message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${file}: not JSON: ${err.message}`);
  }
}

const isEntry = (v) => v && typeof v === "object" && !Array.isArray(v) && Array.isArray(v.pages);

// The site entry and its name, from --site / --sites / --name.
function loadSite(opts) {
  let entry;
  let name = opts.name;
  const fromMap = (map, file) => {
    if (!map || typeof map !== "object" || Array.isArray(map)) throw new UsageError(`${file}: not a JSON object`);
    if (!name) {
      const keys = Object.keys(map);
      if (keys.length !== 1) throw new UsageError(`${file} has ${keys.length} entries: say which with --name`);
      name = keys[0];
    }
    if (!Object.hasOwn(map, name)) {
      throw new UsageError(`${file}: no entry ${JSON.stringify(name)} (has ${Object.keys(map).join(", ") || "none"})`);
    }
    return map[name];
  };
  if (opts.site && fs.existsSync(opts.site) && fs.statSync(opts.site).isFile()) {
    const data = readJson(opts.site);
    if (isEntry(data)) {
      entry = data;
      name = name || data.name || path.basename(opts.site).replace(/\.json$/i, "");
    } else entry = fromMap(data, opts.site);
  } else {
    if (opts.site && opts.name && opts.site !== opts.name) throw new UsageError("--site NAME and --name disagree");
    name = opts.site || opts.name;
    const file = opts.sites || DEFAULT_SITES;
    entry = fromMap(readJson(file), file);
  }
  validateEntry(name, entry);
  return { name, entry };
}

function validateEntry(name, e) {
  const bad = (msg) => {
    throw new UsageError(`site ${JSON.stringify(name)}: ${msg}`);
  };
  if (!isEntry(e)) bad("an entry needs a `pages` array");
  if (e.pages.length === 0) bad("`pages` is empty");
  const isPath = (p) => typeof p === "string" && p.startsWith("/");
  for (const p of e.pages) if (!isPath(p)) bad(`page ${JSON.stringify(p)} must be a string starting with /`);
  if (e.framework !== undefined && typeof e.framework !== "string") bad("`framework` must be a string");
  if (e.ready !== undefined && (typeof e.ready !== "string" || !e.ready)) bad("`ready` must be a selector string");
  for (const [i, n] of (e.navigation || []).entries()) {
    if (!n || !isPath(n.from) || typeof n.click !== "string" || !isPath(n.expect_path)) {
      bad(`navigation[${i}] needs from (/path), click (selector) and expect_path (/path)`);
    }
    if (n.expect_text !== undefined && typeof n.expect_text !== "string") bad(`navigation[${i}].expect_text must be a string`);
    if (n.client_side !== undefined && typeof n.client_side !== "boolean") bad(`navigation[${i}].client_side must be a boolean`);
  }
  for (const [i, n] of (e.interaction || []).entries()) {
    if (!n || !isPath(n.page) || typeof n.click !== "string" || typeof n.expect_text !== "string") {
      bad(`interaction[${i}] needs page (/path), click (selector) and expect_text (string)`);
    }
  }
  if (e.navigation !== undefined && !Array.isArray(e.navigation)) bad("`navigation` must be an array");
  if (e.interaction !== undefined && !Array.isArray(e.interaction)) bad("`interaction` must be an array");
}

// Which hydration probe a framework name gets (null: none).
function probeKind(framework) {
  const f = String(framework || "").toLowerCase();
  if (f.includes("sveltekit") || f.includes("svelte-kit")) return "sveltekit";
  if (f.includes("svelte")) return "svelte";
  if (f.includes("next")) return "next";
  if (f.includes("astro")) return "astro";
  if (f.includes("vitepress") || f.includes("vue") || f.includes("nuxt")) return "vue";
  if (f.includes("react") || f.includes("remix") || f.includes("gatsby")) return "react";
  return null;
}

// ------------------------------------------------------------ static server

// rootDir at `/` the way static hosts do (lib.mjs's server with cleanUrls and
// notFoundPage): `/a/b` serves `a/b.html` when that exists, a miss answers 404
// with `404.html` when there is one.
function startServer(rootDir) {
  return serveDir(rootDir, { cleanUrls: true, notFoundPage: true });
}

// ----------------------------------------------------------- normalization

// For matching a built message to an original one: kiln's content hash
// (name.<8 chars>.ext), stack frames and line:column positions (minified code
// moves) and query strings are neutralised.
function matchKey(text) {
  return String(text)
    .replace(/\n\s+at [^\n]*/g, "") // stack frames: minified names and positions move
    .replace(/\.[0-9a-z]{8}(?=\.[A-Za-z0-9]+(?:[?#:\s\])'"]|$))/g, "")
    .replace(/(\.(?:m?js|cjs|css|html?|json|txt))\?[^\s"')\]]*/gi, "$1?…")
    .replace(/(\.(?:m?js|cjs|css|html?)(?:\?…)?):\d+(?::\d+)?/gi, "$1:<pos>")
    .replace(/\b(line|column|col) \d+/gi, "$1 <n>");
}

// Entries of `built` that have no counterpart in `original` (multiset).
function newEntries(original, built) {
  return unmatched(original, built, matchKey);
}

const slugFor = (p) => pathSlug(p).slice(0, 80);

// -------------------------------------------------------------- SSR words

const ENTITIES = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", nbsp: " " };

// Text of the <body> of raw HTML, roughly: no script/style/template/noscript,
// no comments, tags as spaces, common entities decoded.
function rawBodyText(html) {
  const i = html.search(/<body[\s>]/i);
  let s = i >= 0 ? html.slice(i) : html;
  s = s
    .replace(/<!--[\s\S]*?-->/g, " ")
    .replace(/<(script|style|template|noscript|textarea)\b[\s\S]*?<\/\1\s*>/gi, " ")
    .replace(/<[^>]*>/g, " ");
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (m, e) => {
    if (e[0] === "#") {
      const cp = e[1] === "x" || e[1] === "X" ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      try {
        return String.fromCodePoint(cp);
      } catch {
        return " ";
      }
    }
    return ENTITIES[e.toLowerCase()] ?? " ";
  });
}

// Up to n distinct words (6+ letters) spread evenly over the page.
function ssrWords(html, n = SSR_WORDS) {
  const seen = new Set();
  for (const m of rawBodyText(html).matchAll(/\p{L}{6,}/gu)) seen.add(m[0]);
  const all = [...seen];
  if (all.length <= n) return all;
  const out = [];
  for (let k = 0; k < n; k++) out.push(all[Math.floor((k * all.length) / n)]);
  return out;
}

async function fetchText(url, ms) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), ms);
  try {
    const res = await fetch(url, { signal: ctl.signal, redirect: "follow" });
    return { status: res.status, text: await res.text() };
  } finally {
    clearTimeout(timer);
  }
}

// ----------------------------------------------------------- in-page code

// Evaluated in the page: { hydrated: true|false|null, detail }.
function hydrationProbe(kind) {
  const keysOf = (o) => {
    try {
      return Object.keys(o);
    } catch {
      return [];
    }
  };
  const hasKey = (o, prefix) => !!o && keysOf(o).some((k) => k.startsWith(prefix));
  const desc = (el) =>
    el === document ? "document" : el.tagName.toLowerCase() + (el.id ? "#" + el.id : "");
  const bodyEls = () => (document.body ? Array.from(document.body.getElementsByTagName("*")) : []);
  const reactRoots = () => {
    const roots = [];
    if (hasKey(document, "__reactContainer$")) roots.push("document");
    for (const el of document.getElementsByTagName("*")) if (hasKey(el, "__reactContainer$")) roots.push(desc(el));
    return roots;
  };
  const fibers = () => bodyEls().filter((el) => hasKey(el, "__reactFiber$")).length;

  switch (kind) {
    case "vue": {
      const cands = [document.getElementById("app"), document.getElementById("__nuxt"), ...document.querySelectorAll("[data-v-app]")];
      const app = cands.find((el) => el && el.__vue_app__);
      return { hydrated: !!app, detail: app ? `__vue_app__ on ${desc(app)}` : "no #app/#__nuxt/[data-v-app] carries __vue_app__" };
    }
    case "react": {
      const roots = reactRoots();
      const n = fibers();
      return { hydrated: roots.length > 0 && n > 0, detail: `react roots: ${roots.join(", ") || "none"}; ${n} element(s) with fibers` };
    }
    case "next": {
      const nx = typeof window.next === "object" && window.next !== null ? window.next : null;
      const appRouter = !!(nx && nx.appDir) || Array.isArray(self.__next_f);
      const pagesRouter = !appRouter && typeof window.__NEXT_DATA__ === "object";
      const roots = reactRoots();
      const n = fibers();
      const routerData = appRouter ? Array.isArray(self.__next_f) : pagesRouter;
      return {
        hydrated: !!nx && routerData && roots.length > 0 && n > 0,
        detail:
          `window.next ${nx ? "v" + nx.version : "missing"}; router ${appRouter ? "app" : pagesRouter ? "pages" : "unknown"}; ` +
          `${appRouter ? "__next_f " + (Array.isArray(self.__next_f) ? "present" : "missing") + "; " : ""}` +
          `react roots: ${roots.join(", ") || "none"}; ${n} element(s) with fibers`,
      };
    }
    case "sveltekit": {
      const kit = Object.keys(window).filter((k) => k.startsWith("__sveltekit_"));
      const hist = !!(history.state && typeof history.state === "object" && "sveltekit:history" in history.state);
      const started = history.scrollRestoration === "manual";
      return {
        hydrated: kit.length > 0 && hist && started,
        detail: `${kit.join(",") || "no __sveltekit_*"}; history.state sveltekit:history ${hist}; router started (scrollRestoration manual) ${started}`,
      };
    }
    case "svelte": {
      const runtime = typeof window.__svelte === "object" && window.__svelte !== null;
      const svelteSym = new Set(["events", "text", "attributes", "class", "style"]);
      const svelteKey = /^__(click|input|change|submit|keydown|keyup|pointerdown|pointerup|t|root|attributes|className|style|events)$/;
      let marked = 0;
      const visit = (node) => {
        if (
          Object.getOwnPropertySymbols(node).some((s) => svelteSym.has(s.description)) ||
          keysOf(node).some((k) => svelteKey.test(k))
        ) {
          marked++;
        }
        for (const c of node.childNodes) visit(c);
      };
      if (document.body) visit(document.body);
      return { hydrated: runtime && marked > 0, detail: `window.__svelte ${runtime}; ${marked} node(s) with Svelte keys` };
    }
    case "astro": {
      const islands = Array.from(document.querySelectorAll("astro-island"));
      if (islands.length === 0) return { hydrated: null, detail: "no astro-island" };
      const inViewport = (el) => {
        const rects = [el, ...el.children].map((c) => c.getBoundingClientRect()).filter((r) => r.width || r.height);
        return rects.some((r) => r.bottom > 0 && r.top < innerHeight && r.right > 0 && r.left < innerWidth);
      };
      const due = islands.filter((el) => {
        const c = el.getAttribute("client");
        if (c === "media") return false;
        if (c === "visible") return inViewport(el);
        return true;
      });
      const pending = due.filter((el) => el.hasAttribute("ssr"));
      const what = (el) => `${el.getAttribute("component-export") || "island"}(${el.getAttribute("client")}) ${el.getAttribute("component-url") || ""}`;
      if (due.length === 0) return { hydrated: null, detail: `${islands.length} island(s), none due at load` };
      return {
        hydrated: pending.length === 0,
        detail: `${due.length - pending.length}/${due.length} due island(s) hydrated` + (pending.length ? `; still ssr: ${pending.slice(0, 5).map(what).join("; ")}` : ""),
      };
    }
    default:
      return { hydrated: null, detail: "no probe for this framework" };
  }
}

// Init script: the elements of <body> as the server sent them, taken when
// parsing ends (readyState "interactive"), before deferred and module scripts
// run, i.e. before any framework hydrates. A framework that throws server
// markup away and renders anew (Svelte 5 does so silently when its start
// marker is missing) leaves these elements disconnected.
function snapshotServerElements() {
  if (window !== window.top) return;
  document.addEventListener("readystatechange", () => {
    if (document.readyState !== "interactive" || Object.hasOwn(window, "__kilnServerElements")) return;
    const els = document.body ? Array.from(document.body.getElementsByTagName("*")) : [];
    Object.defineProperty(window, "__kilnServerElements", { value: els, enumerable: false });
  });
}

// Evaluated in the page: how many of those elements are gone.
function serverElementsReplaced() {
  const els = window.__kilnServerElements;
  if (!els) return null;
  const gone = els.filter((el) => !el.isConnected);
  const desc = (el) =>
    el.localName +
    (el.id ? "#" + el.id : "") +
    (typeof el.className === "string" && el.className.trim() ? "." + el.className.trim().split(/\s+/).slice(0, 2).join(".") : "") +
    (el.textContent ? ` "${el.textContent.trim().replace(/\s+/g, " ").slice(0, 40)}"` : "");
  // The outermost replaced elements only.
  const outer = gone.filter((el) => !gone.includes(el.parentElement));
  return { total: els.length, replaced: gone.length, sample: outer.slice(0, 5).map(desc) };
}

// Evaluated in the page: the facts compared between the two sides.
function domFacts() {
  const body = document.body;
  const tags = body ? Array.from(body.getElementsByTagName("*"), (e) => e.localName) : [];
  const parts = [];
  const walk = (n) => {
    if (n.nodeType === 3) parts.push(n.nodeValue);
    else if (n.nodeType === 1) {
      const t = n.localName;
      if (t === "script" || t === "style" || t === "template" || t === "noscript") return;
      for (const c of n.childNodes) walk(c);
    }
  };
  if (body) walk(body);
  return {
    innerText: body ? body.innerText : "",
    domText: parts.join(" "),
    tags,
    title: document.title,
    url: location.href,
  };
}

// ----------------------------------------------------------------- helpers

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const squash = (s) => String(s).replace(/\s+/g, " ").trim();
const sha1 = (s) => crypto.createHash("sha1").update(s).digest("hex").slice(0, 16);

// Where two strings first differ, with a little context on each side.
function firstDifference(a, b, context = 60) {
  let i = 0;
  const n = Math.min(a.length, b.length);
  while (i < n && a[i] === b[i]) i++;
  if (i === a.length && i === b.length) return null;
  const from = Math.max(0, i - context);
  return { at: i, original: a.slice(from, i + context), built: b.slice(from, i + context) };
}

function firstTagDifference(a, b) {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  if (i === a.length && i === b.length) return null;
  const from = Math.max(0, i - 3);
  return { index: i, original: a.slice(from, i + 6).join(" "), built: b.slice(from, i + 6).join(" ") };
}

// ------------------------------------------------------------------ a side

// One browser context with its collectors. Everything it records is in
// `facts`; `deadline` bounds every wait.
class Session {
  constructor(browser, server, normalize, deadline, register) {
    this.browser = browser;
    this.server = server;
    this.normalize = normalize;
    this.deadline = deadline;
    this.register = register;
    this.facts = {
      consoleErrors: [],
      consoleWarnings: [],
      pageErrors: [],
      failedRequests: [],
      abortedRequests: [],
      notes: [],
    };
    this.inflight = new Set();
    this.lastActivity = Date.now();
    this.requests = []; // same-origin requests: "type path"
  }

  remaining() {
    return Math.max(1, this.deadline - Date.now());
  }

  async open() {
    const origin = this.server.origin;
    this.context = await this.browser.newContext({ ...CONTEXT_OPTIONS });
    this.register(this.context);
    // Nothing leaves this machine.
    await blockOtherOrigins(this.context, origin);
    const page = await this.context.newPage();
    this.page = page;
    page.setDefaultTimeout(this.remaining());
    page.on("dialog", (d) => d.dismiss().catch(() => {}));
    const f = this.facts;
    const norm = this.normalize;
    page.on("console", (msg) => {
      const type = msg.type();
      if (type !== "error" && type !== "warning") return;
      const loc = msg.location();
      const where = loc && loc.url ? ` [${norm(loc.url)}]` : "";
      const text = norm(msg.text()).slice(0, MAX_MESSAGE) + where;
      (type === "error" ? f.consoleErrors : f.consoleWarnings).push(text);
    });
    page.on("pageerror", (err) => {
      const name = err && err.name ? err.name : "Error";
      const message = err && err.message !== undefined ? err.message : String(err);
      f.pageErrors.push(norm(`Uncaught ${name}: ${message}`).slice(0, MAX_MESSAGE));
    });
    page.on("crash", () => f.notes.push("page crashed"));
    page.on("request", (r) => {
      this.inflight.add(r);
      this.lastActivity = Date.now();
      const u = r.url();
      if (u.startsWith(origin + "/")) this.requests.push(`${r.resourceType()} ${u.slice(origin.length)}`);
    });
    const done = (r) => {
      this.inflight.delete(r);
      this.lastActivity = Date.now();
    };
    page.on("requestfinished", done);
    page.on("requestfailed", (r) => {
      done(r);
      const failure = r.failure();
      const text = failure ? failure.errorText : "unknown";
      const line = `${r.method()} ${norm(r.url())} failed: ${text}`;
      // A request the page itself cancelled (navigation away, aborted
      // prefetch) is timing, not a failure.
      if (text === "net::ERR_ABORTED") f.abortedRequests.push(line);
      else f.failedRequests.push(line);
    });
    page.on("response", (response) => {
      if (response.status() >= 400) {
        f.failedRequests.push(`${response.request().method()} ${norm(response.url())} status ${response.status()}`);
      }
    });
    await this.context.addInitScript(snapshotServerElements);
    return page;
  }

  async close() {
    if (this.context) await withTimeout(this.context.close(), CLOSE_TIMEOUT_MS, "context close").catch(() => {});
  }

  // No request in flight for QUIET_MS (capped).
  async networkQuiet(cap = NETWORK_IDLE_CAP_MS) {
    const end = Date.now() + Math.min(cap, this.remaining());
    while (Date.now() < end) {
      if (this.inflight.size === 0 && Date.now() - this.lastActivity >= QUIET_MS) return true;
      await sleep(25);
    }
    return false;
  }

  async evaluate(fn, arg, what) {
    return withTimeout(this.page.evaluate(fn, arg), Math.min(this.remaining(), 10_000), what);
  }

  // load → networkidle → ready → hydration probe → quiet → settle.
  async waitForPage(label, ready, kind, { afterNavigation = false } = {}) {
    const page = this.page;
    const f = this.facts;
    if (afterNavigation) {
      await page.waitForLoadState("load", { timeout: this.remaining() }).catch(() => {});
    } else {
      await page
        .waitForLoadState("networkidle", { timeout: Math.min(NETWORK_IDLE_CAP_MS, this.remaining()) })
        .catch(() => f.notes.push(`${label}: networkidle not reached; continued after the cap`));
    }
    let readyFound = null;
    if (ready) {
      readyFound = await page
        .waitForSelector(ready, { state: "attached", timeout: Math.min(READY_WAIT_MS, this.remaining() / 2) })
        .then(() => true)
        .catch(() => false);
      if (!readyFound) f.notes.push(`${label}: ready selector ${ready} not found`);
    }
    let probe = { hydrated: null, detail: "no probe for this framework" };
    if (kind) {
      const end = Date.now() + Math.min(HYDRATION_WAIT_MS, this.remaining());
      for (;;) {
        probe = await this.evaluate(hydrationProbe, kind, "hydration probe").catch((err) => ({
          hydrated: false,
          detail: `probe failed: ${firstLine(err)}`,
        }));
        if (probe.hydrated !== false || Date.now() >= end) break;
        await sleep(100);
      }
    }
    if (!(await this.networkQuiet())) f.notes.push(`${label}: network not quiet within ${NETWORK_IDLE_CAP_MS} ms`);
    await this.settle();
    return { readyFound, probe };
  }

  async settle() {
    await this.evaluate(
      async (ms) => {
        const capped = (p, cap) => Promise.race([p, new Promise((r) => setTimeout(r, cap))]);
        await capped(document.fonts.ready, 3000);
        // Images still loading (a lazy one outside the viewport may never start).
        await capped(
          Promise.all(
            Array.from(document.images, (img) =>
              img.complete
                ? img.decode().catch(() => {})
                : img.loading === "lazy"
                  ? null
                  : new Promise((r) => {
                      img.addEventListener("load", r, { once: true });
                      img.addEventListener("error", r, { once: true });
                    }),
            ),
          ),
          3000,
        );
        // Finite animations and transitions (hover, focus) run to their end.
        const finite = document.getAnimations().filter((a) => {
          try {
            return a.playState === "running" && Number.isFinite(a.effect.getComputedTiming().endTime);
          } catch {
            return false;
          }
        });
        await Promise.race([
          Promise.all(finite.map((a) => a.finished.catch(() => {}))),
          new Promise((r) => setTimeout(r, 2000)),
        ]);
        await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
        await new Promise((r) => setTimeout(r, ms));
      },
      SETTLE_MS,
      "settle",
    );
  }

  async dom() {
    const d = await this.evaluate(domFacts, undefined, "DOM facts");
    return d;
  }

  // After a click: the pointer leaves whatever it hovers, the page scrolls to
  // the top, animations end.
  //
  // The caret style goes in only now, as an adopted sheet (no DOM change that
  // could upset hydration): added at DOMContentLoaded it made Chromium paint
  // some rounded-corner edges one of two ways at random.
  async screenshot(file, { toTop = false } = {}) {
    if (toTop) {
      await this.page.mouse.move(0, 0);
      await this.evaluate(() => window.scrollTo({ top: 0, left: 0, behavior: "instant" }), undefined, "scroll");
    }
    await this.evaluate(
      (css) => {
        const sheet = new CSSStyleSheet();
        sheet.replaceSync(css);
        document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
      },
      CARET_CSS,
      "caret style",
    );
    await this.settle();
    // A stable screenshot, as Playwright's toHaveScreenshot takes one: two
    // consecutive captures alike (at most five). On a loaded machine a page
    // can still be restyling after hydration; a real difference between the
    // original and the build stays in both sides' stable captures.
    let previous = null;
    for (let attempt = 0; attempt < 5; attempt++) {
      const png = await this.page.screenshot({
        fullPage: true,
        animations: "disabled",
        caret: "hide",
        scale: "css",
        timeout: this.remaining(),
      });
      if (previous && previous.equals(png)) break;
      previous = png;
      await sleep(150);
    }
    fs.writeFileSync(file, previous);
  }

  // Click the first match of `selector`, scrolled into view. Sets
  // facts.clicked, and facts.clickError when the click did not happen.
  async click(selector, facts) {
    try {
      const target = this.page.locator(selector).first();
      await target.scrollIntoViewIfNeeded({ timeout: Math.min(10_000, this.remaining()) });
      await target.click({ timeout: Math.min(10_000, this.remaining()) });
      facts.clicked = true;
    } catch (err) {
      facts.clicked = false;
      facts.clickError = firstLine(err);
    }
  }

  // Poll body.innerText for `text` (whitespace-insensitive).
  async waitForText(text, cap = TEXT_WAIT_MS) {
    const want = squash(text);
    const end = Date.now() + Math.min(cap, this.remaining());
    for (;;) {
      const has = await this.evaluate((w) => (document.body ? document.body.innerText : "").replace(/\s+/g, " ").includes(w), want, "text")
        .catch(() => false);
      if (has || Date.now() >= end) return has;
      await sleep(100);
    }
  }

  // Public facts (without the big strings).
  summary() {
    const f = this.facts;
    const out = {
      consoleErrors: f.consoleErrors,
      consoleWarnings: f.consoleWarnings,
      pageErrors: f.pageErrors,
      failedRequests: f.failedRequests,
    };
    if (f.abortedRequests.length) out.abortedRequests = f.abortedRequests;
    if (f.notes.length) out.notes = f.notes;
    return out;
  }
}

// Record DOM facts into `facts` (and keep the texts for the comparison).
function recordDom(facts, d) {
  facts.title = d.title;
  facts.finalUrl = d.url;
  facts.textLength = d.innerText.length;
  facts.elementCount = d.tags.length;
  facts.structureHash = sha1(d.tags.join(" "));
  return { innerText: d.innerText, domText: d.domText, tags: d.tags };
}

// -------------------------------------------------------------- the items

async function capturePage(ctx, side, pagePath, shot) {
  const { browser, server, normalize, register, site, kind, timeout } = ctx;
  const t0 = performance.now();
  const s = new Session(browser, server, normalize, Date.now() + timeout, register);
  const facts = { url: pagePath };
  let texts = null;
  try {
    const page = await s.open();
    const url = server.origin + pagePath;
    const raw = await fetchText(url, Math.min(10_000, s.remaining())).catch((err) => ({ status: null, text: "", error: firstLine(err) }));
    const words = ssrWords(raw.text);
    const resp = await page.goto(url, { waitUntil: "load", timeout: s.remaining() });
    facts.status = resp ? resp.status() : null;
    const { readyFound, probe } = await s.waitForPage("page", site.ready, kind);
    if (readyFound !== null) facts.readyFound = readyFound;
    facts.hydrated = probe.hydrated;
    facts.hydrationDetail = probe.detail;
    texts = recordDom(facts, await s.dom());
    const kept = await s.evaluate(serverElementsReplaced, undefined, "server elements");
    if (kept) {
      facts.ssrElements = kept.total;
      facts.ssrElementsReplaced = kept.replaced;
      if (kept.replaced) facts.ssrReplacedSample = kept.sample;
    }
    const missing = words.filter((w) => !texts.domText.includes(w));
    facts.ssrWords = words.length;
    facts.ssrTextPresent = missing.length === 0;
    if (missing.length) facts.ssrWordsMissing = missing;
    await s.screenshot(shot);
    facts.screenshot = shot;
  } catch (err) {
    facts.error = firstLine(err);
  } finally {
    await s.close();
  }
  Object.assign(facts, s.summary());
  facts.ms = Math.round(performance.now() - t0);
  return { facts, texts };
}

function pathMatches(href, expect) {
  let u;
  try {
    u = new URL(href);
  } catch {
    return false;
  }
  let got = u.pathname;
  if (expect.includes("#")) got += u.hash;
  return got === expect;
}

async function captureNavigation(ctx, side, step, shot) {
  const { browser, server, normalize, register, site, kind, timeout } = ctx;
  const t0 = performance.now();
  const s = new Session(browser, server, normalize, Date.now() + timeout, register);
  const facts = { from: step.from };
  let texts = null;
  try {
    const page = await s.open();
    const resp = await page.goto(server.origin + step.from, { waitUntil: "load", timeout: s.remaining() });
    facts.status = resp ? resp.status() : null;
    const before = await s.waitForPage("from", site.ready, kind);
    facts.hydratedBefore = before.probe.hydrated;
    const marker = Math.random();
    const requestsBefore = s.requests.length;
    const urlBefore = page.url();
    await s.evaluate((m) => {
      window.__kilnMarker = m;
    }, marker, "marker");
    await s.click(step.click, facts);
    if (facts.clicked) {
      const clickedAt = Date.now();
      const end = clickedAt + Math.min(timeout, s.remaining());
      let reached = false;
      while (Date.now() < end) {
        // A URL that already matched before the click (a link to the same
        // path, a hash router whose expect_path has no hash) counts once it
        // changed, or after a second.
        const url = page.url();
        if (pathMatches(url, step.expect_path) && (url !== urlBefore || Date.now() - clickedAt > 1000)) {
          reached = true;
          break;
        }
        await sleep(50);
      }
      facts.pathReached = reached;
      const after = await s.waitForPage("target", site.ready, kind, { afterNavigation: true });
      facts.hydrated = after.probe.hydrated;
      facts.hydrationDetail = after.probe.detail;
      // The marker survives only a client-side navigation. Retry while a
      // full load is still swapping documents.
      let value;
      for (let i = 0; i < 5; i++) {
        try {
          value = await s.evaluate(() => window.__kilnMarker, undefined, "marker");
          break;
        } catch {
          await sleep(200);
        }
      }
      facts.clientSide = value === marker;
      // What the step loaded (same-origin document/script/fetch/xhr), before
      // the click (the `from` page, prefetches) and after.
      const kinds = (list) => list.filter((r) => /^(document|script|fetch|xhr) /.test(r)).slice(0, 80);
      facts.loadedBeforeClick = kinds(s.requests.slice(0, requestsBefore));
      facts.loadedAfterClick = kinds(s.requests.slice(requestsBefore));
      if (step.expect_text !== undefined) facts.expectTextFound = await s.waitForText(step.expect_text);
      await s.settle();
      texts = recordDom(facts, await s.dom());
      await s.screenshot(shot, { toTop: true });
      facts.screenshot = shot;
    }
    try {
      const u = new URL(page.url());
      facts.finalPath = u.pathname + u.search + u.hash;
    } catch {}
  } catch (err) {
    facts.error = firstLine(err);
  } finally {
    await s.close();
  }
  Object.assign(facts, s.summary());
  facts.ms = Math.round(performance.now() - t0);
  return { facts, texts };
}

async function captureInteraction(ctx, side, step, shot) {
  const { browser, server, normalize, register, site, kind, timeout } = ctx;
  const t0 = performance.now();
  const s = new Session(browser, server, normalize, Date.now() + timeout, register);
  const facts = { page: step.page };
  try {
    const page = await s.open();
    const resp = await page.goto(server.origin + step.page, { waitUntil: "load", timeout: s.remaining() });
    facts.status = resp ? resp.status() : null;
    const w = await s.waitForPage("page", site.ready, kind);
    facts.hydrated = w.probe.hydrated;
    await s.click(step.click, facts);
    if (facts.clicked) {
      facts.expectTextFound = await s.waitForText(step.expect_text);
      await s.networkQuiet();
      await s.settle();
      await s.screenshot(shot, { toTop: true });
      facts.screenshot = shot;
    }
  } catch (err) {
    facts.error = firstLine(err);
  } finally {
    await s.close();
  }
  Object.assign(facts, s.summary());
  facts.ms = Math.round(performance.now() - t0);
  return { facts };
}

// ---------------------------------------------------------------- verdicts

// Screenshot comparison; fills entry.identical and friends.
function compareShots(entry, a, b, diffFile, tolerance) {
  entry.identical = false;
  if (!a.facts.screenshot || !b.facts.screenshot) return;
  const cmp = comparePngs(a.facts.screenshot, b.facts.screenshot, diffFile, tolerance);
  entry.identical = cmp.identical;
  entry.diffPixels = cmp.diffPixels;
  entry.size = { width: cmp.width, height: cmp.height };
  if (cmp.builtWidth !== cmp.width || cmp.builtHeight !== cmp.height) entry.builtSize = { width: cmp.builtWidth, height: cmp.builtHeight };
  if (!cmp.identical) {
    entry.maxChannelDiff = cmp.maxChannelDiff;
    entry.diffBox = cmp.diffBox;
    entry.diffRowBands = cmp.diffRowBands;
    entry.diffImage = diffFile;
  }
}

function compareMessages(entry, a, b) {
  entry.newConsoleErrors = newEntries(a.facts.consoleErrors, b.facts.consoleErrors);
  entry.newConsoleWarnings = newEntries(a.facts.consoleWarnings, b.facts.consoleWarnings);
  entry.newPageErrors = newEntries(a.facts.pageErrors, b.facts.pageErrors);
  entry.newFailedRequests = newEntries(a.facts.failedRequests, b.facts.failedRequests);
}

function messageFailures(entry) {
  const out = [];
  for (const [k, what] of [
    ["newConsoleErrors", "new console error(s)"],
    ["newConsoleWarnings", "new console warning(s)"],
    ["newPageErrors", "new uncaught exception(s)"],
    ["newFailedRequests", "new failed request(s)"],
  ]) {
    if (entry[k].length) out.push(`${entry[k].length} ${what}: ${entry[k][0]}${entry[k].length > 1 ? " …" : ""}`);
  }
  return out;
}

function compareTexts(entry, ta, tb) {
  if (!ta || !tb) {
    entry.textSame = false;
    entry.structureSame = false;
    return;
  }
  entry.textSame = ta.innerText === tb.innerText;
  if (!entry.textSame) entry.textDiff = firstDifference(ta.innerText, tb.innerText);
  entry.structureSame = ta.tags.length === tb.tags.length && ta.tags.every((t, i) => t === tb.tags[i]);
  if (!entry.structureSame) entry.structureDiff = firstTagDifference(ta.tags, tb.tags);
}

function judgePage(entry, a, b, site) {
  const fails = [];
  const problems = [];
  const A = a.facts;
  const B = b.facts;
  if (A.error) problems.push(`original: ${A.error}`);
  if (B.error) fails.push(`built: ${B.error}`);
  if (!A.error) {
    if (A.status === null || A.status >= 400) problems.push(`original answers status ${A.status}`);
    if (site.hydrates && A.hydrated === false) problems.push(`hydration probe false in the original (${A.hydrationDetail})`);
    // Hydration may drop a little server-rendered chrome (VitePress removes
    // its mobile "Return to top" at desktop width); losing much of the page
    // means the original itself throws its markup away.
    if (A.ssrTextPresent === false && A.ssrWordsMissing.length > Math.max(1, A.ssrWords * SSR_MISSING_TOLERATED)) {
      problems.push(
        `${A.ssrWordsMissing.length}/${A.ssrWords} server-rendered words missing from the original's DOM after hydration: ${A.ssrWordsMissing.slice(0, 8).join(", ")}`,
      );
    }
    // A client-rendered app ships an empty shell; a hydrating site must not.
    if (site.hydrates && A.ssrWords === 0) problems.push("the original's HTML has no words to check though the site hydrates (empty shell?)");
    if (A.readyFound === false) problems.push(`ready selector ${site.ready} not found in the original`);
  }
  if (!entry.identical && A.screenshot && B.screenshot) fails.push(`screenshot differs (${entry.diffPixels} px)`);
  fails.push(...messageFailures(entry));
  if (B.status !== A.status && !B.error) fails.push(`status ${B.status} (original ${A.status})`);
  if (entry.originalHydrated === true && entry.hydrated !== true) fails.push(`not hydrated (${B.hydrationDetail})`);
  if (A.screenshot && B.screenshot) {
    if (!entry.textSame) fails.push("body.innerText differs");
    if (!entry.structureSame) fails.push("element structure differs");
  }
  if (typeof B.ssrElementsReplaced === "number" && typeof A.ssrElementsReplaced === "number" && B.ssrElementsReplaced > A.ssrElementsReplaced) {
    fails.push(
      `${B.ssrElementsReplaced} server-rendered element(s) replaced instead of hydrated (original: ${A.ssrElementsReplaced}): ${(B.ssrReplacedSample || []).slice(0, 3).join("; ")}`,
    );
  }
  // Words of its own HTML the built page lost that the original did not lose.
  if (entry.ssrWordsNewlyMissing.length) {
    fails.push(`server-rendered words missing after hydration: ${entry.ssrWordsNewlyMissing.slice(0, 8).join(", ")}`);
  }
  if (B.readyFound === false && A.readyFound === true) fails.push(`ready selector ${site.ready} not found`);
  return { fails, problems };
}

function judgeNavigation(entry, a, b, step) {
  const fails = [];
  const problems = [];
  const A = a.facts;
  const B = b.facts;
  const wantClient = step.client_side !== false;
  if (A.error) problems.push(`original: ${A.error}`);
  if (B.error) fails.push(`built: ${B.error}`);
  if (!A.error) {
    if (A.clicked === false) problems.push(`click target ${step.click} not clickable in the original: ${A.clickError}`);
    else {
      if (!A.pathReached) problems.push(`the original did not reach ${step.expect_path} (at ${A.finalPath})`);
      if (wantClient && !A.clientSide) problems.push("navigation is not client-side in the original (full page load)");
      if (!wantClient && A.clientSide) problems.push("navigation is client-side in the original, but client_side is false");
      if (step.expect_text !== undefined && !A.expectTextFound) problems.push(`expect_text ${JSON.stringify(step.expect_text)} not found in the original`);
    }
  }
  if (!B.error) {
    if (B.clicked === false) fails.push(`click target ${step.click} not clickable: ${B.clickError}`);
    else {
      if (A.pathReached && !B.pathReached) fails.push(`did not reach ${step.expect_path} (at ${B.finalPath})`);
      if (A.clientSide && !B.clientSide) fails.push("full page load where the original navigates client-side");
      if (step.expect_text !== undefined && !B.expectTextFound) fails.push(`expect_text ${JSON.stringify(step.expect_text)} not found`);
    }
  }
  if (!entry.identical && A.screenshot && B.screenshot) fails.push(`screenshot differs (${entry.diffPixels} px)`);
  fails.push(...messageFailures(entry));
  if (A.screenshot && B.screenshot && !entry.textSame) fails.push("body.innerText differs after navigation");
  if (A.hydrated === true && B.hydrated !== true && B.screenshot) fails.push(`not hydrated after navigation (${B.hydrationDetail})`);
  return { fails, problems };
}

function judgeInteraction(entry, a, b, step) {
  const fails = [];
  const problems = [];
  const A = a.facts;
  const B = b.facts;
  if (A.error) problems.push(`original: ${A.error}`);
  if (B.error) fails.push(`built: ${B.error}`);
  if (!A.error) {
    if (A.clicked === false) problems.push(`click target ${step.click} not clickable in the original: ${A.clickError}`);
    else if (!A.expectTextFound) problems.push(`expect_text ${JSON.stringify(step.expect_text)} not found in the original after the click`);
  }
  if (!B.error) {
    if (B.clicked === false) fails.push(`click target ${step.click} not clickable: ${B.clickError}`);
    else if (!B.expectTextFound) fails.push(`expect_text ${JSON.stringify(step.expect_text)} not found after the click`);
  }
  if (!entry.identical && A.screenshot && B.screenshot) fails.push(`screenshot differs (${entry.diffPixels} px)`);
  fails.push(...messageFailures(entry));
  return { fails, problems };
}

// -------------------------------------------------------------------- main

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  let site;
  try {
    site = loadSite(opts);
  } catch (err) {
    if (err instanceof UsageError) usage(err.message);
    throw err;
  }
  for (const k of ["original", "built"]) {
    const st = fs.statSync(opts[k], { throwIfNoEntry: false });
    if (!st || !st.isDirectory()) usage(`--${k} ${opts[k]}: not a directory`);
  }
  const entry = site.entry;
  const kind = probeKind(entry.framework);
  const navigation = entry.navigation || [];
  const interaction = entry.interaction || [];
  const outDir = path.resolve(opts.out);
  fs.mkdirSync(outDir, { recursive: true });

  const result = {
    site: site.name,
    framework: entry.framework ?? null,
    probe: kind,
    original: path.resolve(opts.original),
    built: path.resolve(opts.built),
    pages: [],
    navigation: [],
    interaction: [],
    problems: [],
    regressions: [],
    ok: false,
  };
  let browser = null;
  const servers = [];
  const contexts = contextTracker();
  let finished = false;

  const items = entry.pages.length + navigation.length + interaction.length;
  const perItem = 2 * (opts.timeout + CLOSE_TIMEOUT_MS) + 10_000;
  const hardLimitMs = LAUNCH_TIMEOUT_MS + items * perItem + 30_000;
  guardRun("framework-check", hardLimitMs, result, () => finished);

  const runStart = performance.now();
  try {
    const orig = await startServer(opts.original);
    servers.push(orig);
    const built = await startServer(opts.built);
    servers.push(built);
    const normalize = makeNormalizer([orig.origin, built.origin]);
    log(`framework-check: site ${site.name} (${entry.framework || "?"}, probe ${kind || "none"})`);
    log(`framework-check: original ${orig.root} at ${orig.origin}/`);
    log(`framework-check: built    ${built.root} at ${built.origin}/`);

    browser = await launchChromium(CHROMIUM_FLAGS);
    log(
      `framework-check: chromium ${browser.version()}, ${entry.pages.length} page(s), ` +
        `${navigation.length} navigation(s), ${interaction.length} interaction(s)`,
    );
    const register = contexts.register;
    const ctxFor = (server) => ({ browser, server, normalize, register, site: entry, kind, timeout: opts.timeout });
    const sides = { original: ctxFor(orig), built: ctxFor(built) };

    // Both sides of one item, each bounded; a side that overruns is an error.
    const runSides = async (label, fn) => {
      const out = {};
      for (const side of ["original", "built"]) {
        try {
          out[side] = await withTimeout(fn(sides[side], side), opts.timeout + CLOSE_TIMEOUT_MS + 5_000, `${side} ${label}`);
        } catch (err) {
          out[side] = { facts: { error: firstLine(err) } };
          await contexts.closeAll();
        }
      }
      return out;
    };
    const finish = (list, e, verdict, label) => {
      e.failures = verdict.fails;
      e.problems = verdict.problems;
      e.ok = verdict.fails.length === 0 && verdict.problems.length === 0;
      for (const p of verdict.problems) result.problems.push(`${label}: ${p}`);
      for (const f of verdict.fails) result.regressions.push(`${label}: ${f}`);
      list.push(e);
      const ms = (e.original.ms || 0) + (e.built.ms || 0);
      log(`  ${label}  ${e.ok ? "ok" : [...verdict.problems.map((p) => "PROBLEM " + p), ...verdict.fails].join("; ")}  [${ms} ms]`);
    };

    for (const p of entry.pages) {
      const slug = slugFor(p);
      const shot = (side) => path.join(outDir, `page-${slug}.${side}.png`);
      const r = await runSides(`page ${p}`, (ctx, side) => capturePage(ctx, side, p, shot(side)));
      const e = { path: p, identical: false };
      compareShots(e, r.original, r.built, path.join(outDir, `page-${slug}.diff.png`), opts.tolerance);
      compareMessages(e, r.original, r.built);
      e.hydrated = r.built.facts.hydrated ?? null;
      e.originalHydrated = r.original.facts.hydrated ?? null;
      compareTexts(e, r.original.texts, r.built.texts);
      e.ssrTextPresent = { original: r.original.facts.ssrTextPresent ?? null, built: r.built.facts.ssrTextPresent ?? null };
      e.ssrElementsReplaced = { original: r.original.facts.ssrElementsReplaced ?? null, built: r.built.facts.ssrElementsReplaced ?? null };
      // Built words missing that the original keeps (all of them when the
      // original has no data).
      const tolerated = new Set(r.original.facts.ssrWordsMissing || []);
      e.ssrWordsNewlyMissing = (r.built.facts.ssrWordsMissing || []).filter((w) => !tolerated.has(w));
      e.original = r.original.facts;
      e.built = r.built.facts;
      finish(result.pages, e, judgePage(e, r.original, r.built, entry), `page ${p}`);
    }

    for (const [i, step] of navigation.entries()) {
      const slug = `${i}-${slugFor(step.from)}-to-${slugFor(step.expect_path)}`;
      const shot = (side) => path.join(outDir, `nav-${slug}.${side}.png`);
      const label = `navigation ${i} ${step.from} -> ${step.expect_path}`;
      const r = await runSides(label, (ctx, side) => captureNavigation(ctx, side, step, shot(side)));
      const e = {
        from: step.from,
        click: step.click,
        expect_path: step.expect_path,
        expect_text: step.expect_text ?? null,
        identical: false,
      };
      compareShots(e, r.original, r.built, path.join(outDir, `nav-${slug}.diff.png`), opts.tolerance);
      compareMessages(e, r.original, r.built);
      e.clientSide = { original: r.original.facts.clientSide ?? null, built: r.built.facts.clientSide ?? null };
      e.expectTextFound = { original: r.original.facts.expectTextFound ?? null, built: r.built.facts.expectTextFound ?? null };
      e.finalPath = { original: r.original.facts.finalPath ?? null, built: r.built.facts.finalPath ?? null };
      compareTexts(e, r.original.texts, r.built.texts);
      e.original = r.original.facts;
      e.built = r.built.facts;
      finish(result.navigation, e, judgeNavigation(e, r.original, r.built, step), label);
    }

    for (const [i, step] of interaction.entries()) {
      const slug = `${i}-${slugFor(step.page)}`;
      const shot = (side) => path.join(outDir, `interact-${slug}.${side}.png`);
      const label = `interaction ${i} ${step.page} ${step.click}`;
      const r = await runSides(label, (ctx, side) => captureInteraction(ctx, side, step, shot(side)));
      const e = { page: step.page, click: step.click, expect_text: step.expect_text, identical: false };
      compareShots(e, r.original, r.built, path.join(outDir, `interact-${slug}.diff.png`), opts.tolerance);
      compareMessages(e, r.original, r.built);
      e.expectTextFound = { original: r.original.facts.expectTextFound ?? null, built: r.built.facts.expectTextFound ?? null };
      e.original = r.original.facts;
      e.built = r.built.facts;
      finish(result.interaction, e, judgeInteraction(e, r.original, r.built, step), label);
    }

    if (entry.hydrates && !kind) result.notes = [`framework ${JSON.stringify(entry.framework)} has no hydration probe; hydration is judged by messages, text and screenshots only`];
    const complete =
      result.pages.length === entry.pages.length &&
      result.navigation.length === navigation.length &&
      result.interaction.length === interaction.length;
    result.ok =
      complete &&
      result.problems.length === 0 &&
      result.regressions.length === 0 &&
      [...result.pages, ...result.navigation, ...result.interaction].every((e) => e.ok);
  } catch (err) {
    result.ok = false;
    result.error = firstLine(err);
    log(`framework-check: ${result.error}`);
  } finally {
    await closeAll(browser, servers);
  }
  result.totalMs = Math.round(performance.now() - runStart);
  finished = true;
  emitReport(outDir, result);
  log(
    `framework-check: ${site.name} ${result.ok ? "ok" : "NOT ok"} in ${result.totalMs} ms` +
      (result.problems.length ? `; ${result.problems.length} problem(s) with the original (fixture/harness)` : "") +
      (result.regressions.length ? `; ${result.regressions.length} regression(s)` : "") +
      `; artifacts in ${outDir}`,
  );
  exitWhenDone(result.ok);
}

export { startServer, stopServer, ssrWords, rawBodyText, matchKey, newEntries, probeKind, hydrationProbe, loadSite };

if (isMain(import.meta.url)) {
  main().catch((err) => {
    log(`framework-check: ${err && err.stack ? err.stack : err}`);
    process.exit(1);
  });
}
