/**
 * The {@link SocketFactory} over zeromq.js (libzmq), for Node. zeromq.js lets one `send`
 * be in flight per socket, so each socket pumps its own queue; incoming messages are read by one
 * `receive` loop per socket. Every socket lingers 0: closing it discards what was not written (the
 * links account for every message themselves).
 * Package-private; `openLink` loads it for `sockets: 'zeromq'` on Node only (Bun aborts, Deno never receives in a worker).
 * @module
 */
import { isMainThread } from 'node:worker_threads';
import * as zmq from 'zeromq';
import type {
  DealerOptions,
  DealerSocket,
  RouterOptions,
  RouterSocket,
  SocketEvent,
  SocketFactory,
} from './_socket.ts';

/** Node's main thread (a Deno web worker says `isMainThread` too, but has a WorkerGlobalScope). */
const onMainThread = isMainThread && !('WorkerGlobalScope' in globalThis);

/** Large enough that the links' own credit, not libzmq, bounds what is in flight. */
const HIGH_WATER_MARK = 1_000_000;

type AnySocket = zmq.Router | zmq.Dealer;

class ZeromqSocket {
  readonly #socket: AnySocket;
  #onMessage: (frames: Uint8Array[]) => void = () => {};
  #onEvent: (event: SocketEvent) => void = () => {};
  readonly #queue: Uint8Array[][] = [];
  #head = 0;
  #pumping = false;
  #closed = false;
  #receiving = false;
  /** Addresses a DEALER is retrying, so `retrying` is reported once per outage. */
  readonly #retrying = new Set<string>();

  constructor(socket: AnySocket) {
    this.#socket = socket;
  }

  onMessage(handler: (frames: Uint8Array[]) => void): void {
    this.#onMessage = handler;
  }

  onEvent(handler: (event: SocketEvent) => void): void {
    this.#onEvent = handler;
    // zeromq.js's event observer aborts the process when a worker thread that used one ends
    // (libzmq 4.3.5, zeromq.js 6.8): only a main thread observes; links in workers tell an
    // unreachable or refusing peer by its silence (see the output link's watchdog).
    if (!onMainThread) return;
    // Our own read loop, not zeromq.js's event-emitter mode: that one leaves an unhandled
    // rejection behind when its socket closes.
    const events = this.#socket.events;
    void (async () => {
      try {
        for await (const event of events) this.#translate(event);
      } catch {
        // The observer ends with its socket.
      }
    })();
  }

  #translate(event: zmq.Event): void {
    const handler = this.#onEvent;
    switch (event.type) {
      case 'connect':
        this.#retrying.delete(event.address);
        handler({ type: 'connected', address: event.address });
        break;
      case 'accept':
        handler({ type: 'connected', address: event.address });
        break;
      case 'disconnect':
        handler({ type: 'disconnected', address: event.address });
        break;
      case 'connect:retry':
        if (this.#retrying.has(event.address)) break;
        this.#retrying.add(event.address);
        handler({ type: 'retrying', address: event.address, reason: 'nobody listens there yet' });
        break;
      case 'handshake:error:auth':
        handler({
          type: 'handshake-failed',
          address: event.address,
          reason: event.error?.message ?? event.type,
          stage: 'refused',
        });
        break;
      case 'handshake:error:protocol':
      case 'handshake:error:other':
        handler({ type: 'handshake-failed', address: event.address, reason: event.error?.message ?? event.type });
        break;
    }
  }

  get socket(): AnySocket {
    return this.#socket;
  }

  /** Starts the receive loop (after bind/connect). */
  startReceiving(): void {
    if (this.#receiving) return;
    this.#receiving = true;
    void (async () => {
      try {
        for await (const frames of this.#socket) {
          // As plain Uint8Arrays, as the TypeScript sockets hand them on: a `bin` value decoded from
          // a message is then a Uint8Array, not a Buffer, whichever sockets carried it.
          this.#onMessage(frames.map((frame) => new Uint8Array(frame.buffer, frame.byteOffset, frame.byteLength)));
        }
      } catch (error) {
        if (!this.#closed) this.#onEvent({ type: 'disconnected', address: `receive failed: ${String(error)}` });
      }
    })();
  }

  send(frames: Uint8Array[]): void {
    if (this.#closed) return;
    this.#queue.push(frames);
    if (!this.#pumping) void this.#pump();
  }

  async #pump(): Promise<void> {
    this.#pumping = true;
    try {
      while (this.#head < this.#queue.length && !this.#closed) {
        const frames = this.#queue[this.#head]!;
        this.#queue[this.#head++] = undefined as unknown as Uint8Array[];
        if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
          this.#queue.splice(0, this.#head);
          this.#head = 0;
        }
        await this.#socket.send(frames);
      }
    } catch (error) {
      if (!this.#closed) this.#onEvent({ type: 'disconnected', address: `send failed: ${String(error)}` });
    } finally {
      this.#pumping = false;
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue.length = 0;
    this.#head = 0;
    // The event observer closes with its socket, on libzmq's thread: closing it here as well breaks
    // the monitors of sockets made later. `close()` of a link waits a turn of the event loop for it.
    this.#socket.close();
  }
}

class ZeromqRouter extends ZeromqSocket implements RouterSocket {
  async bind(address: string): Promise<string> {
    const socket = this.socket;
    try {
      await socket.bind(address);
    } catch (error) {
      throw bindError(address, error);
    }
    this.startReceiving();
    return socket.lastEndpoint ?? address;
  }
}

class ZeromqDealer extends ZeromqSocket implements DealerSocket {
  connect(address: string): void {
    this.socket.connect(address);
    this.startReceiving();
  }
}

function bindError(address: string, error: unknown): Error {
  const code = (error as { code?: string }).code;
  const text = error instanceof Error ? error.message : String(error);
  if (code === 'EADDRINUSE' || /in use/i.test(text)) {
    return new Error(`cannot listen on ${address}: the address is in use by another program; free it or pick another`);
  }
  return new Error(`cannot listen on ${address}: ${text}`);
}

/** Sockets over zeromq.js. */
export function createZeromqSockets(): SocketFactory {
  return {
    name: 'zeromq',
    router(options: RouterOptions = {}): RouterSocket {
      const socket = new zmq.Router({
        linger: 0,
        // A source that reconnects with a routing id still held (its old connection not yet seen
        // closed: a restarted source, or a fresh socket after its sink was replaced) takes it over,
        // as the TypeScript ROUTER and the Python links do; libzmq would otherwise ignore the newcomer.
        handover: true,
        sendHighWaterMark: HIGH_WATER_MARK,
        receiveHighWaterMark: HIGH_WATER_MARK,
        ...(options.curve && {
          curveServer: true,
          curvePublicKey: options.curve.publicKey,
          curveSecretKey: options.curve.secretKey,
        }),
      });
      return new ZeromqRouter(socket);
    },
    dealer(options: DealerOptions): DealerSocket {
      const socket = new zmq.Dealer({
        linger: 0,
        routingId: new TextDecoder().decode(options.routingId),
        sendHighWaterMark: HIGH_WATER_MARK,
        receiveHighWaterMark: HIGH_WATER_MARK,
        reconnectInterval: 10,
        // A sink that starts after its source (a worker or process still loading) is reached within
        // a quarter second; a longer back-off held a pipeline's first messages back by up to 2 s.
        reconnectMaxInterval: 250,
        ...(options.curve && {
          curveServerKey: options.curve.serverKey,
          curvePublicKey: options.curve.publicKey,
          curveSecretKey: options.curve.secretKey,
        }),
      });
      return new ZeromqDealer(socket);
    },
  };
}
