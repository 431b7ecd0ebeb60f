// kiln watch --serve: reload the page after a rebuild, swap stylesheets in
// place when only CSS changed, and show the build's diagnostics over the page.
// Served only by the dev server; never part of a build's output.
(() => {
  "use strict";
  if (window.__kilnLive) return;
  window.__kilnLive = "connecting";
  // The build this page was served from.
  const served = document.currentScript && document.currentScript.dataset.kilnBuild;
  const events = new EventSource("/__kiln/events");
  events.addEventListener("ready", (event) => {
    // A rebuild between serving this page and connecting: its event was missed.
    if (served !== undefined && String(JSON.parse(event.data).build) !== served) {
      location.reload();
      return;
    }
    window.__kilnLive = "open";
  });
  events.addEventListener("reload", () => location.reload());
  events.addEventListener("css", (event) => {
    const swaps = new Map(JSON.parse(event.data));
    for (const link of document.querySelectorAll('link[rel~="stylesheet"][href]')) {
      // Already being replaced (the same swap can arrive twice).
      if (link.__kilnSwapped) continue;
      const url = new URL(link.href, location.href);
      if (url.origin !== location.origin) continue;
      const next = swaps.get(decodeURIComponent(url.pathname));
      if (next === undefined) continue;
      const fresh = link.cloneNode();
      const target = new URL(next, location.href);
      // Same name, new bytes: defeat the HTTP cache.
      if (target.pathname === url.pathname) target.searchParams.set("kiln", Date.now());
      fresh.href = target.href;
      // Keep the old sheet until the new one applies: no flash of unstyled page.
      // A swap that lands before the previous one loaded takes over its cleanup.
      const replaced = [link, ...(link.__kilnReplaced || [])];
      fresh.__kilnReplaced = replaced;
      fresh.addEventListener("load", () => replaced.forEach((old) => old.remove()), { once: true });
      fresh.addEventListener("error", () => location.reload(), { once: true });
      link.__kilnSwapped = true;
      link.after(fresh);
    }
  });
  events.addEventListener("diagnostics", (event) => {
    const problems = JSON.parse(event.data);
    let overlay = document.getElementById("__kiln-diagnostics");
    if (problems.length === 0) {
      if (overlay) overlay.remove();
      return;
    }
    if (!overlay) {
      overlay = document.createElement("pre");
      overlay.id = "__kiln-diagnostics";
      overlay.style.cssText =
        "position:fixed;inset:auto 0 0 0;z-index:2147483647;margin:0;padding:12px 16px;" +
        "max-height:50vh;overflow:auto;background:#1e1e1e;color:#ff8080;" +
        "font:13px/1.4 ui-monospace,monospace;white-space:pre-wrap;border-top:3px solid #ff5050";
      overlay.title = "kiln: problems in the last build (fix the file to clear)";
      document.documentElement.append(overlay);
    }
    overlay.textContent = "kiln: " + problems.length + " problem(s)\n" + problems.join("\n");
  });
})();
