// Actors in processes of their own, as a user runs them from Node: mixed runtimes in one pipeline,
// crash isolation (abort, SIGKILL, exit, a loop that never yields), restart policies and revive, and
// no process left behind — also when Nexus itself is killed.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { createNexus, type RuntimeAdapter } from '@improv/core';
import { createNodeRuntime } from '@improv/core/runtime/node';
import { createLmdbStore } from '@improv/store/lmdb';
import { createLocalTransport } from '@improv/transport-local';
import { createZmqTransport } from '@improv/transport-zmq';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../src/main.ts';
import { alive, type Run, sleep, startRun, until } from './_run.ts';

const fixtures = fileURLToPath(new URL('./fixtures/processes/', import.meta.url));
const folder = mkdtempSync(join(tmpdir(), 'improv-process-faults-'));
let runs = 0;
afterAll(() => rmSync(folder, { recursive: true, force: true }));

function start(
  actors: Record<string, Record<string, unknown>>,
  connections: Record<string, unknown>,
  settings: Record<string, unknown> = {},
  runtime?: RuntimeAdapter,
): Promise<Run> {
  return startRun((events) =>
    createNexus({
      ...(runtime === undefined ? {} : { runtime }),
      config: {
        settings: { store_size: '64MiB', ...settings },
        actors: Object.fromEntries(
          Object.entries(actors).map(([name, actor]) => [name, { package: 'actors.ts', ...actor }]),
        ),
        connections,
      },
      baseDir: fixtures,
      store: createLmdbStore({ path: join(folder, `run-${++runs}`) }),
      transport: [createLocalTransport(), createZmqTransport()],
      runDir: false,
      handleSignals: false,
      quitTimeoutMs: 2000,
      ...events,
    }),
  );
}

