/**
 * `nexus.tap()` (package-private; Nexus owns one and delegates to it). Messages are summarised
 * where they are read: while a connection is tapped, Nexus asks the host of each of its sinks to
 * summarise what that input link returns (at most ~20 a second, the rest counted as skipped) and
 * post the summaries up the control channel; the last tap to close stops it. Nothing is summarised,
 * and nothing travels, while no tap is on.
 * @module
 */
import { type HostChannel, type HostLine, Listeners } from './_host-channels.ts';
import { didYouMean } from './config/_suggest.ts';
import { CommandRefusedError } from './errors.ts';
import { HOST_ACTOR } from './link/host.ts';
import type { LinkEdge } from './link/transport.ts';
import type { TapRecord } from './nexus-api.ts';
import type { TapRecordMessage, TapRequestMessage } from './worker/protocol.ts';

/** What taps need from Nexus (and its line to the hosts, see `_host-channels.ts`). */
export interface TapsOptions extends HostLine<TapRequestMessage> {
  /** Every edge of the pipeline graph, the embedding program's own included. */
  edges: readonly LinkEdge[];
  /** Whether taps are refused now (the pipeline has quit), and why. */
  refused: () => string | undefined;
}

const label = (endpoint: { actor: string; link: string }) => `${endpoint.actor}.${endpoint.link}`;

export class Taps implements HostChannel<TapRecordMessage> {
  readonly #options: TapsOptions;
  /** The listeners of each tapped connection. */
  readonly #listeners = new Map<string, Listeners<TapRecord>>();
  /** Sink links (by `Actor.link`) summarising now, and how many tapped connections they serve. */
  readonly #summarising = new Map<string, { actor: string; link: string; count: number }>();

  constructor(options: TapsOptions) {
    this.#options = options;
  }

  /**
   * Starts a tap on `connection` (its name, or an endpoint of it such as `Camera.q_out` when only one
   * connection has that endpoint); returns the function that ends it (safe to call more than once).
   */
  tap(named: string, listener: (record: TapRecord) => void): () => void {
    const refused = this.#options.refused();
    if (refused !== undefined) throw new CommandRefusedError(`cannot tap "${named}": ${refused}`);
    const connection = this.#connectionOf(named);
    const edges = this.#options.edges.filter((edge) => edge.connection === connection);
    if (edges.length === 0) {
      const names = [...new Set(this.#options.edges.map((edge) => edge.connection))];
      throw new CommandRefusedError(
        `cannot tap "${connection}": there is no such connection; ${didYouMean(connection, names)}${
          names.length === 0
            ? 'the pipeline has no connections'
            : `the connections are ${names.join(', ')} (an endpoint of one, e.g. ${label(this.#options.edges[0]!.from)}, names it too)`
        }`,
      );
    }
    const sinks = this.#sinksOf(connection);
    if (sinks.length === 0) {
      throw new CommandRefusedError(
        `cannot tap "${connection}": its messages are read by this program (host inputs), not by an actor, and a tap summarises them where an actor reads them; read them with nexus.input("${label(edges[0]!.from)}")`,
      );
    }
    let listeners = this.#listeners.get(connection);
    if (listeners === undefined) {
      listeners = new Listeners(this.#options.warn, `the tap on "${connection}"`);
      this.#listeners.set(connection, listeners);
      for (const sink of sinks) this.#summarise(sink, 1);
    }
    const tapped = listeners;
    return tapped.add(listener, () => this.#untap(connection, tapped));
  }

  /** The connection `named` names: itself, or the one connection that has `named` as an endpoint. */
  #connectionOf(named: string): string {
    const edges = this.#options.edges;
    if (edges.some((edge) => edge.connection === named)) return named;
    const through = new Set(
      edges.filter((edge) => label(edge.from) === named || label(edge.to) === named).map((edge) => edge.connection),
    );
    return through.size === 1 ? [...through][0]! : named;
  }

  /** A host posted a summary of what its input link returned. */
  record(actor: string, message: TapRecordMessage): void {
    const to = `${actor}.${message.link}`;
    for (const [connection, listeners] of this.#listeners) {
      const sources = this.#options.edges
        .filter((edge) => edge.connection === connection && label(edge.to) === to)
        .map((edge) => label(edge.from));
      if (sources.length === 0) continue;
      listeners.emit({
        time: message.time,
        connection,
        from: sources.join(', '),
        to,
        summary: message.summary,
        skipped: message.skipped,
      });
    }
  }

  /** An actor's host (re)started: it summarises again what is tapped. */
  actorStarted(actor: string): void {
    for (const sink of this.#summarising.values()) {
      if (sink.actor === actor) this.#options.send(actor, { type: 'tap', link: sink.link, on: true });
    }
  }

  /** Ends every tap (the pipeline quit). */
  close(): void {
    this.#listeners.clear();
    this.#summarising.clear();
  }

  /** The sink links of `connection` that actors read (the embedding program's are not summarised). */
  #sinksOf(connection: string): { actor: string; link: string }[] {
    const sinks = new Map<string, { actor: string; link: string }>();
    for (const edge of this.#options.edges) {
      if (edge.connection === connection && edge.to.actor !== HOST_ACTOR) sinks.set(label(edge.to), edge.to);
    }
    return [...sinks.values()];
  }

  /** A tap on `connection` ended: with its last, its sinks stop summarising for it. */
  #untap(connection: string, listeners: Listeners<TapRecord>): void {
    if (listeners.size > 0 || this.#listeners.get(connection) !== listeners) return;
    this.#listeners.delete(connection);
    for (const sink of this.#sinksOf(connection)) this.#summarise(sink, -1);
  }

  /** Counts a tapped connection in or out of a sink link; the host is told at the first and the last. */
  #summarise(sink: { actor: string; link: string }, change: 1 | -1): void {
    const key = label(sink);
    const entry = this.#summarising.get(key) ?? { actor: sink.actor, link: sink.link, count: 0 };
    entry.count += change;
    if (entry.count <= 0) {
      this.#summarising.delete(key);
      this.#options.send(sink.actor, { type: 'tap', link: sink.link, on: false });
      return;
    }
    this.#summarising.set(key, entry);
    if (entry.count === 1 && change === 1) this.#options.send(sink.actor, { type: 'tap', link: sink.link, on: true });
  }
}
