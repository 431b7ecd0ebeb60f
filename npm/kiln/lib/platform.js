'use strict';
// Finding the kiln binary: `KILN_BINARY`, else the per-platform package that
// npm installed from `optionalDependencies` (the esbuild/swc pattern: npm
// only installs the one whose `os`, `cpu` and `libc` match the machine).

const fs = require('node:fs');
const path = require('node:path');

/**
 * Every published platform package: npm/platforms/<key>/ holds its template,
 * and `target` is the Rust target its binary is built for.
 */
const PLATFORMS = {
  'linux-x64-gnu': { os: 'linux', cpu: 'x64', libc: 'glibc', target: 'x86_64-unknown-linux-gnu' },
  'linux-arm64-gnu': { os: 'linux', cpu: 'arm64', libc: 'glibc', target: 'aarch64-unknown-linux-gnu' },
  'darwin-arm64': { os: 'darwin', cpu: 'arm64', target: 'aarch64-apple-darwin' },
  'darwin-x64': { os: 'darwin', cpu: 'x64', target: 'x86_64-apple-darwin' },
  'win32-x64': { os: 'win32', cpu: 'x64', target: 'x86_64-pc-windows-msvc' },
};

const SCOPE = '@kiln';

/** npm package name of a platform key: `linux-x64-gnu` → `@kiln/linux-x64-gnu`. */
function packageName(key) {
  return `${SCOPE}/${key}`;
}

/** File name of the binary inside a platform package's `bin/`. */
function binaryName(os) {
  return os === 'win32' ? 'kiln.exe' : 'kiln';
}

/**
 * The C library on Linux: 'glibc', 'musl', or null when neither can be told
 * (or not on Linux). Reads /usr/bin/ldd first (cheap, like detect-libc),
 * then asks Node's diagnostic report which libc Node itself runs on.
 */
function detectLibc() {
  if (process.platform !== 'linux') return null;
  try {
    const ldd = fs.readFileSync('/usr/bin/ldd', 'latin1');
    if (ldd.includes('musl')) return 'musl';
    if (ldd.includes('GNU C Library') || ldd.includes('GLIBC')) return 'glibc';
  } catch {
    // No ldd (distroless images): fall through to the report.
  }
  try {
    // The report looks up network interfaces unless told not to (slow offline).
    if ('excludeNetwork' in process.report) process.report.excludeNetwork = true;
    const report = process.report.getReport();
    if (report.header && report.header.glibcVersionRuntime) return 'glibc';
    if ((report.sharedObjects || []).some((file) => file.includes('musl'))) return 'musl';
  } catch {
    // No report support: unknown.
  }
  return null;
}

function supportedList(platforms) {
  return Object.entries(platforms)
    .map(([key, p]) => `${p.os}/${p.cpu}${p.libc ? ` (${p.libc})` : ''} [${packageName(key)}]`)
    .join(', ');
}

const FALLBACK =
  'Build kiln from source instead (`cargo install --path .` in a kiln checkout) ' +
  'and set KILN_BINARY to the binary.';

/**
 * The platform key for a machine, e.g. `linux-x64-gnu`. Throws an Error that
 * names the supported platforms when there is no package for it.
 * `host` = { platform, arch, libc } (libc only matters on Linux: 'glibc' or 'musl').
 */
function platformKey(host, platforms = PLATFORMS) {
  const { platform, arch, libc } = host;
  const matches = Object.keys(platforms).filter((key) => {
    const p = platforms[key];
    return p.os === platform && p.cpu === arch;
  });
  if (matches.length === 0) {
    throw new Error(
      `kiln has no prebuilt binary for ${platform}/${arch}. ` +
        `Supported: ${supportedList(platforms)}. ${FALLBACK}`,
    );
  }
  if (platform !== 'linux') return matches[0];
  // Only the C library is left to choose; when it could not be told, glibc is
  // by far the likelier.
  const wanted = libc || 'glibc';
  const match = matches.find((key) => (platforms[key].libc || 'glibc') === wanted);
  if (match) return match;
  throw new Error(
    `kiln has no prebuilt binary for ${platform}/${arch} with ${libc}: the Linux packages ` +
      `are built against glibc. Supported: ${supportedList(platforms)}. ${FALLBACK}`,
  );
}

/**
 * Absolute path of the kiln binary.
 * Options (all for tests; the defaults describe this machine):
 *   env        environment to read KILN_BINARY from (process.env)
 *   platform   process.platform
 *   arch       process.arch
 *   libc       detectLibc() on Linux
 *   platforms  the platform map (PLATFORMS)
 *   resolve    require.resolve-like function (require.resolve)
 */
function binaryPath(options = {}) {
  const env = options.env || process.env;
  const override = env.KILN_BINARY;
  if (override) {
    const file = path.resolve(override);
    if (!isFile(file)) {
      throw new Error(`KILN_BINARY is set to ${override}, but there is no file there.`);
    }
    return file;
  }

  const platform = options.platform || process.platform;
  const arch = options.arch || process.arch;
  const libc = 'libc' in options ? options.libc : platform === 'linux' ? detectLibc() : null;
  const platforms = options.platforms || PLATFORMS;
  const resolve = options.resolve || require.resolve;

  const key = platformKey({ platform, arch, libc }, platforms);
  const name = packageName(key);
  let manifest;
  try {
    manifest = resolve(`${name}/package.json`);
  } catch (error) {
    if (error && error.code !== 'MODULE_NOT_FOUND') throw error;
    throw new Error(
      `kiln's binary package ${name} is not installed. It is an optional dependency of kiln, ` +
        'which --no-optional / --omit=optional skips: reinstall without that flag (if a lockfile ' +
        'made on another platform lacks the package, remove node_modules and the lockfile first), ' +
        'or set KILN_BINARY to a kiln binary.',
    );
  }
  const file = path.join(path.dirname(manifest), 'bin', binaryName(platforms[key].os));
  if (!isFile(file)) {
    throw new Error(`${name} is installed, but its binary ${file} is missing. Reinstall kiln.`);
  }
  return file;
}

function isFile(file) {
  try {
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

module.exports = { PLATFORMS, packageName, binaryName, detectLibc, platformKey, binaryPath };
