/**
 * The Nexus side of `improv agent` ({@link connectAgent}, an `AgentConnector` of `@improv/core/hosts`):
 * reaches the agent of one host over ZeroMQ with CURVE, proves the token, and starts actor
 * processes there whose control channels it carries. A host that stops answering for a few seconds,
 * or whose connection breaks, is lost: each of its processes reports an error and ends, so Nexus
 * handles it as any process that died (its restart policy included).
 * @module
 */
import { randomBytes } from 'node:crypto';
import { createConnection } from 'node:net';
import {
  deserializeError,
  type HostConfig,
  type LogLevel,
  type ProcessHandle,
  type SpawnProcessOptions,
} from '@improv/core';
import { type HostAgent, tokenFileError } from '@improv/core/hosts';
import { createWorkerEvents, ProcessChannel } from '@improv/core/runtime/process-channel';
import { Decoder, Encoder } from '@msgpack/msgpack';
import { loadSockets } from '../_protocol.ts';
import type { HandshakeStage } from '../_socket.ts';
import { generateKeyPair } from '../keys.ts';
import { RelayStream } from './_stream.ts';
import {
  agentKeys,
  CONNECT_TIMEOUT_MS,
  type FromAgent,
  LOST_AFTER_MS,
  PING_EVERY_MS,
  readToken,
  type ToAgent,
} from './_wire.ts';

interface Remote {
  stream: RelayStream;
  events: ReturnType<typeof createWorkerEvents>;
  output: ((line: string, stream: 'stdout' | 'stderr') => void)[];
  started: (pid: number) => void;
  failed: (error: Error) => void;
  gone: () => void;
}

/**
 * The token in `host`'s token file; throws a `ConfigError` at its `token_file` when the file cannot
 * be read (missing, a folder) or is not an agent token file. `connectAgent` reads it so, and
 * `improv validate` checks it so.
 */
export function readHostToken(host: HostConfig): string {
  try {
    return readToken(host.tokenFile, `host ${host.name}`);
  } catch (error) {
    throw tokenFileError(host, (error as Error).message);
  }
}

