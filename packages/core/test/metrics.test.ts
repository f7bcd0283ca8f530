// Metrics and taps, piece by piece: the summary of a message, the histogram behind step times and
// latency, the host's meter (latency samples, tap sampling, what a report says) and Nexus's side
// (rates from samples, what hosts reported, taps by connection). Whole pipelines are measured in
// the pipeline conformance suite ('metrics and taps'), on every runtime, transport and placement.
import { describe, expect, it } from 'vitest';
import { PipelineMeter } from '../src/_metrics.ts';
import { Taps } from '../src/_taps.ts';
import { CommandRefusedError } from '../src/errors.ts';
import { HOST_ACTOR } from '../src/link/host.ts';
import type { GetOptions, InputLink, LinkEdge, OutputLink } from '../src/link/transport.ts';
import type { PipelineStatus, TapRecord } from '../src/nexus-api.ts';
import type { StoreClient } from '../src/store/driver.ts';
import { ActorMeter, DurationHistogram, LoadProbe } from '../src/worker/_meter.ts';
import { summarizeMessage } from '../src/worker/_summary.ts';
import type { CountersMessage, TapRecordMessage, TapRequestMessage } from '../src/worker/protocol.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('summarizeMessage', () => {
  const isKey = (value: string) => /^m[0-9a-z]+\.[0-9]+$/.test(value);

  it('names fields, store keys, numbers and typed arrays with their shape', () => {
    const message = { key: 'm1b2c3.4', t: 1733312345678, frame: new Float32Array(512 * 512), shape: [512, 512] };
    expect(summarizeMessage(message, isKey)).toBe(
      '{ key: "m1b2c3.4" (store key), t: 1733312345678, frame: Float32Array[512×512], shape: [512, 512] }',
    );
    // Without a shape that fits, the length; a string that is no key is just a string.
    expect(summarizeMessage({ data: new Uint16Array(10), shape: [3, 3], key: 'm1b2c3.4' })).toBe(
      '{ data: Uint16Array[10], shape: [3, 3], key: "m1b2c3.4" }',
    );
  });

  it('shows every kind of value briefly', () => {
    expect(summarizeMessage(42)).toBe('42');
    expect(summarizeMessage(Math.PI)).toBe('3.14159');
    expect(summarizeMessage(2n ** 70n)).toBe('1180591620717411303424n');
    expect(summarizeMessage(null)).toBe('null');
    expect(summarizeMessage(undefined)).toBe('undefined');
    expect(summarizeMessage('a'.repeat(30))).toBe(`"${'a'.repeat(24)}…"`);
    expect(summarizeMessage(new Float64Array(3))).toBe('Float64Array[3]');
    expect(summarizeMessage(new ArrayBuffer(16))).toBe('ArrayBuffer[16 B]');
    expect(summarizeMessage(new Date(0))).toBe('1970-01-01T00:00:00.000Z');
    expect(summarizeMessage(new Map([['a', 1]]))).toBe('Map(1) { "a" => 1 }');
    expect(summarizeMessage(new Set([1, 2]))).toBe('Set(2) { 1, 2 }');
    expect(summarizeMessage({})).toBe('{}');
    expect(summarizeMessage({ 'two words': true })).toBe('{ "two words": true }');
  });

  it('expands the message and one level below it, lists at most 8 items, and cuts at 200 characters', () => {
    expect(summarizeMessage({ a: { b: { c: 1 }, list: [1, [2, 3]] } })).toBe('{ a: { b: {…}, list: […2] } }');
    expect(summarizeMessage([{ a: 1 }, [2, [3]]])).toBe('[{ a: 1 }, [2, […1]]]');
    expect(summarizeMessage(Array.from({ length: 20 }, (_, i) => i))).toBe('[0, 1, 2, 3, 4, 5, 6, 7, …+12]');
    const long = summarizeMessage(Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`field${i}`, i])));
    expect(long.length).toBe(200);
    expect(long.endsWith('…')).toBe(true);
    expect(long.startsWith('{ field0: 0, field1: 1,')).toBe(true);
    // A long store key is shortened in the middle.
    const key = `m${'x'.repeat(40)}.1`;
    expect(summarizeMessage({ key }, isKey)).toBe(`{ key: "${key.slice(0, 8)}…${key.slice(-6)}" (store key) }`);
  });

  it('never throws for a store that cannot tell its keys', () => {
    expect(
      summarizeMessage({ key: 'x' }, () => {
        throw new Error('closed');
      }),
    ).toBe('{ key: "x" }');
  });
});

