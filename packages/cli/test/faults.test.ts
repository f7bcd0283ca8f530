/**
 * The CLI as a process when things go wrong around it: a signal during a scripted wait, a parent
 * that dies, Ctrl-C while actors load, a closed stdout, a bad --run-dir, and a prompt that must
 * answer status and quit while a command hangs.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { currentRuntimeName } from '@improv/core';
import { scriptArguments } from '@improv/core/runtime/binaries';
import { describe, expect, it } from 'vitest';
import type { RuntimeName } from '../src/runtime-switch.ts';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const bin = join(root, 'packages/cli/bin/improv.mjs');
const minimal = join(root, 'apps/minimal/minimal.yaml');
const testActors = join(root, 'packages/core/src/testing/_actors.ts');
const core = join(root, 'packages/core/src/index.ts');
const cliCommand = [...scriptArguments(currentRuntimeName() as RuntimeName, bin)];

/** A folder with `pipeline.yaml` (and any other files) in it. */
function project(files: Record<string, string>): string {
  const folder = mkdtempSync(join(tmpdir(), 'improv-faults-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(folder, name), text);
  return folder;
}

/** A running CLI whose output can be awaited. */
function start(args: string[], cwd = project({})) {
  const child = spawn(process.execPath, [...cliCommand, ...args], { cwd, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  const waiters: (() => void)[] = [];
  const take = (chunk: Buffer) => {
    out += chunk;
    for (const waiter of waiters.splice(0)) waiter();
  };
  child.stdout.on('data', take);
  child.stderr.on('data', take);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const seen = (pattern: RegExp): Promise<void> =>
    new Promise((resolve) => {
      const check = () => {
        if (pattern.test(out)) resolve();
        else waiters.push(check);
      };
      check();
    });
  return { child, seen, exited, output: () => out };
}

function withinMs<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms))),
  ]).finally(() => clearTimeout(timer));
}

function alive(child: ChildProcess | number): boolean {
  try {
    process.kill(typeof child === 'number' ? child : child.pid!, 0);
    return true;
  } catch {
    return false;
  }
}