describe('actors in processes of their own', () => {
  it('runs one pipeline on Node, Bun and Deno at once: each actor in its runtime, messages through all of them', async () => {
    const run = await start(
      {
        Source: { class: 'Ticker', runtime: 'bun' },
        Denoise: { class: 'Hop', runtime: 'deno' },
        Analysis: { class: 'Hop', method: 'process' },
        Viewer: { class: 'Tally' },
      },
      {
        'Source.q_out': ['Denoise.q_in'],
        'Denoise.q_out': ['Analysis.q_in'],
        'Analysis.q_out': ['Viewer.q_in'],
      },
    );
    await run.nexus.setup();
    await run.nexus.run();
    // Read by the Viewer, not only sent to it: a message still on its way at stop is not in its tally.
    const read = () => {
      const last = run.nexus.status().links.at(-1);
      return last === undefined ? 0 : last.sent - last.depth - last.dropped;
    };
    await until(() => read() >= 50, 'messages through every runtime');
    await run.nexus.stop();
    const where = Object.fromEntries(['Source', 'Denoise', 'Analysis', 'Viewer'].map((a) => [a, run.where(a)[0]]));
    expect(where.Source?.runtime).toBe('bun');
    expect(where.Denoise?.runtime).toBe('deno');
    expect(where.Analysis?.runtime).toBe('node');
    expect(where.Viewer).toEqual({ runtime: 'node', pid: process.pid });
    // Three processes of their own, none of them this one.
    const pids = new Set([where.Source!.pid, where.Denoise!.pid, where.Analysis!.pid, process.pid]);
    expect(pids.size).toBe(4);
    // status says where each actor runs.
    const placed = Object.fromEntries(run.nexus.status().actors.map((actor) => [actor.name, actor.process]));
    expect(placed).toEqual({
      Source: { runtime: 'bun', pid: where.Source!.pid },
      Denoise: { runtime: 'deno', pid: where.Denoise!.pid },
      Analysis: { runtime: 'node', pid: where.Analysis!.pid },
      Viewer: undefined,
    });
    const tally = run.tally('Viewer')!;
    expect(tally.counts.Source).toBeGreaterThanOrEqual(50);
    expect((tally.last as { via: string[] }).via).toEqual(['Denoise@deno', 'Analysis@node']);
    await run.nexus.quit();
    for (const { pid } of [where.Source!, where.Denoise!, where.Analysis!]) expect(alive(pid)).toBe(false);
  });

  it('reports a process that aborts, is SIGKILLed or exits as failed at once; the others keep delivering', async () => {
    const delays: number[] = [];
    for (const how of ['abort', 'sigkill', 'exit'] as const) {
      const run = await start(
        {
          Victim: { class: 'Crasher', method: 'process', how, afterMs: 200 },
          Source: { class: 'Ticker', method: 'process' },
          Sink: { class: 'Tally', method: 'process' },
        },
        { 'Source.q_out': ['Sink.q_in'], 'Victim.q_out': ['Sink.q_in'] },
      );
      await run.nexus.setup();
      await run.nexus.run().catch(() => undefined);
      await until(() => run.state('Victim') === 'failed', `the victim to fail (${how})`);
      const crashed = Number(
        run.logs
          .find((record) => record.source === 'Victim' && record.message.startsWith('CRASHING'))!
          .message.split(' ')[1],
      );
      const failed = run.changes.find((change) => change.actor === 'Victim' && change.state === 'failed')!.at;
      // From the actor's last words (20 ms before it ends itself) to the failed state.
      delays.push(failed - crashed - 20);
      const error = run.nexus.status().actors.find((actor) => actor.name === 'Victim')!.error!;
      expect(error.message).toMatch(how === 'abort' ? /SIGABRT/ : how === 'sigkill' ? /SIGKILL/ : /exited with code 3/);
      const sent = () => run.nexus.status().links.find((link) => link.from.actor === 'Source')!.sent;
      const before = sent();
      await sleep(300);
      expect(sent()).toBeGreaterThan(before);
      expect(run.state('Source')).toBe('running');
      expect(run.state('Sink')).toBe('running');
      await run.nexus.quit();
    }
    // The bound is 100 ms; the median keeps one noisy moment on a shared machine from failing it.
    delays.sort((a, b) => a - b);
    expect(delays[1], `delays ${delays.join(', ')} ms`).toBeLessThanOrEqual(100);
  });

  it('terminates a process stuck in a loop that never yields when quit times out, and leaves no process behind', async () => {
    const run = await start(
      {
        Stuck: { class: 'Crasher', method: 'process', how: 'spin', afterMs: 50 },
        Sink: { class: 'Tally', runtime: 'bun' },
      },
      { 'Stuck.q_out': ['Sink.q_in'] },
    );
    await run.nexus.setup();
    await run.nexus.run();
    await until(() => run.logs.some((record) => record.message.startsWith('CRASHING')), 'the loop to start');
    const pids = [run.where('Stuck')[0]!.pid, run.where('Sink')[0]!.pid];
    await run.nexus.quit();
    expect(run.logs.some((record) => /actor "Stuck" did not end within 2000 ms/.test(record.message))).toBe(true);
    for (const pid of pids) expect(alive(pid)).toBe(false);
  });

  it('quits while a worker and a process flood the log or their stdout: the signals come first, and the lines dropped are counted', async () => {
    const run = await start(
      {
        InWorker: { class: 'Chatter' },
        InProcess: { class: 'Chatter', method: 'process' },
        WorkerStdout: { class: 'Chatter', stdout: true },
        ProcessStdout: { class: 'Chatter', stdout: true, method: 'process' },
      },
      {},
    );
    await run.nexus.setup();
    await run.nexus.run();
    const dropped = (actor: string) =>
      run.logs.filter((record) => record.source === actor && /^\d+ log lines? dropped: /.test(record.message));
    const actors = ['InProcess', 'InWorker', 'ProcessStdout', 'WorkerStdout'];
    await until(
      () => actors.every((actor) => dropped(actor).length > 0),
      `lines to be dropped ${actors.filter((actor) => dropped(actor).length === 0)}`,
    );
    await run.nexus.quit();
    // Each actor ended on quit (stop() ran, its links and store closed), none had to be ended for it.
    expect(run.logs.filter((record) => /did not end within/.test(record.message))).toEqual([]);
    expect(
      run.changes
        .filter((change) => change.state === 'exited')
        .map((change) => change.actor)
        .sort(),
    ).toEqual(actors);
    expect(dropped('InWorker')[0]!.message).toMatch(
      /^\d+ log lines dropped: actor "InWorker" logged more than 1000 lines a second, and signals and states come first\. Log a summary now and then instead of every step, or send numbers with this\.publish\(\)$/,
    );
    expect(dropped('InProcess')[0]!.level).toBe('warn');
    // What a worker writes to its stdout itself is in the log, as a process's is.
    expect(run.logs.some((record) => record.source === 'WorkerStdout' && /^chatter \d+$/.test(record.message))).toBe(
      true,
    );
  });

  it('when Nexus itself is killed, its actor processes end on their own within a few seconds, also one stuck in a loop', async () => {
    const script = join(fixtures, 'nexus-to-kill.ts');
    const child = spawn(process.execPath, ['--import', 'tsx', script, join(folder, `run-${++runs}`)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
    });
    await until(() => /PIDS \d+ \d+ \d+/.test(out) && out.includes('SPINNING'), 'the pipeline to run', 60_000);
    const pids = /PIDS (\d+) (\d+) (\d+)/.exec(out)!.slice(1).map(Number);
    for (const pid of pids) expect(alive(pid)).toBe(true);
    child.kill('SIGKILL');
    await until(() => pids.every((pid) => !alive(pid)), 'the orphaned actor processes to end', 5000);
  });
});

