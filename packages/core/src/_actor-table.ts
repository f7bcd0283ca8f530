/**
 * The actors of a running pipeline as Nexus keeps them (package-private): an entry per actor — its
 * state, worker, control words, counters and why it failed — and the bookkeeping of what passes
 * between Nexus and each actor's host: a signal sent (counted in the control words, timed for the
 * debug log), what the host says back (acknowledgements, counters, state changes, failures), and
 * each state change as an event and a debug line. Nexus decides what to do about a failure (the
 * supervisor, restarts); this module keeps the entries straight and says what happened.
 * @module
 */
import { msSince } from './_debug-log.ts';
import type { HostReport } from './_host-channels.ts';
import type { Ending } from './_restarts.ts';
import { describeError, type SerializedError } from './errors.ts';
import type { LogLevel, LogRecord } from './log.ts';
import type { NexusEvent } from './nexus-api.ts';
import type { WorkerHandle } from './runtime/adapter.ts';
import type { ActorState, Signal } from './signals.ts';
import type { OpenStore } from './store/driver.ts';
import { stackPlace } from './worker/_error-log.ts';
import { CONTROL_BYTES, CONTROL_SIGNALS, type FromWorker, type ToWorker } from './worker/protocol.ts';

export interface ActorEntry {
  name: string;
  state: ActorState;
  error?: SerializedError;
  worker: WorkerHandle | undefined;
  control: Int32Array;
  /** The owner id of the worker's store client, for recovery when the worker dies. */
  storeOwner?: number;
  steps: number;
  errors: number;
  /** The last signal the worker acknowledged before acting on it fully (stop: parked, stop() runs). */
  acked: Signal | undefined;
  /** When its worker or process was asked for (`performance.now()`), for the debug log. */
  startedAt: number;
  /** The last signal sent to it and when, for the debug log's timings. */
  signalled?: { signal: Signal; at: number };
  exited: Promise<void>;
  markExited: () => void;
}

export interface ActorTableOptions {
  log(level: LogLevel, message: string, ...details: unknown[]): void;
  /** A log record an actor's host sent. */
  record(record: LogRecord): void;
  emit(event: NexusEvent): void;
  /** Something Nexus may be waiting for changed (a state, an acknowledgement). */
  changed(): void;
  /** Counters, tap records and published values go to the features that asked; true when one took it. */
  deliver(actor: string, message: FromWorker): message is HostReport;
  /** The actor failed in its host (loading, setup, runStep with on_error: fail). */
  gone(entry: ActorEntry, ending: Ending): void;
  /** The pipeline's store, to recover what a dead worker's client held. */
  store(): OpenStore | undefined;
}

export class ActorTable {
  readonly #entries = new Map<string, ActorEntry>();
  readonly #options: ActorTableOptions;
  /** Store recoveries under way (a driver's recovery may be a call to its server): quit awaits them. */
  readonly #recoveries = new Set<Promise<void>>();

  constructor(options: ActorTableOptions) {
    this.#options = options;
  }

  get(name: string): ActorEntry | undefined {
    return this.#entries.get(name);
  }

  values(): IterableIterator<ActorEntry> {
    return this.#entries.values();
  }

  keys(): IterableIterator<string> {
    return this.#entries.keys();
  }

  /** A new entry for `name`, starting (it replaces the entry of an earlier incarnation). */
  add(name: string): ActorEntry {
    let markExited!: () => void;
    const entry: ActorEntry = {
      name,
      state: 'starting',
      worker: undefined,
      control: new Int32Array(new SharedArrayBuffer(CONTROL_BYTES)),
      acked: undefined,
      startedAt: performance.now(),
      steps: 0,
      errors: 0,
      exited: new Promise((resolve) => {
        markExited = resolve;
      }),
      markExited: () => markExited(),
    };
    this.#entries.set(name, entry);
    return entry;
  }

