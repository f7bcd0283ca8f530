/**
 * The pipeline as a graph of edges, the shape a `Transport` plans its links from.
 *
 * @example
 * ```ts
 * const graph = toLinkGraph(config);
 * // Generator.q_out: [Processor.q_in, Viewer.q_in] gives two edges, one per sink
 * const plan = await transport.plan(graph);
 * ```
 * @module
 */
import type { LinkEdge, LinkGraph } from '../link/transport.ts';
import type { PipelineConfig } from './types.ts';

/**
 * One edge per (source, sink) pair of every connection, carrying the connection's name, capacity,
 * policy and transport (when it names one); connections in config order, then sources, then sinks. Fan-out is several edges from
 * one source; fan-in is several edges into one sink.
 */
export function toLinkGraph(config: Pick<PipelineConfig, 'connections'>): LinkGraph {
  const edges: LinkEdge[] = [];
  for (const connection of config.connections) {
    for (const from of connection.sources) {
      for (const to of connection.sinks) {
        edges.push({
          connection: connection.name,
          from: { ...from },
          to: { ...to },
          capacity: connection.capacity,
          policy: connection.policy,
          ...(connection.transport === undefined ? {} : { transport: connection.transport }),
        });
      }
    }
  }
  return { edges };
}
