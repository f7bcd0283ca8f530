/**
 * Several messages in one (`[0x03, packed]`, the bodies a msgpack array of bin): a source sends what it
 * sends while corked as one message, but only to a sink that said it reads them (`[0x04]` and 8 zero
 * bytes, at its first message); a plain peer gets `[0x01, body]` each, as documented. Raw sockets of
 * this package play the other end, on each socket implementation this runtime has; the packed frames
 * are made and read with @msgpack/msgpack, not with the package's own code.
 */
import { type InputLink, type LinkDescriptor, MsgpackDecoder, MsgpackEncoder, type OutputLink } from '@improv/core';
import { decode, encode } from '@msgpack/msgpack';
import { afterEach, describe, expect, it } from 'vitest';
import { packBodies, unpackBodies } from '../src/_protocol.ts';
import type { SocketFactory } from '../src/_socket.ts';
import { createZeromqSockets } from '../src/_zeromq.ts';
import { createZmqTransport, openLink } from '../src/index.ts';
import { createZmtpSockets } from '../src/zmtp/index.ts';

const onNode = !('Bun' in globalThis) && !('Deno' in globalThis);
const implementations = onNode ? (['zeromq', 'zmtp'] as const) : (['zmtp'] as const);

let cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const step of cleanup.reverse()) await step();
  cleanup = [];
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const decoder = new MsgpackDecoder();

