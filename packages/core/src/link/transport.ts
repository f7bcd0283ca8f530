/**
 * The link contract. A link carries small messages (store keys, timestamps, parameters) from
 * actor to actor. A {@link Transport} lives where Nexus runs: given the whole graph it returns one
 * {@link LinkDescriptor} per actor endpoint — a plain serialisable object (shared buffers included)
 * that crosses worker boundaries. Each worker imports `descriptor.module` and calls its exported
 * {@link OpenLink} function.
 *
 * Semantics every transport keeps:
 * - fan-out: every sink of a connection gets every message (the message is copied, never the data
 *   behind a store key);
 * - fan-in: several sources into one sink are interleaved and none is lost;
 * - FIFO per source;
 * - bounded: a full link makes `put` wait (`policy: 'block'`), or drops that sink's oldest
 *   message (`policy: 'drop-oldest'`), for sinks that only want the latest.
 *
 * @example
 * ```ts
 * await this.q_out.put({ key, t: performance.now() });
 * const message = await this.q_in.get();
 * ```
 * @module
 */

/** `Actor.link`, one side of a connection. */
export interface Endpoint {
  actor: string;
  link: string;
}

/** What a full link does with one more message. */
export type LinkPolicy = 'block' | 'drop-oldest';

/** One source → one sink edge of the graph, with its connection's settings. */
export interface LinkEdge {
  /** Name of the connection (YAML key) the edge comes from. */
  connection: string;
  from: Endpoint;
  to: Endpoint;
  /** Messages the edge holds before its policy applies. */
  capacity: number;
  policy: LinkPolicy;
  /** The transport the connection names (`transport: zmq`); absent: the pipeline's default. */
  transport?: string;
}

/**
 * Where actors run, when some run on other hosts: what a transport needs to put a link's sink
 * where its sources on other machines reach it.
 */
export interface LinkPlacement {
  /** The host an actor runs on (its `host:`); `undefined`: this machine. */
  hostOf(actor: string): string | undefined;
  /** The address sinks on `host` (`undefined`: this machine) listen on for peers on other hosts. */
  addressOf(host: string | undefined): string;
  /** A TCP port free now at the address of `host` (another host: this machine's ports the transport finds itself). */
  freePort(host: string): Promise<number>;
}

/** Every edge of the pipeline graph. */
export interface LinkGraph {
  edges: LinkEdge[];
  /** Present when actors run on other hosts (`host:`); absent: every actor is on this machine. */
  placement?: LinkPlacement;
}

/** A plain, structured-clonable description of one endpoint, rebuilt into a link in a worker. */
export interface LinkDescriptor {
  /** Import specifier or URL of the module exporting `openLink`. */
  module: string;
  /** `in`: the actor gets from it; `out`: the actor puts to it. */
  direction: 'in' | 'out';
  /** The actor and link name of this endpoint. */
  endpoint: Endpoint;
  /** Transport-specific data (shared buffers, addresses). */
  [key: string]: unknown;
}

/** The descriptors of every endpoint, by actor then link name. */
export interface LinkPlan {
  endpoints: Map<string, Map<string, LinkDescriptor>>;
}

/** Members both link directions share. */
interface LinkBase {
  /** The link name (`q_in`, `q_out`, ...). */
  readonly name: string;
  /**
   * Holds the link (the actor host does it on pause and stop): pending and later `get`/`put` calls
   * wait — a `get` takes no message, a `put` sends none and keeps its message — until
   * {@link release}. Nothing is rejected and nothing is lost: the step that awaits the call simply
   * goes on after `release`. `onHeld` is called whenever a call waits because of the hold (at once
   * when one already waits), so the host knows the actor is parked.
   */
  hold(onHeld: () => void): void;
  /** Ends {@link hold}: held calls go on, in the order they were made. */
  release(): void;
  /**
   * Closes the link. Pending and later `get` calls reject with `LinkClosedError`; a `put` still
   * waiting resolves without sending, and its message is reported to {@link LinkHooks.dropped}.
   * The link is closed when the call returns; a link that holds operating-system resources (e.g.
   * sockets) returns a promise that settles once they are released — await it before ending the
   * worker or process the link lives in.
   */
  close(): void | Promise<void>;
}

