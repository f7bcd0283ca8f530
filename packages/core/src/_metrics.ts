/**
 * What `nexus.metrics()` returns (package-private; Nexus owns one and delegates to it, as it does
 * with the link monitor). The counters live next to what they count — steps and errors in each
 * actor host, messages and bytes in the links' shared memory — and the hosts report what they
 * measure (step times, latency, load) with their counters, at most twice a second. This module only
 * aggregates: it samples `status()` (cheap: it reads shared counters) and the store's usage on an
 * unref'd timer, and computes the rates from successive samples over about a second, so reading
 * the metrics costs nothing however often a client asks.
 * @module
 */
import type { HostChannel } from './_host-channels.ts';
import type { ActorMetrics, LinkMetrics, Percentiles, PipelineMetrics, PipelineStatus } from './nexus-api.ts';
import type { StoreClient, StoreUsage } from './store/driver.ts';
import type { CountersMessage } from './worker/protocol.ts';

/** How often the counters and the store are sampled. */
export const SAMPLE_EVERY_MS = 500;
/** Rates span this much time (the oldest sample kept is about this old). */
const RATE_WINDOW_MS = 1000;

/** What the meter needs from Nexus. */
export interface PipelineMeterOptions {
  /** The pipeline's status now (actors' counters and every edge's, from the transport). */
  status: () => PipelineStatus;
  /** The store client of Nexus, for `usage()`. */
  store: () => StoreClient | undefined;
  /** The store driver's name, shown with its usage. */
  storeDriver: () => string | undefined;
  /** Whether to sample on a timer (`createNexus({ metrics })`); false: only when metrics are read. */
  sampling: boolean;
  everyMs?: number;
}

/** What an actor's host reported last (each field from the last report that had it). */
interface Reported {
  stepMs?: Percentiles;
  latencyMs?: Record<string, Percentiles>;
  elu?: number;
  cpu?: number;
  heapBytes?: number;
}

/** Samples of one counter series: `[time, ...values]`, oldest first. */
class Series {
  readonly #samples: number[][] = [];
  readonly #keep: number;

  constructor(keep: number) {
    this.#keep = keep;
  }

  push(time: number, values: number[]): void {
    this.#samples.push([time, ...values]);
    if (this.#samples.length > this.#keep) this.#samples.shift();
  }

  /** Per-second rate of value `index` from the oldest sample to the newest; 0 with fewer than two (or after a reset). */
  rate(index: number): number {
    const first = this.#samples[0];
    const last = this.#samples[this.#samples.length - 1];
    if (first === undefined || last === undefined || last === first) return 0;
    const seconds = (last[0]! - first[0]!) / 1000;
    if (!(seconds > 0)) return 0;
    return round2(Math.max(0, last[index + 1]! - first[index + 1]!) / seconds);
  }

  /** Whether value `index` was there in the newest sample and the oldest (bytes are where the transport counts them). */
  has(index: number): boolean {
    const first = this.#samples[0];
    const last = this.#samples[this.#samples.length - 1];
    return (
      first !== undefined && last !== undefined && !Number.isNaN(first[index + 1]) && !Number.isNaN(last[index + 1])
    );
  }
}

const edgeKey = (edge: {
  connection: string;
  from: { actor: string; link: string };
  to: { actor: string; link: string };
}) => `${edge.connection}|${edge.from.actor}.${edge.from.link}|${edge.to.actor}.${edge.to.link}`;

const gone = (state: string) => state === 'failed' || state === 'exited';

/** Nexus's meter: samples, keeps what hosts report, and assembles {@link PipelineMetrics}. */
export class PipelineMeter {
  readonly #options: PipelineMeterOptions;
  readonly #everyMs: number;
  readonly #actors = new Map<string, Series>();
  readonly #edges = new Map<string, Series>();
  readonly #reported = new Map<string, Reported>();
  #store: (StoreUsage & { driver: string }) | undefined;
  #usagePending = false;
  #lastSample = Number.NEGATIVE_INFINITY;
  #timer: ReturnType<typeof setInterval> | undefined;
  /** How Nexus's host channels reach it (`_host-channels.ts`): counters reports, and hosts that start. */
  readonly channel: HostChannel<CountersMessage> = {
    record: (actor, message) => this.reported(actor, message),
    actorStarted: (actor) => this.actorStarted(actor),
  };

  constructor(options: PipelineMeterOptions) {
    this.#options = options;
    this.#everyMs = options.everyMs ?? SAMPLE_EVERY_MS;
  }

