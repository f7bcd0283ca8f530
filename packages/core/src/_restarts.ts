/**
 * Restart policies (package-private, used by Nexus): whether an actor that ended is started again,
 * after how long, and when to give up. Nexus does the restarting; this keeps the count.
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
import { type ActorConfig, MAX_RESTART_BACKOFF_MS } from './config/types.ts';

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

export class RestartCounter {
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
