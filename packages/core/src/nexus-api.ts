/**
 * The contract of Nexus as an embedding program sees it: the options of `createNexus`, the
 * `Nexus` it returns, and what that reports (`status()`, events). The implementation is
 * `nexus.ts`.
 * @module
 */
import type { PipelineConfig, StoreName } from './config/types.ts';
import type { SerializedError } from './errors.ts';
import type { AgentConnector } from './hosts.ts';
import type { TransportChoice } from './link/combine.ts';
import type { HostLinkOptions } from './link/host.ts';
import type { LinkStatus } from './link/monitor.ts';
import type { InputLink, OutputLink } from './link/transport.ts';
import type { LogRecord } from './log.ts';
import type { RuntimeAdapter } from './runtime/adapter.ts';
import type { ActorState, PipelineState, Signal } from './signals.ts';
import type { StoreChoice } from './store/_open.ts';
import type { StoreClient, StoreUsage } from './store/driver.ts';

/** Options of {@link createNexus}. */
export interface NexusOptions {
  /** Path of a pipeline YAML file, or the same content as an object. */
  config: string | Record<string, unknown>;
  /**
   * The store driver (e.g. `createMemoryStore()` from `@improv/store`), or a function that picks one
   * from the pipeline's `settings.store` (what the CLI does; `createLmdbStore` and `createRedisStore`
   * come from `@improv/store/lmdb` and `/redis`).
   */
  store: StoreChoice;
  /**
   * The link transport (e.g. `createLocalTransport()` from `@improv/transport-local`); several to mix
   * them per connection (`transport: zmq` on a connection; the first is the default unless
   * `settings.transport` names another); or a function that makes them from the pipeline's
   * `settings.transport` and `settings.zmq`, the default first (what the CLI does).
   */
  transport: TransportChoice;
  /** The runtime adapter; default: the one for the runtime this runs in. */
  runtime?: RuntimeAdapter;
  /** Folder that relative `package` paths of an object config resolve from; default: the working directory. */
  baseDir?: string;
  /**
   * Folder for this run's files (the log `improv.log`). Default: `runs/<pipeline>-<date>-<time>` in
   * the working directory. `false`: write no files.
   */
  runDir?: string | false;
  /**
   * Quit cleanly on SIGINT/SIGTERM/SIGHUP (a second SIGINT or SIGTERM ends the workers at once; a
   * second SIGHUP does not: one closed terminal sends several). Default: true.
   */
  handleSignals?: boolean;
  /** Receives every event from the very start (loading included); `nexus.on()` only sees later ones. */
  onEvent?: (event: NexusEvent) => void;
  /** How long quit waits for an actor to finish `stop()` and end before its worker is terminated. Default 10 000 ms. */
  quitTimeoutMs?: number;
  /** How long a producer may wait for room in a full link before a warning names it. Default 5000 ms. */
  linkWarningMs?: number;
  /**
   * Links of this program itself, to feed data into the pipeline and read results out
   * (`nexus.output(endpoint)`, `nexus.input(endpoint)`): `inputs` are actors' output endpoints it
   * reads (`'Processor.q_out'`), `outputs` actors' input endpoints it writes into (`'Processor.q_in'`).
   */
  host?: HostLinkOptions;
  /**
   * Reaches the `improv agent` of each host in `hosts:` that an actor's `host:` names
   * (`connectAgent` from `@improv/transport-zmq/agent`; the CLI passes it). Needed only by such pipelines.
   */
  agents?: AgentConnector;
  /** Every host of `hosts:` is this machine: actors with `host:` run in processes of their own here (`--hosts local`). */
  hostsLocal?: boolean;
  /**
   * The store the pipeline uses whatever `settings.store` says (`--store`): `store` is called with
   * settings that name it, and an actor that cannot reach it is a config error at that actor.
   */
  storeOverride?: StoreName;
  /**
   * Measure as the pipeline runs (default true): every actor host times its `runStep()` calls,
   * samples the latency of messages that carry `t`, and reads its load (event-loop utilisation, CPU,
   * heap) twice a second; Nexus samples the counters of every actor, edge and the store twice a
   * second for {@link Nexus.metrics}. `false` turns all of that off (the bench measures what it
   * costs): `metrics()` then gives the counters (steps, errors, messages, bytes), rates between
   * the counters as they stood at two successive `metrics()` calls at least a quarter of a second
   * apart (0 until there are two), and none of `stepMs`, `elu`, `cpu`, `heapBytes`, `latencyMs` or
   * `store`. Taps work either way.
   */
  metrics?: boolean;
}

