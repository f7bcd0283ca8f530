/**
 * What every transport does with the graph it plans, and with the links it opens: the labels and
 * errors users see, the checks of each edge, and copies of edges that keep nothing of the caller's.
 * @module
 */
import { MAX_LINK_CAPACITY } from '../config/types.ts';
import { LinkClosedError } from '../errors.ts';
import type { Endpoint, LinkEdge, LinkGraph } from './transport.ts';

/** `Actor.link`. */
export function endpointLabel(endpoint: Endpoint): string {
  return `${endpoint.actor}.${endpoint.link}`;
}

/** The error of a closed link: closed by its own actor (`closedHere`), or by the end of the run. */
export function closedLinkError(label: string, closedHere: boolean): LinkClosedError {
  return new LinkClosedError(
    closedHere
      ? `link "${label}" is closed (its actor quit); a closed link cannot be used again — a revived actor opens a new one from its descriptor`
      : `link "${label}" is closed because its transport was closed (the pipeline run ended); start a new run to get new links`,
  );
}

/**
 * The longest `get({ timeoutMs })`, 2^31 − 1 ms (about 24.8 days): timers hold a 32-bit signed count
 * of milliseconds, and a longer one fires at once (Node warns `TimeoutOverflowWarning` and waits 1 ms).
 */
export const MAX_GET_TIMEOUT_MS = 2 ** 31 - 1;

/**
 * What is wrong with the `timeoutMs` of `<link>.get({ timeoutMs })`, or `undefined` when it can be
 * used: every transport's `get` rejects with this error before it waits.
 */
export function getTimeoutError(link: string, timeoutMs: unknown): RangeError | undefined {
  if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0) || !Number.isFinite(timeoutMs)) {
    return new RangeError(`${link}.get({ timeoutMs }): give a number of milliseconds ≥ 0, not ${String(timeoutMs)}`);
  }
  if (timeoutMs > MAX_GET_TIMEOUT_MS) {
    return new RangeError(
      `${link}.get({ timeoutMs }): ${timeoutMs} ms is longer than the longest timeout, ${MAX_GET_TIMEOUT_MS} ms (about 24.8 days); give at most that, or omit timeoutMs to wait without a limit`,
    );
  }
  return undefined;
}

/**
 * Checks a graph before a transport plans it (a program may build one itself): every edge's
 * capacity and policy, and no endpoint both a source and a sink.
 */
export function checkLinkGraph(graph: LinkGraph): void {
  const sources = new Set<string>();
  const sinks = new Set<string>();
  for (const edge of graph.edges) {
    const from = endpointLabel(edge.from);
    const to = endpointLabel(edge.to);
    const label = `connection "${edge.connection}" (${from} → ${to})`;
    if (!Number.isInteger(edge.capacity) || edge.capacity < 1 || edge.capacity > MAX_LINK_CAPACITY) {
      throw new RangeError(
        `${label}: capacity must be a whole number of messages from 1 to ${MAX_LINK_CAPACITY}, got ${edge.capacity}`,
      );
    }
    if (edge.policy !== 'block' && edge.policy !== 'drop-oldest') {
      throw new TypeError(`${label}: policy must be "block" or "drop-oldest", got ${JSON.stringify(edge.policy)}`);
    }
    sources.add(from);
    sinks.add(to);
    const both = sinks.has(from) ? from : sources.has(to) ? to : undefined;
    if (both !== undefined) {
      throw new TypeError(
        `link "${both}" is both a source and a sink (connection "${edge.connection}"); an endpoint either sends or receives — give each direction its own link name`,
      );
    }
  }
}

/** A copy of `edge` without its `transport` and anything else a caller added. */
export function copyEdge(edge: LinkEdge): LinkEdge {
  const { connection, capacity, policy } = edge;
  return { connection, from: copyEndpoint(edge.from), to: copyEndpoint(edge.to), capacity, policy };
}

export function copyEndpoint(endpoint: Endpoint): Endpoint {
  return { actor: endpoint.actor, link: endpoint.link };
}
