/**
 * Watches the links of a running pipeline through `Transport.stats()`: warns when a producer has
 * waited for room in a full link for a while (naming the link, its producer and its consumer), and
 * names a cycle whose links are all full — a deadlock — once. Nexus owns one and reads its status.
 * @module
 */
import type { LinkStats, Transport } from './transport.ts';

/** One edge in `status()`: its counters, and how long its producer has waited for room. */
export interface LinkStatus extends LinkStats {
  /** Milliseconds the producer has waited for room so far (absent when it does not wait). */
  waitingMs?: number;
}

/** What the monitor needs from Nexus. */
export interface LinkMonitorOptions {
  transport: Transport;
  /** Whether warnings apply now (the pipeline is running). */
  active: () => boolean;
  /** The state of an actor, for messages. */
  actorState: (actor: string) => string;
  warn: (message: string) => void;
  /** How long a producer waits for room before the warning. */
  warnAfterMs: number;
  /** How often the links are looked at. */
  everyMs: number;
}

const edgeName = (stats: LinkStats) => `${stats.from.actor}.${stats.from.link} → ${stats.to.actor}.${stats.to.link}`;

export class LinkMonitor {
  readonly #options: LinkMonitorOptions;
  /**
   * When each waiting edge was first seen waiting (with its `sent` count then), and whether it was
   * warned about. A message that got in since means the producer's wait ended and a new one began:
   * a slow reader, not one that does not read.
   */
  readonly #waiting = new Map<string, { since: number; sent: number; warned: boolean }>();
  readonly #deadlocks = new Set<string>();
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(options: LinkMonitorOptions) {
    this.#options = options;
  }

  start(): void {
    this.#timer ??= setInterval(() => this.check(), this.#options.everyMs);
    // The monitor must not keep the process alive on its own (Node, Bun, Deno all have unref or ignore it).
    (this.#timer as { unref?: () => void }).unref?.();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Every edge now, with how long its producer has waited. */
  status(): LinkStatus[] {
    const now = performance.now();
    return this.#options.transport.stats().map((stats) => {
      const waiting = this.#waiting.get(edgeName(stats));
      return stats.waiting && waiting ? { ...stats, waitingMs: Math.round(now - waiting.since) } : { ...stats };
    });
  }

  /** One look at the links (called every `everyMs`). */
  check(): void {
    const { active, actorState, warn, warnAfterMs } = this.#options;
    const now = performance.now();
    const stats = this.#options.transport.stats();
    const blocked: LinkStats[] = [];
    for (const edge of stats) {
      const name = edgeName(edge);
      if (!edge.waiting || !active()) {
        this.#waiting.delete(name);
        continue;
      }
      let waiting = this.#waiting.get(name);
      if (waiting === undefined || edge.sent !== waiting.sent) {
        waiting = { since: now, sent: edge.sent, warned: false };
        this.#waiting.set(name, waiting);
      }
      if (now - waiting.since < warnAfterMs) continue;
      blocked.push(edge);
      if (waiting.warned) continue;
      waiting.warned = true;
      const { from, to } = edge;
      warn(
        `link ${name} (connection "${edge.connection}") has been full (${edge.depth} of ${edge.capacity} messages) for ${Math.round((now - waiting.since) / 1000)} s: ` +
          `${from.actor} waits to put and ${to.actor} (${actorState(to.actor)}) does not read ${to.link}. ` +
          `Read it in ${to.actor}'s runStep(), raise the connection's capacity, or give it policy: drop-oldest`,
      );
    }
    this.#findDeadlock(blocked);
  }

  /** A cycle of actors each waiting to put into the next: nobody reads, nobody goes on. */
  #findDeadlock(blocked: LinkStats[]): void {
    const next = new Map<string, LinkStats[]>();
    for (const edge of blocked) {
      const list = next.get(edge.from.actor) ?? [];
      list.push(edge);
      next.set(edge.from.actor, list);
    }
    const done = new Set<string>();
    for (const start of next.keys()) {
      if (done.has(start)) continue;
      // Depth-first along waiting edges; a return to an actor on the current path is a cycle.
      const path: LinkStats[] = [];
      const onPath = new Map<string, number>();
      const visit = (actor: string): LinkStats[] | undefined => {
        if (onPath.has(actor)) return path.slice(onPath.get(actor));
        if (done.has(actor)) return undefined;
        onPath.set(actor, path.length);
        for (const edge of next.get(actor) ?? []) {
          path.push(edge);
          const cycle = visit(edge.to.actor);
          if (cycle) return cycle;
          path.pop();
        }
        onPath.delete(actor);
        done.add(actor);
        return undefined;
      };
      const cycle = visit(start);
      if (cycle === undefined) continue;
      const actors = [...cycle.map((edge) => edge.from.actor), cycle[0]!.from.actor];
      const key = [...cycle.map(edgeName)].sort().join('|');
      if (this.#deadlocks.has(key)) return;
      this.#deadlocks.add(key);
      this.#options.warn(
        `deadlock: ${actors.join(' → ')} — every link of this cycle is full and each actor waits to put into the next, so none can go on (${cycle.map(edgeName).join(', ')}). ` +
          'Raise the capacity of one of these connections, give one policy: drop-oldest, or have an actor read with tryGet() before it puts',
      );
      return;
    }
  }
}
