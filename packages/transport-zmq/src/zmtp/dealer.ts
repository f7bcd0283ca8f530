/**
 * The DEALER socket: connects to one ROUTER and keeps connecting — 10 ms after a refusal at first,
 * doubling up to 2 s while it lasts, 10 ms again after a connection that worked is lost (libzmq's
 * reconnect interval and maximum as the zeromq.js sockets set them). Messages sent while there is no
 * connection wait, in order, and go out once a handshake passes. `retrying` is reported once per
 * outage, `handshake-failed` at every refused handshake (each is retried the same way).
 * @module
 */
import type net from 'node:net';
import { clearTimeout, setTimeout } from 'node:timers';
import type { DealerSocket, SocketEvent } from '../_socket.ts';
import { dial, type Endpoint, parseAddress } from './address.ts';
import { type CurveRole, type Limits, ZmtpConnection } from './connection.ts';

/** The first reconnect interval (ms). */
const RECONNECT_MS = 10;
/**
 * The longest reconnect interval (ms): a sink that starts after its source (a worker or process
 * still loading) is reached within a quarter second.
 */
const RECONNECT_MAX_MS = 250;

/** The ZMTP DEALER. */
export class ZmtpDealer implements DealerSocket {
  readonly #identity: Uint8Array;
  readonly #curve: (CurveRole & { server: false }) | undefined;
  readonly #limits: Limits;
  #address = '';
  #endpoint: Endpoint | undefined;
  /** The socket of the current attempt or connection. */
  #socket: net.Socket | undefined;
  /** The connection whose handshake passed, while it lasts. */
  #connection: ZmtpConnection | undefined;
  /** Messages waiting for a connection. */
  #queue: Uint8Array[][] = [];
  #delay = RECONNECT_MS;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** `retrying` was reported for the current outage. */
  #retrying = false;
  #onMessage: (frames: Uint8Array[]) => void = () => {};
  #onEvent: (event: SocketEvent) => void = () => {};
  #closed = false;

  /**
   * @param identity the routing id the ROUTER sees (1–255 bytes)
   * @param curve the client's keys and the server's public key, for CURVE; absent: NULL
   */
  constructor(identity: Uint8Array, curve: (CurveRole & { server: false }) | undefined, limits: Limits) {
    if (identity.length < 1 || identity.length > 255) {
      throw new RangeError(`zmtp: a DEALER's routing id must be 1 to 255 bytes, got ${identity.length}`);
    }
    this.#identity = identity.slice();
    this.#curve = curve;
    this.#limits = limits;
  }

  onMessage(handler: (frames: Uint8Array[]) => void): void {
    this.#onMessage = handler;
  }

  onEvent(handler: (event: SocketEvent) => void): void {
    this.#onEvent = handler;
  }

  connect(address: string): void {
    if (this.#closed) return;
    if (this.#endpoint !== undefined) {
      throw new Error(`zmtp: this DEALER is connected to ${this.#address} already; it connects to one address`);
    }
    this.#endpoint = parseAddress(address, false);
    this.#address = address;
    this.#dial();
  }

  send(frames: Uint8Array[]): void {
    if (this.#closed || frames.length === 0) return;
    const connection = this.#connection;
    if (connection !== undefined && this.#queue.length === 0) connection.send(frames);
    else this.#queue.push(frames);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#queue = [];
    this.#connection?.close();
    this.#connection = undefined;
    this.#socket?.destroy();
    this.#socket = undefined;
  }

  #dial(): void {
    this.#timer = undefined;
    if (this.#closed || this.#endpoint === undefined) return;
    const socket = dial(this.#endpoint);
    this.#socket = socket;
    let connection: ZmtpConnection | undefined;
    let failure: NodeJS.ErrnoException | undefined;
    socket.on('error', (error: NodeJS.ErrnoException) => {
      failure ??= error;
    });
    socket.once('connect', () => {
      if (this.#closed) {
        socket.destroy();
        return;
      }
      connection = new ZmtpConnection(
        socket,
        {
          socketType: 'DEALER',
          identity: this.#identity,
          ...(this.#curve === undefined ? {} : { curve: this.#curve }),
          ...this.#limits,
        },
        {
          ready: () => {
            this.#ready(connection!);
            return undefined;
          },
          message: (frames) => this.#onMessage(frames),
          closed: (failure) => {
            if (this.#connection === connection) this.#connection = undefined;
            if (this.#socket === socket) this.#socket = undefined;
            if (this.#closed) return;
            this.#onEvent(
              failure === undefined
                ? { type: 'disconnected', address: this.#address }
                : { type: 'handshake-failed', address: this.#address, reason: failure.reason, stage: failure.stage },
            );
            this.#retry(failure === undefined);
          },
        },
      );
    });
    socket.once('close', () => {
      if (connection !== undefined) return;
      if (this.#socket === socket) this.#socket = undefined;
      if (this.#closed) return;
      if (!this.#retrying) {
        this.#retrying = true;
        const code = failure?.code;
        const reason =
          code === 'ECONNREFUSED' || code === 'ENOENT'
            ? 'nobody listens there yet'
            : (failure?.message ?? 'the connection closed before it was made');
        this.#onEvent({ type: 'retrying', address: this.#address, reason });
      }
      this.#retry(false);
    });
  }

  #ready(connection: ZmtpConnection): void {
    this.#connection = connection;
    this.#delay = RECONNECT_MS;
    this.#retrying = false;
    this.#onEvent({ type: 'connected', address: this.#address });
    const queue = this.#queue;
    this.#queue = [];
    for (const frames of queue) connection.send(frames);
  }

  /** Dials again after the current interval; after a connection that worked, after the first one. */
  #retry(afterReady: boolean): void {
    if (afterReady) this.#delay = RECONNECT_MS;
    const delay = this.#delay;
    this.#delay = Math.min(RECONNECT_MAX_MS, delay * 2);
    this.#timer = setTimeout(() => this.#dial(), delay);
  }
}
