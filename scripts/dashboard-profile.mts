// What drawing the dashboard costs the browser: runs apps/live-imaging (or PIPELINE) with
// `improv run … --dashboard --start --no-ui` in a child process, opens the page in Debian's Chromium
// (/usr/bin/chromium, headless, 1400×900), lets it warm up, then over SECONDS (default 20) reads from
// /proc the CPU of Chromium's renderer(s), GPU process and the rest of Chromium, and of the pipeline's
// processes, and counts what the page drew (each panel's `data-updates`, bumped once per draw).
// Prints one line per run, e.g.
//   run 1: renderer 58.1%  gpu 7.6%  browser+other 5.8%  pipeline 31.2%  images/s 28.3  series draws/s 28.1
//          renderer ms/image 20.5
// (CPU in % of one core; `renderer ms/image` is the renderer's CPU time per image drawn.)
// Options:
//   --runs N           measure N times (a fresh pipeline and browser each time) and print the median
//   --seconds S        the measuring window (default 20)
//   --profile          also record a V8 CPU profile of the page over the window and print the
//                      functions with the most self time (file:line), with (program)/(gc) etc.
//   --trace            also record a Chromium trace over the window and print, per process and
//                      thread, the self time of the events (Paint, Layout, FunctionCall, raster, …)
//   --categories A,B   the trace's categories (default: the timeline, blink, cc, gpu, viz, toplevel, v8)
//   --style CSS        add this style sheet to the page before measuring (to try what a change would save)
//   --verbose          print each Chromium process's CPU (the renderer's and GPU's by thread)
//   --playwright       drive Chromium with playwright instead of a bare DevTools connection. Playwright
//                      enables the Network domain, and the renderer then base64-encodes every binary
//                      WebSocket frame for it: this costs the renderer and the browser process a lot
//                      (the dashboard's browser tests drive Chromium this way; npm run bench --
//                      --dashboard no longer does). --trace implies it.
//   --out FILE         with --profile: save the .cpuprofile; with --trace: FILE.trace.json
//   --help             print this
// Usage: npx tsx scripts/dashboard-profile.mts [pipeline.yaml] [--runs 3] [--seconds 20] [--profile] [--trace]
// Same machine, same load: alternate before/after runs to compare (the 2 cores are shared).
// The bare DevTools client is bench/src/cdp.ts, which `npm run bench -- --dashboard` uses too.
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import type { Browser, Page as PlaywrightPage } from 'playwright-core';
import { Chromium, type Page } from '../bench/src/cdp.ts';

const argv = process.argv.slice(2);
if (argv.includes('--help') || argv.includes('-h')) {
  // The comment at the top of this file, without its `// `.
  const source = readFileSync(fileURLToPath(import.meta.url), 'utf8');
  const header = source.slice(0, source.search(/^import /m)).trimEnd();
  console.log(header.replace(/^\/\/ ?/gm, ''));
  process.exit(0);
}
const option = (name: string, fallback: string) => {
  const at = argv.indexOf(name);
  return at >= 0 && argv[at + 1] !== undefined ? argv[at + 1]! : fallback;
};
const flag = (name: string) => argv.includes(name);
const valued = new Set(['--runs', '--seconds', '--out', '--categories', '--style']);
const positional = argv.filter((arg, index) => !arg.startsWith('--') && !valued.has(argv[index - 1] ?? ''));
const root = fileURLToPath(new URL('..', import.meta.url));
const pipeline = positional[0] ?? join(root, 'apps/live-imaging/live-imaging.yaml');
const runs = Number(option('--runs', '1'));
const seconds = Number(option('--seconds', '20'));
const warmupMs = 6000;
const TICKS = 100; // getconf CLK_TCK on Linux

