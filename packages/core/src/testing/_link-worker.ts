/**
 * Worker entry of the transport conformance suite: opens links from descriptors and puts or gets
 * test messages on command, so the suite can drive real workers of any runtime. Package-private.
 *
 * Commands carry an `id`; the worker answers each with `{ id, ok: true, result }` or
 * `{ id, ok: false, error }`. Commands run concurrently (a put and a get in one worker is fine).
 * @module
 */
import { type SerializedError, serializeError } from '../errors.ts';
import type { InputLink, Link, LinkDescriptor, OpenLink, OutputLink } from '../link/transport.ts';
import type { WorkerEndpoint } from '../runtime/adapter.ts';

/** `small`: a few bytes each; `mixed`: 0 to ~12 KB of 1- to 4-byte UTF-8 characters. */
export type MessageShape = 'small' | 'mixed';

/** A message the suite sends: its payload is derived from `seq`, so the receiver can check it. */
export interface TestMessage {
  source: string;
  seq: number;
  shape: MessageShape;
  pad: string;
}

/** What a `get` command saw: `[source, seq, intact]` per message, and the largest `size()` seen. */
export interface GetResult {
  received: [string, number, boolean][];
  maxSize: number;
}

/** Commands the suite posts to a link worker. */
export type LinkWorkerCommand =
  | { op: 'open'; id: number; name: string; descriptor: LinkDescriptor }
  | {
      op: 'put';
      id: number;
      name: string;
      source: string;
      from: number;
      count: number;
      shape: MessageShape;
      /** Int32 word 0 is incremented (and notified) after each completed put. */
      progress?: SharedArrayBuffer;
    }
  | {
      op: 'get';
      id: number;
      name: string;
      /** Stop after this many messages. */
      count?: number;
      /** Stop once this message arrived. */
      until?: { source: string; seq: number };
      /** After every `slowEvery` messages, wait a millisecond: a consumer slower than its producer. */
      slowEvery?: number;
    }
  | { op: 'size'; id: number; name: string }
  | { op: 'exit'; id: number };

/** The worker's answer to one command. */
export type LinkWorkerReply =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: SerializedError };

const characters = ['a', 'é', '€', '😀'] as const;

/** The test message number `seq` of `source`. */
export function testMessage(source: string, seq: number, shape: MessageShape): TestMessage {
  return { source, seq, shape, pad: expectedPad(seq, shape) };
}

function expectedPad(seq: number, shape: MessageShape): string {
  const length = shape === 'small' ? 4 : (seq * 7919) % 3001;
  return characters[seq % characters.length]!.repeat(length);
}

/** True when `message` is a test message whose payload arrived unchanged. */
export function isIntact(message: unknown): boolean {
  const candidate = message as Partial<TestMessage> | null;
  return (
    typeof candidate?.seq === 'number' &&
    (candidate.shape === 'small' || candidate.shape === 'mixed') &&
    candidate.pad === expectedPad(candidate.seq, candidate.shape)
  );
}

/** Entry point the runtime adapter's bootstrap calls. */
export function runWorker(endpoint: WorkerEndpoint): Promise<void> {
  const links = new Map<string, Link>();
  let exit: () => void = () => {};
  const exited = new Promise<void>((resolve) => {
    exit = resolve;
  });

  const handle = async (command: LinkWorkerCommand): Promise<unknown> => {
    switch (command.op) {
      case 'open': {
        const module = (await import(command.descriptor.module)) as { openLink?: OpenLink };
        if (typeof module.openLink !== 'function') {
          throw new TypeError(`transport module ${command.descriptor.module} does not export openLink()`);
        }
        links.set(command.name, await module.openLink(command.descriptor));
        return null;
      }
      case 'put': {
        const link = linkOf(links, command.name, 'out') as OutputLink;
        const progress = command.progress === undefined ? undefined : new Int32Array(command.progress);
        for (let seq = command.from; seq < command.from + command.count; seq++) {
          await link.put(testMessage(command.source, seq, command.shape));
          if (progress !== undefined) {
            Atomics.add(progress, 0, 1);
            Atomics.notify(progress, 0);
          }
        }
        return null;
      }
      case 'get': {
        const link = linkOf(links, command.name, 'in') as InputLink;
        const result: GetResult = { received: [], maxSize: 0 };
        while (command.count === undefined || result.received.length < command.count) {
          result.maxSize = Math.max(result.maxSize, link.size());
          const message = (await link.get()) as TestMessage;
          result.received.push([String(message?.source), Number(message?.seq), isIntact(message)]);
          if (command.until?.source === message.source && command.until.seq === message.seq) break;
          if (command.slowEvery !== undefined && result.received.length % command.slowEvery === 0) {
            await new Promise((resolve) => setTimeout(resolve, 1));
          }
        }
        return result;
      }
      case 'size':
        return (linkOf(links, command.name, 'in') as InputLink).size();
      case 'exit':
        await Promise.all([...links.values()].map((link) => link.close()));
        links.clear();
        exit();
        return null;
    }
  };

  endpoint.onMessage((message) => {
    const command = message as LinkWorkerCommand;
    handle(command).then(
      (result) => {
        endpoint.postMessage({ id: command.id, ok: true, result } satisfies LinkWorkerReply);
        if (command.op === 'exit') endpoint.close();
      },
      (error: unknown) => endpoint.postMessage({ id: command.id, ok: false, error: serializeError(error) }),
    );
  });
  return exited;
}

function linkOf(links: Map<string, Link>, name: string, direction: 'in' | 'out'): Link {
  const link = links.get(name);
  if (link === undefined) throw new Error(`link worker: no link "${name}" was opened; send { op: 'open' } first`);
  if (link.direction !== direction) {
    throw new Error(
      `link worker: link "${name}" is an ${link.direction} link; this command needs an ${direction} link`,
    );
  }
  return link;
}
