/**
 * @improv/transport-zmq — improv links between processes and machines over ZeroMQ.
 *
 * Each sink endpoint binds a ROUTER; each source connects one DEALER per edge to it. Messages are
 * msgpack, flow control is by credit from sink to source, so the semantics are those of every
 * improv transport (fan-out, fan-in without loss, FIFO per source, `block` end to end across the
 * network, `drop-oldest`), and any ZeroMQ binding can take part (see the package README for the
 * wire format). Sockets are this package's ZMTP 3.1 in TypeScript on every runtime (faster than
 * zeromq.js in the bench, and the only one Bun and Deno can use), or zeromq.js (libzmq) on Node when
 * asked; both speak the same protocol.
 *
 * @example
 * ```ts
 * import { createNexus } from '@improv/core';
 * import { createLocalTransport } from '@improv/transport-local';
 * import { createZmqTransport } from '@improv/transport-zmq';
 *
 * const nexus = await createNexus({
 *   config: 'pipeline.yaml',
 *   store,
 *   transport: [createLocalTransport(), createZmqTransport()], // per connection: `transport: zmq`
 * });
 * ```
 * @module
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import {
  checkLinkGraph,
  copyEdge,
  copyEndpoint,
  type DetachOptions,
  type DrainedMessages,
  type Endpoint,
  endpointLabel,
  isLoopbackAddress,
  type Link,
  type LinkDescriptor,
  type LinkEdge,
  type LinkGraph,
  type LinkHooks,
  type LinkPlan,
  type LinkStats,
  type Transport,
} from '@improv/core';
import { foreignBindProblem, freePort } from './_free-port.ts';
import { ZmqInputLink } from './_input.ts';
import { ZmqOutputLink } from './_output.ts';
import {
  ACKED_DROPPED,
  ACKED_TAKEN,
  announce,
  BYTES_SENT,
  CONTROL_BYTES,
  CONTROL_CLOSED,
  DROPPED_AT_DETACH,
  DROPPED_AT_SINK,
  DROPPED_AT_SOURCE,
  EDGE_BYTES,
  type EdgeInfo,
  edgeCounters,
  IN_FLIGHT_GRACE_MS,
  loadSockets,
  RECEIVED,
  SENT,
  SINK_GONE,
  SOURCE_GONE,
  type SocketChoice,
  TAKEN,
  WAITING,
  type ZmqInDescriptor,
  type ZmqOutDescriptor,
} from './_protocol.ts';
import type { CurveKeyPair } from './_socket.ts';
import { checkKey, generateKeyPair, publicKeyOf } from './keys.ts';

export type { CurveKeyPair } from './_socket.ts';

/** Options of {@link createZmqTransport}. */
export interface ZmqTransportOptions {
  /**
   * `ipc` (default): unix socket files in `runDir`, for processes of one host. `tcp`: TCP ports on
   * `bind`, for links between hosts.
   */
  protocol?: 'ipc' | 'tcp';
  /** Folder of the ipc socket files (the run folder). Default: a fresh temporary folder, removed on close. */
  runDir?: string;
  /**
   * The address tcp listeners bind. Default `127.0.0.1`. Anything else (another interface, `0.0.0.0` or `*`)
   * exposes the pipeline to the network, and is refused unless `curve` is given.
   */
  bind?: string;
  /** The pipeline's CURVE key pair (Z85, from `improv keys`): every link is encrypted and authenticated with it. */
  curve?: CurveKeyPair;
  /** Largest encoded message, in bytes (default 8 MiB): links carry store keys, the store carries data. */
  maxMessageBytes?: number;
  /** Socket implementation: `auto` (default: the TypeScript ZMTP, on every runtime), `zmtp`, or `zeromq` (zeromq.js, Node only), `zeromq`, `zmtp`. */
  sockets?: SocketChoice;
}

const DEFAULT_MAX_MESSAGE_BYTES = 8 * 1024 * 1024;
/** Longest path of a unix socket (sun_path is 108 bytes on Linux, 104 on macOS). */
const MAX_IPC_PATH = 100;

