/**
 * The supervisor beside Nexus: what becomes of an actor that goes away or stops responding, and of
 * the messages nobody will read. Nexus drives the signals; the supervisor
 * - watches every running or paused actor's heartbeat (a word its worker bumps whenever its event
 *   loop turns). One that stood still for `settings.signal_timeout` is stuck in a loop that never
 *   yields to its event loop: it can take no signal. While it holds a producer back (a link into it
 *   is full and its producer waits) it is reported, so Nexus ends it; otherwise (a long acquisition
 *   loop, say) it is only warned about, once. Only the time its host was heard from counts: an actor
 *   on a host that says nothing (its cable pulled, its agent stopped) is that host's to report;
 * - detaches a failed or dead actor from its links (`Transport.detach`): its producers are no longer
 *   held back, and a sink whose every source is gone is told so in the log;
 * - discards what links hold that nobody will read (on detach and at quit): counted, logged, and the
 *   store keys of messages no other sink got released.
 * @module
 */
import { stuckAdvice } from './_actor-spawn.ts';
import type { PipelineConfig } from './config/types.ts';
import type { DetachOptions, DrainedMessages, Transport } from './link/transport.ts';
import type { LogLevel } from './log.ts';
import type { ActorState } from './signals.ts';
import type { StoreClient } from './store/driver.ts';
import { releaseKeys } from './store/keys.ts';
import { CONTROL_HEARTBEAT, heartbeatPeriodMs } from './worker/protocol.ts';

/** An actor as the supervisor sees it. */
export interface SupervisedActor {
  readonly name: string;
  readonly state: ActorState;
  /** The control words shared with its worker (see `InitMessage.control`). */
  readonly control: Int32Array;
}

/** What the supervisor needs from Nexus. */
export interface SupervisorOptions {
  config: PipelineConfig;
  transport: Transport;
  /** The store client keys are released with (absent once the store closed). */
  store: () => StoreClient | undefined;
  actors: () => Iterable<SupervisedActor>;
  /** Whether heartbeats are watched now (not while a command or quit is under way: they have their own bounds). */
  watching: () => boolean;
  /** An actor whose heartbeat stood still: Nexus ends it. `what` says why, for its error. */
  unresponsive: (actor: string, what: string) => void;
  /** How long nothing has come from the host `actor` runs on, in ms (0 for an actor of this machine). */
  silentFor: (actor: string) => number;
  log: (level: LogLevel, message: string, ...details: unknown[]) => void;
  /** The clock, in ms (default `performance.now`). */
  now?: () => number;
}

export class Supervisor {
  readonly #options: SupervisorOptions;
  /** The last heartbeat seen of each actor, when it last changed, and whether a warning was given. */
  readonly #heartbeats = new Map<string, { value: number; since: number; warned: boolean }>();
  #timer: ReturnType<typeof setInterval> | undefined;
  readonly #now: () => number;
  /** When the heartbeats were last looked at, and how often they are meant to be. */
  #checkedAt = Number.NaN;
  #every = 0;
  /** The time, in ms, Nexus's process was seen stopped or blocked (see {@link unseenMs}), up to `#checkedAt`. */
  #unseen = 0;

  constructor(options: SupervisorOptions) {
    this.#options = options;
    this.#now = options.now ?? (() => performance.now());
  }

