/**
 * Faults a user meets: a sink that is not there (its process never started, died, or its address
 * is unreachable) leaves the producer waiting with a clear report — which link, which peer, which
 * address, since when, what the connection is doing — never a silent hang; and an address in use
 * is a clear error naming it. On each socket implementation this runtime has.
 */
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import type { InputLink, LinkDescriptor, OutputLink } from '@improv/core';
import { afterEach, describe, expect, it } from 'vitest';
import { announce, SINK_EPOCH, TAKEN, WAITING } from '../src/_protocol.ts';
import { createZeromqSockets } from '../src/_zeromq.ts';
import { createZmqTransport, openLink } from '../src/index.ts';
import { generateKeyPair } from '../src/keys.ts';
import { createZmtpSockets } from '../src/zmtp/index.ts';

const onNode = !('Bun' in globalThis) && !('Deno' in globalThis);
const implementations = onNode ? (['zeromq', 'zmtp'] as const) : (['zmtp'] as const);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A copy of a SharedArrayBuffer: what a process of its own sees of the plan's shared words. */
function copyShared(buffer: SharedArrayBuffer): SharedArrayBuffer {
  const copy = new SharedArrayBuffer(buffer.byteLength);
  new Uint8Array(copy).set(new Uint8Array(buffer));
  return copy;
}

/**
 * `descriptor` as a sink process of its own gets it: its counters and control words are copies, so
 * what it writes reaches the source only when the test says so (as Nexus's channel mirrors them).
 */
function inProcessOfItsOwn(descriptor: LinkDescriptor): LinkDescriptor {
  const edges = descriptor.edges as { counters: SharedArrayBuffer }[];
  return {
    ...descriptor,
    control: copyShared(descriptor.control as SharedArrayBuffer),
    edges: edges.map((edge) => ({ ...edge, counters: copyShared(edge.counters) })),
  };
}

let cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const step of cleanup.reverse()) await step();
  cleanup = [];
});

/** A tcp plan of one `block` edge, Camera.q_out → `sink`.q_in, closed after the test. */
async function planFrames(
  sockets: 'zeromq' | 'zmtp',
  sink: string,
  capacity: number,
  options: Parameters<typeof createZmqTransport>[0] = {},
) {
  return (await planEdge(sockets, sink, capacity, options)).endpoints;
}

/** {@link planFrames}, with the transport that planned it (its `stats()`, `detach()`). */
async function planEdge(
  sockets: 'zeromq' | 'zmtp',
  sink: string,
  capacity: number,
  options: Parameters<typeof createZmqTransport>[0] = {},
) {
  const transport = createZmqTransport({ protocol: 'tcp', sockets, ...options });
  cleanup.push(() => transport.close());
  const { endpoints } = await transport.plan({
    edges: [
      {
        connection: 'frames',
        from: { actor: 'Camera', link: 'q_out' },
        to: { actor: sink, link: 'q_in' },
        capacity,
        policy: 'block',
      },
    ],
  });
  return { transport, endpoints };
}

