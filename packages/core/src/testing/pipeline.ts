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
import { ActorFailedError, CommandRefusedError } from '../errors.ts';
import type { Transport } from '../link/transport.ts';
import type { LogRecord } from '../log.ts';
import { createNexus, type Nexus, type NexusOptions } from '../nexus.ts';
import type { RuntimeAdapter } from '../runtime/adapter.ts';
import type { StoreDriver } from '../store/driver.ts';

/** What the suite needs. */
export interface PipelineConformanceOptions {
  name: string;
  runtime: RuntimeAdapter;
  createStore: () => StoreDriver;
  createTransport: () => Transport;
}

const actorsModule = './_actors.ts';

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
    extra: Partial<NexusOptions> = {},
  ): Promise<{ nexus: Nexus; logs: LogRecord[]; results: (actor: string) => Record<string, unknown>[] }> {
    const config = {
      settings: { store_size: '8MiB' },
      actors: Object.fromEntries(
        Object.entries(actors).map(([name, actor]) => [name, { package: actorsModule, ...actor }]),
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
        /cannot setup: the pipeline is ready; setup is done; type run/,
      );
      expect(CommandRefusedError.isInstance(await failure(nexus.stop()))).toBe(true);
      expect(messageOf(await failure(nexus.resume()))).toMatch(/cannot resume: the pipeline is ready/);
      await nexus.run();
      expect(messageOf(await failure(nexus.run()))).toMatch(/already running/);
      expect(messageOf(await failure(nexus.resume()))).toMatch(/already running/);
      await nexus.pause();
      expect(messageOf(await failure(nexus.pause()))).toMatch(/already paused/);
      expect(messageOf(await failure(nexus.run()))).toMatch(/type resume/);
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
      await until(() => logs.some((entry) => /more times?: RangeError/.test(entry.message)), 'repeated errors');
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
        await nexus.run();
        await until(() => states(nexus).Victim === 'failed', 'the victim to fail');
        expect(failures).toEqual(['Victim']);
        const victim = nexus.status().actors.find((actor) => actor.name === 'Victim');
        expect(victim?.error?.message).toMatch(
          { exit: /exited with code 3/, throw: /uncaught error on purpose/, oom: /out of memory/i }[how],
        );
        expect(states(nexus)).toMatchObject({ Source: 'running', Sink: 'running' });
        await sleep(50);
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
