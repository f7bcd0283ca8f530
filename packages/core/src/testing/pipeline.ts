/**
 * Conformance suite for a whole pipeline: a runtime adapter, a store driver and a transport
 * together, driven through Nexus as a user would — every command and every refusal, actor
 * exceptions, a dying worker isolated from the others, and clean shutdown.
 *
 * @example
 * ```ts
 * describePipelineConformance({
 *   name: 'node + memory + local',
 *   runtime: createNodeRuntime(),
 *   createStore: createMemoryStore,
 *   createTransport: createLocalTransport,
 * });
 * ```
 * @module
 */
import { afterEach, describe, expect, it } from 'vitest';
import { moduleExtension } from '../_module-url.ts';
import { ActorFailedError, CommandRefusedError } from '../errors.ts';
import type { Transport } from '../link/transport.ts';
import type { LogRecord } from '../log.ts';
import { createNexus, type Nexus, type NexusOptions } from '../nexus.ts';
import type { Published, PublishedLatest, PublishedSeries, TapRecord } from '../nexus-api.ts';
import type { RuntimeAdapter } from '../runtime/adapter.ts';
import type { StoreDriver } from '../store/driver.ts';

/** What the suite needs. */
export interface PipelineConformanceOptions {
  name: string;
  runtime: RuntimeAdapter;
  createStore: () => StoreDriver;
  /** The transport of a run; several to mix them by connection (the first is the default), as `createNexus` takes. */
  createTransport: () => Transport | Transport[];
  /**
   * Keys given to every actor of the suite, e.g. `{ method: 'process' }` to run the whole suite with
   * each actor in an OS process of its own, or `{ runtime: 'bun' }` on another runtime.
   */
  actorKeys?: Record<string, unknown>;
  /**
   * Whether Nexus gets back, at quit, the messages still waiting in links (to release their store
   * keys), not only their count. Default true; false for transports whose messages wait in the sinks'
   * own processes or on their way there (zmq), where they end with those processes.
   */
  drainsAtQuit?: boolean;
}

const actorsModule = `./_actors${moduleExtension(import.meta.url)}`;

