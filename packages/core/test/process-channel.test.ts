// The control channel of actor processes, on its own: framing, order, and shared buffers kept alike
// across the socket (both ways, with waiters woken, and never overtaken by a later message).
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ProcessChannel } from '../src/runtime/_node-process-channel.ts';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

/** Two channels over a real Unix socket: `parent` (the server side) and `child`. */
async function pair(): Promise<{ parent: ProcessChannel; child: ProcessChannel; childSocket: Socket }> {
  const dir = mkdtempSync(join(tmpdir(), 'improv-channel-'));
  const path = join(dir, 'c.sock');
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(path, resolve));
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  const { connect } = await import('node:net');
  const childSocket = connect(path);
  await new Promise((resolve) => childSocket.once('connect', resolve));
  const parentSocket = await accepted;
  cleanups.push(() => {
    childSocket.destroy();
    parentSocket.destroy();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    parent: new ProcessChannel(parentSocket, 'parent'),
    child: new ProcessChannel(childSocket, 'child'),
    childSocket,
  };
}

function collect(channel: ProcessChannel): unknown[] {
  const got: unknown[] = [];
  channel.onMessage((message) => got.push(message));
  return got;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) await sleep(5);
  if (!condition()) throw new Error(`timed out waiting for ${what}`);
}

describe('process control channel', () => {
  it('delivers messages in order, also large ones split across reads, and those sent before a listener was set', async () => {
    const { parent, child } = await pair();
    const big = new Uint8Array(3 * 1024 * 1024).map((_, index) => index & 255);
    parent.send({ n: 0 });
    parent.send({ n: 1, big });
    for (let n = 2; n < 200; n++) parent.send({ n, text: 'x'.repeat(n) });
    await sleep(50);
    const got = collect(child);
    await until(() => got.length === 200, 'every message');
    expect(got.map((message) => (message as { n: number }).n)).toEqual(Array.from({ length: 200 }, (_, n) => n));
    const received = (got[1] as { big: Uint8Array }).big;
    expect(received.byteLength).toBe(big.byteLength);
    expect(Buffer.compare(received, big)).toBe(0);
    // undefined fields are left out, as structured clone would keep them absent
    parent.send({ a: 1, b: undefined });
    await until(() => got.length === 201, 'the last message');
    expect(got[200]).toEqual({ a: 1 });
  });

  it('keeps a SharedArrayBuffer alike on both sides, each writing its own words, and wakes waiters', async () => {
    const { parent, child } = await pair();
    const buffer = new SharedArrayBuffer(16);
    const mine = new Int32Array(buffer);
    const got = collect(child);
    parent.send({ buffer });
    await until(() => got.length === 1, 'the buffer');
    const theirs = new Int32Array((got[0] as { buffer: SharedArrayBuffer }).buffer);
    expect(theirs.buffer).not.toBe(buffer);
    // Parent writes word 0; a waiter on the child's copy wakes.
    const waiting = Atomics.waitAsync(theirs, 0, 0, 5000);
    Atomics.store(mine, 0, 7);
    expect(await (waiting.async ? waiting.value : Promise.resolve(waiting.value))).toBe('ok');
    expect(Atomics.load(theirs, 0)).toBe(7);
    // The child writes word 1; the parent's copy follows.
    Atomics.store(theirs, 1, 42);
    await until(() => Atomics.load(mine, 1) === 42, 'the child’s word');
    // The same buffer sent again is the same copy on the other side, not a new one.
    parent.send({ again: buffer });
    await until(() => got.length === 2, 'the buffer again');
    expect((got[1] as { again: SharedArrayBuffer }).again).toBe(theirs.buffer);
  });

  it('never lets a message overtake a change to a shared word made before it', async () => {
    const { parent, child } = await pair();
    const buffer = new SharedArrayBuffer(8);
    const got = collect(child);
    parent.send({ buffer });
    await until(() => got.length === 1, 'the buffer');
    const theirs = new Int32Array((got[0] as { buffer: SharedArrayBuffer }).buffer);
    const seenAtMessage: number[] = [];
    child.onMessage((message) => seenAtMessage.push((message as { n: number }).n - Atomics.load(theirs, 0)));
    const mine = new Int32Array(buffer);
    // No timer round can run in between: only the send itself can carry the change.
    for (let n = 1; n <= 100; n++) {
      Atomics.store(mine, 0, n);
      parent.send({ n });
    }
    await until(() => seenAtMessage.length === 100, 'the messages');
    expect(new Set(seenAtMessage)).toEqual(new Set([0]));
  });

  it('stores every word of a round before it wakes anyone: a waiter woken by one finds the others changed', async () => {
    const { parent, child } = await pair();
    // As a link's plan: the control words (announcements) and a large buffer of counters.
    const control = new SharedArrayBuffer(8);
    const counters = new SharedArrayBuffer(64 * 1024);
    const got = collect(child);
    parent.send({ control, counters });
    await until(() => got.length === 1, 'the buffers');
    const copies = got[0] as { control: SharedArrayBuffer; counters: SharedArrayBuffer };
    // A thread of its own waits for an announcement, then reads the last counter, as a link's source does.
    const { Worker } = await import('node:worker_threads');
    const worker = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
      const control = new Int32Array(workerData.control);
      const counters = new Int32Array(workerData.counters);
      parentPort.postMessage('waiting');
      Atomics.wait(control, 1, 0);
      parentPort.postMessage(Atomics.load(counters, counters.length - 1));`,
      { eval: true, workerData: copies },
    );
    cleanups.push(() => void worker.terminate());
    const messages: unknown[] = [];
    worker.on('message', (message) => messages.push(message));
    await until(() => messages.length === 1, 'the waiter');
    await sleep(20);
    // One round: the announcement (its buffer goes first), then every counter, the last one included.
    const words = new Int32Array(counters);
    Atomics.store(new Int32Array(control), 1, 1);
    for (let index = 0; index < words.length; index++) Atomics.store(words, index, 7);
    await until(() => messages.length === 2, 'the waiter to wake');
    expect(messages[1]).toBe(7);
  });

  it('tells both sides when the socket closes, after what was sent before it', async () => {
    const { parent, child } = await pair();
    const got = collect(parent);
    let parentClosed = false;
    parent.onClose(() => {
      parentClosed = true;
    });
    child.send({ last: 'words' });
    await child.close();
    await until(() => parentClosed, 'the parent to see the close');
    expect(got).toEqual([{ last: 'words' }]);
    let late = false;
    child.onClose(() => {
      late = true;
    });
    expect(late).toBe(true);
    child.send({ ignored: true }); // no throw once closed
  });

  it('drops a peer that sends a frame longer than any message can be', async () => {
    const { parent, childSocket } = await pair();
    let closed = false;
    parent.onClose(() => {
      closed = true;
    });
    childSocket.write(new Uint8Array([0xff, 0xff, 0xff, 0x7f, 1, 2, 3]));
    await until(() => closed, 'the channel to close');
  });
});