describe('DurationHistogram', () => {
  it('gives p50 and p99 within 7% (1 µs below 16 µs), and nothing without samples', () => {
    const histogram = new DurationHistogram();
    expect(histogram.percentiles()).toBeUndefined();
    // 1..1000 ms: p50 500 ms, p99 990 ms.
    for (let ms = 1; ms <= 1000; ms++) histogram.add(ms);
    const { p50, p99 } = histogram.percentiles()!;
    expect(Math.abs(p50 - 500) / 500).toBeLessThan(0.07);
    expect(Math.abs(p99 - 990) / 990).toBeLessThan(0.07);
    histogram.reset();
    expect(histogram.count).toBe(0);
    for (let i = 0; i < 100; i++) histogram.add(0.005);
    expect(histogram.percentiles()).toEqual({ p50: 0.005, p99: 0.005 });
    histogram.reset();
    // Negative (skewed clocks) counts as 0; beyond 35 minutes lands in the last bucket.
    histogram.add(-3);
    histogram.add(1e12);
    expect(histogram.percentiles()!.p50).toBe(0);
    expect(histogram.percentiles()!.p99).toBeGreaterThan(2_000_000);
  });

  it('is exact enough across the whole range', () => {
    for (const ms of [0.02, 0.1, 0.7, 3, 17, 250, 4000, 60_000]) {
      const histogram = new DurationHistogram();
      histogram.add(ms);
      expect(Math.abs(histogram.percentiles()!.p50 - ms) / ms).toBeLessThan(0.07);
    }
  });
});

describe('LoadProbe', () => {
  it("reads this runtime's load: heap always, ELU where it counts time, CPU of the process", async () => {
    const probe = new LoadProbe(true);
    const until = performance.now() + 60;
    while (performance.now() < until) {
      // busy
    }
    await sleep(60);
    const load = probe.read();
    expect(load.heapBytes).toBeGreaterThan(0);
    // Node measures it; Bun's and Deno's always report zero time, so it is absent.
    if ('Bun' in globalThis || 'Deno' in globalThis) expect(load.elu).toBeUndefined();
    else {
      expect(load.elu).toBeGreaterThan(0.2);
      expect(load.elu).toBeLessThanOrEqual(1);
    }
    expect(load.cpu).toBeGreaterThan(0.2);
  });
});

/** An input link that returns the messages it is given. */
function fakeInput(messages: unknown[], name = 'q_in'): InputLink {
  return {
    direction: 'in',
    name,
    async get(_options?: GetOptions) {
      return messages.shift();
    },
    tryGet: () => messages.shift(),
    size: () => messages.length,
    hold() {},
    release() {},
    close() {},
  };
}

