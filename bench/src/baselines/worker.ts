/**
 * The worker of the baselines: one side of a raw ring or of a raw MessagePort, driven by commands
 * from the main thread. Started through the runtime adapter like an actor's worker (same bootstrap,
 * same handshake), but with nothing of improv in between.
 * @module
 */
import type { WorkerEndpoint } from '@improv/core';
import { createClock } from '../clock.ts';
import { RingConsumer, RingProducer } from './ring.ts';

/** The web `MessagePort` members used here (Node's, Bun's and Deno's ports all have them). */
export interface PortLike {
  postMessage(message: unknown): void;
  onmessage: ((event: { data: unknown }) => void) | null;
}

/** What the main thread asks of a baseline worker. */
export type BaselineCommand =
  | { op: 'ring-open'; role: 'producer' | 'consumer'; buffer: SharedArrayBuffer; spin: number; epochMs: number }
  | { op: 'port-open'; role: 'producer' | 'consumer'; port: PortLike; epochMs: number }
  | { op: 'latency'; count: number; intervalUs: number; size: number }
  | { op: 'throughput'; durationUs: number; size: number; window: number };

/** A latency phase as one side saw it: one-way samples (consumer) or round trips (port producer). */
export interface LatencyReply {
  samples: Float64Array;
  errors: number;
}

/** A throughput phase as one side saw it. */
export interface ThroughputReply {
  /** Producer: messages sent and when sending began. */
  sent: number;
  firstSendUs: number;
  /** Consumer: messages received and when the end marker arrived. */
  received: number;
  endUs: number;
  errors: number;
}

interface Side {
  latency(count: number, intervalUs: number, size: number): Promise<LatencyReply>;
  throughput(durationUs: number, size: number, window: number): Promise<ThroughputReply>;
}

/** The consumer acknowledges every this many messages of a MessagePort throughput phase. */
const ackEvery = (window: number) => Math.max(1, Math.floor(window / 4));

/** Checks the size every message for big payloads, every 16 for small ones. */
const checkEvery = (size: number) => (size >= 65_536 ? 1 : 16);