/** Reaches the agent of `host` (see `hosts:`); rejects with what to do when it cannot. */
export async function connectAgent(
  host: HostConfig,
  log: (level: LogLevel, message: string) => void,
): Promise<HostAgent> {
  const where = `host ${host.name} (${host.address}:${host.port})`;
  const token = readHostToken(host);
  const localAddress = await addressTowards(host, where);
  const sockets = await loadSockets('auto');
  const routingId = randomBytes(8);
  routingId[0] = routingId[0]! | 1; // a DEALER's own id never starts with 0
  const dealer = sockets.dealer({
    routingId,
    curve: { ...generateKeyPair(), serverKey: agentKeys(token).publicKey },
  });
  const encoder = new Encoder({ ignoreUndefined: true });
  const decoder = new Decoder();
  const send = (message: ToAgent) => dealer.send([encoder.encode(message)]);
  const remotes = new Map<number, Remote>();
  const ports = new Map<number, { resolve: (port: number) => void; reject: (error: Error) => void }>();
  const lostListeners: ((reason: string) => void)[] = [];
  let nextId = 1;
  let timer: ReturnType<typeof setInterval> | undefined;
  let heard = Date.now();
  let lost: string | undefined;
  let closing = false;
  let welcome: ((message: FromAgent) => void) | undefined;
  let refuse: ((reason: string) => void) | undefined;

  const lose = (reason: string) => {
    if (lost !== undefined) return;
    lost = reason;
    clearInterval(timer);
    dealer.close();
    for (const { reject } of ports.values()) reject(new Error(`${where} is lost: ${reason}`));
    ports.clear();
    for (const [id, remote] of remotes) {
      remotes.delete(id);
      remote.failed(new Error(`${where} is lost: ${reason}`));
      remote.events.error(new Error(`its host ${host.name} is lost: ${reason}`));
      remote.stream.closed();
      remote.events.exit(1);
      remote.gone();
    }
    if (!closing) for (const listener of lostListeners) listener(reason);
  };

  dealer.onMessage((frames) => {
    let message: FromAgent;
    try {
      message = decoder.decode(frames[0] ?? new Uint8Array(0)) as FromAgent;
    } catch {
      return;
    }
    heard = Date.now();
    switch (message.t) {
      case 'welcome':
        return welcome?.(message);
      case 'refused':
        return refuse?.(message.reason);
      case 'ended':
        return lose(`its agent has no session for this Nexus any more (${message.reason})`);
      case 'ping':
        return;
      case 'port': {
        const pending = ports.get(message.req);
        ports.delete(message.req);
        if (message.port !== undefined) pending?.resolve(message.port);
        else pending?.reject(new Error(`${where}: no free port there: ${message.error}`));
        return;
      }
      case 'spawned':
        return remotes.get(message.id)?.started(message.pid);
      case 'spawn-failed': {
        const remote = remotes.get(message.id);
        remotes.delete(message.id);
        remote?.stream.closed();
        remote?.failed(deserializeError(message.error));
        return;
      }
      case 'data':
        return remotes.get(message.id)?.stream.received(message.bytes);
      case 'end':
        return remotes.get(message.id)?.stream.closed();
      case 'output':
        for (const listener of remotes.get(message.id)?.output ?? []) listener(message.line, message.stream);
        return;
      case 'error':
        return remotes.get(message.id)?.events.error(deserializeError(message.error));
      case 'exit': {
        const remote = remotes.get(message.id);
        remotes.delete(message.id);
        remote?.stream.closed();
        remote?.events.exit(message.code);
        remote?.gone();
        return;
      }
    }
  });

  // Connect and prove the token, within the bound.
  await new Promise<void>((resolve, reject) => {
    /** The last failed handshake, if any: how far it got tells a wrong token from a wrong port. */
    let handshake: { reason: string; stage?: HandshakeStage } | undefined;
    const fail = (error: Error) => {
      clearTimeout(deadline);
      dealer.close();
      reject(error);
    };
    const run = `improv agent --listen ${host.address}:${host.port}`;
    const deadline = setTimeout(
      () =>
        fail(
          handshake === undefined
            ? new Error(`${where}: no agent answered within ${CONNECT_TIMEOUT_MS / 1000} s; start  ${run}  there`)
            : handshake.stage === 'greeting'
              ? // Accepted, then no ZeroMQ greeting with CURVE: another service has that port.
                new Error(
                  `${where}: something answers there, but it is not an improv agent (${handshake.reason}); check the port of hosts.${host.name} (${host.port}) and that  ${run}  runs on that machine`,
                )
              : tokenFileError(
                  host,
                  `${where}: the agent refused this Nexus (the CURVE handshake failed): the token in ${host.tokenFile} is not that agent's; copy its token file again`,
                ),
        ),
      CONNECT_TIMEOUT_MS,
    );
    welcome = () => {
      clearTimeout(deadline);
      resolve();
    };
    refuse = (reason) =>
      fail(
        tokenFileError(
          host,
          `${where}: the agent refused this Nexus (${reason}); the token in ${host.tokenFile} is not that agent's`,
        ),
      );
    dealer.onEvent((event) => {
      if (event.type === 'handshake-failed') handshake = event;
      if (event.type === 'retrying') log('debug', `${where}: ${event.reason}; trying again`);
    });
    dealer.connect(`tcp://${host.address.includes(':') ? `[${host.address}]` : host.address}:${host.port}`);
    send({ t: 'hello', token, version: 1 });
  });
  welcome = undefined;
  refuse = undefined;
  heard = Date.now();
  dealer.onEvent((event) => {
    if (event.type === 'disconnected' || event.type === 'handshake-failed') lose('the connection to its agent broke');
  });
  timer = setInterval(() => {
    if (Date.now() - heard > LOST_AFTER_MS) lose(`no answer for ${LOST_AFTER_MS / 1000} s`);
    else send({ t: 'ping' });
  }, PING_EVERY_MS);

  return {
    host: host.name,
    address: host.address,
    localAddress,

    spawnProcess(options: SpawnProcessOptions): Promise<ProcessHandle> {
      if (lost !== undefined) return Promise.reject(new Error(`${where} is lost: ${lost}`));
      const id = nextId++;
      return new Promise((resolve, reject) => {
        let markGone!: () => void;
        const gone = new Promise<void>((done) => {
          markGone = done;
        });
        const stream = new RelayStream(
          (bytes) => send({ t: 'data', id, bytes }),
          () => send({ t: 'end', id }),
        );
        const channel = new ProcessChannel(stream, 'parent');
        const events = createWorkerEvents(
          (message, transfer) => {
            if (transfer !== undefined && transfer.length > 0) {
              throw new TypeError(
                `actor "${options.name}" runs on host ${host.name}: nothing can be transferred to it`,
              );
            }
            channel.send(message);
          },
          async () => {
            if (lost === undefined) send({ t: 'kill', id });
            await gone;
          },
        );
        const output: Remote['output'] = [];
        remotes.set(id, {
          stream,
          events,
          output,
          started: (pid) =>
            resolve({
              ...events.handle,
              pid,
              runtime: options.runtime,
              onOutput: (listener) => void output.push(listener),
            }),
          failed: reject,
          gone: markGone,
        });
        channel.onMessage((message) => events.message(message));
        send({
          t: 'spawn',
          id,
          name: options.name,
          runtime: options.runtime,
          ...(options.interpreter === undefined ? {} : { interpreter: options.interpreter }),
          ...(options.maxHeapMb === undefined ? {} : { maxHeapMb: options.maxHeapMb }),
        });
      });
    },

    freePort(): Promise<number> {
      if (lost !== undefined) return Promise.reject(new Error(`${where} is lost: ${lost}`));
      const req = nextId++;
      return new Promise((resolve, reject) => {
        ports.set(req, { resolve, reject });
        send({ t: 'port', req });
      });
    },

    onLost(listener) {
      lostListeners.push(listener);
    },

    silentForMs() {
      return Date.now() - heard;
    },

    async close() {
      if (lost !== undefined) return;
      closing = true;
      send({ t: 'bye' });
      // The agent ends what is left and says so; a host that does not answer is given up on.
      const left = [...remotes.values()].map(
        (remote) => new Promise<void>((done) => remote.events.handle.onExit(() => done())),
      );
      await Promise.race([Promise.all(left), new Promise((done) => setTimeout(done, 2000))]);
      lose('closed');
    },
  };
}

