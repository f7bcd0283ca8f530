/**
 * Which transport each edge takes, decided from where its actors run — in one place, from the
 * graph, never by actors. Workers of the Nexus process (and the embedding program's own links)
 * share memory, so their edges take the pipeline's default transport (ring buffers unless
 * `settings.transport` says otherwise). An actor in its own process shares no memory with anyone,
 * so every edge into or out of it goes over `zmq` (ipc on one host). One link uses one transport,
 * so a connection that must go over zmq takes along every connection that shares an endpoint with
 * it (a worker's output feeding both a worker and a process actor is one zmq link).
 * @module
 */
import type { ActorConfig, ConnectionConfig, PipelineConfig } from '../config/types.ts';
import type { Endpoint, LinkEdge } from './transport.ts';

/** A connection that names a transport placement cannot honour. */
export interface PlacementProblem {
  connection: string;
  message: string;
  fix: string;
}

/** The transport edges take between processes. */
export const CROSS_PROCESS_TRANSPORT = 'zmq';

/**
 * The connections whose edges must take the cross-process transport, and the problems (a connection
 * that names another transport although it must cross). `edges` defaults to the config's own.
 */
export function crossProcessConnections(
  config: {
    actors: readonly { name: string; process?: ActorConfig['process'] | undefined }[];
    connections: readonly ConnectionConfig[];
  },
  edges: readonly LinkEdge[],
): { connections: Set<string>; problems: PlacementProblem[] } {
  const own = new Set(config.actors.filter((actor) => actor.process !== undefined).map((actor) => actor.name));
  const key = (endpoint: Endpoint, side: 'out' | 'in') => `${side}:${endpoint.actor}.${endpoint.link}`;
  // Connections by endpoint, to spread "must cross" to every connection sharing a link.
  const byEndpoint = new Map<string, Set<string>>();
  const endpointsOf = new Map<string, string[]>();
  const seeds = new Set<string>();
  for (const edge of edges) {
    const ends = [key(edge.from, 'out'), key(edge.to, 'in')];
    for (const end of ends) {
      const set = byEndpoint.get(end) ?? new Set<string>();
      set.add(edge.connection);
      byEndpoint.set(end, set);
    }
    endpointsOf.set(edge.connection, [...(endpointsOf.get(edge.connection) ?? []), ...ends]);
    if (own.has(edge.from.actor) || own.has(edge.to.actor)) seeds.add(edge.connection);
  }
  const connections = new Set<string>();
  const queue = [...seeds];
  while (queue.length > 0) {
    const connection = queue.pop()!;
    if (connections.has(connection)) continue;
    connections.add(connection);
    for (const end of endpointsOf.get(connection) ?? []) {
      for (const other of byEndpoint.get(end) ?? []) if (!connections.has(other)) queue.push(other);
    }
  }
  const problems: PlacementProblem[] = [];
  for (const connection of config.connections) {
    if (!connections.has(connection.name)) continue;
    if (connection.transport === undefined || connection.transport === CROSS_PROCESS_TRANSPORT) continue;
    const actors = [...new Set([...connection.sources, ...connection.sinks].map((end) => end.actor))];
    const inProcess = actors.filter((actor) => own.has(actor));
    problems.push({
      connection: connection.name,
      message: `connection "${connection.name}" says transport: ${connection.transport}, but ${
        inProcess.length > 0
          ? `${inProcess.map((actor) => `actor "${actor}"`).join(' and ')} ${inProcess.length === 1 ? 'runs in its own process' : 'run in processes of their own'}`
          : 'it shares a link with a connection to an actor in its own process'
      }, and links between processes go over ${CROSS_PROCESS_TRANSPORT}`,
      fix: `remove  transport: ${connection.transport}  from the connection (placement picks ${CROSS_PROCESS_TRANSPORT} for it), or run its actors as workers (remove method: process / runtime:)`,
    });
  }
  return { connections, problems };
}

/**
 * Gives every edge that must cross processes the cross-process transport (edges that already name
 * it keep it). Throws on a connection that names another transport although it must cross.
 */
export function placeEdges(config: Pick<PipelineConfig, 'source' | 'actors' | 'connections'>, edges: LinkEdge[]): void {
  const { connections, problems } = crossProcessConnections(config, edges);
  if (problems.length > 0) {
    throw new Error(`${config.source}: ${problems.map((problem) => `${problem.message}; ${problem.fix}`).join('\n')}`);
  }
  for (const edge of edges) if (connections.has(edge.connection)) edge.transport = CROSS_PROCESS_TRANSPORT;
}
