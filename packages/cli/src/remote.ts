/**
 * The commands that reach a running pipeline through its control server: `improv list`, `cmd`
 * (and `stop`, `quit`, `pause`, `resume`), `logs`, `tap`, `top`, `client`; and `cleanup`, which
 * ends what crashed runs left behind.
 * @module
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import process from 'node:process';
import {
  didYouMean,
  formatLogJson,
  formatLogRecord,
  type LinkMetrics,
  type LogLevel,
  type LogRecord,
  type PipelineMetrics,
  type PipelineStatus,
  type TapRecord,
} from '@improv/core';
import { processAlive } from '@improv/core/runtime/pid';
import { ControlError, connectRun, type RunConnection, request, sendCommand } from './control/client.ts';
import { type LogFilter, matchesFilter } from './control/log-history.ts';
import { dashboardAddress } from './control/page.ts';
import type { RunInfo, RunUsage } from './control/protocol.ts';
import { listRuns, type RunTarget, resolveRun } from './control/registry.ts';
import { exitCodes } from './exit-codes.ts';
import { formatRecord, type Output } from './output.ts';
import { formatBytes, formatUptime } from './tui/format.ts';

const { ok, failure, usage } = exitCodes;

/** Finds the run, or says why not (exit 2). */
function target(output: Output, command: string, run: string | undefined, tokenFile?: string): RunTarget | undefined {
  try {
    return resolveRun(run, tokenFile);
  } catch (error) {
    output.write(`improv ${command}: ${(error as Error).message}`);
    return undefined;
  }
}

/** A control error as a line; anything else is a bug and is thrown. */
function reported(output: Output, command: string, error: unknown): number {
  if (error instanceof ControlError) {
    output.write(`improv ${command}: ${error.message}`);
    return failure;
  }
  throw error;
}

/** Lines of a table with columns padded to their widest cell. */
export function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length)));
  return rows.map((row) =>
    row
      .map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!)))
      .join('  ')
      .trimEnd(),
  );
}

/** `improv list`: every run this user has going on this host (stale entries marked). */
export async function listCommand(options: { json?: boolean }, output: Output): Promise<number> {
  const runs = listRuns();
  const rows: { info: RunInfo; state: string; cpu: string; memory: string; alive: boolean }[] = [];
  /** Why a run that is alive did not answer, printed under the table. */
  const problems: string[] = [];
  await Promise.all(
    runs.map(async (entry, index) => {
      let state = 'gone (stale: improv cleanup removes it)';
      let cpu = '-';
      let memory = '-';
      if (entry.alive) {
        try {
          const run = resolveRun(entry.info.id);
          const [status, usage] = await Promise.all([
            request<PipelineStatus>(run, 'GET', '/status'),
            request<{ usage?: RunUsage }>(run, 'GET', '/info'),
          ]);
          state = status.state;
          if (usage.usage) {
            cpu = `${(usage.usage.cpu * 100).toFixed(0)}%`;
            memory = formatBytes(usage.usage.rssBytes);
          }
        } catch (error) {
          state = 'not answering';
          problems.push(`${entry.info.id}: ${(error as Error).message}`);
        }
      }
      rows[index] = { info: entry.info, state, cpu, memory, alive: entry.alive };
    }),
  );
  if (options.json) {
    for (const row of rows) {
      output.write(JSON.stringify({ ...row.info, state: row.state, alive: row.alive }));
    }
    return ok;
  }
  if (rows.length === 0) {
    output.write(
      'no pipeline is running on this host (improv run <pipeline.yaml> or improv server <pipeline.yaml> starts one)',
    );
    return ok;
  }
  const now = Date.now();
  const cwd = process.cwd();
  for (const line of table([
    ['ID', 'PIPELINE', 'STATE', 'UPTIME', 'CPU', 'MEMORY', 'URL'],
    ...rows.map((row) => [
      row.info.id,
      path.relative(cwd, row.info.pipeline) || row.info.pipeline,
      row.state,
      row.alive ? formatUptime(now - row.info.startedAt) : '-',
      row.cpu,
      row.memory,
      row.info.url,
    ]),
  ]))
    output.write(line);
  for (const problem of problems) output.write(problem);
  return ok;
}

