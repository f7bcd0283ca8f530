/**
 * The {@link SocketFactory} in TypeScript: ZMTP 3.1 over `node:net` (TCP and unix sockets), with
 * the NULL and CURVE mechanisms, for every runtime — the only one on Bun, where zeromq.js aborts the
 * process, and in Deno workers, where it never receives. It speaks to libzmq and zeromq.js like any
 * ZeroMQ peer. ROUTER: binds, many peers, `frames[0]` is the peer's routing id. DEALER: connects to
 * one ROUTER and reconnects (10 ms, backing off to 2 s); messages sent meanwhile wait.
 * @module
 */
import { existsSync, unlinkSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import type {
  DealerOptions,
  DealerSocket,
  RouterOptions,
  RouterSocket,
  SocketEvent,
  SocketFactory,
} from '../_socket.ts';
import { z85Decode } from '../keys.ts';
import { type CurveKeys, ZmtpConnection } from './connection.ts';

/** Largest frame a peer may send: links bound their messages (8 MiB by default) well below it. */
const MAX_FRAME_BYTES = 1024 * 1024 * 1024;
const RECONNECT_MS = 10;
const RECONNECT_MAX_MS = 2000;

type Target = { kind: 'tcp'; host: string; port: number } | { kind: 'ipc'; path: string };

/** `tcp://host:port` or `ipc:///path`; port `*` or 0 is any free port. */
function parseAddress(address: string): Target {
  const tcp = /^tcp:\/\/(\[[^\]]+\]|[^:]+):(\*|\d+)$/.exec(address);
  if (tcp) {
    const host = (tcp[1] as string).replace(/^\[(.*)\]$/, '$1');
    return { kind: 'tcp', host: host === '*' ? '0.0.0.0' : host, port: tcp[2] === '*' ? 0 : Number(tcp[2]) };
  }
  const ipc = /^ipc:\/\/(.+)$/.exec(address);
  if (ipc) return { kind: 'ipc', path: ipc[1] as string };
  throw new Error(`zmtp: cannot use the address ${address}; give tcp://host:port or ipc:///path`);
}

function curveKeys(
  curve: { publicKey: string; secretKey: string; serverKey?: string } | undefined,
): CurveKeys | undefined {
  if (curve === undefined) return undefined;
  return {
    publicKey: z85Decode(curve.publicKey),
    secretKey: z85Decode(curve.secretKey),
    ...(curve.serverKey === undefined ? {} : { serverKey: z85Decode(curve.serverKey) }),
  };
}

class Base {
  protected onMessageHandler: (frames: Uint8Array[]) => void = () => {};
  protected onEventHandler: (event: SocketEvent) => void = () => {};
  protected closed = false;

  onMessage(handler: (frames: Uint8Array[]) => void): void {
    this.onMessageHandler = handler;
  }

  onEvent(handler: (event: SocketEvent) => void): void {
    this.onEventHandler = handler;
  }
}

class ZmtpRouter extends Base implements RouterSocket {
  readonly #curve: CurveKeys | undefined;
  readonly #peers = new Map<string, ZmtpConnection>();
  readonly #connections = new Set<ZmtpConnection>();
  #server: net.Server | undefined;
  #address = '';
  #ipcPath: string | undefined;

  constructor(options: RouterOptions) {
    super();
    this.#curve = curveKeys(options.curve);
  }

  bind(address: string): Promise<string> {
    const target = parseAddress(address);
    const server = net.createServer((socket) => this.#accept(socket));
    this.#server = server;
    return new Promise((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) => {
        reject(
          error.code === 'EADDRINUSE'
            ? new Error(
                `cannot listen on ${address}: the address is in use by another program; free it or pick another`,
              )
            : new Error(`cannot listen on ${address}: ${error.message}`),
        );
      });
      const listening = () => {
        if (target.kind === 'tcp') {
          const { port } = server.address() as AddressInfo;
          const host = target.host.includes(':') ? `[${target.host}]` : target.host;
          this.#address = `tcp://${host}:${port}`;
        } else this.#address = address;
        resolve(this.#address);
      };
      if (target.kind === 'tcp') server.listen(target.port, target.host, listening);
      else {
        // libzmq removes a socket file left by an earlier run before it binds.
        if (existsSync(target.path)) unlinkSync(target.path);
        this.#ipcPath = target.path;
        server.listen(target.path, listening);
      }
    });
  }

