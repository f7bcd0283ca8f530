/**
 * `npm run bench -- --metrics-overhead`: what `nexus.metrics()` costs where it costs most, the 8 B
 * rows of the pair (put, allocate, inline: the cheapest steps, so a fixed cost per step shows
 * most). The same pipeline runs with metrics on (the default: every host times its steps, samples
 * latency and reads its load; Nexus samples twice a second) and off (`createNexus({ metrics:
 * false })`), in rounds that alternate which goes first, each pipeline opened afresh; the figures
 * are the medians over the rounds, and the ratio is on ÷ off (throughput below 1 and latency above
 * 1 are what metrics cost).
 * @module
 */
import { detectRuntime, type StoreName } from '@improv/core';
import { label, perS, us, x } from './format.ts';
import { type MeterCost, measureMeterCost } from './meter-cost.ts';
import type { PathName } from './pipeline/board.ts';
import { Scenario } from './pipeline/scenario.ts';
import { median, summarize } from './stats.ts';
import type { BenchStore } from './stores.ts';

/** What to run. */
export interface MetricsOverheadOptions {
  quick: boolean;
  /** Paced messages per latency phase. */
  samples: number;
  /** Flat-out time per throughput phase, µs. */
  throughputUs: number;
  /** Rounds of on and off (default 5, quick 3). */
  rounds?: number;
  transport: 'local' | 'zmq';
  zmqSockets: 'auto' | 'zeromq' | 'zmtp';
  log: (line: string) => void;
}

/** One path at 8 B, metrics on and off. */
export interface MetricsOverheadRow {
  path: PathName;
  size: number;
  on: ModeFigures;
  off: ModeFigures;
  /** on ÷ off, of the medians. */
  ratio: { msgsPerS: number; p50: number; p99: number };
  /** The median of each round's on ÷ off throughput (each round measures both, back to back). */
  pairedRatio: number;
  /** What measuring's own code costs per message ({@link MeterCost}) as a share of this row's time per message (metrics off). */
  meterShare: number;
}

/** Medians over the rounds. */
export interface ModeFigures {
  msgsPerS: number;
  /** One-way latency, µs. */
  p50: number;
  p99: number;
  /** Every round's throughput, msgs/s, in run order. */
  rounds: number[];
}

export interface MetricsOverheadResults {
  kind: 'metrics-overhead';
  date: string;
  quick: boolean;
  runtime: { name: string; version: string };
  store: StoreName;
  transport: 'local' | 'zmq';
  rounds: number;
  settings: { latencyMessages: number; intervalUs: number; throughputSeconds: number };
  rows: MetricsOverheadRow[];
  /** The host's measuring code timed on its own, on and off, in this process. */
  meterCost: MeterCost;
  elapsedSeconds: number;
}

const SIZE = 8;
const PATHS: PathName[] = ['put', 'allocate', 'inline'];
const INTERVAL_US = 1000;
const CAPACITY = 256;

