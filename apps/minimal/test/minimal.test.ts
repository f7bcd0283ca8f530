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
    const unwatch = nexus.watchPublished((published) => {
      if (published.actor !== 'Processor' || published.name !== 'mean' || published.data.kind !== 'series') return;
      const { frame, running } = published.data.values;
      for (let index = 0; index < published.data.times.length; index++) {
        points.push({ frame: frame![index]!, running: running![index]! });
      }
    });
    await nexus.setup();
    await nexus.run();
    while (points.length < 20) await new Promise((resolve) => setTimeout(resolve, 50));
    unwatch();
    await nexus.quit();
    // Random values in [0, 1): every mean within, the running average settling near a half.
    for (const point of points) {
      expect(point.frame).toBeGreaterThanOrEqual(0);
      expect(point.frame).toBeLessThan(1);
    }
    expect(Math.abs(points.at(-1)!.running - 0.5)).toBeLessThan(0.25);
  });
});
