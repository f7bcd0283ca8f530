import {
  detectRuntime,
  type InputLink,
  LinkClosedError,
  type LinkEdge,
  type LinkPlan,
  MsgpackDecoder,
  MsgpackEncoder,
  type OutputLink,
} from '@improv/core';
import { DECLINED, FastDecoder, FastEncoder } from '@improv/core/codec/fast';
import { describeTransportConformance } from '@improv/core/testing';
import { describe, expect, it } from 'vitest';
import { createLocalTransport, type LocalTransportOptions, openLink } from '../src/index.ts';

// The adapter of the runtime this file runs in: the suite runs on Node, Bun and Deno.
const runtime = await detectRuntime();

describeTransportConformance({ name: 'local', createTransport: createLocalTransport, runtime });

// Without spinning every wait sleeps, which exercises the doorbell and wake-up protocol hardest.
describe('never spinning', () => {
  describeTransportConformance({
    name: 'local',
    createTransport: () => createLocalTransport({ spinIterations: 0 }),
    runtime,
  });
});

function edge(
  from: string,
  to: string,
  capacity = 1024,
  policy: LinkEdge['policy'] = 'block',
  connection = 'c',
): LinkEdge {
  const [fromActor, fromLink] = from.split('.') as [string, string];
  const [toActor, toLink] = to.split('.') as [string, string];
  return {
    connection,
    from: { actor: fromActor, link: fromLink },
    to: { actor: toActor, link: toLink },
    capacity,
    policy,
  };
}

async function setup(edges: LinkEdge[], options: LocalTransportOptions = {}) {
  const transport = createLocalTransport(options);
  const plan = await transport.plan({ edges });
  const descriptor = (label: string) => {
    const [actor, link] = label.split('.') as [string, string];
    return plan.endpoints.get(actor)!.get(link)!;
  };
  return {
    transport,
    plan,
    descriptor,
    input: (label: string) => openLink(descriptor(label)) as InputLink,
    output: (label: string) => openLink(descriptor(label)) as OutputLink,
  };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => 'resolved',
    (error: unknown) => error,
  );
}

