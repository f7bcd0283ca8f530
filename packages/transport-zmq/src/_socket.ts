/**
 * The two socket roles the zmq links use, as one small interface with two implementations:
 * ZMTP 3.1 in TypeScript over `node:net` in `zmtp/` (every runtime; the default), and zeromq.js
 * (libzmq, Node only) in `_zeromq.ts`. Both speak the same ZMTP on the wire, so either
 * side may be libzmq, this package or any other ZeroMQ binding.
 *
 * - A sink endpoint binds one ROUTER; each source of an edge into it connects one DEALER.
 * - Messages are multipart (`Uint8Array[]`); on a ROUTER, `frames[0]` is the peer's routing id, both
 *   coming in and going out (a message to an id that is not connected is dropped, as in libzmq).
 * - `send` never throws for a full peer: it queues in order; the links bound what is in flight
 *   themselves (credit), so no high-water mark is reached in normal operation.
 * @module
 */

/** A CURVE key pair, each key 40 characters of Z85 (32 bytes). */
export interface CurveKeyPair {
  publicKey: string;
  secretKey: string;
}

/** What happened to a connection, for the pipeline log. */
export type SocketEvent =
  /** A peer connected (DEALER: the connection to `address` is up and its handshake passed). */
  | { type: 'connected'; address: string }
  /** A peer went away; a DEALER retries by itself. */
  | { type: 'disconnected'; address: string }
  /** A DEALER could not reach `address` (yet) and retries. */
  | { type: 'retrying'; address: string; reason: string }
  /** The handshake failed: wrong or missing CURVE key, or not a ZMTP peer. Nothing was delivered. */
  | { type: 'handshake-failed'; address: string; reason: string; stage?: HandshakeStage };

/**
 * How far a failed handshake got (absent where the socket cannot tell: zeromq.js reports libzmq's
 * protocol and other errors without it):
 * - `greeting`: no ZMTP greeting with this side's security mechanism came: the peer hung up or went
 *   silent first, is no ZeroMQ peer, or uses another mechanism;
 * - `refused`: the security handshake itself failed: a key that does not match, a malformed or
 *   unexpected command, or a side that refused the other (an ERROR command);
 * - `cut`: the greetings matched, then the peer closed the connection (or went silent) before the
 *   handshake was done, without saying why. A CURVE server that refuses a client's keys without an
 *   ERROR (libzmq does so) looks like this to the client; to a server, it is a client that gave up.
 */
export type HandshakeStage = 'greeting' | 'refused' | 'cut';

interface MessageSocket {
  /** Every incoming multipart message, in order, one call each. Set before bind/connect. */
  onMessage(handler: (frames: Uint8Array[]) => void): void;
  /** Connection events. */
  onEvent(handler: (event: SocketEvent) => void): void;
  /** Queues one multipart message; messages go out in the order of the calls. */
  send(frames: Uint8Array[]): void;
  /** Closes at once: messages not yet written are discarded (linger 0). Idempotent. */
  close(): void;
}

/** Options of {@link SocketFactory.router}. */
export interface RouterOptions {
  /** Be a CURVE server with this key pair; peers must know its public key. Absent: NULL (no security). */
  curve?: CurveKeyPair;
}

/** Options of {@link SocketFactory.dealer}. */
export interface DealerOptions {
  /** The routing id the ROUTER sees (1–255 bytes, first byte not 0). */
  routingId: Uint8Array;
  /** Be a CURVE client with this key pair, trusting a server whose public key is `serverKey`. */
  curve?: CurveKeyPair & { serverKey: string };
}

/** The receiving role: binds, and sees each peer's routing id as `frames[0]`. */
export interface RouterSocket extends MessageSocket {
  /**
   * Binds `tcp://host:port` (port `*` or 0: any free port) or `ipc:///path`. Resolves with the
   * bound address (the real port); rejects with a clear error when the address is in use.
   */
  bind(address: string): Promise<string>;
}

/** The sending role: connects (and reconnects) to one ROUTER. */
export interface DealerSocket extends MessageSocket {
  /** Connects to `address`, retrying until the peer is there; messages sent meanwhile wait. */
  connect(address: string): void;
}

/** One implementation of both roles. */
export interface SocketFactory {
  /** `zeromq` (zeromq.js over libzmq) or `zmtp` (this package's TypeScript ZMTP 3.1). */
  readonly name: 'zeromq' | 'zmtp';
  router(options?: RouterOptions): RouterSocket;
  dealer(options: DealerOptions): DealerSocket;
}
