#!/usr/bin/env node
// Keep every npm package at the crate's version.
//
//   node npm/scripts/sync-version.mjs          write Cargo.toml's version into every package.json
//   node npm/scripts/sync-version.mjs --check  only report; exit 1 if any is out of sync
//
// "Every package.json" is npm/kiln and each npm/platforms/<key> of the platform
// map (lib/platform.js), and kiln's optionalDependencies, which must list
// exactly those packages, each at the same version.

import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const NPM_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
const CARGO_TOML = join(NPM_DIR, '..', 'Cargo.toml');
const { PLATFORMS, packageName } = createRequire(import.meta.url)('../kiln/lib/platform.js');

/** The `version` of Cargo.toml's [package] table. */
export function crateVersion(text = readFileSync(CARGO_TOML, 'utf8')) {
  let inPackage = false;
  for (const line of text.split(/\r?\n/)) {
    const header = line.match(/^\s*\[([^\]]*)\]/);
    if (header) {
      inPackage = header[1].trim() === 'package';
      continue;
    }
    const version = inPackage && line.match(/^\s*version\s*=\s*"([^"]+)"/);
    if (version) return version[1];
  }
  throw new Error(`no version in the [package] table of ${CARGO_TOML}`);
}

/** [path, parsed package.json, wanted package.json] for every package. */
function plan(version) {
  const main = join(NPM_DIR, 'kiln', 'package.json');
  const platforms = Object.keys(PLATFORMS).map((key) => join(NPM_DIR, 'platforms', key, 'package.json'));
  const files = [main, ...platforms];
  return files.map((file) => {
    const current = JSON.parse(readFileSync(file, 'utf8'));
    const wanted = { ...current, version };
    if (file === main) {
      wanted.optionalDependencies = Object.fromEntries(
        Object.keys(PLATFORMS).map((key) => [packageName(key), version]),
      );
    }
    return [file, current, wanted];
  });
}

/** The package.json files that differ from the crate's version, as relative paths. */
export function outOfSync(version = crateVersion()) {
  return plan(version)
    .filter(([, current, wanted]) => JSON.stringify(current) !== JSON.stringify(wanted))
    .map(([file]) => relative(process.cwd(), file));
}

function main(argv) {
  const unknown = argv.filter((arg) => arg !== '--check');
  if (unknown.length) {
    console.error(`unknown argument ${unknown[0]}; usage: sync-version.mjs [--check]`);
    process.exit(2);
  }
  const version = crateVersion();
  if (argv.includes('--check')) {
    const stale = outOfSync(version);
    if (stale.length) {
      console.error(`out of sync with Cargo.toml (${version}): ${stale.join(', ')}`);
      console.error('run: node npm/scripts/sync-version.mjs');
      process.exit(1);
    }
    console.log(`npm packages at ${version}, like Cargo.toml`);
    return;
  }
  for (const [file, current, wanted] of plan(version)) {
    if (JSON.stringify(current) === JSON.stringify(wanted)) continue;
    writeFileSync(file, `${JSON.stringify(wanted, null, 2)}\n`);
    console.log(`${relative(process.cwd(), file)}: ${current.version} → ${version}`);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) main(process.argv.slice(2));
