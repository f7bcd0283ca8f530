/**
 * Links of the program that embeds Nexus: it reads what an actor puts on an output endpoint
 * (`nexus.input('Processor.q_out')`) and writes into an actor's input endpoint
 * (`nexus.output('Processor.q_in')`), with the same links, capacity, back-pressure and counters as
 * between actors — no log parsing, no polling of the store. The endpoints are named in
 * `createNexus({ host: { inputs, outputs } })`, because links are planned before any actor starts.
 *
 * @example
 * ```ts
 * const nexus = await createNexus({ config: 'pipeline.yaml', store, transport,
 *   host: { inputs: ['Processor.q_out'], outputs: ['Processor.q_in'] } });
 * await nexus.setup();
 * await nexus.run();
 * await nexus.output('Processor.q_in').put({ frame: 1 });
 * const result = await nexus.input('Processor.q_out').get();
 * ```
 * @module
 */
import { closest } from '../config/_suggest.ts';
import type { PipelineConfig } from '../config/types.ts';
import { ConfigError, DEFAULT_LINK_CAPACITY, type Diagnostic, MAX_LINK_CAPACITY } from '../config/types.ts';
import { openLink } from './open.ts';
import type { InputLink, LinkDescriptor, LinkEdge, LinkHooks, LinkPolicy, OutputLink } from './transport.ts';

/** The actor name the embedding program's endpoints go by in the link graph and in `status()`. */
export const HOST_ACTOR = '<host>';

/** One endpoint of the host program: `'Actor.link'`, or that with the link's own capacity and policy. */
export type HostEndpoint = string | { endpoint: string; capacity?: number; policy?: LinkPolicy };

/** `createNexus({ host })`: the endpoints the embedding program reads from and writes to. */
export interface HostLinkOptions {
  /**
   * Output endpoints of actors (`'Processor.q_out'`) whose messages the program reads with
   * `nexus.input(endpoint)`. Beside the actors the YAML connects there (fan-out: each gets every
   * message). Capacity and policy default to that connection's, else 1024 and `block`.
   */
  inputs?: readonly HostEndpoint[];
  /**
   * Input endpoints of actors (`'Processor.q_in'`) the program writes into with
   * `nexus.output(endpoint)`, beside the actors the YAML connects there (fan-in).
   */
  outputs?: readonly HostEndpoint[];
}

/**
 * The edges between the actors and the host program. Throws a {@link ConfigError} that names every
 * endpoint that is malformed, names no actor, is used the wrong way round or is given twice.
 */
