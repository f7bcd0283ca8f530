import { fileURLToPath } from 'node:url';
import { createDefaultNexus } from '@improv/cli';
import type { Published, PublishedLatest, PublishedSeries } from '@improv/core';
import { describe, expect, it } from 'vitest';

describe('apps/live-imaging', () => {
  it('streams 512×512 frames to the dashboard and every neuron’s trace, with transients, in a bounded store', async () => {
    const nexus = await createDefaultNexus({
      config: fileURLToPath(new URL('../live-imaging.yaml', import.meta.url)),
      runDir: false,
      handleSignals: false,
    });
    const got: Published[] = [];
    try {
      await nexus.setup();
      const unwatch = nexus.watchPublished((published) => got.push(published));
      await nexus.run();
      let peakStore = 0;
      const deadline = Date.now() + 30_000;
      const traced = () =>
        got
          .filter((entry) => entry.actor === 'Traces')
          .reduce((sum, entry) => sum + (entry.data as PublishedSeries).times.length, 0);
      // Three seconds of imaging (90 frames at 30 Hz), however long the machine takes to get there.
      while (traced() < 90 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        peakStore = Math.max(peakStore, nexus.metrics().store?.usedBytes ?? 0);
      }
      unwatch();
      const metrics = nexus.metrics();
      await nexus.stop();

      const frames = got.filter((entry) => entry.actor === 'Plot' && entry.name === 'frame');
      expect(frames.length).toBeGreaterThan(0);
      const { array, shape } = (frames.at(-1)!.data as PublishedLatest).value as {
        array: Uint16Array;
        shape: number[];
      };
      expect(shape).toEqual([512, 512]);
      expect(array).toBeInstanceOf(Uint16Array);
      expect(array.length).toBe(512 * 512);
      // A picture, not a blank: background, bright cells, noise.
      let min = 65535;
      let max = 0;
      for (const value of array) {
        if (value < min) min = value;
        if (value > max) max = value;
      }
      expect(min).toBeGreaterThan(0);
      expect(max - min).toBeGreaterThan(200);

      const series = got.filter((entry) => entry.actor === 'Traces').map((entry) => entry.data as PublishedSeries);
      expect(series.every((data) => data.kind === 'series' && data.skipped === 0)).toBe(true);
      const fields = Object.keys(series[0]!.values).sort();
      expect(fields).toHaveLength(12);
      expect(fields).toContain('n0');
      // Every trace starts at its baseline; some neuron fired: a transient well above the noise.
      const peaks = fields.map((field) => Math.max(...series.flatMap((data) => data.values[field]!)));
      expect(Math.max(...peaks)).toBeGreaterThan(0.3);
      // Frames are freed as they are shown or dropped: the store holds a few frames, not all of them.
      expect(traced()).toBeGreaterThanOrEqual(90);
      expect(peakStore).toBeLessThan(64 * 512 * 512 * 2);
      expect(metrics.links.find((link) => link.connection === 'frames')!.sent).toBeGreaterThan(0);
    } finally {
      await nexus.quit();
    }
  });
});