describe('ActorMeter (the host side)', () => {
  it('passes messages through untouched and samples the latency of those with t, at most one per 5 ms', async () => {
    const posted: TapRecordMessage[] = [];
    const meter = new ActorMeter((message) => posted.push(message));
    meter.start({ ownProcess: false });
    const now = Date.now();
    const messages = [{ t: now - 20 }, { t: now - 20 }, 'plain', { t: performance.now() }, { t: 'soon' }];
    const link = meter.wrap(fakeInput([...messages])) as InputLink;
    expect(await link.get()).toEqual(messages[0]);
    // Within 5 ms of that sample: not looked at.
    expect(link.tryGet()).toEqual(messages[1]);
    await sleep(6);
    expect(await link.get()).toBe('plain');
    await sleep(6);
    // A t of another clock (performance.now()) is no Date.now() stamp: ignored.
    expect(link.tryGet()).toEqual(messages[3]);
    const report = meter.report(0, 0, false)!;
    expect(report.latencyMs!.q_in!.p50).toBeGreaterThanOrEqual(18);
    expect(report.latencyMs!.q_in!.p50).toBeLessThan(200);
    expect(posted).toEqual([]);
    // The window starts over: no news next time unless the load moved.
    const next = meter.report(0, 0, false);
    expect(next?.latencyMs).toBeUndefined();
  });

  it('reports step times, and the counters alone when metrics are off', () => {
    const on = new ActorMeter(() => {});
    on.start({ ownProcess: true });
    // A slow actor (ten steps a window): every step is timed.
    for (let i = 0; i < 10; i++) {
      const started = on.stepStarts();
      expect(started).toBeGreaterThanOrEqual(0);
      while (performance.now() - started < 2) {
        // a step of 2 ms
      }
      on.stepEnded(started);
    }
    const report = on.report(10, 1, true)!;
    expect(report).toMatchObject({ type: 'counters', steps: 10, errors: 1 });
    expect(report.stepMs!.p50).toBeGreaterThanOrEqual(2 * 0.9375); // the bucket's lower bound
    expect(report.heapBytes).toBeGreaterThan(0);
    const off = new ActorMeter(() => {});
    off.start(undefined);
    expect(off.stepStarts()).toBe(-1);
    off.stepEnded(-1);
    expect(off.report(10, 1, true)).toEqual({ type: 'counters', steps: 10, errors: 1 });
    expect(off.report(10, 1, false)).toBeUndefined();
  });

  it('taps: summarises at most one message per 50 ms, counts the rest as skipped, and stops when told', async () => {
    const posted: TapRecordMessage[] = [];
    const meter = new ActorMeter((message) => posted.push(message));
    meter.start(undefined);
    meter.isKey = (value) => value.startsWith('key-');
    const queue: unknown[] = [];
    const link = meter.wrap(fakeInput(queue)) as InputLink;
    meter.tap('q_in', true);
    for (let n = 0; n < 10; n++) queue.push({ n, key: `key-${n}` });
    for (let n = 0; n < 10; n++) await link.get();
    await sleep(60);
    queue.push({ n: 10, key: 'key-10' });
    expect(link.tryGet()).toEqual({ n: 10, key: 'key-10' });
    expect(posted.map(({ summary, skipped }) => ({ summary, skipped }))).toEqual([
      { summary: '{ n: 0, key: "key-0" (store key) }', skipped: 0 },
      { summary: '{ n: 10, key: "key-10" (store key) }', skipped: 9 },
    ]);
    expect(posted[0]).toMatchObject({ type: 'tap', link: 'q_in' });
    meter.tap('q_in', false);
    await sleep(60);
    queue.push({ n: 11 });
    await link.get();
    expect(posted).toHaveLength(2);
  });

  it('refuses a get timeout beyond the 32-bit timer before the link waits, naming the maximum and the way out', async () => {
    const meter = new ActorMeter(() => {});
    meter.start(undefined);
    const asked: (GetOptions | undefined)[] = [];
    const inner = fakeInput(['m']);
    const get = (options?: GetOptions) => {
      asked.push(options);
      return inner.get(options);
    };
    const link = meter.wrap({ ...inner, get }) as InputLink;
    await expect(link.get({ timeoutMs: 3e9 })).rejects.toThrow(
      new RangeError(
        'q_in.get({ timeoutMs }): 3000000000 ms is longer than the longest timeout, 2147483647 ms (about 24.8 days); give at most that, or omit timeoutMs to wait without a limit',
      ),
    );
    await expect(link.get({ timeoutMs: -1 })).rejects.toThrow(RangeError);
    expect(asked).toEqual([]);
    expect(await link.get({ timeoutMs: 2 ** 31 - 1 })).toBe('m');
  });

  it('leaves output links as they are', () => {
    const meter = new ActorMeter(() => {});
    const output = { direction: 'out', name: 'q_out' } as unknown as OutputLink;
    expect(meter.wrap(output)).toBe(output);
  });
});

const edge = (connection: string, from: string, to: string): LinkEdge => {
  const [fromActor, fromLink] = from.split('.') as [string, string];
  const [toActor, toLink] = to.split('.') as [string, string];
  return {
    connection,
    from: { actor: fromActor, link: fromLink },
    to: { actor: toActor, link: toLink },
    capacity: 8,
    policy: 'block',
  };
};