/** `improv cmd <run> <command...>` and the shortcuts `improv stop|quit|pause|resume <run>`. */
export async function cmdCommand(
  run: string | undefined,
  line: string,
  options: { tokenFile?: string; wait?: boolean },
  output: Output,
  name = 'cmd',
): Promise<number> {
  const where = target(output, name, run, options.tokenFile);
  if (where === undefined) return usage;
  try {
    const result = await sendCommand(where, line);
    if (!result.ok) {
      output.write(result.code === 'unknown' ? result.message : `${result.code}: ${result.message}`);
      return result.code === 'unknown' || result.code === 'bad-request' ? usage : failure;
    }
    if (result.message !== '') output.write(result.message);
    // quit answers at once; wait until the run's process has ended, so a script can go on safely.
    if (/^\s*(quit|exit)\s*$/i.test(line) && where.info !== undefined && options.wait !== false) {
      const pid = where.info.pid;
      const deadline = Date.now() + 30_000;
      while (processAlive(pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
      if (processAlive(pid)) {
        output.write(`improv ${name}: run ${where.info.id} (process ${pid}) has not ended 30 s after quit`);
        return failure;
      }
      output.write(`run ${where.info.id} has quit`);
    }
    return ok;
  } catch (error) {
    return reported(output, name, error);
  }
}

/** `improv dashboard <run>`: the address of a running pipeline's dashboard page (checked to answer). */
export async function dashboardCommand(
  run: string | undefined,
  options: { tokenFile?: string },
  output: Output,
): Promise<number> {
  const where = target(output, 'dashboard', run, options.tokenFile);
  if (where === undefined) return usage;
  const address = dashboardAddress(where.url, where.token);
  try {
    const response = await fetch(address, { signal: AbortSignal.timeout(5000) });
    if (!response.ok) {
      output.write(`improv dashboard: ${(await response.text()).trim() || `the page answered ${response.status}`}`);
      return failure;
    }
  } catch (error) {
    output.write(`improv dashboard: the run at ${where.url} does not answer: ${(error as Error).message}`);
    return failure;
  }
  output.write(`dashboard: ${address}`);
  return ok;
}

/** Options of `improv logs`. */
export interface LogsOptions {
  follow?: boolean;
  actor?: string;
  grep?: string;
  level?: LogLevel;
  json?: boolean;
  lines: number;
  tokenFile?: string;
}

/** `improv logs <run>`: the run's recent log, filtered; `--follow` goes on until the run quits or Ctrl-C. */
export async function logsCommand(run: string | undefined, options: LogsOptions, output: Output): Promise<number> {
  const filter: LogFilter = {};
  if (options.actor !== undefined) filter.actor = options.actor;
  if (options.level !== undefined) filter.level = options.level;
  if (options.grep !== undefined) {
    try {
      filter.grep = new RegExp(options.grep, 'i');
    } catch (error) {
      output.write(`improv logs: --grep: ${(error as Error).message}`);
      return usage;
    }
  }
  if (!Number.isInteger(options.lines) || options.lines < 1) {
    output.write('improv logs: --lines takes a positive whole number, e.g. --lines 100');
    return usage;
  }
  const where = target(output, 'logs', run, options.tokenFile);
  if (where === undefined) return usage;
  const show = (record: LogRecord) => output.write(options.json ? formatLogJson(record) : formatRecord(record, output));
  try {
    if (options.actor !== undefined) {
      // An actor the run does not have would match nothing, and --follow would wait in silence.
      const { actors } = await request<PipelineStatus>(where, 'GET', '/status');
      const names = actors.map((actor) => actor.name);
      if (!names.includes(options.actor) && options.actor !== 'nexus') {
        output.write(
          `improv logs: run ${where.info?.id ?? where.url} has no actor "${options.actor}"; ${didYouMean(options.actor, names)}its actors are ${names.join(', ')} (and nexus for Nexus's own records)`,
        );
        return usage;
      }
    }
    if (!options.follow) {
      const query = new URLSearchParams({ limit: String(options.lines) });
      if (options.actor !== undefined) query.set('actor', options.actor);
      if (options.level !== undefined) query.set('level', options.level);
      if (options.grep !== undefined) query.set('grep', options.grep);
      const { records } = await request<{ records: LogRecord[] }>(where, 'GET', `/logs?${query}`);
      for (const record of records) show(record);
      return ok;
    }
    const connection = await connectRun(where);
    let first = true;
    connection.on((message) => {
      if (message.type !== 'logs') return;
      let records = message.records.filter((record) => matchesFilter(record, filter));
      // The history comes first: only its last --lines records.
      if (first) records = records.slice(-options.lines);
      first = false;
      for (const record of records) show(record);
    });
    connection.subscribe({ logs: true, history: 5000 });
    if (await untilInterrupted(connection.closed, () => connection.close())) return ok;
    return ended(output, 'logs', connection);
  } catch (error) {
    return reported(output, 'logs', error);
  }
}

/** Resolves when `closed` does (false), or at Ctrl-C/SIGTERM/SIGHUP (true; then `stop` runs). */
async function untilInterrupted(closed: Promise<void>, stop: () => void): Promise<boolean> {
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  let onSignal: (() => void) | undefined;
  const interrupted = await Promise.race([
    closed.then(() => false),
    new Promise<boolean>((resolve) => {
      onSignal = () => {
        stop();
        resolve(true);
      };
      for (const signal of signals) process.once(signal, onSignal);
    }),
  ]);
  if (onSignal) for (const signal of signals) process.off(signal, onSignal);
  return interrupted;
}

/**
 * The run closed the connection: says why, and exits 0 when its pipeline quit, 1 when the run was
 * lost (its process died, or the network went).
 */
function ended(output: Output, command: string, connection: RunConnection): number {
  const why = connection.ending();
  if (why?.how === 'quit') {
    output.write(`improv ${command}: run ${connection.info.id} has quit`);
    return ok;
  }
  output.write(
    `improv ${command}: lost run ${connection.info.id}: ${why?.reason ?? 'the connection closed'}; its process may have died (improv list shows whether it still runs)`,
  );
  return failure;
}

/** One tap record as a line. */
function formatTap(record: TapRecord): string {
  const time = formatLogRecord({ time: record.time, level: 'info', source: '', message: '' }).slice(0, 12);
  const skipped = record.skipped > 0 ? `  (+${record.skipped} not shown)` : '';
  return `${time} ${record.from} → ${record.to}  ${record.summary}${skipped}`;
}

/** A link's rate line. */
function formatRate(connection: string, links: LinkMetrics[]): string {
  const mine = links.filter((link) => link.connection === connection);
  const rate = mine.reduce((sum, link) => sum + link.messagesPerSecond, 0);
  const bytes = mine.reduce((sum, link) => sum + (link.bytesPerSecond ?? 0), 0);
  const dropped = mine.reduce((sum, link) => sum + link.dropped, 0);
  const depth = mine.map((link) => `${link.depth}/${link.capacity}`).join(', ');
  return `rate ${connection}: ${rate.toFixed(1)} msgs/s, ${formatBytes(Math.round(bytes))}/s, depth ${depth}, ${dropped} dropped`;
}

/** `improv tap <run> <connection>`: the messages on a link as they pass, summarised, and its rate once a second. */
export async function tapCommand(
  run: string | undefined,
  connectionName: string,
  options: { count?: number; json?: boolean; tokenFile?: string },
  output: Output,
): Promise<number> {
  if (options.count !== undefined && !(Number.isInteger(options.count) && options.count > 0)) {
    output.write('improv tap: --count takes a positive whole number, e.g. --count 10');
    return usage;
  }
  const where = target(output, 'tap', run, options.tokenFile);
  if (where === undefined) return usage;
  try {
    const connection = await connectRun(where);
    let seen = 0;
    let done: () => void = () => {};
    const enough = new Promise<void>((resolve) => {
      done = resolve;
    });
    let untap: () => void;
    try {
      untap = await connection.tap(connectionName, (record) => {
        if (options.count !== undefined && seen >= options.count) return;
        seen += 1;
        output.write(options.json ? JSON.stringify(record) : formatTap(record));
        if (options.count !== undefined && seen >= options.count) done();
      });
    } catch (error) {
      connection.close();
      output.write(`improv tap: ${(error as Error).message}`);
      return usage;
    }
    if (!options.json) {
      // Metrics come twice a second: a rate line every other one.
      let tick = 0;
      connection.on((message) => {
        if (message.type === 'metrics' && tick++ % 2 === 1)
          output.write(formatRate(connectionName, message.metrics.links));
      });
      connection.subscribe({ metrics: true });
    }
    await untilInterrupted(Promise.race([connection.closed, enough]), () => {});
    untap();
    connection.close();
    return ok;
  } catch (error) {
    return reported(output, 'tap', error);
  }
}

/** `improv top [run]` without a terminal: the actors and links once, as text. */
export function formatTop(metrics: PipelineMetrics): string[] {
  const lines: string[] = [`pipeline: ${metrics.state}`];
  lines.push(
    ...table([
      ['ACTOR', 'STATE', 'STEPS/S', 'ERRORS', 'STEP P50', 'STEP P99', 'CPU', 'HEAP'],
      ...metrics.actors.map((actor) => [
        actor.name,
        actor.state,
        actor.stepsPerSecond.toFixed(1),
        String(actor.errors),
        actor.stepMs ? `${actor.stepMs.p50.toFixed(2)} ms` : '-',
        actor.stepMs ? `${actor.stepMs.p99.toFixed(2)} ms` : '-',
        actor.cpu !== undefined
          ? `${(actor.cpu * 100).toFixed(0)}%`
          : actor.elu !== undefined
            ? `${(actor.elu * 100).toFixed(0)}% elu`
            : '-',
        actor.heapBytes !== undefined ? formatBytes(actor.heapBytes) : '-',
      ]),
    ]),
  );
  if (metrics.links.length > 0) {
    lines.push(
      ...table([
        ['LINK', 'DEPTH', 'MSGS/S', 'DROPPED', 'LATENCY P50', 'P99'],
        ...metrics.links.map((link) => [
          `${link.from.actor}.${link.from.link} → ${link.to.actor}.${link.to.link}`,
          `${link.depth}/${link.capacity}`,
          link.messagesPerSecond.toFixed(1),
          String(link.dropped),
          link.latencyMs ? `${link.latencyMs.p50.toFixed(2)} ms` : '-',
          link.latencyMs ? `${link.latencyMs.p99.toFixed(2)} ms` : '-',
        ]),
      ]),
    );
  }
  if (metrics.store) {
    const { driver, usedBytes, capacityBytes, objects } = metrics.store;
    lines.push(`store ${driver}: ${formatBytes(usedBytes)} of ${formatBytes(capacityBytes)}, ${objects} values`);
  }
  return lines;
}

/** `improv top` and `improv client`: the live UI attached to a run (top: its tables only). */
export async function attachCommand(
  mode: 'top' | 'full',
  run: string | undefined,
  options: { tokenFile?: string },
  output: Output,
): Promise<number> {
  const name = mode === 'top' ? 'top' : 'client';
  const where = target(output, name, run, options.tokenFile);
  if (where === undefined) return usage;
  const terminal = Boolean(process.stdin.isTTY && process.stdout.isTTY);
  try {
    if (!terminal) {
      if (mode === 'full') {
        output.write(
          'improv client: needs a terminal; from a script use improv cmd, improv logs --follow or improv top (which prints one table without a terminal)',
        );
        return usage;
      }
      for (const line of formatTop(await request<PipelineMetrics>(where, 'GET', '/metrics'))) output.write(line);
      return ok;
    }
    // startTui subscribes once it listens: nothing of the log history is missed.
    const { startTui } = await import('./tui/index.ts');
    const connection = await connectRun(where);
    await startTui(connection, { mode, title: connection.info.id });
    // Closed by the run (not left with q or F10): say why once the UI is gone.
    if (connection.ending() !== undefined) return ended(output, name, connection);
    connection.close();
    return ok;
  } catch (error) {
    return reported(output, name, error);
  }
}

/** What `cleanup` found of one crashed run. */
interface Leftovers {
  pid: number;
  processes: { pid: number; what: string }[];
  paths: string[];
}

/** Names of this machine's temporary files and folders that carry the pid of the run that made them. */
const leftoverName = /^improv-(?:zmq-|redis-)?(\d+)-/;

/**
 * `improv cleanup`: for every run whose process is gone, ends the processes it left (actor
 * processes, its redis-server), removes its temporary sockets, stores and folders, its token and its
 * registry entry, and says what it removed. Runs that are alive are left alone.
 */
export async function cleanupCommand(options: { dryRun?: boolean }, output: Output): Promise<number> {
  const stale = listRuns().filter((entry) => !entry.alive);
  const dead = new Map<number, Leftovers>();
  const leftoversOf = (pid: number) => {
    let found = dead.get(pid);
    if (found === undefined) {
      found = { pid, processes: [], paths: [] };
      dead.set(pid, found);
    }
    return found;
  };
  for (const entry of stale) leftoversOf(entry.info.pid);
  // Temporary files of any improv process that is gone, registered or not (an embedding program).
  const temp = tmpdir();
  let names: string[] = [];
  try {
    names = readdirSync(temp);
  } catch {
    // no temporary folder to look in
  }
  for (const name of names) {
    const match = leftoverName.exec(name);
    if (!match) continue;
    const pid = Number(match[1]);
    if (processAlive(pid)) continue;
    leftoversOf(pid).paths.push(path.join(temp, name));
  }
  // The redis-server a run that is gone started for itself, which outlived its watchdog.
  for (const leftovers of dead.values()) {
    for (const folder of leftovers.paths) {
      const server = ownRedisServer(folder);
      if (server !== undefined && !leftovers.processes.some((each) => each.pid === server.pid)) {
        leftovers.processes.push(server);
      }
    }
  }
  // Processes started by a run that is gone: they name its socket or folder.
  for (const proc of processesOnLinux()) {
    const mark = /improv-(?:zmq-|redis-)?(\d+)-/.exec(proc.marks);
    if (!mark) continue;
    const owner = Number(mark[1]);
    if (owner === proc.pid || processAlive(owner)) continue;
    leftoversOf(owner).processes.push({ pid: proc.pid, what: proc.command });
  }
  const verb = options.dryRun ? 'would end' : 'ended';
  let told = false;
  for (const leftovers of dead.values()) {
    const entry = stale.find((each) => each.info.pid === leftovers.pid);
    const done: string[] = [];
    for (const proc of leftovers.processes) {
      if (!options.dryRun) await endProcess(proc.pid);
      done.push(`  ${verb} process ${proc.pid}: ${proc.what.slice(0, 100)}`);
    }
    const paths = entry ? [...leftovers.paths, entry.file, entry.info.tokenFile] : leftovers.paths;
    for (const file of paths) {
      // What went away since the look above (its own process removed it as it ended) is not told.
      if (!existsSync(file)) continue;
      if (!options.dryRun) rmSync(file, { recursive: true, force: true });
      done.push(`  ${options.dryRun ? 'would remove' : 'removed'} ${file}`);
    }
    if (done.length === 0) continue;
    output.write(entry ? `run ${entry.info.id} (process ${leftovers.pid}, gone):` : `process ${leftovers.pid} (gone):`);
    for (const line of done) output.write(line);
    told = true;
  }
  if (!told) output.write('nothing to clean up: no crashed run left processes, files or registry entries');
  return ok;
}

/** The record the redis store keeps in its server's folder (`SERVER_RECORD` in @improv/store). */
const REDIS_SERVER_RECORD = 'redis-server.json';

/**
 * The redis-server improv started in `folder` (an `improv-redis-<pid>-…` folder of a run that is
 * gone), when it still runs: the pid of its record, checked to be that server — a redis-server
 * whose title names the record's port — so that no other process (a reused pid, another
 * redis-server) is ever ended.
 */
function ownRedisServer(folder: string): { pid: number; what: string } | undefined {
  if (!/^improv-redis-\d+-/.test(path.basename(folder))) return undefined;
  let record: { pid?: unknown; port?: unknown };
  try {
    record = JSON.parse(readFileSync(path.join(folder, REDIS_SERVER_RECORD), 'utf8'));
  } catch {
    return undefined; // no record: the server has ended (it goes with its folder), or never started
  }
  const { pid, port } = record;
  if (!Number.isInteger(pid) || !Number.isInteger(port) || (pid as number) <= 1) return undefined;
  if (!processAlive(pid as number, { othersCount: false })) return undefined;
  const title = processTitle(pid as number);
  if (title === undefined || !/redis-server/.test(title) || !new RegExp(`:${port}(?!\\d)`).test(title)) {
    return undefined;
  }
  return { pid: pid as number, what: `${title} (improv's own, for ${folder})` };
}

/** What `ps` shows for a process (redis-server shows `redis-server 127.0.0.1:<port>`), if it can tell. */
function processTitle(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    // not Linux, or gone
  }
  try {
    return execFileSync('ps', ['-p', String(pid), '-o', 'args='], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return undefined;
  }
}

/** SIGTERM, then SIGKILL if it is still there 2 s later. */
async function endProcess(pid: number): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + 2000;
  while (processAlive(pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  if (processAlive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone in between
    }
  }
}

/** This user's processes, with their command line and the environment's improv socket (Linux /proc). */
function processesOnLinux(): { pid: number; command: string; marks: string }[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return []; // not Linux: files and registry entries only
  }
  const found: { pid: number; command: string; marks: string }[] = [];
  for (const name of entries) {
    const pid = Number(name);
    if (pid === process.pid) continue;
    try {
      const command = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ').trim();
      let environ = '';
      try {
        environ = readFileSync(`/proc/${name}/environ`, 'utf8')
          .split('\0')
          .filter((line) => line.startsWith('IMPROV_PROCESS_SOCKET='))
          .join(' ');
      } catch {
        // another user's process: its environment is not ours to read
      }
      const marks = `${command} ${environ}`;
      if (marks.includes('improv-')) found.push({ pid, command, marks });
    } catch {
      // ended while we looked
    }
  }
  return found;
}
