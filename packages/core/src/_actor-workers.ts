/**
 * An actor's worker or process from its start to its end (package-private, beside Nexus): started
 * where its config places it (`_actor-spawn.ts`) and told what to load and how to reach its links
 * and store, its messages handed to the {@link ActorTable}, its end (a crash, an exit, a start that
 * failed) turned into the entry's state, an actor that does not answer ended, and on quit every one
 * asked to end and made to end after `quit_timeout`. Nexus decides what follows an actor that is
 * gone (restarts, the supervisor) and lends its own pieces through {@link ActorWorkersOptions}.
 *
 * @example
 * ```ts
 * const workers = new ActorWorkers({ runtime, config, actors, gone: (entry, ending) => restarts.gone(...), ... });
 * await Promise.all(config.actors.map((actor) => workers.start(actor, plan)));
 * // a signal not acknowledged in time:
 * await workers.endUnresponsive(entry, 'it did not acknowledge "run" within 5 s');
 * // quit:
 * await workers.quit(10_000);
 * ```
 * @module
 */
import { describeExit, placeOf, runtimeOf, spawnActor, stuckAdvice } from './_actor-spawn.ts';
import type { ActorEntry, ActorTable } from './_actor-table.ts';
import { msSince } from './_debug-log.ts';
import type { Ending } from './_restarts.ts';
import type { ActorConfig, PipelineConfig } from './config/types.ts';
import { ActorUnresponsiveError, type SerializedError, serializeError } from './errors.ts';
import { type HostAgent, actorHostEntry as hostEntry } from './hosts.ts';
import type { LinkPlan } from './link/transport.ts';
import type { LogLevel, LogRecord } from './log.ts';
import type { ProcessHandle, RuntimeAdapter, WorkerHandle } from './runtime/adapter.ts';
import type { OpenStore, StoreDriver } from './store/driver.ts';
import { type FromWorker, heartbeatPeriodMs, type InitMessage } from './worker/protocol.ts';

/** What the actor workers need from Nexus. */
export interface ActorWorkersOptions {
  runtime: RuntimeAdapter;
  /** The pipeline: its settings go to every actor host. */
  config: PipelineConfig;
  /** Every actor's entry and what its host says (`_actor-table.ts`). */
  actors: ActorTable;
  /** Whether actor hosts measure for `nexus.metrics()` (`createNexus({ metrics: false })` turns it off). */
  metrics: boolean;
  /** The pipeline's store, opened before any actor starts: its descriptor goes to every host. */
  store(): OpenStore | undefined;
  storeDriver(): StoreDriver | undefined;
  /** What starts the actor's process on its host (`host:`), or undefined for this machine. */
  launcherOf(actor: string): Pick<HostAgent, 'spawnProcess'> | undefined;
  /** The actor's worker or process started (the restarts' settling time counts from here). */
  started(actor: string): void;
  /** The actor's host was told what to load: every feature that talks with hosts tells it again. */
  initialized(actor: string): void;
  /** The actor failed or its worker or process ended before quit. */
  gone(entry: ActorEntry, ending: Ending): Promise<void>;
  quitting(): boolean;
  /** Something Nexus may be waiting for changed (an actor ended). */
  changed(): void;
  /** A log record of a process's own output. */
  record(record: LogRecord): void;
  log(level: LogLevel, message: string, ...details: unknown[]): void;
}

export class ActorWorkers {
  readonly #options: ActorWorkersOptions;

  constructor(options: ActorWorkersOptions) {
    this.#options = options;
  }

