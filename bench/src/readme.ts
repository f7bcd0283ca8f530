/**
 * `npm run bench -- readme`: puts the newest results of each runtime into README.md, between
 * `<!-- bench:start -->` and `<!-- bench:end -->`: the targets per runtime, the runtimes side by
 * side, and every runtime's full tables — all from memory-store runs. Runs on the lmdb and redis
 * stores (`--store`), where there are any, follow: their rows beside the memory store's.
 * @module
 */

import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { StoreName } from '@improv/core';
import type { NetBaseline } from './baselines/net.ts';
import { label, perS, us, x } from './format.ts';
import { checkTargets, pathNames, renderReport } from './report.ts';
import { type BenchResults, type PipelineRow, RESULTS_VERSION, storeOf, transportOf } from './results.ts';

const START = '<!-- bench:start -->';
const END = '<!-- bench:end -->';
/** The Stores section's own part: the stores side by side, beside its table of which store to use. */
const STORES_START = '<!-- bench:stores:start -->';
const STORES_END = '<!-- bench:stores:end -->';
const RUNTIMES = ['node', 'bun', 'deno'];

/** The newest result of each runtime in `dir` on `store` (a full run over a newer quick one). */
export async function newestResults(
  dir: string,
  store: StoreName = 'memory',
  transport: 'local' | 'zmq' = 'local',
): Promise<BenchResults[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    throw new Error(`no results in ${dir}: run npm run bench (and -- --runtime bun, -- --runtime deno) first`);
  }
  const all: BenchResults[] = [];
  for (const name of names.filter((file) => file.endsWith('.json'))) {
    const results = JSON.parse(await readFile(path.join(dir, name), 'utf8')) as BenchResults;
    if (results.version === RESULTS_VERSION && storeOf(results) === store && transportOf(results) === transport) {
      all.push(results);
    }
  }
  const chosen: BenchResults[] = [];
  for (const runtime of RUNTIMES) {
    const mine = all
      .filter((results) => results.runtime.name === runtime)
      .sort((a, b) => Number(a.quick) - Number(b.quick) || b.date.localeCompare(a.date));
    if (mine[0] !== undefined) chosen.push(mine[0]);
  }
  if (chosen.length === 0 && store === 'memory') {
    throw new Error(`no results of this version in ${dir}: run npm run bench first`);
  }
  return chosen;
}

/**
 * Rewrites the marked parts of `readmePath` (with `storesOnly`, only the Stores section's); returns
 * the runs it used.
 */
export async function updateReadme(
  readmePath: string,
  dir: string,
  options: { storesOnly?: boolean } = {},
): Promise<string[]> {
  const runs = await newestResults(dir);
  const storeRuns = [...(await newestResults(dir, 'lmdb')), ...(await newestResults(dir, 'redis'))];
  let readme = await readFile(readmePath, 'utf8');
  if (options.storesOnly === true) {
    if (storeRuns.length === 0)
      throw new Error(`no lmdb or redis results in ${dir}: run npm run bench -- --store lmdb first`);
  } else {
    readme = fill(readme, readmePath, START, END, renderRuntimes(runs, storeRuns));
  }
  if (storeRuns.length > 0 && (options.storesOnly === true || readme.includes(STORES_START))) {
    readme = fill(readme, readmePath, STORES_START, STORES_END, renderStores(runs, storeRuns, false));
  }
  await writeFile(readmePath, readme);
  return [...runs, ...storeRuns].map(
    (run) =>
      `${run.runtime.name} ${run.runtime.version}${storeOf(run) === 'memory' ? '' : ` ${storeOf(run)}`} (${run.date}${run.quick ? ', quick' : ''})`,
  );
}

const ZMQ_START = '<!-- bench:zmq:start -->';
const ZMQ_END = '<!-- bench:zmq:end -->';

/** The sockets of a zmq run (results written before the field: from its description). */
function socketsOfRun(run: BenchResults): 'zeromq' | 'zmtp' {
  return run.transport?.sockets ?? (run.transport?.detail.includes('ZMTP') ? 'zmtp' : 'zeromq');
}

/** How a zmq run's links went between the processes of one host (results written before the field: ipc). */
function protocolOfRun(run: BenchResults): 'ipc' | 'tcp' {
  return run.transport?.protocol ?? 'ipc';
}

/** How a raw baseline went (results written before the field: tcp, the only one then). */
function protocolOfBaseline(baseline: NetBaseline): 'ipc' | 'tcp' {
  return baseline.protocol ?? 'tcp';
}

