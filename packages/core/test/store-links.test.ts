import { describe, expect, it } from 'vitest';
import type { InputLink, OutputLink } from '../src/link/transport.ts';
import type { StoreClient } from '../src/store/driver.ts';
import { StoreLinks } from '../src/worker/_store-links.ts';

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
