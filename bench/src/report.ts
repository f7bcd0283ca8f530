/**
 * What a bench run prints and writes: Markdown tables (every pipeline figure beside its baseline
 * and as a ratio), the targets with where we stand, and the dora-benchmark CSV.
 * @module
 */

import { label, mib, perS, signed, us, x } from './format.ts';
import type { BenchResults, PipelineRow, Rate } from './results.ts';
import type { LatencySummary } from './stats.ts';

/** The figure a pipeline row is held against. */
export interface Baseline {
  name: string;
  p50: number;
}

/**
 * The floor of a row: one raw ring hop per hop of the row, plus one memcpy of the payload when the
 * path copies it (`put` copies into the store once, `inline` into the ring); `allocate` copies
 * nothing, and relays pass keys on without copying.
 */
export function floorOf(results: BenchResults, row: Pick<PipelineRow, 'path' | 'size' | 'hops'>): Baseline {
  const ring = results.ring.latency.p50 * row.hops;
  const hops = row.hops === 1 ? 'ring' : `${row.hops} × ring`;
  if (row.path === 'allocate') return { name: hops, p50: ring };
  const copy = results.memcpy.find((entry) => entry.size === row.size)?.us ?? 0;
  return { name: `${hops} + memcpy`, p50: ring + copy };
}

/**
 * RSS growth over the soak once warm: from the first sample a quarter of the way in (JIT and heap
 * sizing are done by then) to the end. Growth from the first second is reported beside it.
 */
export function steadyGrowth(soak: BenchResults['soak']): { fromBytes: number; fromSeconds: number; percent: number } {
  const from = soak.samples.find((sample) => sample.t >= soak.seconds / 4) ?? soak.samples[0];
  if (from === undefined) return { fromBytes: soak.rssStartBytes, fromSeconds: 1, percent: soak.rssGrowthPercent };
  return {
    fromBytes: from.rssBytes,
    fromSeconds: from.t,
    percent: ((soak.rssEndBytes - from.rssBytes) / from.rssBytes) * 100,
  };
}

/** One target, with what was measured. */
export interface TargetCheck {
  target: string;
  measured: string;
  /** Measured / goal for "at most" goals, goal / measured for "at least" goals: ≤ 1 is met. */
  ratio: number;
  met: boolean;
}

