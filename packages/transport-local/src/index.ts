/**
 * @improv/transport-local — improv links between the workers of one process, as single-producer /
 * single-consumer rings in SharedArrayBuffers.
 *
 * Each edge of the pipeline graph (one source endpoint → one sink endpoint) gets its own ring of
 * length-prefixed msgpack records. A sink reads all rings feeding it round-robin (fan-in: none lost,
 * FIFO per source) and sleeps on one shared doorbell word; a source encodes each message once and
 * copies it into the ring of every sink (fan-out). Waiting spins for a few microseconds, then sleeps
 * with `Atomics.waitAsync`, so an idle link costs no CPU and the worker keeps handling control
 * messages. Full rings either hold the producer back (`block`) or drop the sink's oldest message
 * (`drop-oldest`).
 *
 * @example
 * ```ts
 * import { createNexus } from '@improv/core';
 * import { createLocalTransport } from '@improv/transport-local';
 *
 * const nexus = await createNexus({ config: 'pipeline.yaml', store, transport: createLocalTransport() });
 *
 * // or by hand: plan a graph, hand each descriptor to a worker, open it there
 * const plan = await createLocalTransport().plan({ edges: [{
 *   connection: 'frames', from: { actor: 'Generator', link: 'q_out' }, to: { actor: 'Processor', link: 'q_in' },
 *   capacity: 1024, policy: 'block',
 * }] });
 * const descriptor = plan.endpoints.get('Processor')!.get('q_in')!;
 * const { openLink } = await import(descriptor.module); // in the worker
 * const q_in = openLink(descriptor);
 * ```
 * @module
 */
import {
  checkLinkGraph,
  copyEdge,
  copyEndpoint,
  type DetachOptions,
  type DrainedMessages,
  type Endpoint,
  endpointLabel,
  type Link,
  type LinkDescriptor,
  type LinkGraph,
  type LinkHooks,
  type LinkPlan,
  type OpenLink,
  type Transport,
} from '@improv/core';
import { PlannedEdge } from './_edges.ts';
import { LocalInputLink } from './_input.ts';
import {
  BELL_BYTES,
  BELL_SEQ,
  CONTROL_BYTES,
  CONTROL_CLOSED,
  HEADER_BYTES,
  type InRingDescriptor,
  type LocalInDescriptor,
  type LocalOutDescriptor,
  type OutRingDescriptor,
  SPACE_SEQ,
  wake,
} from './_layout.ts';
import { LocalOutputLink } from './_output.ts';

/** Options of {@link createLocalTransport}. */
export interface LocalTransportOptions {
  /**
   * Bytes one encoded message is expected to take, used to size each ring: `capacity ×
   * bytesPerMessage`, rounded up to a power of two, within `minRingBytes`..`maxRingBytes`.
   * Default 128 (a store key, a timestamp and a few numbers take 40–80).
   */
  bytesPerMessage?: number;
  /**
   * Smallest ring, in bytes (a power of two, at least 256). A ring holds a single message of up to
   * its size minus 4 bytes, so this also sets the largest message a small-capacity link takes.
   * Default 65536 (64 KiB).
   */
  minRingBytes?: number;
  /** Largest ring, in bytes (a power of two, at most 1 GiB). Default 67108864 (64 MiB). */
  maxRingBytes?: number;
  /**
   * Times a waiting `get`/`put` re-checks its ring (with `Atomics.pause` where the runtime has it)
   * before it sleeps — a few microseconds. 0 sleeps at once (for machines with very few cores).
   * Default 256.
   */
  spinIterations?: number;
}

const MAX_RING_BYTES = 2 ** 30;

/**
 * Creates the local transport: links between the workers of one process, as SharedArrayBuffer
 * rings. Pass it to `createNexus({ transport })`.
 */
