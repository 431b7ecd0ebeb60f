'use strict';
// bin/kiln.js with a stand-in binary (KILN_BINARY): arguments, exit codes,
// signals, and the errors when there is no binary.

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const path = require('node:path');
const { fakeKiln, tempDir } = require('./helpers');

const BIN = path.join(__dirname, '..', 'bin', 'kiln.js');

/**
 * Run bin/kiln.js with `env` added, stdio piped (so: no terminal). `onStdout`
 * sees each chunk and the child. Resolves with { code, signal, stdout, stderr }.
 */
function runBin(args, env, onStdout = () => {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, KILN_BINARY: undefined, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      onStdout(stdout, child);
    });
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

test('arguments reach the binary exactly as given', async (t) => {
  const fake = fakeKiln(tempDir(t), 'console.log(JSON.stringify(process.argv.slice(2)));');
  const args = ['build', 'my site', '-o', "it's \"out\"", '$HOME', '', '--base=/ä/', '*'];
  const run = await runBin(args, { KILN_BINARY: fake });
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(JSON.parse(run.stdout), args);
});

test('the exit code is kiln\'s', async (t) => {
  for (const code of [0, 1, 2, 3, 4]) {
    const fake = fakeKiln(tempDir(t), `process.exit(${code});`);
    const run = await runBin([], { KILN_BINARY: fake });
    assert.equal(run.code, code);
  }
});

test('SIGTERM and SIGINT sent to the wrapper reach kiln', async (t) => {
  const fake = fakeKiln(
    tempDir(t),
    `process.on('SIGTERM', () => process.exit(42));
     process.on('SIGINT', () => process.exit(43));
     console.log('ready');
     setInterval(() => {}, 1000);`,
  );
  for (const [signal, code] of [['SIGTERM', 42], ['SIGINT', 43]]) {
    let sent = false;
    const run = await runBin([], { KILN_BINARY: fake }, (stdout, child) => {
      if (!sent && stdout.includes('ready')) {
        sent = true;
        child.kill(signal);
      }
    });
    assert.equal(run.code, code, `${signal}: ${run.stderr}`);
  }
});

test('kiln killed by a signal: the wrapper dies of the same signal', async (t) => {
  const fake = fakeKiln(tempDir(t), "process.kill(process.pid, 'SIGTERM'); setInterval(() => {}, 1000);");
  const run = await runBin([], { KILN_BINARY: fake });
  assert.equal(run.signal, 'SIGTERM');
});

test('KILN_BINARY naming no file: exit 2 with the reason', async (t) => {
  const missing = path.join(tempDir(t), 'no-such-kiln');
  const run = await runBin(['build'], { KILN_BINARY: missing });
  assert.equal(run.code, 2);
  assert.match(run.stderr, /KILN_BINARY is set to .*no-such-kiln, but there is no file there/);
});

test('a binary that cannot run: exit 2 with the reason', async (t) => {
  const dir = tempDir(t);
  const fake = fakeKiln(dir, '');
  require('node:fs').chmodSync(fake, 0o644);
  const run = await runBin([], { KILN_BINARY: fake });
  assert.equal(run.code, 2);
  assert.match(run.stderr, /could not run .*fake-kiln: .*EACCES/);
});

test('no platform package and no KILN_BINARY: exit 2 naming the package', async () => {
  // In the repository, no @kiln/* package is installed next to npm/kiln.
  const run = await runBin(['--version'], {});
  assert.equal(run.code, 2);
  assert.match(run.stderr, /kiln: .*@kiln\/[\w-]+/);
});
