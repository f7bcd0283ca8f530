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
});
