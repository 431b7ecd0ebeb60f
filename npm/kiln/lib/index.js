'use strict';
// The JavaScript API: run the kiln binary with --json and resolve with the
// summary it prints. No shell is involved: arguments go to spawn as an array.

const { spawn } = require('node:child_process');
const { toArgs } = require('./options');
const platform = require('./platform');

/** A kiln run that exited non-zero (or could not parse its own summary). */
class KilnError extends Error {
  constructor(message, details) {
    super(message);
    this.name = 'KilnError';
    /** Exit code (1 build failed, 2 usage or configuration, 3 output not writable, 4 budget exceeded). */
    this.exitCode = details.exitCode;
    /** The signal that ended kiln, if one did. */
    this.signal = details.signal;
    this.stderr = details.stderr;
    this.stdout = details.stdout;
    /** The parsed JSON summary, when kiln printed one (a failed build does). */
    this.summary = details.summary;
    /** The arguments kiln was run with (without the binary). */
    this.args = details.args;
  }
}

function run(command, options) {
  // Inside the executor, a bad option (TypeError) or a missing binary becomes
  // a rejection, like any other failure, rather than a synchronous throw.
  return new Promise((resolve, reject) => {
    const opts = options === undefined ? {} : options;
    const args = toArgs(command, opts);
    const binary = platform.binaryPath();
    const child = spawn(binary, args, {
      cwd: opts.cwd,
      env: opts.env,
      signal: opts.signal,
      stdio: ['ignore', 'pipe', 'pipe'],
      windowsHide: true,
    });
    const stdout = [];
    const stderr = [];
    child.stdout.on('data', (chunk) => stdout.push(chunk));
    child.stderr.on('data', (chunk) => stderr.push(chunk));
    child.on('error', (error) => {
      // Could not start (ENOENT, EACCES), or aborted through `signal`.
      if (error.name !== 'AbortError') error.message = `kiln (${binary}): ${error.message}`;
      reject(error);
    });
    child.on('close', (exitCode, signal) => {
      const out = Buffer.concat(stdout).toString('utf8');
      const err = Buffer.concat(stderr).toString('utf8');
      const summary = parse(out);
      const details = { exitCode, signal, stdout: out, stderr: err, summary, args };
      if (exitCode === 0 && summary !== undefined) {
        resolve(summary);
      } else if (exitCode === 0) {
        reject(new KilnError(`kiln ${command} printed no JSON summary`, details));
      } else if (signal) {
        reject(new KilnError(`kiln ${command} was killed by ${signal}`, details));
      } else {
        const reason = failure(exitCode, err, summary);
        reject(new KilnError(`kiln ${command} failed (exit code ${exitCode}): ${reason}`, details));
      }
    });
  });
}

function parse(text) {
  if (!text.trim()) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * Why kiln failed, in one line: the budgets that failed (exit code 4), else
 * its last `error: …` line (a fatal error such as a bad flag or an unwritable
 * output), else the summary's counts (a build that failed on diagnostics),
 * else its last line of stderr.
 */
function failure(exitCode, stderr, summary) {
  const outcomes = (summary && summary.budgets && summary.budgets.outcomes) || [];
  const over = outcomes.filter((outcome) => !outcome.ok).map((outcome) => outcome.rule);
  if (exitCode === 4 && over.length) return `size budget exceeded: ${over.join(', ')}`;
  const lines = stderr.split(/\r?\n/).filter((line) => line.trim());
  const fatal = lines.filter((line) => line.startsWith('error'));
  if (fatal.length) return fatal[fatal.length - 1];
  if (summary && typeof summary.errors === 'number') {
    return `${summary.errors} error(s), ${summary.warnings} warning(s)`;
  }
  return lines.length ? lines[lines.length - 1] : 'no message';
}

/** `kiln build … --json`; resolves with the build summary. */
function build(options) {
  return run('build', options);
}

/** `kiln deploy … --json`; resolves with the deploy summary. */
function deploy(options) {
  return run('deploy', options);
}

/** Absolute path of the binary the API and `npx kiln` run. */
function binaryPath() {
  return platform.binaryPath();
}

module.exports = { build, deploy, binaryPath, KilnError };
