#!/usr/bin/env node
'use strict';
// `npx kiln …`: run the native binary with the same arguments and stdio, and
// exit the way it exited (same code, or the same signal).

const { spawn } = require('node:child_process');
const tty = require('node:tty');
const { binaryPath } = require('../lib/platform');

// Exit code when there is no binary to run: kiln's "bad usage or configuration".
const NO_BINARY = 2;

let binary;
try {
  binary = binaryPath();
} catch (error) {
  process.stderr.write(`kiln: ${error.message}\n`);
  process.exit(NO_BINARY);
}

const child = spawn(binary, process.argv.slice(2), { stdio: 'inherit' });

// Signals sent to this wrapper (kill PID, a process manager, a CI timeout)
// are passed on. A Ctrl-C typed in a terminal is different: the terminal
// already sent SIGINT to every process in the foreground group, kiln included,
// and a second one would make `kiln watch` skip its graceful stop. So SIGINT
// is passed on only when this process has no terminal on its stdio.
const fromTerminal = () => tty.isatty(0) || tty.isatty(1) || tty.isatty(2);
const forwarded = ['SIGINT', 'SIGTERM', 'SIGHUP'];
const handlers = {};
for (const signal of forwarded) {
  handlers[signal] = () => {
    if (signal === 'SIGINT' && fromTerminal()) return; // kiln has it already
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  // Installing a handler also keeps this process alive until kiln exits.
  process.on(signal, handlers[signal]);
}

child.on('error', (error) => {
  process.stderr.write(`kiln: could not run ${binary}: ${error.message}\n`);
  process.exit(NO_BINARY);
});

child.on('exit', (code, signal) => {
  if (signal) {
    // Die of the same signal, so a shell sees 128+n as if kiln ran directly.
    for (const name of forwarded) process.removeListener(name, handlers[name]);
    process.kill(process.pid, signal);
    // Still alive a moment later (a signal Node ignores, such as SIGPIPE, or
    // Windows): exit with the shell's convention for it instead.
    const number = require('node:os').constants.signals[signal];
    setTimeout(() => process.exit(number ? 128 + number : 1), 200);
    return;
  }
  process.exit(code === null ? 1 : code);
});
