#!/usr/bin/env node
// Pack the npm packages for one platform:
//
//   node npm/scripts/pack.mjs --binary target/release/kiln --out DIR [--platform KEY]
//
// copies the binary into npm/platforms/<KEY>/bin/ (KEY defaults to this
// machine's; it is a package name such as linux-x64-gnu, or its Rust target
// such as x86_64-unknown-linux-gnu), runs `npm pack` for npm/kiln and for that
// platform package into DIR, removes the copied binary again, and prints
// {"version", "platform", "package", "tarballs": [main, platform]} as JSON on
// stdout.
//
// A release runs it once per target, each with the binary built for it and
// --platform naming the target (docs/npm.md); the kiln tarball is the same
// from every run, so any one of them is published.

import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { NPM_DIR, crateVersion, outOfSync } from './sync-version.mjs';

const { PLATFORMS, binaryName, detectLibc, packageName, platformKey } = createRequire(
  import.meta.url,
)('../kiln/lib/platform.js');

// Thrown, not process.exit(): the copied binary is removed on the way out.
function fail(message) {
  throw new Error(message);
}

function options() {
  try {
    const { values } = parseArgs({
      options: {
        binary: { type: 'string' },
        out: { type: 'string' },
        platform: { type: 'string' },
      },
      strict: true,
    });
    if (!values.binary || !values.out) throw new Error('--binary and --out are required');
    return values;
  } catch (error) {
    console.error(`pack.mjs: ${error.message}`);
    console.error('usage: node npm/scripts/pack.mjs --binary PATH --out DIR [--platform KEY]');
    const known = Object.entries(PLATFORMS).map(([key, p]) => `${key} (${p.target})`);
    console.error(`KEY: ${known.join(', ')}; default: this machine's`);
    process.exit(2);
  }
}

/** This machine's platform key, or null when kiln has no package for it. */
function hostKey() {
  try {
    return platformKey({ platform: process.platform, arch: process.arch, libc: detectLibc() });
  } catch {
    return null;
  }
}

/** A platform key from a key (`linux-x64-gnu`) or its Rust target (`x86_64-unknown-linux-gnu`). */
function platformByName(name) {
  const key = PLATFORMS[name] ? name : Object.keys(PLATFORMS).find((k) => PLATFORMS[k].target === name);
  if (!key) {
    const known = Object.entries(PLATFORMS).map(([k, p]) => `${k} (${p.target})`);
    fail(`unknown platform ${name}; known: ${known.join(', ')}`);
  }
  return key;
}

/** `npm pack` of one package directory into `out`; returns the tarball's path. */
function npmPack(dir, out) {
  const result = spawnSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', out], {
    cwd: dir,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (result.error) fail(`could not run npm: ${result.error.message}`);
  if (result.status !== 0) fail(`npm pack failed in ${dir} (exit code ${result.status})`);
  const [packed] = JSON.parse(result.stdout);
  return join(out, packed.filename);
}

function main() {
  if (process.platform === 'win32') {
    // spawn cannot run npm.cmd without a shell; pack Windows binaries elsewhere.
    fail('run this on Linux or macOS; pack a Windows binary there with --platform win32-x64');
  }
  const args = options();
  const version = crateVersion();
  const stale = outOfSync(version);
  if (stale.length) {
    fail(`not at Cargo.toml's ${version}: ${stale.join(', ')}; run npm/scripts/sync-version.mjs`);
  }

  const host = hostKey();
  const key = args.platform ? platformByName(args.platform) : host;
  if (!key) fail(`no package for ${process.platform}/${process.arch} here; name one with --platform`);
  const binary = resolve(args.binary);
  let stat;
  try {
    stat = statSync(binary);
  } catch {
    fail(`no binary at ${binary}`);
  }
  if (!stat.isFile()) fail(`${binary} is not a file`);
  if (key === host) {
    // The binary runs here: make sure it is the version being packed.
    const run = spawnSync(binary, ['--version'], { encoding: 'utf8' });
    const said = (run.stdout || '').trim();
    if (said !== `kiln ${version}`) fail(`${binary} --version says "${said}", expected "kiln ${version}"`);
  }

  const out = resolve(args.out);
  mkdirSync(out, { recursive: true });
  const platformDir = join(NPM_DIR, 'platforms', key);
  const binDir = join(platformDir, 'bin');
  let tarballs;
  try {
    rmSync(binDir, { recursive: true, force: true });
    mkdirSync(binDir);
    const target = join(binDir, binaryName(PLATFORMS[key].os));
    copyFileSync(binary, target);
    chmodSync(target, 0o755); // npm pack keeps the executable bit
    tarballs = [npmPack(join(NPM_DIR, 'kiln'), out), npmPack(platformDir, out)];
  } finally {
    // Binaries are never left in the source tree (npm/.gitignore covers a kill).
    rmSync(binDir, { recursive: true, force: true });
  }
  console.log(JSON.stringify({ version, platform: key, package: packageName(key), tarballs }, null, 2));
}

try {
  main();
} catch (error) {
  console.error(`pack.mjs: ${error.message}`);
  process.exit(1);
}
