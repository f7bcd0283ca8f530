/**
 * Baselines of the zmq transport, measured in the same run: raw zeromq.js PUSH → PULL and raw TCP
 * loopback (length-prefixed frames over `node:net`), each between this process and a second one
 * (`net-peer.mjs`) — no improv, no msgpack, no credit. One way is half a paced round trip (the peer
 * echoes), so no clock is shared between processes; throughput is the peer flooding this process
 * for a while, held back only by the socket (zeromq's high-water mark, TCP's `drain`).
 *
 * With a {@link NetPeerPlacement} the peer runs elsewhere (another network namespace, for
 * `--placement hosts`) and connects to this process at an address of its network; zeromq then uses
 * CURVE, as improv's links between hosts do. The measuring side is always this process.
 * @module
 */
import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RuntimeAdapter } from '@improv/core';
import { type LatencySummary, summarize } from '../stats.ts';

const peerScript = fileURLToPath(new URL('./net-peer.mjs', import.meta.url));

/** One size of one baseline. */
export interface NetRow {
  size: number;
  /** Half the round trip, µs. */
  oneWay: LatencySummary;
  /** Messages per second, peer → this process, flat out. */
  msgsPerS: number;
  mbPerS: number;
}

/** A baseline: its name and its rows. */
export interface NetBaseline {
  name: 'zeromq' | 'tcp';
  detail: string;
  /**
   * Between two processes of this host: unix sockets (`ipc`: zeromq's `ipc://`, node:net on a socket
   * file) or tcp on loopback (absent: tcp, as results written before the field).
   */
  protocol?: 'ipc' | 'tcp';
  /** zeromq across hosts: whether both sockets used CURVE. Absent: loopback, no CURVE. */
  curve?: boolean;
  rows: NetRow[];
}

/**
 * Where the peer of a baseline runs, when not beside this process on loopback: this process
 * listens on `address`, and `spawn` starts the peer (e.g. `Host.spawn` of `@improv/cli/testing/hosts`,
 * inside a network namespace), which connects there.
 */
export interface NetPeerPlacement {
  /** An address of this process that the peer reaches (the listening side binds it). */
  address: string;
  /** Starts the peer process. */
  spawn(command: string, args: string[], options: SpawnOptions): ChildProcess;
  /** Where the two ends are, in words, for the baseline's detail. */
  where: string;
  /** zeromq: encrypt both sockets with CURVE (fresh keys), as improv's links between hosts are. */
  curve?: boolean;
}

/** How this process talks to its peer: send a message, receive the next one. */
interface Channel {
  send(message: Uint8Array): Promise<void>;
  receive(): Promise<Uint8Array>;
  close(): Promise<void>;
}

function peerCommand(runtime: RuntimeAdapter): { command: string; args: string[] } {
  if (runtime.name === 'deno') return { command: process.execPath, args: ['run', '-A', peerScript] };
  return { command: process.execPath, args: [peerScript] };
}

function startPeer(
  runtime: RuntimeAdapter,
  args: string[],
  placement: NetPeerPlacement | undefined,
  env: NodeJS.ProcessEnv = process.env,
): ChildProcess {
  const { command, args: prefix } = peerCommand(runtime);
  const options: SpawnOptions = { stdio: ['ignore', 'inherit', 'inherit'], env };
  return placement
    ? placement.spawn(command, [...prefix, ...args], options)
    : spawn(command, [...prefix, ...args], options);
}

interface Opened {
  channel: Channel;
  peer: ChildProcess;
  curve: boolean;
}

/** A fresh folder for the socket files of a baseline over ipc, removed by the returned function. */
function socketFolder(): { folder: string; remove: () => void } {
  const folder = mkdtempSync(path.join(tmpdir(), 'improv-bench-raw-'));
  return { folder, remove: () => rmSync(folder, { recursive: true, force: true }) };
}

