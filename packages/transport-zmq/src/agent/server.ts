/**
 * `improv agent`: starts and watches actor processes on this machine for a Nexus on another one
 * that presents the agent's token — and nothing else. Each actor runs improv's own actor host
 * (`runWorker`), on the runtime the actor names, through this runtime's `spawnProcess`; its control
 * channel is carried to the Nexus as it is. When the Nexus quits, goes silent for a few seconds or
 * its connection breaks, every process started for it ends: no orphans. See `_wire.ts` for the
 * protocol and the keys.
 * @module
 */
import { hostname } from 'node:os';
import { DEFAULT_AGENT_PORT, detectRuntime, type LogLevel, type RuntimeAdapter, serializeError } from '@improv/core';
import { actorHostEntry } from '@improv/core/hosts';
import { ProcessChannel } from '@improv/core/runtime/process-channel';
import { Decoder, Encoder } from '@msgpack/msgpack';
import { freePort } from '../_free-port.ts';
import { loadSockets } from '../_protocol.ts';
import type { RouterSocket } from '../_socket.ts';
import { RelayStream } from './_stream.ts';
import {
  agentKeys,
  type FromAgent,
  LOST_AFTER_MS,
  PING_EVERY_MS,
  readOrMakeToken,
  sameToken,
  type ToAgent,
} from './_wire.ts';

/** Options of {@link serveAgent}. */
export interface AgentOptions {
  /** `address[:port]` to listen on (port default 7310); an address of this machine the Nexus reaches. */
  listen: string;
  /** The token file; made (mode 0600) when it does not exist. */
  tokenFile: string;
  log?: (level: LogLevel, message: string) => void;
  /** The runtime adapter that starts processes; default: this runtime's. */
  runtime?: RuntimeAdapter;
}

/** A listening agent. */
export interface RunningAgent {
  /** `tcp://address:port` it listens on. */
  readonly address: string;
  /** The token file, and whether it was made just now. */
  readonly tokenFile: string;
  readonly madeToken: boolean;
  /** Ends every process it started and stops listening. */
  close(): Promise<void>;
}

interface ActorProcess {
  stream: RelayStream;
  terminate: (() => Promise<void>) | undefined;
  killed: boolean;
}

interface Session {
  id: Uint8Array;
  label: string;
  proven: boolean;
  heard: number;
  actors: Map<number, ActorProcess>;
}

/** Parses `address[:port]` (IPv6 in brackets). */
export function parseListen(listen: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+))(?::(\d+))?$/.exec(listen.trim());
  const port = match?.[3] === undefined ? DEFAULT_AGENT_PORT : Number(match[3]);
  if (!match || !(port >= 1 && port <= 65_535)) {
    throw new Error(
      `improv agent: --listen ${JSON.stringify(listen)} is not address[:port]; write e.g.  --listen 10.0.0.2:${DEFAULT_AGENT_PORT}  (an address of this machine the Nexus reaches)`,
    );
  }
  return { host: (match[1] ?? match[2])!, port };
}

