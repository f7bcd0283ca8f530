/**
 * Conformance suite of the {@link Transport} contract. Every transport's test file calls it; it runs
 * links inside real workers started through the given {@link RuntimeAdapter}, so the same suite
 * checks each transport on Node, Bun and Deno.
 *
 * A resolved `put` means the message is on its way, not that it has arrived: over a socket a
 * transport delivers a moment later. So the suite waits for arrivals (`arrived`, `eventually`)
 * where a shared-memory transport has them at once, and checks the same outcome. Likewise a
 * transport whose sinks keep their messages in their own process (zmq) cannot hand them to
 * `detach`/`drain`: its sources report what a gone sink never read to their hooks (`sink-gone`)
 * instead, and the suite accepts either, each message exactly once.
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
import { siblingModule } from '../_module-url.ts';
import { ImprovError, type SerializedError } from '../errors.ts';
import type {
  DropReason,
  InputLink,
  Link,
  LinkEdge,
  LinkHooks,
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

const workerEntry = siblingModule(import.meta.url, './_link-worker');

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
        await eventually(async () => (await consumer.request({ op: 'size', name: 'C.q_in' })) === capacity);
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
        await eventually(() => setup.transport.stats()[0]!.dropped === 100 - capacity);
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

    it('hold parks a pending get and later ones without taking a message; release serves them in order', () =>
      withSetup(async (setup) => {
        const plan = await setup.plan([edge('c', 'P.q_out', 'C.q_in')]);
        const q_out = await openOut(plan, 'P', 'q_out');
        const q_in = await openIn(plan, 'C', 'q_in');
        setup.onDispose(() => closeAll(q_in, q_out));
        let heldCalls = 0;
        const first = q_in.get();
        q_in.hold(() => heldCalls++);
        expect(heldCalls).toBe(1); // a get was already waiting: parked at once
        // Held again while held (the host's stop after a pause): the parked get is told at once.
        let heldAgain = 0;
        q_in.hold(() => heldAgain++);
        expect(heldAgain).toBe(1);
        q_in.hold(() => heldCalls++);
        expect(heldCalls).toBe(2);
        await q_out.put({ n: 1 });
        const second = q_in.get();
        expect(heldCalls).toBe(3);
        await q_out.put({ n: 2 });
        expect(q_in.tryGet()).toBeUndefined(); // a held link hands out nothing
        await arrived(q_in, 2);
        await new Promise((resolve) => setTimeout(resolve, 20));
        expect(q_in.size()).toBe(2); // nothing was taken while held
        let settled = false;
        void first.then(() => {
          settled = true;
        });
        await new Promise((resolve) => setTimeout(resolve, 0));
        expect(settled).toBe(false);
        q_in.release();
        await expect(first).resolves.toEqual({ n: 1 });
        await expect(second).resolves.toEqual({ n: 2 });
      }));

    it('hold keeps a put waiting for room with its message, sends nothing new, and release sends both in order', () =>
      withSetup(async (setup) => {
        const plan = await setup.plan([edge('c', 'P.q_out', 'C.q_in', 2), edge('c', 'P.q_out', 'D.q_in', 4)]);
        const q_out = await openOut(plan, 'P', 'q_out');
        const q_c = await openIn(plan, 'C', 'q_in');
        const q_d = await openIn(plan, 'D', 'q_in');
        setup.onDispose(() => closeAll(q_out, q_c, q_d));
        await q_out.put(1);
        await q_out.put(2);
        await arrived(q_d, 2);
        expect(q_d.tryGet()).toBe(1); // D has room, C is full
        let heldCalls = 0;
        const waiting = q_out.put(3);
        q_out.hold(() => heldCalls++);
        expect(heldCalls).toBe(1);
        let heldAgain = 0;
        q_out.hold(() => heldAgain++);
        expect(heldAgain).toBe(1); // held again while held: the waiting put is told at once
        q_out.hold(() => heldCalls++);
        expect(heldCalls).toBe(2);
        const later = q_out.put(4);
        expect(heldCalls).toBe(3);
        await arrived(q_c, 2);
        expect(q_c.tryGet()).toBe(1); // room in C now, but the link is held
        await new Promise((resolve) => setTimeout(resolve, 20));
        expect([q_c.size(), q_d.size()]).toEqual([1, 1]);
        q_out.release();
        await waiting;
        expect(q_c.tryGet()).toBe(2);
        await later;
        await arrived(q_c, 2);
        await arrived(q_d, 3);
        expect([q_c.tryGet(), q_c.tryGet(), q_c.tryGet()]).toEqual([3, 4, undefined]);
        expect([q_d.tryGet(), q_d.tryGet(), q_d.tryGet(), q_d.tryGet()]).toEqual([2, 3, 4, undefined]);
      }));

    it('warns once when puts pile up (a forgotten await), and loses none of them', () =>
      withSetup(async (setup) => {
        const plan = await setup.plan([edge('c', 'P.q_out', 'C.q_in', 4)]);
        const warnings: string[] = [];
        const q_out = await openOut(plan, 'P', 'q_out', { warn: (message) => warnings.push(message) });
        const q_in = await openIn(plan, 'C', 'q_in');
        setup.onDispose(() => closeAll(q_in, q_out));
        const puts = Array.from({ length: 600 }, (_, n) => q_out.put(n));
        expect(warnings).toHaveLength(1);
        expect(warnings[0]).toMatch(/did you forget `await` before this\.q_out\.put\(\)/);
        for (let n = 0; n < 600; n++) expect(await q_in.get()).toBe(n);
        await Promise.all(puts);
      }));

    it('reports messages it drops (drop-oldest, closed with a put waiting) to the dropped hook, for a single sink', () =>
      withSetup(async (setup) => {
        const plan = await setup.plan([
          edge('latest', 'P.q_out', 'C.q_in', 2, 'drop-oldest'),
          edge('fan', 'F.q_out', 'D.q_in', 1),
          edge('fan', 'F.q_out', 'E.q_in', 1, 'drop-oldest'),
          edge('full', 'Q.q_out', 'G.q_in', 1),
        ]);
        const dropped: [unknown, DropReason][] = [];
        const hooks: LinkHooks = { dropped: (message, reason) => dropped.push([message, reason]) };
        const p = await openOut(plan, 'P', 'q_out', hooks);
        const f = await openOut(plan, 'F', 'q_out', hooks);
        const q = await openOut(plan, 'Q', 'q_out', hooks);
        const c = await openIn(plan, 'C', 'q_in');
        const d = await openIn(plan, 'D', 'q_in');
        const e = await openIn(plan, 'E', 'q_in');
        setup.onDispose(() => closeAll(p, f, c, d, e));
        for (let n = 0; n < 5; n++) await p.put({ key: `k${n}` });
        await eventually(() => dropped.length >= 3);
        expect(dropped).toEqual([
          [{ key: 'k0' }, 'drop-oldest'],
          [{ key: 'k1' }, 'drop-oldest'],
          [{ key: 'k2' }, 'drop-oldest'],
        ]);
        expect([c.tryGet(), c.tryGet()]).toEqual([{ key: 'k3' }, { key: 'k4' }]);
        // Fan-out: E drops, but D got the same message, so its keys must not be released.
        await f.put('a');
        await arrived(d, 1);
        d.tryGet();
        await f.put('b');
        await arrived(e, 1);
        await new Promise((resolve) => setTimeout(resolve, 20));
        expect(dropped).toHaveLength(3);
        await q.put('fills G');
        const waiting = q.put('never sent');
        q.close();
        await waiting; // resolves: the message is reported dropped, not thrown at the actor
        expect(dropped.at(-1)).toEqual(['never sent', 'closed']);
      }));

    it('reports a fan-out sink’s dropped copy to droppedForOneSink, and a put that reached no sink as dropped', () =>
      withSetup(async (setup) => {
        const plan = await setup.plan([
          edge('fan', 'F.q_out', 'D.q_in', 1),
          edge('fan', 'F.q_out', 'E.q_in', 1, 'drop-oldest'),
        ]);
        const dropped: unknown[] = [];
        const forOneSink: [unknown, DropReason][] = [];
        const f = await openOut(plan, 'F', 'q_out', {
          dropped: (message) => dropped.push(message),
          droppedForOneSink: (message, reason) => forOneSink.push([message, reason]),
        });
        const d = await openIn(plan, 'D', 'q_in');
        const e = await openIn(plan, 'E', 'q_in');
        setup.onDispose(() => closeAll(f, d, e));
        expect(f.sinks).toBe(2);
        await f.put({ key: 'a' });
        await arrived(d, 1);
        expect(d.tryGet()).toEqual({ key: 'a' });
        await f.put({ key: 'b' }); // E's queue holds one: its copy of "a" is dropped, D's was read
        await eventually(() => forOneSink.length > 0);
        expect(forOneSink).toEqual([[{ key: 'a' }, 'drop-oldest']]);
        expect(dropped).toEqual([]);
        // D is full now (it holds "b"): this put waits, reaching no sink, and is dropped whole at close.
        const waiting = f.put({ key: 'c' });
        f.close();
        await waiting;
        expect(dropped).toEqual([{ key: 'c' }]);
        expect(e.tryGet()).toEqual({ key: 'b' });
      }));

    it('counts sent, waiting and dropped messages per edge, and whether the producer waits for room', () =>
      withSetup(async (setup) => {
        const plan = await setup.plan([
          edge('a', 'P.q_out', 'C.q_in', 2),
          edge('b', 'P.q_out', 'D.q_in', 1, 'drop-oldest'),
        ]);
        const q_out = await openOut(plan, 'P', 'q_out');
        const c = await openIn(plan, 'C', 'q_in');
        const d = await openIn(plan, 'D', 'q_in');
        setup.onDispose(() => closeAll(q_out, c, d));
        await q_out.put(1);
        await q_out.put(2);
        const waiting = q_out.put(3);
        await new Promise((resolve) => setTimeout(resolve, 50));
        const byConnection = () =>
          Object.fromEntries(setup.transport.stats().map((stats) => [stats.connection, stats]));
        expect(byConnection().a).toMatchObject({
          capacity: 2,
          policy: 'block',
          depth: 2,
          sent: 2,
          dropped: 0,
          waiting: true,
        });
        expect(byConnection().b).toMatchObject({
          capacity: 1,
          policy: 'drop-oldest',
          depth: 1,
          sent: 2,
          dropped: 1,
          waiting: false,
        });
        expect(byConnection().a!.from).toEqual({ actor: 'P', link: 'q_out' });
        expect(byConnection().a!.to).toEqual({ actor: 'C', link: 'q_in' });
        expect(c.tryGet()).toBe(1);
        await waiting;
        await eventually(() => byConnection().a!.waiting === false);
        expect(byConnection().a).toMatchObject({ depth: 2, sent: 3, waiting: false });
      }));

    it('counts the encoded bytes put into each edge, where it counts bytes (LinkStats.bytes)', () =>
      withSetup(async (setup) => {
        const plan = await setup.plan([edge('a', 'P.q_out', 'C.q_in'), edge('a', 'P.q_out', 'D.q_in')]);
        const q_out = await openOut(plan, 'P', 'q_out');
        const c = await openIn(plan, 'C', 'q_in');
        const d = await openIn(plan, 'D', 'q_in');
        setup.onDispose(() => closeAll(q_out, c, d));
        const before = setup.transport.stats();
        if (before.every((stats) => stats.bytes === undefined)) return;
        expect(before.map((stats) => stats.bytes)).toEqual([0, 0]);
        // 100 bytes of data each (msgpack adds a few); fan-out: each edge counts its copy.
        for (let n = 0; n < 3; n++) await q_out.put(new Uint8Array(100));
        await eventually(() => setup.transport.stats().every((stats) => stats.sent === 3));
        for (const stats of setup.transport.stats()) {
          expect(stats.bytes).toBeGreaterThanOrEqual(300);
          expect(stats.bytes).toBeLessThanOrEqual(330);
        }
      }));

    it('detach: a gone sink stops holding its producer back and hands over what waited for it; a gone source ends its sinks', () =>
      withSetup(async (setup) => {
        const plan = await setup.plan([
          edge('a', 'P.q_out', 'Dead.q_in', 2),
          edge('a', 'P.q_out', 'Alive.q_in', 8),
          edge('b', 'Dead.q_out', 'S.q_in', 8),
          edge('c', 'Dead.side', 'T.q_in', 8),
          edge('c2', 'P.side', 'T.q_in', 8),
        ]);
        const goneFor: [unknown, DropReason][] = [];
        const q_out = await openOut(plan, 'P', 'q_out', {
          droppedForOneSink: (message, reason) => goneFor.push([message, reason]),
        });
        const alive = await openIn(plan, 'Alive', 'q_in');
        const deadOut = await openOut(plan, 'Dead', 'q_out');
        const s = await openIn(plan, 'S', 'q_in');
        const t = await openIn(plan, 'T', 'q_in');
        await openIn(plan, 'Dead', 'q_in'); // opened, then its actor dies without closing it
        setup.onDispose(() => closeAll(q_out, alive, deadOut, s, t));
        await q_out.put({ key: 'k1' });
        await q_out.put({ key: 'k2' });
        const blocked = q_out.put({ key: 'k3' });
        await deadOut.put('last words');
        const drained = setup.transport.detach('Dead');
        // Messages are handed over, or (where they wait in the source's process) only counted.
        const counted = drained.filter((batch) => batch.droppedAtSource !== undefined);
        for (const batch of counted) {
          expect(batch).toEqual({
            connection: 'a',
            from: { actor: 'P', link: 'q_out' },
            to: { actor: 'Dead', link: 'q_in' },
            messages: [],
            droppedAtSource: 2,
            where: 'source',
            sole: false,
          });
        }
        if (drained.length > counted.length) {
          expect(drained).toEqual([
            {
              connection: 'a',
              from: { actor: 'P', link: 'q_out' },
              to: { actor: 'Dead', link: 'q_in' },
              messages: [{ key: 'k1' }, { key: 'k2' }],
              sole: false,
            },
          ]);
        }
        await blocked; // no longer held back by the dead sink
        await q_out.put({ key: 'k4' });
        // Every message Dead never read is accounted for once: handed over by detach, or reported
        // by the source as a fan-out copy lost to a gone sink.
        const lost = () => [...drained.flatMap((batch) => batch.messages), ...goneFor.map(([message]) => message)];
        await eventually(() => lost().length >= 4);
        expect(lost()).toEqual([{ key: 'k1' }, { key: 'k2' }, { key: 'k3' }, { key: 'k4' }]);
        expect(goneFor.every(([, reason]) => reason === 'sink-gone')).toBe(true);
        await arrived(alive, 4);
        expect([alive.tryGet(), alive.tryGet(), alive.tryGet(), alive.tryGet()]).toEqual([
          { key: 'k1' },
          { key: 'k2' },
          { key: 'k3' },
          { key: 'k4' },
        ]);
        const stats = setup.transport.stats().find((edge) => edge.to.actor === 'Dead')!;
        expect(stats).toMatchObject({ depth: 0, dropped: 4, waiting: false });
        // S reads what the dead source left, then learns that nothing more comes.
        await expect(s.get()).resolves.toBe('last words');
        await expectCode(s.get(), 'LINK_SOURCES_GONE');
        // T still has a live source: it waits as usual.
        expect(t.tryGet()).toBeUndefined();
        const sides = await openOut(plan, 'P', 'side');
        setup.onDispose(() => sides.close());
        await sides.put('still flows');
        await expect(t.get()).resolves.toBe('still flows');
      }));

    it('detach with restarting: the sinks of an actor that comes back wait for it, and its revived links carry on', () =>
      withSetup(async (setup) => {
        const plan = await setup.plan([edge('a', 'P.q_out', 'R.q_in', 8), edge('b', 'R.q_out', 'S.q_in', 8)]);
        const dropped: unknown[] = [];
        const p = await openOut(plan, 'P', 'q_out', { dropped: (message) => dropped.push(message) });
        const s = await openIn(plan, 'S', 'q_in');
        const deadIn = await openIn(plan, 'R', 'q_in');
        const deadOut = await openOut(plan, 'R', 'q_out');
        setup.onDispose(() => closeAll(p, s));
        await deadOut.put('before');
        await expect(s.get()).resolves.toBe('before');
        await p.put('m1');
        await arrived(deadIn, 1); // on its way to R, which dies now without reading it
        await closeAll(deadIn, deadOut); // what its process's end does to its sockets
        setup.transport.detach('R', { restarting: true });
        // S is not told its source is gone: it waits as for a slow source.
        await expectCode(s.get({ timeoutMs: 100 }), 'LINK_TIMEOUT');
        // R comes back: its links are opened again from the same descriptors.
        const revivedIn = await openIn(plan, 'R', 'q_in');
        const revivedOut = await openOut(plan, 'R', 'q_out');
        setup.onDispose(() => closeAll(revivedIn, revivedOut));
        await p.put('m2');
        await revivedOut.put('after');
        await expect(s.get()).resolves.toBe('after');
        // What waited for R reaches the revived R where the transport kept it (rings), or is
        // reported dropped where it was lost with R's process (zmq): never both, never neither.
        const got: unknown[] = [await revivedIn.get()];
        if (got[0] === 'm1') got.push(await revivedIn.get());
        expect(got.at(-1)).toBe('m2');
        expect([...got.slice(0, -1), ...dropped]).toEqual(['m1']);
        // Counted dropped exactly when it was: what reached the revived R is not.
        const a = setup.transport.stats().find((stats) => stats.connection === 'a')!;
        expect(a.dropped).toBe(dropped.length);
      }));

    it('detach: the edges of a producer that died waiting for room no longer say it waits, restarted or not', () =>
      withSetup(async (setup) => {
        const plan = await setup.plan([edge('a', 'P.q_out', 'C.q_in', 2), edge('b', 'Q.q_out', 'D.q_in', 2)]);
        const p = await openOut(plan, 'P', 'q_out');
        const q = await openOut(plan, 'Q', 'q_out');
        const c = await openIn(plan, 'C', 'q_in');
        const d = await openIn(plan, 'D', 'q_in');
        setup.onDispose(() => closeAll(p, q, c, d));
        // Each producer fills its edge and waits in a third put; then its worker or process dies there.
        for (const out of [p, q]) {
          await out.put('m1');
          await out.put('m2');
          void out.put('m3').catch(() => undefined);
        }
        const waiting = (connection: string) =>
          setup.transport.stats().find((stats) => stats.connection === connection)!.waiting;
        await eventually(() => waiting('a') && waiting('b'), 'both producers to wait for room');
        setup.transport.detach('P', { restarting: true });
        setup.transport.detach('Q');
        // Looked at before anything else runs: the producers here live on (a dead one would not).
        expect([waiting('a'), waiting('b')]).toEqual([false, false]);
      }));

    it('drain at quit accounts for what a sink received and never read, once', () =>
      withSetup(async (setup) => {
        const plan = await setup.plan([edge('a', 'P.q_out', 'C.q_in', 8)]);
        const p = await openOut(plan, 'P', 'q_out');
        const c = await openIn(plan, 'C', 'q_in');
        setup.onDispose(() => closeAll(p, c));
        for (const value of ['m1', 'm2', 'm3']) await p.put(value);
        await arrived(c, 3);
        await expect(c.get()).resolves.toBe('m1');
        await closeAll(c, p); // what the actors' ends do to their links at quit
        const drained = setup.transport.drain();
        const counted = drained.reduce((sum, batch) => sum + batch.messages.length + (batch.droppedAtSource ?? 0), 0);
        expect(counted).toBe(2);
        // Counted rather than taken out: they were gone with the endpoints, not kept by the source.
        for (const batch of drained) if (batch.droppedAtSource !== undefined) expect(batch.where).toBe('on-the-way');
        expect(setup.transport.drain()).toEqual([]);
        expect(setup.transport.stats()[0]).toMatchObject({ sent: 3, depth: 0, dropped: 2 });
      }));

    it('drain takes out (or counts) every message still waiting, with whether its source fed other sinks too', () =>
      withSetup(async (setup) => {
        const plan = await setup.plan([
          edge('a', 'P.q_out', 'C.q_in'),
          edge('b', 'Q.q_out', 'C.q_in'),
          edge('b', 'Q.q_out', 'D.q_in'),
        ]);
        const p = await openOut(plan, 'P', 'q_out');
        const q = await openOut(plan, 'Q', 'q_out');
        setup.onDispose(() => closeAll(p, q));
        await p.put({ key: 'x' });
        await q.put('y');
        const drained = setup.transport.drain();
        // A transport whose messages wait on their way or in its sinks' processes (zmq) cannot
        // take them out here: it counts them (`droppedAtSource`) instead.
        expect(
          drained
            .map(({ connection, to, messages, droppedAtSource, sole }) => [
              connection,
              to.actor,
              droppedAtSource === undefined ? messages : [droppedAtSource],
              sole,
            ])
            .sort(),
        ).toEqual(
          (drained.some((batch) => batch.droppedAtSource !== undefined)
            ? [
                ['a', 'C', [1], true],
                ['b', 'C', [1], false],
                ['b', 'D', [1], false],
              ]
            : [
                ['a', 'C', [{ key: 'x' }], true],
                ['b', 'C', ['y'], false],
                ['b', 'D', ['y'], false],
              ]
          ).sort(),
        );
        expect(setup.transport.drain()).toEqual([]);
        // Drained is dropped: nothing waits any more, and every message sent is accounted for.
        const stats = setup.transport.stats();
        expect(stats.every((edge) => edge.depth === 0)).toBe(true);
        expect(stats.reduce((sum, edge) => sum + edge.dropped, 0)).toBe(3);
      }));

    it('close rejects pending and later gets, and later puts, with LinkClosedError', () =>
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
        await expect(pendingPut).resolves.toBeUndefined(); // dropped (see the dropped hook), not thrown
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

    it('refuses a message that msgpack cannot carry or that would arrive changed, naming the link and the fix, and goes on', () =>
      withSetup(async (setup) => {
        const plan = await setup.plan([edge('c', 'P.q_out', 'C.q_in', 4)]);
        const q_out = await openOut(plan, 'P', 'q_out');
        const q_in = await openIn(plan, 'C', 'q_in');
        setup.onDispose(() => closeAll(q_in, q_out));
        const refused: [unknown, string][] = [
          [{ f: () => 1 }, 'Send plain data'],
          [{ t: 2n ** 70n }, 'String(value)'],
          [[1, -(2n ** 63n) - 1n], 'String(value)'],
          [{ at: new Date('not a date') }, 'invalid Date'],
          [{ error: new Error('boom') }, 'error.message'],
          [{ meta: JSON.parse('{"__proto__": {"gain": 2}, "id": 1}') }, '"__proto__" key'],
          [{ label: 'half \ud83d' }, 'lone surrogate'],
        ];
        for (const [message, fix] of refused) {
          const error = await q_out.put(message).then(
            () => undefined,
            (reason: unknown) => reason,
          );
          expect(error).toBeInstanceOf(TypeError);
          expect((error as Error).message).toContain('P.q_out');
          expect((error as Error).message).toContain(fix);
        }
        expect(q_in.size()).toBe(0);
        await q_out.put({ after: true, big: 2n ** 64n - 1n, zero: -0 });
        const after = (await q_in.get()) as { zero: number };
        expect(after).toEqual({ after: true, big: 2n ** 64n - 1n, zero: -0 });
        expect(Object.is(after.zero, -0)).toBe(true);
      }));

    it('encode() then putEncoded() sends the message as it was at encode(); encode() throws what put rejects with', () =>
      withSetup(async (setup) => {
        const plan = await setup.plan([edge('c', 'P.q_out', 'C.q_in', 4)]);
        const q_out = await openOut(plan, 'P', 'q_out');
        const q_in = await openIn(plan, 'C', 'q_in');
        setup.onDispose(() => closeAll(q_in, q_out));
        // Optional in the contract (both or neither); a transport that has them must get them right.
        expect(q_out.encode === undefined).toBe(q_out.putEncoded === undefined);
        if (q_out.encode === undefined || q_out.putEncoded === undefined) return;
        const message = { n: 1, d: new Uint8Array([1, 2]) };
        const encoded = q_out.encode(message);
        // The actor may reuse what it sent: what goes is what it was at encode().
        message.n = 2;
        message.d[0] = 9;
        await q_out.putEncoded(encoded);
        await q_out.put(message);
        await arrived(q_in, 2);
        expect(await q_in.get()).toEqual({ n: 1, d: new Uint8Array([1, 2]) });
        expect(await q_in.get()).toEqual({ n: 2, d: new Uint8Array([9, 2]) });
        const refused = (() => {
          try {
            q_out.encode(new Uint8Array(tooLarge));
          } catch (error) {
            return error;
          }
          return undefined;
        })();
        await expectCode(Promise.reject(refused), 'LINK_MESSAGE_TOO_LARGE');
        await expectCode(q_out.put(new Uint8Array(tooLarge)), 'LINK_MESSAGE_TOO_LARGE');
        // Bytes the link would never send (not from its encode()) are refused as too large, not sent or kept waiting.
        await expectCode(q_out.putEncoded(new Uint8Array(tooLarge)), 'LINK_MESSAGE_TOO_LARGE');
        await q_out.put({ after: true });
        await expect(q_in.get()).resolves.toEqual({ after: true });
      }));

    it('cork() and uncork(): what is put between arrives once and in order, also beyond the capacity', () =>
      withSetup(async (setup) => {
        const plan = await setup.plan([edge('c', 'P.q_out', 'C.q_in', 8)]);
        const q_out = await openOut(plan, 'P', 'q_out');
        const q_in = await openIn(plan, 'C', 'q_in');
        setup.onDispose(() => closeAll(q_in, q_out));
        // Optional in the contract (both or neither); a transport that has them must get them right.
        expect(q_out.cork === undefined).toBe(q_out.uncork === undefined);
        if (q_out.cork === undefined || q_out.uncork === undefined) return;
        await q_out.put({ n: 0 });
        expect(await q_in.get()).toEqual({ n: 0 });
        let next = 1;
        for (const count of [6, 1, 20]) {
          q_out.cork();
          const puts: Promise<void>[] = [];
          for (let index = 0; index < count; index++) puts.push(q_out.put({ n: next++ }));
          q_out.uncork();
          const expected = Array.from({ length: count }, (_, index) => ({ n: next - count + index }));
          const taken: unknown[] = [];
          for (let index = 0; index < count; index++) taken.push(await q_in.get({ timeoutMs: 10_000 }));
          await Promise.all(puts);
          expect(taken).toEqual(expected);
        }
        expect(q_in.size()).toBe(0);
      }));

    it('get({ timeoutMs }) rejects with LinkTimeoutError when nothing comes, taking nothing, also while held', () =>
      withSetup(async (setup) => {
        const plan = await setup.plan([edge('c', 'P.q_out', 'C.q_in')]);
        const q_out = await openOut(plan, 'P', 'q_out');
        const q_in = await openIn(plan, 'C', 'q_in');
        setup.onDispose(() => closeAll(q_in, q_out));
        const timedOut = await expectCode(q_in.get({ timeoutMs: 30 }), 'LINK_TIMEOUT');
        expect(timedOut.message).toBe('no message on q_in within 30 ms');
        // Beyond a timer's 32-bit range (it would fire at once): refused, naming the longest.
        await expect(q_in.get({ timeoutMs: 2 ** 31 })).rejects.toThrow(
          /longer than the longest timeout, 2147483647 ms/,
        );
        await expect(q_in.get({ timeoutMs: -1 })).rejects.toThrow(RangeError);
        await q_out.put({ n: 1 });
        await arrived(q_in, 1);
        expect(await q_in.get({ timeoutMs: 0 })).toEqual({ n: 1 }); // already there: no wait at all
        const waiting = q_in.get({ timeoutMs: 5000 });
        await q_out.put({ n: 2 });
        expect(await waiting).toEqual({ n: 2 });
        // Held (the actor is paused): the timeout still applies, and the get that gave up takes nothing.
        q_in.hold(() => {});
        const held = q_in.get({ timeoutMs: 30 });
        await expectCode(held, 'LINK_TIMEOUT');
        await q_out.put({ n: 3 });
        q_in.release();
        expect(await q_in.get({ timeoutMs: 5000 })).toEqual({ n: 3 });
        // A get that gave up while another waits: the message goes to the one still waiting.
        const patient = q_in.get();
        await expectCode(q_in.get({ timeoutMs: 10 }), 'LINK_TIMEOUT');
        await q_out.put({ n: 4 });
        expect(await patient).toEqual({ n: 4 });
        expect(q_in.size()).toBe(0);
        await expect(q_in.get({ timeoutMs: -1 })).rejects.toThrow(
          'q_in.get({ timeoutMs }): give a number of milliseconds ≥ 0, not -1',
        );
      }));

    it('room() counts what a put would send without waiting: capacity less what waits, Infinity under drop-oldest', () =>
      withSetup(async (setup) => {
        const plan = await setup.plan([
          edge('full', 'P.q_out', 'C.q_in', 4, 'block'),
          edge('latest', 'Q.q_out', 'D.q_in', 4, 'drop-oldest'),
        ]);
        const p = await openOut(plan, 'P', 'q_out');
        const q = await openOut(plan, 'Q', 'q_out');
        const c = await openIn(plan, 'C', 'q_in');
        const d = await openIn(plan, 'D', 'q_in');
        setup.onDispose(() => closeAll(p, q, c, d));
        // Optional in the contract; a transport that has it must get it right.
        if (p.room === undefined) return;
        await eventually(() => p.room!() === 4);
        await p.put(1);
        await p.put(2);
        expect(p.room()).toBe(2);
        await p.put(3);
        await p.put(4);
        expect(p.room()).toBe(0);
        expect(q.room!()).toBe(Number.POSITIVE_INFINITY);
        for (let n = 0; n < 6; n++) await q.put(n);
        expect(q.room!()).toBe(Number.POSITIVE_INFINITY);
        await arrived(c, 4);
        for (let n = 0; n < 4; n++) await c.get();
        await eventually(() => p.room!() === 4);
        p.close();
        expect(p.room()).toBe(0);
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
        await arrived(q_in, 3);
        expect(q_in.size()).toBe(3);
        const first = q_in.tryGet();
        expect(first).toBeDefined();
        expect(q_in.size()).toBe(2);
        await q_in.get();
        await q_in.get();
        expect(q_in.size()).toBe(0);
        expect(q_in.tryGet()).toBeUndefined();
      }));

    it('carries msgpack values unchanged, typed arrays of their own kind and binary as a plain Uint8Array', () =>
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
          new Float32Array([1.5, -2]),
        ];
        for (const value of values) await q_out.put(value);
        for (const value of values) {
          const got = await q_in.get();
          expect(got).toEqual(value);
          // Of the sent kind exactly: a plain Uint8Array, not a Buffer of the transport's own.
          if (ArrayBuffer.isView(value)) expect(Object.getPrototypeOf(got)).toBe(Object.getPrototypeOf(value));
        }
        // A DataView travels as plain binary and arrives as a plain Uint8Array of its bytes.
        await q_out.put({ raw: new DataView(new Uint8Array([7, 8, 9]).buffer) });
        const { raw } = (await q_in.get()) as { raw: Uint8Array };
        expect(Object.getPrototypeOf(raw)).toBe(Uint8Array.prototype);
        expect(Array.from(raw)).toEqual([7, 8, 9]);
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

async function openLinkOf(plan: LinkPlan, actor: string, link: string, hooks?: LinkHooks): Promise<Link> {
  const descriptor = plan.endpoints.get(actor)?.get(link);
  if (descriptor === undefined) throw new Error(`the plan has no endpoint ${actor}.${link}`);
  const module = (await import(descriptor.module)) as { openLink?: OpenLink };
  if (typeof module.openLink !== 'function') throw new Error(`${descriptor.module} does not export openLink()`);
  return module.openLink(descriptor, hooks);
}

async function openIn(plan: LinkPlan, actor: string, link: string): Promise<InputLink> {
  const opened = await openLinkOf(plan, actor, link);
  if (opened.direction !== 'in') throw new Error(`${actor}.${link} opened as an ${opened.direction} link`);
  return opened;
}

async function openOut(plan: LinkPlan, actor: string, link: string, hooks?: LinkHooks): Promise<OutputLink> {
  const opened = await openLinkOf(plan, actor, link, hooks);
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

/**
 * Waits until `link` holds at least `count` messages: at once for a shared-memory transport, a
 * moment later for one that delivers over a socket. Fails the test after 10 s.
 */
async function arrived(link: InputLink, count: number): Promise<void> {
  await eventually(() => link.size() >= count, `${count} messages to arrive at ${link.name}`);
}

/** Waits until `predicate` holds, checking every millisecond; fails the test after 10 s. */
async function eventually(predicate: () => boolean | Promise<boolean>, what = 'the condition'): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`waited 10 s for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
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
  readonly transport: Transport;
  readonly #runtime: RuntimeAdapter;
  readonly #peers: Peer[] = [];
  readonly #cleanups: (() => void)[] = [];

  constructor(transport: Transport, runtime: RuntimeAdapter) {
    this.transport = transport;
    this.#runtime = runtime;
  }

  plan(edges: LinkEdge[]): Promise<LinkPlan> {
    return this.transport.plan({ edges });
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