async function zeromqChannel(
  runtime: RuntimeAdapter,
  placement: NetPeerPlacement | undefined,
  ipc: boolean,
): Promise<Opened> {
  const zmq = await import('zeromq');
  const curve = placement?.curve === true && zmq.capability.curve === true;
  // This process serves (it binds); the peer proves it holds the key pair this process expects.
  const server = curve ? zmq.curveKeyPair() : undefined;
  const client = curve ? zmq.curveKeyPair() : undefined;
  const serving = server
    ? { curveServer: true, curvePublicKey: server.publicKey, curveSecretKey: server.secretKey }
    : {};
  const push = new zmq.Push({ linger: 0, sendHighWaterMark: 1000, ...serving });
  const pull = new zmq.Pull({ linger: 0, receiveHighWaterMark: 1000, ...serving });
  const address = placement?.address ?? '127.0.0.1';
  const sockets = ipc ? socketFolder() : undefined;
  await push.bind(sockets ? `ipc://${path.join(sockets.folder, 'push')}` : `tcp://${address}:*`);
  await pull.bind(sockets ? `ipc://${path.join(sockets.folder, 'pull')}` : `tcp://${address}:*`);
  // Keys in the environment, not on the command line (where every user's `ps` shows them).
  const env =
    server && client
      ? {
          ...process.env,
          IMPROV_BENCH_CURVE: JSON.stringify({
            serverKey: server.publicKey,
            publicKey: client.publicKey,
            secretKey: client.secretKey,
          }),
        }
      : process.env;
  const peer = startPeer(runtime, ['zeromq', push.lastEndpoint ?? '', pull.lastEndpoint ?? ''], placement, env);
  return {
    peer,
    curve,
    channel: {
      send: async (message) => {
        await push.send(message);
      },
      receive: async () => {
        const [frame] = await pull.receive();
        return frame as Uint8Array;
      },
      close: async () => {
        push.close();
        pull.close();
        sockets?.remove();
      },
    },
  };
}

async function tcpChannel(
  runtime: RuntimeAdapter,
  placement: NetPeerPlacement | undefined,
  ipc: boolean,
): Promise<Opened> {
  const address = placement?.address ?? '127.0.0.1';
  const server = net.createServer();
  const sockets = ipc ? socketFolder() : undefined;
  const socketPath = sockets ? path.join(sockets.folder, 'stream') : undefined;
  if (socketPath) server.listen(socketPath);
  else server.listen(0, address);
  await once(server, 'listening');
  const peer = startPeer(
    runtime,
    socketPath ? ['unix', socketPath] : ['tcp', String((server.address() as AddressInfo).port), address],
    placement,
  );
  const [socket] = (await once(server, 'connection')) as [net.Socket];
  socket.setNoDelay(true);
  const messages: Uint8Array[] = [];
  let waiting: ((message: Uint8Array) => void) | undefined;
  // Chunks are kept until a whole frame is there, then joined once (no copying per chunk).
  let chunks: Buffer[] = [];
  let buffered = 0;
  socket.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    buffered += chunk.length;
    for (;;) {
      if (buffered < 4) break;
      const first = chunks[0] as Buffer;
      const length = (first.length >= 4 ? first : Buffer.concat(chunks)).readUInt32LE(0);
      if (buffered < 4 + length) break;
      const all = chunks.length === 1 ? first : Buffer.concat(chunks);
      const message = all.subarray(4, 4 + length);
      const rest = all.subarray(4 + length);
      chunks = rest.length > 0 ? [rest] : [];
      buffered = rest.length;
      if (waiting) {
        const resolve = waiting;
        waiting = undefined;
        resolve(message);
      } else messages.push(message);
    }
  });
  return {
    peer,
    curve: false,
    channel: {
      send: (message) =>
        new Promise((resolve) => {
          const framed = Buffer.allocUnsafe(4 + message.byteLength);
          framed.writeUInt32LE(message.byteLength, 0);
          framed.set(message, 4);
          if (socket.write(framed)) resolve();
          else socket.once('drain', () => resolve());
        }),
      receive: () => {
        const next = messages.shift();
        if (next) return Promise.resolve(next);
        return new Promise((resolve) => {
          waiting = resolve;
        });
      },
      close: async () => {
        socket.destroy();
        server.close();
        sockets?.remove();
      },
    },
  };
}

const sleepUntil = (deadline: number) =>
  new Promise((resolve) => setTimeout(resolve, Math.max(0, deadline - performance.now())));

/** Round trips of `count` messages of `size`, one every `intervalUs`: half of each, µs. */
async function oneWay(channel: Channel, size: number, count: number, intervalUs: number): Promise<number[]> {
  const message = new Uint8Array(Math.max(size, 8));
  message[0] = 1;
  const samples: number[] = [];
  let next = performance.now();
  for (let index = 0; index < count; index++) {
    await sleepUntil(next);
    next += intervalUs / 1000;
    const start = performance.now();
    await channel.send(message);
    await channel.receive();
    samples.push(((performance.now() - start) * 1000) / 2);
  }
  return samples;
}