/** Starts an agent; resolves once it listens. */
export async function serveAgent(options: AgentOptions): Promise<RunningAgent> {
  const log = options.log ?? (() => {});
  const { host, port } = parseListen(options.listen);
  const { token, made, file } = readOrMakeToken(options.tokenFile);
  const runtime = options.runtime ?? (await detectRuntime());
  const sockets = await loadSockets('auto');
  const router: RouterSocket = sockets.router({ curve: agentKeys(token) });
  const encoder = new Encoder({ ignoreUndefined: true });
  const decoder = new Decoder();
  const sessions = new Map<string, Session>();
  let nextSession = 1;
  let closed = false;

  const send = (session: Session, message: FromAgent) => router.send([session.id, encoder.encode(message)]);

  const endSession = (session: Session, reason: string) => {
    const key = idKey(session.id);
    if (sessions.get(key) !== session) return;
    sessions.delete(key);
    if (session.proven) log('info', `${session.label} ${reason}; ending its ${session.actors.size} actor process(es)`);
    for (const actor of session.actors.values()) {
      actor.killed = true;
      actor.stream.closed();
      void actor.terminate?.();
    }
  };

  const spawn = (session: Session, message: Extract<ToAgent, { t: 'spawn' }>) => {
    const stream = new RelayStream(
      (bytes) => send(session, { t: 'data', id: message.id, bytes }),
      () => send(session, { t: 'end', id: message.id }),
    );
    const channel = new ProcessChannel(stream, 'child');
    const actor: ActorProcess = { stream, terminate: undefined, killed: false };
    session.actors.set(message.id, actor);
    const heap = message.maxHeapMb === undefined ? {} : { maxHeapMb: message.maxHeapMb };
    const interpreter = message.interpreter === undefined ? {} : { interpreter: message.interpreter };
    runtime
      .spawnProcess({ name: message.name, entry: actorHostEntry, runtime: message.runtime, ...interpreter, ...heap })
      .then((handle) => {
        actor.terminate = () => handle.terminate();
        if (actor.killed || sessions.get(idKey(session.id)) !== session) {
          void handle.terminate();
          return;
        }
        log('info', `${session.label}: started actor "${message.name}" on ${message.runtime} (pid ${handle.pid})`);
        channel.onMessage((toActor) => handle.postMessage(toActor));
        handle.onMessage((fromActor) => channel.send(fromActor));
        handle.onOutput((line, output) => send(session, { t: 'output', id: message.id, line, stream: output }));
        handle.onError((error) => send(session, { t: 'error', id: message.id, error: serializeError(error) }));
        handle.onExit((code) => {
          session.actors.delete(message.id);
          log('info', `${session.label}: actor "${message.name}" (pid ${handle.pid}) ended with code ${code}`);
          // The last changes of its shared words go first, then the end.
          void channel.close().then(() => send(session, { t: 'exit', id: message.id, code }));
        });
        // Its channel gone (the Nexus ended it): the process goes too.
        channel.onClose(() => void handle.terminate());
        send(session, { t: 'spawned', id: message.id, pid: handle.pid });
      })
      .catch((error: unknown) => {
        session.actors.delete(message.id);
        stream.closed();
        log('warn', `${session.label}: could not start actor "${message.name}": ${(error as Error).message}`);
        send(session, { t: 'spawn-failed', id: message.id, error: serializeError(error) });
      });
  };

  const portFor = (session: Session, req: number) =>
    freePort(host).then(
      (port) => send(session, { t: 'port', req, port }),
      (error: Error) => send(session, { t: 'port', req, error: error.message }),
    );

  router.onMessage((frames) => {
    const id = frames[0]!;
    const key = idKey(id);
    let message: ToAgent;
    try {
      message = decoder.decode(frames[1] ?? new Uint8Array(0)) as ToAgent;
    } catch {
      return;
    }
    let session = sessions.get(key);
    if (session === undefined) {
      session = {
        id: id.slice(),
        label: `Nexus ${nextSession++}`,
        proven: false,
        heard: Date.now(),
        actors: new Map(),
      };
      sessions.set(key, session);
    }
    session.heard = Date.now();
    if (!session.proven) {
      if (message?.t === 'hello' && sameToken(message.token, token)) {
        session.proven = true;
        log('info', `${session.label} connected`);
        send(session, { t: 'welcome', hostname: hostname(), pid: process.pid, peer: '' });
      } else {
        log('warn', `refused a Nexus that did not present this agent's token`);
        send(session, { t: 'refused', reason: 'wrong token' });
        endSession(session, 'was refused');
      }
      return;
    }
    switch (message.t) {
      case 'ping':
        return;
      case 'port':
        return void portFor(session, message.req);
      case 'spawn':
        return spawn(session, message);
      case 'data':
        return session.actors.get(message.id)?.stream.received(message.bytes);
      case 'end':
        return session.actors.get(message.id)?.stream.closed();
      case 'kill': {
        const actor = session.actors.get(message.id);
        if (actor) {
          actor.killed = true;
          void actor.terminate?.();
        }
        return;
      }
      case 'bye':
        return endSession(session, 'quit');
    }
  });
  router.onEvent((event) => {
    if (event.type === 'handshake-failed' && !/closed before|greeting/i.test(event.reason)) {
      log(
        'warn',
        `refused a connection: ${event.reason} (a Nexus without this agent's token cannot complete the CURVE handshake)`,
      );
    }
  });

  const timer = setInterval(() => {
    const now = Date.now();
    for (const session of [...sessions.values()]) {
      if (now - session.heard > LOST_AFTER_MS) endSession(session, `was not heard from for ${LOST_AFTER_MS / 1000} s`);
      else if (session.proven) send(session, { t: 'ping' });
    }
  }, PING_EVERY_MS);

  let address: string;
  try {
    address = await router.bind(`tcp://${host.includes(':') ? `[${host}]` : host}:${port}`);
  } catch (error) {
    clearInterval(timer);
    router.close();
    const text = (error as Error).message;
    const why = /EADDRNOTAVAIL/.test(text)
      ? `${host} is not an address of this machine; give one of its own (\`ip addr\` lists them)`
      : /EADDRINUSE|in use/i.test(text)
        ? `port ${port} is in use (another agent?); give another port, and the same one in the Nexus's hosts: entry`
        : text;
    throw new Error(`improv agent: cannot listen on ${host}:${port}: ${why}`);
  }
  return {
    address,
    tokenFile: file,
    madeToken: made,
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      const ending = [...sessions.values()].flatMap((session) =>
        [...session.actors.values()].map((actor) => actor.terminate?.()),
      );
      for (const session of [...sessions.values()]) endSession(session, 'ended: the agent stops');
      await Promise.allSettled(ending);
      router.close();
    },
  };
}

function idKey(id: Uint8Array): string {
  return Buffer.from(id).toString('hex');
}