export function createLocalTransport(options: LocalTransportOptions = {}): Transport {
  const bytesPerMessage = options.bytesPerMessage ?? 128;
  const minRingBytes = options.minRingBytes ?? 65_536;
  const maxRingBytes = options.maxRingBytes ?? 67_108_864;
  const spin = options.spinIterations ?? 256;
  if (!(bytesPerMessage > 0) || !Number.isFinite(bytesPerMessage)) {
    throw new RangeError(`createLocalTransport: bytesPerMessage must be a positive number, got ${bytesPerMessage}`);
  }
  checkRingBytes('minRingBytes', minRingBytes);
  checkRingBytes('maxRingBytes', maxRingBytes);
  if (minRingBytes > maxRingBytes) {
    throw new RangeError(
      `createLocalTransport: minRingBytes (${minRingBytes}) is larger than maxRingBytes (${maxRingBytes}); lower minRingBytes or raise maxRingBytes`,
    );
  }
  if (!Number.isInteger(spin) || spin < 0) {
    throw new RangeError(`createLocalTransport: spinIterations must be an integer ≥ 0, got ${spin}`);
  }

  // Everything a plan created, so close() can mark it closed and wake every sleeper.
  let controls: Int32Array<SharedArrayBuffer>[] = [];
  let sleepers: { words: Int32Array<SharedArrayBuffer>; index: number }[] = [];
  let planned: PlannedEdge[] = [];

  const ringBytes = (capacity: number): number => {
    let bytes = minRingBytes;
    const wanted = capacity * bytesPerMessage;
    while (bytes < wanted && bytes < maxRingBytes) bytes *= 2;
    return bytes;
  };

  return {
    specificationVersion: 1,
    name: 'local',

    async plan(graph: LinkGraph): Promise<LinkPlan> {
      checkLinkGraph(graph);
      const sinks = new Map<string, LocalInDescriptor>();
      const sources = new Map<string, LocalOutDescriptor>();
      const control = new SharedArrayBuffer(CONTROL_BYTES);
      const edges: PlannedEdge[] = [];
      controls.push(new Int32Array(control));
      for (const edge of graph.edges) {
        const from = endpointLabel(edge.from);
        const to = endpointLabel(edge.to);
        let sink = sinks.get(to);
        if (sink === undefined) {
          sink = {
            module: import.meta.url,
            direction: 'in',
            endpoint: copyEndpoint(edge.to),
            transport: 'local',
            control,
            doorbell: new SharedArrayBuffer(BELL_BYTES),
            rings: [],
            spin,
          };
          sinks.set(to, sink);
          sleepers.push({ words: new Int32Array(sink.doorbell), index: BELL_SEQ });
        }
        let source = sources.get(from);
        if (source === undefined) {
          source = {
            module: import.meta.url,
            direction: 'out',
            endpoint: copyEndpoint(edge.from),
            transport: 'local',
            control,
            rings: [],
            spin,
          };
          sources.set(from, source);
        }
        const buffer = new SharedArrayBuffer(HEADER_BYTES + ringBytes(edge.capacity));
        sleepers.push({ words: new Int32Array(buffer, 0, HEADER_BYTES / 4), index: SPACE_SEQ });
        edges.push(new PlannedEdge(copyEdge(edge), buffer, sink.doorbell));
        const shared = { buffer, capacity: edge.capacity, policy: edge.policy, connection: edge.connection };
        sink.rings.push({ ...shared, peer: from } satisfies InRingDescriptor);
        source.rings.push({ ...shared, peer: to, doorbell: sink.doorbell } satisfies OutRingDescriptor);
      }
      for (const edge of edges) edge.sole = sources.get(endpointLabel(edge.edge.from))!.rings.length === 1;
      planned.push(...edges);
      const endpoints = new Map<string, Map<string, LinkDescriptor>>();
      for (const descriptor of [...sinks.values(), ...sources.values()]) {
        const { actor, link } = descriptor.endpoint;
        let links = endpoints.get(actor);
        if (links === undefined) {
          links = new Map();
          endpoints.set(actor, links);
        }
        links.set(link, descriptor);
      }
      return { endpoints };
    },

    stats() {
      return planned.map((edge) => edge.stats());
    },

    detach(actor: string, options: DetachOptions = {}): DrainedMessages[] {
      const drained: DrainedMessages[] = [];
      for (const edge of planned) {
        if (edge.edge.from.actor === actor) edge.producerGone();
        // A restarted actor comes back to its rings: its sinks wait for it, and what waits for it
        // stays in the ring for it to read (its producers wait while the ring is full).
        if (options.restarting) continue;
        if (edge.edge.from.actor === actor) edge.closeSource();
        if (edge.edge.to.actor === actor) {
          edge.closeSink();
          const messages = edge.drain();
          if (messages) drained.push(messages);
        }
      }
      return drained;
    },

    drain(): DrainedMessages[] {
      return planned.flatMap((edge) => edge.drain() ?? []);
    },

    async close(): Promise<void> {
      for (const control of controls) Atomics.store(control, CONTROL_CLOSED, 1);
      // Every link now refuses calls; wake whoever sleeps so pending calls reject too.
      for (const { words, index } of sleepers) wake(words, index);
      controls = [];
      sleepers = [];
      planned = [];
    },
  };
}

/**
 * Rebuilds a link from a descriptor made by {@link createLocalTransport}'s `plan`, in any worker of
 * the process that planned it. Open each descriptor once: a ring has exactly one producer and one
 * consumer.
 */
export const openLink: OpenLink = (descriptor: LinkDescriptor, hooks?: LinkHooks): Link => {
  if (descriptor.transport !== 'local' || !Array.isArray(descriptor.rings)) {
    throw new TypeError(
      `@improv/transport-local: the descriptor of link "${describe(descriptor)}" was not made by the local transport (its module is ${String(descriptor.module)}); open it with the module it names`,
    );
  }
  if (!(descriptor.control instanceof SharedArrayBuffer)) {
    throw new TypeError(
      `@improv/transport-local: the descriptor of link "${describe(descriptor)}" lost its SharedArrayBuffers; pass descriptors with postMessage/structuredClone, not JSON`,
    );
  }
  if (descriptor.direction === 'in') return new LocalInputLink(descriptor as LocalInDescriptor, hooks);
  if (descriptor.direction === 'out') return new LocalOutputLink(descriptor as LocalOutDescriptor, hooks);
  throw new TypeError(
    `@improv/transport-local: link "${describe(descriptor)}" has direction ${String(descriptor.direction)}; expected "in" or "out"`,
  );
};

function describe(descriptor: LinkDescriptor): string {
  const endpoint = descriptor.endpoint as Partial<Endpoint> | undefined;
  return `${String(endpoint?.actor)}.${String(endpoint?.link)}`;
}

function checkRingBytes(name: string, bytes: number): void {
  if (!Number.isInteger(bytes) || bytes < 256 || bytes > MAX_RING_BYTES || (bytes & (bytes - 1)) !== 0) {
    throw new RangeError(
      `createLocalTransport: ${name} must be a power of two from 256 to ${MAX_RING_BYTES}, got ${bytes}`,
    );
  }
}