describe('PipelineMeter (the Nexus side)', () => {
  function pipeline() {
    const counters = { steps: 0, sent: 0, bytes: 0 };
    const status = (): PipelineStatus => ({
      state: 'running',
      actors: [
        { name: 'Source', state: 'running', steps: counters.steps, errors: 0, restarts: 0 },
        { name: 'Sink', state: 'exited', steps: 0, errors: 0, restarts: 0 },
      ],
      links: [
        {
          ...edge('frames', 'Source.q_out', 'Sink.q_in'),
          depth: 0,
          sent: counters.sent,
          bytes: counters.bytes,
          dropped: 0,
          waiting: false,
        },
      ],
    });
    return { counters, status };
  }

  it('computes rates from samples, adds what hosts reported, and samples the store', async () => {
    const { counters, status } = pipeline();
    const store = { usage: async () => ({ usedBytes: 10, capacityBytes: 100, objects: 1 }) } as unknown as StoreClient;
    const meter = new PipelineMeter({
      status,
      store: () => store,
      storeDriver: () => 'memory',
      sampling: true,
      everyMs: 50,
    });
    meter.start();
    try {
      const first = meter.metrics();
      expect(first.actors[0]).toMatchObject({ name: 'Source', stepsPerSecond: 0, errorsPerSecond: 0 });
      expect(first.links[0]).toMatchObject({ messagesPerSecond: 0, bytesPerSecond: 0, droppedPerSecond: 0 });
      // 100 steps and messages (1000 bytes) every 50 ms: about 2000 a second.
      for (let i = 0; i < 8; i++) {
        await sleep(50);
        counters.steps += 100;
        counters.sent += 100;
        counters.bytes += 1000;
      }
      await sleep(60);
      const metrics = meter.metrics();
      const source = metrics.actors.find((actor) => actor.name === 'Source')!;
      expect(source.stepsPerSecond).toBeGreaterThan(200);
      expect(source.stepsPerSecond).toBeLessThan(3000);
      expect(metrics.links[0]!.messagesPerSecond).toBeGreaterThan(200);
      expect(metrics.links[0]!.bytesPerSecond).toBeCloseTo(metrics.links[0]!.messagesPerSecond * 10, -1);
      expect(metrics.store).toEqual({ usedBytes: 10, capacityBytes: 100, objects: 1, driver: 'memory' });
      const report: CountersMessage = {
        type: 'counters',
        steps: 1,
        errors: 0,
        stepMs: { p50: 1, p99: 2 },
        elu: 0.5,
        heapBytes: 1000,
        latencyMs: { q_in: { p50: 3, p99: 4 } },
      };
      meter.reported('Source', report);
      meter.reported('Sink', report);
      const after = meter.metrics();
      expect(after.actors[0]).toMatchObject({ stepMs: { p50: 1, p99: 2 }, elu: 0.5, heapBytes: 1000 });
      expect(after.actors[0]).not.toHaveProperty('cpu');
      // The sink is gone: no load, but its last step times and its link's latency stay.
      expect(after.actors[1]).toMatchObject({ stepMs: { p50: 1, p99: 2 } });
      expect(after.actors[1]).not.toHaveProperty('elu');
      expect(after.links[0]!.latencyMs).toEqual({ p50: 3, p99: 4 });
      // A restarted actor's previous host no longer counts.
      meter.actorStarted('Source');
      expect(meter.metrics().actors[0]).not.toHaveProperty('stepMs');
      // Idle: the rates fall to 0 once the window (a second) has passed.
      await sleep(1200);
      expect(meter.metrics().links[0]!.messagesPerSecond).toBe(0);
    } finally {
      meter.stop();
    }
  });

  it('without sampling, rates come from the reads themselves, and the store is not asked', async () => {
    const { counters, status } = pipeline();
    let asked = 0;
    const store = {
      usage: async () => {
        asked += 1;
        return { usedBytes: 0, capacityBytes: 0, objects: 0 };
      },
    } as unknown as StoreClient;
    const meter = new PipelineMeter({
      status,
      store: () => store,
      storeDriver: () => 'memory',
      sampling: false,
      everyMs: 50,
    });
    meter.start();
    expect(meter.metrics().links[0]!.messagesPerSecond).toBe(0);
    await sleep(100);
    counters.sent += 50;
    const metrics = meter.metrics();
    expect(metrics.links[0]!.messagesPerSecond).toBeGreaterThan(100);
    expect(metrics.links[0]!.messagesPerSecond).toBeLessThan(600);
    expect(metrics).not.toHaveProperty('store');
    expect(asked).toBe(0);
  });
});

