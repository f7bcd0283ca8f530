/**
 * What Nexus's debug log and command records say (package-private): the config as loaded, each
 * link and its transport, timings, and who gave a command. Kept here so Nexus only decides when to
 * log, not how each line reads.
 * @module
 */
import { placeOf, runtimeOf } from './_actor-spawn.ts';
import type { PipelineConfig } from './config/types.ts';
import type { LinkEdge } from './link/transport.ts';
import type { CommandOptions } from './nexus-api.ts';
import type { RuntimeAdapter } from './runtime/adapter.ts';
import { formatMs } from './supervisor.ts';

/** The config as loaded: one line for its settings, one per actor. */
export function describeConfig(config: PipelineConfig, runtime: RuntimeAdapter, loadMs: number | undefined): string[] {
  const took = loadMs === undefined ? '' : ` (${Math.round(loadMs)} ms)`;
  return [
    `config ${config.source} loaded and checked${took}: store ${config.settings.store.driver}, transport ${config.settings.transport.name}, signal_timeout ${formatMs(config.settings.signalTimeoutMs)}`,
    ...config.actors.map(
      (actor) =>
        `config: actor "${actor.name}" is class ${actor.className} of ${actor.moduleUrl}, in a ${placeOf(actor)} (${runtimeOf(actor, runtime)}${actor.process?.host ? ` on ${actor.process.host}` : ''})`,
    ),
  ];
}

/** One line per edge: its transport (`transportName`, or the connection's own when combined), capacity and policy. */
export function describeEdges(edges: readonly LinkEdge[], transportName: string, defaultName: string): string[] {
  return edges.map((edge) => {
    const over = transportOf(edge, transportName, defaultName);
    return `link ${edge.from.actor}.${edge.from.link} → ${edge.to.actor}.${edge.to.link} (connection ${edge.connection}): ${over}, capacity ${edge.capacity}, policy ${edge.policy}`;
  });
}

/** `2 links over zmq` or `1 link over local, 2 over zmq`: which transport carries how many edges. */
export function summarizeTransports(edges: readonly LinkEdge[], transportName: string, defaultName: string): string {
  const counts = new Map<string, number>();
  for (const edge of edges) {
    const over = transportOf(edge, transportName, defaultName);
    counts.set(over, (counts.get(over) ?? 0) + 1);
  }
  return [...counts]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([over, count], index) => `${count}${index === 0 ? ` link${count === 1 ? '' : 's'}` : ''} over ${over}`)
    .join(', ');
}

function transportOf(edge: LinkEdge, transportName: string, defaultName: string): string {
  return edge.transport ?? (transportName.includes('+') ? defaultName : transportName);
}

/** ` (given by prompt)`, or nothing when the caller did not say. */
export function givenBy(options: CommandOptions): string {
  return options.by === undefined || options.by === '' ? '' : ` (given by ${options.by})`;
}

/** `12 ms` since `start` (a `performance.now()`). */
export function msSince(start: number): string {
  return `${Math.round(performance.now() - start)} ms`;
}

/** Bytes in MiB. */
export function mebibytes(bytes: number): string {
  return `${Number((bytes / 2 ** 20).toFixed(1))} MiB`;
}
