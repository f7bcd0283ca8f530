import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { currentRuntimeName } from '@improv/core';
import { findRuntimeBinary, scriptArguments } from '@improv/core/runtime/binaries';
import { describe, expect, it } from 'vitest';
import { main } from '../src/main.ts';
import type { RuntimeName } from '../src/runtime-switch.ts';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const bin = join(root, 'packages/cli/bin/improv.mjs');
const minimal = join(root, 'apps/minimal/minimal.yaml');
const broken = fileURLToPath(new URL('./fixtures/broken.yaml', import.meta.url));

/** The runtime these tests run in, and one they do not (for --runtime). */
const here = currentRuntimeName() as RuntimeName;
const other: RuntimeName = here === 'bun' ? 'deno' : 'bun';
/** The CLI as a command of the runtime these tests run in (Deno needs `run -A`). */
const cliCommand = [...scriptArguments(here, bin)];

async function cli(argv: string[], options: Parameters<typeof main>[2] = {}): Promise<{ code: number; text: string }> {
  const lines: string[] = [];
  const code = await main(argv, { write: (line) => lines.push(line), colour: false }, options);
  return { code, text: lines.join('\n') };
}

function spawnCli(
  args: string[],
  input?: string,
): Promise<{ code: number | null; out: string; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...cliCommand, ...args], {
      cwd: mkdtempSync(join(tmpdir(), 'improv-cli-')),
    });
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
    });
    child.stderr.on('data', (chunk) => {
      out += chunk;
    });
    if (input !== undefined) child.stdin.end(input);
    child.on('exit', (code, signal) => resolve({ code, out, signal }));
  });
}

describe('improv (in process)', () => {
  it('prints help for the program and each command, exit 0', async () => {
    const top = await cli(['--help']);
    expect(top.code).toBe(0);
    expect(top.text).toMatch(/run \[options\] <pipeline>/);
    expect(top.text).toMatch(/validate \[options\] <pipeline>/);
    const run = await cli(['run', '--help']);
    expect(run.code).toBe(0);
    expect(run.text).toContain('--script <steps>');
    expect(run.text).toContain('pause');
    const validate = await cli(['validate', '--help']);
    expect(validate.code).toBe(0);
    // Every key about where an actor runs, and hosts:, say what they do.
    for (const key of ['method', 'runtime', 'host', 'restart', 'restart_backoff', 'max_restarts']) {
      expect(validate.text).toMatch(new RegExp(`^  ${key} +\\S`, 'm'));
    }
    expect(validate.text).toContain('hosts: names the machines that run improv agent');
    expect(validate.text).toContain('--hosts <where>');
  });

  it('exits 2 with a usage message for an unknown command or a missing argument', async () => {
    const unknown = await cli(['jump']);
    expect(unknown.code).toBe(2);
    expect(unknown.text).toMatch(/unknown command 'jump'/);
    const missing = await cli(['run']);
    expect(missing.code).toBe(2);
    expect(missing.text).toMatch(/missing required argument 'pipeline'/);
  });

  it('validates a good pipeline, exit 0', async () => {
    const { code, text } = await cli(['validate', minimal]);
    expect(code).toBe(0);
    expect(text).toMatch(/valid — 2 actor\(s\), 1 connection\(s\)/);
  });

  it('reports every error of a broken pipeline at once with file:line:column, exit 2', async () => {
    const { code, text } = await cli(['validate', broken]);
    expect(code).toBe(2);
    expect(text).toMatch(/broken\.yaml:2:3: error: .*store_sise/);
    expect(text).toMatch(/broken\.yaml:6:\d+: error: .*Generatr/);
    expect(text).toMatch(/broken\.yaml:7:3: error: .*Processor.*package/);
    expect(text).toMatch(/broken\.yaml:10:\d+: error: .*Procesor/);
  });

  it('reports a missing pipeline file, exit 2', async () => {
    const { code, text } = await cli(['validate', 'no/such/pipeline.yaml']);
    expect(code).toBe(2);
    expect(text).toContain('no/such/pipeline.yaml');
  });

  it('refuses to run a broken pipeline, exit 2, without starting anything', async () => {
    const { code, text } = await cli(['run', broken, '--script', 'setup; quit', '--no-log-files']);
    expect(code).toBe(2);
    expect(text).toMatch(/not started; fix the errors above/);
  });

  it('rejects a bad script before starting, exit 2', async () => {
    const { code, text } = await cli(['run', minimal, '--script', 'setup; jump']);
    expect(code).toBe(2);
    expect(text).toMatch(/unknown step/);
  });
});

