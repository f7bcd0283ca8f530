/**
 * Conformance suite of the {@link Transport} contract. Every transport's test file calls it; it runs
 * links inside real workers started through the given {@link RuntimeAdapter}, so the same suite
 * checks each transport on Node, Bun and Deno.
 *
 * @example
 * ```ts
 * import { createNodeRuntime } from '@improv/core/runtime/node';
 * import { describeTransportConformance } from '@improv/core/testing';
 * import { createLocalTransport } from '@improv/transport-local';
 *
 * describeTransportConformance({ name: 'local', createTransport: createLocalTransport, runtime: createNodeRuntime() });
 * ```
 * @module
 */
import { describe, expect, it } from 'vitest';
import { ImprovError, InterruptedError, type SerializedError } from '../errors.ts';
import type {
  InputLink,
  Link,
  LinkEdge,
  LinkPlan,
  LinkPolicy,
  OpenLink,
  OutputLink,
  Transport,
} from '../link/transport.ts';
import type { RuntimeAdapter, WorkerHandle } from '../runtime/adapter.ts';
import type { GetResult, LinkWorkerCommand, LinkWorkerReply } from './_link-worker.ts';

/** Options of {@link describeTransportConformance}. */
export interface TransportConformanceOptions {
  /** Shown in the suite's title. */
  name: string;
  /** Makes a fresh transport; each test plans its own graph and closes the transport. */
  createTransport: () => Transport;
  /** Starts the workers the links run in. */
  runtime: RuntimeAdapter;
  /**
   * Size of a message (a `Uint8Array` of this many bytes) the transport must refuse with
   * `LinkMessageTooLargeError` on a link of capacity 4. Default 16 MiB.
   */
  tooLargeMessageBytes?: number;
}

const workerEntry = new URL('./_link-worker.ts', import.meta.url).href;

