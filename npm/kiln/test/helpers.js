'use strict';
// Shared by the tests (not a test file itself: `npm test` runs test/*.test.js).

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

/** A fresh temporary directory, removed when the test ends. */
function tempDir(t, prefix = 'kiln-npm-test-') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * An executable stand-in for the kiln binary: a Node script (absolute
 * shebang, so PATH does not matter) with `body` as its code.
 */
function fakeKiln(dir, body) {
  const file = path.join(dir, 'fake-kiln');
  fs.writeFileSync(file, `#!${process.execPath}\n'use strict';\n${body}\n`, { mode: 0o755 });
  return file;
}

/** The real binary, from KILN_BINARY; a clear failure when it is not set. */
function realKiln() {
  const binary = process.env.KILN_BINARY;
  if (!binary) {
    throw new Error(
      'these tests run the real kiln: set KILN_BINARY to its path, e.g. ' +
        'KILN_BINARY=$PWD/target/debug/kiln node --test npm/kiln/test/*.test.js',
    );
  }
  if (!fs.existsSync(binary)) throw new Error(`KILN_BINARY=${binary}: no such file`);
  return path.resolve(binary);
}

const REPO = path.join(__dirname, '..', '..', '..');
const FIXTURE_SITE = path.join(REPO, 'fixtures', 'site');

module.exports = { tempDir, fakeKiln, realKiln, REPO, FIXTURE_SITE };