/** One actor as Nexus sees it. */
export interface ActorStatus {
  name: string;
  state: ActorState;
  /** Why it failed, when it did. */
  error?: SerializedError;
  /** runStep() calls that returned, and that threw (reported twice a second). */
  steps: number;
  errors: number;
  /** Set for an actor in an OS process of its own: its runtime, process id, and host when not this machine. */
  process?: { runtime: string; pid: number; host?: string };
  /** Times it was restarted (by its policy or `revive`) in this run. */
  restarts: number;
}

/** The whole pipeline as Nexus sees it. */
export interface PipelineStatus {
  state: PipelineState;
  actors: ActorStatus[];
  /** Every edge of the graph: messages waiting, sent, dropped, and whether its producer waits for room. */
  links: LinkStatus[];
}

/** p50 and p99 of a duration, in milliseconds, over the last reporting window. */
export interface Percentiles {
  p50: number;
  p99: number;
}

/**
 * One actor's metrics: its status, plus rates and costs measured over the last second or so. The
 * costs are measured by the actor's own host (the TypeScript host, or the Python one) and reported
 * with its counters, at most twice a second; what a runtime cannot measure is absent, never 0.
 */
export interface ActorMetrics extends ActorStatus {
  /** runStep() calls that returned per second, over the last second or so (from Nexus's samples of `steps`). */
  stepsPerSecond: number;
  /** runStep() calls that threw per second, likewise. */
  errorsPerSecond: number;
  /**
   * Time in runStep() (from the call to the settling of what it returned), over the last reporting
   * window (half a second) in which a step ended: a step that waits in `get()` counts its wait. Every
   * step is timed while an actor makes up to about 1000 steps a second; above that, a random sample
   * of about 1000 a second (a clock read costs as much as a fast step). From a log-scaled
   * histogram: each figure is within ±7% (below 16 µs: within 1 µs). Absent before the first step
   * ends, and with `metrics: false`.
   */
  stepMs?: Percentiles;
  /**
   * Event-loop utilisation of its worker or process over the last reporting window, 0..1: the share
   * of the time its event loop was not idle (`performance.eventLoopUtilization()`). Node has it for
   * workers and processes; Bun's and Deno's eventLoopUtilization() always report zero, so it is absent there.
   * For a Python actor: the share of the time its host was not waiting in its poll (steps, link
   * calls that did not wait, the control channel).
   */
  elu?: number;
  /**
   * CPU time over the last reporting window, in cores (1 = one core busy): of its own OS process
   * (every thread: `process.cpuUsage()`; Python: `time.process_time()`), or, for a worker, of the
   * worker's own thread where the runtime tells it (`process.threadCpuUsage()`: Bun, Deno — to
   * 10 ms a reading there — and Node ≥ 23.9). Absent for a worker on Node 20 and 22, which share
   * the process and cannot tell their own part.
   */
  cpu?: number;
  /**
   * Bytes of JavaScript heap in use by its own isolate (`process.memoryUsage().heapUsed`, which is
   * per worker on Node, Bun and Deno alike). For a Python actor, the resident set size of its
   * process (`/proc/self/statm`; `resource.getrusage` peak RSS where there is no /proc), since
   * Python has no cheap count of its heap.
   */
  heapBytes?: number;
}