/** Registers the suite with vitest. */
export function describePipelineConformance(options: PipelineConformanceOptions): void {
  const baseDir = options.runtime.path.dirname(new URL(import.meta.url).pathname);
  const running: Nexus[] = [];

  afterEach(async () => {
    await Promise.all(running.splice(0).map((nexus) => nexus.quit()));
  });

  async function start(
    actors: Record<string, Record<string, unknown>>,
    connections: Record<string, unknown> = {},
    { settings, ...extra }: Partial<NexusOptions> & { settings?: Record<string, unknown> } = {},
  ): Promise<{ nexus: Nexus; logs: LogRecord[]; results: (actor: string) => Record<string, unknown>[] }> {
    const config = {
      settings: { store_size: '8MiB', ...settings },
      actors: Object.fromEntries(
        Object.entries(actors).map(([name, actor]) => [
          name,
          { package: actorsModule, ...options.actorKeys, ...actor },
        ]),
      ),
      connections,
    };
    const nexus = await createNexus({
      config,
      baseDir,
      runtime: options.runtime,
      store: options.createStore(),
      transport: options.createTransport(),
      runDir: false,
      handleSignals: false,
      ...extra,
    });
    running.push(nexus);
    const logs: LogRecord[] = [];
    nexus.on((event) => {
      if (event.type === 'log') logs.push(event.record);
    });
    const results = (actor: string) =>
      logs
        .filter((record) => record.source === actor && record.message.startsWith('RESULT '))
        .map((record) => JSON.parse(record.message.slice('RESULT '.length)) as Record<string, unknown>);
    return { nexus, logs, results };
  }

  const states = (nexus: Nexus) => Object.fromEntries(nexus.status().actors.map((actor) => [actor.name, actor.state]));
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  async function until(condition: () => boolean, what: string): Promise<void> {
    for (let i = 0; i < 1000 && !condition(); i++) await sleep(10);
    if (!condition()) throw new Error(`timed out waiting for ${what}`);
  }

  describe(`pipeline conformance: ${options.name}`, () => {
    it('goes through setup, run, pause, resume, stop, run again and quit; messages flow; stop() runs once per stop', async () => {
      const { nexus, results } = await start(
        { Source: { class: 'Counter', intervalMs: 1 }, Sink: { class: 'Collector' } },
        { 'Source.q_out': ['Sink.q_in'] },
      );
      expect(nexus.status().state).toBe('waiting');
      expect(states(nexus)).toEqual({ Source: 'waiting', Sink: 'waiting' });
      await nexus.setup();
      expect(nexus.status().state).toBe('ready');
      expect(states(nexus)).toEqual({ Source: 'ready', Sink: 'ready' });
      await nexus.run();
      expect(states(nexus)).toEqual({ Source: 'running', Sink: 'running' });
      await sleep(100);
      await nexus.pause();
      expect(states(nexus)).toEqual({ Source: 'paused', Sink: 'paused' });
      await nexus.resume();
      expect(nexus.status().state).toBe('running');
      await sleep(50);
      await nexus.stop();
      expect(states(nexus)).toEqual({ Source: 'stopped', Sink: 'stopped' });
      const [source] = results('Source');
      const [sink] = results('Sink');
      expect(source).toMatchObject({ setup: 1, stops: 1 });
      expect(sink).toMatchObject({ setup: 1, stops: 1, outOfOrder: 0 });
      expect((source as { sent: number }).sent).toBeGreaterThan(0);
      // Every message sent before the stop was received (nothing lost), except one still in flight.
      const received = (sink as { received: Record<string, number> }).received.Source ?? 0;
      expect(received).toBeGreaterThan(0);
      expect(received).toBeLessThanOrEqual((source as { sent: number }).sent);
      await nexus.run();
      expect(nexus.status().state).toBe('running');
      await nexus.quit();
      expect(nexus.status().state).toBe('exited');
      expect(states(nexus)).toEqual({ Source: 'exited', Sink: 'exited' });
      expect(results('Source')).toHaveLength(2);
      expect(results('Sink')).toHaveLength(2);
      await nexus.closed;
    });

    it('refuses every command given in the wrong state, saying what state the pipeline is in and what to do', async () => {
      const { nexus } = await start({ Source: { class: 'Counter', limit: 0 } });
      expect(messageOf(await failure(nexus.run()))).toMatch(/cannot run: the pipeline is waiting; run setup first/);
      expect(messageOf(await failure(nexus.pause()))).toMatch(/cannot pause: the pipeline is waiting/);
      expect(messageOf(await failure(nexus.resume()))).toMatch(/cannot resume: the pipeline is waiting/);
      expect(messageOf(await failure(nexus.stop()))).toMatch(/cannot stop: the pipeline is waiting/);
      await nexus.setup();
      expect(messageOf(await failure(nexus.setup()))).toMatch(
        /cannot setup: the pipeline is ready; setup is done; run starts it/,
      );
      expect(CommandRefusedError.isInstance(await failure(nexus.stop()))).toBe(true);
      expect(messageOf(await failure(nexus.resume()))).toMatch(/cannot resume: the pipeline is ready/);
      await nexus.run();
      expect(messageOf(await failure(nexus.run()))).toMatch(/already running/);
      expect(messageOf(await failure(nexus.resume()))).toMatch(/already running/);
      await nexus.pause();
      expect(messageOf(await failure(nexus.pause()))).toMatch(/already paused/);
      expect(messageOf(await failure(nexus.run()))).toMatch(/resume goes on/);
      await nexus.stop();
      expect(messageOf(await failure(nexus.setup()))).toMatch(/setup runs once/);
      expect(messageOf(await failure(nexus.pause()))).toMatch(/cannot pause: the pipeline is stopped/);
      const setup = nexus.run();
      expect(messageOf(await failure(nexus.stop()))).toMatch(/"run" is still in progress/);
      await setup;
      await nexus.quit();
      await nexus.quit();
      expect(messageOf(await failure(nexus.run()))).toMatch(/shutting down/);
    });

    it('marks an actor whose setup() throws as failed and refuses run, naming the actor and the error', async () => {
      const { nexus, logs } = await start({ Good: { class: 'Counter', limit: 0 }, Bad: { class: 'FailingSetup' } });
      const setup = nexus.setup();
      expect(ActorFailedError.isInstance(await failure(setup))).toBe(true);
      expect(messageOf(await failure(setup))).toMatch(/actor "Bad" failed: setup exploded on purpose/);
      expect(states(nexus)).toEqual({ Good: 'ready', Bad: 'failed' });
      expect(messageOf(await failure(nexus.run()))).toMatch(
        /cannot run: actor "Bad" failed: setup exploded on purpose/,
      );
      const record = logs.find((entry) => entry.source === 'Bad' && entry.level === 'error');
      expect(record?.stack).toContain('setup exploded on purpose');
      // The log never contradicts the state, and carries no hints meant for a person at a prompt.
      const said = logs.filter((entry) => entry.source === 'nexus').map((entry) => entry.message);
      expect(said).not.toContain('all actors ready');
      expect(said).toContain('setup finished, but actor "Bad" failed: setup exploded on purpose');
      expect(said.filter((message) => /\btype\b/.test(message))).toEqual([]);
      await nexus.quit();
      expect(states(nexus)).toEqual({ Good: 'exited', Bad: 'failed' });
    });

    it('marks an actor that cannot be loaded as failed and refuses setup', async () => {
      const { nexus } = await start({ Good: { class: 'Counter', limit: 0 }, Bad: { class: 'FailingConstructor' } });
      expect(nexus.status().actors.find((actor) => actor.name === 'Bad')).toMatchObject({
        state: 'failed',
        error: { message: 'constructor exploded on purpose' },
      });
      expect(messageOf(await failure(nexus.setup()))).toMatch(
        /cannot setup: actor "Bad" failed: constructor exploded on purpose/,
      );
    });

    it('logs an exception in runStep() with its stack and goes on calling runStep()', async () => {
      const { nexus, logs, results } = await start({ Flaky: { class: 'FailingStep' } });
      await nexus.setup();
      await nexus.run();
      await until(
        () => logs.some((entry) => /threw RangeError at .*_actors\.ts.* more times?/.test(entry.message)),
        'repeated errors',
      );
      await nexus.stop();
      const first = logs.find((entry) => entry.source === 'Flaky' && entry.level === 'error');
      expect(first?.message).toContain('RangeError: step exploded on purpose');
      // V8 names the class in the frame (FailingStep.runStep), JavaScriptCore (Bun) only the method.
      expect(first?.stack).toMatch(/FailingStep|_actors\.ts/);
      expect((results('Flaky')[0] as { steps: number }).steps).toBeGreaterThan(1);
      expect(states(nexus)).toEqual({ Flaky: 'stopped' });
    });

    it('logs an exception in stop() and still stops', async () => {
      const { nexus, logs } = await start({ Grumpy: { class: 'FailingStop' } });
      await nexus.setup();
      await nexus.run();
      await nexus.stop();
      expect(states(nexus)).toEqual({ Grumpy: 'stopped' });
      expect(logs.some((entry) => entry.level === 'error' && entry.message.includes('stop exploded on purpose'))).toBe(
        true,
      );
    });

    it("routes an actor's console into the log, formatted as the runtime's own console formats it (this.log too)", async () => {
      const { nexus, logs } = await start({ Writer: { class: 'ConsoleWriter' } });
      await nexus.setup();
      const written = logs.filter((entry) => entry.source === 'Writer');
      expect(written).toHaveLength(6);
      expect(written.slice(0, 4).map(({ level, message }) => [level, message])).toEqual([
        ['info', '3 items Map(1) { 1 => 2 } NaN'],
        ['info', 'text, 3, 1.5, {"a":1}, [ 1, [length]: 1 ], { b: 2 }, 100%'],
        ['debug', "-0 Infinity Set(2) { 1, 'a' } 1n undefined null"],
        ['warn', 'Point { x: 1, y: 2 } { a: { b: { c: [Object] } } }'],
      ]);
      // The stack is part of the message, as on the console, so it is not repeated as the record's stack.
      expect(written[4]?.level).toBe('error');
      expect(written[4]?.message).toMatch(/^failed: Error: written to the console on purpose\n\s+at .*_actors\.ts/);
      expect(written[4]?.stack).toBeUndefined();
      // this.log formats its extra arguments the same way.
      expect(written[5]?.message).toBe('this.log: NaN Map(1) { 1 => 2 } Point { x: 3, y: 4 } text');
    });

    it('acts on stop at once while runStep() awaits input that never comes', async () => {
      const { nexus, results } = await start(
        { Silent: { class: 'Counter', limit: 0 }, Sink: { class: 'Collector' } },
        { 'Silent.q_out': ['Sink.q_in'] },
      );
      await nexus.setup();
      await nexus.run();
      await sleep(20);
      await nexus.pause();
      await nexus.resume();
      await nexus.stop();
      expect(results('Sink')[0]).toMatchObject({ steps: 0, stops: 1 });
    });

    // `oom` needs a per-worker heap limit; without one (Bun) the victim would eat the machine's memory.
    // Deno reports a worker that hits its heap limit only when that happens inside a timer callback, so
    // an actor that runs out of memory in runStep() just stops there; that case is left out on Deno.
    const oom = options.runtime.heapLimit && options.runtime.name !== 'deno';
    const deaths = ['exit', 'throw', ...(oom ? (['oom'] as const) : [])] as const;
    for (const how of deaths) {
      it(`isolates a worker that dies (${how}): that actor fails with its error at once, the others keep running`, async () => {
        const { nexus, results } = await start(
          {
            Victim: { class: 'Dying', how, max_heap_mb: 64 },
            Source: { class: 'Counter', intervalMs: 1 },
            Sink: { class: 'Collector' },
          },
          { 'Source.q_out': ['Sink.q_in'] },
        );
        const failures: string[] = [];
        nexus.on((event) => {
          if (event.type === 'actor-state' && event.state === 'failed') failures.push(event.actor);
        });
        await nexus.setup();
        await runTolerating(nexus);
        await until(() => states(nexus).Victim === 'failed', 'the victim to fail');
        expect(failures).toEqual(['Victim']);
        const victim = nexus.status().actors.find((actor) => actor.name === 'Victim');
        expect(victim?.error?.message).toMatch(
          { exit: /exited with code 3/, throw: /uncaught error on purpose/, oom: /out of memory/i }[how],
        );
        expect(states(nexus)).toMatchObject({ Source: 'running', Sink: 'running' });
        // The others keep delivering: the sink takes messages after the victim failed (in processes,
        // the first message may take a while to arrive on a busy machine; no fixed wait).
        const sinkSteps = () => nexus.status().actors.find((actor) => actor.name === 'Sink')?.steps ?? 0;
        await until(() => sinkSteps() > 0, 'the sink to take messages after the victim failed');
        await nexus.stop();
        expect((results('Sink')[0] as { steps: number }).steps).toBeGreaterThan(0);
        expect(messageOf(await failure(nexus.run()))).toMatch(/actor "Victim" failed/);
        await nexus.quit();
        expect(states(nexus)).toEqual({ Victim: 'failed', Source: 'exited', Sink: 'exited' });
      });
    }

    it('runs every stop() on quit from a running pipeline, and none from a pipeline never set up', async () => {
      const first = await start({ Source: { class: 'Counter', limit: 0 } });
      await first.nexus.setup();
      await first.nexus.run();
      await first.nexus.quit();
      expect(first.results('Source')).toEqual([expect.objectContaining({ stops: 1 })]);
      const second = await start({ Source: { class: 'Counter', limit: 0 } });
      await second.nexus.quit();
      expect(second.results('Source')).toEqual([]);
    });

    it('terminates an actor stuck in runStep() when quit times out, and leaves nothing running', async () => {
      const { nexus, logs } = await start({ Stuck: { class: 'Stuck' } }, {}, { quitTimeoutMs: 300 });
      await nexus.setup();
      await nexus.run();
      await nexus.quit();
      expect(logs.some((entry) => entry.level === 'warn' && /did not end within 300 ms/.test(entry.message))).toBe(
        true,
      );
      expect(nexus.status().state).toBe('exited');
    });

    it('ends an actor that does not acknowledge a signal within signal_timeout (unresponsive), and the rest goes on', async () => {
      const { nexus, logs, results } = await start(
        {
          Stuck: { class: 'Dying', how: 'loop', afterSteps: 2 },
          Source: { class: 'Counter', intervalMs: 1 },
          Sink: { class: 'Collector' },
        },
        { 'Source.q_out': ['Sink.q_in', 'Stuck.q_in'] },
        { settings: { signal_timeout: '300ms' } },
      );
      await nexus.setup();
      await nexus.run();
      // Stuck loops from its second step on: the supervisor says so once its heartbeat stood still
      // for signal_timeout (it holds no producer back yet, so it is only warned about).
      await until(
        () => logs.some((entry) => /actor "Stuck": it has not returned to its event loop/.test(entry.message)),
        'Stuck to be stuck',
      );
      const paused = await failure(nexus.pause());
      expect(ActorFailedError.isInstance(paused)).toBe(true);
      expect(messageOf(paused)).toMatch(/actor "Stuck" failed: .*did not acknowledge "pause" within 300 ms/);
      expect(logs.some((entry) => /actor "Stuck" is unresponsive/.test(entry.message))).toBe(true);
      expect(nexus.status().state).toBe('paused');
      expect(states(nexus)).toEqual({ Stuck: 'failed', Source: 'paused', Sink: 'paused' });
      expect(nexus.status().actors.find((actor) => actor.name === 'Stuck')?.error?.code).toBe('ACTOR_UNRESPONSIVE');
      // Its link no longer holds the source back: the others run on.
      await nexus.resume();
      await sleep(300);
      await nexus.stop();
      const received = (results('Sink')[0] as { received: { Source: number } }).received.Source;
      expect(received).toBeGreaterThan(50);
      await nexus.quit();
    });

    it('bounds the acknowledgement of stop, not stop() itself: a slow stop() is not cut short', async () => {
      const { nexus, results } = await start(
        { Saver: { class: 'SlowStop', ms: 900 } },
        {},
        { settings: { signal_timeout: '300ms' } },
      );
      await nexus.setup();
      await nexus.run();
      await nexus.stop();
      expect(states(nexus)).toEqual({ Saver: 'stopped' });
      expect(results('Saver')).toEqual([{ saved: true }]);
    });

    it('ends a sink stuck in a loop that never yields, without any signal, so its producer and siblings go on', async () => {
      const { nexus, logs } = await start(
        {
          Stuck: { class: 'Dying', how: 'loop', afterSteps: 3 },
          Source: { class: 'Counter', intervalMs: 1 },
          Sibling: { class: 'Collector' },
        },
        { fanout: { sources: ['Source.q_out'], sinks: ['Stuck.q_in', 'Sibling.q_in'], capacity: 8 } },
        { settings: { signal_timeout: '1s' } },
      );
      await nexus.setup();
      await nexus.run();
      await until(() => states(nexus).Stuck === 'failed', 'the stuck actor to be ended');
      expect(nexus.status().actors.find((actor) => actor.name === 'Stuck')?.error?.message).toMatch(
        /has not returned to its event loop for 1 s/,
      );
      expect(logs.some((entry) => /actor "Stuck" is unresponsive/.test(entry.message))).toBe(true);
      const steps = () => nexus.status().actors.find((actor) => actor.name === 'Sibling')!.steps;
      const before = steps();
      await sleep(700);
      expect(steps()).toBeGreaterThan(before);
      expect(states(nexus)).toMatchObject({ Source: 'running', Sibling: 'running' });
    });

    it('never loses a message across pause, resume, stop and run, and leaves no store value behind', async () => {
      const limit = 3000;
      const { nexus, results } = await start(
        {
          Source: { class: 'Counter', limit, bytes: 64 },
          Threshold: { class: 'Relay' },
          Sink: { class: 'Collector' },
        },
        { 'Source.q_out': ['Threshold.q_in'], 'Threshold.q_out': ['Sink.q_in'] },
      );
      await nexus.setup();
      await nexus.run();
      for (let cycle = 0; cycle < 12; cycle++) {
        await sleep(cycle % 3);
        if (cycle % 2 === 0) {
          await nexus.pause();
          await nexus.resume();
        } else {
          await nexus.stop();
          await nexus.run();
        }
      }
      const received = () => {
        const last = results('Sink').at(-1) as { received: { Source?: number }; outOfOrder: number } | undefined;
        return last?.received.Source ?? 0;
      };
      for (let i = 0; i < 200 && received() < limit; i++) {
        await sleep(20);
        await nexus.stop();
        if (received() < limit) await nexus.run();
      }
      expect(received()).toBe(limit);
      for (const result of results('Sink')) expect(result).toMatchObject({ outOfOrder: 0 });
      expect(nexus.status().links.map((link) => [link.sent, link.dropped, link.depth])).toEqual([
        [limit, 0, 0],
        [limit, 0, 0],
      ]);
      expect((await nexus.store.usage()).objects).toBe(0);
      await nexus.quit();
    });

    it('stops a paused pipeline: actors parked in a get() acknowledge at once, every stop() runs, and run goes on', async () => {
      const limit = 400;
      const { nexus, results, logs } = await start(
        { Source: { class: 'Counter', limit, bytes: 64, intervalMs: 1 }, Sink: { class: 'Collector' } },
        { 'Source.q_out': ['Sink.q_in'] },
      );
      await nexus.setup();
      await nexus.run();
      await sleep(30);
      await nexus.pause();
      // The sink waits in get() (its source is paused too): parked by pause, and told so again by stop.
      await nexus.stop();
      expect(states(nexus)).toEqual({ Source: 'stopped', Sink: 'stopped' });
      expect(results('Sink')).toHaveLength(1); // its stop() ran
      await nexus.run();
      const received = () =>
        (results('Sink').at(-1) as { received: { Source?: number } } | undefined)?.received.Source ?? 0;
      for (let i = 0; i < 200 && received() < limit; i++) {
        await sleep(20);
        await nexus.pause();
        await nexus.stop();
        if (received() < limit) await nexus.run();
      }
      expect(received()).toBe(limit);
      expect(logs.filter((entry) => entry.level === 'error')).toEqual([]);
      await nexus.quit();
    });

    it('a forgotten await before put() does not fail the actor on pause or stop, and loses nothing', async () => {
      const { nexus, results } = await start(
        { Careless: { class: 'Careless' }, Sink: { class: 'Collector' } },
        { 'Careless.q_out': ['Sink.q_in'] },
      );
      await nexus.setup();
      await nexus.run();
      // Messages flow first: the sink has taken one (a link between processes connects after run,
      // and a sink still starting is reached at the source's next reconnect).
      await until(() => {
        const link = nexus.status().links[0];
        return link !== undefined && link.sent > link.depth;
      }, 'the first message to reach the sink');
      for (let cycle = 0; cycle < 6; cycle++) {
        await sleep(10);
        await nexus.pause();
        await nexus.resume();
      }
      await nexus.stop();
      expect(states(nexus)).toEqual({ Careless: 'stopped', Sink: 'stopped' });
      expect(results('Sink')[0]).toMatchObject({ outOfOrder: 0 });
      expect((results('Sink')[0] as { received: { Careless: number } }).received.Careless).toBeGreaterThan(0);
    });

    it('releases the store keys of messages that drop-oldest drops, and counts the drops per link', async () => {
      const { nexus, logs } = await start(
        { Camera: { class: 'Counter', bytes: 65_536, intervalMs: 2 }, Viewer: { class: 'Collector', delayMs: 25 } },
        { frames: { sources: ['Camera.q_out'], sinks: ['Viewer.q_in'], capacity: 4, policy: 'drop-oldest' } },
      );
      await nexus.setup();
      await nexus.run();
      await sleep(1500);
      // 64 KiB frames every 2 ms fill an 8 MiB store in a quarter of a second if dropped frames leak.
      const objects = (await nexus.store.usage()).objects;
      await nexus.stop();
      expect(logs.filter((entry) => entry.level === 'error')).toEqual([]);
      expect(objects).toBeLessThanOrEqual(8);
      const [frames] = nexus.status().links;
      expect(frames).toMatchObject({ connection: 'frames', policy: 'drop-oldest', capacity: 4 });
      expect(frames!.dropped).toBeGreaterThan(0);
      expect(frames!.sent - frames!.dropped - frames!.depth).toBeGreaterThan(0);
    });

    it('a dead sink no longer holds its producer back: its siblings keep receiving, its messages are counted dropped', async () => {
      const { nexus, logs, results } = await start(
        {
          // Slow steps: the source fills the victim's room long before it dies, and an actor process's
          // link counters (mirrored to Nexus every 10 ms) say so by then, also on a loaded machine.
          Victim: { class: 'Dying', how: 'exit', afterSteps: 5, stepMs: 50 },
          Source: { class: 'Counter', bytes: 16 },
          Sibling: { class: 'Collector' },
        },
        { fanout: { sources: ['Source.q_out'], sinks: ['Victim.q_in', 'Sibling.q_in'], capacity: 16 } },
      );
      await nexus.setup();
      await runTolerating(nexus);
      await until(() => states(nexus).Victim === 'failed', 'the victim to die');
      // Steps are reported twice a second: the sibling's count keeps growing after the death.
      const steps = () => nexus.status().actors.find((actor) => actor.name === 'Sibling')!.steps;
      await sleep(700);
      const first = steps();
      await sleep(700);
      const second = steps();
      await nexus.stop();
      expect(first).toBeGreaterThan(100);
      expect(second).toBeGreaterThan(first);
      expect((results('Sibling')[0] as { outOfOrder: number }).outOfOrder).toBe(0);
      const toVictim = nexus.status().links.find((link) => link.to.actor === 'Victim')!;
      expect(toVictim.dropped).toBeGreaterThan(100);
      expect(toVictim.waiting).toBe(false);
      expect(
        logs.some((entry) =>
          /actor "Victim" is gone: \d+ messages? waiting in Source\.q_out → Victim\.q_in/.test(entry.message),
        ),
      ).toBe(true);
    });

    it('tells a sink whose every source died: get() rejects with LinkSourcesGoneError, and the log says so', async () => {
      const { nexus, logs } = await start(
        { Victim: { class: 'Dying', how: 'exit', afterSteps: 4 }, Sink: { class: 'Collector' } },
        { 'Victim.q_out': ['Sink.q_in'] },
      );
      await nexus.setup();
      await runTolerating(nexus);
      await until(
        () =>
          logs.some(
            (entry) => entry.source === 'Sink' && /LinkSourcesGoneError/.test(entry.message + (entry.stack ?? '')),
          ),
        'the sink to hear',
      );
      expect(
        logs.some(
          (entry) => entry.source === 'nexus' && /every source of Sink\.q_in is gone \(Victim\)/.test(entry.message),
        ),
      ).toBe(true);
      expect(states(nexus)).toMatchObject({ Victim: 'failed', Sink: 'running' });
    });

    it('backs off a runStep() that throws every time, counts its errors in status, and summarises them by place', async () => {
      const { nexus, logs } = await start({ Broken: { class: 'Throwing', frameInMessage: true } });
      await nexus.setup();
      await nexus.run();
      await sleep(1500);
      await nexus.stop();
      const broken = nexus.status().actors.find((actor) => actor.name === 'Broken')!;
      // Without a back-off (1 ms doubling to 1 s) it is called tens of thousands of times a second.
      expect(broken.errors).toBeGreaterThan(3);
      expect(broken.errors).toBeLessThan(40);
      expect(broken.steps).toBe(0);
      const errors = logs.filter((entry) => entry.source === 'Broken' && entry.level === 'error');
      // The message carries a frame number, yet it is one error: one stack, then summaries.
      expect(errors.filter((entry) => entry.stack !== undefined)).toHaveLength(1);
      expect(
        errors.some((entry) =>
          /threw Error at .*_actors\.ts.* more times? \(last: bad frame \d+\)/.test(entry.message),
        ),
      ).toBe(true);
    });

    it('on_error: fail fails the actor at its first runStep() error; the others go on', async () => {
      const { nexus } = await start({
        Broken: { class: 'Throwing', on_error: 'fail' },
        Source: { class: 'Counter', limit: 0 },
      });
      await nexus.setup();
      await runTolerating(nexus);
      await until(() => states(nexus).Broken === 'failed', 'the actor to fail');
      const broken = nexus.status().actors.find((actor) => actor.name === 'Broken')!;
      expect(broken).toMatchObject({ errors: 1, error: { message: 'step exploded on purpose' } });
      expect(states(nexus).Source).toBe('running');
    });

    it('warns about a full link nobody reads, naming it, and names a cycle of full links as a deadlock', async () => {
      const { nexus, logs } = await start(
        {
          Source: { class: 'Counter' },
          Deaf: { class: 'Counter', limit: 0 },
          A: { class: 'Pusher' },
          B: { class: 'Pusher' },
        },
        {
          ignored: { sources: ['Source.q_out'], sinks: ['Deaf.q_in'], capacity: 16 },
          ab: { sources: ['A.q_out'], sinks: ['B.q_in'], capacity: 4 },
          ba: { sources: ['B.q_out'], sinks: ['A.q_in'], capacity: 4 },
        },
        { linkWarningMs: 300 },
      );
      await nexus.setup();
      await nexus.run();
      await until(() => logs.some((entry) => /^deadlock/.test(entry.message)), 'the deadlock warning');
      await until(
        () => logs.some((entry) => /Source\.q_out → Deaf\.q_in/.test(entry.message)),
        'the full-link warning',
      );
      const full = logs.find((entry) => /Source\.q_out → Deaf\.q_in/.test(entry.message))!;
      expect(full.level).toBe('warn');
      expect(full.message).toMatch(
        /has been full \(16 of 16 messages\).*Source waits to put and Deaf \(running\) does not read q_in/,
      );
      const deadlock = logs.find((entry) => /^deadlock/.test(entry.message))!;
      expect(deadlock.message).toMatch(/deadlock: (A → B → A|B → A → B)/);
      const ignored = nexus.status().links.find((link) => link.connection === 'ignored')!;
      expect(ignored).toMatchObject({ depth: 16, waiting: true });
      expect(ignored.waitingMs).toBeGreaterThanOrEqual(300);
      // Pausing and stopping a deadlocked pipeline still works (nobody is interrupted; all park).
      await nexus.stop();
      expect(nexus.status().state).toBe('stopped');
    });

    it('on quit, drops what links still hold, says so, and releases the store keys those messages carried', async () => {
      const { nexus, logs } = await start(
        { Source: { class: 'Counter', bytes: 1024 }, Deaf: { class: 'Counter', limit: 0 } },
        { ignored: { sources: ['Source.q_out'], sinks: ['Deaf.q_in'], capacity: 16 } },
      );
      await nexus.setup();
      await nexus.run();
      await until(() => nexus.status().links[0]?.waiting === true, 'the link to fill');
      // 16 values behind the messages in the link, and one behind the put that waits for room.
      expect((await nexus.store.usage()).objects).toBe(17);
      await nexus.quit();
      const said = logs.find((entry) => /^quit: \d+ messages? waiting in/.test(entry.message))?.message;
      expect(said).toMatch(/^quit: 16 messages waiting in Source\.q_out → Deaf\.q_in were dropped; /);
      // Where the messages ended with the sink's process, only their count comes back.
      if (options.drainsAtQuit !== false) expect(said).toMatch(/; 16 store values they referred to released/);
    });

    it('streams events as an async iterable that ends when the pipeline has quit', async () => {
      const { nexus } = await start({ Source: { class: 'Counter', limit: 0 } });
      const seen: string[] = [];
      const reading = (async () => {
        for await (const event of nexus.events()) {
          if (event.type === 'pipeline-state') seen.push(event.state);
        }
      })();
      await nexus.setup();
      await nexus.quit();
      await reading;
      expect(seen).toEqual(['setting-up', 'ready', 'quitting', 'exited']);
    });
  });

  describe('metrics and taps', () => {
    // Where the actors run decides what their hosts can measure (see ActorMetrics).
    const actorRuntime = (options.actorKeys?.runtime as string | undefined) ?? options.runtime.name;
    const ownProcess = options.actorKeys?.method === 'process' || options.actorKeys?.runtime !== undefined;

    it('measures what runs: steps and their rates, step times, load, messages, bytes and latency per edge, the store', async () => {
      const sent = 400;
      const { nexus } = await start(
        {
          Source: { class: 'Counter', limit: sent, intervalMs: 1, stamp: true, bytes: 64 },
          Sink: { class: 'Collector' },
        },
        { frames: { sources: ['Source.q_out'], sinks: ['Sink.q_in'], capacity: 64 } },
      );
      await nexus.setup();
      await nexus.run();
      const sinkOf = () => nexus.metrics().actors.find((actor) => actor.name === 'Sink')!;
      const edgeOf = () => nexus.metrics().links.find((link) => link.connection === 'frames')!;
      // While messages flow, the rates say so.
      await until(() => sinkOf().stepsPerSecond > 0 && edgeOf().messagesPerSecond > 0, 'rates above 0');
      await until(() => edgeOf().latencyMs !== undefined && sinkOf().stepMs !== undefined, 'step times and latency');
      const flowing = nexus.metrics();
      const edge = flowing.links.find((link) => link.connection === 'frames')!;
      expect(edge.from).toEqual({ actor: 'Source', link: 'q_out' });
      expect(edge.bytesPerSecond).toBeGreaterThan(0);
      expect(edge.latencyMs!.p50).toBeGreaterThanOrEqual(0);
      expect(edge.latencyMs!.p99).toBeGreaterThanOrEqual(edge.latencyMs!.p50);
      expect(edge.latencyMs!.p99).toBeLessThan(10_000);
      expect(edge.droppedPerSecond).toBe(0);
      const sink = flowing.actors.find((actor) => actor.name === 'Sink')!;
      expect(sink.stepMs!.p99).toBeGreaterThanOrEqual(sink.stepMs!.p50);
      expect(sink.errorsPerSecond).toBe(0);
      // Every message read is a step of the sink; the edge counted each message and its bytes.
      await until(() => sinkOf().steps === sent, `the sink's ${sent} steps to be reported`);
      // Loads come with each host's twice-a-second report, which the Source's may not have sent yet.
      await until(
        () => nexus.metrics().actors.every((actor) => actor.heapBytes !== undefined),
        "every actor's first load report",
      );
      const done = nexus.metrics();
      const link = done.links.find((entry) => entry.connection === 'frames')!;
      expect(link.sent).toBe(sent);
      // {source, n, key, t, frame (24 bytes), shape}: tens of bytes each, encoded.
      expect(link.bytes).toBeGreaterThan(sent * 40);
      expect(link.bytes).toBeLessThan(sent * 400);
      expect(done.time).toBeGreaterThan(Date.now() - 60_000);
      expect(done.state).toBe('running');
      for (const actor of done.actors) {
        expect(actor.heapBytes).toBeGreaterThan(0);
        if (actor.elu !== undefined) {
          expect(actor.elu).toBeGreaterThanOrEqual(0);
          expect(actor.elu).toBeLessThanOrEqual(1);
        }
        if (actor.cpu !== undefined) expect(actor.cpu).toBeGreaterThanOrEqual(0);
      }
      const source = done.actors.find((actor) => actor.name === 'Source')!;
      // Node measures event-loop utilisation; Bun's and Deno's always report zero, so it is absent there.
      expect(source.elu !== undefined).toBe(actorRuntime === 'node');
      // CPU: an actor's own process, or a worker's thread where the runtime tells it.
      const threadCpu = typeof (globalThis as { process?: { threadCpuUsage?: unknown } }).process?.threadCpuUsage;
      expect(source.cpu !== undefined).toBe(ownProcess || threadCpu === 'function');
      await until(() => nexus.metrics().store !== undefined, "the store's usage");
      const store = nexus.metrics().store!;
      expect(store.driver).toBe(options.createStore().name);
      expect(store.capacityBytes).toBeGreaterThan(0);
      expect(store.objects).toBeGreaterThanOrEqual(0);
      // Idle now: the rates fall to 0 within a second or so.
      await until(() => edgeOf().messagesPerSecond === 0, 'the message rate to fall to 0');
      await nexus.stop();
    });

    it('metrics: false measures nothing in the actors; counters and rates between reads remain', async () => {
      const { nexus } = await start(
        { Source: { class: 'Counter', limit: 50, intervalMs: 1, stamp: true }, Sink: { class: 'Collector' } },
        { frames: { sources: ['Source.q_out'], sinks: ['Sink.q_in'] } },
        { metrics: false },
      );
      await nexus.setup();
      await nexus.run();
      await until(() => nexus.metrics().actors.find((actor) => actor.name === 'Sink')!.steps === 50, '50 steps');
      const metrics = nexus.metrics();
      for (const actor of metrics.actors) {
        expect(actor).not.toHaveProperty('stepMs');
        expect(actor).not.toHaveProperty('elu');
        expect(actor).not.toHaveProperty('heapBytes');
      }
      expect(metrics.links[0]).not.toHaveProperty('latencyMs');
      expect(metrics.links[0]!.sent).toBe(50);
      expect(metrics).not.toHaveProperty('store');
      await nexus.stop();
    });

    it('publish: numbers arrive as series with every point, other values newest-only as copies; nothing while unwatched', async () => {
      const { nexus, logs } = await start({ Publisher: { class: 'Publishing', intervalMs: 1 } }, {});
      await nexus.setup();
      await nexus.run();
      const got: Published[] = [];
      const unwatch = nexus.watchPublished((published) => got.push(published));
      const series = (name: string) =>
        got.filter((entry) => entry.name === name).map((entry) => entry.data as PublishedSeries);
      await until(() => series('count').reduce((sum, data) => sum + data.times.length, 0) >= 100, '100 counts');
      unwatch();
      const stoppedAt = got.length;
      expect(new Set(got.map((entry) => entry.actor))).toEqual(new Set(['Publisher']));
      // Every number published while watched arrived, in order, each with its time.
      const counts = series('count').flatMap((data) => data.values.value!);
      expect(series('count').every((data) => data.kind === 'series' && data.skipped === 0)).toBe(true);
      for (let index = 1; index < counts.length; index++) expect(counts[index]).toBe(counts[index - 1]! + 1);
      const times = series('count').flatMap((data) => data.times);
      expect(times.length).toBe(counts.length);
      expect(times.every((time, index) => index === 0 || time >= times[index - 1]!)).toBe(true);
      // A record of numbers: one column per field; a field that came later is null (absent) before it.
      const stats = series('stats');
      const twice = stats.flatMap((data) => data.values.twice!);
      const late = stats.flatMap((data) => data.values.late ?? new Array<null>(data.times.length).fill(null));
      expect(twice.length).toBe(late.length);
      twice.forEach((value, index) => {
        expect(late[index] === null ? value! < 20 : late[index] === -value! / 2).toBe(true);
      });
      // Other values: the newest of each delivery, copied when published (the actor rewrites its buffer).
      const frames = got.filter((entry) => entry.name === 'frame').map((entry) => entry.data as PublishedLatest);
      expect(frames.length).toBeGreaterThan(0);
      for (const data of frames) {
        expect(data.kind).toBe('latest');
        const { array, shape } = data.value as { array: Uint16Array; shape: number[] };
        expect(array).toBeInstanceOf(Uint16Array);
        expect(shape).toEqual([4, 4]);
        expect(new Set(array).size).toBe(1);
      }
      const fills = frames.map((data) => (data.value as { array: Uint16Array }).array[0]!);
      expect(fills.every((fill, index) => index === 0 || fill > fills[index - 1]!)).toBe(true);
      // ~60 deliveries a second at most: with a step a millisecond or so, most frames were replaced.
      expect(frames.reduce((sum, data) => sum + data.skipped, 0)).toBeGreaterThan(0);
      // Unwatched: nothing more comes.
      await sleep(300);
      expect(got.length).toBe(stoppedAt);
      // A value that cannot be sent is dropped, said once, and the actor went on publishing.
      expect(got.some((entry) => entry.name === 'unsendable')).toBe(false);
      const warned = logs.filter((entry) => /publish\("unsendable", …\): the value cannot be sent/.test(entry.message));
      expect(warned).toHaveLength(1);
      expect(warned[0]!.source).toBe('Publisher');
      expect(nexus.status().actors[0]!.state).toBe('running');
      await nexus.stop();
    });

    it('taps a connection: one-line summaries where its sink reads, at most ~20 a second, until the tap ends', async () => {
      const { nexus } = await start(
        {
          Source: { class: 'Counter', intervalMs: 1, stamp: true, bytes: 16 },
          Sink: { class: 'Collector' },
        },
        { frames: { sources: ['Source.q_out'], sinks: ['Sink.q_in'], capacity: 64 } },
      );
      const refused = (() => {
        try {
          nexus.tap('frame', () => {});
        } catch (error) {
          return error;
        }
        return undefined;
      })();
      expect(CommandRefusedError.isInstance(refused)).toBe(true);
      expect(messageOf(refused)).toMatch(
        /cannot tap "frame": there is no such connection; did you mean "frames"\? the connections are frames/,
      );
      await nexus.setup();
      await nexus.run();
      const records: TapRecord[] = [];
      const started = performance.now();
      const stopTap = nexus.tap('frames', (record) => records.push(record));
      await until(() => records.length >= 5, 'five tap records');
      await sleep(300);
      stopTap();
      const elapsedS = (performance.now() - started) / 1000;
      const [first] = records;
      expect(first).toMatchObject({ connection: 'frames', from: 'Source.q_out', to: 'Sink.q_in' });
      // An endpoint of the connection names it too.
      const byEndpoint: TapRecord[] = [];
      const stopByEndpoint = nexus.tap('Sink.q_in', (record) => byEndpoint.push(record));
      await until(() => byEndpoint.length >= 1, 'a tap record through an endpoint');
      stopByEndpoint();
      expect(byEndpoint[0]).toMatchObject({ connection: 'frames', from: 'Source.q_out', to: 'Sink.q_in' });
      expect(first!.time).toBeGreaterThan(Date.now() - 60_000);
      expect(first!.summary).toMatch(
        /^\{ source: "Source", n: \d+, key: "[^"]+" \(store key\), t: \d{13}, frame: Float32Array\[2×3\], shape: \[2, 3\] \}$/,
      );
      // Sampled: ~20 a second (one per 50 ms), the rest counted as skipped.
      expect(records.length).toBeLessThanOrEqual(Math.ceil(elapsedS * 20) + 2);
      expect(records.some((record) => record.skipped > 0)).toBe(true);
      // Each record is a message the sink read: n only grows.
      const ns = records.map((record) => Number(/n: (\d+)/.exec(record.summary)![1]));
      expect(ns).toEqual([...ns].sort((a, b) => a - b));
      // Closed: no more records (one may have been on its way).
      await sleep(100);
      const after = records.length;
      await sleep(400);
      expect(records.length).toBe(after);
      await nexus.stop();
    });
  });

  describe('links of the embedding program (host)', () => {
    it('feeds an actor and reads what it puts, in order, with store keys, and shows the links in status', async () => {
      const { nexus } = await start(
        { Relay: { class: 'Relay' } },
        {},
        {
          host: { outputs: ['Relay.q_in'], inputs: [{ endpoint: 'Relay.q_out', capacity: 8 }] },
        },
      );
      await nexus.setup();
      await nexus.run();
      const into = nexus.output<{ n: number; key: string }>('Relay.q_in');
      const from = nexus.input<{ n: number; key: string }>('Relay.q_out');
      const count = 200; // far more than the capacity of 8: back-pressure, nothing lost
      const sending = (async () => {
        for (let n = 0; n < count; n++) await into.put({ n, key: await nexus.store.put(new Float64Array([n])) });
      })();
      const received: number[] = [];
      for (let i = 0; i < count; i++) {
        const message = await from.get();
        const value = await nexus.store.get<Float64Array>(message.key);
        received.push(value[0]!);
        await nexus.store.delete(message.key);
      }
      await sending;
      expect(received).toEqual(Array.from({ length: count }, (_, n) => n));
      const links = () =>
        nexus
          .status()
          .links.map((link) => `${link.from.actor}.${link.from.link} → ${link.to.actor}.${link.to.link} ${link.sent}`)
          .sort();
      const expected = [`<host>.Relay.q_in → Relay.q_in ${count}`, `Relay.q_out → <host>.Relay.q_out ${count}`];
      // Counters of an actor in another process reach Nexus within its channel's mirror period.
      await until(() => links().join() === expected.join(), 'the link counters');
      expect(links()).toEqual(expected);
    });

    it('refuses endpoints that name no actor or go the wrong way, all at once, before anything starts', async () => {
      const error = await failure(
        start(
          { Relay: { class: 'Relay' }, Source: { class: 'Counter' } },
          { 'Source.q_out': ['Relay.q_in'] },
          {
            host: { inputs: ['Rely.q_out', 'Relay.q_in'], outputs: ['Source.q_out', 'nonsense'] },
          },
        ),
      );
      expect(messageOf(error)).toContain('invalid host links');
      expect(messageOf(error)).toContain('host.inputs: "Rely.q_out" names no actor of the pipeline');
      expect(messageOf(error)).toContain('did you mean "Relay"?');
      expect(messageOf(error)).toContain('host.inputs: "Relay.q_in" is an input of Relay in the pipeline');
      expect(messageOf(error)).toContain('host.outputs: "Source.q_out" is an output of Source in the pipeline');
      expect(messageOf(error)).toContain('host.outputs: "nonsense" is not an endpoint');
    });

    it('says how to declare an endpoint it was not given, and ends a waiting get() at quit', async () => {
      const { nexus } = await start({ Relay: { class: 'Relay' } }, {}, { host: { inputs: ['Relay.q_out'] } });
      expect(() => nexus.input('Relay.q_in')).toThrow(
        'nexus.input("Relay.q_in"): not declared when the pipeline was created (its host inputs are Relay.q_out); add it to createNexus({ host: { inputs: ["Relay.q_in"] } })',
      );
      const waiting = failure(nexus.input('Relay.q_out').get());
      await nexus.quit();
      expect(((await waiting) as Error).name).toBe('LinkClosedError');
    });
  });
}

/**
 * `run()` where an actor may fail before the command has finished (run then rejects with
 * ActorFailedError saying so, which is right; the test goes on to check the failure itself).
 */
async function runTolerating(nexus: Nexus): Promise<void> {
  try {
    await nexus.run();
  } catch (error) {
    if (!ActorFailedError.isInstance(error)) throw error;
  }
}

/**
 * The error a promise rejects with. The suite settles a promise before asserting on it, instead of
 * `await expect(p).rejects`, because bun test never wakes that form when `p` settles through a
 * worker message (oven-sh/bun#37189).
 */
async function failure(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the promise to reject, but it resolved');
}

/** The message of what was thrown. */
function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