describe('improv run when things go wrong around it', () => {
  it('exits as soon as the pipeline has quit on SIGTERM during a scripted wait, not when the wait would end', async () => {
    const run = start(['run', minimal, '--no-log-files', '--script', 'setup; run; wait 60s; stop; quit']);
    await run.seen(/running/);
    process.kill(run.child.pid!, 'SIGTERM');
    expect(await withinMs(run.exited, 15_000, 'exiting after SIGTERM')).toBe(0);
    expect(run.output()).toMatch(/pipeline exited/);
  });

  /** improv run, started in the background through `sh -c` by `launcher`, which prints its pid. */
  const improvInBackground = `"${process.execPath}" ${cliCommand.map((arg) => `"${arg}"`).join(' ')} run "${minimal}" --no-log-files --script "setup; run; wait 120s; quit" & echo "pid $!"; wait`;

  /** Runs `launcher` until improv runs, SIGKILLs the launcher, and waits for improv to quit on its own. */
  async function killLauncher(launcher: ReturnType<typeof spawn>): Promise<string> {
    let out = '';
    const seen = (pattern: RegExp) =>
      new Promise<void>((resolve) => {
        const check = () => (pattern.test(out) ? resolve() : undefined);
        launcher.stdout!.on('data', (chunk) => {
          out += chunk;
          check();
        });
        check();
      });
    await seen(/running/);
    const pid = Number(/pid (\d+)/.exec(out)![1]);
    expect(alive(pid)).toBe(true);
    launcher.kill('SIGKILL');
    await withinMs(
      (async () => {
        while (alive(pid)) await new Promise((resolve) => setTimeout(resolve, 100));
      })(),
      20_000,
      'the orphan to quit',
    );
    await seen(/pipeline exited/);
    return out;
  }

  it('quits cleanly when the process that started it dies (SIGKILL), instead of running on as an orphan', async () => {
    // A shell stands in for npx: it starts improv, and is then killed without a chance to pass anything on.
    const folder = project({});
    const shell = spawn('sh', ['-c', improvInBackground], { cwd: folder, stdio: ['ignore', 'pipe', 'pipe'] });
    expect(await killLauncher(shell)).toMatch(/parent process is gone; quitting[\s\S]*pipeline exited/);
  });

  it('quits cleanly when npx is killed while the shell npm started it through lives on (npm 11)', async () => {
    // npm-cli.js stands in for npx: like npm 11 it runs improv through `sh -c`, and that shell outlives
    // a SIGKILL of npm, so improv's own parent stays the same.
    const folder = project({
      'npm-cli.js': `const { spawn } = require('node:child_process');\nconst shell = spawn('sh', ['-c', ${JSON.stringify(improvInBackground)}], { stdio: 'inherit' });\nshell.on('exit', (code) => process.exit(code ?? 1));\n`,
    });
    const npm = spawn(process.execPath, [join(folder, 'npm-cli.js')], {
      cwd: folder,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    await killLauncher(npm);
  });

  it('shows no prompt after Ctrl-C while the actors load', async () => {
    const folder = project({
      'package.json': '{ "type": "module" }',
      'slow.ts': `import { Actor } from ${JSON.stringify(core)};\nawait new Promise((resolve) => setTimeout(resolve, 4000));\nexport class Slow extends Actor { override async runStep() { await new Promise((r) => setTimeout(r, 5)); } }\n`,
      'pipeline.yaml': 'actors:\n  Slow:\n    package: slow.ts\n    class: Slow\n',
    });
    const run = start(['run', join(folder, 'pipeline.yaml'), '--no-log-files'], folder);
    await run.seen(/1 actor\(s\)/);
    process.kill(run.child.pid!, 'SIGINT');
    expect(await withinMs(run.exited, 20_000, 'exiting after Ctrl-C')).toBe(0);
    expect(run.output()).toMatch(/pipeline exited/);
    expect(run.output()).not.toMatch(/type help|improv> /);
  });

  it('answers status and quit at once while a command hangs on an actor that never yields', async () => {
    const folder = project({
      'pipeline.yaml': `settings:\n  signal_timeout: 20s\nactors:\n  Stuck:\n    package: ${testActors}\n    class: Dying\n    how: loop\n`,
    });
    const run = start(['run', join(folder, 'pipeline.yaml'), '--no-log-files'], folder);
    await run.seen(/all actors loaded/);
    run.child.stdin!.write('setup\nrun\n');
    await run.seen(/running/);
    await new Promise((resolve) => setTimeout(resolve, 500)); // its third step loops for good
    run.child.stdin!.write('pause\n');
    await new Promise((resolve) => setTimeout(resolve, 500));
    run.child.stdin!.write('status\n');
    await withinMs(run.seen(/pipeline: pausing/), 10_000, 'status during a hung pause');
    run.child.stdin!.write('quit\n');
    // quit ends the stuck worker after its 10 s grace; it does not wait for the pause.
    await withinMs(run.exited, 25_000, 'quit during a hung pause');
    expect(run.output()).toMatch(/did not end within 10000 ms[\s\S]*pipeline exited/);
  });

  it('a long setup(): the log names it every 15 s; Ctrl-C then says so, and quitting is no failure (exit 0)', {
    timeout: 60_000,
  }, async () => {
    const folder = project({
      'package.json': '{ "type": "module" }',
      'slow.ts': `import { Actor } from ${JSON.stringify(core)};\nexport class SlowSetup extends Actor { override async setup() { await new Promise((r) => setTimeout(r, 60_000)); } override async runStep() { await new Promise((r) => setTimeout(r, 5)); } }\n`,
      'pipeline.yaml': 'actors:\n  Slow:\n    package: slow.ts\n    class: SlowSetup\n',
    });
    const run = start(
      ['run', join(folder, 'pipeline.yaml'), '--no-log-files', '--script', 'setup; run; wait 60s; quit'],
      folder,
    );
    await run.seen(/command setup/);
    // A setup that goes on is reported every 15 s, naming whose setup() has not returned.
    await withinMs(
      run.seen(/setup: waiting for "Slow": setup\(\) has not returned after 1\d s \(quit ends it\)/),
      30_000,
      'the news of a setup that goes on',
    );
    process.kill(run.child.pid!, 'SIGINT');
    expect(await withinMs(run.exited, 30_000, 'quitting during setup')).toBe(0);
    expect(run.output()).toMatch(
      /actor "Slow" did not end within 10000 ms of quit: its setup\(\) had not returned \(\d+ s after "setup"\), and an actor takes no signal until it does; ending its worker/,
    );
    expect(run.output()).not.toMatch(/failed/);
  });

  it('a second Ctrl-C while setup() is stuck ends the worker at once, and that is no failure (exit 0, as any quit)', {
    timeout: 60_000,
  }, async () => {
    const folder = project({
      'package.json': '{ "type": "module" }',
      'stuck.ts': `import { Actor } from ${JSON.stringify(core)};\nexport class StuckSetup extends Actor { override async setup() { await new Promise((r) => setTimeout(r, 60_000)); } override async runStep() { await new Promise((r) => setTimeout(r, 5)); } }\n`,
      'pipeline.yaml': 'actors:\n  A:\n    package: stuck.ts\n    class: StuckSetup\n',
    });
    const run = start(['run', join(folder, 'pipeline.yaml'), '--no-log-files', '--script', 'setup; quit'], folder);
    await run.seen(/command setup/);
    await new Promise((resolve) => setTimeout(resolve, 300));
    process.kill(run.child.pid!, 'SIGINT');
    await run.seen(/SIGINT received: quitting/);
    process.kill(run.child.pid!, 'SIGINT');
    expect(await withinMs(run.exited, 20_000, 'the forced quit')).toBe(0);
    expect(run.output()).toMatch(/SIGINT received again: ending every actor now[\s\S]*pipeline exited/);
    expect(run.output()).not.toMatch(/failed|exit code 1/);
  });

  it('an error thrown outside runStep() (in a timer) ends the actor, and the log names its line', async () => {
    const folder = project({
      'package.json': '{ "type": "module" }',
      'timer.ts': `import { Actor } from ${JSON.stringify(core)};\nexport class TimerThrow extends Actor {\n  override async runStep() {\n    await new Promise((r) => setTimeout(r, 100));\n    setTimeout(() => JSON.parse('{bad json'), 0);\n  }\n}\n`,
      'pipeline.yaml': 'actors:\n  T:\n    package: timer.ts\n    class: TimerThrow\n',
    });
    const run = start(
      ['run', join(folder, 'pipeline.yaml'), '--no-log-files', '--script', 'setup; run; wait 2s; quit'],
      folder,
    );
    expect(await withinMs(run.exited, 30_000, 'the run')).toBe(1);
    expect(run.output()).toMatch(/actor "T" failed: its worker died: SyntaxError: .* \(at \S+\/timer\.ts:5:\d+\)/);
  });

  it('ends quietly when stdout closes (improv … | head)', async () => {
    const folder = project({});
    const shell = spawn(
      'bash',
      [
        '-c',
        `${[process.execPath, ...cliCommand].map((arg) => `"${arg}"`).join(' ')} run "${minimal}" --no-log-files --script "setup; run; wait 1s; stop; quit" 2>err.txt | head -2; echo "status \${PIPESTATUS[0]}"; cat err.txt`,
      ],
      { cwd: folder, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    shell.stdout.on('data', (chunk) => {
      out += chunk;
    });
    await new Promise((resolve) => shell.on('exit', resolve));
    expect(out).toMatch(/status 0/);
    expect(out).not.toMatch(/EPIPE|Error|at /);
  });

  it('refuses a --run-dir that cannot be a folder before starting anything (exit 2, names the path)', async () => {
    const folder = project({ taken: 'a file' });
    const file = start(['run', minimal, '--run-dir', join(folder, 'taken'), '--script', 'setup; quit'], folder);
    expect(await file.exited).toBe(2);
    expect(file.output()).toContain(
      `improv run: --run-dir: cannot use ${join(folder, 'taken')} as a folder: ${join(folder, 'taken')} is a file, not a folder`,
    );
    expect(file.output()).not.toMatch(/EEXIST|actor\(s\)/);
    const proc = start(['run', minimal, '--run-dir', '/proc/improv/run', '--script', 'setup; quit'], folder);
    expect(await withinMs(proc.exited, 15_000, '--run-dir under /proc')).toBe(2);
    expect(proc.output()).toContain('cannot use /proc/improv/run as a folder');
  });
});

describe('Nexus stopped (Ctrl-Z) while a command waits for acknowledgements', () => {
  /** Whether process `pid` is stopped (state T in /proc). */
  const stopped = (pid: number) => / T /.test(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\)/, ')'));

  it('does not end its actors for the time it was stopped, longer than signal_timeout: they were stopped with it', async () => {
    // The program gives `pause` and stops itself at once; each actor's step takes 300 ms of CPU, so no
    // acknowledgement can come before the process goes on, and the 3 s timeout has long passed then (6 s stopped).
    const child = spawn(
      join(root, 'node_modules/.bin/tsx'),
      [join(root, 'packages/cli/test/fixtures/ctrl-z/main.ts')],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.stderr.on('data', (chunk) => (out += chunk));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      // tsx runs the program in a child of its own: stop and continue the one that prints.
      await withinMs(
        (async () => {
          while (!/STOPPING/.test(out)) await new Promise((resolve) => setTimeout(resolve, 20));
        })(),
        30_000,
        'the program reaching pause',
      );
      const pids = () =>
        readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number);
      // It prints, then stops itself: look until it has.
      let program: number | undefined;
      for (let tries = 0; tries < 500 && program === undefined; tries++) {
        program = [child.pid!, ...pids()].find(stopped);
        if (program === undefined) await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(program, 'the program stopped itself').toBeDefined();
      await new Promise((resolve) => setTimeout(resolve, 6000));
      process.kill(program!, 'SIGCONT');
      expect(await withinMs(exited, 30_000, 'the program ending')).toBe(0);
      expect(out).toMatch(/PAUSED A=paused B=paused/);
      expect(out).not.toMatch(/did not acknowledge|FAILED/);
    } finally {
      if (child.exitCode === null) {
        for (const pid of [child.pid!]) process.kill(pid, 'SIGCONT');
        child.kill('SIGKILL');
      }
    }
  });
});