  /**
   * Starts `actor` as a new entry: its worker or process, with the links of `plan`. A start that
   * fails leaves the actor failed; one that quit overtook is ended at once.
   */
  async start(actor: ActorConfig, plan: LinkPlan): Promise<void> {
    const { runtime, actors } = this.#options;
    const entry = actors.add(actor.name);
    // A worker's heap limit is its runtime's to enforce; a process's is V8's flag, which Bun has not.
    const ignoredOn =
      actor.process === undefined
        ? runtime.heapLimit
          ? undefined
          : runtime.name
        : runtimeOf(actor, runtime) === 'bun'
          ? 'bun'
          : undefined;
    if (actor.maxHeapMb !== undefined && ignoredOn !== undefined) {
      this.#options.log(
        'debug',
        `actor "${actor.name}": max_heap_mb is ignored on ${ignoredOn}, which has no heap limit to set for ${actor.process === undefined ? 'a worker' : 'a process'}`,
      );
    }
    let worker: WorkerHandle;
    try {
      worker = await spawnActor(
        runtime,
        actor,
        hostEntry,
        (record) => this.#options.record(record),
        this.#options.launcherOf(actor.name),
      );
    } catch (error) {
      actors.failed(entry, serializeError(error), `could not start its ${placeOf(actor)}`);
      entry.markExited();
      void this.#options.gone(entry, { clean: false });
      return;
    }
    entry.worker = worker;
    this.#options.started(actor.name);
    const spawned = worker as Partial<ProcessHandle>;
    this.#options.log(
      'debug',
      `actor "${actor.name}": ${placeOf(actor)} started${spawned.pid === undefined ? '' : ` (${spawned.runtime ?? runtimeOf(actor, runtime)}, pid ${spawned.pid}${actor.process?.host ? `, on ${actor.process.host}` : ''})`} (${msSince(entry.startedAt)}); loading its module`,
    );
    if (this.#options.quitting()) {
      // Quit came (Ctrl-C) while this worker was starting: it must not outlive the pipeline.
      actors.setState(entry, 'exited');
      await worker.terminate();
      entry.markExited();
      return;
    }
    let lastError: SerializedError | undefined;
    worker.onMessage((message) => actors.receive(entry, message as FromWorker));
    worker.onError((error) => {
      lastError = serializeError(error);
    });
    worker.onExit((code) => {
      if (code === 0 && entry.state !== 'exited' && entry.state !== 'failed' && this.#options.quitting()) {
        // Ended as quit asked: a process's exit can be seen before its last message (`exited`)
        // is read from its channel, which comes from another source.
        actors.setState(entry, 'exited');
      }
      if (entry.state !== 'exited' && entry.state !== 'failed') {
        const error = lastError ?? { name: 'Error', message: describeExit(actor, code) };
        // The store first: the dead worker may hold its lock, and releasing keys needs it.
        actors.recoverStore(entry);
        actors.failed(entry, error, `its ${placeOf(actor)} died`);
        entry.markExited();
        void this.#options.gone(entry, { clean: code === 0 });
      } else {
        if (entry.state === 'failed' && lastError && !entry.error) entry.error = lastError;
        entry.markExited();
      }
      this.#options.changed();
    });
    const { settings } = this.#options.config;
    const links = plan.endpoints.get(actor.name);
    const init: InitMessage = {
      type: 'init',
      actor: {
        name: actor.name,
        moduleUrl: actor.moduleUrl,
        className: actor.className,
        options: actor.options,
        onError: actor.onError,
        package: actor.package,
      },
      links: links ? Object.fromEntries(links) : {},
      store: this.#options.store()!.descriptor,
      storeUse: {
        flushBeforeSend: this.#options.storeDriver()?.zeroCopy !== true,
        trackMessages: settings.store.eviction !== 'none',
      },
      control: entry.control.buffer as SharedArrayBuffer,
      heartbeatMs: heartbeatPeriodMs(settings.signalTimeoutMs),
      ...(this.#options.metrics ? { measure: { ownProcess: actor.process !== undefined } } : {}),
    };
    actors.send(entry, init);
    // A new host: what the previous one measured is gone, and it is told what is tapped and watched.
    this.#options.initialized(actor.name);
  }

  /** An actor that did not acknowledge a signal in time, or stopped beating: its worker or process is ended and it is failed. */
  async endUnresponsive(entry: ActorEntry, what: string): Promise<void> {
    const { actors } = this.#options;
    const actor = this.#options.config.actors.find((config) => config.name === entry.name);
    const advice = stuckAdvice(actor);
    const error = new ActorUnresponsiveError(`${what} (settings.signal_timeout): ${advice.cause}. ${advice.fix}`);
    const place = actor === undefined ? 'worker' : placeOf(actor);
    this.#options.log('error', `actor "${entry.name}" is unresponsive; ending its ${place}`);
    entry.error = serializeError(error);
    actors.setState(entry, 'failed');
    this.#options.log('error', `actor "${entry.name}" failed: ${error.message}`);
    await entry.worker?.terminate();
    actors.recoverStore(entry);
    await this.#options.gone(entry, { clean: false });
  }

  /**
   * The second Ctrl-C or SIGTERM: every actor's worker or process is ended now. An actor ended so is
   * exited, not failed: the user asked for it, as a quit that timed out (its store locks are
   * recovered as for a death).
   */
  endNow(): void {
    const { actors } = this.#options;
    for (const entry of actors.values()) {
      if (!entry.worker) continue; // still starting: start() ends it, as quitting
      if (entry.state !== 'exited' && entry.state !== 'failed') {
        actors.recoverStore(entry);
        actors.setState(entry, 'exited');
      }
      void entry.worker.terminate();
    }
  }

  /**
   * Quit: every actor's host is sent `quit` and given `timeoutMs` to end; then its worker or process
   * is ended. An actor still starting is ended by {@link start}. Resolves once every actor has ended.
   */
  async quit(timeoutMs: number): Promise<void> {
    const { actors } = this.#options;
    const quitStarted = performance.now();
    const entries = [...actors.values()];
    // What each actor was still doing: a signal it had not acknowledged (setup() not returned yet).
    const busy = new Map(
      entries.map((entry) => [
        entry,
        entry.signalled !== undefined && entry.acked !== entry.signalled.signal ? entry.signalled : undefined,
      ]),
    );
    for (const entry of entries) {
      if (entry.worker && entry.state !== 'exited') actors.send(entry, { type: 'signal', signal: 'quit' });
    }
    await Promise.all(
      entries.map(async (entry) => {
        if (!entry.worker) {
          // Still starting (or it could not start): start() ends it and marks it exited.
          await entry.exited;
          return;
        }
        let timer: ReturnType<typeof setTimeout> | undefined;
        const timedOut = new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(true), timeoutMs);
        });
        const late = await Promise.race([entry.exited.then(() => false), timedOut]);
        clearTimeout(timer);
        if (late && entry.state !== 'exited' && entry.state !== 'failed') {
          const actor = this.#options.config.actors.find((config) => config.name === entry.name);
          const doing = busy.get(entry);
          const why =
            doing?.signal === 'setup'
              ? `its setup() had not returned (${Math.round((performance.now() - doing.at) / 1000)} s after "setup"), and an actor takes no signal until it does`
              : 'its runStep() or stop() had not returned (is it stuck?)';
          this.#options.log(
            'warn',
            `actor "${entry.name}" did not end within ${timeoutMs} ms of quit: ${why}; ending its ${actor === undefined ? 'worker' : placeOf(actor)}`,
          );
          // Ended by the quit the user gave, not failed: its store locks are recovered as for a death.
          actors.recoverStore(entry);
          actors.setState(entry, 'exited');
        }
        // A worker that sent `exited` has closed its channel; terminate() makes sure it is gone.
        await entry.worker.terminate();
        await entry.exited;
        this.#options.log('debug', `quit: actor "${entry.name}" ended (${msSince(quitStarted)} after quit)`);
      }),
    );
  }
}
