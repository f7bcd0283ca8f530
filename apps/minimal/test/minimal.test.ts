import { fileURLToPath } from 'node:url';
import { createDefaultNexus } from '@improv/cli';
import { describe, expect, it } from 'vitest';

describe('apps/minimal', () => {
  it('streams frames from Generator to Processor through the store and averages them', async () => {
    const nexus = await createDefaultNexus({
      config: fileURLToPath(new URL('../minimal.yaml', import.meta.url)),
      runDir: false,
      handleSignals: false,
    });
    const messages: string[] = [];
    nexus.on((event) => {
      if (event.type === 'log') messages.push(`${event.record.source}: ${event.record.message}`);
    });
    await nexus.setup();
    await nexus.run();
    await new Promise((resolve) => setTimeout(resolve, 300));
    await nexus.stop();
    await nexus.quit();
    const sent = Number(/Generator: sent (\d+) frames/.exec(messages.join('\n'))?.[1]);
    const processed = /Processor: processed (\d+) frames; average \[([^\]]*)\]/.exec(messages.join('\n'));
    expect(sent).toBeGreaterThan(0);
    expect(Number(processed?.[1])).toBeGreaterThan(0);
    expect(Number(processed?.[1])).toBeLessThanOrEqual(sent);
    const average = (processed?.[2] ?? '').split(', ').map(Number);
    expect(average).toHaveLength(5);
    for (const value of average) expect(value).toBeGreaterThan(0);
    for (const value of average) expect(value).toBeLessThan(100);
  });

  it('publishes each frame’s mean and the running average for the dashboard while one watches', async () => {
    const nexus = await createDefaultNexus({
      config: fileURLToPath(new URL('../minimal.yaml', import.meta.url)),
      runDir: false,
      handleSignals: false,
    });
    const points: { frame: number; running: number }[] = [];
    const streams = new Set<string>();
    const unwatch = nexus.watchPublished((published) => {
      streams.add(`${published.actor}.${published.name}: ${published.data.kind}`);
      if (published.data.kind !== 'series') return;
      const { frame, running } = published.data.values;
      for (let index = 0; index < published.data.times.length; index++) {
        points.push({ frame: frame![index]!, running: running![index]! });
      }
    });
    try {
      await nexus.setup();
      await nexus.run();
      for (const deadline = Date.now() + 20_000; points.length < 20 && Date.now() < deadline; ) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      unwatch();
      // One stream, from the template's Processor: no extra actor needed for the plot.
      expect([...streams]).toEqual(['Processor.mean: series']);
      expect(points.length).toBeGreaterThanOrEqual(20);
      // Random values in [0, 1): every mean within; watched from the first frame, the running average
      // is the mean of the frames' means so far (equal-sized frames), settling near a half.
      let sum = 0;
      points.forEach((point, index) => {
        expect(point.frame).toBeGreaterThanOrEqual(0);
        expect(point.frame).toBeLessThan(1);
        sum += point.frame;
        expect(point.running).toBeCloseTo(sum / (index + 1), 9);
      });
      expect(Math.abs(points.at(-1)!.running - 0.5)).toBeLessThan(0.25);
    } finally {
      await nexus.quit();
    }
  });
});