describe('improv (as a process)', () => {
  it('runs the minimal demo from a script, writes the run log and exits 0', async () => {
    const runDir = join(mkdtempSync(join(tmpdir(), 'improv-run-')), 'run');
    const { code, out } = await spawnCli([
      'run',
      minimal,
      '--run-dir',
      runDir,
      '--script',
      'setup; run; wait 500ms; pause; resume; wait 300ms; status; stop; quit',
    ]);
    expect(out).toMatch(/Processor: processed (\d+) frames; average \[/);
    expect(out).toMatch(/pipeline: running/);
    expect(code).toBe(0);
    expect(readdirSync(runDir)).toContain('improv.log');
    expect(readFileSync(join(runDir, 'improv.log'), 'utf8')).toMatch(/Generator: sent \d+ frames/);
  });

  it('reads commands from stdin, answers an unknown one with help, and exits 0 on quit', async () => {
    const { code, out } = await spawnCli(['run', minimal, '--no-log-files'], 'setup\nrun\njump\nstop\nquit\n');
    expect(out).toMatch(/unknown command "jump"\ncommands:/);
    expect(out).toMatch(/processed \d+ frames/);
    expect(out).toContain('type help for the commands; setup, then run');
    expect(code).toBe(0);
  });

  it('says why it quits when its input ends without quit', async () => {
    const { code, out } = await spawnCli(['run', minimal, '--no-log-files'], 'setup\n');
    expect(out).toContain(
      'improv: the input ended (stdin closed): quitting; to keep a run going without input, give --script',
    );
    expect(out).toMatch(/pipeline exited/);
    expect(code).toBe(0);
  });

  it('with --start, the prompt says what comes next from where the pipeline is: running', async () => {
    const { code, out } = await spawnCli(['run', minimal, '--no-log-files', '--start'], 'stop\nquit\n');
    expect(out).toContain('type help for the commands; it runs: pause, stop or quit');
    expect(out).not.toContain('setup, then run');
    expect(code).toBe(0);
  });

  it.each([
    ['SIGINT', []],
    ['SIGTERM', []],
    // A closed terminal: quits like SIGTERM (improv's README promises it).
    ['SIGHUP', []],
    ['SIGINT', ['--runtime', other]],
    ['SIGTERM', ['--runtime', other]],
    ['SIGHUP', ['--runtime', other]],
  ] as const)('quits cleanly on %s %j: every stop() runs once, exit 0', async (signal, extra) => {
    const child = spawn(process.execPath, [...cliCommand, 'run', minimal, '--no-log-files', ...extra], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    const seen = (pattern: RegExp) =>
      new Promise<void>((resolve) => {
        const check = () => {
          if (pattern.test(out)) resolve();
        };
        child.stdout.on('data', (chunk) => {
          out += chunk;
          check();
        });
        check();
      });
    child.stderr.on('data', (chunk) => {
      out += chunk;
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await seen(/all actors loaded/);
    child.stdin.write('setup\nrun\n');
    await seen(/running/);
    // process.kill: after child.kill(), Deno reports the child as killed even when it exited 0.
    process.kill(child.pid!, signal);
    expect(await exited).toBe(0);
    expect(out).toMatch(new RegExp(`${signal} received: quitting`));
    // Through --runtime the signal is passed on once, not twice (which would end every actor at once).
    expect(out).not.toMatch(/received again/);
    expect(out).toMatch(/processed \d+ frames/);
    expect(out).toMatch(/pipeline exited/);
  });

  it('a second SIGHUP (a closed terminal sends several: the shell’s and the kernel’s) does not end the actors at once: every stop() runs, exit 0', async () => {
    const child = spawn(process.execPath, [...cliCommand, 'run', minimal, '--no-log-files', '--start'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
    });
    child.stderr.on('data', (chunk) => {
      out += chunk;
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const end = Date.now() + 20_000;
    while (!/run: done/.test(out) && Date.now() < end) await new Promise((resolve) => setTimeout(resolve, 20));
    process.kill(child.pid!, 'SIGHUP');
    await new Promise((resolve) => setTimeout(resolve, 5));
    process.kill(child.pid!, 'SIGHUP');
    expect(await exited, out).toBe(0);
    expect(out).toMatch(/SIGHUP received: quitting/);
    expect(out).not.toMatch(/ending every actor now/);
    expect(out).toMatch(/processed \d+ frames/);
    expect(out).toMatch(/sent \d+ frames/);
    expect(out).toMatch(/pipeline exited/);
  });

  it('either loads an actor file outside a "type": "module" package or explains how to fix it', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'improv-cjs-'));
    const core = join(root, 'packages/core/src/index.ts');
    writeFileSync(
      join(folder, 'actor.ts'),
      `import { Actor } from ${JSON.stringify(core)};\nexport class A extends Actor { override runStep() {} }\n`,
    );
    writeFileSync(join(folder, 'pipeline.yaml'), 'actors:\n  A:\n    package: actor.ts\n    class: A\n');
    const { code, out } = await spawnCli(['validate', join(folder, 'pipeline.yaml')]);
    // Newer Node loads such a file fine (require of an ES module); Node 20 fails, and then the
    // message must say why and how to fix it.
    if (code === 0) {
      expect(out).toMatch(/valid — 1 actor/);
    } else {
      expect(out).toMatch(/pipeline\.yaml:3:14: error: actor "A": importing .*actor\.ts failed/);
      expect(out).toMatch(/loaded as CommonJS .* add "type": "module"/);
      expect(code).toBe(2);
    }
    writeFileSync(join(folder, 'package.json'), '{ "type": "module" }\n');
    const fixed = await spawnCli(['validate', join(folder, 'pipeline.yaml')]);
    expect(fixed.out).toMatch(/valid — 1 actor/);
    expect(fixed.code).toBe(0);
  });

  it('quits cleanly on SIGINT while the actors are still loading, leaving no worker behind', async () => {
    const child = spawn(process.execPath, [
      ...cliCommand,
      'run',
      minimal,
      '--no-log-files',
      '--script',
      'setup; run; wait 5s; quit',
    ]);
    let out = '';
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.stderr.on('data', (chunk) => {
      out += chunk;
    });
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (chunk) => {
        out += chunk;
        if (out.includes('actor(s)')) resolve();
      });
    });
    process.kill(child.pid!, 'SIGINT');
    expect(await exited).toBe(0);
    expect(out).toMatch(/pipeline exited/);
    expect(out).not.toMatch(/running/);
  });

  it('exits 1 when an actor fails at run time', async () => {
    const { code, out } = await spawnCli([
      'run',
      fileURLToPath(new URL('./fixtures/failing.yaml', import.meta.url)),
      '--no-log-files',
      '--script',
      'setup; run; quit',
    ]);
    expect(out).toMatch(/refused: cannot run: actor "Bad" failed: setup exploded on purpose/);
    // The last line says why the exit code is 1.
    expect(out.trimEnd().split('\n').at(-1)).toBe(
      'improv: exit code 1: actor "Bad" failed during the run; 2 commands of the script did not succeed (see the log above)',
    );
    expect(code).toBe(1);
  });
});

