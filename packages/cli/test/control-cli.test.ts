// The control plane across processes, as a user drives it from a second terminal: improv server in
// one process; improv list, cmd, logs, tap, top, quit and cleanup in others.
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { currentRuntimeName } from '@improv/core';
import { scriptArguments } from '@improv/core/runtime/binaries';
import { afterEach, describe, expect, it } from 'vitest';
import type { RuntimeName } from '../src/runtime-switch.ts';
import { newImprovHome } from './_home.ts';
import { alive, until } from './_run.ts';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const bin = join(root, 'packages/cli/bin/improv.mjs');
const minimal = join(root, 'apps/minimal/minimal.yaml');
const cliCommand = [...scriptArguments(currentRuntimeName() as RuntimeName, bin)];

const children: ChildProcess[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
});

/** Runs `improv …` to its end. */
function improv(args: string[], improvHome: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...cliCommand, ...args], {
      env: { ...process.env, IMPROV_HOME: improvHome, NO_COLOR: '1' },
    });
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
    });
    child.stderr.on('data', (chunk) => {
      out += chunk;
    });
    child.on('exit', (code) => resolve({ code, out }));
  });
}

/** Starts `improv server` and waits for the line that names its run. */
async function server(
  improvHome: string,
  extra: string[] = [],
): Promise<{ child: ChildProcess; id: string; url: string; out: () => string }> {
  const child = spawn(process.execPath, [...cliCommand, 'server', minimal, '--no-log-files', ...extra], {
    env: { ...process.env, IMPROV_HOME: improvHome, NO_COLOR: '1' },
  });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (chunk) => {
    out += chunk;
  });
  child.stderr!.on('data', (chunk) => {
    out += chunk;
  });
  await until(
    () => /serving .* as run (\S+): control (\S+)/.test(out) || child.exitCode !== null,
    'the server line',
    30_000,
  );
  const match = /serving .* as run (\S+): control (\S+)/.exec(out);
  if (!match) throw new Error(`improv server did not start:\n${out}`);
  return { child, id: match[1]!, url: match[2]!, out: () => out };
}