/** Why a link dropped a message. */
export type DropReason = 'drop-oldest' | 'sink-gone' | 'closed';

/** What the actor host passes to {@link OpenLink} beside the descriptor. */
export interface LinkHooks {
  /**
   * A message this endpoint sent, or was about to send, will never be read: `drop-oldest` made room
   * for a newer one, its only sink is gone, or the link closed with the `put` still waiting. The
   * host releases the store keys it carries. Called only where no other sink got the same message
   * (under fan-out another sink may still read the keys, so they are kept: see
   * {@link droppedForOneSink}).
   */
  dropped?(message: unknown, reason: DropReason): void;
  /**
   * A message one sink of a fan-out will never read while other sinks did or may (`drop-oldest` in
   * that sink's queue). Only reported when this hook is given (decoding costs): the host counts the
   * message out of the store's in-flight counts (`StoreClient.track`) when `store_eviction` is on.
   */
  droppedForOneSink?(message: unknown, reason: DropReason): void;
  /** A warning for the pipeline log (e.g. puts piling up because an `await` was forgotten). */
  warn?(message: string): void;
}

/** Options of {@link InputLink.get}. */
export interface GetOptions {
  /** Give up after this many milliseconds (≥ 0; 0: only a message that is already there). */
  timeoutMs?: number;
}

/** The receiving side of a link (`this.q_in`). */
export interface InputLink<T = unknown> extends LinkBase {
  readonly direction: 'in';
  /**
   * Waits for the next message. Uses no CPU while idle. Rejects with `LinkSourcesGoneError` once
   * every source of the link is gone (its actor failed or died) and no message is left. With
   * `timeoutMs`, rejects with `LinkTimeoutError` when no message came within that many
   * milliseconds (improv's `get(timeout=…)`); no message is taken then.
   */
  get(options?: GetOptions): Promise<T>;
  /** The next message, or `undefined` when none is waiting. Never waits. */
  tryGet(): T | undefined;
  /** Messages waiting to be read. */
  size(): number;
}

/** The sending side of a link (`this.q_out`). */
export interface OutputLink<T = unknown> extends LinkBase {
  readonly direction: 'out';
  /** How many sinks each message goes to (fan-out). */
  readonly sinks: number;
  /**
   * Sends `message` (anything msgpack can encode) to every sink. With the `block` policy, waits while
   * a sink is full. Throws `LinkMessageTooLargeError` for a message larger than the link can hold.
   */
  put(message: T): Promise<void>;
  /**
   * How many more messages `put` would send now without waiting, as far as the link knows (every
   * sink has room for them; `Infinity` where no sink makes a put wait, as under `drop-oldest`). The
   * actor host lets at most this many messages wait for one store flush. Optional: without it, each
   * message is flushed and sent on its own.
   */
  room?(): number;
  /**
   * Encodes `message` now, as `put` would, into what {@link putEncoded} sends later: the actor host
   * holds a message this way while it waits for a store flush (the actor may change what it sent
   * once its `put` resolved), which costs less than a copy when the link encodes messages anyway.
   * Throws what `put` would reject with for a message it cannot send. Optional, with `putEncoded`:
   * without them the host holds a `structuredClone` of the message.
   */
  encode?(message: T): unknown;
  /** Sends what this link's {@link encode} returned, exactly as `put` sends the message it encoded. */
  putEncoded?(encoded: unknown): Promise<void>;
  /**
   * Until {@link uncork}, what `put` and `putEncoded` send at once may be kept and sent together
   * (the actor host corks a link while it hands over a batch of messages that waited for a store
   * flush): a sink that reads several messages in one costs less per message. Order, credit and
   * what each `put` promises stay as they are. Optional, with `uncork`.
   */
  cork?(): void;
  /** Sends what was kept since {@link cork}. */
  uncork?(): void;
}