  /** Starts sampling (when `sampling`); the timer keeps no process alive. */
  start(): void {
    if (!this.#options.sampling || this.#timer !== undefined) return;
    this.sample();
    this.#timer = setInterval(() => this.sample(), this.#everyMs);
    (this.#timer as { unref?: () => void }).unref?.();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** An actor's host reported its counters and what it measured. */
  reported(actor: string, message: CountersMessage): void {
    let reported = this.#reported.get(actor);
    if (reported === undefined) {
      reported = {};
      this.#reported.set(actor, reported);
    }
    if (message.stepMs !== undefined) reported.stepMs = message.stepMs;
    if (message.latencyMs !== undefined) reported.latencyMs = { ...reported.latencyMs, ...message.latencyMs };
    if (message.elu !== undefined) reported.elu = message.elu;
    if (message.cpu !== undefined) reported.cpu = message.cpu;
    if (message.heapBytes !== undefined) reported.heapBytes = message.heapBytes;
  }

  /** An actor (re)started: what its previous host reported no longer applies. */
  actorStarted(actor: string): void {
    this.#reported.delete(actor);
  }

  /** One sample of every counter (and, when sampling, a look at the store's usage). */
  sample(status: PipelineStatus = this.#options.status()): void {
    const now = performance.now();
    this.#lastSample = now;
    // Samples spanning the rate window when sampling; the previous read and this one otherwise.
    const keep = this.#options.sampling ? Math.round(RATE_WINDOW_MS / this.#everyMs) + 1 : 2;
    for (const actor of status.actors) series(this.#actors, actor.name, keep).push(now, [actor.steps, actor.errors]);
    for (const edge of status.links) {
      series(this.#edges, edgeKey(edge), keep).push(now, [edge.sent, edge.dropped, edge.bytes ?? Number.NaN]);
    }
    if (this.#options.sampling) this.#sampleStore();
  }

  /** Everything measured, now: `status` with rates, step times, load and latency, and the store's usage. */
  metrics(status: PipelineStatus = this.#options.status()): PipelineMetrics {
    // Without the timer, every read is a sample (reads in quick succession share the last one).
    if (!this.#options.sampling && performance.now() - this.#lastSample >= this.#everyMs / 2) this.sample(status);
    const actors = status.actors.map((actor): ActorMetrics => {
      const rates = this.#actors.get(actor.name);
      const metrics: ActorMetrics = {
        ...actor,
        stepsPerSecond: rates?.rate(0) ?? 0,
        errorsPerSecond: rates?.rate(1) ?? 0,
      };
      const reported = this.#reported.get(actor.name);
      if (reported?.stepMs !== undefined) metrics.stepMs = { ...reported.stepMs };
      // Load is of a running worker or process: none for one that is gone.
      if (reported !== undefined && !gone(actor.state)) {
        if (reported.elu !== undefined) metrics.elu = reported.elu;
        if (reported.cpu !== undefined) metrics.cpu = reported.cpu;
        if (reported.heapBytes !== undefined) metrics.heapBytes = reported.heapBytes;
      }
      return metrics;
    });
    const links = status.links.map((edge): LinkMetrics => {
      const rates = this.#edges.get(edgeKey(edge));
      const metrics: LinkMetrics = {
        ...edge,
        messagesPerSecond: rates?.rate(0) ?? 0,
        droppedPerSecond: rates?.rate(1) ?? 0,
      };
      if (edge.bytes !== undefined) metrics.bytesPerSecond = rates?.has(2) ? rates.rate(2) : 0;
      const latency = this.#reported.get(edge.to.actor)?.latencyMs?.[edge.to.link];
      if (latency !== undefined) metrics.latencyMs = { ...latency };
      return metrics;
    });
    const result: PipelineMetrics = { time: Date.now(), state: status.state, actors, links };
    if (this.#store !== undefined) result.store = { ...this.#store };
    return result;
  }

  /** Asks the store for its usage, one request at a time (a network store answers later). */
  #sampleStore(): void {
    if (this.#usagePending) return;
    const store = this.#options.store();
    if (store === undefined) return;
    this.#usagePending = true;
    let usage: Promise<StoreUsage>;
    try {
      usage = store.usage();
    } catch {
      this.#usagePending = false;
      return;
    }
    usage.then(
      (value) => {
        this.#usagePending = false;
        if (this.#timer === undefined) return;
        const driver = this.#options.storeDriver() ?? 'unknown';
        this.#store = {
          usedBytes: value.usedBytes,
          capacityBytes: value.capacityBytes,
          objects: value.objects,
          driver,
        };
      },
      () => {
        // A store that cannot say now (closing, unreachable) keeps its last figures.
        this.#usagePending = false;
      },
    );
  }
}

function series(map: Map<string, Series>, key: string, keep: number): Series {
  let found = map.get(key);
  if (found === undefined) {
    found = new Series(keep);
    map.set(key, found);
  }
  return found;
}

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}
