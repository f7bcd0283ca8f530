import { afterEach, describe, expect, it, vi } from 'vitest';
import type { InputLink, OutputLink } from '../src/link/transport.ts';
import type { StoreClient } from '../src/store/driver.ts';
import { BATCH_MAX_MESSAGES, StoreLinks } from '../src/worker/_store-links.ts';

/** A store that records the calls the actor host makes; its keys start with `k:`. */
function recordingStore(calls: string[]): StoreClient {
  const record =
    (name: string) =>
    async (...args: unknown[]) => {
      calls.push(`${name}(${args.map((arg) => JSON.stringify(arg)).join(', ')})`);
    };
  return {
    isKey: (value: string) => value.startsWith('k:'),
    flush: record('flush'),
    release: record('release'),
    track: record('track'),
  } as unknown as StoreClient;
}

function output(calls: string[], sinks: number): OutputLink {
  return {
    direction: 'out',
    name: 'q_out',
    sinks,
    put: async (message: unknown) => {
      calls.push(`put(${JSON.stringify(message)})`);
    },
    hold() {},
    release() {},
    close() {},
  };
}

function input(messages: unknown[]): InputLink {
  return {
    direction: 'in',
    name: 'q_in',
    get: async () => messages.shift(),
    tryGet: () => messages.shift(),
    size: () => messages.length,
    hold() {},
    release() {},
    close() {},
  };
}

describe('the actor host minds store keys in messages', () => {
  it('hands out the links themselves for a zero-copy store without eviction: nothing on the hot path', () => {
    const links = new StoreLinks(recordingStore([]), { flushBeforeSend: false, trackMessages: false });
    const out = output([], 1);
    const into = input([]);
    expect(links.wrap(out)).toBe(out);
    expect(links.wrap(into)).toBe(into);
    expect(links.hooks()).toEqual({});
  });

  it('a step that leaves an idle store (isIdle) and took no keys ends without a promise or a store call', async () => {
    const calls: string[] = [];
    let idle = true;
    const store = { ...recordingStore(calls), isIdle: () => idle };
    const links = new StoreLinks(store, { flushBeforeSend: false, trackMessages: true });
    const into = links.wrap(input([{ frame: 'k:2' }, { t: 1 }])) as InputLink;
    expect(links.stepEnded()).toBeUndefined();
    expect(calls).toEqual([]);
    // A step that took a key counts it out; one after setup() or stop() commits; a held value is released.
    await into.get();
    await links.stepEnded();
    expect(calls).toEqual(['flush({"deletes":false})', 'track(["k:2"], -1)', 'release()']);
    calls.length = 0;
    await into.get();
    expect(links.stepEnded()).toBeUndefined();
    await links.stepEnded({ commitDeletes: true });
    idle = false;
    await links.stepEnded();
    expect(calls).toEqual(['flush({"deletes":true})', 'release()', 'flush({"deletes":false})', 'release()']);
  });

  it('a copying store: allocated arrays are flushed before a message leaves, and after each step', async () => {
    const calls: string[] = [];
    const links = new StoreLinks(recordingStore(calls), { flushBeforeSend: true, trackMessages: false });
    const out = links.wrap(output(calls, 1)) as OutputLink;
    await out.put({ key: 'k:1' });
    await links.stepEnded();
    // Batched deletes go before a message leaves, and after setup() and stop(); after a step the client's timer commits them.
    await links.stepEnded({ commitDeletes: true });
    expect(calls).toEqual([
      'flush()',
      'put({"key":"k:1"})',
      'flush({"deletes":false})',
      'release()',
      'flush({"deletes":true})',
      'release()',
    ]);
  });

  it('eviction on: a message with keys is counted in once per sink when sent, and out when its step ends', async () => {
    const calls: string[] = [];
    const links = new StoreLinks(recordingStore(calls), { flushBeforeSend: false, trackMessages: true });
    const out = links.wrap(output(calls, 3)) as OutputLink;
    const into = links.wrap(input([{ frame: 'k:2', t: 1 }, { note: 'no key' }, { keys: ['k:3', 'k:4'] }])) as InputLink;
    await out.put({ key: 'k:1', label: 'not-a-key' });
    await out.put({ t: 5 });
    expect(await into.get()).toEqual({ frame: 'k:2', t: 1 });
    expect(into.tryGet()).toEqual({ note: 'no key' });
    expect(into.tryGet()).toEqual({ keys: ['k:3', 'k:4'] });
    // Taken messages stay counted until the step that took them ends (it may still read them).
    expect(calls).toEqual(['track(["k:1"], 3)', 'put({"key":"k:1","label":"not-a-key"})', 'put({"t":5})']);
    calls.length = 0;
    await links.stepEnded();
    expect(calls).toEqual(['flush({"deletes":false})', 'track(["k:2","k:3","k:4"], -1)', 'release()']);
    calls.length = 0;
    await links.stepEnded();
    expect(calls).toEqual(['flush({"deletes":false})', 'release()']);
    calls.length = 0;
    links.hooks().droppedForOneSink?.({ key: 'k:9' }, 'drop-oldest');
    await Promise.resolve();
    expect(calls).toEqual(['track(["k:9"], -1)']);
  });
});

