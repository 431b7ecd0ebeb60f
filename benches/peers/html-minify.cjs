// Minify HTML files in place, for benches/peers.sh:  node html-minify.cjs TOOL FILE...
//   TOOL html-minifier-terser  with the safe options of benches/minify.sh (whitespace collapsed
//                              conservatively, comments removed, inline CSS and JS minified)
//   TOOL minify-html           @minify-html/node with its default options
// A file that fails is left as it was and named on stdout as "FILE<TAB>message".
// Exit 0 (failures included), 2 on bad arguments.
"use strict";
const fs = require("fs");

const HTML_MINIFIER_TERSER_OPTIONS = {
  collapseWhitespace: true,
  conservativeCollapse: true,
  removeComments: true,
  minifyCSS: true,
  minifyJS: true,
};

function minifier(tool) {
  if (tool === "html-minifier-terser") {
    const { minify } = require("html-minifier-terser");
    return (bytes) => minify(bytes.toString("utf8"), HTML_MINIFIER_TERSER_OPTIONS);
  }
  if (tool === "minify-html") {
    const { minify } = require("@minify-html/node");
    return async (bytes) => minify(bytes, {});
  }
  return null;
}

async function main() {
  const [tool, ...files] = process.argv.slice(2);
  const minify = minifier(tool);
  if (!minify) {
    console.error("usage: node html-minify.cjs html-minifier-terser|minify-html FILE...");
    process.exit(2);
  }
  for (const file of files) {
    try {
      fs.writeFileSync(file, await minify(fs.readFileSync(file)));
    } catch (e) {
      const message = String((e && e.message) || e).split("\n")[0].slice(0, 200);
      process.stdout.write(`${file}\t${message}\n`);
    }
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
