// `--metrics-overhead` end to end, as small as it goes: one round of the pair's 8 B rows with
// metrics on and off, through real pipelines; the table names each path with both figures and
// their ratio. (What the figures are on a quiet machine is for a real run to say.)
import { expect, it } from 'vitest';
import { renderMetricsOverhead, runMetricsOverhead } from '../src/metrics-overhead.ts';
import { openBenchStore } from '../src/stores.ts';

it('measures the 8 B rows with metrics on and off in one run, and reports on ÷ off', async () => {
  const store = await openBenchStore('memory');
  try {
    const lines: string[] = [];
    const results = await runMetricsOverhead(store, {
      quick: true,
      samples: 20,
      throughputUs: 20_000,
      rounds: 1,
      transport: 'local',
      zmqSockets: 'auto',
      log: (line) => lines.push(line),
    });
    expect(results.rows.map((row) => row.path)).toEqual(['put', 'allocate', 'inline']);
    for (const row of results.rows) {
      expect(row.size).toBe(8);
      for (const mode of [row.on, row.off]) {
        expect(mode.msgsPerS).toBeGreaterThan(0);
        expect(mode.p50).toBeGreaterThan(0);
        expect(mode.p99).toBeGreaterThanOrEqual(mode.p50);
        expect(mode.rounds).toHaveLength(1);
      }
      expect(row.ratio.msgsPerS).toBeCloseTo(row.on.msgsPerS / row.off.msgsPerS, 10);
      expect(row.pairedRatio).toBeCloseTo(row.on.rounds[0]! / row.off.rounds[0]!, 10);
      // Measuring's own cost per message, as a share of the row's time per message with metrics off.
      expect(row.meterShare).toBeCloseTo(results.meterCost.perMessageNs / (1e9 / row.off.msgsPerS), 10);
    }
    // The host's measuring code, timed on its own: every figure measured, the difference added up.
    const cost = results.meterCost;
    for (const figure of [cost.stepNs.on, cost.stepNs.off, cost.readingStepNs.on, cost.readingStepNs.off]) {
      expect(figure).toBeGreaterThan(0);
    }
    expect(cost.perMessageNs).toBeCloseTo(
      cost.stepNs.on - cost.stepNs.off + (cost.readingStepNs.on - cost.readingStepNs.off),
      10,
    );
    // Every row of each mode was logged as it was measured.
    expect(lines.filter((line) => /^round 1 metrics (on |off) (put|allocate|inline) 8 B:/.test(line))).toHaveLength(6);
    const table = renderMetricsOverhead(results);
    expect(table).toMatch(/^### What metrics cost: the pair at 8 B/);
    expect(table).toMatch(/\n\| put \| [\d.]+( [kM])? \| [\d.]+( [kM])? \| [\d.]+× \| [\d.]+× \| -?[\d.]+% \|/);
    expect(table.split('\n').filter((line) => /^\| (put|allocate|inline) \|/.test(line))).toHaveLength(3);
  } finally {
    await store.close();
  }
});