/** The targets of the bench (goals to measure against, not assertions). */
export function checkTargets(results: BenchResults): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const pair = (path: string, size: number) =>
    results.pipeline.find((row) => row.topology === 'pair' && row.path === path && row.size === size);
  const atMost = (target: string, measured: number, goal: number, text: string) =>
    checks.push({ target, measured: text, ratio: measured / goal, met: measured <= goal });
  const atLeast = (target: string, measured: number, goal: number, text: string) =>
    checks.push({ target, measured: text, ratio: goal / measured, met: measured >= goal });
  const smallest = Math.min(...results.pipeline.map((row) => row.size));
  const port = results.port.find((row) => row.size === smallest);
  for (const path of ['put', 'allocate', 'inline']) {
    const row = pair(path, smallest);
    if (row === undefined) continue;
    const ring = results.ring.latency.p50;
    atMost(
      `${label(smallest)} hop p50 via ${path} ≤ 1.5× raw ring`,
      row.latency.p50,
      1.5 * ring,
      `${us(row.latency.p50)} µs = ${x(row.latency.p50 / ring)} ring (${us(ring)} µs)`,
    );
    atLeast(
      `${label(smallest)} throughput via ${path} ≥ 1 M msgs/s`,
      row.throughput.msgsPerS,
      1e6,
      `${perS(row.throughput.msgsPerS)} msgs/s`,
    );
    if (port !== undefined) {
      atLeast(
        `${label(smallest)} throughput via ${path} ≥ 2× raw MessagePort`,
        row.throughput.msgsPerS,
        2 * port.throughput.msgsPerS,
        `${x(row.throughput.msgsPerS / port.throughput.msgsPerS)} MessagePort (${perS(port.throughput.msgsPerS)} msgs/s)`,
      );
    }
  }
  const frame = pair('put', 4_194_304);
  if (frame !== undefined) {
    const floor = floorOf(results, frame).p50;
    atMost(
      '4 MiB hop p50 via put ≤ 1.5× (memcpy 4 MiB + ring hop)',
      frame.latency.p50,
      1.5 * floor,
      `${us(frame.latency.p50)} µs = ${x(frame.latency.p50 / floor)} (${us(floor)} µs)`,
    );
  }
  const small = pair('allocate', smallest);
  const largest = Math.max(...results.pipeline.filter((row) => row.path === 'allocate').map((row) => row.size));
  const big = pair('allocate', largest);
  if (small !== undefined && big !== undefined && big !== small) {
    atMost(
      `allocate flat in size: ${label(largest)} p50 ≤ 2× ${label(smallest)} p50`,
      big.latency.p50,
      2 * small.latency.p50,
      `${us(big.latency.p50)} µs = ${x(big.latency.p50 / small.latency.p50)} ${label(smallest)} (${us(small.latency.p50)} µs)`,
    );
  }
  atMost('idle pipeline < 1% CPU', results.idle.cpuPercent, 1, `${results.idle.cpuPercent.toFixed(2)}% of one core`);
  const steady = steadyGrowth(results.soak);
  atMost(
    `RSS growth < 5% over the ${results.soak.seconds} s soak, once warm`,
    Math.max(steady.percent, 0),
    5,
    `${signed(steady.percent)}% from ${Math.round(steady.fromSeconds)} s (${mib(steady.fromBytes)} → ${mib(results.soak.rssEndBytes)} MiB); ${signed(results.soak.rssGrowthPercent)}% from 1 s`,
  );
  return checks;
}

/** The whole report of one run, as Markdown. */
export function renderReport(results: BenchResults): string {
  const out: string[] = [];
  out.push(`## improv bench: ${results.runtime.name} ${results.runtime.version}${results.quick ? ' (quick)' : ''}`);
  out.push('');
  out.push(
    `${results.date.slice(0, 16).replace('T', ' ')} UTC · ${results.platform.os} · ${results.platform.cpu} × ${results.platform.cores} · ` +
      `${results.settings.latencyMessages} paced messages per latency row at ${1e6 / results.settings.intervalUs} Hz · ` +
      `${results.settings.throughputSeconds} s per throughput row · ${Math.round(results.elapsedSeconds)} s in all`,
  );
  out.push('');
  out.push(renderBaselines(results));
  out.push(renderLatency(results));
  out.push(renderThroughput(results));
  out.push(renderTopologies(results));
  out.push(renderResources(results));
  out.push(renderTargets(results));
  return out.join('\n');
}

export function renderBaselines(results: BenchResults): string {
  const ring = results.ring;
  const lines = [
    '### Baselines (same run)',
    '',
    '| baseline | avg µs | p50 µs | p90 µs | p99 µs | p99.9 µs | msgs/s |',
    '|---|--:|--:|--:|--:|--:|--:|',
    `| raw SAB ring, one hop, spin ${results.settings.spinIterations} then sleep | ${latencyCells(ring.latency)} | ${perS(ring.throughput.msgsPerS)} |`,
  ];
  for (const row of results.port) {
    lines.push(
      `| raw MessagePort ${label(row.size)}, one way (ping-pong) | ${latencyCells(row.latency)} | ${perS(row.throughput.msgsPerS)} |`,
    );
  }
  lines.push('');
  lines.push(`| memcpy into a SharedArrayBuffer | ${results.memcpy.map((row) => label(row.size)).join(' | ')} |`);
  lines.push(`|---|${results.memcpy.map(() => '--:').join('|')}|`);
  lines.push(`| µs per copy | ${results.memcpy.map((row) => us(row.us)).join(' | ')} |`);
  lines.push(`| GB/s | ${results.memcpy.map((row) => row.gbPerS.toFixed(1)).join(' | ')} |`);
  lines.push('');
  return lines.join('\n');
}

