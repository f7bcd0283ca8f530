/**
 * `--runtime node|bun|deno`: runs the CLI again under another runtime, so Nexus and its workers run
 * there. The runtime's binary is looked up in the nearest `node_modules/.bin` (walking up from the
 * working directory, then from the CLI's own location), then on `PATH`. The child gets the same
 * arguments and stdio; SIGINT, SIGTERM and SIGHUP are forwarded to it; its exit code is ours.
 * @module
 */
import { spawn } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { currentRuntimeName, type DenoPermissionName, missingDenoPermissions } from '@improv/core';
import {
  findRuntimeBinary,
  type RuntimeSearch,
  runtimeInstallHelp,
  scriptArguments,
} from '@improv/core/runtime/binaries';
import { listed, shellLine } from './text.ts';

/** The runtimes `--runtime` accepts. */
export const runtimeNames = ['node', 'bun', 'deno'] as const;
/** One of {@link runtimeNames}. */
export type RuntimeName = (typeof runtimeNames)[number];

/** The CLI's own entry, which the child runs. */
const cliEntry = fileURLToPath(new URL('../bin/improv.mjs', import.meta.url));
/** Set in the child, so a binary that turns out to be another runtime cannot make us loop. */
const REEXEC_ENV = 'IMPROV_RUNTIME_REEXEC';

/**
 * What each command needs from Deno: files and the environment (read by libraries at load) to
 * validate; for a run (and a server) also writing its log and token, system facts (`os.uid()` and
 * friends, for the run folder and workers), and the network, for its control server on 127.0.0.1.
 */
const denoNeeds: Record<'run' | 'validate', DenoPermissionName[]> = {
  validate: ['read', 'env'],
  run: ['read', 'write', 'env', 'sys', 'net'],
};

/**
 * Under Deno, the message for permissions `command` needs but was not given, or undefined when it
 * has them (and always outside Deno). Checked before anything is read: Deno's own refusals come one
 * at a time, and some only as a stack trace from inside a library.
 */
export function denoPermissionProblem(command: 'run' | 'validate', argv: readonly string[]): string | undefined {
  const missing = missingDenoPermissions(denoNeeds[command]);
  if (missing.length === 0) return undefined;
  const flags = denoNeeds[command].map((name) => `--allow-${name}`).join(' ');
  const script = path.relative(process.cwd(), cliEntry) || cliEntry;
  const again = shellLine(['deno', ...scriptArguments('deno', script), ...argv]);
  return [
    `improv ${command}: Deno was not given the ${listed(missing)} permission${missing.length > 1 ? 's' : ''} it needs (it needs ${flags}; a grant for some paths only is not enough: actor modules and their packages are read wherever they are)`,
    `  fix: run it as  ${again}`,
    `       or grant them one by one:  deno run ${flags} ${shellLine([script])} …`,
  ].join('\n');
}

/** Options of {@link runUnder}: where to look for the runtime, and what to run under it. */
export interface RunUnderOptions extends RuntimeSearch {
  /**
   * The script the child runs, with `argv` after it: a JavaScript file that loads its TypeScript
   * itself (through tsx on Node), like the CLI's `bin/improv.mjs`. Default: the improv CLI.
   */
  entry?: string;
  /** The program's name at the start of messages. Default: `improv`. */
  program?: string;
}

/**
 * Runs a program (the CLI unless `options.entry` says otherwise) with `argv` under `name` and
 * resolves to the child's exit code (128 + the signal number when a signal ended it). Resolves to 2
 * with a message when the runtime cannot be found.
 */
export function runUnder(
  name: RuntimeName,
  argv: string[],
  write: (line: string) => void,
  options: RunUnderOptions = {},
): Promise<number> {
  const program = options.program ?? 'improv';
  const entry = options.entry ?? cliEntry;
  if (process.env[REEXEC_ENV] === name) {
    write(
      `${program}: --runtime ${name}: the program was started again under "${name}" but runs in ${currentRuntimeName()}; check which program node_modules/.bin/${name} (or ${name} on PATH) is`,
    );
    return Promise.resolve(2);
  }
  const binary = findRuntimeBinary(name, options);
  if (binary === undefined) {
    write(
      `${program}: --runtime ${name}: "${name}" was not found in node_modules/.bin or on PATH; ${runtimeInstallHelp[name]}`,
    );
    return Promise.resolve(2);
  }
  return new Promise((resolve) => {
    // Its own process group: a Ctrl-C in the terminal reaches only us, and we pass it on once.
    // Otherwise the child would get it twice, and a second SIGINT makes Nexus end every actor at once.
    const child = spawn(binary, [...scriptArguments(name, entry), ...argv], {
      stdio: 'inherit',
      env: { ...process.env, [REEXEC_ENV]: name },
      detached: process.platform !== 'win32',
    });
    const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
    const forward = (signal: NodeJS.Signals) => {
      // process.kill, not child.kill: after child.kill(), Deno's child_process reports the child as
      // killed by that signal even when it handled it and exited 0.
      if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, signal);
    };
    for (const signal of signals) process.on(signal, forward);
    const done = (code: number) => {
      for (const signal of signals) process.off(signal, forward);
      resolve(code);
    };
    child.once('error', (error) => {
      write(`${program}: --runtime ${name}: could not start ${binary}: ${error.message}`);
      done(1);
    });
    child.once('exit', (code, signal) => {
      done(code ?? 128 + (signal ? (osConstants.signals[signal] ?? 0) : 0));
    });
  });
}
