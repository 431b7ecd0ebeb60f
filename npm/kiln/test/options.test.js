'use strict';
// Options → arguments, without running anything.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { COMMANDS, toArgs } = require('../lib/options');
const kiln = require('../lib');

test('every build option maps to its flag', () => {
  const args = toArgs('build', {
    source: 'site',
    out: 'out',
    config: 'site/kiln.toml',
    base: '/docs/',
    hash: 'all',
    cacheDir: '.cache',
    noCache: true,
    sourcemaps: true,
    compressEffort: 'fast',
    host: 'cloudflare-pages',
    noMinify: true,
    strict: true,
    force: true,
    quiet: true,
    jobs: 4,
    budgets: 'budgets.toml',
    noFailOnBudget: true,
    compareTo: 's3://bucket/site',
    noReport: true,
    github: true,
  });
  assert.deepEqual(args, [
    'build',
    '--json',
    '--out=out',
    '--config=site/kiln.toml',
    '--base=/docs/',
    '--hash=all',
    '--cache-dir=.cache',
    '--no-cache',
    '--sourcemaps',
    '--compress-effort=fast',
    '--host=cloudflare-pages',
    '--no-minify',
    '--strict',
    '--force',
    '--quiet',
    '--jobs=4',
    '--budgets=budgets.toml',
    '--no-fail-on-budget',
    '--compare-to=s3://bucket/site',
    '--no-report',
    '--github',
    '--',
    'site',
  ]);
});

test('every deploy option maps to its flag', () => {
  const args = toArgs('deploy', {
    out: 'out',
    to: 's3://bucket/site',
    config: 'kiln.toml',
    endpoint: 'http://127.0.0.1:8333',
    region: 'auto',
    pathStyle: true,
    encoding: 'gzip',
    concurrency: 8,
    maxDelete: 100,
    keepDeploys: 2,
    keepFor: '12h',
    pruneForeign: true,
    verify: true,
    dryRun: true,
    raw: true,
    cloudfront: 'E123',
    warm: 'https://example.com/',
    github: true,
  });
  assert.deepEqual(args, [
    'deploy',
    '--json',
    '--to=s3://bucket/site',
    '--config=kiln.toml',
    '--endpoint=http://127.0.0.1:8333',
    '--region=auto',
    '--path-style',
    '--encoding=gzip',
    '--concurrency=8',
    '--max-delete=100',
    '--keep-deploys=2',
    '--keep-for=12h',
    '--prune-foreign',
    '--verify',
    '--dry-run',
    '--raw',
    '--cloudfront=E123',
    '--warm=https://example.com/',
    '--github',
    '--',
    'out',
  ]);
});

test('no options: the command and --json only', () => {
  assert.deepEqual(toArgs('build'), ['build', '--json']);
  assert.deepEqual(toArgs('deploy', {}), ['deploy', '--json']);
});

test('false, undefined and null leave a flag out', () => {
  assert.deepEqual(
    toArgs('build', { strict: false, noCache: undefined, out: null, source: undefined }),
    ['build', '--json'],
  );
});

test('process options are not flags', () => {
  const args = toArgs('build', { out: 'o', cwd: '/tmp', env: {}, signal: new AbortController().signal });
  assert.deepEqual(args, ['build', '--json', '--out=o']);
});

test('values that look like flags stay values', () => {
  assert.deepEqual(toArgs('build', { source: '-site', out: '--force' }), [
    'build',
    '--json',
    '--out=--force',
    '--',
    '-site',
  ]);
});

test('keepFor takes a duration string or a number of seconds', () => {
  assert.deepEqual(toArgs('deploy', { keepFor: 0 }), ['deploy', '--json', '--keep-for=0s']);
  assert.deepEqual(toArgs('deploy', { keepFor: 90 }), ['deploy', '--json', '--keep-for=90s']);
  assert.deepEqual(toArgs('deploy', { keepFor: '7d' }), ['deploy', '--json', '--keep-for=7d']);
});

test('an unknown option is a TypeError that lists the known ones', () => {
  assert.throws(
    () => toArgs('build', { minify: false }),
    (error) =>
      error instanceof TypeError &&
      /unknown option "minify"/.test(error.message) &&
      /noMinify/.test(error.message),
  );
  // A deploy flag is not a build flag, and the other way round.
  assert.throws(() => toArgs('build', { dryRun: true }), TypeError);
  assert.throws(() => toArgs('deploy', { strict: true }), TypeError);
  // --json is always passed; it is not an option.
  assert.throws(() => toArgs('build', { json: true }), TypeError);
});

test('a value of the wrong type is a TypeError naming the option', () => {
  const cases = [
    { strict: 'yes' },
    { noCache: 1 },
    { jobs: '4' },
    { jobs: -1 },
    { jobs: 1.5 },
    { out: 5 },
    { source: ['a', 'b'] },
    { base: {} },
  ];
  for (const options of cases) {
    const [name] = Object.keys(options);
    assert.throws(
      () => toArgs('build', options),
      (error) => error instanceof TypeError && error.message.includes(`"${name}"`),
      JSON.stringify(options),
    );
  }
  assert.throws(() => toArgs('deploy', { keepFor: true }), TypeError);
  assert.throws(() => toArgs('deploy', { maxDelete: Infinity }), TypeError);
});

test('options must be an object', () => {
  assert.throws(() => toArgs('build', 'site'), TypeError);
  assert.throws(() => toArgs('build', ['site']), TypeError);
  assert.throws(() => toArgs('build', null), TypeError);
});

test('build() and deploy() reject (not throw) on a bad option, before looking for kiln', async () => {
  let promise;
  assert.doesNotThrow(() => {
    promise = kiln.build({ minify: false });
  });
  await assert.rejects(promise, TypeError);
  await assert.rejects(kiln.deploy({ to: 42 }), TypeError);
});

test('index.d.ts declares every option', () => {
  const types = fs.readFileSync(path.join(__dirname, '..', 'index.d.ts'), 'utf8');
  for (const [command, spec] of Object.entries(COMMANDS)) {
    const name = `${command[0].toUpperCase()}${command.slice(1)}Options`; // BuildOptions
    const block = types.slice(types.indexOf(`interface ${name}`));
    const body = block.slice(0, block.indexOf('\n}'));
    for (const option of [spec.positional, ...Object.keys(spec.options)]) {
      assert.match(body, new RegExp(`\\b${option}\\?:`), `${command}.${option}`);
    }
  }
});