/** Registers the transport conformance tests (vitest `describe`/`it`) for one transport. */
export function describeTransportConformance(options: TransportConformanceOptions): void {
  const { createTransport, runtime } = options;
  const tooLarge = options.tooLargeMessageBytes ?? 16 * 1024 * 1024;

  /** Runs `body` with a fresh transport and worker pool, and cleans both up whatever happens. */
  async function withSetup(body: (setup: Setup) => Promise<void>): Promise<void> {
    const transport = createTransport();
    const setup = new Setup(transport, runtime);
    try {
      await body(setup);
    } finally {
      await setup.dispose();
      await transport.close();
    }
  }

  describe(`Transport conformance: ${options.name} on ${runtime.name}`, () => {
    it('describes itself and plans one descriptor per endpoint, with its direction', async () => {
      const transport = createTransport();
      try {
        expect(transport.specificationVersion).toBe(1);
        expect(transport.name).toBe(options.name);
        const plan = await transport.plan({
          edges: [edge('c', 'A.q_out', 'B.q_in'), edge('c', 'A.q_out', 'C.q_in'), edge('d', 'D.out', 'B.q_in')],
        });
        const summary = [...plan.endpoints].flatMap(([actor, links]) =>
          [...links].map(([link, descriptor]) => [
            actor,
            link,
            descriptor.direction,
            descriptor.endpoint.actor,
            descriptor.endpoint.link,
          ]),
        );
        expect(summary.sort()).toEqual(
          [
            ['A', 'q_out', 'out', 'A', 'q_out'],
            ['B', 'q_in', 'in', 'B', 'q_in'],
            ['C', 'q_in', 'in', 'C', 'q_in'],
            ['D', 'out', 'out', 'D', 'out'],
          ].sort(),
        );
        for (const links of plan.endpoints.values()) {
          for (const descriptor of links.values()) expect(typeof descriptor.module).toBe('string');
        }
      } finally {
        await transport.close();
      }
    });

    it('keeps FIFO order across workers for many messages of mixed size', () =>
      withSetup(async (setup) => {
        const count = 5000;
        const plan = await setup.plan([edge('frames', 'P.q_out', 'C.q_in', 64)]);
        const [producer, consumer] = await setup.spawn('producer', 'consumer');
        await producer.open(plan, 'P', 'q_out');
        await consumer.open(plan, 'C', 'q_in');
        const got = consumer.request<GetResult>({ op: 'get', name: 'C.q_in', count });
        await producer.request({ op: 'put', name: 'P.q_out', source: 'P', from: 0, count, shape: 'mixed' });
        const { received } = await got;
        expect(received.length).toBe(count);
        expect(received.every(([, seq, intact], index) => seq === index && intact)).toBe(true);
      }));

    it('fans out 1 → 3: every sink gets every message, in order', () =>
      withSetup(async (setup) => {
        const count = 2000;
        const sinks = ['S1', 'S2', 'S3'];
        const plan = await setup.plan(sinks.map((sink) => edge('out', 'P.q_out', `${sink}.q_in`, 32)));
        const [producer, ...consumers] = await setup.spawn('producer', ...sinks);
        await producer.open(plan, 'P', 'q_out');
        await Promise.all(consumers.map((consumer, index) => consumer.open(plan, sinks[index]!, 'q_in')));
        const results = consumers.map((consumer, index) =>
          consumer.request<GetResult>({ op: 'get', name: `${sinks[index]}.q_in`, count }),
        );
        await producer.request({ op: 'put', name: 'P.q_out', source: 'P', from: 0, count, shape: 'mixed' });
        for (const { received } of await Promise.all(results)) {
          expect(received.length).toBe(count);
          expect(received.every(([source, seq, intact], index) => source === 'P' && seq === index && intact)).toBe(
            true,
          );
        }
      }));

    it('fans in 3 → 1 from two connections: none lost, FIFO per source', () =>
      withSetup(async (setup) => {
        const count = 3000;
        const sources = ['P1', 'P2', 'P3'];
        const plan = await setup.plan([
          edge('a', 'P1.q_out', 'C.q_in', 16),
          edge('a', 'P2.q_out', 'C.q_in', 16),
          edge('b', 'P3.q_out', 'C.q_in', 16),
        ]);
        const [consumer, ...producers] = await setup.spawn('consumer', ...sources);
        await consumer.open(plan, 'C', 'q_in');
        await Promise.all(producers.map((producer, index) => producer.open(plan, sources[index]!, 'q_out')));
        const got = consumer.request<GetResult>({ op: 'get', name: 'C.q_in', count: count * sources.length });
        await Promise.all(
          producers.map((producer, index) =>
            producer.request({
              op: 'put',
              name: `${sources[index]}.q_out`,
              source: sources[index]!,
              from: 0,
              count,
              shape: index === 1 ? 'mixed' : 'small',
            }),
          ),
        );
        const { received } = await got;
        expect(received.length).toBe(count * sources.length);
        expect(received.every(([, , intact]) => intact)).toBe(true);
        for (const source of sources) {
          const seqs = received.filter(([from]) => from === source).map(([, seq]) => seq);
          expect(seqs).toEqual(Array.from({ length: count }, (_, index) => index));
        }
      }));

    it('block: a fast producer is held back by a slow consumer, and every message arrives', () =>
      withSetup(async (setup) => {
        const count = 2000;
        const capacity = 8;
        const plan = await setup.plan([edge('slow', 'P.q_out', 'C.q_in', capacity, 'block')]);
        const [producer, consumer] = await setup.spawn('producer', 'consumer');
        await producer.open(plan, 'P', 'q_out');
        await consumer.open(plan, 'C', 'q_in');
        const progress = new SharedArrayBuffer(4);
        const completed = new Int32Array(progress);
        const produced = producer.request({
          op: 'put',
          name: 'P.q_out',
          source: 'P',
          from: 0,
          count,
          shape: 'small',
          progress,
        });
        // Nobody reads yet: the producer fills the link and then must wait.
        await Promise.race([waitAtLeast(completed, capacity), produced]);
        expect(await consumer.request({ op: 'size', name: 'C.q_in' })).toBe(capacity);
        expect(Atomics.load(completed, 0)).toBe(capacity);
        const { received, maxSize } = await consumer.request<GetResult>({
          op: 'get',
          name: 'C.q_in',
          count,
          slowEvery: 100,
        });
        await produced;
        expect(received.length).toBe(count);
        expect(received.every(([, seq, intact], index) => seq === index && intact)).toBe(true);
        expect(maxSize).toBeLessThanOrEqual(capacity);
      }));

    it('drop-oldest: a consumer that reads late sees the newest messages', () =>
      withSetup(async (setup) => {
        const capacity = 4;
        const plan = await setup.plan([edge('latest', 'P.q_out', 'C.q_in', capacity, 'drop-oldest')]);
        const [producer, consumer] = await setup.spawn('producer', 'consumer');
        await producer.open(plan, 'P', 'q_out');
        await consumer.open(plan, 'C', 'q_in');
        // Never blocks, although nobody reads.
        await producer.request({ op: 'put', name: 'P.q_out', source: 'P', from: 0, count: 100, shape: 'mixed' });
        expect(await consumer.request({ op: 'size', name: 'C.q_in' })).toBe(capacity);
        const { received } = await consumer.request<GetResult>({ op: 'get', name: 'C.q_in', count: capacity });
        expect(received.map(([, seq]) => seq)).toEqual([96, 97, 98, 99]);
        expect(received.every(([, , intact]) => intact)).toBe(true);
        expect(await consumer.request({ op: 'size', name: 'C.q_in' })).toBe(0);
      }));

    it('drop-oldest: a slow consumer reading while the producer drops gets intact messages in order, and the last one', () =>
      withSetup(async (setup) => {
        const count = 20_000;
        const plan = await setup.plan([edge('latest', 'P.q_out', 'C.q_in', 4, 'drop-oldest')]);
        const [producer, consumer] = await setup.spawn('producer', 'consumer');
        await producer.open(plan, 'P', 'q_out');
        await consumer.open(plan, 'C', 'q_in');
        const got = consumer.request<GetResult>({
          op: 'get',
          name: 'C.q_in',
          until: { source: 'P', seq: count - 1 },
          slowEvery: 50,
        });
        await producer.request({ op: 'put', name: 'P.q_out', source: 'P', from: 0, count, shape: 'mixed' });
        const { received } = await got;
        expect(received.every(([, , intact]) => intact)).toBe(true);
        const seqs = received.map(([, seq]) => seq);
        expect(seqs.every((seq, index) => index === 0 || seq > seqs[index - 1]!)).toBe(true);
        expect(seqs.at(-1)).toBe(count - 1);
      }));

    it('interrupt rejects a pending get with the reason, and later gets that would wait, until cleared', () =>
      withSetup(async (setup) => {
        const plan = await setup.plan([edge('c', 'P.q_out', 'C.q_in')]);
        const q_out = await openOut(plan, 'P', 'q_out');
        const q_in = await openIn(plan, 'C', 'q_in');
        setup.onDispose(() => closeAll(q_in, q_out));
        const reason = new InterruptedError('actor "C": interrupted by a signal (test)');
        const pending = q_in.get();
        q_in.interrupt(reason);
        await expect(pending).rejects.toBe(reason);
        await expect(q_in.get()).rejects.toBe(reason);
        // A call that need not wait still succeeds while interrupted.
        await q_out.put({ n: 1 });
        await expect(q_in.get()).resolves.toEqual({ n: 1 });
        q_in.clearInterrupt();
        const later = q_in.get();
        await q_out.put({ n: 2 });
        await expect(later).resolves.toEqual({ n: 2 });
      }));

    it('interrupt rejects a put waiting for room; that message reaches no sink', () =>
      withSetup(async (setup) => {
        const plan = await setup.plan([edge('c', 'P.q_out', 'C.q_in', 2), edge('c', 'P.q_out', 'D.q_in', 2)]);
        const q_out = await openOut(plan, 'P', 'q_out');
        const q_c = await openIn(plan, 'C', 'q_in');
        const q_d = await openIn(plan, 'D', 'q_in');
        setup.onDispose(() => closeAll(q_out, q_c, q_d));
        await q_out.put(1);
        await q_out.put(2);
        expect(q_d.tryGet()).toBe(1); // D has room again, C is full
        const reason = new InterruptedError('actor "P": interrupted by a signal (test)');
        const pending = q_out.put(3);
        q_out.interrupt(reason);
        await expect(pending).rejects.toBe(reason);
        await expect(q_out.put(4)).rejects.toBe(reason);
        q_out.clearInterrupt();
        const later = q_out.put(5);
        expect(await q_c.get()).toBe(1);
        await later;
        expect([q_c.tryGet(), q_c.tryGet(), q_c.tryGet()]).toEqual([2, 5, undefined]);
        expect([q_d.tryGet(), q_d.tryGet(), q_d.tryGet()]).toEqual([2, 5, undefined]);
      }));

    it('close rejects pending and later calls with LinkClosedError', () =>
      withSetup(async (setup) => {
        const plan = await setup.plan([edge('c', 'P.q_out', 'C.q_in', 1)]);
        const q_out = await openOut(plan, 'P', 'q_out');
        const q_in = await openIn(plan, 'C', 'q_in');
        const pendingGet = q_in.get();
        q_in.close();
        await expectCode(pendingGet, 'LINK_CLOSED');
        await expectCode(q_in.get(), 'LINK_CLOSED');

        const plan2 = await setup.plan([edge('c', 'P.q_out', 'C.q_in', 1)]);
        const q_out2 = await openOut(plan2, 'P', 'q_out');
        const q_in2 = await openIn(plan2, 'C', 'q_in');
        setup.onDispose(() => closeAll(q_out, q_in2));
        await q_out2.put('fills the link');
        const pendingPut = q_out2.put('waits for room');
        q_out2.close();
        await expectCode(pendingPut, 'LINK_CLOSED');
        await expectCode(q_out2.put('later'), 'LINK_CLOSED');
      }));

    it('refuses a message larger than the link can hold with LinkMessageTooLargeError, and goes on', () =>
      withSetup(async (setup) => {
        const plan = await setup.plan([edge('c', 'P.q_out', 'C.q_in', 4)]);
        const q_out = await openOut(plan, 'P', 'q_out');
        const q_in = await openIn(plan, 'C', 'q_in');
        setup.onDispose(() => closeAll(q_in, q_out));
        const error = await expectCode(q_out.put(new Uint8Array(tooLarge)), 'LINK_MESSAGE_TOO_LARGE');
        expect(error.message).toContain('P.q_out');
        expect(error.message).toContain('store');
        expect(q_in.size()).toBe(0);
        await q_out.put({ after: true });
        await expect(q_in.get()).resolves.toEqual({ after: true });
      }));

    it('tryGet returns undefined when empty, size() counts waiting messages', () =>
      withSetup(async (setup) => {
        const plan = await setup.plan([edge('a', 'P.q_out', 'C.q_in'), edge('b', 'Q.q_out', 'C.q_in')]);
        const p = await openOut(plan, 'P', 'q_out');
        const q = await openOut(plan, 'Q', 'q_out');
        const q_in = await openIn(plan, 'C', 'q_in');
        setup.onDispose(() => closeAll(p, q, q_in));
        expect(q_in.tryGet()).toBeUndefined();
        expect(q_in.size()).toBe(0);
        await p.put({ from: 'P', n: 1 });
        await p.put({ from: 'P', n: 2 });
        await q.put({ from: 'Q', n: 1 });
        expect(q_in.size()).toBe(3);
        const first = q_in.tryGet();
        expect(first).toBeDefined();
        expect(q_in.size()).toBe(2);
        await q_in.get();
        await q_in.get();
        expect(q_in.size()).toBe(0);
        expect(q_in.tryGet()).toBeUndefined();
      }));

    it('carries msgpack values unchanged', () =>
      withSetup(async (setup) => {
        const plan = await setup.plan([edge('c', 'P.q_out', 'C.q_in')]);
        const q_out = await openOut(plan, 'P', 'q_out');
        const q_in = await openIn(plan, 'C', 'q_in');
        setup.onDispose(() => closeAll(q_in, q_out));
        const values = [
          null,
          0,
          -1.5,
          2 ** 40,
          'text with ü and 😀',
          '',
          [1, [2, 3]],
          { key: 'frame-17', t: 123.25, nested: { ok: true } },
          new Uint8Array([1, 2, 3]),
        ];
        for (const value of values) await q_out.put(value);
        for (const value of values) expect(await q_in.get()).toEqual(value);
      }));
  });
}

