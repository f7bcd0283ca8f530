/**
 * Restart policies and `revive` (package-private, beside Nexus): whether an actor that ended is
 * started again, after how long, when to give up, and the restart itself — what is left of the old
 * worker or process ended, the actor started from its config with the same link descriptors, and
 * brought to where the pipeline stands. Nexus calls {@link Restarts.gone} for every actor that
 * failed or died and {@link Restarts.revive} for `revive`; it lends its own pieces through
 * {@link RestartHost}.
 *
 * - `never` (default): a failed actor stays failed.
 * - `on-failure`: started again after it failed — its worker or process crashed, was killed or
 *   exited with a non-zero code, `setup()` threw, `on_error: fail` ended it, or it was unresponsive.
 *   An actor whose worker or process ended itself cleanly (code 0) before quit is not restarted.
 * - `always`: started again whenever it ended before quit.
 *
 * The first restart waits `restart_backoff`; each restart in a row doubles the wait, up to 30 s.
 * Restarts are in a row until the actor has stayed up for {@link SETTLED_AFTER_MS} since it was last
 * started; then the count and the wait start over. After `max_restarts` in a row it stays failed.
 * @module
 */
import type { Conditions } from './_conditions.ts';
import { type ActorConfig, MAX_RESTART_BACKOFF_MS } from './config/types.ts';
import { CommandRefusedError } from './errors.ts';
import type { DetachOptions } from './link/transport.ts';
import type { LogLevel } from './log.ts';
import type { WorkerHandle } from './runtime/adapter.ts';
import type { ActorState, PipelineState, Signal } from './signals.ts';
import { formatMs } from './supervisor.ts';

/** How long a restarted actor must stay up for its next failure to count as a first one again. */
export const SETTLED_AFTER_MS = 5000;

/** How an actor ended. */
export interface Ending {
  /** Its worker or process ended by itself with code 0 (not a failure). */
  clean: boolean;
}

/** The decision for one ending: restart after `delayMs` (restart `attempt` of `max`), or not, and why. */
export type RestartDecision =
  | { restart: true; delayMs: number; attempt: number; max: number }
  | { restart: false; reason?: string };

class RestartCounter {
  readonly #inRow = new Map<string, number>();
  readonly #startedAt = new Map<string, number>();

  /** The actor (re)started now: the settling time counts from here. */
  started(actor: string): void {
    this.#startedAt.set(actor, performance.now());
  }

  /** What to do about `actor` that ended as `ending`. */
  decide(actor: Pick<ActorConfig, 'name' | 'restart'>, ending: Ending): RestartDecision {
    const { policy, backoffMs, maxRestarts } = actor.restart;
    if (policy === 'never') return { restart: false };
    if (policy === 'on-failure' && ending.clean) {
      return {
        restart: false,
        reason: 'it ended cleanly (exit code 0), and restart: on-failure restarts only after a failure',
      };
    }
    const since = this.#startedAt.get(actor.name);
    const settled = since !== undefined && performance.now() - since >= SETTLED_AFTER_MS;
    const previous = settled ? 0 : (this.#inRow.get(actor.name) ?? 0);
    // Until it starts again: a restart whose start fails (its host is still down, its process
    // cannot be spawned) is one more failure of the row, not a first one again.
    this.#startedAt.delete(actor.name);
    if (previous >= maxRestarts) {
      return {
        restart: false,
        reason: `it was restarted ${previous} time${previous === 1 ? '' : 's'} in a row (max_restarts: ${maxRestarts}); it stays failed — fix the cause, then revive it or restart the pipeline`,
      };
    }
    const attempt = previous + 1;
    this.#inRow.set(actor.name, attempt);
    const delayMs = Math.min(MAX_RESTART_BACKOFF_MS, backoffMs * 2 ** (attempt - 1));
    return { restart: true, delayMs, attempt, max: maxRestarts };
  }

  /** A restart by hand (`revive`): the count in a row starts over. */
  revived(actor: string): void {
    this.#inRow.delete(actor);
  }
}

/** An actor as the restarts see it (Nexus's entry). */
export interface RestartableActor {
  readonly name: string;
  readonly state: ActorState;
  readonly worker: WorkerHandle | undefined;
  /** Resolves once its worker or process has ended. */
  readonly exited: Promise<void>;
}

/** What the restarts need from Nexus. */
export interface RestartHost {
  /** The actor's current entry (a restart replaces it). */
  entry(name: string): RestartableActor | undefined;
  /** Starts the actor from its config, with the links of the run's plan, as a new entry. */
  start(actor: ActorConfig): Promise<void>;
  signal(entry: RestartableActor, signal: Signal): void;
  /** Detaches a gone actor from its links (see `Supervisor.detach`). */
  detach(name: string, options: DetachOptions): Promise<void> | undefined;
  pipelineState(): PipelineState;
  /** A command is under way. */
  busy(): boolean;
  quitting(): boolean;
  /** Re-checked whenever an actor's state, a command or quitting changes. */
  conditions: Conditions;
  quitTimeoutMs(): number;
  log(level: LogLevel, message: string): void;
}

export class Restarts {
  readonly #host: RestartHost;
  readonly #counter = new RestartCounter();
  /** Actors being restarted now (by their policy or by `revive`). */
  readonly #restarting = new Set<string>();
  /** Restarts so far, by actor. */
  readonly #total = new Map<string, number>();