export async function runMetricsOverhead(
  store: BenchStore,
  options: MetricsOverheadOptions,
): Promise<MetricsOverheadResults> {
  const started = performance.now();
  const runtime = await detectRuntime();
  const rounds = options.rounds ?? (options.quick ? 3 : 9);
  const epochMs = Date.now();
  options.log(
    `metrics overhead: ${runtime.name} ${runtime.version}, ${store.name} store, ${options.transport} links, the pair at ${label(SIZE)}, ${rounds} rounds of metrics on and off`,
  );
  const measured = new Map<string, { msgsPerS: number[]; p50: number[]; p99: number[] }>();
  const figures = (metrics: boolean, path: PathName) => {
    const key = `${metrics}:${path}`;
    let found = measured.get(key);
    if (found === undefined) {
      found = { msgsPerS: [], p50: [], p99: [] };
      measured.set(key, found);
    }
    return found;
  };
  for (let round = 0; round < rounds; round++) {
    // Alternate which goes first, so a machine that speeds up or slows down over the run favours neither.
    const order = round % 2 === 0 ? [true, false] : [false, true];
    for (const metrics of order) {
      const scenario = await Scenario.open({
        topology: 'pair',
        capacity: CAPACITY,
        storeBytes: 64 * 1_048_576,
        store: await store.driver(),
        transport: options.transport,
        zmqSockets: options.zmqSockets,
        maxSamples: options.samples,
        inlineBytes: 4096,
        epochMs,
        metrics,
      });
      try {
        // Warm: JIT and caches, as the suite does before its first row.
        await scenario.phase({
          mode: 'latency',
          path: 'put',
          size: SIZE,
          count: Math.min(200, options.samples),
          intervalUs: 200,
        });
        await scenario.phase({
          mode: 'throughput',
          path: 'put',
          size: SIZE,
          durationUs: Math.min(200_000, options.throughputUs),
        });
        for (const path of PATHS) {
          const flat = await scenario.phase({ mode: 'throughput', path, size: SIZE, durationUs: options.throughputUs });
          const paced = await scenario.phase({
            mode: 'latency',
            path,
            size: SIZE,
            count: options.samples,
            intervalUs: INTERVAL_US,
          });
          const latency = summarize(paced.samples);
          const msgsPerS = flat.received / (flat.wallUs / 1e6);
          const entry = figures(metrics, path);
          entry.msgsPerS.push(msgsPerS);
          entry.p50.push(latency.p50);
          entry.p99.push(latency.p99);
          options.log(
            `round ${round + 1} metrics ${metrics ? 'on ' : 'off'} ${path} ${label(SIZE)}: ${perS(msgsPerS)} msgs/s, p50 ${us(latency.p50)} µs, p99 ${us(latency.p99)} µs`,
          );
        }
      } finally {
        await scenario.close();
      }
    }
  }
  options.log("timing the hosts' measuring code on its own, on and off");
  const meterCost = measureMeterCost({
    rounds: options.quick ? 4 : 10,
    stepsPerRound: options.quick ? 200_000 : 2_000_000,
  });
  options.log(
    `measuring costs ${meterCost.perMessageNs.toFixed(1)} ns per message (a source step ${meterCost.stepNs.on.toFixed(1)} ns on, ${meterCost.stepNs.off.toFixed(1)} off; a reading sink step ${meterCost.readingStepNs.on.toFixed(1)} on, ${meterCost.readingStepNs.off.toFixed(1)} off)`,
  );
  const rows = PATHS.map((path): MetricsOverheadRow => {
    const mode = (metrics: boolean): ModeFigures => {
      const entry = figures(metrics, path);
      return {
        msgsPerS: median(entry.msgsPerS),
        p50: median(entry.p50),
        p99: median(entry.p99),
        rounds: entry.msgsPerS,
      };
    };
    const on = mode(true);
    const off = mode(false);
    return {
      path,
      size: SIZE,
      on,
      off,
      ratio: { msgsPerS: on.msgsPerS / off.msgsPerS, p50: on.p50 / off.p50, p99: on.p99 / off.p99 },
      pairedRatio: median(on.rounds.map((value, round) => value / off.rounds[round]!)),
      meterShare: meterCost.perMessageNs / (1e9 / off.msgsPerS),
    };
  });
  return {
    kind: 'metrics-overhead',
    date: new Date().toISOString(),
    quick: options.quick,
    runtime: { name: runtime.name, version: runtime.version },
    store: store.name,
    transport: options.transport,
    rounds,
    settings: {
      latencyMessages: options.samples,
      intervalUs: INTERVAL_US,
      throughputSeconds: options.throughputUs / 1e6,
    },
    rows,
    meterCost,
    elapsedSeconds: (performance.now() - started) / 1000,
  };
}

/** The Markdown table of a metrics-overhead run. */
export function renderMetricsOverhead(results: MetricsOverheadResults): string {
  const lines = [
    `### What metrics cost: the pair at 8 B, ${results.runtime.name} ${results.runtime.version}, ${results.store} store, ${results.transport} links`,
    '',
    `Medians of ${results.rounds} rounds, metrics on (the default) and off (\`createNexus({ metrics: false })\`), each round opening both pipelines afresh and alternating which goes first; ratio = on ÷ off (of the medians; "per round": the median of each round's ratio). "Measuring's code": what the hosts' measuring adds per message, timed on its own (${results.meterCost.perMessageNs.toFixed(1)} ns: a source step ${results.meterCost.stepNs.on.toFixed(1)} ns on, ${results.meterCost.stepNs.off.toFixed(1)} off; a reading sink step ${results.meterCost.readingStepNs.on.toFixed(1)} on, ${results.meterCost.readingStepNs.off.toFixed(1)} off), as a share of the row's time per message (within about 1 ns of zero, negative too, it is below what that timing resolves).`,
    '',
    "| path | msgs/s on | msgs/s off | ratio | per round | measuring's code | p50 on (µs) | p50 off (µs) | ratio | p99 on (µs) | p99 off (µs) | ratio |",
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const row of results.rows) {
    lines.push(
      `| ${row.path} | ${perS(row.on.msgsPerS)} | ${perS(row.off.msgsPerS)} | ${x(row.ratio.msgsPerS)} | ${x(row.pairedRatio)} | ${percent(row.meterShare)} | ${us(row.on.p50)} | ${us(row.off.p50)} | ${x(row.ratio.p50)} | ${us(row.on.p99)} | ${us(row.off.p99)} | ${x(row.ratio.p99)} |`,
    );
  }
  lines.push(
    '',
    `Throughput per round (msgs/s, on / off): ${results.rows.map((row) => `${row.path} ${row.on.rounds.map(perS).join(', ')} / ${row.off.rounds.map(perS).join(', ')}`).join('; ')}.`,
  );
  return lines.join('\n');
}

/** `0.21%`, `3.4%`, `-0.05%` (a cost below what the timing resolves). */
function percent(share: number): string {
  const value = share * 100;
  return `${Math.abs(value) < 1 ? value.toFixed(2) : value.toFixed(1)}%`;
}