/** An edge from `Actor.link` to `Actor.link`. */
function edge(connection: string, from: string, to: string, capacity = 1024, policy: LinkPolicy = 'block'): LinkEdge {
  return { connection, from: endpoint(from), to: endpoint(to), capacity, policy };
}

function endpoint(label: string): { actor: string; link: string } {
  const [actor, link] = label.split('.') as [string, string];
  return { actor, link };
}

async function openLinkOf(plan: LinkPlan, actor: string, link: string): Promise<Link> {
  const descriptor = plan.endpoints.get(actor)?.get(link);
  if (descriptor === undefined) throw new Error(`the plan has no endpoint ${actor}.${link}`);
  const module = (await import(descriptor.module)) as { openLink?: OpenLink };
  if (typeof module.openLink !== 'function') throw new Error(`${descriptor.module} does not export openLink()`);
  return module.openLink(descriptor);
}

async function openIn(plan: LinkPlan, actor: string, link: string): Promise<InputLink> {
  const opened = await openLinkOf(plan, actor, link);
  if (opened.direction !== 'in') throw new Error(`${actor}.${link} opened as an ${opened.direction} link`);
  return opened;
}

async function openOut(plan: LinkPlan, actor: string, link: string): Promise<OutputLink> {
  const opened = await openLinkOf(plan, actor, link);
  if (opened.direction !== 'out') throw new Error(`${actor}.${link} opened as an ${opened.direction} link`);
  return opened;
}