/** The newest zmq run of each runtime and socket implementation (a full run over a newer quick one). */
export async function newestZmqResults(dir: string): Promise<BenchResults[]> {
  const all: BenchResults[] = [];
  for (const name of (await readdir(dir)).filter((file) => file.endsWith('.json'))) {
    const results = JSON.parse(await readFile(path.join(dir, name), 'utf8')) as BenchResults;
    if (results.version === RESULTS_VERSION && transportOf(results) === 'zmq' && storeOf(results) === 'memory') {
      all.push(results);
    }
  }
  const newest = new Map<string, BenchResults>();
  for (const run of all.sort((a, b) => Number(b.quick) - Number(a.quick) || a.date.localeCompare(b.date))) {
    newest.set(`${run.runtime.name} ${socketsOfRun(run)} ${protocolOfRun(run)}`, run);
  }
  return [...newest.values()];
}

/**
 * Fills the zmq part (`<!-- bench:zmq:start -->` … end) of each file in `readmePaths` that has
 * one: the pair's rows on the local links beside the zmq links on each socket implementation and
 * runtime, and the network baselines of the same runs.
 */
export async function updateZmqReadmes(readmePaths: string[], dir: string): Promise<string[]> {
  const zmq = await newestZmqResults(dir);
  if (zmq.length === 0) throw new Error(`no zmq results in ${dir}: run npm run bench -- --transport zmq first`);
  // The local links beside them when a Node run on them is there (the table goes without otherwise).
  const local = (await newestResults(dir).catch(() => [])).find((run) => run.runtime.name === 'node');
  const body = renderZmq(zmq, local);
  for (const file of readmePaths) {
    const readme = await readFile(file, 'utf8');
    if (readme.includes(ZMQ_START)) await writeFile(file, fill(readme, file, ZMQ_START, ZMQ_END, body));
  }
  return zmq.map(
    (run) =>
      `${run.runtime.name} ${run.runtime.version} zmq ${socketsOfRun(run)} ${protocolOfRun(run)} (${run.date}${run.quick ? ', quick' : ''})`,
  );
}

/** The zmq tables: one hop of a pair (inline up to 4 KiB, then put) and flat-out msgs/s, by size. */
export function renderZmq(zmq: BenchResults[], local: BenchResults | undefined): string {
  const order = (run: BenchResults) =>
    `${protocolOfRun(run) === 'tcp' ? 1 : 0}${run.runtime.name === 'node' ? 0 : 1}${run.runtime.name}${socketsOfRun(run)}`;
  const runs = [...zmq].sort((a, b) => order(a).localeCompare(order(b)));
  const columns: { name: string; run: BenchResults }[] = [
    ...(local ? [{ name: `local, ${local.runtime.name}`, run: local }] : []),
    ...runs.map((run) => ({
      name: `zmq ${socketsOfRun(run) === 'zmtp' ? 'ZMTP (TS)' : 'zeromq.js'}${protocolOfRun(run) === 'tcp' ? ' over tcp' : ''}, ${run.runtime.name}`,
      run,
    })),
  ];
  // The raw baselines of the newest Node run that measured raw zeromq.js, over ipc and over tcp.
  const raw = (['ipc', 'tcp'] as const).flatMap((protocol) => {
    const over = (run: BenchResults) =>
      run.transport?.baselines.filter((baseline) => protocolOfBaseline(baseline) === protocol) ?? [];
    const node = runs
      .filter((run) => run.runtime.name === 'node' && over(run).some((baseline) => baseline.name === 'zeromq'))
      .sort((a, b) => b.date.localeCompare(a.date))[0];
    return node === undefined ? [] : over(node);
  });
  const sizes = [
    ...new Set(runs.flatMap((run) => run.pipeline.filter((row) => row.topology === 'pair').map((row) => row.size))),
  ].sort((a, b) => a - b);
  const pairRow = (run: BenchResults, size: number) =>
    run.pipeline.find(
      (row) => row.topology === 'pair' && row.size === size && row.path === (size <= 4096 ? 'inline' : 'put'),
    );
  const out: string[] = [];
  const dates = columns
    .map(({ name, run }) => `${name}: ${run.date.slice(0, 10)}${run.quick ? ' (quick)' : ''}`)
    .join('; ');
  out.push(
    `One hop between two actors (each in its own worker), paced at 1 kHz, p50 µs · msgs/s flat out. Payloads up to 4 KiB travel in the message; larger ones go into the memory store and the link carries the key. The zmq links go over ipc (unix sockets, the transport's default) or, where the column says so, over tcp on loopback (\`settings.zmq.protocol: tcp\`). Raw: two processes, no improv (zeromq.js PUSH → PULL over ipc or tcp on loopback; \`node:net\` with a length prefix over a unix socket or tcp on loopback), one way as half a round trip. Runs: ${dates}.`,
  );
  out.push('');
  const rawNames = raw.map((baseline) => {
    const ipc = protocolOfBaseline(baseline) === 'ipc';
    if (baseline.name === 'zeromq') return `raw zeromq.js over ${ipc ? 'ipc' : 'tcp'}`;
    return ipc ? 'raw unix socket' : 'raw TCP';
  });
  out.push(`| size | ${[...columns.map((column) => column.name), ...rawNames].join(' | ')} |`);
  out.push(`|--:|${[...columns, ...raw].map(() => '--:').join('|')}|`);
  for (const size of sizes) {
    const cells = columns.map(({ run }) => {
      const row = pairRow(run, size);
      return row ? `${us(row.latency.p50)} µs · ${perS(row.throughput.msgsPerS)}/s` : '–';
    });
    for (const baseline of raw) {
      const row = baseline.rows.find((entry) => entry.size === size);
      cells.push(row ? `${us(row.oneWay.p50)} µs · ${perS(row.msgsPerS)}/s` : '–');
    }
    out.push(`| ${label(size)} | ${cells.join(' | ')} |`);
  }
  const topologies = columns.flatMap(({ run }) =>
    run.pipeline.filter((row) => row.topology === 'chain5' || row.topology === 'fanin4'),
  );
  const keys = [...new Set(topologies.map((row) => `${row.topology} ${row.size}`))];
  if (keys.length > 0) {
    out.push('');
    out.push(
      'Through several hops (`put`): a chain of 5 actors (4 links, p50 end to end), and 4 sources into one sink (msgs/s at the sink):',
    );
    out.push('');
    out.push(`| topology | size | ${columns.map((column) => column.name).join(' | ')} |`);
    out.push(`|---|--:|${columns.map(() => '--:').join('|')}|`);
    for (const key of keys) {
      const [topology, size] = key.split(' ') as [string, string];
      const cells = columns.map(({ run }) => {
        const row = run.pipeline.find(
          (entry) => entry.topology === topology && entry.size === Number(size) && entry.path === 'put',
        );
        return row ? `${us(row.latency.p50)} µs · ${perS(row.throughput.msgsPerS)}/s` : '–';
      });
      out.push(
        `| ${topology === 'chain5' ? 'chain of 5' : 'fan-in 4 → 1'} | ${label(Number(size))} | ${cells.join(' | ')} |`,
      );
    }
  }
  return out.join('\n');
}

