/**
 * The ROUTER socket: binds one or more addresses and keeps one ZMTP connection per peer. Each
 * peer is known by its routing id — its `Identity` property, or, when it sent none, 5 bytes made
 * here (a 0 byte and a counter, as libzmq does) — which is `frames[0]` of every message it sends
 * and addresses the messages sent to it. A message to an id nobody holds is dropped. A peer that
 * connects again with an id already held takes it over (libzmq's ZMQ_ROUTER_HANDOVER), so a
 * reconnecting DEALER is not shut out by its own half-dead earlier connection.
 * @module
 */
import net from 'node:net';
import type { RouterSocket, SocketEvent } from '../_socket.ts';
import { type Listening, listen, unlinkQuietly } from './address.ts';
import { type CurveRole, type Limits, ZmtpConnection } from './connection.ts';

interface Peer {
  id: Uint8Array;
  connection: ZmtpConnection;
}

/** A routing id as a Map key. */
function idKey(id: Uint8Array): string {
  let key = '';
  for (let index = 0; index < id.length; index++) key += String.fromCharCode(id[index]!);
  return key;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let index = 0; index < a.length; index++) if (a[index] !== b[index]) return false;
  return true;
}

/** The ZMTP ROUTER. */
export class ZmtpRouter implements RouterSocket {
  readonly #curve: (CurveRole & { server: true }) | undefined;
  readonly #limits: Limits;
  readonly #listening: Listening[] = [];
  readonly #connections = new Set<ZmtpConnection>();
  readonly #peers = new Map<string, Peer>();
  /** The peer the last message went to: consecutive sends to one peer skip the lookup. */
  #last: Peer | undefined;
  #nextId = Math.floor(Math.random() * 0xffff_ffff);
  #onMessage: (frames: Uint8Array[]) => void = () => {};
  #onEvent: (event: SocketEvent) => void = () => {};
  #closed = false;

  /** @param curve the server's keys, for CURVE; absent: NULL */
  constructor(curve: (CurveRole & { server: true }) | undefined, limits: Limits) {
    this.#curve = curve;
    this.#limits = limits;
  }

  onMessage(handler: (frames: Uint8Array[]) => void): void {
    this.#onMessage = handler;
  }

  onEvent(handler: (event: SocketEvent) => void): void {
    this.#onEvent = handler;
  }

  async bind(address: string): Promise<string> {
    if (this.#closed) throw new Error(`cannot listen on ${address}: the socket is closed`);
    let bound = address;
    const server = net.createServer((socket) => this.#accept(socket, bound));
    const listening = await listen(server, address);
    bound = listening.address;
    if (this.#closed) {
      closeListening(listening);
      throw new Error(`cannot listen on ${address}: the socket was closed meanwhile`);
    }
    server.on('error', () => {
      // A listening server reports nothing that needs handling here; each connection has its own.
    });
    this.#listening.push(listening);
    return bound;
  }

  #accept(socket: net.Socket, address: string): void {
    if (this.#closed) {
      // A peer that keeps dialling (a DEALER retries on its own) may reset the connection meanwhile:
      // Deno reports that as an 'error' even on a socket destroyed here, and one nobody listens for
      // ends the process.
      socket.on('error', () => undefined);
      socket.destroy();
      return;
    }
    let peer: Peer | undefined;
    const connection = new ZmtpConnection(
      socket,
      {
        socketType: 'ROUTER',
        identity: new Uint8Array(0),
        ...(this.#curve === undefined ? {} : { curve: this.#curve }),
        ...this.#limits,
      },
      {
        ready: (identity) => {
          const id = identity.length > 0 ? identity : this.#generatedId();
          const key = idKey(id);
          const held = this.#peers.get(key);
          peer = { id, connection };
          this.#peers.set(key, peer);
          held?.connection.close();
          this.#onEvent({ type: 'connected', address });
          return id;
        },
        message: (frames) => this.#onMessage(frames),
        closed: (failure) => {
          this.#connections.delete(connection);
          if (peer !== undefined) {
            const key = idKey(peer.id);
            if (this.#peers.get(key) === peer) this.#peers.delete(key);
            if (this.#last === peer) this.#last = undefined;
          }
          if (this.#closed) return;
          this.#onEvent(
            failure === undefined
              ? { type: 'disconnected', address }
              : { type: 'handshake-failed', address, reason: failure.reason, stage: failure.stage },
          );
        },
      },
    );
    this.#connections.add(connection);
  }

  /** 5 bytes: 0, then a 32-bit counter (libzmq's form, which no DEALER's own id takes). */
  #generatedId(): Uint8Array {
    const value = this.#nextId;
    this.#nextId = (this.#nextId + 1) >>> 0;
    return Uint8Array.of(0, value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff);
  }

  send(frames: Uint8Array[]): void {
    if (this.#closed || frames.length < 2) return;
    const id = frames[0]!;
    let peer = this.#last;
    if (peer === undefined || !sameBytes(peer.id, id)) {
      peer = this.#peers.get(idKey(id));
      if (peer === undefined) return;
      this.#last = peer;
    }
    peer.connection.send(frames, 1);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const listening of this.#listening) closeListening(listening);
    this.#listening.length = 0;
    for (const connection of [...this.#connections]) connection.close();
    this.#connections.clear();
    this.#peers.clear();
    this.#last = undefined;
  }
}

function closeListening(listening: Listening): void {
  listening.server.close();
  if (listening.socketFile !== undefined) unlinkQuietly(listening.socketFile);
}