/** The peer floods messages of `size` for `ms`; messages per second as received here. */
async function flood(channel: Channel, size: number, ms: number): Promise<number> {
  const command = new Uint8Array(12);
  command[0] = 2;
  const view = new DataView(command.buffer);
  view.setUint32(4, size, true);
  view.setUint32(8, ms, true);
  await channel.send(command);
  let received = 0;
  let first = 0;
  for (;;) {
    const message = await channel.receive();
    if (received === 0) first = performance.now();
    if (message[0] === 3) {
      const sent = new DataView(message.buffer, message.byteOffset, message.byteLength).getUint32(4, true);
      if (sent !== received)
        throw new Error(`bench: the ${size}-byte flood sent ${sent} messages, ${received} arrived`);
      return received / ((performance.now() - first) / 1000);
    }
    received += 1;
  }
}

/**
 * Measures one baseline over `sizes` (the peer beside this process on loopback, or where
 * `options.peer` puts it). zeromq.js runs on Node only (it aborts Bun, and fails under Deno), so
 * elsewhere the zeromq baseline is not measured (undefined): compare with a Node run.
 */
export async function measureNetBaseline(
  name: 'zeromq' | 'tcp',
  runtime: RuntimeAdapter,
  sizes: readonly number[],
  options: {
    count: (size: number) => number;
    intervalUs: number;
    floodMs: number;
    peer?: NetPeerPlacement;
    /** Beside this process (no `peer`): over unix sockets rather than tcp on loopback. */
    ipc?: boolean;
  },
): Promise<NetBaseline | undefined> {
  if (name === 'zeromq' && runtime.name !== 'node') return undefined;
  const placement = options.peer;
  const ipc = placement === undefined && options.ipc === true;
  const { channel, peer, curve } =
    name === 'zeromq' ? await zeromqChannel(runtime, placement, ipc) : await tcpChannel(runtime, placement, ipc);
  const exited = once(peer, 'exit');
  // A peer that dies (or never connects, and gives up) would leave a receive waiting for ever.
  let done = false;
  const died = exited.then(([code, signal]) => {
    if (!done) {
      throw new Error(
        `bench: the raw ${name} peer${placement ? ` (${placement.where})` : ''} exited (${signal ?? `code ${code}`}) before its baseline was measured`,
      );
    }
  });
  died.catch(() => {});
  try {
    const measure = async () => {
      await oneWay(channel, 8, 50, options.intervalUs);
      const rows: NetRow[] = [];
      for (const size of sizes) {
        const samples = await oneWay(channel, size, options.count(size), options.intervalUs);
        const msgsPerS = await flood(channel, size, options.floodMs);
        rows.push({ size, oneWay: summarize(samples), msgsPerS, mbPerS: (msgsPerS * size) / 1e6 });
      }
      return rows;
    };
    const rows = await Promise.race([measure(), died.then(() => [] as NetRow[])]);
    done = true;
    if (placement === undefined) {
      const detail =
        name === 'zeromq'
          ? `zeromq.js PUSH → PULL over ${ipc ? 'ipc' : 'tcp loopback'}, two processes`
          : `node:net, u32 length + payload, ${ipc ? 'a unix socket' : 'tcp loopback'}, two processes`;
      return { name, detail, protocol: ipc ? 'ipc' : 'tcp', rows };
    }
    const detail =
      name === 'zeromq'
        ? `zeromq.js PUSH → PULL over tcp, ${curve ? 'CURVE' : 'no CURVE'}, ${placement.where}`
        : `node:net, u32 length + payload, tcp, no encryption, ${placement.where}`;
    return { name, detail, ...(name === 'zeromq' ? { curve } : {}), rows };
  } finally {
    done = true;
    // A peer that is gone takes no goodbye (a PUSH without peers would wait for one for ever).
    const goodbye = channel.send(new Uint8Array([0])).catch(() => undefined);
    await Promise.race([goodbye, new Promise((resolve) => setTimeout(resolve, 1000))]);
    await channel.close();
    peer.kill();
    await exited;
  }
}
