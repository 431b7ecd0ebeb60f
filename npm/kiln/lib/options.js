'use strict';
// camelCase options → kiln's command-line arguments, checked before anything
// runs. Mirrors `kiln build --help` and `kiln deploy --help` (src/cli.rs):
// a flag added there is added here, in index.d.ts and in the tests.

/** Option name → kind. The flag is the kebab-case name: cacheDir → --cache-dir. */
const COMMANDS = {
  build: {
    positional: 'source', // [SRC]
    options: {
      out: 'string',
      config: 'string',
      base: 'string',
      hash: 'string', // referenced | all | none
      cacheDir: 'string',
      noCache: 'boolean',
      sourcemaps: 'boolean',
      compressEffort: 'string', // best | fast
      host: 'string', // all | netlify | cloudflare-pages | s3 | nginx | caddy | apache
      noMinify: 'boolean',
      strict: 'boolean',
      force: 'boolean',
      quiet: 'boolean',
      jobs: 'integer',
      memoryBudget: 'integer',
      budgets: 'string',
      noFailOnBudget: 'boolean',
      compareTo: 'string', // a manifest, an output directory, s3://… or dir:…
      noReport: 'boolean',
      github: 'boolean',
    },
  },
  deploy: {
    positional: 'out', // [OUT]
    options: {
      to: 'string',
      config: 'string',
      endpoint: 'string',
      region: 'string',
      pathStyle: 'boolean',
      encoding: 'string', // negotiate | gzip | none
      concurrency: 'integer',
      maxDelete: 'integer',
      keepDeploys: 'integer',
      keepFor: 'duration', // '7d', '90s', or 0
      pruneForeign: 'boolean',
      verify: 'boolean',
      dryRun: 'boolean',
      raw: 'boolean',
      cloudfront: 'string',
      warm: 'string',
      cloudflareZone: 'string',
      fastlyService: 'string',
      siteUrl: 'string',
      verbose: 'boolean',
      github: 'boolean',
    },
  },
};

/** Options that shape the child process rather than the command line. */
const PROCESS_OPTIONS = ['cwd', 'env', 'signal'];

function kebab(name) {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** A flag's value as a string, or a TypeError naming the option. */
function value(command, name, kind, given) {
  const bad = (expected) =>
    new TypeError(`kiln.${command}: option "${name}" must be ${expected}, got ${describe(given)}`);
  switch (kind) {
    case 'string':
      if (typeof given !== 'string') throw bad('a string');
      return given;
    case 'integer':
      if (!Number.isSafeInteger(given) || given < 0) throw bad('a non-negative integer');
      return String(given);
    case 'duration':
      if (typeof given === 'string') return given;
      if (Number.isSafeInteger(given) && given >= 0) return `${given}s`;
      throw bad('a duration such as "7d" or a number of seconds');
    default:
      throw new Error(`unknown kind ${kind}`);
  }
}

function describe(given) {
  if (given === null) return 'null';
  if (Array.isArray(given)) return 'an array';
  return typeof given === 'string' ? JSON.stringify(given) : `${typeof given} ${String(given)}`;
}

/**
 * The arguments for `kiln <command>` (without the binary), always with --json.
 * Throws a TypeError for an unknown option or a value of the wrong type.
 * undefined and null mean "not given"; a false boolean is left out.
 */
function toArgs(command, options = {}) {
  const spec = COMMANDS[command];
  if (!spec) throw new TypeError(`unknown kiln command ${command}`);
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`kiln.${command}: options must be an object, got ${describe(options)}`);
  }
  const args = [command, '--json'];
  let positional;
  for (const [name, given] of Object.entries(options)) {
    if (PROCESS_OPTIONS.includes(name)) continue;
    if (name === spec.positional) {
      if (given != null) positional = value(command, name, 'string', given);
      continue;
    }
    const kind = Object.hasOwn(spec.options, name) ? spec.options[name] : undefined;
    if (kind === undefined) {
      const known = [spec.positional, ...Object.keys(spec.options), ...PROCESS_OPTIONS];
      throw new TypeError(
        `kiln.${command}: unknown option "${name}" (known: ${known.join(', ')})`,
      );
    }
    if (given == null) continue;
    const flag = `--${kebab(name)}`;
    if (kind === 'boolean') {
      if (typeof given !== 'boolean') {
        throw new TypeError(
          `kiln.${command}: option "${name}" must be a boolean, got ${describe(given)}`,
        );
      }
      if (given) args.push(flag);
    } else {
      // --flag=value: a value that starts with "-" stays a value.
      args.push(`${flag}=${value(command, name, kind, given)}`);
    }
  }
  // After "--", a source or output directory named "-x" is not a flag.
  if (positional !== undefined) args.push('--', positional);
  return args;
}

module.exports = { COMMANDS, PROCESS_OPTIONS, toArgs, kebab };
