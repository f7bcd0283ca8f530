// Python actors beside TypeScript ones, run as a user runs them: each `.py` actor in a Python process
// of its own (the Debian interpreter, with numpy, pyzmq and msgpack), its links over zmq, the store in
// LMDB or Redis. Checks the lifecycle, links (fan-in, fan-out, backpressure), arrays of every dtype
// through the store both ways, errors and crashes that fail only that actor, improv's own minimal
// demo running unchanged, and a clear error for each kind of bad input.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { createNexus, type Published, type PublishedLatest, type PublishedSeries } from '@improv/core';
import { createLmdbStore } from '@improv/store/lmdb';
import { createRedisStore } from '@improv/store/redis';
import { createLocalTransport } from '@improv/transport-local';
import { createZmqTransport } from '@improv/transport-zmq';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../src/main.ts';
import { alive, type Run, sleep, startRun, until } from './_run.ts';

const python = '/usr/bin/python3';
const hasPython = spawnSync(python, ['-c', 'import numpy, zmq, msgpack'], { encoding: 'utf8' }).status === 0;
const redisInstalled = spawnSync('redis-server', ['--version']).status === 0;
const fixtures = fileURLToPath(new URL('./fixtures/python/', import.meta.url));
const minimalDemo = fileURLToPath(new URL('./fixtures/improv-minimal/minimal.yaml', import.meta.url));
const bin = fileURLToPath(new URL('../bin/improv.mjs', import.meta.url));
const folder = mkdtempSync(join(tmpdir(), 'improv-python-actors-'));
let runs = 0;
afterAll(() => rmSync(folder, { recursive: true, force: true }));

type Actors = Record<string, Record<string, unknown>>;

/** A pipeline of actors from the fixtures (`.py` classes from actors.py, the rest from actors.ts). */
function start(
  actors: Actors,
  connections: Record<string, unknown>,
  store: 'lmdb' | 'redis' = 'lmdb',
  settings: Record<string, unknown> = {},
): Promise<Run> {
  return startRun((events) =>
    createNexus({
      config: {
        settings: { store_size: '256MiB', python, ...settings },
        actors,
        connections,
      },
      baseDir: fixtures,
      store: store === 'lmdb' ? createLmdbStore({ path: join(folder, `run-${++runs}`) }) : createRedisStore({}),
      transport: [createLocalTransport(), createZmqTransport()],
      runDir: false,
      handleSignals: false,
      quitTimeoutMs: 3000,
      ...events,
    }),
  );
}

const py = (cls: string, extra: Record<string, unknown> = {}) => ({ package: 'actors.py', class: cls, ...extra });
const ts = (cls: string, extra: Record<string, unknown> = {}) => ({ package: 'actors.ts', class: cls, ...extra });
const link = (run: Run, from: string, to: string) =>
  run.nexus.status().links.find((entry) => entry.from.actor === from && entry.to.actor === to)!;
const actorStatus = (run: Run, name: string) => run.nexus.status().actors.find((actor) => actor.name === name)!;

/** The improv command as a process of its own (Node), with Debian's python3 first on PATH. */
function improv(args: string[], cwd = folder): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], {
      cwd,
      env: { ...process.env, PATH: `/usr/bin:${process.env.PATH}` },
    });
    let text = '';
    child.stdout.on('data', (chunk) => (text += chunk));
    child.stderr.on('data', (chunk) => (text += chunk));
    child.on('exit', (exit) => resolve({ code: exit, out: text }));
  });
}

async function cli(argv: string[]): Promise<{ code: number; text: string }> {
  const lines: string[] = [];
  const code = await main(argv, { write: (line) => lines.push(line), colour: false });
  return { code, text: lines.join('\n') };
}

