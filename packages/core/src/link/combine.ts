/**
 * Several transports as one: each connection's edges go to the transport it names
 * (`transport: zmq`), the others to the pipeline's default; stats, detach, drain and close cover
 * them all. Nexus uses it when an embedding program passes more than one transport, or when the
 * CLI picks them from the pipeline's settings.
 *
 * @example
 * ```ts
 * const transport = combineTransports([createLocalTransport(), createZmqTransport()], 'local');
 * ```
 * @module
 */

import { settingError } from '../config/_setting-error.ts';
import type { PipelineConfig, SettingOrigin, TransportSettings } from '../config/types.ts';
import type {
  DetachOptions,
  DrainedMessages,
  LinkEdge,
  LinkGraph,
  LinkPlan,
  LinkStats,
  Transport,
} from './transport.ts';

/**
 * The transports of a pipeline: one, several (mixed per connection, the first being the default
 * unless `settings.transport` names another), or a function that makes them from the pipeline's
 * transport settings (what the CLI does), the default first.
 */
export type TransportChoice =
  | Transport
  | Transport[]
  | ((
      settings: TransportSettings,
      config: PipelineConfig,
    ) => Transport | Transport[] | Promise<Transport | Transport[]>);

/**
 * Makes the pipeline's transport from `choice`; a function that throws (a missing key file, a bind
 * address without keys) fails as a config error at the setting it concerns.
 */
export async function openPipelineTransport(choice: TransportChoice, config: PipelineConfig): Promise<Transport> {
  const settings = config.settings.transport;
  let chosen: Transport | Transport[];
  try {
    chosen = typeof choice === 'function' ? await choice(settings, config) : choice;
  } catch (error) {
    throw settingError(error, originOf(error, settings));
  }
  const list = Array.isArray(chosen) ? chosen : [chosen];
  const first = list[0];
  if (first === undefined) throw new TypeError('createNexus: transport is an empty list; pass at least one transport');
  // A function puts the default first; given transports follow settings.transport when it is written.
  const fallback =
    typeof choice !== 'function' && settings.origins.transport !== undefined ? settings.name : first.name;
  return combineTransports(list, fallback, config);
}

/**
 * A transport's `plan()` failed: an address this machine does not have (`EADDRNOTAVAIL` when a sink
 * listens on `settings.zmq.bind`) becomes a config error at that setting; anything else is unchanged.
 */
export function planError(error: unknown, config: PipelineConfig): unknown {
  if ((error as { code?: unknown } | null)?.code !== 'EADDRNOTAVAIL') return error;
  const { origins } = config.settings.transport;
  return settingError(error, origins['zmq.bind'] ?? origins.zmq);
}

function originOf(error: unknown, settings: TransportSettings): SettingOrigin | undefined {
  const text = error instanceof Error ? error.message : '';
  if (/\bkey/i.test(text)) return settings.origins['zmq.keys'] ?? settings.origins['zmq.bind'] ?? settings.origins.zmq;
  if (/\bbind/i.test(text)) return settings.origins['zmq.bind'] ?? settings.origins.zmq;
  return settings.origins.zmq ?? settings.origins.transport;
}

/**
 * One transport over `transports`: an edge goes to the one named by its `transport`, else to
 * `defaultName`. An edge naming a transport that is not there fails the plan with a clear error.
 * A single transport that every edge may use is returned as it is.
 */
export function combineTransports(
  transports: Transport[],
  defaultName: string,
  config?: Pick<PipelineConfig, 'source'>,
): Transport {
  const byName = new Map<string, Transport>();
  for (const transport of transports) {
    if (byName.has(transport.name)) {
      throw new TypeError(`createNexus: two transports named "${transport.name}" given; pass each transport once`);
    }
    byName.set(transport.name, transport);
  }
  const pick = (edge: LinkEdge): Transport => {
    const name = edge.transport ?? defaultName;
    const transport = byName.get(name);
    if (transport) return transport;
    const given = [...byName.keys()].join(', ');
    throw new Error(
      `${config?.source ?? 'pipeline'}: connection "${edge.connection}" uses the ${name} transport, but this run has only ${given}; ${
        name === 'zmq'
          ? 'pass createZmqTransport() from @improv/transport-zmq to createNexus beside the others'
          : `pass a transport named ${name} to createNexus`
      }, or change the connection's transport`,
    );
  };
  const only = transports[0];
  if (transports.length === 1 && only?.name === defaultName) {
    return {
      ...bind(only),
      plan: (graph) => {
        for (const edge of graph.edges) pick(edge);
        return only.plan(graph);
      },
    };
  }
  let used: Transport[] = [];
  return {
    specificationVersion: 1,
    name: transports.map((transport) => transport.name).join('+'),
    async plan(graph: LinkGraph): Promise<LinkPlan> {
      const parts = new Map<Transport, LinkEdge[]>();
      for (const edge of graph.edges) {
        const transport = pick(edge);
        const edges = parts.get(transport);
        if (edges) edges.push(edge);
        else parts.set(transport, [edge]);
      }
      used = [...parts.keys()];
      const endpoints: LinkPlan['endpoints'] = new Map();
      for (const [transport, edges] of parts) {
        const plan = await transport.plan(graph.placement ? { edges, placement: graph.placement } : { edges });
        for (const [actor, links] of plan.endpoints) {
          const merged = endpoints.get(actor) ?? new Map();
          for (const [link, descriptor] of links) {
            if (merged.has(link)) {
              throw new Error(
                `${config?.source ?? 'pipeline'}: ${actor}.${link} is in connections on two transports; one link uses one transport — give those connections the same transport`,
              );
            }
            merged.set(link, descriptor);
          }
          endpoints.set(actor, merged);
        }
      }
      return { endpoints };
    },
    stats: (): LinkStats[] => used.flatMap((transport) => transport.stats()),
    detach: (actor: string, options?: DetachOptions): DrainedMessages[] =>
      used.flatMap((transport) => transport.detach(actor, options)),
    drain: (): DrainedMessages[] => used.flatMap((transport) => transport.drain()),
    async close(): Promise<void> {
      await Promise.all(transports.map((transport) => transport.close()));
    },
  };
}

/** `transport`'s members as plain functions bound to it. */
function bind(transport: Transport): Transport {
  return {
    specificationVersion: 1,
    name: transport.name,
    plan: (graph) => transport.plan(graph),
    stats: () => transport.stats(),
    detach: (actor, options) => transport.detach(actor, options),
    drain: () => transport.drain(),
    close: () => transport.close(),
  };
}
