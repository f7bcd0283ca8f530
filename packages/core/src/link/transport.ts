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
}

/** Every edge of the pipeline graph. */
export interface LinkGraph {
  edges: LinkEdge[];
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
   * Rejects every pending `get`/`put` with `reason`, and every later call that would have to wait,
   * until {@link clearInterrupt}. Calls that need not wait (a message is there, there is room) still
   * succeed. Used by the actor host on pause, stop and quit, so a signal is acted on even while
   * `runStep` awaits — and even when `runStep` only starts to wait after the signal came.
   */
  interrupt(reason: Error): void;
  /** Ends {@link interrupt}: calls wait as usual again. */
  clearInterrupt(): void;
  /** Closes the link: pending and later calls reject with `LinkClosedError`. */
  close(): void;
}

/** The receiving side of a link (`this.q_in`). */
export interface InputLink<T = unknown> extends LinkBase {
  readonly direction: 'in';
  /** Waits for the next message. Uses no CPU while idle. */
  get(): Promise<T>;
  /** The next message, or `undefined` when none is waiting. Never waits. */
  tryGet(): T | undefined;
  /** Messages waiting to be read. */
  size(): number;
}

/** The sending side of a link (`this.q_out`). */
export interface OutputLink<T = unknown> extends LinkBase {
  readonly direction: 'out';
  /**
   * Sends `message` (anything msgpack can encode) to every sink. With the `block` policy, waits while
   * a sink is full. Throws `LinkMessageTooLargeError` for a message larger than the link can hold.
   */
  put(message: T): Promise<void>;
}

/** Either side of a link. */
export type Link<T = unknown> = InputLink<T> | OutputLink<T>;

/** What a transport module exports as `openLink`. */
export type OpenLink = (descriptor: LinkDescriptor) => Link;

/** A link implementation, as an embedding program passes it to `createNexus`. */
export interface Transport {
  /** Version of this contract the transport implements. */
  readonly specificationVersion: 1;
  /** Short name: `local`, `zmq`. */
  readonly name: string;
  /** Creates the links of a whole graph. Called once per pipeline run. */
  plan(graph: LinkGraph): Promise<LinkPlan>;
  /** Frees what {@link plan} created. */
  close(): Promise<void>;
}