/** One edge's metrics: its status (with `bytes` where the transport counts them), plus rates and latency. */
export interface LinkMetrics extends LinkStatus {
  /** Messages put per second, over the last second or so (from Nexus's samples of `sent`). */
  messagesPerSecond: number;
  /** Encoded bytes put per second, likewise; absent where the transport does not count bytes. */
  bytesPerSecond?: number;
  /** Drops per second, likewise. */
  droppedPerSecond: number;
  /**
   * Time from send to read, for messages that carry their send time: an object with a numeric `t`
   * in milliseconds since the Unix epoch, as `Date.now()` gives (a `t` more than an hour from the
   * reader's clock is taken for another clock and ignored). The sink's host samples at most one
   * message every 5 ms as the actor reads it and reports p50/p99 over its last reporting window
   * with messages; resolution 1 ms with `Date.now()` stamps, and across hosts it is only as good
   * as their clocks agree (negative differences count as 0). Measured per sink link: for a sink fed
   * by several sources (fan-in) every edge into it shows the link's figures. Absent for edges into
   * the embedding program (`host: inputs`), and with `metrics: false`.
   */
  latencyMs?: Percentiles;
}

/** Everything Nexus measures, at one moment: what the control server, TUI and dashboard show. */
export interface PipelineMetrics {
  /** When this was taken, in milliseconds since the Unix epoch. */
  time: number;
  state: PipelineState;
  actors: ActorMetrics[];
  links: LinkMetrics[];
  /** The store's use as last sampled (absent until the first sample, or when it cannot say). */
  store?: StoreUsage & { driver: string };
}

/** One message seen on a tapped connection, summarised (never the data itself). */
/**
 * Numbers an actor published under one name since the last delivery (`this.publish(name, 3.2)` or
 * `this.publish(name, { dff: 0.4, spikes: 2 })`): every point is kept, none is dropped for speed (up
 * to {@link PUBLISH_SERIES_LIMIT} a delivery; past that the oldest go and `skipped` counts them).
 */
export interface PublishedSeries {
  kind: 'series';
  /** When each point was published, in milliseconds since the Unix epoch. */
  times: number[];
  /**
   * By field name, one value per time (`value` for plain numbers); `null` where a point lacked the
   * field (a published NaN stays NaN).
   */
  values: Record<string, (number | null)[]>;
  /** Points published and not delivered (more than {@link PUBLISH_SERIES_LIMIT} in one delivery). */
  skipped: number;
}

/**
 * The newest of other values (typed arrays, `{ array, shape }` frames, `{ x, y }`, text): only the
 * latest is delivered, at most ~60 times a second; `skipped` counts those replaced before delivery.
 */
export interface PublishedLatest {
  kind: 'latest';
  /** When it was published, in milliseconds since the Unix epoch. */
  time: number;
  /** A copy taken at `publish` (a zero-copy store view may be freed after the step). */
  value: unknown;
  skipped: number;
}

/** An actor's host delivers what it published at most this often (~60 a second: as often as a page draws). */
export const PUBLISH_EVERY_MS = 16;

/** Points published since the last delivery that one delivery carries at most. */
export const PUBLISH_SERIES_LIMIT = 10_000;

/** What `nexus.watchPublished()` listeners get: one actor's stream of `this.publish(name, ...)`. */
export interface Published {
  actor: string;
  name: string;
  data: PublishedSeries | PublishedLatest;
}

export interface TapRecord {
  /** When it was read, in milliseconds since the Unix epoch. */
  time: number;
  connection: string;
  /**
   * `Actor.link` of the producer and of the consumer. Messages are summarised where they are read,
   * and a sink cannot tell which of several sources (fan-in) sent one: then `from` lists them all,
   * comma-separated.
   */
  from: string;
  to: string;
  /**
   * The message summarised in one line of at most 200 characters: fields one level deep, typed
   * arrays as their class and length (`Float32Array[262144]`, or `[512×512]` when a sibling `shape`
   * field says so), store keys marked `(store key)`, numbers, and strings cut at 24 characters, e.g.
   * `{ key: "m1b2c3.4" (store key), t: 1733312345678, frame: Float32Array[512×512] }`.
   */
  summary: string;
  /** Messages on this edge since the last record that were not summarised (the tap samples at most ~20 a second). */
  skipped: number;
}