describe('Taps (the Nexus side)', () => {
  const edges = [
    edge('frames', 'Camera.q_out', 'Analysis.q_in'),
    edge('frames', 'Camera.q_out', 'Viewer.q_in'),
    edge('merged', 'A.q_out', 'Sink.q_in'),
    edge('merged', 'B.q_out', 'Sink.q_in'),
    edge(`host:Analysis.q_out`, 'Analysis.q_out', `${HOST_ACTOR}.Analysis.q_out`),
  ];

  function taps() {
    const sent: [string, TapRequestMessage][] = [];
    const warnings: string[] = [];
    const tapping = new Taps({
      edges,
      send: (actor, message) => sent.push([actor, message]),
      refused: () => undefined,
      warn: (message) => warnings.push(message),
    });
    return { tapping, sent, warnings };
  }

  const tapMessage = (link: string, summary: string, skipped = 0): TapRecordMessage => ({
    type: 'tap',
    link,
    time: 1,
    summary,
    skipped,
  });

  it('asks every sink of the connection to summarise, delivers its records, and stops with the last tap', () => {
    const { tapping, sent } = taps();
    const first: TapRecord[] = [];
    const second: TapRecord[] = [];
    const stopFirst = tapping.tap('frames', (record) => first.push(record));
    const stopSecond = tapping.tap('frames', (record) => second.push(record));
    expect(sent).toEqual([
      ['Analysis', { type: 'tap', link: 'q_in', on: true }],
      ['Viewer', { type: 'tap', link: 'q_in', on: true }],
    ]);
    tapping.record('Viewer', tapMessage('q_in', '{ n: 1 }', 3));
    expect(first).toEqual([
      { time: 1, connection: 'frames', from: 'Camera.q_out', to: 'Viewer.q_in', summary: '{ n: 1 }', skipped: 3 },
    ]);
    expect(second).toEqual(first);
    stopFirst();
    stopFirst();
    expect(sent).toHaveLength(2);
    // A restarted sink is asked again.
    tapping.actorStarted('Analysis');
    expect(sent[2]).toEqual(['Analysis', { type: 'tap', link: 'q_in', on: true }]);
    stopSecond();
    expect(sent.slice(3)).toEqual([
      ['Analysis', { type: 'tap', link: 'q_in', on: false }],
      ['Viewer', { type: 'tap', link: 'q_in', on: false }],
    ]);
    tapping.record('Viewer', tapMessage('q_in', '{ n: 2 }'));
    expect(first).toHaveLength(1);
  });

  it('names every source of a fan-in, since a sink cannot tell which one sent a message', () => {
    const { tapping } = taps();
    const records: TapRecord[] = [];
    tapping.tap('merged', (record) => records.push(record));
    tapping.record('Sink', tapMessage('q_in', '7'));
    expect(records[0]).toMatchObject({ from: 'A.q_out, B.q_out', to: 'Sink.q_in' });
  });

  it('refuses an unknown connection, naming the ones there are, and one only this program reads', () => {
    const { tapping } = taps();
    expect(() => tapping.tap('frame', () => {})).toThrow(
      /cannot tap "frame": there is no such connection; did you mean "frames"\? the connections are frames, merged, host:Analysis.q_out/,
    );
    let refused: unknown;
    try {
      tapping.tap('host:Analysis.q_out', () => {});
    } catch (error) {
      refused = error;
    }
    expect(CommandRefusedError.isInstance(refused)).toBe(true);
    expect((refused as Error).message).toMatch(/read by this program .* nexus\.input\("Analysis\.q_out"\)/);
  });

  it('says once that a listener threw, and goes on delivering to the others', () => {
    const { tapping, warnings } = taps();
    const records: TapRecord[] = [];
    tapping.tap('frames', () => {
      throw new Error('listener broke');
    });
    tapping.tap('frames', (record) => records.push(record));
    tapping.record('Viewer', tapMessage('q_in', '1'));
    tapping.record('Viewer', tapMessage('q_in', '2'));
    expect(records).toHaveLength(2);
    expect(warnings).toEqual(['a listener of the tap on "frames" threw (said once): listener broke']);
  });
});