  failedActors(): ActorEntry[] {
    return [...this.#entries.values()].filter((entry) => entry.state === 'failed');
  }

  send(entry: ActorEntry, message: ToWorker): void {
    if (message.type === 'signal') {
      Atomics.add(entry.control, CONTROL_SIGNALS, 1);
      entry.signalled = { signal: message.signal, at: performance.now() };
      this.#options.log('debug', `signal ${message.signal} → ${entry.name}`);
    }
    entry.worker?.postMessage(message);
  }

  /** What an actor's host says. */
  receive(entry: ActorEntry, message: FromWorker): void {
    if (message.type === 'log') {
      this.#options.record(message.record);
      return;
    }
    if (message.type === 'store-owner') {
      entry.storeOwner = message.ownerId;
      return;
    }
    if (message.type === 'ack') {
      entry.acked = message.signal;
      this.#options.log('debug', `actor "${entry.name}" acknowledged ${message.signal}${afterSignal(entry)}`);
      this.#options.changed();
      return;
    }
    if (message.type === 'counters') {
      entry.steps = message.steps;
      entry.errors = message.errors;
    }
    // Counters (for the meter), tap records and what actors publish go to their features.
    if (this.#options.deliver(entry.name, message)) return;
    if (message.state === 'failed') {
      const what =
        message.phase === 'setup'
          ? 'setup() threw'
          : message.phase === 'run'
            ? 'runStep() threw (on_error: fail)'
            : 'it could not be loaded';
      this.failed(entry, message.error ?? { name: 'Error', message: 'unknown error' }, what);
      this.#options.gone(entry, { clean: false });
      return;
    }
    // A failed actor stays failed when its worker ends, so its status keeps saying why.
    if (entry.state === 'failed') return;
    this.setState(entry, message.state);
  }

  /** The actor failed: its entry keeps why, and the log says it. */
  failed(entry: ActorEntry, error: SerializedError, what: string): void {
    entry.error = error;
    this.setState(entry, 'failed');
    // Where in the user's code it was thrown, when its stack says: an error thrown outside runStep()
    // (a timer, a promise nobody awaited) ends the worker with no log of its own.
    const place = stackPlace(error.stack, true);
    this.#options.log(
      'error',
      `actor "${entry.name}" failed: ${what}: ${describeError(error)}${place === undefined ? '' : ` (at ${place})`}`,
    );
  }

  setState(entry: ActorEntry, state: ActorState): void {
    const previous = entry.state;
    if (previous === state) return;
    entry.state = state;
    this.#options.log(
      'debug',
      previous === 'starting' && state === 'waiting'
        ? `actor "${entry.name}": loaded, waiting (${msSince(entry.startedAt)} after its start)`
        : `actor "${entry.name}": ${previous} → ${state}${afterSignal(entry)}`,
    );
    const event: NexusEvent = { type: 'actor-state', actor: entry.name, state, previous };
    if (state === 'failed' && entry.error) event.error = entry.error;
    this.#options.emit(event);
    this.#options.changed();
  }

  /** A worker that died may have held the store's lock or a half-written value: let the store reclaim them. */
  recoverStore(entry: ActorEntry): void {
    const store = this.#options.store();
    if (entry.storeOwner === undefined || !store?.recoverFromDeadOwner) return;
    const failed = (error: unknown) =>
      this.#options.log('error', `the store could not be recovered after actor "${entry.name}" died`, error);
    const recovered = (report: unknown) =>
      this.#options.log('debug', `store recovered after actor "${entry.name}" died:`, report);
    let report: unknown;
    try {
      report = store.recoverFromDeadOwner(entry.storeOwner);
    } catch (error) {
      failed(error);
      return;
    }
    if (!(report instanceof Promise)) {
      recovered(report);
      return;
    }
    // A recovery the server does (redis): its outcome is logged, and quit waits for it before the store closes.
    const recovery: Promise<void> = report.then(recovered, failed).finally(() => this.#recoveries.delete(recovery));
    this.#recoveries.add(recovery);
  }

  /** Resolves once every store recovery under way has ended (quit, before the store closes). */
  async recoveries(): Promise<void> {
    await Promise.allSettled([...this.#recoveries]);
  }
}

/** ` (12 ms after "pause")` when the actor was sent a signal, else nothing. */
function afterSignal(entry: ActorEntry): string {
  return entry.signalled ? ` (${msSince(entry.signalled.at)} after "${entry.signalled.signal}")` : '';
}

/** `actor "A" failed: …; actor "B" failed: …`. */
export function describeFailures(failed: readonly ActorEntry[]): string {
  return failed
    .map((entry) => `actor "${entry.name}" failed: ${entry.error ? describeError(entry.error) : 'unknown error'}`)
    .join('; ');
}