function closeAll(...links: Link[]): void {
  for (const link of links) link.close();
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<Error> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(ImprovError.isInstance(error) ? error.code : error).toBe(code);
  return error as Error;
}

/** Sleeps (no polling) until `words[0]` is at least `target`. */
async function waitAtLeast(words: Int32Array<SharedArrayBuffer>, target: number): Promise<void> {
  for (;;) {
    const value = Atomics.load(words, 0);
    if (value >= target) return;
    const result = Atomics.waitAsync(words, 0, value);
    if (result.async) await result.value;
  }
}

type Command = LinkWorkerCommand extends infer C ? (C extends { id: number } ? Omit<C, 'id'> : never) : never;

/** A link worker and its request/reply channel. */
class Peer {
  readonly #handle: WorkerHandle;
  readonly #pending = new Map<number, { resolve(value: unknown): void; reject(error: unknown): void }>();
  #nextId = 1;
  #failure: Error | undefined;

  constructor(handle: WorkerHandle, name: string) {
    this.#handle = handle;
    handle.onMessage((message) => {
      const reply = message as LinkWorkerReply;
      const pending = this.#pending.get(reply.id);
      if (pending === undefined) return;
      this.#pending.delete(reply.id);
      if (reply.ok) pending.resolve(reply.result);
      else pending.reject(revive(reply.error));
    });
    const fail = (error: Error) => {
      this.#failure = error;
      for (const pending of this.#pending.values()) pending.reject(error);
      this.#pending.clear();
    };
    handle.onError((error) => fail(new Error(`link worker "${name}" failed: ${error.message}`, { cause: error })));
    handle.onExit((code) => fail(new Error(`link worker "${name}" exited (code ${code})`)));
  }

  request<T = unknown>(command: Command): Promise<T> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.#handle.postMessage({ ...command, id });
    });
  }

  open(plan: LinkPlan, actor: string, link: string): Promise<unknown> {
    const descriptor = plan.endpoints.get(actor)?.get(link);
    if (descriptor === undefined) return Promise.reject(new Error(`the plan has no endpoint ${actor}.${link}`));
    return this.request({ op: 'open', name: `${actor}.${link}`, descriptor });
  }

  async stop(): Promise<void> {
    if (this.#failure === undefined) await this.request({ op: 'exit' }).catch(() => {});
    await this.#handle.terminate();
  }
}

