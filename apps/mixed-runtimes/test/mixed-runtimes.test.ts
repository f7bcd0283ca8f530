import { fileURLToPath } from 'node:url';
import { createDefaultNexus } from '@improv/cli';
import { describe, expect, it } from 'vitest';

describe('apps/mixed-runtimes', () => {
  it('runs Node, Bun and Deno actors in one pipeline; the analysis crashes, is restarted, and frames flow again', async () => {
    const lines: string[] = [];
    const nexus = await createDefaultNexus({
      config: fileURLToPath(new URL('../mixed_runtimes.yaml', import.meta.url)),
      runDir: false,
      handleSignals: false,
      onEvent: (event) => {
        if (event.type === 'log') lines.push(`${event.record.source}: ${event.record.message}`);
      },
    });
    await nexus.setup();
    await nexus.run();
    const log = () => lines.join('\n');
    for (
      let i = 0;
      i < 400 && !/Viewer: frame \d+.*\n(?:.*\n)*.*restarted: running(?:.*\n)*Viewer: frame/.test(log());
      i++
    ) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await nexus.stop();
    await nexus.quit();
    const text = log();
    expect(text).toContain('nexus: store: lmdb, because actor "Camera" runs in its own process');
    expect(text).toMatch(/Camera: on node, pid \d+/);
    expect(text).toMatch(/Denoise: on bun, pid \d+/);
    expect(text).toMatch(/Viewer: on node, pid \d+ \(a worker of improv's own process\)/);
    const analysisPids = [...text.matchAll(/Analysis: on deno, pid (\d+)/g)].map((match) => match[1]);
    expect(new Set(analysisPids).size, text).toBeGreaterThanOrEqual(2);
    expect(text).toMatch(/actor "Analysis" failed: its process died: its process was ended by SIGABRT/);
    expect(text).toContain(
      'actor "Analysis" restarts in 500 ms (restart: on-failure; restart 1 of at most 20 in a row)',
    );
    const restarted = text.indexOf('actor "Analysis" restarted: running');
    expect(restarted, text).toBeGreaterThan(0);
    // Frames went through all three runtimes again after the restart.
    expect(text.slice(restarted)).toMatch(
      /Viewer: frame \d+: spot at \(\d+, \d+\), via Camera@node → Denoise@bun → Analysis@deno/,
    );
    // Nothing sent to the analysis was lost across its crash: Denoise held it and sent it again.
    const [, received, span] = /Viewer: received (\d+) frames of (\d+)/.exec(text) ?? [];
    expect(Number(received), text).toBeGreaterThan(0);
    expect(Number(received), text).toBeGreaterThanOrEqual(Number(span));
  });
});
