#!/usr/bin/env bash
# The npm packages end to end, as a user gets them:
#   tests/npm/run.sh path/to/kiln
# checks that the package versions match Cargo.toml, packs kiln and this
# platform's @kiln/* package around the given binary, installs both tarballs
# into a fresh project offline (no registry, no network), runs `npx kiln
# build`, `npm run build` and the JS API there, then the package's own tests
# (node --test) against the binary. Prints `npm-ok` last on success.
# Everything happens in a temporary directory, removed on exit; nothing is
# installed globally. Needs node >= 18 and npm.
# The `node -e '…'` programs are JavaScript: their ${…} are not for the shell.
# shellcheck disable=SC2016
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 PATH/TO/kiln" >&2
    exit 2
fi
if [[ ! -x $1 ]]; then
    echo "$0: $1 is not an executable kiln binary" >&2
    exit 2
fi
kiln_bin="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
for tool in node npm npx; do
    if ! command -v "$tool" >/dev/null; then
        echo "$0: $tool is not installed (tests/setup.sh installs Node.js)" >&2
        exit 2
    fi
done

work="$(mktemp -d "${TMPDIR:-/tmp}/kiln-npm.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# npm with its own empty cache and configuration, offline, and a registry
# that refuses connections: any attempt to download fails at once.
touch "$work/npmrc"
export npm_config_userconfig="$work/npmrc"
export npm_config_cache="$work/npm-cache"
export npm_config_offline=true
export npm_config_registry="http://127.0.0.1:9/"
export npm_config_audit=false
export npm_config_fund=false
export npm_config_update_notifier=false
# The installed package must find its binary by itself.
unset KILN_BINARY

step() { echo "== $*" >&2; }

step "package versions match Cargo.toml"
node "$root/npm/scripts/sync-version.mjs" --check >&2

step "pack kiln and this platform's package"
node "$root/npm/scripts/pack.mjs" --binary "$kiln_bin" --out "$work/packs" >"$work/pack.json"
tarballs=()
while IFS= read -r tarball; do
    tarballs+=("$tarball")
done < <(node -e 'for (const t of require(process.argv[1]).tarballs) console.log(t)' "$work/pack.json")
[[ ${#tarballs[@]} -eq 2 ]] || { echo "pack.mjs made ${#tarballs[@]} tarballs, not 2" >&2; exit 1; }

step "install the tarballs into a new project, offline"
project="$work/project"
mkdir "$project"
cat >"$project/package.json" <<'EOF'
{
  "name": "kiln-npm-smoke-test",
  "version": "1.0.0",
  "private": true,
  "scripts": {
    "build": "kiln build site -o out"
  }
}
EOF
cp -R "$root/fixtures/site" "$project/site"
cd "$project"
npm install --offline --no-audit --no-fund "${tarballs[@]}" >&2
# Only what the package lists ships (no tests, no binaries in kiln itself).
for file in bin/kiln.js lib/index.js lib/options.js lib/platform.js index.d.ts README.md; do
    [[ -f node_modules/kiln/$file ]] || { echo "node_modules/kiln/$file is missing" >&2; exit 1; }
done
[[ ! -e node_modules/kiln/test ]] || { echo "the tests were packed" >&2; exit 1; }

step "npx kiln build site -o out1 --json"
# --no: never download a package called kiln; the local one or nothing.
npx --no -- kiln build site -o out1 --json >"$work/build.json"
node -e '
const fs = require("node:fs");
const summary = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
if (summary.ok !== true) throw new Error(`ok is ${summary.ok}`);
if (!(summary.total.files > 0)) throw new Error("no files in the summary");
for (const f of ["out1/kiln-manifest.json", "out1/index.html"]) {
  if (!fs.existsSync(f)) throw new Error(`${f} is missing`);
}
' "$work/build.json"

step "npm run build"
npm run build >&2
for file in out/kiln-manifest.json out/index.html; do
    [[ -f $file ]] || { echo "npm run build did not write $file" >&2; exit 1; }
done

step "the JS API of the installed package"
node -e '
const path = require("node:path");
const kiln = require("kiln");
const binary = kiln.binaryPath();
const expected = path.join("node_modules", "@kiln");
if (!binary.includes(expected)) throw new Error(`binary ${binary} is not under ${expected}`);
kiln.build({ source: "site", out: "out2", compressEffort: "fast" }).then((summary) => {
  if (summary.ok !== true) throw new Error("build() did not succeed");
  return kiln.deploy({ out: "out2", to: `dir:${path.resolve("origin")}` });
}).then((deployed) => {
  if (!(deployed.uploaded > 0)) throw new Error("deploy() uploaded nothing");
}).catch((error) => {
  console.error(error);
  process.exit(1);
});
'

step "the package tests (node --test)"
cd "$root/npm/kiln"
KILN_BINARY="$kiln_bin" node --test --test-reporter=spec test/*.test.js >&2

echo npm-ok
