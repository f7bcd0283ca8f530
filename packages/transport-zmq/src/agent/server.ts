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
import { ThrottledReport } from '../_throttle.ts';
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
  heard: number;
  actors: Map<number, ActorProcess>;
}

/** A routing id that has no session (any more): what it was, and whether it was told so. */
interface Gone {
  /** Why it has no session, as the Nexus is told: `it was not heard from for 5 s`, ... */
  why: string;
  /** Whether it was refused (a wrong token): what else it sends is dropped without a word. */
  refused: boolean;
  told: boolean;
}

/** How many routing ids without a session are remembered (the oldest is forgotten first). */
const GONE_KEPT = 1024;
/** How often connections refused at the CURVE handshake are reported again. */
const REFUSAL_REPEAT_MS = 30_000;

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
  const gone = new Map<string, Gone>();
  const refusals = new ThrottledReport(REFUSAL_REPEAT_MS);
  let nextSession = 1;
  let closed = false;

  const sendTo = (id: Uint8Array, message: FromAgent) => router.send([id, encoder.encode(message)]);
  const send = (session: Session, message: FromAgent) => sendTo(session.id, message);

  /** Remembers that `key` has no session, and why. */
  const forget = (key: string, entry: Gone) => {
    gone.delete(key);
    gone.set(key, entry);
    if (gone.size > GONE_KEPT) gone.delete(gone.keys().next().value!);
  };

  const endSession = (session: Session, reason: string) => {
    const key = idKey(session.id);
    if (sessions.get(key) !== session) return;
    sessions.delete(key);
    forget(key, { why: `it ${reason}`, refused: false, told: false });
    log('info', `${session.label} ${reason}; ending its ${session.actors.size} actor process(es)`);
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

  /** A Nexus's first message: with this agent's token it begins a session; without, it is refused. */
  const hello = (id: Uint8Array, key: string, given: unknown) => {
    if (!sameToken(given, token)) {
      // Said once per Nexus: what else it sends is dropped.
      if (gone.get(key)?.refused !== true) log('warn', `refused a Nexus that did not present this agent's token`);
      forget(key, { why: 'it was refused: wrong token', refused: true, told: true });
      sendTo(id, { t: 'refused', reason: 'wrong token' });
      return;
    }
    gone.delete(key);
    const session: Session = { id: id.slice(), label: `Nexus ${nextSession++}`, heard: Date.now(), actors: new Map() };
    sessions.set(key, session);
    log('info', `${session.label} connected`);
    send(session, { t: 'welcome', hostname: hostname(), pid: process.pid, peer: '' });
  };

  /**
   * A message other than hello from a Nexus without a session: one whose session ended (it was not
   * heard from for a while: stopped, suspended, or cut off, and back now). It passed the CURVE
   * handshake, so it holds the token: it is told once that its session is over, and what else it
   * sends is dropped.
   */
  const sessionless = (id: Uint8Array, key: string) => {
    const past = gone.get(key);
    if (past?.told === true) return;
    const why = past?.why ?? 'its first message was not hello';
    forget(key, { why, refused: false, told: true });
    log(
      'info',
      `a Nexus ${past === undefined ? `without a session here (${why})` : `whose session here ended (${why})`} is still sending; told it so, and ignoring what it sends`,
    );
    sendTo(id, { t: 'ended', reason: why });
  };

  router.onMessage((frames) => {
    const id = frames[0]!;
    const key = idKey(id);
    let message: ToAgent;
    try {
      message = decoder.decode(frames[1] ?? new Uint8Array(0)) as ToAgent;
    } catch {
      return;
    }
    const session = sessions.get(key);
    if (session === undefined) {
      if (message?.t === 'hello') hello(id, key, message.token);
      else sessionless(id, key);
      return;
    }
    session.heard = Date.now();
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
    if (event.type !== 'handshake-failed') return;
    // A peer that hung up during the handshake (a Nexus that gave up waiting, e.g. while this agent
    // was suspended) or that is no ZeroMQ peer at all was refused nothing: only keys are reported.
    if (event.stage !== 'refused') {
      log('debug', `a connection ended during its handshake: ${event.reason}`);
      return;
    }
    // A refused Nexus tries again every few hundred milliseconds: said once, then at most every 30 s.
    const count = refusals.note();
    if (count === undefined) return;
    log(
      'warn',
      `refused a connection: ${event.reason} (a Nexus without this agent's token cannot complete the CURVE handshake)${count > 1 ? `; ${count} refused since the last report` : ''}`,
    );
  });

  const timer = setInterval(() => {
    const now = Date.now();
    for (const session of [...sessions.values()]) {
      if (now - session.heard > LOST_AFTER_MS) endSession(session, `was not heard from for ${LOST_AFTER_MS / 1000} s`);
      else send(session, { t: 'ping' });
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