/** Creates the zmq transport. Pass it to `createNexus({ transport })`, alone or beside the local one. */
export function createZmqTransport(options: ZmqTransportOptions = {}): Transport {
  const protocol = options.protocol ?? 'ipc';
  // `*` (every interface, as ZeroMQ and the YAML write it) is the address Node listens on for that.
  const bind = options.bind === '*' ? '0.0.0.0' : (options.bind ?? '127.0.0.1');
  const sockets = options.sockets ?? 'auto';
  const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  if (protocol !== 'ipc' && protocol !== 'tcp') {
    throw new TypeError(`createZmqTransport: protocol must be "ipc" or "tcp", got ${JSON.stringify(protocol)}`);
  }
  if (!['auto', 'zeromq', 'zmtp'].includes(sockets)) {
    throw new TypeError(
      `createZmqTransport: sockets must be "auto", "zeromq" or "zmtp", got ${JSON.stringify(sockets)}`,
    );
  }
  if (!Number.isInteger(maxMessageBytes) || maxMessageBytes < 16) {
    throw new RangeError(`createZmqTransport: maxMessageBytes must be a whole number ≥ 16, got ${maxMessageBytes}`);
  }
  const curve = options.curve && checkCurve(options.curve);
  if (protocol === 'tcp' && !isLoopbackAddress(bind) && curve === undefined) {
    throw new Error(
      `createZmqTransport: binding ${bind} exposes the pipeline's links to the network; give the pipeline CURVE keys (make a pair with \`improv keys\`, then zmq.keys in the YAML or the curve option), or bind 127.0.0.1`,
    );
  }
  // Before anything listens: an address of another machine would fail only when the first sink binds.
  const foreign = protocol === 'tcp' ? foreignBindProblem(bind) : undefined;
  if (foreign !== undefined) throw new Error(foreign);

  let runDir = options.runDir;
  let ownDir: string | undefined;
  let control: Int32Array<SharedArrayBuffer>[] = [];
  let planned: { edge: LinkEdge; counters: SharedArrayBuffer }[] = [];
  let sinkCount = 0;
  /** Timers of {@link settleLost}, cleared at close. */
  const settling = new Set<ReturnType<typeof setTimeout>>();

  const ipcAddress = (): string => {
    if (runDir === undefined) {
      ownDir = mkdtempSync(join(tmpdir(), `improv-zmq-${process.pid}-`));
      runDir = ownDir;
    }
    const path = join(runDir, `link-${sinkCount++}.sock`);
    if (path.length > MAX_IPC_PATH) {
      throw new Error(
        `zmq transport: the ipc socket path ${path} is ${path.length} characters, more than unix sockets allow (${MAX_IPC_PATH}); use a shorter run folder, or protocol: tcp`,
      );
    }
    return `ipc://${path}`;
  };

  /**
   * Counts what edge `entry`'s sink will never read (sent, not taken, not yet counted dropped) as
   * dropped, and returns it as a batch for the supervisor's log; undefined when there is none.
   * `where`: kept by the live source (detach), or gone with the endpoints' processes (quit).
   */
  const discardUnread = (
    entry: { edge: LinkEdge; counters: SharedArrayBuffer },
    where: 'source' | 'on-the-way',
  ): DrainedMessages | undefined => {
    const { edge } = entry;
    const { counts } = edgeCounters(entry.counters);
    const left = unread(counts);
    if (left === 0) return undefined;
    counts[DROPPED_AT_DETACH]! += left;
    const fanOut = planned.filter(
      (other) => other.edge.from.actor === edge.from.actor && other.edge.from.link === edge.from.link,
    ).length;
    return {
      connection: edge.connection,
      from: copyEndpoint(edge.from),
      to: copyEndpoint(edge.to),
      messages: [],
      droppedAtSource: left,
      where,
      sole: fanOut === 1,
    };
  };

  /**
   * Edge `entry`'s source is gone (its process died, or it failed): what it counted as sent and that
   * never reached the sink — still in its socket's buffers or its batch when its process ended — will
   * never arrive, also when the actor is restarted (its next process has none of it). Once what was
   * on its way had {@link IN_FLIGHT_GRACE_MS} to arrive, the rest is counted dropped, so the link does
   * not show it waiting for ever and what it says was read is what its sink got.
   */
  const settleLost = (entry: { edge: LinkEdge; counters: SharedArrayBuffer }): void => {
    const { counts } = edgeCounters(entry.counters);
    const sent = counts[SENT]!;
    const timer = setTimeout(() => {
      settling.delete(timer);
      const { flags } = edgeCounters(entry.counters);
      // A sink that is gone had what it never got counted when it was detached.
      if (!planned.includes(entry) || Atomics.load(flags, SINK_GONE) !== 0) return;
      // Messages of a restarted source that arrived since only make this smaller, never larger.
      const lost = Math.min(unread(counts), Math.max(0, sent - counts[RECEIVED]!));
      if (lost > 0) counts[DROPPED_AT_DETACH]! += lost;
    }, IN_FLIGHT_GRACE_MS);
    (timer as { unref?: () => void }).unref?.();
    settling.add(timer);
  };

  return {
    specificationVersion: 1,
    name: 'zmq',

    async plan(graph: LinkGraph): Promise<LinkPlan> {
      checkLinkGraph(graph);
      const shared = new SharedArrayBuffer(CONTROL_BYTES);
      control.push(new Int32Array(shared));
      const base = { module: import.meta.url, transport: 'zmq' as const, control: shared, sockets, maxMessageBytes };
      const acrossHosts = sinksAcrossHosts(graph);
      // Links between hosts are always encrypted: with the pipeline's keys, or a pair made for this run.
      const keys = curve ?? (acrossHosts.size > 0 ? generateKeyPair() : undefined);
      const common = keys === undefined ? base : { ...base, curve: keys };
      const sinks = new Map<string, ZmqInDescriptor>();
      const sources = new Map<string, ZmqOutDescriptor>();
      const run = Math.random().toString(36).slice(2, 8);
      let index = 0;
      for (const edge of graph.edges) {
        const from = endpointLabel(edge.from);
        const to = endpointLabel(edge.to);
        let sink = sinks.get(to);
        if (sink === undefined) {
          const address = acrossHosts.has(to)
            ? await hostAddress(graph.placement!, edge.to.actor)
            : protocol === 'ipc'
              ? ipcAddress()
              : `tcp://${hostPart(bind)}:${await freePort(bind)}`;
          sink = { ...common, direction: 'in', endpoint: copyEndpoint(edge.to), address, edges: [] };
          sinks.set(to, sink);
        }
        let source = sources.get(from);
        if (source === undefined) {
          source = { ...common, direction: 'out', endpoint: copyEndpoint(edge.from), edges: [] };
          sources.set(from, source);
        }
        const counters = new SharedArrayBuffer(EDGE_BYTES);
        const info: EdgeInfo = {
          connection: edge.connection,
          peer: '',
          capacity: edge.capacity,
          policy: edge.policy,
          id: `${run}.${index++}`,
          counters,
        };
        sink.edges.push({ ...info, peer: from });
        source.edges.push({ ...info, peer: to, address: sink.address });
        planned.push({ edge: copyEdge(edge), counters });
      }
      const endpoints = new Map<string, Map<string, LinkDescriptor>>();
      for (const descriptor of [...sinks.values(), ...sources.values()]) {
        const { actor, link } = descriptor.endpoint;
        let links = endpoints.get(actor);
        if (links === undefined) {
          links = new Map();
          endpoints.set(actor, links);
        }
        links.set(link, descriptor);
      }
      return { endpoints };
    },

    stats(): LinkStats[] {
      return planned.map(({ edge, counters }) => {
        const { counts, flags } = edgeCounters(counters);
        const gone = Atomics.load(flags, SINK_GONE) !== 0;
        return {
          ...copyEdge(edge),
          depth: gone ? 0 : unread(counts),
          sent: counts[SENT]! + counts[DROPPED_AT_SOURCE]!,
          bytes: counts[BYTES_SENT]!,
          dropped: counts[DROPPED_AT_SOURCE]! + droppedBy(counts) + counts[DROPPED_AT_DETACH]!,
          waiting: Atomics.load(flags, WAITING) !== 0,
        };
      });
    },

    /**
     * Marks `actor`'s edges: its sources stop waiting for it and report, to their own hooks, every
     * message it had not read (they keep a copy until the sink acknowledges it); its sinks end once
     * what it sent has arrived and been read. The messages themselves stay with the endpoints, which
     * may live in other processes: what is returned counts them (`droppedAtSource`), per edge. With
     * `restarting`, neither side is marked gone: sources hold what the actor had not read (and wait
     * while their credit is used up) and send it again to the actor's next incarnation.
     */
    detach(actor: string, options: DetachOptions = {}): DrainedMessages[] {
      const touched = new Set<Int32Array<SharedArrayBuffer>>();
      const dropped: DrainedMessages[] = [];
      for (const entry of planned) {
        const { edge } = entry;
        const { flags } = edgeCounters(entry.counters);
        // A sink that is restarted is not gone: its sources keep what it had not read (within their
        // credit, waiting for it) and send it again to its next incarnation. One that closed its
        // link itself (its actor failed) already says it is gone; what it never read is counted
        // here all the same, once (counted, it is no longer unread).
        if (edge.to.actor === actor && !options.restarting) {
          const batch = discardUnread(entry, 'source');
          if (batch !== undefined) dropped.push(batch);
          Atomics.store(flags, SINK_GONE, 1);
        }
        if (edge.from.actor === actor) {
          // A put it was waiting in died with it: the flag it left would say it waits for ever.
          Atomics.store(flags, WAITING, 0);
          if (!options.restarting) Atomics.store(flags, SOURCE_GONE, 1);
          settleLost(entry);
        }
      }
      for (const words of control) touched.add(words);
      for (const words of touched) announce(words);
      return dropped;
    },

    /**
     * Quit, once every actor ended: the messages themselves are gone with the endpoints' processes
     * (those a sink had received but not read, and those still on their way to it), so what is
     * returned counts them per edge (`droppedAtSource`), and they are counted dropped in the stats.
     */
    drain(): DrainedMessages[] {
      return planned.flatMap((entry) => discardUnread(entry, 'on-the-way') ?? []);
    },

    async close(): Promise<void> {
      for (const timer of settling) clearTimeout(timer);
      settling.clear();
      for (const words of control) {
        Atomics.store(words, CONTROL_CLOSED, 1);
        announce(words);
      }
      control = [];
      planned = [];
      if (ownDir !== undefined) rmSync(ownDir, { recursive: true, force: true });
      ownDir = undefined;
      if (options.runDir === undefined) runDir = undefined;
    },
  };
}

