// The Plot actor in a real pipeline: what it publishes for each kind of message, the store values it
// reads (and deletes once read), and the error that names a missing field.
import { fileURLToPath } from 'node:url';
import { createNexus, type Nexus, type Published, type PublishedLatest, type PublishedSeries } from '@improv/core';
import { createNodeRuntime } from '@improv/core/runtime/node';
import { createMemoryStore } from '@improv/store';
import { createLocalTransport } from '@improv/transport-local';
import { afterEach, describe, expect, it } from 'vitest';

const fixtures = fileURLToPath(new URL('./fixtures/', import.meta.url));
const running: Nexus[] = [];
afterEach(async () => {
  for (const nexus of running.splice(0)) await nexus.quit();
});

async function start(source: Record<string, unknown>, plot: Record<string, unknown> = {}) {
  const nexus = await createNexus({
    config: {
      settings: { store_size: '16MiB' },
      actors: {
        Source: { package: 'sources.ts', class: 'Sends', ...source },
        Plot: { package: '@improv/dashboard/plot', class: 'Plot', ...plot },
      },
      connections: { 'Source.q_out': ['Plot.q_in'] },
    },
    baseDir: fixtures,
    runtime: createNodeRuntime(),
    store: createMemoryStore(),
    transport: createLocalTransport(),
    runDir: false,
    handleSignals: false,
  });
  running.push(nexus);
  const got: Published[] = [];
  const logs: string[] = [];
  nexus.on((event) => {
    if (event.type === 'log') logs.push(`${event.record.source}: ${event.record.message}`);
  });
  nexus.watchPublished((published) => got.push(published));
  await nexus.setup();
  await nexus.run();
  return { nexus, got, logs };
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('the Plot actor', () => {
  it('shows the frame a message’s store key names, as an image, and deletes it once read', async () => {
    const { nexus, got } = await start({ what: 'frame' });
    await until(() => got.length > 0, 'a frame');
    const data = got[0]!.data as PublishedLatest;
    expect(got[0]).toMatchObject({ actor: 'Plot', name: 'Plot' });
    const { array, shape } = data.value as { array: Uint16Array; shape: number[] };
    expect(shape).toEqual([8, 4]);
    expect(array).toBeInstanceOf(Uint16Array);
    // Frame n holds n, n+1, …: the newest frame at each delivery, whole.
    const n = array[0]!;
    expect(Array.from(array)).toEqual(Array.from({ length: 32 }, (_, index) => index + n));
    await until(() => (nexus.metrics().links[0]?.sent ?? 0) >= 20, '20 frames sent');
    await nexus.stop();
    // Every frame read was deleted: the store holds none of the 20.
    await until(() => nexus.metrics().store?.objects === 0, 'an empty store');
  });

  it('plots one field of each message (a path), named as asked; numbers become a series', async () => {
    const { got } = await start({ what: 'stats' }, { field: 'stats.mean', name: 'means' });
    await until(() => got.some((entry) => (entry.data as PublishedSeries).times?.length > 0), 'a series');
    const series = got[0]!.data as PublishedSeries;
    expect(got[0]!.name).toBe('means');
    expect(series.kind).toBe('series');
    expect(series.values.value!.every((value) => value !== null && value >= 0 && value < 1)).toBe(true);
  });

  it('says which fields a message has when the one asked for is missing', async () => {
    const { logs } = await start({ what: 'stats' }, { field: 'mean' });
    await until(() => logs.some((line) => line.includes('has no field')), 'the error');
    expect(logs.join('\n')).toMatch(
      /Plot "Plot": the message has no field "mean" \(its fields: stats, n\); set field: to one of them/,
    );
  });
});