export function renderLatency(results: BenchResults): string {
  const lines = [
    '### One hop through the pipeline, paced at 1 kHz: latency (µs)',
    '',
    'Source actor → store → link → sink actor, each in its own worker; from just before the producer',
    'starts on a frame to the sink holding it, one frame every millisecond (slower where the path copies',
    'the payload and one copy takes over half of that). Floor: the raw ring hop, plus one memcpy of the payload',
    'for the paths that copy it. MessagePort: the same payload, paced ping-pong, one way.',
    '',
    '| size | path | paced every | avg | p50 | p90 | p99 | p99.9 | floor p50 | × floor | MessagePort p50 | × MessagePort |',
    '|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
  ];
  for (const row of pairRows(results)) {
    const floor = floorOf(results, row);
    const port = results.port.find((entry) => entry.size === row.size);
    lines.push(
      `| ${label(row.size)} | ${row.path} | ${row.intervalUs / 1000} ms | ${latencyCells(row.latency)} | ${us(floor.p50)} | ${x(row.latency.p50 / floor.p50)} | ` +
        `${port ? us(port.latency.p50) : '–'} | ${port ? x(row.latency.p50 / port.latency.p50) : '–'} |`,
    );
  }
  lines.push('');
  return lines.join('\n');
}

export function renderThroughput(results: BenchResults): string {
  const lines = [
    '### One link, producer unthrottled: throughput',
    '',
    '| size | path | msgs/s | MB/s | CPU µs/msg | MessagePort msgs/s | × MessagePort | × raw ring |',
    '|--:|---|--:|--:|--:|--:|--:|--:|',
  ];
  for (const row of pairRows(results)) {
    const port = results.port.find((entry) => entry.size === row.size);
    lines.push(
      `| ${label(row.size)} | ${row.path} | ${rateCells(row.throughput)} | ${port ? perS(port.throughput.msgsPerS) : '–'} | ` +
        `${port ? x(row.throughput.msgsPerS / port.throughput.msgsPerS) : '–'} | ${x(row.throughput.msgsPerS / results.ring.throughput.msgsPerS)} |`,
    );
  }
  lines.push('');
  lines.push('`allocate` MB/s counts frames handed over in place, not bytes copied (nothing is copied).');
  lines.push('');
  return lines.join('\n');
}

export function renderTopologies(results: BenchResults): string {
  const rows = results.pipeline.filter((row) => row.topology !== 'pair');
  if (rows.length === 0) return '';
  const lines = [
    '### Topologies (store.put)',
    '',
    '| topology | size | p50 µs | p99 µs | floor p50 µs | × floor | p50 per hop µs | msgs/s | MB/s | CPU µs/msg |',
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
  ];
  const names: Record<string, string> = {
    chain5: 'chain of 5 (4 hops)',
    fanout4: 'fan-out 1→4',
    fanin4: 'fan-in 4→1',
  };
  for (const row of rows) {
    const floor = floorOf(results, row).p50;
    lines.push(
      `| ${names[row.topology] ?? row.topology} | ${label(row.size)} | ${us(row.latency.p50)} | ${us(row.latency.p99)} | ${us(floor)} | ` +
        `${x(row.latency.p50 / floor)} | ${us(row.latency.p50 / row.hops)} | ${rateCells(row.throughput)} |`,
    );
  }
  lines.push('');
  lines.push(
    "Source to last sink. Floor: one raw ring hop per hop, plus one memcpy (the source's `put`; relays pass the key on).",
  );
  lines.push(
    'Fan-out: every sink reads every frame (latency over all four sinks; msgs/s counts each delivery). Fan-in: four',
  );
  lines.push('sources, each at the same pace or flat out; msgs/s is their sum.');
  lines.push('');
  return lines.join('\n');
}