/**
 * Rebuilds a link from a descriptor made by {@link createZmqTransport}'s `plan`, in any worker or
 * process. Resolves once a sink listens (rejecting when its address is taken).
 */
export async function openLink(descriptor: LinkDescriptor, hooks?: LinkHooks): Promise<Link> {
  if (descriptor.transport !== 'zmq' || !Array.isArray(descriptor.edges)) {
    throw new TypeError(
      `@improv/transport-zmq: the descriptor of link "${describe(descriptor)}" was not made by the zmq transport (its module is ${String(descriptor.module)}); open it with the module it names`,
    );
  }
  const sockets = await loadSockets(descriptor.sockets as SocketChoice);
  if (descriptor.direction === 'in') {
    const link = new ZmqInputLink(descriptor as ZmqInDescriptor, sockets, hooks);
    await link.ready;
    return link;
  }
  if (descriptor.direction === 'out') return new ZmqOutputLink(descriptor as ZmqOutDescriptor, sockets, hooks);
  throw new TypeError(
    `@improv/transport-zmq: link "${describe(descriptor)}" has direction ${String(descriptor.direction)}; expected "in" or "out"`,
  );
}

/** One endpoint of a zmq plan as a peer in another language needs it: plain JSON (see the README). */
export interface ZmqPeerEndpoint {
  /** `in`: the peer binds a ROUTER at `address` and its sources connect; `out`: the peer connects one DEALER per edge. */
  direction: 'in' | 'out';
  /** Where a sink's ROUTER binds (`in` only). */
  address?: string;
  edges: {
    connection: string;
    /** `Actor.link` at the other end. */
    peer: string;
    /** The source DEALER's routing id. */
    id: string;
    /** Where the source connects (`out` only). */
    address?: string;
    /** Messages of credit the source starts with. */
    capacity: number;
    policy: string;
  }[];
  /** The pipeline's CURVE key pair, when its links are encrypted: sinks serve with it, sources trust `serverKey`. */
  curve?: { publicKey: string; secretKey: string; serverKey: string };
}