  constructor(host: RestartHost) {
    this.#host = host;
  }

  /** The actor (re)started now. */
  started(name: string): void {
    this.#counter.started(name);
  }

  /** How many times the actor was restarted in this run. */
  count(name: string): number {
    return this.#total.get(name) ?? 0;
  }

  /** `entry` failed or died: detached from its links, and started again if its policy says so. */
  async gone(entry: RestartableActor, actor: ActorConfig, ending: Ending): Promise<void> {
    const host = this.#host;
    // Being restarted already (it failed again on the way): restart() decides once it is done.
    const busy = this.#restarting.has(actor.name);
    const decision: RestartDecision = busy ? { restart: false } : this.#counter.decide(actor, ending);
    // An actor that comes back is not announced gone to its sinks: they wait for it.
    await host.detach(actor.name, { restarting: decision.restart || busy });
    if (host.quitting()) return;
    if (!decision.restart) {
      if (decision.reason) host.log('error', `actor "${actor.name}" is not restarted: ${decision.reason}`);
      return;
    }
    host.log(
      'warn',
      `actor "${actor.name}" restarts in ${formatMs(decision.delayMs)} (restart: ${actor.restart.policy}; restart ${decision.attempt} of at most ${decision.max} in a row)`,
    );
    await this.#restart(entry, actor, decision.delayMs);
  }

  /** Why `revive` of `entry` is refused now (it is restarting already, or neither failed nor ended), or undefined. */
  reviveRefusal(entry: RestartableActor): string | undefined {
    if (this.#restarting.has(entry.name)) return 'it is restarting already';
    if (entry.state !== 'failed' && entry.state !== 'exited') {
      return `it is ${entry.state}, not failed; revive starts an actor that failed or ended again`;
    }
    return undefined;
  }

  /**
   * `revive`: starts a failed or ended actor again at once; the count in a row starts over. Throws a
   * `CommandRefusedError` for a refusal (see {@link reviveRefusal}).
   */
  async revive(entry: RestartableActor, actor: ActorConfig): Promise<void> {
    const refusal = this.reviveRefusal(entry);
    if (refusal !== undefined) throw new CommandRefusedError(`cannot revive "${actor.name}": ${refusal}`);
    this.#counter.revived(actor.name);
    this.#host.log('info', `actor "${actor.name}" is revived by hand`);
    await this.#restart(entry, actor, 0);
  }

  /**
   * Ends what is left of `entry`'s worker or process, waits `delayMs` (cut short by quit), and
   * starts the actor again: its links are opened again from the same descriptors, and it is brought
   * to the pipeline's state.
   */
  async #restart(entry: RestartableActor, actor: ActorConfig, delayMs: number): Promise<void> {
    const host = this.#host;
    this.#restarting.add(actor.name);
    let revived: RestartableActor | undefined;
    try {
      if (entry.worker) {
        // A failed actor's host may still run (setup() threw): let it close its links and store first.
        host.signal(entry, 'quit');
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([
          entry.exited,
          new Promise((resolve) => (timer = setTimeout(resolve, Math.min(host.quitTimeoutMs(), 5000)))),
        ]);
        clearTimeout(timer);
        await entry.worker.terminate();
      }
      await host.conditions.until(() => host.quitting(), delayMs);
      if (host.quitting()) return;
      this.#total.set(actor.name, this.count(actor.name) + 1);
      await host.start(actor);
      const started = host.entry(actor.name);
      if (started === undefined || started === entry) return;
      revived = started;
      await host.conditions.until(() => started.state !== 'starting');
      if (!isGone(started.state) && !host.quitting()) {
        await this.#catchUp(started);
        if (!isGone(started.state) && !host.quitting())
          host.log('info', `actor "${actor.name}" restarted: ${started.state}`);
      }
    } finally {
      this.#restarting.delete(actor.name);
    }
    // It failed again while it was being restarted (its start failed, it could not load, setup()
    // threw): one more failure of the row, and its policy decides again.
    if (revived !== undefined && host.entry(actor.name) === revived && isGone(revived.state) && !host.quitting()) {
      await this.gone(revived, actor, { clean: false });
    }
  }

  /** Brings a restarted actor to where the pipeline stands: setup, then run, then pause, as needed. */
  async #catchUp(entry: RestartableActor): Promise<void> {
    const host = this.#host;
    await host.conditions.until(() => !host.busy() || host.quitting());
    const state = host.pipelineState();
    const steps: [Signal, ActorState][] = [];
    if (state === 'ready' || state === 'stopped' || state === 'running' || state === 'paused') {
      steps.push(['setup', 'ready']);
    }
    if (state === 'running' || state === 'paused') steps.push(['run', 'running']);
    if (state === 'paused') steps.push(['pause', 'paused']);
    for (const [signal, target] of steps) {
      host.signal(entry, signal);
      await host.conditions.until(() => entry.state === target || isGone(entry.state) || host.quitting());
      if (entry.state !== target) return;
    }
  }
}

/** A failed or exited actor takes no part any more (until it is restarted). */
export function isGone(state: ActorState): boolean {
  return state === 'failed' || state === 'exited';
}