describe('improv --runtime', () => {
  it.each(['node', 'bun', 'deno'] as const)('runs the minimal demo under --runtime %s, exit 0', async (runtime) => {
    const { code, out } = await spawnCli([
      'run',
      minimal,
      '--runtime',
      runtime,
      '--no-log-files',
      '--script',
      'setup; run; wait 500ms; stop; quit',
    ]);
    expect(out).toMatch(new RegExp(`; runtime ${runtime} \\d+\\.\\d+`));
    expect(out).toMatch(/Processor: processed [1-9]\d* frames/);
    expect(code).toBe(0);
  });

  it(`validates under --runtime ${other}, and passes on the exit code of a failing run`, async () => {
    const valid = await spawnCli(['validate', minimal, '--runtime', other]);
    expect(valid.out).toMatch(/valid — 2 actor\(s\)/);
    expect(valid.code).toBe(0);
    const failing = await spawnCli([
      'run',
      fileURLToPath(new URL('./fixtures/failing.yaml', import.meta.url)),
      '--runtime',
      other,
      '--no-log-files',
      '--script',
      'setup; run; quit',
    ]);
    expect(failing.out).toMatch(/refused: cannot run: actor "Bad" failed/);
    expect(failing.code).toBe(1);
  });

  it('says how to install a runtime it cannot find, exit 2', async () => {
    const nowhere = { runtimeSearch: { from: [mkdtempSync(join(tmpdir(), 'improv-no-runtime-'))], path: '' } };
    const run = await cli(['run', minimal, '--runtime', other, '--script', 'quit'], nowhere);
    expect(run.code).toBe(2);
    const install =
      other === 'bun' ? 'npm install -D bun (or see https://bun.sh)' : 'npm install -D deno (or see https://deno.com)';
    expect(run.text).toBe(
      `improv: --runtime ${other}: "${other}" was not found in node_modules/.bin or on PATH; ${install}`,
    );
    const validate = await cli(['validate', minimal, '--runtime', other], nowhere);
    expect(validate.code).toBe(2);
    expect(validate.text).toContain(`"${other}" was not found`);
  });

  it('rejects an unknown runtime, exit 2', async () => {
    const { code, text } = await cli(['run', minimal, '--runtime', 'java']);
    expect(code).toBe(2);
    expect(text).toMatch(/--runtime <name>' argument 'java' is invalid. Allowed choices are node, bun, deno/);
  });

  it('finds a runtime in the nearest node_modules/.bin walking up, then on PATH, skipping files it cannot run', () => {
    const root = mkdtempSync(join(tmpdir(), 'improv-find-'));
    const nested = join(root, 'a', 'b', 'c');
    mkdirSync(nested, { recursive: true });
    mkdirSync(join(root, 'node_modules', '.bin'), { recursive: true });
    mkdirSync(join(root, 'a', 'node_modules', '.bin'), { recursive: true });
    mkdirSync(join(root, 'tools'));
    const executable = (file: string) => {
      writeFileSync(file, '#!/bin/sh\n');
      chmodSync(file, 0o755);
      return file;
    };
    const outer = executable(join(root, 'node_modules', '.bin', 'bun'));
    writeFileSync(join(root, 'a', 'node_modules', '.bin', 'bun'), 'not executable');
    const onPath = executable(join(root, 'tools', 'deno'));
    expect(findRuntimeBinary('bun', { from: [nested], path: '' })).toBe(outer);
    const inner = executable(join(root, 'a', 'node_modules', '.bin', 'deno'));
    expect(findRuntimeBinary('deno', { from: [nested], path: join(root, 'tools') })).toBe(inner);
    expect(findRuntimeBinary('deno', { from: [join(root, 'tools')], path: join(root, 'tools') })).toBe(onPath);
    expect(findRuntimeBinary('node', { from: [nested], path: join(root, 'tools') })).toBeUndefined();
  });
});
