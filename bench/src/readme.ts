/**
 * `npm run bench -- readme`: puts the newest results of each runtime into README.md, between
 * `<!-- bench:start -->` and `<!-- bench:end -->`: the targets per runtime, the runtimes side by
 * side, and every runtime's full tables.
 * @module
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { label, perS, us, x } from './format.ts';
import { checkTargets, renderReport } from './report.ts';
import { type BenchResults, type PipelineRow, RESULTS_VERSION } from './results.ts';

const START = '<!-- bench:start -->';
const END = '<!-- bench:end -->';
const RUNTIMES = ['node', 'bun', 'deno'];

/** The newest result of each runtime in `dir` (a full run over a newer quick one). */
export async function newestResults(dir: string): Promise<BenchResults[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    throw new Error(`no results in ${dir}: run npm run bench (and -- --runtime bun, -- --runtime deno) first`);
  }
  const all: BenchResults[] = [];
  for (const name of names.filter((file) => file.endsWith('.json'))) {
    const results = JSON.parse(await readFile(path.join(dir, name), 'utf8')) as BenchResults;
    if (results.version === RESULTS_VERSION) all.push(results);
  }
  const chosen: BenchResults[] = [];
  for (const runtime of RUNTIMES) {
    const mine = all
      .filter((results) => results.runtime.name === runtime)
      .sort((a, b) => Number(a.quick) - Number(b.quick) || b.date.localeCompare(a.date));
    if (mine[0] !== undefined) chosen.push(mine[0]);
  }
  if (chosen.length === 0) throw new Error(`no results of this version in ${dir}: run npm run bench first`);
  return chosen;
}

/** Rewrites the marked part of `readmePath`; returns the runs it used. */
export async function updateReadme(readmePath: string, dir: string): Promise<string[]> {
  const runs = await newestResults(dir);
  const readme = await readFile(readmePath, 'utf8');
  const start = readme.indexOf(START);
  const end = readme.indexOf(END);
  if (start < 0 || end < start) throw new Error(`${readmePath} has no ${START} … ${END} section to fill`);
  const body = renderRuntimes(runs);
  await writeFile(readmePath, `${readme.slice(0, start + START.length)}\n${body}\n${readme.slice(end)}`);
  return runs.map((run) => `${run.runtime.name} ${run.runtime.version} (${run.date}${run.quick ? ', quick' : ''})`);
}

/** The generated part of the README. */
export function renderRuntimes(runs: BenchResults[]): string {
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
  return out.join('\n');
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