async function eventually(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** A tcp plan of one `block` edge P.q_out → C.q_in of capacity 64 on `sockets`. */
async function planPair(sockets: 'zeromq' | 'zmtp') {
  const transport = createZmqTransport({ protocol: 'tcp', sockets });
  cleanup.push(() => transport.close());
  const { endpoints } = await transport.plan({
    edges: [
      {
        connection: 'c',
        from: { actor: 'P', link: 'q_out' },
        to: { actor: 'C', link: 'q_in' },
        capacity: 64,
        policy: 'block',
      },
    ],
  });
  const source = endpoints.get('P')!.get('q_out')! as LinkDescriptor & { edges: { id: string }[] };
  const sink = endpoints.get('C')!.get('q_in')! as LinkDescriptor & { address: string };
  return { source, sink, id: new TextEncoder().encode(source.edges[0]!.id) };
}

function socketsOf(name: 'zeromq' | 'zmtp'): SocketFactory {
  return name === 'zeromq' ? createZeromqSockets() : createZmtpSockets();
}

const kind = (frames: Uint8Array[]) => frames[1]![0];
/** The bodies of a message a raw ROUTER received: `[id, 0x01, body]` or `[id, 0x03, packed]`. */
const bodiesOf = (frames: Uint8Array[]) =>
  kind(frames) === 0x03 ? (decode(frames[2]!) as Uint8Array[]) : frames.slice(2);
const bodies = (frames: Uint8Array[]) => bodiesOf(frames).map((body) => (decoder.decode(body) as { n: number }).n);

describe('packed bodies', () => {
  it('packs bodies as a msgpack array of bin that @msgpack/msgpack reads, and reads back what it packs', () => {
    const body = (length: number, fill: number) => new Uint8Array(length).fill(fill);
    // Each header form: fixarray / array 16 / array 32, bin 8 / bin 16 / bin 32.
    for (const lengths of [[0], [1, 255], [256, 65_535, 65_536], Array(16).fill(3), Array(65_536).fill(1)]) {
      const bodies = lengths.map((length, index) => body(length, index & 255));
      const packed = packBodies(bodies);
      expect(decode(packed)).toEqual(bodies);
      expect(unpackBodies(packed)).toEqual(bodies);
      expect(unpackBodies(encode(bodies))).toEqual(bodies);
    }
  });

  it('reads nothing from a frame that is not a non-empty array of bin, whole', () => {
    const good = encode([new Uint8Array([1, 2]), new Uint8Array([3])]);
    for (const bad of [
      new Uint8Array(0),
      encode([]),
      encode([1, 2]),
      encode({ a: new Uint8Array(1) }),
      encode(new Uint8Array(4)),
      good.slice(0, good.length - 1),
      new Uint8Array([...good, 0]),
      new Uint8Array([0xdd, 0xff, 0xff, 0xff, 0xff, 0xc4, 0]),
    ]) {
      expect(unpackBodies(bad)).toBeUndefined();
    }
  });
});

/** A source link whose sink is a raw ROUTER that records what it receives; at the end it acknowledges all of it. */
async function sourceAndRawSink(implementation: 'zeromq' | 'zmtp') {
  const { source, sink, id } = await planPair(implementation);
  const raw = socketsOf(implementation).router();
  const received: Uint8Array[][] = [];
  raw.onMessage((frames) => received.push(frames));
  await raw.bind(sink.address);
  const output = (await openLink({ ...source, sockets: implementation } as LinkDescriptor)) as OutputLink;
  cleanup.push(async () => {
    // Everything acknowledged, so that the source closes at once.
    const taken = received.reduce((sum, frames) => sum + bodiesOf(frames).length, 0);
    const counts = new Uint8Array(8);
    new DataView(counts.buffer).setUint32(0, taken, true);
    raw.send([id, new Uint8Array([0x02]), counts]);
    await output.close();
    raw.close();
  });
  return { output, raw, received, id };
}

/** A sink link whose source is a raw DEALER that records the replies; `body(n)` is the msgpack of `{ n }`. */
async function sinkAndRawSource(implementation: 'zeromq' | 'zmtp', warnings: string[] = []) {
  const { sink, id } = await planPair(implementation);
  const input = (await openLink({ ...sink, sockets: implementation } as LinkDescriptor, {
    warn: (message) => warnings.push(message),
  })) as InputLink;
  const raw = socketsOf(implementation).dealer({ routingId: id });
  const replies: Uint8Array[][] = [];
  raw.onMessage((frames) => replies.push(frames));
  raw.connect(sink.address);
  cleanup.push(async () => {
    raw.close();
    await input.close();
  });
  const encoder = new MsgpackEncoder();
  const body = (n: number) => encoder.encode({ n }).slice();
  return { input, raw, replies, body };
}

describe.each(implementations)('several messages in one (%s)', (implementation) => {
  it('a corked source sends one [0x03] message to a sink that welcomed it, and [0x01] messages to one that did not', async () => {
    const { output, raw, received, id } = await sourceAndRawSink(implementation);
    const corked = async (from: number, count: number) => {
      output.cork!();
      const puts = Array.from({ length: count }, (_, index) => output.put({ n: from + index }));
      output.uncork!();
      await Promise.all(puts);
    };
    // Not welcomed (a plain peer): one message each.
    await corked(0, 3);
    await eventually(() => received.length === 3, 'three messages');
    expect(received.map(kind)).toEqual([0x01, 0x01, 0x01]);
    expect(received.flatMap(bodies)).toEqual([0, 1, 2]);
    // Welcomed: what is sent while corked goes as one; a put on its own still as [0x01].
    raw.send([id, new Uint8Array([0x04]), new Uint8Array(8)]);
    await sleep(200);
    await corked(3, 5);
    await output.put({ n: 8 });
    await eventually(() => received.length === 5, 'the batch and the single message');
    expect(received.slice(3).map(kind)).toEqual([0x03, 0x01]);
    expect(received[3]!.length).toBe(3);
    expect(bodiesOf(received[3]!)).toHaveLength(5);
    expect(received.slice(3).flatMap(bodies)).toEqual([3, 4, 5, 6, 7, 8]);
    // The welcome gave no credit: 9 sent of 64, none acknowledged.
    await corked(9, 55);
    await eventually(() => received.flatMap(bodies).length === 64, 'all 64');
    expect(received.flatMap(bodies)).toEqual(Array.from({ length: 64 }, (_, n) => n));
    let waited = false;
    const more = output.put({ n: 64 }).then(() => {
      waited = true;
    });
    await sleep(100);
    expect(waited).toBe(false);
    const counts = new Uint8Array(8);
    new DataView(counts.buffer).setUint32(0, 1, true);
    raw.send([id, new Uint8Array([0x02]), counts]);
    await more;
    await eventually(() => received.flatMap(bodies).length === 65, 'the 65th');
  });

  it('a corked source sends a large message on its own, between the batches before and after it, in order', async () => {
    const { output, raw, received, id } = await sourceAndRawSink(implementation);
    // Connected (a ROUTER drops what it cannot route yet), then welcomed.
    await output.put({ n: -1 });
    await eventually(() => received.length === 1, 'the first message');
    raw.send([id, new Uint8Array([0x04]), new Uint8Array(8)]);
    await sleep(200);
    // Bodies of 300 B and 70 KiB take the longer bin headers (bin 16) and go alone (above 16 KiB).
    const messages = [{ n: 0 }, { n: 1, pad: 'x'.repeat(300) }, { n: 2, pad: 'y'.repeat(70_000) }, { n: 3 }, { n: 4 }];
    output.cork!();
    const puts = messages.map((message) => output.put(message));
    output.uncork!();
    await Promise.all(puts);
    await eventually(() => received.length === 4, 'three messages after the first');
    const batch = received.slice(1);
    expect(batch.map(kind)).toEqual([0x03, 0x01, 0x03]);
    expect(batch.map((frames) => bodiesOf(frames).length)).toEqual([2, 1, 2]);
    expect(batch.flatMap((frames) => bodiesOf(frames).map((body) => decoder.decode(body)))).toEqual(messages);
  });

  it('a sink welcomes its source once, at its first message, and reads a [0x03] message as its messages in order', async () => {
    const { input, raw, replies, body } = await sinkAndRawSource(implementation);
    raw.send([new Uint8Array([0x01]), body(0)]);
    raw.send([new Uint8Array([0x03]), encode([body(1), body(2), body(3)])]);
    raw.send([new Uint8Array([0x01]), body(4)]);
    // More than 15 bodies take an array 16 header.
    raw.send([new Uint8Array([0x03]), encode(Array.from({ length: 20 }, (_, n) => body(5 + n)))]);
    const taken = [];
    for (let n = 0; n < 25; n++) taken.push((await input.get({ timeoutMs: 10_000 })) as { n: number });
    expect(taken.map((message) => message.n)).toEqual(Array.from({ length: 25 }, (_, n) => n));
    await eventually(() => replies.some((frames) => frames[0]![0] === 0x02), 'an acknowledgement');
    const welcomes = replies.filter((frames) => frames[0]![0] === 0x04);
    expect(welcomes).toHaveLength(1);
    expect(Array.from(welcomes[0]![1]!)).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(replies[0]![0]![0]).toBe(0x04);
  });

  it('a sink ignores a [0x03] message it cannot read, says so once, and reads on', async () => {
    const warnings: string[] = [];
    const { input, raw, body } = await sinkAndRawSource(implementation, warnings);
    raw.send([new Uint8Array([0x01]), body(0)]);
    // A body per frame (not packed), a packed array of something else than bin, a bin cut short, an empty array.
    raw.send([new Uint8Array([0x03]), body(1), body(2)]);
    raw.send([new Uint8Array([0x03]), encode([1, 2])]);
    raw.send([new Uint8Array([0x03]), encode([body(3)]).slice(0, 4)]);
    raw.send([new Uint8Array([0x03]), encode([])]);
    raw.send([new Uint8Array([0x03]), encode([body(5), body(6)])]);
    const taken = [];
    for (let n = 0; n < 3; n++) taken.push((await input.get({ timeoutMs: 10_000 })) as { n: number });
    expect(taken.map((message) => message.n)).toEqual([0, 5, 6]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(
      /ignored a \[0x03\] message from .* that is not \[0x03, one frame: a msgpack array of bin/,
    );
  });
});