export function runWorker(endpoint: WorkerEndpoint): void {
  let side: Side | undefined;
  let queue = Promise.resolve();
  endpoint.onMessage((message) => {
    const { id, command } = message as { id: number; command: BaselineCommand };
    queue = queue.then(async () => {
      try {
        let result: unknown;
        if (command.op === 'ring-open') side = ringSide(command);
        else if (command.op === 'port-open') side = portSide(command);
        else if (side === undefined) throw new Error('baseline worker: open a ring or a port first');
        else if (command.op === 'latency') result = await side.latency(command.count, command.intervalUs, command.size);
        else result = await side.throughput(command.durationUs, command.size, command.window);
        endpoint.postMessage({ id, result });
      } catch (error) {
        endpoint.postMessage({ id, error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
      }
    });
  });
}

/** Blocks this worker until `targetUs` on `now`'s clock (a timed futex sleep, no spinning). */
function sleepUntil(sleeper: Int32Array<SharedArrayBuffer>, now: () => number, targetUs: number): void {
  const wait = targetUs - now();
  if (wait > 0) Atomics.wait(sleeper, 0, 0, wait / 1000);
}

function ringSide(command: Extract<BaselineCommand, { op: 'ring-open' }>): Side {
  const now = createClock(command.epochMs);
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  if (command.role === 'producer') {
    const ring = new RingProducer(command.buffer, command.spin);
    return {
      async latency(count, intervalUs) {
        const start = now() + intervalUs;
        for (let index = 0; index < count; index++) {
          sleepUntil(sleeper, now, start + index * intervalUs);
          const waiting = ring.put(now(), index);
          if (waiting !== undefined) await waiting;
        }
        return { samples: new Float64Array(0), errors: 0 };
      },
      async throughput(durationUs) {
        const firstSendUs = now();
        const end = firstSendUs + durationUs;
        let sent = 0;
        do {
          const waiting = ring.put(0, sent);
          if (waiting !== undefined) await waiting;
          sent++;
        } while ((sent & 15) !== 0 || now() < end);
        const waiting = ring.put(now(), -1);
        if (waiting !== undefined) await waiting;
        return { sent, firstSendUs, received: 0, endUs: 0, errors: 0 };
      },
    };
  }
  const ring = new RingConsumer(command.buffer, command.spin);
  return {
    async latency(count) {
      const samples = new Float64Array(count);
      let errors = 0;
      for (let index = 0; index < count; index++) {
        const waiting = ring.take();
        if (waiting !== undefined) await waiting;
        samples[index] = now() - ring.time;
        if (ring.sequence !== index) errors++;
      }
      return { samples, errors };
    },
    async throughput() {
      let received = 0;
      let errors = 0;
      for (;;) {
        const waiting = ring.take();
        if (waiting !== undefined) await waiting;
        if (ring.sequence < 0) break;
        if (ring.sequence !== received) errors++;
        received++;
      }
      return { sent: 0, firstSendUs: 0, received, endUs: now(), errors };
    },
  };
}

interface PortMessage {
  i: number;
  t: number;
  d?: Uint8Array;
}

function portSide(command: Extract<BaselineCommand, { op: 'port-open' }>): Side {
  const now = createClock(command.epochMs);
  const port = command.port;
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  // One listener for the port's whole life: a message that arrives before its phase's handler is
  // set (the other worker may start first) waits in the inbox instead of being dropped, as Deno
  // drops messages that reach a port without a listener.
  const inbox: unknown[] = [];
  let deliver: ((message: unknown) => void) | undefined;
  port.onmessage = (event) => {
    if (deliver === undefined) inbox.push(event.data);
    else deliver(event.data);
  };
  const listen = (handler: ((message: unknown) => void) | undefined) => {
    deliver = handler;
    while (handler !== undefined && deliver === handler && inbox.length > 0) handler(inbox.shift());
  };
  const payloadOf = (size: number) => {
    const payload = new Uint8Array(size);
    for (let index = 0; index < size; index++) payload[index] = index & 255;
    return payload;
  };
  const intact = (message: PortMessage, size: number) =>
    message.d instanceof Uint8Array && message.d.length === size && (size === 0 || message.d[0] === (message.i & 255));

  if (command.role === 'producer') {
    return {
      // Ping-pong: each message is echoed; the next one leaves at its tick, after the echo.
      async latency(count, intervalUs, size) {
        const payload = payloadOf(size);
        const samples = new Float64Array(count);
        let echoed: (() => void) | undefined;
        listen(() => echoed?.());
        const start = now() + intervalUs;
        for (let index = 0; index < count; index++) {
          sleepUntil(sleeper, now, start + index * intervalUs);
          const echo = new Promise<void>((resolve) => {
            echoed = resolve;
          });
          if (size > 0) payload[0] = index & 255;
          const t = now();
          port.postMessage({ i: index, t, d: payload } satisfies PortMessage);
          await echo;
          samples[index] = now() - t;
        }
        listen(undefined);
        return { samples, errors: 0 };
      },
      // MessagePort has no back-pressure: at most `window` messages are unacknowledged, so a fast
      // producer cannot queue gigabytes of clones.
      async throughput(durationUs, size, window) {
        const payload = payloadOf(size);
        let acked = 0;
        let wake: (() => void) | undefined;
        listen((message) => {
          acked = (message as { acked: number }).acked;
          wake?.();
        });
        const every = checkEvery(size);
        const firstSendUs = now();
        const end = firstSendUs + durationUs;
        let sent = 0;
        do {
          while (sent - acked >= window) {
            await new Promise<void>((resolve) => {
              wake = resolve;
            });
          }
          if (size > 0) payload[0] = sent & 255;
          port.postMessage({ i: sent, t: 0, d: payload } satisfies PortMessage);
          sent++;
        } while (sent % every !== 0 || now() < end);
        port.postMessage({ i: -1, t: now() } satisfies PortMessage);
        // Wait for the last acknowledgement, so none arrives during the next phase.
        const lastAck = sent - (sent % ackEvery(window));
        while (acked < lastAck) {
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
        }
        listen(undefined);
        return { sent, firstSendUs, received: 0, endUs: 0, errors: 0 };
      },
    };
  }
  return {
    latency(count, _intervalUs, size) {
      const samples = new Float64Array(count);
      let received = 0;
      let errors = 0;
      return new Promise((resolve) => {
        listen((data) => {
          const message = data as PortMessage;
          samples[received] = now() - message.t;
          if (message.i !== received || !intact(message, size)) errors++;
          received++;
          port.postMessage({ i: message.i });
          if (received === count) {
            listen(undefined);
            resolve({ samples, errors });
          }
        });
      });
    },
    throughput(_durationUs, size, window) {
      const every = ackEvery(window);
      let received = 0;
      let errors = 0;
      return new Promise((resolve) => {
        listen((data) => {
          const message = data as PortMessage;
          if (message.i < 0) {
            listen(undefined);
            resolve({ sent: 0, firstSendUs: 0, received, endUs: now(), errors });
            return;
          }
          if (message.i !== received || !intact(message, size)) errors++;
          received++;
          if (received % every === 0) port.postMessage({ acked: received });
        });
      });
    },
  };
}