export function hostEdges(config: PipelineConfig, options: HostLinkOptions | undefined): LinkEdge[] {
  const edges: LinkEdge[] = [];
  const problems: Diagnostic[] = [];
  const actors = config.actors.map((actor) => actor.name);
  const sources = new Map<string, { capacity: number; policy: LinkPolicy }>();
  const sinks = new Set<string>();
  for (const connection of config.connections) {
    for (const from of connection.sources) sources.set(`${from.actor}.${from.link}`, connection);
    for (const to of connection.sinks) sinks.add(`${to.actor}.${to.link}`);
  }
  const seen = new Set<string>();
  for (const direction of ['inputs', 'outputs'] as const) {
    for (const given of options?.[direction] ?? []) {
      const spec = typeof given === 'string' ? { endpoint: given } : given;
      const where = `host.${direction}: "${spec.endpoint}"`;
      const problem = (message: string, fix: string) =>
        problems.push({ severity: 'error', path: ['host', direction], message: `${where} ${message}`, fix });
      const match = /^([^.\s]+)\.([^.\s]+)$/.exec(spec.endpoint ?? '');
      if (!match) {
        problem('is not an endpoint', 'write it as Actor.link, e.g. Processor.q_out');
        continue;
      }
      const [, actor, link] = match as unknown as [string, string, string];
      if (!actors.includes(actor)) {
        const suggestion = closest(actor, actors);
        problem(
          `names no actor of the pipeline`,
          `${suggestion ? `did you mean "${suggestion}"? ` : ''}the pipeline's actors are ${actors.join(', ')}`,
        );
        continue;
      }
      if (seen.has(spec.endpoint)) {
        problem('is given twice', 'name each endpoint once');
        continue;
      }
      seen.add(spec.endpoint);
      const reading = direction === 'inputs';
      if (reading ? sinks.has(spec.endpoint) : sources.has(spec.endpoint)) {
        problem(
          reading
            ? `is an input of ${actor} in the pipeline: the program can read only what an actor puts`
            : `is an output of ${actor} in the pipeline: the program can write only into what an actor gets from`,
          reading
            ? `read one of ${actor}'s outputs (e.g. ${actor}.q_out)`
            : `write into ${actor}'s input (e.g. ${actor}.q_in)`,
        );
        continue;
      }
      const inherited = reading ? sources.get(spec.endpoint) : undefined;
      const capacity = spec.capacity ?? inherited?.capacity ?? DEFAULT_LINK_CAPACITY;
      if (!Number.isInteger(capacity) || capacity < 1 || capacity > MAX_LINK_CAPACITY) {
        problem(`has capacity ${capacity}`, `give a whole number of messages from 1 to ${MAX_LINK_CAPACITY}`);
        continue;
      }
      const policy = spec.policy ?? inherited?.policy ?? 'block';
      if (policy !== 'block' && policy !== 'drop-oldest') {
        problem(`has policy "${String(policy)}"`, 'give block or drop-oldest');
        continue;
      }
      const actorSide = { actor, link };
      const hostSide = { actor: HOST_ACTOR, link: spec.endpoint };
      edges.push({
        connection: `host:${spec.endpoint}`,
        from: reading ? actorSide : hostSide,
        to: reading ? hostSide : actorSide,
        capacity,
        policy,
      });
    }
  }
  if (problems.length > 0) {
    const lines = problems.map((p) => `  ${p.message}\n    fix: ${p.fix}`).join('\n');
    throw new ConfigError(`invalid host links (createNexus option "host"):\n${lines}`, problems);
  }
  return edges;
}

/** The host program's open links, by endpoint. */
export class HostLinks {
  readonly #inputs = new Map<string, InputLink>();
  readonly #outputs = new Map<string, OutputLink>();

  /** Opens the host side of every planned host edge. */
  static async open(descriptors: Map<string, LinkDescriptor> | undefined, hooks: LinkHooks): Promise<HostLinks> {
    const links = new HostLinks();
    for (const [endpoint, descriptor] of descriptors ?? []) {
      const link = await openLink(descriptor, hooks);
      if (link.direction === 'in') links.#inputs.set(endpoint, link);
      else links.#outputs.set(endpoint, link);
    }
    return links;
  }

  input<T>(endpoint: string): InputLink<T> {
    const link = this.#inputs.get(endpoint);
    if (!link) throw notDeclared('input', endpoint, [...this.#inputs.keys()]);
    return link as InputLink<T>;
  }

  output<T>(endpoint: string): OutputLink<T> {
    const link = this.#outputs.get(endpoint);
    if (!link) throw notDeclared('output', endpoint, [...this.#outputs.keys()]);
    return link as OutputLink<T>;
  }

  /**
   * Closes every link: a waiting `get` rejects with `LinkClosedError`, a waiting `put` gives up.
   * Settles once every link released its resources.
   */
  async close(): Promise<void> {
    await Promise.all([...this.#inputs.values(), ...this.#outputs.values()].map((link) => link.close()));
  }
}

function notDeclared(kind: 'input' | 'output', endpoint: string, declared: string[]): Error {
  const list = declared.length > 0 ? `its host ${kind}s are ${declared.join(', ')}` : `it has no host ${kind}s`;
  return new Error(
    `nexus.${kind}("${endpoint}"): not declared when the pipeline was created (${list}); add it to createNexus({ host: { ${kind}s: ["${endpoint}"] } })`,
  );
}