describe('local transport specifics', () => {
  it('serves fan-in round-robin, so one busy source cannot starve the others', async () => {
    const { input, output } = await setup([edge('A.out', 'C.in'), edge('B.out', 'C.in'), edge('D.out', 'C.in')]);
    const [a, b, d] = [output('A.out'), output('B.out'), output('D.out')];
    const c = input('C.in');
    for (let n = 0; n < 3; n++) await a.put(`a${n}`);
    for (let n = 0; n < 2; n++) await b.put(`b${n}`);
    await d.put('d0');
    const order = Array.from({ length: 6 }, () => c.tryGet());
    expect(order).toEqual(['a0', 'b0', 'd0', 'a1', 'b1', 'a2']);
  });

  it('wraps records around the end of a small ring without corrupting them', async () => {
    const { input, output } = await setup([edge('P.out', 'C.in', 1000)], { minRingBytes: 256, bytesPerMessage: 1 });
    const q_out = output('P.out');
    const q_in = input('C.in');
    const expected: string[] = [];
    const received: unknown[] = [];
    for (let n = 0; n < 2000; n++) {
      const text = 'x'.repeat((n * 37) % 90) + String(n);
      await q_out.put(text);
      expected.push(text);
      // Let a few records pile up so reads and writes straddle the ring's end at varied offsets.
      if (n % 3 === 2) while (q_in.size() > 0) received.push(q_in.tryGet());
    }
    while (q_in.size() > 0) received.push(q_in.tryGet());
    expect(received).toEqual(expected);
  });

  it('sizes rings from capacity × bytesPerMessage (a power of two) and refuses larger messages', async () => {
    // 3 × 100 = 300 bytes → a 512-byte ring → payloads up to 508 bytes.
    const { input, output } = await setup([edge('P.out', 'C.in', 3)], { minRingBytes: 256, bytesPerMessage: 100 });
    const q_out = output('P.out');
    const q_in = input('C.in');
    await q_out.put(new Uint8Array(504)); // ext16 (typed array): 4 header bytes + 504 = 508
    expect(q_in.tryGet()).toEqual(new Uint8Array(504));
    const error = await rejection(q_out.put(new Uint8Array(505)));
    expect((error as { code?: string }).code).toBe('LINK_MESSAGE_TOO_LARGE');
    expect((error as Error).message).toMatch(/509 bytes.*"C\.in".*508 bytes/);
  });

  it('carries typed arrays, Map, Set and bigints like the store does, and names the link for an unsendable message', async () => {
    const { input, output } = await setup([edge('P.out', 'C.in', 8)]);
    const q_out = output('P.out');
    const q_in = input('C.in');
    const message = {
      frame: new Float32Array([1.5, 2.5]),
      seen: new Set([1, 2]),
      index: new Map([[1, 'a']]),
      t: 2n ** 60n,
    };
    await q_out.put(message);
    expect(q_in.tryGet()).toEqual(message);
    const error = await rejection(q_out.put({ callback: () => 1 }));
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toMatch(
      /link "P\.out": the message cannot be sent: Unrecognized object.*Send plain data \(numbers, strings/,
    );
    // A bigint msgpack cannot carry is refused too, never sent wrapped.
    const tooBig = await rejection(q_out.put({ t: 2n ** 70n }));
    expect((tooBig as Error).message).toMatch(
      /link "P\.out": the message cannot be sent: the bigint 1180591620717411303424 does not fit/,
    );
    await q_out.put({ after: true });
    expect(q_in.tryGet()).toEqual({ after: true });
  });

  it('carries integers beyond 32 bits as numbers, and beyond 2**53 as bigints', async () => {
    const { input, output } = await setup([edge('P.out', 'C.in', 8)]);
    const q_out = output('P.out');
    const q_in = input('C.in');
    const now = Date.now();
    // A typical message (the fast path) and one with a Map (the general codec).
    await q_out.put({ t: now, big: 2 ** 40, neg: -(2 ** 40) });
    const fast = q_in.tryGet() as { t: number; big: number; neg: number };
    expect(fast).toEqual({ t: now, big: 2 ** 40, neg: -(2 ** 40) });
    expect(Date.now() - fast.t).toBeGreaterThanOrEqual(0);
    await q_out.put({ t: now, index: new Map([[1, 2 ** 40]]) });
    expect(q_in.tryGet()).toEqual({ t: now, index: new Map([[1, 2 ** 40]]) });
    // Bigints: exact beyond the safe range, numbers within it.
    await q_out.put({ a: 2n ** 53n + 1n, b: 2n ** 63n - 1n, c: 5n });
    expect(q_in.tryGet()).toEqual({ a: 2n ** 53n + 1n, b: 2n ** 63n - 1n, c: 5 });
  });

  it('honours capacity as a message count even when bytes are left', async () => {
    const { input, output } = await setup([edge('P.out', 'C.in', 3)]);
    const q_out = output('P.out');
    const q_in = input('C.in');
    for (let n = 0; n < 3; n++) await q_out.put(n);
    let fourthDone = false;
    const fourth = q_out.put(3).then(() => {
      fourthDone = true;
    });
    await Promise.resolve();
    expect(fourthDone).toBe(false);
    expect(q_in.size()).toBe(3);
    expect(q_in.tryGet()).toBe(0);
    await fourth;
    expect([q_in.tryGet(), q_in.tryGet(), q_in.tryGet(), q_in.tryGet()]).toEqual([1, 2, 3, undefined]);
  });

  it('keeps call order for puts and gets that are not awaited one by one', async () => {
    const { input, output } = await setup([edge('P.out', 'C.in', 2)], { spinIterations: 0 });
    const q_out = output('P.out');
    const q_in = input('C.in');
    const gets = Array.from({ length: 10 }, () => q_in.get());
    const puts = Array.from({ length: 10 }, (_, n) => q_out.put(n));
    await Promise.all(puts);
    expect(await Promise.all(gets)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('drop-oldest also drops when the ring is full by bytes, keeping the newest', async () => {
    const { input, output } = await setup([edge('P.out', 'C.in', 100, 'drop-oldest')], {
      minRingBytes: 256,
      bytesPerMessage: 1,
    });
    const q_out = output('P.out');
    const q_in = input('C.in');
    for (let n = 0; n < 50; n++) await q_out.put({ n, pad: 'y'.repeat(60) });
    const seen: number[] = [];
    for (let message = q_in.tryGet(); message !== undefined; message = q_in.tryGet()) {
      seen.push((message as { n: number }).n);
    }
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.length).toBeLessThan(50);
    expect(seen).toEqual(Array.from({ length: seen.length }, (_, index) => 50 - seen.length + index));
  });

  it('lets a getter of a message put on the same link while the message is encoded', async () => {
    const { input, output } = await setup([edge('P.out', 'C.in', 8)]);
    const q_out = output('P.out');
    const q_in = input('C.in');
    const inner: Promise<void>[] = [];
    await q_out.put({
      get k() {
        inner.push(q_out.put({ k: 'inner' }));
        return 'outer';
      },
    });
    await Promise.all(inner);
    expect([q_in.tryGet(), q_in.tryGet()]).toEqual([{ k: 'inner' }, { k: 'outer' }]);
  });

  it('returns bin values that do not alias ring memory', async () => {
    const { input, output } = await setup([edge('P.out', 'C.in', 4)], { minRingBytes: 256, bytesPerMessage: 1 });
    const q_out = output('P.out');
    const q_in = input('C.in');
    await q_out.put(new Uint8Array([7, 7, 7, 7]));
    const first = q_in.tryGet() as Uint8Array;
    for (let n = 0; n < 100; n++) {
      await q_out.put(new Uint8Array([n, n, n, n]));
      q_in.tryGet();
    }
    expect([...first]).toEqual([7, 7, 7, 7]);
  });

  it('Transport.close() rejects pending gets and later calls of every link with LinkClosedError; a waiting put ends unsent', async () => {
    const { transport, input, output } = await setup([edge('P.out', 'C.in', 1), edge('P.out', 'D.in', 1)]);
    const q_out = output('P.out');
    const q_c = input('C.in');
    const q_d = input('D.in');
    await q_out.put('fills');
    const pendingPut = q_out.put('waits');
    q_d.tryGet();
    const pendingGet = q_d.get();
    await transport.close();
    const outcomes = await Promise.all([pendingPut, pendingGet, q_c.get(), q_out.put('later')].map(rejection));
    // The waiting put ends unsent (its message goes to the dropped hook); every get and later put is refused.
    expect(outcomes.map((outcome) => LinkClosedError.isInstance(outcome))).toEqual([false, true, true, true]);
    expect(outcomes[0]).toBe('resolved');
    expect(() => q_c.tryGet()).toThrow(/transport was closed/);
  });

  it('a sink that closed takes nothing and does not hold the producer back; a reopened one receives again', async () => {
    const { input, output, descriptor } = await setup([edge('P.out', 'C.in', 2), edge('P.out', 'D.in', 2)]);
    const q_out = output('P.out');
    const q_c = input('C.in');
    const q_d = input('D.in');
    await q_out.put(0);
    await q_out.put(1);
    const blocked = q_out.put(2); // C and D are full
    q_c.close();
    expect(q_d.tryGet()).toBe(0);
    await blocked;
    for (let n = 3; n < 10; n++) {
      expect(q_d.tryGet()).toBe(n - 2);
      await q_out.put(n);
    }
    expect([q_d.tryGet(), q_d.tryGet(), q_d.tryGet()]).toEqual([8, 9, undefined]);
    const revived = openLink(descriptor('C.in')) as InputLink;
    expect([revived.tryGet(), revived.tryGet(), revived.tryGet()]).toEqual([0, 1, undefined]);
    await q_out.put('after revive');
    expect(revived.tryGet()).toBe('after revive');
  });

  it('makes descriptors that survive structured cloning and name a module exporting openLink', async () => {
    const { descriptor } = await setup([edge('P.out', 'C.in')]);
    const sink = structuredClone(descriptor('C.in'));
    const source = structuredClone(descriptor('P.out'));
    expect(sink.module).toBe(new URL('../src/index.ts', import.meta.url).href);
    const module = (await import(sink.module)) as { openLink: typeof openLink };
    const q_out = module.openLink(source) as OutputLink;
    const q_in = module.openLink(sink) as InputLink;
    await q_out.put({ via: 'clone' });
    expect(q_in.tryGet()).toEqual({ via: 'clone' });
  });

  it('explains descriptors that are foreign or lost their shared buffers', async () => {
    const { descriptor } = await setup([edge('P.out', 'C.in')]);
    expect(() => openLink({ ...descriptor('C.in'), transport: 'zmq' })).toThrow(/not made by the local transport/);
    expect(() => openLink(JSON.parse(JSON.stringify(descriptor('C.in'))))).toThrow(/structuredClone/);
  });

  it('checks options and graphs', async () => {
    expect(() => createLocalTransport({ minRingBytes: 1000 })).toThrow(RangeError);
    expect(() => createLocalTransport({ bytesPerMessage: 0 })).toThrow(RangeError);
    expect(() => createLocalTransport({ minRingBytes: 4096, maxRingBytes: 1024 })).toThrow(RangeError);
    expect(() => createLocalTransport({ spinIterations: -1 })).toThrow(RangeError);
    const transport = createLocalTransport();
    await expect(transport.plan({ edges: [edge('P.out', 'C.in', 0)] })).rejects.toThrow(RangeError);
    await expect(transport.plan({ edges: [edge('P.out', 'C.in', 4, 'newest' as LinkEdge['policy'])] })).rejects.toThrow(
      /policy must be "block" or "drop-oldest"/,
    );
    await expect(transport.plan({ edges: [edge('P.out', 'C.in'), edge('C.in', 'D.in')] })).rejects.toThrow(
      /"C\.in" is both a source and a sink/,
    );
    const plan: LinkPlan = await transport.plan({ edges: [] });
    expect(plan.endpoints.size).toBe(0);
  });
});

describe('fast msgpack path', () => {
  const general = { encoder: new MsgpackEncoder(), decoder: new MsgpackDecoder() };

  /** The fast decoder's result for `bytes`, read from shared memory at an offset as in a ring. */
  function fastDecode(bytes: Uint8Array): unknown {
    const shared = new Uint8Array(new SharedArrayBuffer(bytes.length + 8));
    shared.set(bytes, 4);
    return new FastDecoder().decode(shared, new DataView(shared.buffer), 4, 4 + bytes.length);
  }

  const handled: unknown[] = [
    { k: 'mabc123-1f.3', t: 12345.678, i: 42 },
    ...[0, 127, 128, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, 2 ** 53, -0, 0.5, Number.NaN, -Infinity],
    ...[-1, -32, -33, -128, -129, -32_768, -32_769, -(2 ** 31), -(2 ** 31) - 1],
    // Safe integers beyond 32 bits: int 64 / uint 64, as Python writes them.
    ...[2 ** 32 + 1, 2 ** 40, Date.now(), Number.MAX_SAFE_INTEGER, -(2 ** 40), -Date.now(), -Number.MAX_SAFE_INTEGER],
    { t: Date.now(), i: 2 ** 33 },
    '',
    'x'.repeat(31),
    'y'.repeat(32),
    'z'.repeat(255),
    true,
    false,
    null,
    { gone: undefined, list: [1, [2, { deep: 'er' }], null], empty: {}, none: [] },
    Object.fromEntries(Array.from({ length: 15 }, (_, index) => [`key${index}`, index])),
    Array.from({ length: 15 }, (_, index) => index * 1.5),
    // Typed arrays: every kind, and every extension head (fixext 1–16, ext 8, ext 16, empty).
    { p: 1, i: 2, t: 3.5, d: Uint8Array.from({ length: 8 }, (_, index) => index * 30) },
    new Int8Array([-1, 0, 1]),
    new Uint8ClampedArray([0, 255]),
    new Int16Array([-2]),
    new Uint16Array([1, 2, 65_535, 4, 5, 6, 7, 8]),
    new Int32Array([-(2 ** 31)]),
    new Uint32Array([2 ** 32 - 1, 0, 1, 2]),
    Float32Array.from([0.5, -1, Number.POSITIVE_INFINITY]),
    new Float64Array(100).fill(Math.PI),
    new BigInt64Array([-(2n ** 63n)]),
    new BigUint64Array([2n ** 64n - 1n, 0n]),
    new Uint8Array(0),
    new Uint8Array(300).fill(7),
    new Float64Array([1, 2, 3, 4]).subarray(1, 3),
    // -0 keeps its sign (a float 64), also in a container.
    -0,
    { z: -0, list: [0, -0] },
  ];

  it('writes the bytes the general codec writes and reads them back to its values', () => {
    const encoder = new FastEncoder();
    for (const [index, value] of handled.entries()) {
      const length = encoder.encode(value);
      const expected = general.encoder.encode(value);
      expect(length, `handled[${index}]`).toBe(expected.length);
      expect([...encoder.bytes.subarray(0, length)]).toEqual([...expected]);
      const decoded = fastDecode(expected);
      expect(decoded).toEqual(general.decoder.decode(expected));
      if (typeof decoded === 'number') expect(Object.is(decoded, general.decoder.decode(expected))).toBe(true);
    }
  });

  it('declines values and bytes it does not handle, leaving them to the general codec', () => {
    const cycle: { self?: unknown } = {};
    cycle.self = cycle;
    let nested: unknown = 1;
    for (let depth = 0; depth < 9; depth++) nested = [nested];
    const declined: unknown[] = [
      'z'.repeat(256),
      'ü',
      { text: 'naïve' },
      Object.fromEntries(Array.from({ length: 16 }, (_, index) => [`key${index}`, index])),
      new Array(16).fill(0),
      new DataView(new ArrayBuffer(4)),
      new Map([[1, 2]]),
      new Date(0),
      Object.create(null),
      2n ** 60n,
      new (class Point {
        x = 1;
      })(),
      nested,
      cycle,
      [() => 1],
      // The general codec refuses it, with its reason.
      JSON.parse('{"__proto__": {"gain": 2}, "id": 1}'),
    ];
    const encoder = new FastEncoder();
    for (const value of declined) expect(encoder.encode(value)).toBe(-1);
    // While some code has given Object.prototype an enumerable property, plain objects are the
    // general codec's (which writes own keys only).
    const prototype = Object.prototype as Record<string, unknown>;
    prototype.polluted = 1;
    try {
      expect(encoder.encode({ a: 1 })).toBe(-1);
      expect(encoder.encode([1, 2])).toBe(-1);
    } finally {
      delete prototype.polluted;
    }
    expect(encoder.encode({ a: 1 })).toBe(general.encoder.encode({ a: 1 }).length);
    // The first eight are written in formats the fast decoder leaves alone; the rest as plain maps and
    // arrays, or (a bigint) as a 64-bit integer it reads.
    for (const value of declined.slice(0, 8)) expect(fastDecode(general.encoder.encode(value))).toBe(DECLINED);
    // Extension types past the typed arrays' 0..10: a Set (12) and numpy's bool array (14, from Python).
    expect(fastDecode(general.encoder.encode(new Set([1])))).toBe(DECLINED);
    expect(fastDecode(Uint8Array.of(0xd5, 14, 1, 0))).toBe(DECLINED);
    // Too big for the fast encoder's buffer; its bytes the fast decoder still reads.
    const big = new Float32Array(1100).fill(0.25);
    expect(encoder.encode(big)).toBe(-1);
    expect(fastDecode(general.encoder.encode(big))).toEqual(big);
    const typical = general.encoder.encode({ k: 'key', t: 1.5 });
    expect(fastDecode(new Uint8Array([...typical, 0]))).toBe(DECLINED);
    expect(fastDecode(typical.subarray(0, typical.length - 1))).toBe(DECLINED);
    // { "__proto__": 1 }, as another msgpack writer may send it (improv's encoders refuse to).
    expect(fastDecode(Uint8Array.of(0x81, 0xa9, ...new TextEncoder().encode('__proto__'), 1))).toBe(DECLINED);
  });

  it('reads 64-bit integers as the general decoder does: numbers when safe, else bigints', () => {
    const cases: [string, number | bigint][] = [
      ['cf0000000100000001', 2 ** 32 + 1], // Python's 2**32 + 1
      ['cf000001a24cd4267d', 1_796_585_301_629], // Python's int(time.time() * 1000)
      ['cf0000000000000005', 5],
      ['d3fffffffffffffffb', -5],
      ['cf001fffffffffffff', Number.MAX_SAFE_INTEGER],
      ['d3ffe0000000000001', -Number.MAX_SAFE_INTEGER],
      ['cf0020000000000001', 2n ** 53n + 1n],
      ['cf7fffffffffffffff', 2n ** 63n - 1n],
      ['cfffffffffffffffff', 2n ** 64n - 1n],
      ['d3ffe0000000000000', -(2n ** 53n)],
      ['d38000000000000000', -(2n ** 63n)],
    ];
    for (const [text, value] of cases) {
      const bytes = new Uint8Array(Buffer.from(text, 'hex'));
      expect(fastDecode(bytes), text).toBe(value);
      expect(general.decoder.decode(bytes), text).toBe(value);
    }
    expect(new FastEncoder().encode(2n ** 60n)).toBe(-1);
  });

  /** `value` with every NaN number (in maps and arrays, at any depth) replaced by the string 'NaN'. */
  function nanMarked(value: unknown): unknown {
    if (typeof value === 'number') return Number.isNaN(value) ? 'NaN' : value;
    if (Array.isArray(value)) return value.map(nanMarked);
    if (value !== null && typeof value === 'object' && !ArrayBuffer.isView(value)) {
      return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, nanMarked(item)]));
    }
    return value;
  }

  it('never throws on corrupt bytes, and what it does decode the general decoder decodes alike', () => {
    let seed = 7;
    const random = (below: number) => {
      seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
      return seed % below;
    };
    for (let round = 0; round < 5000; round++) {
      const bytes = general.encoder.encode(handled[round % handled.length]);
      for (let flips = 1 + random(3); flips > 0; flips--) bytes[random(bytes.length)] = random(256);
      const cut = random(4) === 0 ? bytes.subarray(0, random(bytes.length + 1)) : bytes;
      const decoded = fastDecode(cut);
      // Compared as their encodings: flipped bytes make NaNs inside typed arrays, which bun's
      // toEqual counts as unequal to themselves. A NaN number is written as one marker: which NaN
      // bits a re-encoded number keeps depends on the JIT tier (deno once differed), and a NaN's
      // payload is not part of its value.
      if (decoded !== DECLINED) {
        const bytesOf = (value: unknown) => [...general.encoder.encode(nanMarked(value))];
        expect(bytesOf(decoded)).toEqual(bytesOf(general.decoder.decode(cut)));
      }
    }
  });
});
