/**
 * ZeroMQ endpoint addresses for `node:net`: `tcp://host:port` (port `*` or 0 binds any free port;
 * host `*` binds every interface) and `ipc:///path` (a unix socket; `ipc://@name` is Linux's
 * abstract namespace). Binding listens and reports the real address; a unix socket file left by a
 * process that is gone is removed first (as libzmq does), one that still answers is in use.
 * @module
 */
import { lstatSync, unlinkSync } from 'node:fs';
import net from 'node:net';

/** Where to listen or connect. */
export type Endpoint = { kind: 'tcp'; host: string; port: number } | { kind: 'ipc'; path: string };

/** Parses `address`; throws an Error naming it when it is neither tcp:// nor ipc://. */
export function parseAddress(address: string, forBind: boolean): Endpoint {
  const tcp = /^tcp:\/\/(\[[^\]]+\]|[^:/]+):(\*|\d+)$/.exec(address);
  if (tcp) {
    let host = tcp[1]!.replace(/^\[(.*)\]$/, '$1');
    const port = tcp[2] === '*' ? 0 : Number(tcp[2]);
    if (host === '*') {
      if (!forBind) throw new Error(`zmtp: cannot connect to ${address}: give the host to connect to`);
      host = '0.0.0.0';
    }
    if (port > 65535 || (!forBind && port === 0)) throw new Error(`zmtp: ${address} has no usable port`);
    return { kind: 'tcp', host, port };
  }
  const ipc = /^ipc:\/\/(.+)$/.exec(address);
  if (ipc) {
    const path = ipc[1]!;
    return { kind: 'ipc', path: path.startsWith('@') ? `\0${path.slice(1)}` : path };
  }
  throw new Error(`zmtp: cannot use the address ${address}; give tcp://host:port or ipc:///path`);
}

/** The Error of a failed bind, in the words the zeromq.js sockets use. */
export function bindError(address: string, error: unknown): Error {
  const code = (error as { code?: string } | undefined)?.code;
  const text = error instanceof Error ? error.message : String(error);
  if (code === 'EADDRINUSE' || /in use/i.test(text)) {
    return new Error(`cannot listen on ${address}: the address is in use by another program; free it or pick another`);
  }
  return new Error(`cannot listen on ${address}: ${text}`);
}

/** Whether something accepts connections on the unix socket at `path`. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect({ path });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.on('error', () => resolve(false));
  });
}

/**
 * Makes `path` free for a unix socket: removes a socket file nobody answers on; rejects when a
 * live socket or a file that is no socket is there.
 */
async function freeSocketPath(address: string, path: string): Promise<void> {
  if (path.startsWith('\0')) return;
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return;
  }
  if (!isSocket) throw new Error(`cannot listen on ${address}: ${path} exists and is not a socket`);
  if (await answers(path)) throw bindError(address, Object.assign(new Error('in use'), { code: 'EADDRINUSE' }));
  unlinkQuietly(path);
}

/** Removes the file at `path` if it is there. */
export function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Gone already.
  }
}

/** A listening server and the address it listens on. */
export interface Listening {
  server: net.Server;
  /** `tcp://host:port` with the real port, or the ipc address as given. */
  address: string;
  /** The unix socket file to remove on close, if any. */
  socketFile: string | undefined;
}

/** Listens on `address` with `server`; rejects with a clear Error (in use, bad address, ...). */
export async function listen(server: net.Server, address: string): Promise<Listening> {
  const endpoint = parseAddress(address, true);
  if (endpoint.kind === 'ipc') await freeSocketPath(address, endpoint.path);
  await new Promise<void>((resolve, reject) => {
    const failed = (error: Error) => reject(bindError(address, error));
    server.once('error', failed);
    const listening = () => {
      server.off('error', failed);
      resolve();
    };
    if (endpoint.kind === 'tcp') server.listen({ host: endpoint.host, port: endpoint.port }, listening);
    else server.listen({ path: endpoint.path }, listening);
  });
  if (endpoint.kind === 'ipc') {
    return { server, address, socketFile: endpoint.path.startsWith('\0') ? undefined : endpoint.path };
  }
  const bound = server.address() as net.AddressInfo;
  const host = bound.address.includes(':') ? `[${bound.address}]` : bound.address;
  return { server, address: `tcp://${host}:${bound.port}`, socketFile: undefined };
}

/** Opens a connection to `endpoint` (the connection attempt runs; watch `connect` and `error`). */
export function dial(endpoint: Endpoint): net.Socket {
  return endpoint.kind === 'tcp'
    ? net.connect({ host: endpoint.host, port: endpoint.port })
    : net.connect({ path: endpoint.path });
}