/** Either side of a link. */
export type Link<T = unknown> = InputLink<T> | OutputLink<T>;

/** What a transport module exports as `openLink` (a promise where opening takes I/O, e.g. binding a socket). */
export type OpenLink = (descriptor: LinkDescriptor, hooks?: LinkHooks) => Link | Promise<Link>;

/** One edge as its counters stand now (see {@link Transport.stats}). */
export interface LinkStats {
  connection: string;
  from: Endpoint;
  to: Endpoint;
  capacity: number;
  policy: LinkPolicy;
  /** Messages waiting to be read. */
  depth: number;
  /** Messages put into the edge since the plan. */
  sent: number;
  /**
   * Bytes of the messages put into the edge since the plan, as encoded for it (msgpack), counted by
   * the producer as it writes them, where the transport counts them cheaply (local and zmq do;
   * absent otherwise). A message dropped before it was written (its sink was gone) is not in it.
   */
  bytes?: number;
  /** Messages that will never be read: dropped by `drop-oldest`, for a gone sink, or left at quit. */
  dropped: number;
  /** True while the producer waits for room in this edge (it is full and the policy is `block`). */
  waiting: boolean;
}

/** Options of {@link Transport.detach}. */
export interface DetachOptions {
  /** The actor is restarted: its sinks are not told that it is gone, and what waits for it may be kept for it. */
  restarting?: boolean;
}

/** Messages taken out of an edge by {@link Transport.detach} or {@link Transport.drain}. */
export interface DrainedMessages {
  connection: string;
  from: Endpoint;
  to: Endpoint;
  messages: unknown[];
  /**
   * Messages dropped where they were, counted here but not in `messages` (see `where`).
   */
  droppedAtSource?: number;
  /**
   * Where the messages of `droppedAtSource` were: `source` (the default) — in the source's process,
   * which kept a copy of each until the sink read it and releases their store keys itself;
   * `on-the-way` — on their way to the sink or received and unread in it when the endpoints ended
   * (quit), gone with those processes.
   */
  where?: 'source' | 'on-the-way';
  /** False when the source also sent these messages to other sinks (fan-out): their keys must be kept. */
  sole: boolean;
}

/** A link implementation, as an embedding program passes it to `createNexus`. */
export interface Transport {
  /** Version of this contract the transport implements. */
  readonly specificationVersion: 1;
  /** Short name: `local`, `zmq`. */
  readonly name: string;
  /** Creates the links of a whole graph. Called once per pipeline run. */
  plan(graph: LinkGraph): Promise<LinkPlan>;
  /** The counters of every edge of the current plan, read without disturbing the links. */
  stats(): LinkStats[];
  /**
   * `actor` is gone (failed, or its worker died or was ended): edges into it stop holding their
   * producers back (what is sent to it from now on is dropped and counted), edges out of it no
   * longer say their producer waits for room (a put it waited in is gone with it) and are
   * marked ended (a sink whose every source is gone gets `LinkSourcesGoneError` once it has read
   * what is left), and the messages that were waiting for it are taken out and returned.
   * With `restarting`, the actor will be started again: edges out of it are not marked ended (its
   * sinks wait for it as for a slow source), and a transport that can keep what waits for it until
   * it is back does so (local rings: its producers wait while its ring is full); one that cannot
   * (zmq: the messages were in the dead process) detaches edges into it as above.
   */
  detach(actor: string, options?: DetachOptions): DrainedMessages[];
  /** Takes out every message still waiting in any edge (after every actor ended, on quit). */
  drain(): DrainedMessages[];
  /** Frees what {@link plan} created. */
  close(): Promise<void>;
}