/** `readme` with the part between the `start` and `end` markers replaced by `body`. */
function fill(readme: string, readmePath: string, start: string, end: string, body: string): string {
  const from = readme.indexOf(start);
  const to = readme.indexOf(end);
  if (from < 0 || to < from) throw new Error(`${readmePath} has no ${start} … ${end} section to fill`);
  return `${readme.slice(0, from + start.length)}\n${body}\n${readme.slice(to)}`;
}

/** The generated part of the README: memory-store `runs`, then `storeRuns` (lmdb, redis) if any. */
export function renderRuntimes(runs: BenchResults[], storeRuns: BenchResults[] = []): string {
  const out: string[] = [];
  out.push('#### Where we stand');
  out.push('');
  const checks = runs.map((run) => checkTargets(run));
  out.push(`| target | ${runs.map((run) => `${run.runtime.name} ${run.runtime.version}`).join(' | ')} |`);
  out.push(`|---|${runs.map(() => '---').join('|')}|`);
  for (const [index, check] of checks[0]!.entries()) {
    const cells = checks.map((list) => {
      const entry = list.find((other) => other.target === check.target) ?? list[index];
      return entry === undefined ? '–' : `${entry.measured}: ${entry.met ? '**met**' : `missed by ${x(entry.ratio)}`}`;
    });
    out.push(`| ${check.target} | ${cells.join(' | ')} |`);
  }
  const node = runs.find((run) => run.runtime.name === 'node');
  const others = runs.filter((run) => run !== node);
  if (node !== undefined && others.length > 0) {
    out.push('');
    out.push(renderSideBySide(node, others));
  }
  for (const run of runs) {
    out.push('');
    out.push(
      `<details><summary>All tables: ${run.runtime.name} ${run.runtime.version}${run.quick ? ' (quick run)' : ''}</summary>`,
    );
    out.push('');
    out.push(renderReport(run).replace(/^## /m, '#### '));
    out.push('</details>');
  }
  if (storeRuns.length > 0) {
    out.push('');
    out.push(renderStores(runs, storeRuns));
  }
  return out.join('\n');
}

/**
 * The lmdb and redis runs of each runtime: their pair rows beside the memory store's, and (with
 * `details`) every table of each run.
 */
export function renderStores(runs: BenchResults[], storeRuns: BenchResults[], details = true): string {
  const out: string[] = [];
  for (const runtime of RUNTIMES) {
    const mine = storeRuns.filter((run) => run.runtime.name === runtime);
    if (mine.length === 0) continue;
    const all = [...runs.filter((run) => run.runtime.name === runtime), ...mine];
    const dates = mine.map((run) => `${storeOf(run)} ${run.date}${run.quick ? ' (quick)' : ''}`).join(', ');
    out.push(`#### Stores side by side: ${runtime} (each its own run: ${dates}; a pair, one hop)`);
    out.push('');
    const names = all.map((run) => storeOf(run));
    out.push(
      `| size | path | ${names.map((name) => `${name} p50 µs`).join(' | ')} | ${names.map((name) => `${name} msgs/s`).join(' | ')} |`,
    );
    out.push(`|--:|---|${names.map(() => '--:').join('|')}|${names.map(() => '--:').join('|')}|`);
    const keys = new Map<string, Pick<PipelineRow, 'size' | 'path'>>();
    for (const run of all) {
      for (const row of run.pipeline) {
        if (row.topology === 'pair' && row.path !== 'inline') keys.set(`${row.size} ${row.path}`, row);
      }
    }
    const order = { put: 0, allocate: 1, inline: 2, 'put-delete': 3 };
    for (const key of [...keys.values()].sort((a, b) => a.size - b.size || order[a.path] - order[b.path])) {
      const rows = all.map((run) =>
        run.pipeline.find((row) => row.topology === 'pair' && row.path === key.path && row.size === key.size),
      );
      out.push(
        `| ${label(key.size)} | ${pathNames[key.path]} | ${rows.map((row) => (row ? us(row.latency.p50) : '–')).join(' | ')} | ` +
          `${rows.map((row) => (row ? perS(row.throughput.msgsPerS) : '–')).join(' | ')} |`,
      );
    }
    for (const run of details ? mine : []) {
      out.push('');
      out.push(
        `<details><summary>All tables: ${run.runtime.name} ${run.runtime.version}, ${storeOf(run)} store${run.quick ? ' (quick run)' : ''}</summary>`,
      );
      out.push('');
      out.push(renderReport(run).replace(/^## /m, '#### '));
      out.push('</details>');
    }
    out.push('');
  }
  return out.join('\n').trimEnd();
}

/** Every pipeline row of Bun and Deno against Node: p50 latency and throughput, with the ratio. */
function renderSideBySide(node: BenchResults, others: BenchResults[]): string {
  const lines = [
    '#### Runtimes side by side (each its own run; × Node: how many times slower, ≤ 1.5× is the target)',
    '',
    `| row | node p50 µs | ${others.map((run) => `${run.runtime.name} p50 µs`).join(' | ')} | node msgs/s | ${others.map((run) => `${run.runtime.name} msgs/s`).join(' | ')} |`,
    `|---|--:|${others.map(() => '--:').join('|')}|--:|${others.map(() => '--:').join('|')}|`,
  ];
  /** Every row slower than 1.5× Node's, by how much. */
  const missed: { ratio: number; text: string }[] = [];
  let worst = { ratio: 0, text: '' };
  const note = (ratio: number, text: string) => {
    if (ratio > 1.5) missed.push({ ratio, text });
    if (ratio > worst.ratio) worst = { ratio, text };
  };
  for (const row of node.pipeline) {
    const peers = others.map((run) => ({ run, peer: run.pipeline.find((other) => sameRow(other, row)) }));
    const latency = peers.map(({ run, peer }) => {
      if (peer === undefined) return '–';
      const ratio = peer.latency.p50 / row.latency.p50;
      note(ratio, `${run.runtime.name} ${rowName(row)} p50`);
      return `${us(peer.latency.p50)} (${x(ratio)})`;
    });
    const rate = peers.map(({ run, peer }) => {
      if (peer === undefined) return '–';
      const ratio = row.throughput.msgsPerS / peer.throughput.msgsPerS;
      note(ratio, `${run.runtime.name} ${rowName(row)} msgs/s`);
      return `${perS(peer.throughput.msgsPerS)} (${x(ratio)})`;
    });
    lines.push(
      `| ${rowName(row)} | ${us(row.latency.p50)} | ${latency.join(' | ')} | ${perS(row.throughput.msgsPerS)} | ${rate.join(' | ')} |`,
    );
  }
  lines.push('');
  lines.push(
    missed.length === 0
      ? `Every row of ${others.map((run) => run.runtime.name).join(' and ')} is within 1.5× of Node (worst: ${worst.text}, ${x(worst.ratio)}).`
      : `Target missed on ${missed.length} of ${node.pipeline.length * others.length * 2} figures: ${missed
          .sort((a, b) => b.ratio - a.ratio)
          .map((entry) => `${entry.text} ${x(entry.ratio)}`)
          .join(', ')} Node's.`,
  );
  return lines.join('\n');
}

function sameRow(a: PipelineRow, b: PipelineRow): boolean {
  return a.topology === b.topology && a.path === b.path && a.size === b.size;
}

function rowName(row: PipelineRow): string {
  return `${row.topology} ${row.path} ${label(row.size)}`;
}
