'use strict';
// The JavaScript API against the real binary (KILN_BINARY) on fixtures/site.

const test = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const kiln = require('../lib');
const { COMMANDS, kebab } = require('../lib/options');
const { FIXTURE_SITE, realKiln, tempDir } = require('./helpers');

test('KILN_BINARY points at the kiln binary these tests run', () => {
  const binary = realKiln();
  assert.equal(kiln.binaryPath(), binary);
});

test('build() builds the fixture site and resolves with the summary', async (t) => {
  realKiln();
  const dir = tempDir(t);
  const out = path.join(dir, 'out');
  const summary = await kiln.build({ source: FIXTURE_SITE, out, cacheDir: path.join(dir, 'cache') });
  assert.equal(summary.ok, true);
  assert.equal(summary.output, out);
  assert.equal(summary.errors, 0);
  assert.ok(summary.files_written > 0);
  assert.equal(summary.kinds.html.files, 7);
  assert.ok(summary.total.brotli < summary.total.bytes_in);
  assert.ok(Array.isArray(summary.diagnostics));
  assert.ok(fs.existsSync(path.join(out, 'kiln-manifest.json')));
  assert.ok(fs.existsSync(path.join(out, 'index.html')));
});

test('relative paths are resolved from the cwd option', async (t) => {
  realKiln();
  const dir = tempDir(t);
  const summary = await kiln.build({
    cwd: dir,
    source: path.relative(dir, FIXTURE_SITE),
    out: 'site-out',
    noCache: true,
    compressEffort: 'fast',
  });
  assert.equal(summary.ok, true);
  assert.ok(fs.existsSync(path.join(dir, 'site-out', 'kiln-manifest.json')));
});

test('a failed build rejects with exit code 1, stderr and the summary', async (t) => {
  realKiln();
  const dir = tempDir(t);
  const source = path.join(dir, 'src');
  fs.mkdirSync(source);
  fs.writeFileSync(path.join(source, 'index.html'), '<!doctype html><title>x</title><img src="missing.png">');
  await assert.rejects(
    kiln.build({ source, out: path.join(dir, 'out'), strict: true, noCache: true }),
    (error) => {
      assert.equal(error.name, 'KilnError');
      assert.ok(error instanceof kiln.KilnError);
      assert.equal(error.exitCode, 1);
      assert.match(error.stderr, /missing\.png/);
      assert.equal(error.summary.ok, false);
      assert.equal(error.summary.warnings, 1);
      assert.match(error.summary.diagnostics[0].message, /missing\.png/);
      assert.match(error.message, /exit code 1/);
      assert.ok(error.args.includes('--strict'));
      return true;
    },
  );
});

test('a usage error rejects with exit code 2 and no summary', async (t) => {
  realKiln();
  const dir = tempDir(t);
  const build = kiln.build({ source: path.join(dir, 'nope'), out: path.join(dir, 'out') });
  await assert.rejects(build, (error) => {
    assert.equal(error.exitCode, 2);
    assert.equal(error.summary, undefined);
    assert.match(error.message, /does not exist/);
    return true;
  });
});

test('an aborted build rejects with an AbortError', async (t) => {
  realKiln();
  const dir = tempDir(t);
  const build = kiln.build({
    source: FIXTURE_SITE,
    out: path.join(dir, 'out'),
    noCache: true,
    signal: AbortSignal.abort(),
  });
  await assert.rejects(build, { name: 'AbortError' });
});

test('deploy() to a directory: uploads, then nothing to do', async (t) => {
  realKiln();
  const dir = tempDir(t);
  const out = path.join(dir, 'out');
  await kiln.build({ source: FIXTURE_SITE, out, noCache: true, compressEffort: 'fast' });
  const to = `dir:${path.join(dir, 'origin')}`;

  const planned = await kiln.deploy({ out, to, dryRun: true });
  assert.equal(planned.dry_run, true);
  assert.ok(planned.plan.uploads.length > 0);
  assert.ok(!fs.existsSync(path.join(dir, 'origin', 'index.html')));

  const first = await kiln.deploy({ out, to });
  assert.equal(first.target, to);
  assert.equal(first.uploaded, planned.plan.uploads.length);
  assert.ok(fs.existsSync(path.join(dir, 'origin', 'index.html')));

  const second = await kiln.deploy({ out, to, keepFor: 0 });
  assert.equal(second.uploaded, 0);
  assert.equal(second.unchanged, first.uploaded);
});

// One way only: every flag kiln has must be expressible. (A mapped flag the
// binary lacks fails at run time with kiln's own usage error.)
test('the options cover every flag of kiln build and kiln deploy (--help)', () => {
  const binary = realKiln();
  for (const [command, spec] of Object.entries(COMMANDS)) {
    const help = execFileSync(binary, [command, '--help'], { encoding: 'utf8' });
    const flags = new Set(help.match(/(?<=^\s*(?:-\w, )?)--[a-z][a-z-]*/gm));
    flags.delete('--help');
    flags.delete('--json'); // always passed
    const mapped = new Set(Object.keys(spec.options).map((name) => `--${kebab(name)}`));
    const missing = [...flags].filter((flag) => !mapped.has(flag));
    assert.ok(flags.size > 5, `kiln ${command} --help lists its flags`);
    assert.deepEqual(missing, [], `kiln ${command}: add these flags to lib/options.js and index.d.ts`);
  }
});

test('the binary is the version of the package', () => {
  const binary = realKiln();
  const { version } = require('../package.json');
  assert.equal(execFileSync(binary, ['--version'], { encoding: 'utf8' }).trim(), `kiln ${version}`);
});