describe('restart policies', () => {
  it('on-failure: a crashed process is started again with backoff, its links reattached, until max_restarts in a row', async () => {
    const run = await start(
      {
        Flaky: {
          class: 'Crasher',
          method: 'process',
          how: 'exit',
          afterMs: 150,
          restart: 'on-failure',
          restart_backoff: '100ms',
          max_restarts: 2,
        },
        Sink: { class: 'Tally' },
      },
      { 'Flaky.q_out': ['Sink.q_in'] },
    );
    await run.nexus.setup();
    await run.nexus.run();
    await until(
      () => run.logs.some((record) => /actor "Flaky" is not restarted: .*max_restarts: 2/.test(record.message)),
      'the restarts to run out',
    );
    const restarts = run.logs
      .filter((record) => /actor "Flaky" restarts in/.test(record.message))
      .map((r) => r.message);
    expect(restarts).toEqual([
      expect.stringContaining('restarts in 100 ms (restart: on-failure; restart 1 of at most 2 in a row)'),
      expect.stringContaining('restarts in 200 ms (restart: on-failure; restart 2 of at most 2 in a row)'),
    ]);
    expect(run.logs.filter((record) => record.message === 'actor "Flaky" restarted: running')).toHaveLength(2);
    // Three processes in all, each set up and run again: three times its last words.
    const pids = run.where('Flaky').map((where) => where.pid);
    expect(new Set(pids).size).toBe(3);
    expect(
      run.logs.filter((record) => record.source === 'Flaky' && record.message.startsWith('CRASHING')),
    ).toHaveLength(3);
    expect(run.state('Flaky')).toBe('failed');
    expect(run.nexus.status().actors.find((actor) => actor.name === 'Flaky')?.restarts).toBe(2);
    await run.nexus.stop();
    // Each incarnation delivered through the same link.
    expect(run.tally('Sink')!.counts.Flaky).toBeGreaterThanOrEqual(3);
  });

  it('on-failure: a process sink SIGKILLed again and again while a source floods it gets every message, and each incarnation each one once, in order', async () => {
    const file = join(folder, `reads-${runs + 1}.txt`);
    const capacity = 16;
    const count = 3000;
    const run = await start(
      {
        Source: { class: 'Counter', count },
        Sink: {
          class: 'Recorder',
          method: 'process',
          file,
          restart: 'on-failure',
          restart_backoff: '50ms',
          max_restarts: 10,
        },
      },
      { flood: { sources: ['Source.q_out'], sinks: ['Sink.q_in'], capacity } },
    );
    /** What the sink's incarnations read, `[pid, n]`, in order. */
    const reads = () =>
      existsSync(file)
        ? readFileSync(file, 'utf8')
            .split('\n')
            .filter((line) => line !== '')
            .map((line) => line.split(' ').map(Number) as [number, number])
        : [];
    const link = () => run.nexus.status().links.find((entry) => entry.from.actor === 'Source')!;
    await run.nexus.setup();
    await run.nexus.run();
    const kills = 3;
    for (let kill = 1; kill <= kills; kill++) {
      await until(() => run.where('Sink').length === kill, `incarnation ${kill} of the sink`);
      const pid = run.where('Sink').at(-1)!.pid;
      await until(() => reads().filter(([from]) => from === pid).length >= 300, `incarnation ${kill} to read`);
      process.kill(pid, 'SIGKILL');
      await until(() => !alive(pid), 'the sink to die');
    }
    await until(() => run.where('Sink').length === kills + 1, 'the last incarnation of the sink');
    // The source ends its flood, and the last incarnation reads the last of it.
    await until(() => reads().at(-1)?.[1] === count - 1, 'the last message to be read');
    // Nothing waits in the link: what each killed incarnation read counts as read, also what it
    // read after its count last crossed over to Nexus (the source counts the acknowledgements).
    await until(() => link().depth === 0, 'the link to show nothing waiting');
    await sleep(200);
    await run.nexus.stop();

    const byPid = new Map<number, number[]>();
    for (const [pid, n] of reads()) byPid.set(pid, [...(byPid.get(pid) ?? []), n]);
    expect(byPid.size).toBe(kills + 1);
    let previous: number[] | undefined;
    for (const [pid, ns] of byPid) {
      // Each incarnation reads every message once, in order: none twice (what the source's old
      // connection still held for the dead one, then again on its fresh one), none skipped.
      const wrong = ns.findIndex((n, index) => index > 0 && n !== ns[index - 1]! + 1);
      expect(wrong, `incarnation ${pid} read ${ns.slice(Math.max(0, wrong - 3), wrong + 3).join(', ')}`).toBe(-1);
      if (previous === undefined) expect(ns[0]).toBe(0);
      else {
        // It goes on where the one before stopped. At most the one message the dead one had in hand
        // (got, not yet written down) is not in the file; again come at most those the dead one had
        // read without acknowledging them (acknowledgements go out in batches, at most once a turn).
        const end = previous.at(-1)!;
        expect(ns[0]).toBeLessThanOrEqual(end + 2);
        expect(end + 1 - ns[0]!).toBeLessThan(capacity);
      }
      previous = ns;
    }
    expect(previous!.at(-1)).toBe(count - 1);
    const { sent, dropped, waiting } = link();
    expect({ sent, dropped, waiting }).toEqual({ sent: count, dropped: 0, waiting: false });
  });

  it('on-failure: a process that cannot be started is tried again with the doubled backoff, each failed start one more of the row', async () => {
    const node = createNodeRuntime();
    // This machine cannot start the process (as if its runtime were gone): every start fails.
    const runtime: RuntimeAdapter = {
      ...node,
      spawnProcess: () => Promise.reject(new Error('spawn failed (test)')),
    };
    const run = await start(
      {
        Flaky: { class: 'Ticker', method: 'process', restart: 'on-failure', restart_backoff: '100ms', max_restarts: 3 },
      },
      {},
      {},
      runtime,
    );
    await until(
      () => run.logs.some((record) => /actor "Flaky" is not restarted: .*max_restarts: 3/.test(record.message)),
      'the restarts to run out',
    );
    const restarts = run.logs
      .filter((record) => /actor "Flaky" restarts in/.test(record.message))
      .map((r) => r.message);
    expect(restarts).toEqual([
      expect.stringContaining('restarts in 100 ms (restart: on-failure; restart 1 of at most 3 in a row)'),
      expect.stringContaining('restarts in 200 ms (restart: on-failure; restart 2 of at most 3 in a row)'),
      expect.stringContaining('restarts in 400 ms (restart: on-failure; restart 3 of at most 3 in a row)'),
    ]);
    expect(run.state('Flaky')).toBe('failed');
    expect(run.nexus.status().actors.find((actor) => actor.name === 'Flaky')?.restarts).toBe(3);
    await run.nexus.quit();
  });

  it('always restarts an actor that ended cleanly; on-failure does not; never leaves it failed; revive starts it by hand', async () => {
    const run = await start(
      {
        Always: {
          class: 'Crasher',
          how: 'exit',
          code: 0,
          afterMs: 100,
          method: 'process',
          restart: 'always',
          restart_backoff: '50ms',
          max_restarts: 1,
        },
        OnFailure: { class: 'Crasher', how: 'exit', code: 0, afterMs: 100, method: 'process', restart: 'on-failure' },
        Never: { class: 'Crasher', how: 'throw', afterMs: 100, on_error: 'fail' },
        Steady: { class: 'Crasher', how: 'exit', afterMs: 60_000 },
      },
      {},
    );
    await run.nexus.setup();
    await run.nexus.run();
    await until(
      () => run.logs.some((record) => record.message === 'actor "Always" restarted: running'),
      'Always to restart',
    );
    await until(() => run.state('OnFailure') === 'failed' && run.state('Never') === 'failed', 'the others to fail');
    expect(run.logs.some((record) => /actor "OnFailure" is not restarted: it ended cleanly/.test(record.message))).toBe(
      true,
    );
    expect(run.logs.some((record) => /actor "Never" restarts/.test(record.message))).toBe(false);
    // Never is a worker: revive starts it again by hand, and it runs (until it throws again).
    await run.nexus.revive('Never');
    expect(run.logs.some((record) => record.message === 'actor "Never" restarted: running')).toBe(true);
    expect(run.where('Never')).toHaveLength(2);
    await expect(run.nexus.revive('Nobody')).rejects.toThrow(/no such actor/);
    await expect(run.nexus.revive('Steady')).rejects.toThrow(/it is running, not failed/);
  });
});

