'use strict';
// Finding the binary: KILN_BINARY, the platform map, libc, missing packages.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { PLATFORMS, binaryPath, packageName, platformKey } = require('../lib/platform');
const { tempDir } = require('./helpers');

const FAKE_PLATFORMS = {
  'plan9-x64': { os: 'plan9', cpu: 'x64' },
  'linux-x64-gnu': { os: 'linux', cpu: 'x64', libc: 'glibc' },
  'linux-x64-musl': { os: 'linux', cpu: 'x64', libc: 'musl' },
  'win32-x64': { os: 'win32', cpu: 'x64' },
};

/**
 * A node_modules with the given platform packages installed (binary
 * included unless `withoutBinary`), and a require.resolve over it.
 */
function installed(t, packages, { withoutBinary = false } = {}) {
  const root = path.join(tempDir(t), 'node_modules');
  for (const key of packages) {
    const dir = path.join(root, packageName(key));
    fs.mkdirSync(path.join(dir, 'bin'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: packageName(key) }));
    const exe = FAKE_PLATFORMS[key].os === 'win32' ? 'kiln.exe' : 'kiln';
    if (!withoutBinary) fs.writeFileSync(path.join(dir, 'bin', exe), '');
  }
  const resolve = (request) => {
    const file = path.join(root, request);
    if (fs.existsSync(file)) return file;
    throw Object.assign(new Error(`Cannot find module '${request}'`), { code: 'MODULE_NOT_FOUND' });
  };
  return { root, resolve };
}

function lookup(t, host, packages, extra = {}) {
  const { root, resolve } = installed(t, packages, extra);
  const file = binaryPath({ env: {}, platforms: FAKE_PLATFORMS, resolve, ...host });
  return path.relative(root, file);
}

test('the package for the platform and architecture is used', (t) => {
  const all = Object.keys(FAKE_PLATFORMS);
  assert.equal(
    lookup(t, { platform: 'plan9', arch: 'x64' }, all),
    path.join('@kiln', 'plan9-x64', 'bin', 'kiln'),
  );
  assert.equal(
    lookup(t, { platform: 'win32', arch: 'x64' }, all),
    path.join('@kiln', 'win32-x64', 'bin', 'kiln.exe'),
  );
});

test('on Linux the C library picks the package', (t) => {
  const all = Object.keys(FAKE_PLATFORMS);
  assert.equal(
    lookup(t, { platform: 'linux', arch: 'x64', libc: 'glibc' }, all),
    path.join('@kiln', 'linux-x64-gnu', 'bin', 'kiln'),
  );
  assert.equal(
    lookup(t, { platform: 'linux', arch: 'x64', libc: 'musl' }, all),
    path.join('@kiln', 'linux-x64-musl', 'bin', 'kiln'),
  );
  // Unknown libc: glibc.
  assert.equal(
    lookup(t, { platform: 'linux', arch: 'x64', libc: null }, all),
    path.join('@kiln', 'linux-x64-gnu', 'bin', 'kiln'),
  );
});

test('musl has no package: the error says so and names the way out', () => {
  assert.throws(
    () => platformKey({ platform: 'linux', arch: 'x64', libc: 'musl' }),
    (error) =>
      /musl/.test(error.message) &&
      /glibc/.test(error.message) &&
      /@kiln\/linux-x64-gnu/.test(error.message) &&
      /cargo install/.test(error.message) &&
      /KILN_BINARY/.test(error.message),
  );
});

test('an unsupported platform: the error lists the supported ones', () => {
  for (const host of [
    { platform: 'freebsd', arch: 'x64' },
    { platform: 'linux', arch: 'ppc64' },
    { platform: 'win32', arch: 'arm64' },
  ]) {
    assert.throws(
      () => binaryPath({ env: {}, ...host, libc: 'glibc' }),
      (error) => {
        assert.match(error.message, new RegExp(`${host.platform}/${host.arch}`));
        for (const key of Object.keys(PLATFORMS)) assert.ok(error.message.includes(packageName(key)), key);
        assert.match(error.message, /cargo install/);
        assert.match(error.message, /KILN_BINARY/);
        return true;
      },
    );
  }
});

test('a platform package that is not installed (--no-optional): a clear error', (t) => {
  assert.throws(
    () => lookup(t, { platform: 'plan9', arch: 'x64' }, ['win32-x64']),
    (error) =>
      /@kiln\/plan9-x64 is not installed/.test(error.message) &&
      /--omit=optional/.test(error.message) &&
      /KILN_BINARY/.test(error.message),
  );
});

test('a platform package without its binary: a clear error', (t) => {
  assert.throws(
    () => lookup(t, { platform: 'plan9', arch: 'x64' }, ['plan9-x64'], { withoutBinary: true }),
    /@kiln\/plan9-x64 is installed, but its binary .* is missing/,
  );
});

test('KILN_BINARY wins, on any platform', (t) => {
  const dir = tempDir(t);
  const binary = path.join(dir, 'my-kiln');
  fs.writeFileSync(binary, '');
  const resolve = () => assert.fail('no package lookup with KILN_BINARY');
  const env = { KILN_BINARY: binary };
  assert.equal(binaryPath({ env, platform: 'freebsd', arch: 'x64', resolve }), binary);
  // A relative path is resolved from the current directory.
  const relative = path.relative(process.cwd(), binary);
  assert.equal(binaryPath({ env: { KILN_BINARY: relative }, resolve }), binary);
});

test('KILN_BINARY naming no file is an error, not a fallback', (t) => {
  const missing = path.join(tempDir(t), 'nope');
  assert.throws(
    () => binaryPath({ env: { KILN_BINARY: missing } }),
    /KILN_BINARY is set to .*nope, but there is no file there/,
  );
});

test('the package templates match the platform map', () => {
  const npm = path.join(__dirname, '..', '..');
  const main = JSON.parse(fs.readFileSync(path.join(npm, 'kiln', 'package.json'), 'utf8'));
  assert.deepEqual(
    Object.keys(main.optionalDependencies).sort(),
    Object.keys(PLATFORMS).map(packageName).sort(),
  );
  assert.deepEqual(fs.readdirSync(path.join(npm, 'platforms')).sort(), Object.keys(PLATFORMS).sort());
  for (const [key, p] of Object.entries(PLATFORMS)) {
    const pkg = JSON.parse(fs.readFileSync(path.join(npm, 'platforms', key, 'package.json'), 'utf8'));
    assert.equal(pkg.name, packageName(key));
    assert.equal(pkg.version, main.version, key);
    assert.equal(main.optionalDependencies[pkg.name], main.version, key);
    assert.deepEqual(pkg.os, [p.os], key);
    assert.deepEqual(pkg.cpu, [p.cpu], key);
    assert.deepEqual(pkg.libc, p.libc ? [p.libc] : undefined, key);
    assert.deepEqual(pkg.files, [`bin/${p.os === 'win32' ? 'kiln.exe' : 'kiln'}`], key);
    assert.equal(pkg.bin, undefined, `${key}: only kiln's bin/kiln.js is linked`);
  }
});