function revive(serialized: SerializedError): Error {
  const error = new Error(serialized.message);
  error.name = serialized.name;
  if (serialized.code !== undefined) Object.assign(error, { code: serialized.code });
  return error;
}

/** One test's transport plans, workers and clean-ups. */
class Setup {
  readonly #transport: Transport;
  readonly #runtime: RuntimeAdapter;
  readonly #peers: Peer[] = [];
  readonly #cleanups: (() => void)[] = [];

  constructor(transport: Transport, runtime: RuntimeAdapter) {
    this.#transport = transport;
    this.#runtime = runtime;
  }

  plan(edges: LinkEdge[]): Promise<LinkPlan> {
    return this.#transport.plan({ edges });
  }

  async spawn<Names extends string[]>(...names: Names): Promise<{ [K in keyof Names]: Peer }> {
    const peers = await Promise.all(
      names.map(async (name) => {
        const peer = new Peer(await this.#runtime.spawnWorker({ name, entry: workerEntry }), name);
        this.#peers.push(peer);
        return peer;
      }),
    );
    return peers as { [K in keyof Names]: Peer };
  }

  onDispose(cleanup: () => void): void {
    this.#cleanups.push(cleanup);
  }

  async dispose(): Promise<void> {
    for (const cleanup of this.#cleanups) cleanup();
    await Promise.all(this.#peers.map((peer) => peer.stop()));
  }
}