describe('improv server and its clients, in separate processes', () => {
  it('list, cmd, logs, tap, top and quit reach a headless run by its id', async () => {
    const where = newImprovHome();
    const run = await server(where);
    expect(run.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    const listed = await improv(['list'], where);
    expect(listed.code).toBe(0);
    expect(listed.out).toMatch(/^ID\s+PIPELINE\s+STATE\s+UPTIME\s+CPU\s+MEMORY\s+URL/);
    expect(listed.out).toContain(run.id);
    expect(listed.out).toMatch(/waiting/);
    expect(listed.out).toContain(run.url);

    expect(await improv(['cmd', run.id, 'setup'], where)).toMatchObject({ code: 0 });
    const started = await improv(['cmd', run.id, 'RUN'], where);
    expect(started.code).toBe(0);
    expect(started.out).toMatch(/run: done, the pipeline is running/);
    const refused = await improv(['cmd', run.id, 'run'], where);
    expect(refused.code).toBe(1);
    expect(refused.out).toMatch(/^refused: cannot run/);
    const typo = await improv(['cmd', run.id, 'pasue'], where);
    expect(typo.code).toBe(2);
    expect(typo.out).toContain('did you mean "pause"');

    const tapped = await improv(['tap', run.id, 'Generator.q_out', '--count', '3'], where);
    expect(tapped.code).toBe(0);
    expect(tapped.out.split('\n').filter((line) => line.includes('Generator.q_out → Processor.q_in'))).toHaveLength(3);
    const wrongTap = await improv(['tap', run.id, 'Generator.q_ot'], where);
    expect(wrongTap.code).toBe(2);
    expect(wrongTap.out).toContain('Generator.q_out');

    const top = await improv(['top', run.id], where);
    expect(top.code).toBe(0);
    expect(top.out).toMatch(/ACTOR\s+STATE\s+STEPS\/S/);
    expect(top.out).toMatch(/Processor\s+running/);

    const logs = await improv(['logs', run.id, '--actor', 'nexus', '--json'], where);
    expect(logs.code).toBe(0);
    const records = logs.out
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { source: string; message: string; time: string });
    expect(records.length).toBeGreaterThan(0);
    expect(records.every((record) => record.source === 'nexus')).toBe(true);
    expect(records.some((record) => /run/i.test(record.message))).toBe(true);

    const quit = await improv(['quit', run.id], where);
    expect(quit.code).toBe(0);
    expect(quit.out).toContain(`run ${run.id} has quit`);
    expect(run.child.exitCode).toBe(0);
    expect((await improv(['list'], where)).out).toMatch(/no pipeline is running/);
  });

  it('logs --follow prints records as they come, until the run quits', async () => {
    const where = newImprovHome();
    const run = await server(where);
    const follower = spawn(process.execPath, [...cliCommand, 'logs', run.id, '--follow', '--grep', 'command|exited'], {
      env: { ...process.env, IMPROV_HOME: where, NO_COLOR: '1' },
    });
    children.push(follower);
    let out = '';
    follower.stdout!.on('data', (chunk) => {
      out += chunk;
    });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await improv(['cmd', run.id, 'setup'], where);
    await until(() => /setup/.test(out), 'the followed setup record');
    // An actor the run does not have: said at once, with the ones it has (not an empty wait).
    const nosuch = await improv(['logs', run.id, '--actor', 'Nosuch', '--follow'], where);
    expect(nosuch.code).toBe(2);
    expect(nosuch.out).toMatch(/improv logs: run .* has no actor "Nosuch"; its actors are /);
    await improv(['quit', run.id], where);
    await until(() => follower.exitCode !== null, 'logs --follow to end with the run');
    expect(follower.exitCode).toBe(0);
    // The run's last records too, written as it quit.
    expect(out).toMatch(/command quit/);
    expect(out).toMatch(new RegExp(`nexus: pipeline exited\\nimprov logs: run ${run.id} has quit\\n$`));
  });

  it('logs --follow says so, and exits 1, when the run is lost (its server killed)', async () => {
    const where = newImprovHome();
    const run = await server(where);
    const follower = spawn(process.execPath, [...cliCommand, 'logs', run.id, '--follow'], {
      env: { ...process.env, IMPROV_HOME: where, NO_COLOR: '1' },
    });
    children.push(follower);
    let out = '';
    follower.stdout!.on('data', (chunk) => {
      out += chunk;
    });
    await until(() => /all actors loaded/.test(out), 'the followed history');
    run.child.kill('SIGKILL');
    await until(() => follower.exitCode !== null, 'logs --follow to end');
    expect(follower.exitCode).toBe(1);
    expect(out).toMatch(new RegExp(`improv logs: lost run ${run.id}: .*its process may have died`));
  });

  it('names what is wrong: no run, an unknown id, a stale entry, a wrong token; cleanup removes what a SIGKILLed run left', async () => {
    const where = newImprovHome();
    const none = await improv(['cmd', 'nope', 'setup'], where);
    expect(none.code).toBe(2);
    expect(none.out).toMatch(/no run "nope"; no pipeline is running on this host/);
    expect((await improv(['quit'], where)).out).toMatch(/no pipeline is running on this host/);

    const run = await server(where, ['--store', 'lmdb']);
    const unknown = await improv(['logs', 'other-0000'], where);
    expect(unknown.code).toBe(2);
    expect(unknown.out).toContain(`running now: ${run.id}`);
    // A URL with a wrong token.
    const tokenFile = join(where, 'wrong.token');
    writeFileSync(tokenFile, `${'ab'.repeat(32)}\n`);
    const wrong = await improv(['cmd', run.url, 'status', '--token-file', tokenFile], where);
    expect(wrong.code).toBe(1);
    expect(wrong.out).toMatch(/refused the token: wrong token/);

    // SIGKILL: the entry stays, stale; its temporary store is left in the temp folder.
    const pid = run.child.pid!;
    const leftovers = () => readdirSync(tmpdir()).filter((name) => name.startsWith(`improv-${pid}-`));
    await until(() => leftovers().length > 0, 'the run’s temporary store');
    run.child.kill('SIGKILL');
    await until(() => !alive(pid), 'the server to die');
    const stale = await improv(['list'], where);
    expect(stale.out).toMatch(new RegExp(`${run.id}\\s+\\S+\\s+gone \\(stale: improv cleanup removes it\\)`));
    const gone = await improv(['cmd', run.id, 'status'], where);
    expect(gone.code).toBe(2);
    expect(gone.out).toMatch(/is not running any more \(its process \d+ is gone/);

    const dry = await improv(['cleanup', '--dry-run'], where);
    expect(dry.out).toMatch(/would remove/);
    expect(leftovers().length).toBeGreaterThan(0);
    const cleaned = await improv(['cleanup'], where);
    expect(cleaned.code).toBe(0);
    expect(cleaned.out).toContain(`run ${run.id} (process ${pid}, gone):`);
    expect(cleaned.out).toMatch(/removed .*improv-\d+-.*\.lmdb/);
    expect(leftovers()).toEqual([]);
    expect((await improv(['list'], where)).out).toMatch(/no pipeline is running/);
    expect((await improv(['cleanup'], where)).out).toMatch(/nothing to clean up/);
  });

  it('gives every command a --help, and rejects a bad --port', async () => {
    const where = newImprovHome();
    for (const command of [
      'server',
      'client',
      'top',
      'list',
      'logs',
      'cmd',
      'stop',
      'quit',
      'tap',
      'graph',
      'cleanup',
    ]) {
      const help = await improv([command, '--help'], where);
      expect({ command, code: help.code }).toEqual({ command, code: 0 });
      expect(help.out).toMatch(/^Usage: improv /);
    }
    const port = await improv(['server', minimal, '--port', 'abc'], where);
    expect(port.code).toBe(2);
    expect(port.out).toMatch(/--port.*port number/);
    const client = await improv(['client'], where);
    expect(client.code).toBe(2);
    expect(client.out).toMatch(/no pipeline is running on this host/);
  });
});
