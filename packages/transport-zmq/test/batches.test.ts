/**
 * Several messages in one (`[0x03, body, body, ...]`): a source sends what it sends while corked as
 * one message, but only to a sink that said it reads them (`[0x04]` and 8 zero bytes, at its first
 * message); a plain peer gets `[0x01, body]` each, as documented. Raw sockets of this package play
 * the other end, on each socket implementation this runtime has.
 */
import { type InputLink, type LinkDescriptor, MsgpackDecoder, MsgpackEncoder, type OutputLink } from '@improv/core';
import { afterEach, describe, expect, it } from 'vitest';
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
const bodies = (frames: Uint8Array[]) => frames.slice(2).map((body) => (decoder.decode(body) as { n: number }).n);

describe.each(implementations)('several messages in one (%s)', (implementation) => {
  it('a corked source sends one [0x03] message to a sink that welcomed it, and [0x01] messages to one that did not', async () => {
    const { source, sink, id } = await planPair(implementation);
    const raw = socketsOf(implementation).router();
    const received: Uint8Array[][] = [];
    raw.onMessage((frames) => received.push(frames));
    await raw.bind(sink.address);
    const output = (await openLink({ ...source, sockets: implementation } as LinkDescriptor)) as OutputLink;
    cleanup.push(async () => {
      // Everything acknowledged, so that the source closes at once.
      const taken = received.reduce((sum, frames) => sum + frames.length - 2, 0);
      const counts = new Uint8Array(8);
      new DataView(counts.buffer).setUint32(0, taken, true);
      raw.send([id, new Uint8Array([0x02]), counts]);
      await output.close();
      raw.close();
    });
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
    expect(received[3]!.length).toBe(2 + 5);
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

  it('a sink welcomes its source once, at its first message, and reads a [0x03] message as its messages in order', async () => {
    const { sink, id } = await planPair(implementation);
    const input = (await openLink({ ...sink, sockets: implementation } as LinkDescriptor)) as InputLink;
    const raw = socketsOf(implementation).dealer({ routingId: id });
    const replies: Uint8Array[][] = [];
    raw.onMessage((frames) => replies.push(frames));
    raw.connect((sink as { address: string }).address);
    cleanup.push(async () => {
      raw.close();
      await input.close();
    });
    const encoder = new MsgpackEncoder();
    const body = (n: number) => encoder.encode({ n }).slice();
    raw.send([new Uint8Array([0x01]), body(0)]);
    raw.send([new Uint8Array([0x03]), body(1), body(2), body(3)]);
    raw.send([new Uint8Array([0x01]), body(4)]);
    const taken = [];
    for (let n = 0; n < 5; n++) taken.push((await input.get({ timeoutMs: 10_000 })) as { n: number });
    expect(taken.map((message) => message.n)).toEqual([0, 1, 2, 3, 4]);
    await eventually(() => replies.some((frames) => frames[0]![0] === 0x02), 'an acknowledgement');
    const welcomes = replies.filter((frames) => frames[0]![0] === 0x04);
    expect(welcomes).toHaveLength(1);
    expect(Array.from(welcomes[0]![1]!)).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(replies[0]![0]![0]).toBe(0x04);
  });
});
