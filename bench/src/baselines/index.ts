/**
 * The baselines, measured in the same run as the pipeline: memcpy into shared memory, a raw ring
 * between two workers, and raw MessagePort messages between two workers.
 * @module
 */
import process from 'node:process';
import type { RuntimeAdapter, Transferable, WorkerHandle } from '@improv/core';
import { createRingBuffer } from './ring.ts';
import type { BaselineCommand, LatencyReply, PortLike, ThroughputReply } from './worker.ts';

const workerEntry = new URL('./worker.ts', import.meta.url).href;

/** One baseline worker, called like a function. */
class Remote {
  readonly #handle: WorkerHandle;
  readonly #pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  #next = 0;

  constructor(handle: WorkerHandle, name: string) {
    this.#handle = handle;
    handle.onMessage((message) => {
      const { id, result, error } = message as { id: number; result?: unknown; error?: string };
      const pending = this.#pending.get(id);
      this.#pending.delete(id);
      if (error === undefined) pending?.resolve(result);
      else pending?.reject(new Error(`bench: baseline worker ${name}: ${error}`));
    });
    handle.onExit((code) => {
      for (const pending of this.#pending.values()) {
        pending.reject(new Error(`bench: baseline worker ${name} ended (exit code ${code})`));
      }
      this.#pending.clear();
    });
  }

  call<T>(command: BaselineCommand, transfer?: readonly Transferable[]): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.#handle.postMessage({ id, command }, transfer);
    });
  }

  terminate(): Promise<void> {
    return this.#handle.terminate();
  }
}

/** A latency phase of a baseline. */
export interface BaselineLatency {
  /** One-way latency samples, µs. */
  samples: Float64Array;
  /** Round trips (MessagePort ping-pong only), µs. */
  roundTrips?: Float64Array;
}

/** A throughput phase of a baseline. */
export interface BaselineThroughput {
  received: number;
  wallUs: number;
  cpuUs: number;
}

/** Two workers joined by a raw ring or a raw MessagePort. */
export class BaselinePair {
  readonly kind: 'ring' | 'port';
  readonly #producer: Remote;
  readonly #consumer: Remote;

  private constructor(kind: 'ring' | 'port', producer: Remote, consumer: Remote) {
    this.kind = kind;
    this.#producer = producer;
    this.#consumer = consumer;
  }

  /** Two workers sharing a raw ring that spins `spin` iterations before sleeping. */
  static async ring(runtime: RuntimeAdapter, spin: number, epochMs: number): Promise<BaselinePair> {
    const [producer, consumer] = await spawnPair(runtime, 'ring');
    const buffer = createRingBuffer();
    await producer.call({ op: 'ring-open', role: 'producer', buffer, spin, epochMs });
    await consumer.call({ op: 'ring-open', role: 'consumer', buffer, spin, epochMs });
    return new BaselinePair('ring', producer, consumer);
  }

  /** Two workers holding the ends of one `MessageChannel`. */
  static async port(runtime: RuntimeAdapter, epochMs: number): Promise<BaselinePair> {
    const [producer, consumer] = await spawnPair(runtime, 'port');
    const { port1, port2 } = new MessageChannel();
    // Node's typings of MessagePort leave out the web `onmessage` the worker uses (it is there).
    const asPort = (port: typeof port1) => port as unknown as PortLike;
    await producer.call({ op: 'port-open', role: 'producer', port: asPort(port1), epochMs }, [port1]);
    await consumer.call({ op: 'port-open', role: 'consumer', port: asPort(port2), epochMs }, [port2]);
    return new BaselinePair('port', producer, consumer);
  }

  /** `count` messages of `size` bytes, one every `intervalUs`. */
  async latency(count: number, intervalUs: number, size: number): Promise<BaselineLatency> {
    const command: BaselineCommand = { op: 'latency', count, intervalUs, size };
    const consumer = this.#consumer.call<LatencyReply>(command);
    const producer = this.#producer.call<LatencyReply>(command);
    const [received, sent] = await Promise.all([consumer, producer]);
    if (received.errors > 0)
      throw new Error(`bench: raw ${this.kind}: ${received.errors} messages arrived out of order or damaged`);
    return this.kind === 'port'
      ? { samples: received.samples, roundTrips: sent.samples }
      : { samples: received.samples };
  }

  /** Flat out for `durationUs`, at most `window` unacknowledged messages (MessagePort). */
  async throughput(durationUs: number, size: number, window: number): Promise<BaselineThroughput> {
    const command: BaselineCommand = { op: 'throughput', durationUs, size, window };
    const cpuBefore = process.cpuUsage();
    const consumer = this.#consumer.call<ThroughputReply>(command);
    const producer = this.#producer.call<ThroughputReply>(command);
    const [received, sent] = await Promise.all([consumer, producer]);
    const cpu = process.cpuUsage(cpuBefore);
    if (received.errors > 0 || received.received !== sent.sent) {
      throw new Error(
        `bench: raw ${this.kind}: ${sent.sent} messages sent, ${received.received} received, ${received.errors} out of order or damaged`,
      );
    }
    return { received: received.received, wallUs: received.endUs - sent.firstSendUs, cpuUs: cpu.user + cpu.system };
  }

  async close(): Promise<void> {
    await Promise.all([this.#producer.terminate(), this.#consumer.terminate()]);
  }
}

async function spawnPair(runtime: RuntimeAdapter, kind: string): Promise<[Remote, Remote]> {
  const names = [`${kind}-producer`, `${kind}-consumer`];
  const handles = await Promise.all(names.map((name) => runtime.spawnWorker({ name, entry: workerEntry })));
  return [new Remote(handles[0]!, names[0]!), new Remote(handles[1]!, names[1]!)];
}

/** memcpy into shared memory: time of one copy of `size` bytes. */
export interface MemcpyResult {
  size: number;
  /** Median time of one copy, µs. */
  us: number;
  /** Bytes per second / 1e9. */
  gbPerS: number;
}

/**
 * Copies an ordinary array into a SharedArrayBuffer (what `store.put` does with the data) in
 * batches of at least ~1 ms, for about `budgetMs` per size; the median batch gives the time per
 * copy. The first batch warms up and is not counted.
 */
export function measureMemcpy(sizes: readonly number[], budgetMs: number): MemcpyResult[] {
  const largest = Math.max(...sizes);
  const target = new Uint8Array(new SharedArrayBuffer(largest));
  return sizes.map((size) => {
    const source = new Uint8Array(size);
    for (let index = 0; index < size; index++) source[index] = index & 255;
    const view = target.subarray(0, size);
    let perBatch = 1;
    const perCopy: number[] = [];
    const deadline = performance.now() + budgetMs;
    let warm = false;
    while (perCopy.length < 5 || performance.now() < deadline) {
      const start = performance.now();
      for (let index = 0; index < perBatch; index++) view.set(source);
      const elapsed = performance.now() - start;
      if (elapsed < 1) {
        perBatch *= 2;
        continue;
      }
      if (warm) perCopy.push((elapsed * 1000) / perBatch);
      warm = true;
    }
    if (target[size - 1] !== ((size - 1) & 255)) throw new Error('bench: memcpy baseline copied wrong data');
    perCopy.sort((a, b) => a - b);
    const us = perCopy[perCopy.length >> 1]!;
    return { size, us, gbPerS: size / us / 1000 };
  });
}