/**
 * What a process outside the pipeline (Python with pyzmq, or any ZeroMQ binding) needs to play the
 * endpoint `descriptor` stands for: the addresses, routing ids and credit of its edges. The
 * pipeline then must not open that endpoint itself.
 */
export function peerEndpoint(descriptor: LinkDescriptor): ZmqPeerEndpoint {
  if (descriptor.transport !== 'zmq') {
    throw new TypeError(`@improv/transport-zmq: link "${describe(descriptor)}" is not on the zmq transport`);
  }
  const zmq = descriptor as ZmqInDescriptor | ZmqOutDescriptor;
  const edges = zmq.edges.map((edge) => ({
    connection: edge.connection,
    peer: edge.peer,
    id: edge.id,
    ...('address' in edge ? { address: edge.address } : {}),
    capacity: edge.capacity,
    policy: edge.policy,
  }));
  return {
    direction: zmq.direction,
    ...(zmq.direction === 'in' ? { address: zmq.address } : {}),
    edges,
    ...(zmq.curve ? { curve: { ...zmq.curve, serverKey: zmq.curve.publicKey } } : {}),
  };
}

function describe(descriptor: LinkDescriptor): string {
  const endpoint = descriptor.endpoint as Partial<Endpoint> | undefined;
  return `${String(endpoint?.actor)}.${String(endpoint?.link)}`;
}

