import { fileURLToPath } from 'node:url';
import { createDefaultNexus } from '@improv/cli';
import type { Published, PublishedLatest, PublishedSeries } from '@improv/core';
import { describe, expect, it } from 'vitest';

type Image = { array: Uint16Array; shape: number[] };

describe('apps/live-imaging', () => {
  it('streams 512×512 frames to the dashboard and every neuron’s trace, with transients, in a bounded store', async () => {
    const nexus = await createDefaultNexus({
      config: fileURLToPath(new URL('../live-imaging.yaml', import.meta.url)),
      runDir: false,
      handleSignals: false,
    });
    const got: Published[] = [];
    const problems: string[] = [];
    nexus.on((event) => {
      if (event.type === 'log' && (event.record.level === 'warn' || event.record.level === 'error')) {
        problems.push(`${event.record.source}: ${event.record.message}`);
      }
    });
    try {
      await nexus.setup();
      const unwatch = nexus.watchPublished((published) => got.push(published));
      await nexus.run();
      let peakStore = 0;
      let peakObjects = 0;
      const deadline = Date.now() + 40_000;
      const traced = () =>
        got
          .filter((entry) => entry.actor === 'Traces')
          .reduce((sum, entry) => sum + (entry.data as PublishedSeries).times.length, 0);
      // Three seconds of imaging (90 frames at 30 Hz, 45 MiB of pixels), however long the machine
      // takes to get there.
      while (traced() < 90 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 25));
        const usage = await nexus.store.usage();
        peakStore = Math.max(peakStore, usage.usedBytes);
        peakObjects = Math.max(peakObjects, usage.objects);
      }
      unwatch();
      const metrics = nexus.metrics();
      await nexus.stop();
      const afterStop = await nexus.store.usage();
      expect(nexus.status().actors.map((actor) => [actor.name, actor.state, actor.errors])).toEqual([
        ['Microscope', 'stopped', 0],
        ['Traces', 'stopped', 0],
        ['Plot', 'stopped', 0],
      ]);

      // The frame, as the page gets it: a 512×512 uint16 image.
      const frames = got
        .filter((entry) => entry.actor === 'Plot' && entry.name === 'frame')
        .map((entry) => (entry.data as PublishedLatest).value as Image);
      expect(frames.length).toBeGreaterThan(1);
      const { array, shape } = frames.at(-1)!;
      expect(shape).toEqual([512, 512]);
      expect(array).toBeInstanceOf(Uint16Array);
      expect(array.length).toBe(512 * 512);
      // A picture, not a blank: background, bright cells, noise...
      let min = 65535;
      let max = 0;
      for (const value of array) {
        if (value < min) min = value;
        if (value > max) max = value;
      }
      expect(min).toBeGreaterThan(0);
      expect(max - min).toBeGreaterThan(200);
      // ...and a live one: each frame shown is a new image (new noise at least), not the same again.
      expect(frames.at(0)!.array).not.toEqual(array);

      // The traces: a time series, one field per neuron, every point delivered.
      const series = got.filter((entry) => entry.actor === 'Traces').map((entry) => entry.data as PublishedSeries);
      expect(series.every((data) => data.kind === 'series' && data.skipped === 0)).toBe(true);
      expect(got.filter((entry) => entry.actor === 'Traces').every((entry) => entry.name === 'traces')).toBe(true);
      const fields = Object.keys(series[0]!.values).sort((a, b) => Number(a.slice(1)) - Number(b.slice(1)));
      expect(fields).toEqual(Array.from({ length: 12 }, (_, n) => `n${n}`));
      // Every trace starts at its baseline (ΔF/F 0); some neuron fired: a transient well above the noise.
      const trace = (field: string) => series.flatMap((data) => data.values[field]!);
      for (const field of fields) expect(trace(field)[0]).toBe(0);
      const peaks = fields.map((field) => Math.max(...trace(field).filter((value) => value !== null)));
      expect(Math.max(...peaks)).toBeGreaterThan(0.3);

      // Progress: the traces of three seconds of frames arrived. Frames are freed as they are shown or
      // dropped: the store holds a few frames at a time (at most what the links can hold), not all of them.
      expect(traced()).toBeGreaterThanOrEqual(90);
      // At most 64 + 4 in the links and one in each actor's hands; were they not freed, the store would
      // hold every frame imaged so far (90 and more).
      const bound = 64 + 4 + 3;
      expect(peakObjects).toBeLessThanOrEqual(bound);
      expect(afterStop.objects).toBeLessThanOrEqual(bound);
      expect(peakStore).toBeLessThan(bound * (512 * 512 * 2 + 1024));
      expect(metrics.links.find((link) => link.connection === 'frames')!.sent).toBeGreaterThanOrEqual(90);
      expect(problems).toEqual([]);

      await nexus.quit();
      expect(nexus.status().state).toBe('exited');
      expect(nexus.status().actors.every((actor) => actor.state === 'exited')).toBe(true);
    } finally {
      await nexus.quit();
    }
  });
});
