/**
 * Latency statistics through HdrHistogram (hdr-histogram-js): values are recorded in nanoseconds
 * with three significant digits, so every percentile is exact to 0.1% whatever its size.
 * @module
 */
import * as hdr from 'hdr-histogram-js';

/** Latency figures in microseconds. */
export interface LatencySummary {
  n: number;
  avg: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  min: number;
  max: number;
}

/** Longest latency a histogram tracks: one hour, in ns. */
const HIGHEST_NS = 3_600_000_000_000;

/**
 * Summarises samples given in microseconds. A negative sample (clock noise on a sub-µs hop) counts
 * as zero; none is dropped.
 */
export function summarize(samplesUs: ArrayLike<number>, count = samplesUs.length): LatencySummary {
  if (count === 0) throw new RangeError('summarize: no samples');
  const histogram = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: HIGHEST_NS,
    numberOfSignificantValueDigits: 3,
    useWebAssembly: false,
  });
  let min = Number.POSITIVE_INFINITY;
  try {
    for (let index = 0; index < count; index++) {
      const ns = Math.max(0, Math.round(samplesUs[index]! * 1000));
      if (ns < min) min = ns;
      histogram.recordValue(ns);
    }
    const us = (ns: number) => ns / 1000;
    return {
      n: histogram.totalCount,
      avg: us(histogram.mean),
      p50: us(histogram.getValueAtPercentile(50)),
      p90: us(histogram.getValueAtPercentile(90)),
      p99: us(histogram.getValueAtPercentile(99)),
      p999: us(histogram.getValueAtPercentile(99.9)),
      min: us(min),
      max: us(histogram.maxValue),
    };
  } finally {
    histogram.destroy();
  }
}

/** The middle value (the mean of the two middle ones for an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}