function checkCurve(curve: CurveKeyPair): CurveKeyPair {
  checkKey(curve.publicKey, 'public key');
  if (publicKeyOf(curve.secretKey) !== curve.publicKey.trim()) {
    throw new RangeError(
      'the CURVE public key does not belong to the secret key; use the pair `improv keys` wrote together',
    );
  }
  return { publicKey: curve.publicKey.trim(), secretKey: curve.secretKey.trim() };
}

/**
 * The sinks (`Actor.link`) that peers on other hosts reach: those of actors on another host (an ipc
 * path is a file of this machine) and those with a source on another host. They listen on TCP at
 * their host's address, with CURVE.
 */
function sinksAcrossHosts(graph: LinkGraph): Set<string> {
  const placement = graph.placement;
  const across = new Set<string>();
  if (placement === undefined) return across;
  for (const edge of graph.edges) {
    const host = placement.hostOf(edge.to.actor);
    if (host !== undefined || placement.hostOf(edge.from.actor) !== host) across.add(endpointLabel(edge.to));
  }
  return across;
}

/** `tcp://address:port` for a sink of `actor`, at the address of the host it runs on. */
async function hostAddress(placement: NonNullable<LinkGraph['placement']>, actor: string): Promise<string> {
  const host = placement.hostOf(actor);
  const address = placement.addressOf(host);
  const port = host === undefined ? await freePort(address) : await placement.freePort(host);
  return `tcp://${hostPart(address)}:${port}`;
}

function hostPart(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/** Messages of an edge its sink has not read and that are not counted dropped yet (on their way, or waiting in the sink). */
function unread(counts: Float64Array): number {
  return Math.max(0, counts[SENT]! - takenBy(counts) - droppedBy(counts) - counts[DROPPED_AT_DETACH]!);
}

/** Messages the sink read: what it counted, or what it acknowledged to the source if more (see {@link ACKED_TAKEN}). */
function takenBy(counts: Float64Array): number {
  return Math.max(counts[TAKEN]!, counts[ACKED_TAKEN]!);
}

/** Messages the sink dropped (`drop-oldest`): what it counted, or what it acknowledged if more. */
function droppedBy(counts: Float64Array): number {
  return Math.max(counts[DROPPED_AT_SINK]!, counts[ACKED_DROPPED]!);
}