  start(): void {
    this.#every = heartbeatPeriodMs(this.#options.config.settings.signalTimeoutMs);
    this.#checkedAt = this.#now();
    this.#timer ??= setInterval(() => this.#checkHeartbeats(), this.#every);
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /**
   * How long, in ms since the supervisor started, Nexus's own process could not look at its actors:
   * it was stopped (Ctrl-Z, SIGSTOP, a debugger) or its event loop blocked, seen as a look that came
   * more than two periods late, counted to now (a gap still under way counts before the next look).
   * Its workers were stopped with it, so that time counts against no actor: the heartbeat watch and
   * a command's acknowledgement time (Nexus) both leave it out, on this one clock.
   */
  unseenMs(): number {
    if (Number.isNaN(this.#checkedAt)) return this.#unseen;
    return this.#unseen + this.#gap(this.#now());
  }

  /** The part of the time since the last look beyond two periods: the time nobody could look. */
  #gap(now: number): number {
    return Math.max(0, now - this.#checkedAt - 2 * this.#every);
  }

  #checkHeartbeats(): void {
    const timeout = this.#options.config.settings.signalTimeoutMs;
    const watching = this.#options.watching();
    const now = this.#now();
    // Nexus's own process was stopped (Ctrl-Z, SIGSTOP, a debugger) or its event loop blocked: the
    // actors' heartbeats could not be seen meanwhile, and its workers were stopped with it. That
    // time does not count against them.
    const unseen = this.#gap(now);
    this.#checkedAt = now;
    this.#unseen += unseen;
    if (unseen > 0) for (const last of this.#heartbeats.values()) last.since += unseen;
    let holding: Set<string> | undefined;
    for (const actor of this.#options.actors()) {
      const value = Atomics.load(actor.control, CONTROL_HEARTBEAT);
      const last = this.#heartbeats.get(actor.name);
      const watched = watching && (actor.state === 'running' || actor.state === 'paused');
      if (last === undefined || value !== last.value || !watched) {
        this.#heartbeats.set(actor.name, { value, since: now, warned: false });
        continue;
      }
      if (now - last.since < timeout) continue;
      // What the actor's channel carries comes in order with its host's pings: the heartbeat stood
      // still for certain only until its host was last heard from. A host that stays silent is lost.
      if (now - this.#options.silentFor(actor.name) - last.since < timeout) continue;
      const advice = stuckAdvice(this.#options.config.actors.find((config) => config.name === actor.name));
      const stuckFor = `${advice.late} for ${formatMs(timeout)}`;
      holding ??= new Set(
        this.#options.transport
          .stats()
          .filter((edge) => edge.waiting)
          .map((edge) => edge.to.actor),
      );
      if (holding.has(actor.name)) {
        last.since = Number.POSITIVE_INFINITY; // reported once
        this.#options.unresponsive(actor.name, `${stuckFor} while its producers wait for room`);
      } else if (!last.warned) {
        last.warned = true;
        this.#options.log(
          'warn',
          `actor "${actor.name}": ${stuckFor}; it takes no signal until it does (${advice.meanwhile})`,
        );
      }
    }
  }

  /**
   * `actor` failed or died: links into it stop holding their producers back (what waited for it is
   * discarded), and sinks it fed whose every source is now gone are named in the log.
   */
  async detach(actor: string, isGone: (actor: string) => boolean, options: DetachOptions = {}): Promise<void> {
    const { config, transport, log } = this.#options;
    await this.#discard(transport.detach(actor, options), `actor "${actor}" is gone`);
    // An actor that is restarted comes back to the sinks it feeds: they wait for it.
    if (options.restarting) return;
    for (const connection of config.connections) {
      if (!connection.sources.some((source) => source.actor === actor)) continue;
      for (const sink of connection.sinks) {
        const sources = config.connections
          .filter((other) => other.sinks.some((s) => s.actor === sink.actor && s.link === sink.link))
          .flatMap((other) => other.sources);
        if (isGone(sink.actor) || !sources.every((source) => isGone(source.actor))) continue;
        log(
          'warn',
          `actor "${sink.actor}": every source of ${sink.actor}.${sink.link} is gone (${sources.map((source) => source.actor).join(', ')}); once it has read what is left, its get() rejects with LinkSourcesGoneError`,
        );
      }
    }
  }

  /** Quit, once every worker ended: whatever links still hold is discarded. */
  drain(): Promise<void> {
    return this.#discard(this.#options.transport.drain(), 'quit');
  }

  /** Messages nobody will read: counted, logged, the store keys of those no other sink got released. */
  async #discard(batches: DrainedMessages[], why: string): Promise<void> {
    const { log } = this.#options;
    const store = this.#options.store();
    for (const batch of batches) {
      let released = 0;
      if (batch.sole && store) {
        for (const message of batch.messages) {
          try {
            released += await releaseKeys(message, store);
          } catch (error) {
            log('warn', 'could not release the store keys of a dropped message', error);
          }
        }
      }
      const elsewhere = batch.droppedAtSource ?? 0;
      const count = batch.messages.length + elsewhere;
      log(
        'warn',
        `${why}: ${count} message${count === 1 ? '' : 's'} waiting in ${batch.from.actor}.${batch.from.link} → ${batch.to.actor}.${batch.to.link} ${count === 1 ? 'was' : 'were'} dropped; ` +
          (elsewhere > 0
            ? batch.where === 'on-the-way'
              ? 'they were on their way to the sink or waiting in it when it ended'
              : `${batch.from.actor} releases the store values they referred to (it kept a copy of each message until it was read)`
            : batch.sole
              ? `${released} store value${released === 1 ? '' : 's'} they referred to released`
              : 'their store keys were kept (the source sent the same messages to other sinks, which may still read them)'),
      );
    }
  }
}

/** `5 s`, `300 ms`. */
export function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