/** utime + stime of a process, in clock ticks (undefined once it is gone). */
function ticks(pid: number, path = `/proc/${pid}/stat`): number | undefined {
  try {
    const stat = readFileSync(path, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return undefined;
  }
}

/** Every process under `pid` (itself included), with its command line. */
function tree(pid: number): { pid: number; cmd: string }[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {}
  }
  const out: { pid: number; cmd: string }[] = [];
  const visit = (at: number) => {
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${at}/cmdline`, 'utf8').replaceAll('\0', ' ');
    } catch {}
    out.push({ pid: at, cmd });
    for (const child of children.get(at) ?? []) visit(child);
  };
  visit(pid);
  return out;
}

/** CPU ticks of each thread of a process, by thread name (threads of one name summed). */
function threadTicks(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  let tasks: string[] = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {}
  for (const task of tasks) {
    try {
      const name = readFileSync(`/proc/${pid}/task/${task}/comm`, 'utf8').trim();
      const used = ticks(pid, `/proc/${pid}/task/${task}/stat`) ?? 0;
      out.set(name, (out.get(name) ?? 0) + used);
    } catch {}
  }
  return out;
}

function sumTicks(pids: number[]): number {
  let sum = 0;
  for (const pid of pids) sum += ticks(pid) ?? 0;
  return sum;
}

/** Starts the pipeline with its dashboard; resolves to the child and the page's address. */
function startPipeline(): Promise<{ child: ChildProcess; address: string }> {
  const child = spawn(
    process.execPath,
    [join(root, 'node_modules/.bin/improv'), 'run', pipeline, '--dashboard', '--start', '--no-ui', '--no-log-files'],
    { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  return new Promise((resolve, reject) => {
    let seen = '';
    const look = (chunk: Buffer) => {
      seen += chunk.toString();
      const match = /dashboard: (http\S+)/.exec(seen);
      if (match !== null) resolve({ child, address: match[1]! });
    };
    child.stdout!.on('data', look);
    child.stderr!.on('data', look);
    child.once('exit', (code) => reject(new Error(`the pipeline exited (${code}) before its address:\n${seen}`)));
    setTimeout(() => reject(new Error(`no dashboard address after 60 s:\n${seen}`)), 60_000).unref();
  });
}

async function stopPipeline(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.stdin!.write('quit\n');
  const timer = setTimeout(() => child.kill('SIGTERM'), 15_000);
  await exited;
  clearTimeout(timer);
}

interface Result {
  renderer: number;
  gpu: number;
  otherChromium: number;
  pipeline: number;
  images: number;
  series: number;
}

/** Counts of draws per panel kind, from the panels' `data-updates`. */
async function draws(page: PlaywrightPage): Promise<Record<string, number>> {
  return page.$$eval('[data-stream]', (panels) => {
    const counts: Record<string, number> = {};
    for (const panel of panels) {
      const kind = panel.getAttribute('data-kind') ?? '?';
      counts[kind] = (counts[kind] ?? 0) + Number(panel.getAttribute('data-updates') ?? 0);
    }
    return counts;
  });
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

function printProfile(profile: { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }): void {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map<string, number>();
  let total = 0;
  for (let index = 0; index < profile.samples.length; index++) {
    const node = byId.get(profile.samples[index]!)!;
    const delta = profile.timeDeltas[index + 1] ?? 0;
    const frame = node.callFrame;
    const file = frame.url.split('/').at(-1) ?? '';
    const name = `${frame.functionName || '(anonymous)'} ${file === '' ? '' : `${file}:${frame.lineNumber + 1}:${frame.columnNumber + 1}`}`;
    self.set(name, (self.get(name) ?? 0) + delta);
    total += delta;
  }
  const idle = self.get('(idle) ') ?? 0;
  console.log(
    `  V8 profile: ${(total / 1e6).toFixed(1)} s sampled, ${(((total - idle) / total) * 100).toFixed(1)}% not idle; self time, ms/s:`,
  );
  const perSecond = total / 1e6;
  for (const [name, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 30)) {
    if (name === '(idle) ') continue;
    console.log(`    ${(us / 1000 / perSecond).toFixed(1).padStart(7)}  ${name}`);
  }
}

interface TraceEvent {
  name: string;
  ph: string;
  ts: number;
  dur?: number;
  pid: number;
  tid: number;
  args?: { name?: string };
}

/** Self time per (process, thread, event name), over the window: nested complete events subtract. */
function printTrace(events: TraceEvent[], windowS: number): void {
  const processNames = new Map<number, string>();
  const threadNames = new Map<string, string>();
  for (const event of events) {
    if (event.ph !== 'M') continue;
    if (event.name === 'process_name') processNames.set(event.pid, event.args?.name ?? '?');
    if (event.name === 'thread_name') threadNames.set(`${event.pid}:${event.tid}`, event.args?.name ?? '?');
  }
  const byThread = new Map<string, TraceEvent[]>();
  for (const event of events) {
    if (event.ph !== 'X' || event.dur === undefined) continue;
    const key = `${event.pid}:${event.tid}`;
    const list = byThread.get(key) ?? [];
    list.push(event);
    byThread.set(key, list);
  }
  const rows: [string, number][] = [];
  const threadTotals: [string, number][] = [];
  for (const [key, list] of byThread) {
    list.sort((a, b) => a.ts - b.ts || b.dur! - a.dur!);
    const selfByName = new Map<string, number>();
    const stack: { end: number; name: string }[] = [];
    let busy = 0;
    for (const event of list) {
      const end = event.ts + event.dur!;
      while (stack.length > 0 && stack.at(-1)!.end <= event.ts) stack.pop();
      const parent = stack.at(-1);
      if (parent === undefined) busy += event.dur!;
      else selfByName.set(parent.name, (selfByName.get(parent.name) ?? 0) - event.dur!);
      selfByName.set(event.name, (selfByName.get(event.name) ?? 0) + event.dur!);
      stack.push({ end, name: event.name });
    }
    const [pid] = key.split(':');
    const label = `${processNames.get(Number(pid)) ?? pid}/${threadNames.get(key) ?? key}`;
    threadTotals.push([label, busy]);
    for (const [name, us] of selfByName) rows.push([`${label}  ${name}`, us]);
  }
  console.log(`  trace: busy ms/s per thread (top-level events):`);
  for (const [label, us] of threadTotals.sort((a, b) => b[1] - a[1]).slice(0, 14)) {
    console.log(`    ${(us / 1000 / windowS).toFixed(1).padStart(7)}  ${label}`);
  }
  console.log(`  trace: self ms/s per thread and event:`);
  for (const [label, us] of rows.sort((a, b) => b[1] - a[1]).slice(0, 40)) {
    console.log(`    ${(us / 1000 / windowS).toFixed(1).padStart(7)}  ${label}`);
  }
}

const drawsExpression = `(() => {
  const counts = {};
  for (const panel of document.querySelectorAll('[data-stream]')) {
    const kind = panel.getAttribute('data-kind') ?? '?';
    counts[kind] = (counts[kind] ?? 0) + Number(panel.getAttribute('data-updates') ?? 0);
  }
  return counts;
})()`;

/**
 * Chromium started by hand (bench/src/cdp.ts, not by playwright, whose driver enables the Network domain on every page:
 * the renderer then base64-encodes each binary WebSocket frame for it — half a megabyte per image here).
 * The page is read through a bare DevTools connection at the start and the end of the window only.
 */
async function measurePlain(run: number): Promise<Result> {
  const { child, address } = await startPipeline();
  let browser: Chromium | undefined;
  let cdp: Page | undefined;
  try {
    browser = await Chromium.launch({ width: 1400, height: 900 });
    // The tab Chromium opened at start: no second page, and its renderer is the only one.
    cdp = await browser.firstPage();
    await cdp.navigate(address);
    const started = Date.now();
    for (;;) {
      const counts = await cdp
        .evaluate<Record<string, number>>(drawsExpression)
        .catch(() => ({}) as Record<string, number>);
      if ((counts.image ?? 0) > 0 && (counts.series ?? 0) > 0) break;
      if (Date.now() - started > 60_000) throw new Error('no image and series panels after 60 s');
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    const style = option('--style', '');
    if (style !== '') {
      await cdp.evaluate(
        `(() => { const s = document.createElement('style'); s.textContent = ${JSON.stringify(style)}; document.head.append(s); })()`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, warmupMs));

    const pipelinePids = tree(child.pid!).map((each) => each.pid);
    const chromiumProcesses = tree(browser.process.pid!);
    const profiling = flag('--profile');
    if (profiling) {
      await cdp.send('Profiler.enable');
      await cdp.send('Profiler.setSamplingInterval', { interval: 200 });
      await cdp.send('Profiler.start');
    }
    const { renderers, gpus } = byType(chromiumProcesses);
    const beforeThreads = new Map([...renderers, ...gpus].map((pid) => [pid, threadTicks(pid)]));
    const open = cdp;
    const { before, after, beforeEach } = await sampleWindow(chromiumProcesses, pipelinePids, () =>
      open.evaluate<Record<string, number>>(drawsExpression),
    );
    const elapsed = (after.at - before.at) / 1000;
    if (flag('--verbose')) {
      for (const each of chromiumProcesses) {
        const type = /--type=(\S+)/.exec(each.cmd)?.[1] ?? 'browser';
        const used = (((ticks(each.pid) ?? 0) - (beforeEach.get(each.pid) ?? 0)) / TICKS / elapsed) * 100;
        if (used >= 0.5) console.log(`  ${each.pid} ${type}: ${used.toFixed(1)}%`);
        const threadsBefore = beforeThreads.get(each.pid);
        if (used < 0.5 || threadsBefore === undefined) continue;
        for (const [name, now] of threadTicks(each.pid)) {
          const share = ((now - (threadsBefore.get(name) ?? 0)) / TICKS / elapsed) * 100;
          if (share >= 0.5) console.log(`      ${name}: ${share.toFixed(1)}%`);
        }
      }
    }
    const result = resultOf(before, after, elapsed);
    report(run, result);
    if (profiling) {
      const { profile } = await cdp.send<{ profile: Parameters<typeof printProfile>[0] }>('Profiler.stop');
      const out = option('--out', '');
      if (out !== '') writeFileSync(out, JSON.stringify(profile));
      printProfile(profile);
    }
    return result;
  } finally {
    cdp?.session.close();
    await browser?.close();
    await stopPipeline(child);
  }
}

/** Chromium's processes by type: renderers, GPU processes, and the rest (the browser, utilities). */
function byType(processes: { pid: number; cmd: string }[]): { renderers: number[]; gpus: number[]; others: number[] } {
  const renderers = processes.filter((each) => each.cmd.includes('--type=renderer')).map((each) => each.pid);
  const gpus = processes.filter((each) => each.cmd.includes('--type=gpu-process')).map((each) => each.pid);
  const others = processes.map((each) => each.pid).filter((pid) => !renderers.includes(pid) && !gpus.includes(pid));
  return { renderers, gpus, others };
}

/** The CPU of Chromium's processes and the pipeline's, and the page's draws, at the start and the end of the window. */
async function sampleWindow(
  chromiumProcesses: { pid: number; cmd: string }[],
  pipelinePids: number[],
  drawn: () => Promise<Record<string, number>>,
): Promise<{ before: Sample & { at: number }; after: Sample & { at: number }; beforeEach: Map<number, number> }> {
  const { renderers, gpus, others } = byType(chromiumProcesses);
  const sample = async () => ({
    renderer: sumTicks(renderers),
    gpu: sumTicks(gpus),
    other: sumTicks(others),
    pipeline: sumTicks(pipelinePids),
    draws: await drawn(),
    at: performance.now(),
  });
  const beforeEach = new Map(chromiumProcesses.map((each) => [each.pid, ticks(each.pid) ?? 0]));
  const before = await sample();
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  return { before, after: await sample(), beforeEach };
}

interface Sample {
  renderer: number;
  gpu: number;
  other: number;
  pipeline: number;
  draws: Record<string, number>;
}

function resultOf(before: Sample, after: Sample, elapsed: number): Result {
  const percent = (a: number, b: number) => ((b - a) / TICKS / elapsed) * 100;
  return {
    renderer: percent(before.renderer, after.renderer),
    gpu: percent(before.gpu, after.gpu),
    otherChromium: percent(before.other, after.other),
    pipeline: percent(before.pipeline, after.pipeline),
    images: ((after.draws.image ?? 0) - (before.draws.image ?? 0)) / elapsed,
    series: ((after.draws.series ?? 0) - (before.draws.series ?? 0)) / elapsed,
  };
}

function report(run: number, result: Result): void {
  console.log(
    `run ${run}: renderer ${result.renderer.toFixed(1)}%  gpu ${result.gpu.toFixed(1)}%  browser+other ${result.otherChromium.toFixed(1)}%  ` +
      `pipeline ${result.pipeline.toFixed(1)}%  images/s ${result.images.toFixed(1)}  series draws/s ${result.series.toFixed(1)}  ` +
      `renderer ms/image ${perImage(result).toFixed(1)}`,
  );
}

/** Renderer CPU per image drawn, in ms: what the page costs per frame, whatever rate it reached. */
function perImage(result: Result): number {
  return result.images > 0 ? (result.renderer * 10) / result.images : Number.NaN;
}

async function measure(run: number): Promise<Result> {
  const { child, address } = await startPipeline();
  let browser: Browser | undefined;
  try {
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.on('pageerror', (error) => console.log(`page error: ${error.message}`));
    await page.goto(address);
    await page.waitForSelector('[data-stream][data-kind="image"]', { timeout: 60_000 });
    await page.waitForSelector('[data-stream][data-kind="series"]', { timeout: 60_000 });
    const style = option('--style', '');
    if (style !== '') await page.addStyleTag({ content: style });
    await new Promise((resolve) => setTimeout(resolve, warmupMs));

    const pipelinePids = tree(child.pid!).map((each) => each.pid);
    // Chromium is a child of this process (playwright launches it), the pipeline another one.
    const chromiumProcesses = tree(process.pid).filter(
      (each) => each.pid !== process.pid && !pipelinePids.includes(each.pid) && each.cmd.includes('chromium'),
    );

    const cdp = flag('--profile') ? await page.context().newCDPSession(page) : undefined;
    if (cdp !== undefined) {
      await cdp.send('Profiler.enable');
      await cdp.send('Profiler.setSamplingInterval', { interval: 200 });
      await cdp.send('Profiler.start');
    }
    if (flag('--trace')) {
      await browser.startTracing(page, {
        categories: option(
          '--categories',
          'devtools.timeline,disabled-by-default-devtools.timeline,blink,cc,gpu,viz,toplevel,v8',
        ).split(','),
      });
    }
    const { before, after, beforeEach } = await sampleWindow(chromiumProcesses, pipelinePids, () => draws(page));
    const elapsed = (after.at - before.at) / 1000;
    if (flag('--verbose')) {
      for (const each of chromiumProcesses) {
        const type = /--type=(\S+)/.exec(each.cmd)?.[1] ?? 'browser';
        console.log(
          `  ${each.pid} ${type}: ${((((ticks(each.pid) ?? 0) - (beforeEach.get(each.pid) ?? 0)) / TICKS / elapsed) * 100).toFixed(1)}%`,
        );
      }
    }
    const result = resultOf(before, after, elapsed);
    report(run, result);

    const out = option('--out', '');
    if (cdp !== undefined) {
      const { profile } = (await cdp.send('Profiler.stop')) as unknown as {
        profile: { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] };
      };
      if (out !== '') writeFileSync(out, JSON.stringify(profile));
      printProfile(profile);
    }
    if (flag('--trace')) {
      const buffer = await browser.stopTracing();
      if (out !== '') writeFileSync(`${out}.trace.json`, buffer);
      const parsed = JSON.parse(buffer.toString()) as { traceEvents: TraceEvent[] } | TraceEvent[];
      printTrace(Array.isArray(parsed) ? parsed : parsed.traceEvents, elapsed);
    }
    return result;
  } finally {
    await browser?.close();
    await stopPipeline(child);
  }
}

const results: Result[] = [];
const viaPlaywright = flag('--playwright') || flag('--trace');
try {
  for (let run = 1; run <= runs; run++) results.push(await (viaPlaywright ? measure(run) : measurePlain(run)));
} catch (error) {
  // What went wrong is in the message (the pipeline's own error, with its file and fix): no stack.
  console.error(`dashboard-profile: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
if (runs > 1) {
  const median = (pick: (result: Result) => number) => {
    const sorted = results.map(pick).sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)]!;
  };
  console.log(
    `median of ${runs}: renderer ${median((r) => r.renderer).toFixed(1)}%  gpu ${median((r) => r.gpu).toFixed(1)}%  ` +
      `browser+other ${median((r) => r.otherChromium).toFixed(1)}%  pipeline ${median((r) => r.pipeline).toFixed(1)}%  ` +
      `images/s ${median((r) => r.images).toFixed(1)}  series draws/s ${median((r) => r.series).toFixed(1)}  ` +
      `renderer ms/image ${median(perImage).toFixed(1)}`,
  );
}
