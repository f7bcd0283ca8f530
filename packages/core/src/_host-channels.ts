/**
 * The line between Nexus's features and every actor host (package-private, beside Nexus). Taps
 * (`_taps.ts`), published values (`_published.ts`) and the metrics (`_metrics.ts`) each tell the
 * hosts something and hear back from them over the control channel: Nexus owns one
 * {@link HostChannels}, adds each feature to it, and only hands it what the hosts report and the
 * news that a host started (each feature tells the new host again what it asked of the old one).
 * {@link Listeners} is the feature's half: it delivers what hosts report to the feature's listeners.
 *
 * @example
 * ```ts
 * const channels = new HostChannels({ send: (actor, message) => post(actor, message), warn });
 * const published = channels.add('published', new PublishedValues({ ...channels.line, actors }));
 * // worker.onMessage:
 * if (channels.deliver(actor, message)) return;
 * // a host (re)started:
 * channels.actorStarted(actor);
 * ```
 * @module
 */
import type { FromWorker, ToWorker } from './worker/protocol.ts';

/** What a feature posts to hosts: a request it turns on and off (`tap`, `publish`). */
export type HostRequest = Extract<ToWorker, { on: boolean }>;

/** What a host reports for a feature (not its state, log records or acknowledgements, which are Nexus's). */
export type HostReport = Extract<FromWorker, { type: 'counters' | 'tap' | 'published' }>;

/** The types of {@link HostReport} (a record, so that the compiler sees every one listed). */
const REPORTS: Readonly<Record<HostReport['type'], true>> = { counters: true, tap: true, published: true };

/** How a feature reaches the hosts (with the requests it makes) and says what went wrong. */
export interface HostLine<Request extends HostRequest = HostRequest> {
  /** Posts a request to an actor's host (ignored while the actor has none). */
  send: (actor: string, message: Request) => void;
  /** Says something at warn level in the pipeline's log (a listener threw). */
  warn: (message: string) => void;
}

/** A feature that hears from every actor host. */
export interface HostChannel<Report extends HostReport> {
  /** A host reported. */
  record(actor: string, report: Report): void;
  /** An actor's host (re)started: what the previous one was told or reported no longer holds. */
  actorStarted(actor: string): void;
  /** The pipeline quit: nothing is delivered any more. */
  close?(): void;
}

/** Nexus's features that talk with the actor hosts, each taking the host reports of one type. */
export class HostChannels {
  /** What each feature is given to reach the hosts. */
  readonly line: HostLine;
  readonly #channels = new Map<HostReport['type'], HostChannel<HostReport>>();

  constructor(line: HostLine) {
    this.line = line;
  }

  /** Adds the feature that takes the host reports of `type`; returns it. */
  add<Type extends HostReport['type'], Channel extends HostChannel<Extract<HostReport, { type: Type }>>>(
    type: Type,
    channel: Channel,
  ): Channel {
    this.#channels.set(type, channel as HostChannel<HostReport>);
    return channel;
  }

  /**
   * Hands a report of `actor`'s host to its feature: true for every {@link HostReport} (dropped
   * while its feature is not there yet), false for a message that is Nexus's own.
   */
  deliver(actor: string, message: FromWorker): message is HostReport {
    if (!Object.hasOwn(REPORTS, message.type)) return false;
    const report = message as HostReport;
    this.#channels.get(report.type)?.record(actor, report);
    return true;
  }

  /** An actor's host (re)started: every feature hears it, in the order they were added. */
  actorStarted(actor: string): void {
    for (const channel of this.#channels.values()) channel.actorStarted(actor);
  }

  /** The pipeline quit: every feature is closed, in the order they were added. */
  close(): void {
    for (const channel of this.#channels.values()) channel.close?.();
  }
}

/**
 * The listeners of what hosts report, for one thing watched. Each listener given is an entry of
 * its own (the same function given twice listens twice); one that throws is said once and the
 * others still hear.
 */
export class Listeners<T> {
  readonly #warn: HostLine['warn'];
  /** What is listened to, for the warning: `the tap on "frames"`, `watchPublished()`. */
  readonly #what: string;
  readonly #entries = new Set<(value: T) => void>();

  constructor(warn: HostLine['warn'], what: string) {
    this.#warn = warn;
    this.#what = what;
  }

  get size(): number {
    return this.#entries.size;
  }

  /**
   * Adds `listener`; returns the function that removes it (safe to call more than once), which then
   * calls `removed` (after the removal, so {@link size} counts the rest).
   */
  add(listener: (value: T) => void, removed: () => void): () => void {
    let warned = false;
    const entry = (value: T) => {
      try {
        listener(value);
      } catch (error) {
        if (warned) return;
        warned = true;
        this.#warn(
          `a listener of ${this.#what} threw (said once): ${error instanceof Error ? error.message : String(error)}`,
        );
      }
    };
    this.#entries.add(entry);
    let open = true;
    return () => {
      if (!open) return;
      open = false;
      this.#entries.delete(entry);
      removed();
    };
  }

  /** Delivers `value` to every listener there is now. */
  emit(value: T): void {
    for (const entry of [...this.#entries]) entry(value);
  }

  /** Removes every listener (the pipeline quit). */
  clear(): void {
    this.#entries.clear();
  }
}