describe('a flood of messages shares one flush of a copying store (group commit)', () => {
  // The clock is the test's: what is a flood depends on time between sends only.
  let clock = 0;

  /**
   * Starts a flood (a first message, then one within the gap) whose second message the actor then changes,
   * as an actor may once its put resolved: what waits must be the message as it was sent.
   */
  async function sendThenReuse(out: OutputLink): Promise<void> {
    await out.put('first');
    clock += 0.01;
    const reused = { frame: 'k:1', d: new Uint8Array([1]) };
    await out.put(reused);
    reused.frame = 'k:2';
    reused.d[0] = 2;
  }

  /** What the link says it has room for. */
  let room = Number.POSITIVE_INFINITY;
  afterEach(() => {
    vi.restoreAllMocks();
  });
  const setUp = (unflushed = () => true) => {
    clock = 1000;
    room = Number.POSITIVE_INFINITY;
    vi.spyOn(performance, 'now').mockImplementation(() => clock);
    const calls: string[] = [];
    const store = { ...recordingStore(calls), hasUnflushed: unflushed } as StoreClient;
    const links = new StoreLinks(store, { flushBeforeSend: true, trackMessages: false });
    const out = links.wrap({ ...output(calls, 1), room: () => room }) as OutputLink;
    return { calls, links, out };
  };
  /** A link of room `room.left` whose put of a message past it waits until `room.take()`. */
  const setUpFull = () => {
    clock = 1000;
    vi.spyOn(performance, 'now').mockImplementation(() => clock);
    const calls: string[] = [];
    const waiting: (() => void)[] = [];
    const room = {
      left: Number.POSITIVE_INFINITY,
      take: () => {
        for (const resolve of waiting.splice(0)) resolve();
      },
    };
    const store = { ...recordingStore(calls), hasUnflushed: () => true } as StoreClient;
    const links = new StoreLinks(store, { flushBeforeSend: true, trackMessages: false });
    const out = links.wrap({
      ...output(calls, 1),
      room: () => room.left,
      put: (message: unknown) => {
        calls.push(`put(${JSON.stringify(message)})`);
        if (room.left > 0) {
          room.left -= 1;
          return Promise.resolve();
        }
        return new Promise<void>((resolve) => waiting.push(resolve));
      },
    }) as OutputLink;
    return { calls, links, out, room };
  };
  const puts = (from: number, to: number) => Array.from({ length: to - from }, (_, index) => `put(${from + index})`);
  /** A copying store whose flush fails while `failing.flush` is set. */
  const setUpFailing = () => {
    clock = 1000;
    vi.spyOn(performance, 'now').mockImplementation(() => clock);
    const calls: string[] = [];
    const failing = { flush: false };
    const store = {
      ...recordingStore(calls),
      hasUnflushed: () => true,
      flush: async () => {
        if (failing.flush) throw new Error('store is full');
        calls.push('flush()');
      },
    } as StoreClient;
    return { calls, failing, links: new StoreLinks(store, { flushBeforeSend: true, trackMessages: false }) };
  };

  it('a lone message is flushed and sent at once; the next ones within 50 µs wait, up to a batch, for one flush', async () => {
    const { calls, out } = setUp();
    await out.put(0);
    expect(calls).toEqual(['flush()', 'put(0)']);
    calls.length = 0;
    clock += 0.01;
    for (let index = 1; index < BATCH_MAX_MESSAGES; index++) await out.put(index);
    expect(calls).toEqual([]); // each put resolved; the messages wait
    await out.put(BATCH_MAX_MESSAGES);
    expect(calls).toEqual(['flush()', ...puts(1, BATCH_MAX_MESSAGES + 1)]);
    // After a pause, a message goes on its own again.
    calls.length = 0;
    clock += 5;
    await out.put('alone');
    expect(calls).toEqual(['flush()', 'put("alone")']);
  });

  it('a message that waits is a copy; one the store has nothing to write for, or that cannot be copied, goes at once', async () => {
    let unflushed = true;
    const { calls, links, out } = setUp(() => unflushed);
    await sendThenReuse(out);
    await links.handOver();
    expect(calls.slice(2)).toEqual(['flush()', 'put({"frame":"k:1","d":{"0":1}})']);
    // Nothing to write: a flood of inline messages is sent as it comes, no copy, no wait.
    unflushed = false;
    calls.length = 0;
    clock += 0.01;
    await out.put(1);
    clock += 0.01;
    await out.put(2);
    expect(calls).toEqual(['flush()', 'put(1)', 'flush()', 'put(2)']);
    // What cannot be copied goes to the link after the ones waiting: the link's error names it.
    unflushed = true;
    calls.length = 0;
    clock += 0.01;
    await out.put(3);
    const unclonable = { run: () => 1 };
    await out.put(unclonable);
    expect(calls).toEqual(['flush()', 'put(3)', 'flush()', 'put({})']);
    // An undefined message waits in its place like any other.
    calls.length = 0;
    await out.put(4);
    await out.put(undefined);
    await out.put(5);
    await links.handOver();
    expect(calls).toEqual(['flush()', 'put(4)', 'put(undefined)', 'put(5)']);
  });

  it('on a link that encodes (encode, putEncoded) a waiting message is its encoding, not a copy; what it cannot encode fails at its put', async () => {
    clock = 1000;
    vi.spyOn(performance, 'now').mockImplementation(() => clock);
    const calls: string[] = [];
    const encode = (message: unknown): string => {
      if (typeof message === 'object' && message !== null && 'bad' in message) {
        throw new TypeError('link "P.q_out": the message cannot be sent');
      }
      return `bytes ${JSON.stringify(message)}`;
    };
    const store = { ...recordingStore(calls), hasUnflushed: () => true } as StoreClient;
    const links = new StoreLinks(store, { flushBeforeSend: true, trackMessages: true });
    const out = links.wrap({
      ...output(calls, 2),
      put: async (message: unknown) => {
        calls.push(`put(${encode(message)})`);
      },
      room: () => Number.POSITIVE_INFINITY,
      encode,
      putEncoded: async (encoded: unknown) => {
        calls.push(`putEncoded(${String(encoded)})`);
      },
    }) as OutputLink;
    await sendThenReuse(out);
    await out.put(3);
    expect(calls).toEqual(['flush()', 'put(bytes "first")']);
    await links.handOver();
    // Sent as encoded when put, and counted in flight with the keys it had then.
    expect(calls.slice(2)).toEqual([
      'flush()',
      'track(["k:1"], 2)',
      'putEncoded(bytes {"frame":"k:1","d":{"0":1}})',
      'putEncoded(bytes 3)',
    ]);
    calls.length = 0;
    clock += 0.01;
    await out.put(4);
    await expect(out.put({ bad: true })).rejects.toThrow('link "P.q_out": the message cannot be sent');
    expect(calls).toEqual(['flush()', 'putEncoded(bytes 4)', 'flush()']);
  });

  it('no more messages wait than the link has room for: then the actor waits for the link, as without the store', async () => {
    const { calls, links, out, room: space } = setUpFull();
    await out.put(0);
    space.left = 2;
    clock += 0.01;
    await out.put(1);
    await out.put(2);
    expect(calls).toEqual(['flush()', 'put(0)']);
    // A third would not fit: it goes with the two, in the same flush, and its put waits until the link took it.
    let resolved = false;
    const third = out.put(3).then(() => {
      resolved = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(calls.slice(2)).toEqual(['flush()', 'put(1)', 'put(2)', 'put(3)']);
    expect(resolved).toBe(false);
    space.take();
    await third;
    // The next message, right after the wait, is part of the same flood: it waits for the next flush.
    space.left = 2;
    clock += 0.01;
    await out.put(4);
    expect(calls.slice(6)).toEqual([]);
    await links.handOver();
    expect(calls.slice(6)).toEqual(['flush()', 'put(4)']);
    // A link without room(): every message on its own.
    const plain = setUp();
    const bare = new StoreLinks({ ...recordingStore(plain.calls), hasUnflushed: () => true } as StoreClient, {
      flushBeforeSend: true,
      trackMessages: false,
    }).wrap(output(plain.calls, 1)) as OutputLink;
    await bare.put(0);
    await bare.put(1);
    expect(plain.calls).toEqual(['flush()', 'put(0)', 'flush()', 'put(1)']);
  });

  it('waiting messages go at the end of a step longer than the gap, after 1 ms, on the next event-loop turn, and before a park', async () => {
    const { calls, links, out } = setUp();
    await out.put(0);
    await links.stepEnded();
    calls.length = 0;
    // Short steps: the messages wait across them, and the step end does not flush.
    await out.put(1);
    clock += 0.01;
    await links.stepEnded();
    await out.put(2);
    clock += 0.01;
    await links.stepEnded();
    expect(calls).toEqual(['release()', 'release()']);
    // A long step: they go with its flush.
    await out.put(3);
    clock += 0.2;
    await links.stepEnded();
    expect(calls.slice(2)).toEqual(['flush()', ...puts(1, 4), 'flush({"deletes":false})', 'release()']);
    // The first waited 1 ms: the next send takes them all.
    calls.length = 0;
    await out.put('alone'); // after the long step: on its own
    clock += 0.01;
    await out.put(4);
    clock += 0.04;
    await out.put(5);
    clock += 0.04;
    await out.put(6);
    expect(calls).toEqual(['flush()', 'put("alone")']);
    clock += 1;
    await out.put(7);
    expect(calls.slice(2)).toEqual(['flush()', ...puts(4, 8)]);
    // The event loop turns.
    calls.length = 0;
    clock += 0.01;
    await out.put(8);
    expect(calls).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(calls).toEqual(['flush()', 'put(8)']);
    // The host parks the actor.
    calls.length = 0;
    clock += 0.01;
    await out.put(9);
    await links.handOver();
    expect(calls).toEqual(['flush()', 'put(9)']);
    // A step that ends as the actor parks, and setup() and stop(), hand them over too.
    for (const options of [{ handOver: true }, { commitDeletes: true }]) {
      calls.length = 0;
      clock += 0.01;
      await out.put(10);
      await links.stepEnded(options);
      expect(calls[0]).toBe('flush()');
      expect(calls[1]).toBe('put(10)');
    }
  });

  it('a flush that fails keeps the messages for the next; a link that refuses one fails the next send', async () => {
    const { calls, failing, links } = setUpFailing();
    let refuse = false;
    const link = { ...output(calls, 1), room: () => Number.POSITIVE_INFINITY };
    const out = links.wrap({
      ...link,
      put: (message: unknown) => (refuse ? Promise.reject(new TypeError('cannot encode')) : link.put(message)),
    }) as OutputLink;
    await out.put(0);
    clock += 0.01;
    await out.put(1);
    failing.flush = true;
    await expect(links.handOver()).rejects.toThrow('store is full');
    failing.flush = false;
    await links.handOver();
    expect(calls).toEqual(['flush()', 'put(0)', 'flush()', 'put(1)']);
    clock += 0.01;
    await out.put(2);
    refuse = true;
    await links.handOver();
    await new Promise((resolve) => setTimeout(resolve, 1));
    refuse = false;
    clock += 5;
    await expect(out.put(3)).rejects.toThrow('cannot encode');
    await out.put(3);
    expect(calls.slice(4)).toEqual(['flush()', 'flush()', 'put(3)']);
  });

  it('a message that finds its link full and a flush that fails: its put throws, it waits with the others for the next flush', async () => {
    const { calls, failing, links } = setUpFailing();
    let room = Number.POSITIVE_INFINITY;
    const out = links.wrap({ ...output(calls, 1), room: () => room }) as OutputLink;
    await out.put(0);
    room = 1;
    clock += 0.01;
    await out.put(1);
    failing.flush = true;
    await expect(out.put(2)).rejects.toThrow('store is full');
    expect(calls).toEqual(['flush()', 'put(0)']);
    failing.flush = false;
    await links.handOver();
    expect(calls.slice(2)).toEqual(['flush()', 'put(1)', 'put(2)']);
  });

  it('at quit, messages whose flush keeps failing are dropped and counted per link, never sent', async () => {
    const { calls, failing, links } = setUpFailing();
    const out = links.wrap({ ...output(calls, 1), room: () => Number.POSITIVE_INFINITY }) as OutputLink;
    const other = links.wrap({
      ...output(calls, 1),
      name: 'q_plot',
      room: () => Number.POSITIVE_INFINITY,
    }) as OutputLink;
    expect(await links.dropHeld()).toEqual(new Map());
    await out.put(0);
    failing.flush = true;
    clock += 0.01;
    await out.put(1);
    await other.put(2);
    await out.put(3);
    await expect(links.handOver()).rejects.toThrow('store is full');
    expect(await links.dropHeld()).toEqual(
      new Map([
        ['q_out', 2],
        ['q_plot', 1],
      ]),
    );
    failing.flush = false;
    await links.handOver();
    expect(calls).toEqual(['flush()', 'put(0)']);
  });
});