export function renderResources(results: BenchResults): string {
  const soak = results.soak;
  const steady = steadyGrowth(soak);
  return [
    '### CPU and memory',
    '',
    '| figure | value |',
    '|---|--:|',
    `| idle pipeline after \`run\` (actors waiting for input), ${results.idle.seconds} s | ${results.idle.cpuPercent.toFixed(2)}% of one core |`,
    `| soak: ${soak.seconds} s of ${soak.rateHz} Hz × ${label(soak.frameBytes)} frames (put, sink deletes), ${soak.frames} frames | p50 ${us(soak.latency.p50)} µs, p99 ${us(soak.latency.p99)} µs |`,
    `| soak RSS after 1 s → end (max) | ${mib(soak.rssStartBytes)} → ${mib(soak.rssEndBytes)} MiB (${mib(soak.rssMaxBytes)}), ${signed(soak.rssGrowthPercent)}% |`,
    `| soak RSS once warm (from ${Math.round(steady.fromSeconds)} s) → end | ${mib(steady.fromBytes)} → ${mib(soak.rssEndBytes)} MiB, ${signed(steady.percent)}% |`,
    `| soak RSS every second, MiB | ${soak.samples.map((sample) => Math.round(sample.rssBytes / 1_048_576)).join(' ')} |`,
    `| soak store use: max, at the end | ${mib(soak.storeMaxBytes)} MiB, ${mib(soak.storeEndBytes)} MiB in ${soak.storeEndObjects} values |`,
    '',
  ].join('\n');
}

export function renderTargets(results: BenchResults): string {
  const lines = ['### Targets', '', '| target | measured | |', '|---|---|---|'];
  for (const check of checkTargets(results)) {
    lines.push(`| ${check.target} | ${check.measured} | ${check.met ? 'met' : `missed by ${x(check.ratio)}`} |`);
  }
  lines.push('');
  return lines.join('\n');
}

/** Rows in the dora-benchmark schema: `date, language, platform, name, size_bytes, avg_us, p50_us, p90_us, p99_us, n`. */
export function renderCsv(results: BenchResults): string {
  const lines = ['date,language,platform,name,size_bytes,avg_us,p50_us,p90_us,p99_us,n'];
  const head = `${results.date},typescript-${results.runtime.name},${results.platform.os}`;
  const latency = (name: string, size: number, summary: LatencySummary) =>
    lines.push(
      `${head},${name},${size},${f3(summary.avg)},${f3(summary.p50)},${f3(summary.p90)},${f3(summary.p99)},${summary.n}`,
    );
  // Throughput rows: avg_us is the time per message at the sustained rate; no percentiles.
  const rate = (name: string, size: number, value: Rate) =>
    lines.push(`${head},${name},${size},${f3(1e6 / value.msgsPerS)},,,,${value.messages}`);
  latency('baseline-ring-latency', 16, results.ring.latency);
  rate('baseline-ring-throughput', 16, results.ring.throughput);
  for (const row of results.port) {
    latency('baseline-messageport-latency', row.size, row.latency);
    rate('baseline-messageport-throughput', row.size, row.throughput);
  }
  for (const row of results.pipeline) {
    latency(`${row.topology}-${row.path}-latency`, row.size, row.latency);
    rate(`${row.topology}-${row.path}-throughput`, row.size, row.throughput);
  }
  latency('soak-put-latency', results.soak.frameBytes, results.soak.latency);
  return `${lines.join('\n')}\n`;
}

function pairRows(results: BenchResults): PipelineRow[] {
  const order = { put: 0, allocate: 1, inline: 2 };
  return results.pipeline
    .filter((row) => row.topology === 'pair')
    .sort((a, b) => a.size - b.size || order[a.path] - order[b.path]);
}

function latencyCells(summary: LatencySummary): string {
  return [summary.avg, summary.p50, summary.p90, summary.p99, summary.p999].map(us).join(' | ');
}

function rateCells(rate: Rate): string {
  return `${perS(rate.msgsPerS)} | ${rate.mbPerS >= 100 ? rate.mbPerS.toFixed(0) : rate.mbPerS.toFixed(1)} | ${rate.cpuUsPerMsg.toFixed(2)}`;
}

function f3(value: number): string {
  return value.toFixed(3);
}