describe.each(implementations)('faults, sockets: %s', (sockets) => {
  it('a sink that never listens: put waits once the credit is used, and the log says which link, peer, address and since when', {
    timeout: 20_000,
  }, async () => {
    const endpoints = await planFrames(sockets, 'Gone', 2);
    const warnings: string[] = [];
    const output = (await openLink(endpoints.get('Camera')!.get('q_out')!, {
      warn: (message) => warnings.push(message),
    })) as OutputLink;
    cleanup.push(() => output.close());
    await output.put({ n: 0 });
    await output.put({ n: 1 });
    let third = false;
    void output.put({ n: 2 }).then(() => {
      third = true;
    });
    const deadline = Date.now() + 15_000;
    while (warnings.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(third).toBe(false);
    const address = String(endpoints.get('Gone')!.get('q_in')!.address);
    expect(warnings.join('\n')).toMatch(
      new RegExp(
        `link "Camera\\.q_out" → Gone\\.q_in \\(connection "frames", ${address.replace(/[.]/g, '\\.')}\\): waiting for room since \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z — 2 messages unacknowledged, 1 put\\(\\) waiting; connection: `,
      ),
    );
  });

  it('a restarted source: what its dead process counted as sent and never got out is counted dropped, not left waiting', {
    timeout: 20_000,
  }, async () => {
    const { transport, endpoints } = await planEdge(sockets, 'Analysis', 8);
    const stats = () => transport.stats()[0]!;
    // The sink does not listen yet: the source's three messages wait in its process, which ends.
    const first = (await openLink(endpoints.get('Camera')!.get('q_out')!)) as OutputLink;
    for (let n = 0; n < 3; n++) await first.put({ n });
    await first.close();
    transport.detach('Camera', { restarting: true });
    expect(stats()).toMatchObject({ sent: 3, depth: 3, dropped: 0 });
    // They never arrive: counted dropped once what was on its way had time to arrive.
    const deadline = Date.now() + 10_000;
    while (stats().dropped === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(stats()).toMatchObject({ sent: 3, depth: 0, dropped: 3 });
    // Its next incarnation and the sink carry on; the counts stay exact.
    const input = (await openLink(endpoints.get('Analysis')!.get('q_in')!)) as InputLink<{ n: number }>;
    cleanup.push(() => input.close());
    const second = (await openLink(endpoints.get('Camera')!.get('q_out')!)) as OutputLink;
    cleanup.push(() => second.close());
    await second.put({ n: 3 });
    expect((await input.get({ timeoutMs: 5000 })).n).toBe(3);
    expect(stats()).toMatchObject({ sent: 4, depth: 0, dropped: 3 });
  });

  it('a sink process that dies before its counts crossed over: the link counts what its source got acknowledged as read, not as waiting', {
    timeout: 20_000,
  }, async () => {
    const { transport, endpoints } = await planEdge(sockets, 'Analysis', 8);
    const sinkDescriptor = endpoints.get('Analysis')!.get('q_in')!;
    const counters = (sinkDescriptor.edges as { counters: SharedArrayBuffer }[])[0]!.counters;
    // The sink's own words never reach Nexus's (a SIGKILL ends its process before the next round).
    const input = (await openLink(inProcessOfItsOwn(sinkDescriptor))) as InputLink<{ n: number }>;
    cleanup.push(() => input.close());
    Atomics.store(new Int32Array(counters), SINK_EPOCH, 1);
    announce(new Int32Array(sinkDescriptor.control as SharedArrayBuffer));
    const output = (await openLink(endpoints.get('Camera')!.get('q_out')!)) as OutputLink;
    for (let n = 0; n < 5; n++) await output.put({ n });
    for (let n = 0; n < 5; n++) expect((await input.get({ timeoutMs: 5000 })).n).toBe(n);
    // Closing waits for the acknowledgements of all five.
    await output.close();
    expect(new Float64Array(counters)[TAKEN]).toBe(0);
    expect(transport.stats()[0]).toMatchObject({ sent: 5, depth: 0, dropped: 0 });
  });

  it('a sink that closed its link itself (its actor failed) before it was detached: what it never read is counted dropped', {
    timeout: 20_000,
  }, async () => {
    const { transport, endpoints } = await planEdge(sockets, 'Analysis', 8);
    const input = (await openLink(endpoints.get('Analysis')!.get('q_in')!)) as InputLink<{ n: number }>;
    const output = (await openLink(endpoints.get('Camera')!.get('q_out')!)) as OutputLink;
    cleanup.push(() => output.close());
    for (let n = 0; n < 3; n++) await output.put({ n });
    expect((await input.get({ timeoutMs: 5000 })).n).toBe(0);
    await input.close();
    const batches = transport.detach('Analysis');
    expect(batches.map((batch) => batch.droppedAtSource)).toEqual([2]);
    expect(transport.stats()[0]).toMatchObject({ sent: 3, depth: 0, dropped: 2 });
    // Detached again (quit after the failure): counted once.
    expect(transport.detach('Analysis')).toEqual([]);
    expect(transport.drain()).toEqual([]);
    expect(transport.stats()[0]).toMatchObject({ sent: 3, depth: 0, dropped: 2 });
  });

  it('a sink process killed and restarted while its source floods: the new one gets every message once, in order, also when the old connection comes back to it first', {
    timeout: 30_000,
  }, async () => {
    const capacity = 16;
    const count = 400;
    const endpoints = await planFrames(sockets, 'Analysis', capacity);
    const sinkDescriptor = endpoints.get('Analysis')!.get('q_in')!;
    const flags = new Int32Array((sinkDescriptor.edges as { counters: SharedArrayBuffer }[])[0]!.counters);
    const control = new Int32Array(sinkDescriptor.control as SharedArrayBuffer);
    // The first incarnation opens its copy of the words; the test mirrors its epoch to the source's.
    const first = inProcessOfItsOwn(sinkDescriptor);
    const old = (await openLink(first)) as InputLink<{ n: number }>;
    Atomics.store(flags, SINK_EPOCH, 1);
    announce(control);
    const output = (await openLink(endpoints.get('Camera')!.get('q_out')!)) as OutputLink;
    cleanup.push(() => output.close());
    let put = 0;
    // Paced, so that it has credit left when its sink dies.
    const flood = (async () => {
      for (; put < count; put++) {
        await output.put({ n: put });
        await sleep(1);
      }
    })().catch((error: unknown) => error);
    const reads: number[][] = [[], []];
    while (reads[0]!.length < 100) reads[0]!.push((await old.get({ timeoutMs: 5000 })).n);
    // Its process dies (no close of its own reaches the source's words), and the source goes on
    // until its credit is used up: those messages wait in its socket for a sink to connect.
    await old.close();
    for (const end = Date.now() + 5000; Atomics.load(flags, WAITING) === 0 && Date.now() < end; ) await sleep(5);
    expect(Atomics.load(flags, WAITING)).toBe(1);
    // The restarted sink opens the same descriptor: it listens at the same address and bumps the
    // epoch in its own copy of the words. The source's old socket reconnects to it by itself
    // (within 250 ms), long before the source sees the new epoch.
    const second = inProcessOfItsOwn(first);
    const input = (await openLink(second)) as InputLink<{ n: number }>;
    cleanup.push(() => input.close());
    await sleep(600);
    const epoch = Atomics.load(
      new Int32Array((second.edges as { counters: SharedArrayBuffer }[])[0]!.counters),
      SINK_EPOCH,
    );
    expect(epoch).toBe(2);
    Atomics.store(flags, SINK_EPOCH, epoch);
    announce(control);
    for (;;) {
      const n = (await input.get({ timeoutMs: 5000 })).n;
      reads[1]!.push(n);
      if (n === count - 1) break;
    }
    expect(await flood).toBeUndefined();
    // Nothing more comes: what the old socket held was not read twice.
    await expect(input.get({ timeoutMs: 300 })).rejects.toThrow('no message');
    const [before, after] = reads as [number[], number[]];
    expect(before).toEqual(Array.from({ length: 100 }, (_, n) => n));
    // The new sink starts at most at the first message the old one did not read, and again at most
    // the ones the old one read without acknowledging them (acknowledgements go out in batches).
    expect(after[0]).toBeLessThanOrEqual(100);
    expect(100 - after[0]!).toBeLessThan(capacity);
    expect(after).toEqual(Array.from({ length: count - after[0]! }, (_, k) => after[0]! + k));
  });

  it('a source that closes right after its last put waits until its sink has taken every message, then lets go', {
    timeout: 20_000,
  }, async () => {
    const endpoints = await planFrames(sockets, 'Analysis', 4);
    const input = (await openLink(endpoints.get('Analysis')!.get('q_in')!)) as InputLink<{ n: number }>;
    cleanup.push(() => input.close());
    const output = (await openLink(endpoints.get('Camera')!.get('q_out')!)) as OutputLink;
    for (let n = 0; n < 4; n++) await output.put({ n, frame: new Uint8Array(64 * 1024) });
    let closed = false;
    const closing = Promise.resolve(output.close()).then(() => {
      closed = true;
    });
    // The sink has not taken them: an acknowledgement could still come, so the source holds on.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(closed).toBe(false);
    for (let n = 0; n < 4; n++) expect((await input.get({ timeoutMs: 5000 })).n).toBe(n);
    await closing;
    expect(closed).toBe(true);
  });

  it('a closing source does not wait for a sink that closed without reading', {
    timeout: 20_000,
  }, async () => {
    const endpoints = await planFrames(sockets, 'Analysis', 4);
    const input = (await openLink(endpoints.get('Analysis')!.get('q_in')!)) as InputLink;
    const output = (await openLink(endpoints.get('Camera')!.get('q_out')!)) as OutputLink;
    for (let n = 0; n < 2; n++) await output.put({ n });
    let closed = false;
    const closing = Promise.resolve(output.close()).then(() => {
      closed = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(closed).toBe(false);
    // The sink closes without reading (its actor ended): what it never took is no reason to wait.
    await input.close();
    await closing;
    expect(closed).toBe(true);
  });

  it("bind '*' (every interface, as the YAML and ZeroMQ write it) listens on 0.0.0.0, and messages go through", async () => {
    const endpoints = await planFrames(sockets, 'B', 4, { bind: '*', curve: generateKeyPair() });
    expect(String(endpoints.get('B')!.get('q_in')!.address)).toMatch(/^tcp:\/\/0\.0\.0\.0:\d+$/);
    const input = (await openLink(endpoints.get('B')!.get('q_in')!)) as InputLink<{ n: number }>;
    cleanup.push(() => input.close());
    const output = (await openLink(endpoints.get('Camera')!.get('q_out')!)) as OutputLink;
    cleanup.push(() => output.close());
    await output.put({ n: 7 });
    expect(await input.get({ timeoutMs: 10_000 })).toEqual({ n: 7 });
  });

  it('binding an address in use is an error naming it', async () => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanup.push(() => void server.close());
    const port = (server.address() as AddressInfo).port;
    const factory = sockets === 'zeromq' ? createZeromqSockets() : createZmtpSockets();
    const router = factory.router();
    cleanup.push(() => router.close());
    await expect(router.bind(`tcp://127.0.0.1:${port}`)).rejects.toThrow(
      `cannot listen on tcp://127.0.0.1:${port}: the address is in use by another program`,
    );
  });
});