describe.skipIf(!hasPython)('Python actors', () => {
  it('carries messages TypeScript → Python → TypeScript, none lost, the Python actor in an interpreter of its own', async () => {
    const run = await start(
      { Source: ts('Numbers', { count: 500, intervalMs: 0 }), Double: py('Doubler'), Sink: ts('Tally') },
      { 'Source.q_out': ['Double.q_in'], 'Double.q_out': ['Sink.q_in'] },
    );
    await run.nexus.setup();
    await run.nexus.run();
    await until(() => actorStatus(run, 'Sink').steps >= 500, 'every message through Python');
    await run.nexus.stop();
    const tally = run.tally('Sink')!;
    expect(tally.counts).toEqual({ Source: 500 });
    expect(tally.first![0]).toEqual({ from: 'Source', n: 0, value: 0, via: 'python' });
    expect(tally.first![3]).toEqual({ from: 'Source', n: 3, value: 6, via: 'python' });
    const [where] = run.where('Double');
    expect(where!.runtime).toBe('python');
    expect(where!.pid).not.toBe(process.pid);
    expect(actorStatus(run, 'Double').process).toEqual({ runtime: 'python', pid: where!.pid });
    expect(actorStatus(run, 'Double').steps).toBeGreaterThanOrEqual(500);
    await run.nexus.quit();
    expect(alive(where!.pid)).toBe(false);
  });

  it('publishes to the dashboard: every number as a series, numpy images newest-only as copies', async () => {
    const run = await start({ Publisher: py('Publishing') }, {});
    await run.nexus.setup();
    await run.nexus.run();
    const got: Published[] = [];
    const unwatch = run.nexus.watchPublished((published) => got.push(published));
    const counted = () =>
      got
        .filter((entry) => entry.name === 'count')
        .reduce((sum, entry) => sum + (entry.data as PublishedSeries).times.length, 0);
    await until(() => counted() >= 100, '100 counts from Python');
    unwatch();
    const counts = got
      .filter((entry) => entry.name === 'count')
      .flatMap((entry) => (entry.data as PublishedSeries).values.value!);
    for (let index = 1; index < counts.length; index++) expect(counts[index]).toBe(counts[index - 1]! + 1);
    const twice = got
      .filter((entry) => entry.name === 'stats')
      .flatMap((entry) => (entry.data as PublishedSeries).values.twice!);
    expect(twice.length).toBeGreaterThan(0);
    expect(twice.every((value) => value !== null && value % 2 === 0)).toBe(true);
    const frames = got.filter((entry) => entry.name === 'frame').map((entry) => entry.data as PublishedLatest);
    expect(frames.length).toBeGreaterThan(0);
    for (const data of frames) {
      const { array, shape } = data.value as { array: Uint16Array; shape: number[] };
      expect(array).toBeInstanceOf(Uint16Array);
      expect(shape).toEqual([4, 4]);
      expect(new Set(array).size).toBe(1);
    }
    expect(got.every((entry) => entry.actor === 'Publisher')).toBe(true);
    // What cannot be encoded is dropped, said once; the actor and its other streams go on.
    expect(got.some((entry) => entry.name === 'unsendable')).toBe(false);
    expect(run.messages('Publisher', 'publish("unsendable")')).toHaveLength(1);
    expect(actorStatus(run, 'Publisher')).toMatchObject({ state: 'running', errors: 0 });
    await run.nexus.quit();
  });

  it('awaits an async def run_step', async () => {
    const run = await start(
      { Source: ts('Numbers', { count: 50, intervalMs: 0 }), Double: py('AsyncDoubler'), Sink: ts('Tally') },
      { 'Source.q_out': ['Double.q_in'], 'Double.q_out': ['Sink.q_in'] },
    );
    await run.nexus.setup();
    await run.nexus.run();
    await until(() => actorStatus(run, 'Sink').steps >= 50, 'every message through the async actor');
    await run.nexus.stop();
    expect(run.tally('Sink')!.counts).toEqual({ Source: 50 });
  });

  it('fans in from two TypeScript sources and out to two sinks; none lost', async () => {
    const run = await start(
      {
        A: ts('Numbers', { count: 200, intervalMs: 0 }),
        B: ts('Numbers', { count: 300, intervalMs: 0 }),
        Double: py('Doubler'),
        Left: ts('Tally'),
        Right: ts('Tally'),
      },
      { 'A.q_out': ['Double.q_in'], 'B.q_out': ['Double.q_in'], 'Double.q_out': ['Left.q_in', 'Right.q_in'] },
    );
    await run.nexus.setup();
    await run.nexus.run();
    await until(
      () => actorStatus(run, 'Left').steps >= 500 && actorStatus(run, 'Right').steps >= 500,
      'every message to both sinks',
    );
    await run.nexus.stop();
    expect(run.tally('Left')!.counts).toEqual({ A: 200, B: 300 });
    expect(run.tally('Right')!.counts).toEqual({ A: 200, B: 300 });
  });

  it('holds a fast TypeScript producer back to a slow Python consumer (block), end to end', async () => {
    const run = await start(
      { Source: ts('Numbers', { intervalMs: 0 }), Slow: py('Slow', { delay: 0.02 }), Sink: ts('Tally') },
      { 'Source.q_out': ['Slow.q_in'], 'Slow.q_out': ['Sink.q_in'] },
    );
    await run.nexus.setup();
    await run.nexus.run();
    await until(() => link(run, 'Source', 'Slow').waiting, 'the producer to wait for room');
    await sleep(500);
    const into = link(run, 'Source', 'Slow');
    const out = link(run, 'Slow', 'Sink');
    // What went in is what came out, plus at most a queue's worth (and the one in hand).
    expect(into.sent - out.sent).toBeLessThanOrEqual(into.capacity + 1);
    expect(into.dropped).toBe(0);
    await run.nexus.stop();
  });

  for (const store of ['lmdb', 'redis'] as const) {
    it.skipIf(store === 'redis' && !redisInstalled)(
      `round-trips arrays of every dtype and shape through the ${store} store, bit-exact both ways`,
      async () => {
        const run = await start(
          { Arrays: ts('Arrays'), Echo: py('ArrayEcho'), Sink: ts('Tally') },
          { 'Arrays.q_out': ['Echo.q_in'], 'Echo.q_out': ['Sink.q_in'] },
          store,
        );
        await run.nexus.setup();
        await run.nexus.run();
        await until(() => run.messages('Sink', 'RESULT ').length >= 11, 'every array back from Python');
        const checked = run.messages('Echo', 'CHECKED ').map((record) => record.message);
        expect(checked).toHaveLength(11);
        for (const line of checked) expect(line).toMatch(/ ok$/);
        const kinds: Record<string, string> = {
          int8: 'Int8Array',
          uint8: 'Uint8Array',
          int16: 'Int16Array',
          uint16: 'Uint16Array',
          int32: 'Int32Array',
          uint32: 'Uint32Array',
          float32: 'Float32Array',
          float64: 'Float64Array',
          bigint64: 'BigInt64Array',
          biguint64: 'BigUint64Array',
        };
        for (const record of run.messages('Sink', 'RESULT ')) {
          const result = JSON.parse(record.message.slice('RESULT '.length));
          expect(result.got.kind).toBe(kinds[result.kind]);
          expect(result.got.hex).toBe(result.sent);
        }
        const shapes = run.messages('Sink', 'RESULT ').map((record) => JSON.parse(record.message.slice(7)).got.shape);
        expect(shapes).toContainEqual([1024, 1024]);
        expect(shapes).toContainEqual([1, 2, 3]);
        await run.nexus.stop();
      },
    );
  }

  it("commits a Python actor's deletes for every other reader: before its next message leaves, and while it waits", async () => {
    const run = await start(
      {
        Arrays: ts('Arrays'),
        Echo: py('ArrayEcho', { delete: true }),
        Sink: ts('Tally'),
        Watched: ts('Arrays', { watch: true }),
        Consumer: py('Consumer'),
      },
      { 'Arrays.q_out': ['Echo.q_in'], 'Echo.q_out': ['Sink.q_in'], 'Watched.q_out': ['Consumer.q_in'] },
    );
    await run.nexus.setup();
    await run.nexus.run();
    await until(() => run.messages('Sink', 'DELETED-HAS ').length >= 11, 'every result back from Python');
    // The reader of each result finds the key that Python deleted before sending it gone.
    expect(run.messages('Sink', 'DELETED-HAS ').map((record) => record.message)).toEqual(
      Array(11).fill('DELETED-HAS false'),
    );
    // The consumer sends nothing and then only waits: its deletes reach the other clients all the same.
    await until(() => run.messages('Watched', 'GONE 11').length > 0, 'every key Consumer deleted gone for TypeScript');
    await run.nexus.stop();
  });

  it('pauses, resumes, stops and runs again; a message in hand is never lost', async () => {
    const run = await start(
      { Source: ts('Numbers', { intervalMs: 1 }), Double: py('Doubler'), Sink: ts('Tally') },
      { 'Source.q_out': ['Double.q_in'], 'Double.q_out': ['Sink.q_in'] },
    );
    await run.nexus.setup();
    await run.nexus.run();
    await until(() => link(run, 'Double', 'Sink').sent >= 20, 'messages');
    await run.nexus.pause();
    expect(run.state('Double')).toBe('paused');
    await sleep(100);
    const paused = link(run, 'Double', 'Sink').sent;
    await sleep(300);
    expect(link(run, 'Double', 'Sink').sent).toBe(paused);
    await run.nexus.resume();
    await until(() => link(run, 'Double', 'Sink').sent > paused + 10, 'messages after resume');
    await run.nexus.stop();
    expect(run.state('Double')).toBe('stopped');
    await run.nexus.run();
    const stopped = link(run, 'Double', 'Sink').sent;
    await until(() => link(run, 'Double', 'Sink').sent > stopped + 10, 'messages after run again');
    await run.nexus.stop();
    const sent = Number(run.messages('Source', 'SENT ').at(-1)!.message.split(' ')[1]);
    await sleep(300);
    // Everything the source sent arrived (stop drains nothing away).
    expect(link(run, 'Double', 'Sink').sent + link(run, 'Source', 'Double').depth).toBeGreaterThanOrEqual(sent - 1);
  });

  it('logs an exception of run_step with its traceback, summarises repeats, and goes on (on_error: continue)', async () => {
    const run = await start({ Thrower: py('Throws'), Other: ts('Numbers', { count: 0 }) }, {});
    await run.nexus.setup();
    await run.nexus.run();
    await until(() => actorStatus(run, 'Thrower').errors >= 5, 'errors');
    await until(() => run.messages('Thrower', 'run_step() threw ValueError at ').length >= 1, 'a summary', 5000);
    const first = run.logs.find(
      (record) => record.source === 'Thrower' && record.message.startsWith('run_step() threw;'),
    )!;
    expect(first.message).toContain('ValueError: thrown on purpose');
    expect(first.stack).toMatch(/Traceback[\s\S]*actors\.py", line \d+, in run_step/);
    expect(run.state('Thrower')).toBe('running');
    await run.nexus.stop();
    expect(run.state('Thrower')).toBe('stopped');
  });

  it("places a repeated error at the actor's own line, not inside improv_ts", async () => {
    const run = await start({ Careless: py('BadKey') }, {});
    await run.nexus.setup();
    await run.nexus.run();
    await until(() => run.messages('Careless', 'run_step() threw TypeError at ').length >= 1, 'a summary', 5000);
    const summary = run.messages('Careless', 'run_step() threw TypeError at ')[0]!.message;
    expect(summary).toMatch(/at \S*fixtures\/python\/actors\.py:\d+ .*a key must be a string, got int/);
    await run.nexus.stop();
  });

  it('fails the actor at the first exception under on_error: fail, with the traceback; the others run on', async () => {
    const run = await start({ Thrower: py('Throws', { on_error: 'fail' }), Fine: py('Doubler') }, {});
    await run.nexus.setup();
    await run.nexus.run().catch(() => undefined);
    await until(() => run.state('Thrower') === 'failed', 'the thrower to fail');
    const error = actorStatus(run, 'Thrower').error!;
    expect(error.name).toBe('ValueError');
    expect(error.stack).toMatch(/Traceback[\s\S]*actors\.py", line \d+, in run_step/);
    expect(run.state('Fine')).toBe('running');
  });

  it('fails the actor whose setup() raises, with the traceback in the log', async () => {
    const run = await start({ Broken: py('SetupFails'), Fine: py('Doubler') }, {});
    await run.nexus.setup().catch(() => undefined);
    await until(() => run.state('Broken') === 'failed', 'the actor to fail');
    const error = actorStatus(run, 'Broken').error!;
    expect(error.message).toContain('setup failed on purpose');
    expect(error.stack).toMatch(/Traceback[\s\S]*actors\.py", line \d+, in setup/);
    const logged = run.logs.find((record) => record.source === 'Broken' && record.level === 'error')!;
    expect(logged.message).toMatch(/setup\(\) failed: RuntimeError: setup failed on purpose/);
    expect(logged.stack).toMatch(/in setup/);
    expect(run.state('Fine')).toBe('ready');
  });

  it('fails only the actor whose interpreter crashes (a segfault in C, abort, exit); the rest keep delivering', async () => {
    for (const how of ['segfault', 'abort', 'exit'] as const) {
      const run = await start(
        {
          Source: ts('Numbers', { intervalMs: 1 }),
          Victim: py('Crasher', { how, after: 0.2 }),
          Double: py('Doubler'),
          Sink: ts('Tally'),
        },
        { 'Source.q_out': ['Victim.q_in', 'Double.q_in'], 'Double.q_out': ['Sink.q_in'] },
      );
      await run.nexus.setup();
      await run.nexus.run().catch(() => undefined);
      await until(() => run.state('Victim') === 'failed', `the victim to fail (${how})`);
      const error = actorStatus(run, 'Victim').error!;
      expect(error.message).toMatch(
        how === 'segfault'
          ? /Segmentation fault \(exit code 139\)|SIGSEGV/
          : how === 'abort'
            ? /Aborted \(exit code 134\)|SIGABRT/
            : /exited with code 3/,
      );
      if (how === 'segfault') {
        // Python's fault handler printed where it happened.
        expect(run.logs.some((record) => record.source === 'Victim' && /Fatal Python error/.test(record.message))).toBe(
          true,
        );
      }
      const before = link(run, 'Double', 'Sink').sent;
      await until(() => link(run, 'Double', 'Sink').sent > before + 20, 'the others to keep delivering');
      expect(run.state('Double')).toBe('running');
      await run.nexus.quit();
    }
  });

  it('restarts a crashed Python actor under restart: on-failure', async () => {
    const run = await start(
      {
        Source: ts('Numbers', { intervalMs: 1 }),
        Victim: py('Crasher', { how: 'exit', after: 0.3, restart: 'on-failure' }),
      },
      { 'Source.q_out': ['Victim.q_in'] },
    );
    await run.nexus.setup();
    await run.nexus.run();
    await until(() => run.where('Victim').length >= 2, 'a second process of the victim');
    const [first, second] = run.where('Victim');
    expect(second!.pid).not.toBe(first!.pid);
    expect(alive(first!.pid)).toBe(false);
  });

  it('ends an interpreter stuck in a loop that never returns when quit times out', async () => {
    const run = await start({ Stuck: py('Crasher', { how: 'spin', after: 0.05 }) }, {});
    await run.nexus.setup();
    await run.nexus.run();
    await until(() => run.messages('Stuck', 'CRASHING').length > 0, 'the loop to start');
    const [where] = run.where('Stuck');
    await run.nexus.quit();
    expect(alive(where!.pid)).toBe(false);
  });

  it("says what keeps a stuck Python actor from answering in Python's words, and ends its process", async () => {
    const run = await start({ Stuck: py('Crasher', { how: 'spin', after: 0.05 }) }, {}, 'lmdb', {
      signal_timeout: '1s',
    });
    await run.nexus.setup();
    await run.nexus.run();
    await until(() => run.messages('Stuck', 'CRASHING').length > 0, 'the loop to start');
    await until(
      () => run.messages('nexus', 'actor "Stuck": its run_step() has not returned for 1 s').length > 0,
      'the warning',
    );
    const [late] = run.messages('nexus', 'actor "Stuck": its run_step()');
    expect(late!.message).toContain('wait with self.sleep(seconds) rather than time.sleep()');
    await run.nexus.pause().catch(() => undefined);
    await until(() => run.messages('nexus', 'actor "Stuck" failed: ').length > 0, 'the stuck actor to be ended');
    expect(run.messages('nexus', 'actor "Stuck" is unresponsive; ending its process')).toHaveLength(1);
    const [failed] = run.messages('nexus', 'actor "Stuck" failed: ');
    expect(failed!.message).toContain('its run_step() does not return');
    expect(failed!.message).toContain('Its process was ended; make run_step() return regularly');
    expect(failed!.message).not.toMatch(/runStep|event loop|worker/);
  });

  it('shows the control sequences actors print escaped, in the terminal and the run log: worker, process and Python', async () => {
    const cwd = mkdtempSync(join(folder, 'noisy-'));
    writeFileSync(
      join(cwd, 'noisy.yaml'),
      `settings:\n  python: ${python}\n  store: lmdb\nactors:\n` +
        `  Worker: { package: ${fixtures}actors.ts, class: Noisy }\n` +
        `  Process: { package: ${fixtures}actors.ts, class: Noisy, method: process, raw: true }\n` +
        `  Python: { package: ${fixtures}actors.py, class: Noisy }\n`,
    );
    const { code, out } = await improv(['run', 'noisy.yaml', '--run-dir', 'run', '--script', 'setup; quit'], cwd);
    expect(code, out).toBe(0);
    const log = readFileSync(join(cwd, 'run', 'improv.log'), 'utf8');
    for (const text of [out, log]) {
      // Not one control character but newlines reaches the terminal or the file…
      expect(text).not.toMatch(/[^\P{Cc}\n]/u);
      // …each is shown as \xNN instead, and the UTF-8 text around it is unchanged.
      expect(text).toContain('Worker: NOISY console \\x1b[2J\\x1b]0;title\\x07\\x1b[5A héllo ✓');
      expect(text).toContain('Process: NOISY console \\x1b[2J\\x1b]0;title\\x07\\x1b[5A héllo ✓');
      expect(text).toContain('Process: NOISY stdout \\x1b[31mred\\x1b[0m');
      expect(text).toMatch(/WARN {2}Process: NOISY stderr \\x1b\[H\\x9b2J$/m);
      expect(text).toContain('Python: NOISY print \\x1b[2J\\x1b]0;title\\x07 héllo ✓');
      expect(text).toContain('Python: NOISY stderr \\x1b[31mred\\x1b[0m');
      expect(text).toContain('Python: NOISY log \\x1b[1;1H');
    }
  });

  it("runs improv's minimal demo unchanged (its YAML, sample_generator.py and sample_processor.py)", async () => {
    const cwd = mkdtempSync(join(folder, 'minimal-'));
    // improv's users run `python3` from their PATH: here the Debian one, with numpy.
    const { code, out } = await improv(
      ['run', minimalDemo, '--no-log-files', '--script', 'setup; run; wait 2s; stop; quit'],
      cwd,
    );
    expect(out).toContain('Completed setup for Generator');
    expect(out).toContain('Completed setup for Processor');
    expect(out).toContain('Sent message on');
    expect(out).toContain('Processor stopping');
    expect(code, out).toBe(0);
    // The generator's stop() saved its data where improv would: the working directory.
    expect(existsSync(join(cwd, 'sample_generator_data.npy'))).toBe(true);
  });

  it.each([
    ['SIGTERM', 'timeout, systemd'],
    ['SIGHUP', 'the terminal closed'],
  ] as const)(
    'quits cleanly on a %s to the whole process group (%s): every actor process’s stop() runs, exit 0',
    async (signal, _why) => {
      const yaml = join(folder, `group-${signal}.yaml`);
      writeFileSync(
        yaml,
        `settings:\n  python: ${python}\n  store: lmdb\nactors:\n` +
          `  Source: { package: ${join(fixtures, 'actors.ts')}, class: Numbers, intervalMs: 1 }\n` +
          `  Double: { package: ${join(fixtures, 'actors.py')}, class: Stopping }\n` +
          `  Sink: { package: ${join(fixtures, 'actors.ts')}, class: Tally, method: process }\n` +
          'connections:\n  Source.q_out: [Double.q_in]\n  Double.q_out: [Sink.q_in]\n',
      );
      // A group of its own, as a shell gives a job: the signal goes to every process in it.
      const script = 'setup; run; wait 60s; quit';
      const child = spawn(process.execPath, [bin, 'run', yaml, '--no-log-files', '--script', script], {
        cwd: folder,
        detached: true,
        env: { ...process.env, PATH: `/usr/bin:${process.env.PATH}` },
      });
      let out = '';
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      child.stderr.on('data', (chunk) => (out += chunk));
      await new Promise<void>((resolve) =>
        child.stdout.on('data', (chunk) => {
          out += chunk;
          if (/run: done/.test(out)) resolve();
        }),
      );
      await new Promise((resolve) => setTimeout(resolve, 300));
      process.kill(-child.pid!, signal);
      expect(await exited, out).toBe(0);
      expect(out).toMatch(new RegExp(`${signal} received: quitting`));
      expect(out).toContain('STOPPED python');
      expect(out).toMatch(/Sink: TALLY/);
      expect(out).not.toMatch(/died|failed/);
    },
  );

  it('self.sleep() parks the step on pause and stop, as a link call does, and quit ends it at once', async () => {
    const yaml = join(folder, 'sleeper.yaml');
    writeFileSync(
      yaml,
      `settings:\n  python: ${python}\n  store: lmdb\nactors:\n  S: { package: ${join(fixtures, 'actors.py')}, class: Sleeper }\n`,
    );
    const started = performance.now();
    const { code, out } = await improv([
      'run',
      yaml,
      '--no-log-files',
      '--script',
      'setup; run; wait 1s; pause; wait 1s; resume; wait 1s; stop; wait 1s; quit',
    ]);
    expect(code, out).toBe(0);
    // Not the 10 s a quit waits for a step that does not end.
    expect(performance.now() - started).toBeLessThan(9000);
    expect(out.match(/STOPPED python/g)).toHaveLength(1);
    // The step slept through pause and resume, stayed parked after stop, and ended with the quit.
    expect(out).not.toContain('STEP goes on');
    expect(out).not.toMatch(/did not end within|failed/);
  });

  for (const runtime of ['bun', 'deno'] as const) {
    it.skipIf(!redisInstalled)(
      `runs Python actors under a Nexus on ${runtime} (improv run --runtime ${runtime})`,
      async () => {
        const { code, out } = await improv([
          'run',
          join(fixtures, 'relay.yaml'),
          '--runtime',
          runtime,
          '--no-log-files',
          '--script',
          'setup; run; wait 2s; stop; quit',
        ]);
        expect(out).toContain(`runtime ${runtime}`);
        expect(out).toMatch(/Sink: TALLY \{"counts":\{"Source":50\}/);
        expect(code, out).toBe(0);
      },
    );
  }

  describe('bad input, each a clear error', () => {
    const write = (name: string, text: string) => {
      const file = join(folder, name);
      writeFileSync(file, text);
      return file;
    };
    const pipeline = (name: string, actor: string, settings = `  python: ${python}\n  store: lmdb\n`) =>
      write(`${name}.yaml`, `settings:\n${settings}actors:\n  Analysis: ${actor}\n`);

    it('a syntax error: file and line from Python', async () => {
      write(
        'syntax.py',
        'from improv_ts import Actor\n\nclass Analysis(Actor)\n    def run_step(self):\n        pass\n',
      );
      const { code, text } = await cli(['validate', pipeline('syntax', '{ package: syntax.py, class: Analysis }')]);
      expect(code).toBe(2);
      expect(text).toMatch(/syntax error in .*syntax\.py:3/);
    });

    it('a missing class, with the classes the file has', async () => {
      write(
        'missing.py',
        'from improv_ts import Actor\n\nclass Analyser(Actor):\n    def run_step(self):\n        pass\n',
      );
      const { code, text } = await cli(['validate', pipeline('missing', '{ package: missing.py, class: Analysis }')]);
      expect(code).toBe(2);
      expect(text).toMatch(/has no class "Analysis" \(its classes: Analyser\)/);
      expect(text).toMatch(/did you mean "Analyser"/);
    });

    it('a class without run_step', async () => {
      write('nostep.py', 'from improv_ts import Actor\n\nclass Analysis(Actor):\n    pass\n');
      const { code, text } = await cli(['validate', pipeline('nostep', '{ package: nostep.py, class: Analysis }')]);
      expect(code).toBe(2);
      expect(text).toMatch(/no run_step\(\) method/);
    });

    it('a module the actor imports is not installed: the install hint', async () => {
      write('needs.py', 'import scipy_not_installed_here\nfrom improv_ts import Actor\n');
      const { code, text } = await cli(['validate', pipeline('needs', '{ package: needs.py, class: Analysis }')]);
      expect(code).toBe(2);
      expect(text).toMatch(/no module named "scipy_not_installed_here"/);
      expect(text).toMatch(/pip install scipy_not_installed_here/);
    });

    it('numpy not installed for the interpreter', async () => {
      // An interpreter without the system's site packages: no numpy, no pyzmq.
      const bare = write('bare-python', `#!/bin/sh\nexec ${python} -S "$@"\n`);
      chmodSync(bare, 0o755);
      write(
        'fine.py',
        'from improv_ts import Actor\n\nclass Analysis(Actor):\n    def run_step(self):\n        pass\n',
      );
      const file = pipeline('bare', '{ package: fine.py, class: Analysis }', `  python: ${bare}\n  store: lmdb\n`);
      const { code, text } = await cli(['validate', file]);
      expect(code).toBe(2);
      expect(text).toMatch(/has no module "numpy", which Python actors need/);
      expect(text).toMatch(/apt-get install python3-numpy/);
    });

    it('no Python interpreter found', async () => {
      write(
        'fine.py',
        'from improv_ts import Actor\n\nclass Analysis(Actor):\n    def run_step(self):\n        pass\n',
      );
      const file = pipeline('nopython', '{ package: fine.py, class: Analysis }', '  python: /nonexistent/python3\n');
      const { code, text } = await cli(['validate', file]);
      expect(code).toBe(2);
      expect(text).toMatch(/no Python interpreter "\/nonexistent\/python3" found/);
      expect(text).toMatch(/settings\.python|python:/);
    });

    it('a Python actor with store: memory', async () => {
      write(
        'fine.py',
        'from improv_ts import Actor\n\nclass Analysis(Actor):\n    def run_step(self):\n        pass\n',
      );
      const file = pipeline(
        'memory',
        '{ package: fine.py, class: Analysis }',
        `  python: ${python}\n  store: memory\n`,
      );
      const { code, text } = await cli(['validate', file]);
      expect(code).toBe(2);
      expect(text).toMatch(/memory\.yaml:3:10: error: store: memory cannot be reached by actor "Analysis"/);
      expect(text).toMatch(/fine\.py is a Python actor/);
    });

    it('a Python actor with --store memory: the flag and the actor, not the store: line', async () => {
      write(
        'fine.py',
        'from improv_ts import Actor\n\nclass Analysis(Actor):\n    def run_step(self):\n        pass\n',
      );
      // The YAML says store: lmdb (line 3); the actor is at line 5.
      const file = pipeline('flag-memory', '{ package: fine.py, class: Analysis }');
      for (const command of [['run', '--no-log-files', '--script', 'quit'], ['validate']]) {
        const { code, text } = await cli([command[0]!, file, ...command.slice(1), '--store', 'memory']);
        expect(code, text).toBe(2);
        expect(text).toMatch(
          /flag-memory\.yaml:5:3: error: --store memory \(given on the command line\) cannot be reached by actor "Analysis", which runs in its own process \(package: fine\.py is a Python actor\)/,
        );
        expect(text).toMatch(/fix: run with {2}--store lmdb .* or {2}--store redis/);
        expect(text).not.toMatch(/flag-memory\.yaml:3:/);
      }
      const { text } = await cli(['run', file, '--no-log-files', '--script', 'quit', '--store', 'memory']);
      expect(text).toContain(`(improv validate ${file} --store memory checks again)`);
    });

    it('runtime: on a Python actor', async () => {
      write(
        'fine.py',
        'from improv_ts import Actor\n\nclass Analysis(Actor):\n    def run_step(self):\n        pass\n',
      );
      const { code, text } = await cli([
        'validate',
        pipeline('runtime', '{ package: fine.py, class: Analysis, runtime: bun }'),
      ]);
      expect(code).toBe(2);
      expect(text).toMatch(/is a Python actor, which runs in a Python process of its own, not runtime: bun/);
    });

    it('an actor file named like a module of Python’s own (random.py, beside a queue.py) hides nothing', async () => {
      const actor = 'from improv_ts import Actor\n\nclass Analysis(Actor):\n    def run_step(self):\n        pass\n';
      mkdirSync(join(folder, 'shadow'), { recursive: true });
      write('shadow/random.py', actor);
      write('shadow/queue.py', actor);
      const { code, text } = await cli([
        'validate',
        pipeline('shadowing', '{ package: shadow/random.py, class: Analysis }'),
      ]);
      expect(text).toMatch(/valid — 1 actor/);
      expect(code).toBe(0);
    });

    it('max_heap_mb on a Python actor', async () => {
      write(
        'fine.py',
        'from improv_ts import Actor\n\nclass Analysis(Actor):\n    def run_step(self):\n        pass\n',
      );
      const { code, text } = await cli([
        'validate',
        pipeline('heap', '{ package: fine.py, class: Analysis, max_heap_mb: 64 }'),
      ]);
      expect(code).toBe(2);
      expect(text).toMatch(/max_heap_mb limits the heap of a JavaScript actor; fine\.py is a Python actor/);
    });

    it("accepts improv's minimal demo", async () => {
      // Its YAML names no interpreter: python3 from PATH, here the Debian one, with numpy.
      const path = process.env.PATH;
      process.env.PATH = `/usr/bin:${path}`;
      const { code, text } = await cli(['validate', minimalDemo]).finally(() => {
        process.env.PATH = path;
      });
      expect(text).not.toMatch(/error/i);
      expect(code).toBe(0);
    });
  });
});