/** The address of this machine that traffic to the host leaves from: what the host reaches back. */
function addressTowards(host: HostConfig, where: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: host.address, port: host.port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new Error(
          `${where}: no answer within ${CONNECT_TIMEOUT_MS / 1000} s; is the host up, and does  improv agent --listen ${host.address}:${host.port}  run there?`,
        ),
      );
    }, CONNECT_TIMEOUT_MS);
    socket.once('connect', () => {
      clearTimeout(timer);
      const address = socket.localAddress;
      socket.destroy();
      if (address) resolve(address.replace(/^::ffff:/, ''));
      else reject(new Error(`${where}: cannot tell this machine's address towards it`));
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const start = `start  improv agent --listen ${host.address}:${host.port}  on that machine`;
      const why =
        error.code === 'ECONNREFUSED'
          ? `nothing listens there; ${start}`
          : error.code === 'EHOSTUNREACH' || error.code === 'ENETUNREACH'
            ? `no route to that machine (${error.code}): it is down, or not on a network this machine reaches; check the address and the network, then ${start}`
            : error.code === 'ENOTFOUND' || error.code === 'EAI_AGAIN'
              ? `the name ${host.address} does not resolve (${error.code}); give the machine's address or a name that resolves`
              : `${error.code ?? error.message}; ${start}`;
      reject(new Error(`${where}: ${why}`));
    });
  });
}