  #accept(socket: net.Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    let key: string | undefined;
    const connection = new ZmtpConnection(socket, {
      socketType: 'ROUTER',
      ...(this.#curve ? { curve: this.#curve } : {}),
      maxFrameBytes: MAX_FRAME_BYTES,
      onReady: (identity) => {
        const id = identity.length > 0 ? identity : Uint8Array.of(0, ...crypto.getRandomValues(new Uint8Array(4)));
        key = latin1(id);
        // A peer that reconnects with the same routing id takes its place.
        this.#peers.get(key)?.close();
        this.#peers.set(key, connection);
        routingIds.set(connection, id);
        this.onEventHandler({ type: 'connected', address: this.#address });
      },
      onMessage: (frames) => {
        const id = routingIds.get(connection);
        if (id !== undefined) this.onMessageHandler([id, ...frames]);
      },
      onClose: (handshake) => {
        this.#connections.delete(connection);
        if (key !== undefined && this.#peers.get(key) === connection) this.#peers.delete(key);
        if (this.closed) return;
        if (handshake !== undefined)
          this.onEventHandler({ type: 'handshake-failed', address: this.#address, reason: handshake });
        else this.onEventHandler({ type: 'disconnected', address: this.#address });
      },
    });
    this.#connections.add(connection);
  }

  send(frames: Uint8Array[]): void {
    const [id, ...rest] = frames;
    if (id === undefined || this.closed) return;
    this.#peers.get(latin1(id))?.send(rest);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const connection of this.#connections) connection.close();
    this.#connections.clear();
    this.#peers.clear();
    this.#server?.close();
    if (this.#ipcPath !== undefined && existsSync(this.#ipcPath)) {
      try {
        unlinkSync(this.#ipcPath);
      } catch {
        // Gone already.
      }
    }
  }
}

const routingIds = new WeakMap<ZmtpConnection, Uint8Array>();
const latin1Decoder = new TextDecoder('latin1');
function latin1(bytes: Uint8Array): string {
  return latin1Decoder.decode(bytes);
}

class ZmtpDealer extends Base implements DealerSocket {
  readonly #identity: Uint8Array;
  readonly #curve: CurveKeys | undefined;
  #connection: ZmtpConnection | undefined;
  #queue: Uint8Array[][] = [];
  #address = '';
  #delay = RECONNECT_MS;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #retrying = false;

  constructor(options: DealerOptions) {
    super();
    this.#identity = options.routingId;
    this.#curve = curveKeys(options.curve);
  }

  connect(address: string): void {
    this.#address = address;
    parseAddress(address);
    this.#dial();
  }

  #dial(): void {
    if (this.closed) return;
    const target = parseAddress(this.#address);
    const socket = target.kind === 'tcp' ? net.connect(target.port, target.host) : net.connect(target.path);
    let connected = false;
    const connection = new ZmtpConnection(socket, {
      socketType: 'DEALER',
      identity: this.#identity,
      ...(this.#curve ? { curve: this.#curve } : {}),
      maxFrameBytes: MAX_FRAME_BYTES,
      onReady: () => {
        connected = true;
        this.#delay = RECONNECT_MS;
        this.#retrying = false;
        this.#connection = connection;
        this.onEventHandler({ type: 'connected', address: this.#address });
        const queued = this.#queue;
        this.#queue = [];
        for (const frames of queued) connection.send(frames);
      },
      onMessage: (frames) => this.onMessageHandler(frames),
      onClose: (handshake) => {
        if (this.#connection === connection) this.#connection = undefined;
        if (this.closed) return;
        if (connected) this.onEventHandler({ type: 'disconnected', address: this.#address });
        else if (handshake !== undefined && socketReached) {
          this.onEventHandler({ type: 'handshake-failed', address: this.#address, reason: handshake });
        } else if (!this.#retrying) {
          this.#retrying = true;
          this.onEventHandler({ type: 'retrying', address: this.#address, reason: 'nobody listens there yet' });
        }
        this.#timer = setTimeout(() => this.#dial(), this.#delay);
        this.#delay = Math.min(RECONNECT_MAX_MS, this.#delay * 2);
      },
    });
    let socketReached = false;
    socket.once('connect', () => {
      socketReached = true;
    });
  }

  send(frames: Uint8Array[]): void {
    if (this.closed) return;
    if (this.#connection?.ready) this.#connection.send(frames);
    else this.#queue.push(frames);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#connection?.close();
    this.#connection = undefined;
    this.#queue = [];
  }
}

/** The TypeScript ZMTP sockets. */
export function createZmtpSockets(): SocketFactory {
  return {
    name: 'zmtp',
    router: (options = {}) => new ZmtpRouter(options),
    dealer: (options) => new ZmtpDealer(options),
  };
}