/** What Nexus reports as it happens. */
export type NexusEvent =
  | { type: 'actor-state'; actor: string; state: ActorState; previous: ActorState; error?: SerializedError }
  | { type: 'pipeline-state'; state: PipelineState; previous: PipelineState }
  | { type: 'log'; record: LogRecord };

/** Options of {@link Nexus.command} and {@link Nexus.revive}. */
export interface CommandOptions {
  /** Who gave the command (`prompt`, `script`, `client 2`), for the run log, which records every command, its result and every refusal. */
  by?: string;
}

/** A running pipeline. */
export interface Nexus {
  /** The validated pipeline. */
  readonly config: PipelineConfig;
  /** The run folder, when files are written. */
  readonly runDir: string | undefined;
  /** A store client for the program that embeds Nexus (read actors' results, feed data). */
  readonly store: StoreClient;
  /** Resolves once the pipeline has quit and every worker has ended. */
  readonly closed: Promise<void>;
  /** The state of the pipeline and of every actor. */
  status(): PipelineStatus;
  /**
   * Every actor's and every edge's counters, rates, step times, load and latency, and the store's
   * use. Cheap: it reads counters Nexus keeps anyway (sampled a few times a second); call it as often as you like.
   */
  metrics(): PipelineMetrics;
  /**
   * Watches the messages of `connection` (its YAML name, as in `LinkStats.connection`) as they pass:
   * `listener` gets each one summarised (sampled to ~20 a second; the rest are counted in `skipped`).
   * Returns the function that stops the tap. Throws `CommandRefusedError` for an unknown connection
   * (naming the ones there are). Nothing is summarised while no tap is on.
   */
  tap(connection: string, listener: (record: TapRecord) => void): () => void;
  /**
   * Receives what actors send with `this.publish(name, value)` (the dashboard's plots). Nothing is
   * kept or sent while nobody watches: `publish` then returns at once. While one listener or more
   * watch, each actor's host delivers numbers in batches and other values newest-only, at most ~60
   * times a second per name. Returns the function that stops watching.
   */
  watchPublished(listener: (published: Published) => void): () => void;
  /** Calls every actor's `setup()`. Rejects with `ActorFailedError` if one throws. */
  setup(): Promise<void>;
  /** Starts the run. Refused (`CommandRefusedError`) unless every actor is ready (or stopped). */
  run(): Promise<void>;
  pause(): Promise<void>;
  resume(): Promise<void>;
  /** Ends the run; every actor's `stop()` runs once. `run` starts again. */
  stop(): Promise<void>;
  /** Stops if needed, ends every worker, frees store and links. Safe to call more than once. */
  quit(): Promise<void>;
  /**
   * This program's link reading what an actor puts on `endpoint` (`'Processor.q_out'`), declared in
   * `createNexus({ host: { inputs } })`. `get()` waits for the next message; it rejects with
   * `LinkClosedError` once the pipeline has quit.
   */
  input<T = unknown>(endpoint: string): InputLink<T>;
  /**
   * This program's link into an actor's input `endpoint` (`'Processor.q_in'`), declared in
   * `createNexus({ host: { outputs } })`. `put()` waits while the link is full (policy `block`).
   */
  output<T = unknown>(endpoint: string): OutputLink<T>;
  /**
   * Starts a failed or ended actor again at once (improv's `revive`): its links are opened again
   * and it is brought to the pipeline's state. Refused (`CommandRefusedError`) for an actor that is
   * not failed or exited, or is restarting already.
   */
  revive(actor: string, options?: CommandOptions): Promise<void>;
  /** Gives a command by name (what the CLI uses). */
  command(name: Signal, options?: CommandOptions): Promise<void>;
  /** Subscribes to events; returns the function that unsubscribes. */
  on(listener: (event: NexusEvent) => void): () => void;
  /** Events from now on, as an async iterable; it ends when the pipeline has quit. */
  events(): AsyncIterableIterator<NexusEvent>;
}
