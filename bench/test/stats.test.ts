import { describe, expect, it } from 'vitest';
import { summarize } from '../src/stats.ts';

describe('summarize', () => {
  it('gives HdrHistogram percentiles within 0.1% of the exact ones', () => {
    const samples = Float64Array.from({ length: 10_000 }, (_, index) => (index + 1) / 10); // 0.1 … 1000 µs
    const summary = summarize(samples);
    expect(summary.n).toBe(10_000);
    expect(summary.avg).toBeCloseTo(500.05, 0);
    for (const [value, exact] of [
      [summary.p50, 500],
      [summary.p90, 900],
      [summary.p99, 990],
      [summary.p999, 999],
    ] as const) {
      expect(Math.abs(value - exact) / exact).toBeLessThan(0.001);
    }
    expect(summary.min).toBeCloseTo(0.1, 3);
    expect(Math.abs(summary.max - 1000) / 1000).toBeLessThan(0.001);
  });

  it('counts a negative sample (clock noise) as zero instead of dropping it', () => {
    const summary = summarize([-0.2, 1, 2, 3]);
    expect(summary.n).toBe(4);
    expect(summary.min).toBe(0);
  });

  it('summarises only the first `count` samples', () => {
    expect(summarize([5, 5, 1000], 2).max).toBeCloseTo(5, 2);
  });

  it('refuses an empty set', () => {
    expect(() => summarize([])).toThrow(/no samples/);
  });
});