describe('improv run with process actors', () => {
  it('runs a YAML with a process actor, picks lmdb for it, and revives it from --script', async () => {
    const lines: string[] = [];
    const code = await main(
      [
        'run',
        join(fixtures, 'flaky.yaml'),
        '--no-log-files',
        '--script',
        'setup; run; wait 1500ms; revive Flaky; wait 200ms; revive Nobody; stop; quit',
      ],
      { write: (line) => lines.push(line), colour: false },
    );
    const text = lines.join('\n');
    expect(text).toContain('nexus: in processes of their own: Flaky (node); their links go over zmq');
    expect(text).toContain('nexus: store: lmdb, because actor "Flaky" runs in its own process (method: process)');
    expect(text).toMatch(/actor "Flaky" failed: its process died: its process exited with code 3/);
    expect(text).toContain('actor "Flaky" is revived by hand');
    expect(text).toContain('actor "Flaky" restarted: running');
    expect(text).toMatch(/refused: cannot revive "Nobody": there is no such actor; the actors are Flaky, Sink/);
    // A failure, and a refused step: the run says so in its exit code.
    expect(code, text).toBe(1);
  });
});

describe('improv validate with process actors', () => {
  it('reports every mistake about processes, runtimes, restarts, hosts and the store at its line and column', async () => {
    const lines: string[] = [];
    const file = join(fixtures, 'bad.yaml');
    const code = await main(['validate', file], { write: (line) => lines.push(line), colour: false });
    const text = lines.join('\n');
    expect(code, text).toBe(2);
    const at = (line: number, column: number) => `processes/bad.yaml:${line}:${column}: error: `;
    expect(text).toContain(`${at(3, 10)}store: memory cannot be reached by actor "Denoise"`);
    expect(text).toContain(`${at(5, 31)}host "rig": unknown key "prot"`);
    expect(text).toContain('did you mean "port"?');
    expect(text).toContain(`${at(7, 57)}actor "Camera": runtime must be one of node, bun, deno, not "nodejs"`);
    expect(text).toContain('did you mean "node"?');
    expect(text).toContain(
      `${at(8, 72)}actor "Denoise": restart must be one of never, on-failure, always, not "on_failure"`,
    );
    expect(text).toMatch(/bad\.yaml:8:\d+: error: actor "Denoise": max_restarts must be a whole number >= 0/);
    expect(text).toContain(`${at(9, 53)}actor "Viewer": host "rgi" is not in hosts:`);
    expect(text).toContain('did you mean "rig"?');
    expect(text).toContain(
      `${at(15, 16)}connection "frames" says transport: local, but actor "Denoise" and actor "Viewer" run in processes of their own`,
    );
  });
});
