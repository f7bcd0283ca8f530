/**
 * `npm run bench -- --dashboard`: does a browser on the dashboard slow the pipeline? The same
 * pipeline (`dashboard-actors.ts`: camera → analysis → Plot, the analysis publishing a series point
 * per frame and the Plot showing every frame it gets as an image) runs three ways, in rounds that
 * rotate which goes first, each pipeline opened afresh: with no page; with a client of the protocol
 * that takes every `plots` message and draws nothing, in a process of its own as a browser is
 * (`dashboard-client.mjs`: what improv itself spends — publishing, the server, the WebSocket); and with a real Chromium (headless, Debian's) drawing the dashboard (that,
 * plus what the browser's own drawing takes from the same cores). Chromium is driven over a bare
 * DevTools connection (`cdp.ts`: one browser per run, a page of its own per round, only
 * `Page.navigate` and `Runtime.evaluate`), not through a driver such as playwright: a driver enables
 * DevTools' Network domain, and the renderer then base64-encodes every binary WebSocket frame for
 * it, a cost a page on its own does not have. Four scenarios: flat out (256×256 frames as fast as
 * the camera can write them: the pipeline's own throughput); paced 512×512 at 30 Hz (the
 * live-imaging case: whether it keeps its rate) and at 60 Hz (whether the page keeps up with 60
 * frames a second); and flat out again with this process on core 0 and Chromium (or the client) on core 1
 * (`taskset`, Linux with two cores or more): whether a page slows a pipeline whose cores it does not
 * share. The figures are medians over the rounds; the ratio is with ÷ without.
 * @module
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import process from 'node:process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createDefaultNexus, dashboardAddress, LogHistory, startControlSession } from '@improv/cli';
import { detectRuntime, type Nexus } from '@improv/core';
import { findRuntime } from '@improv/core/runtime/binaries';
import { CHROMIUM, Chromium, type Page } from './cdp.ts';
import { perS, us, x } from './format.ts';
import { median } from './stats.ts';

export interface DashboardOverheadOptions {
  rounds: number;
  /** Measuring window per round, seconds. */
  seconds: number;
  log: (line: string) => void;
}

interface Scenario {
  name: string;
  size: number;
  rate?: number;
  /**
   * The pipeline (this process: Nexus, its workers, the dashboard's server) on CPU 0 and the
   * browser (or the protocol client) on CPU 1: whether a page slows a pipeline that does not share its cores.
   */
  pinned?: boolean;
}

const SCENARIOS: Scenario[] = [
  { name: 'flat out, 256×256 uint16', size: 256 },
  { name: 'paced, 512×512 uint16 at 30 Hz', size: 512, rate: 30 },
  { name: 'paced, 512×512 uint16 at 60 Hz', size: 512, rate: 60 },
  { name: 'flat out, 256×256 uint16; pipeline on core 0, browser on core 1', size: 256, pinned: true },
];

/** The page's viewport, as the earlier playwright-driven runs had it. */
const VIEWPORT = { width: 1400, height: 900 };
/** The frame's panel; its `data-updates` counts the images it drew. */
const FRAME_PANEL = '[data-stream="Plot/frame"]';

/** One scenario's figures in one mode. */
export interface ModeFigures {
  /** Frames the analysis took per second (median over rounds), and every round's. */
  framesPerS: number;
  rounds: number[];
  /** Camera → analysis latency, ms (median over rounds of each window's p50 and p99). */
  latencyP50Ms: number;
  latencyP99Ms: number;
  /** Frame messages per second that reached the client, or images the page drew (absent with no page). */
  pageFramesPerS?: number;
}

export interface DashboardOverheadRow {
  scenario: string;
  none: ModeFigures;
  client: ModeFigures;
  browser: ModeFigures;
  /** frames per second with a client, and with a browser, ÷ with no page. */
  ratio: { client: number; browser: number };
}

/** One round's figures. */
interface RoundFigures {
  framesPerS: number;
  p50: number;
  p99: number;
  pageFramesPerS?: number;
}

export interface DashboardOverheadResults {
  kind: 'dashboard-overhead';
  date: string;
  runtime: { name: string; version: string };
  browser: string;
  rounds: number;
  seconds: number;
  rows: DashboardOverheadRow[];
  elapsedSeconds: number;
}

const actors = fileURLToPath(new URL('./dashboard-actors.ts', import.meta.url));
const clientScript = fileURLToPath(new URL('./dashboard-client.mjs', import.meta.url));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Who watches: nobody, a protocol client that draws nothing, or a browser drawing the page. */
export type Watcher = 'none' | 'client' | 'browser';
const WATCHERS: Watcher[] = ['none', 'client', 'browser'];

/**
 * A client of the control protocol that asks for plots and answers each at once, drawing nothing
 * (`dashboard-client.mjs`), in a process of its own as a browser is: its receiving and garbage
 * collection are not the pipeline's. Pinned, it runs on `cpus` (the browser's core).
 */
async function plotsClient(
  url: string,
  token: string,
  cpus: string | undefined,
): Promise<{ received(): Promise<number>; close(): void }> {
  const address = `${url.replace(/^http/, 'ws')}/api/v1/ws?token=${token}`;
  // The client's runtime is not what is measured: Node, also when the bench runs on Bun or Deno.
  const node = findRuntime('node') ?? 'node';
  const command =
    cpus === undefined ? [node, clientScript, address] : ['taskset', '-c', cpus, node, clientScript, address];
  const child = spawn(command[0]!, command.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  const waiting: ((line: string) => void)[] = [];
  lines.on('line', (line) => waiting.shift()?.(line));
  const next = () =>
    new Promise<string>((resolve, reject) => {
      waiting.push(resolve);
      child.once('exit', (code) => reject(new Error(`the dashboard bench's client ended (exit ${code})`)));
    });
  const opened = await next();
  if (opened !== 'open') throw new Error(`the dashboard bench's client said "${opened}", not "open"`);
  return {
    async received() {
      const answer = next();
      child.stdin!.write('count\n');
      return Number(await answer);
    },
    close: () => child.stdin!.end(),
  };
}

/** The images the page's frame panel drew so far (its `data-updates`). */
async function imagesDrawn(page: Page): Promise<number> {
  const updates = await page.evaluate<string | null>(
    `document.querySelector(${JSON.stringify(FRAME_PANEL)})?.getAttribute('data-updates') ?? null`,
  );
  if (updates === null) throw new Error(`the dashboard has no ${FRAME_PANEL} panel with data-updates`);
  return Number(updates);
}

/** Why the dashboard bench cannot run here, or undefined. */
export function dashboardBenchProblem(): string | undefined {
  if (!existsSync(CHROMIUM)) return `--dashboard drives Debian's Chromium at ${CHROMIUM}: apt-get install chromium`;
  return undefined;
}

async function measureRound(
  scenario: Scenario,
  watcher: Watcher,
  browser: Chromium,
  seconds: number,
): Promise<RoundFigures> {
  const nexus: Nexus = await createDefaultNexus({
    config: {
      settings: { store_size: '256MiB' },
      actors: {
        Camera: {
          package: actors,
          class: 'Camera',
          size: scenario.size,
          ...(scenario.rate ? { rate: scenario.rate } : {}),
        },
        Analysis: { package: actors, class: 'Analysis' },
        Plot: { package: '@improv/dashboard/plot', class: 'Plot', name: 'frame' },
      },
      connections: {
        frames: { sources: ['Camera.q_out'], sinks: ['Analysis.q_in'], capacity: 64 },
        shown: { sources: ['Analysis.q_out'], sinks: ['Plot.q_in'], capacity: 4, policy: 'drop-oldest' },
      },
    },
    baseDir: fileURLToPath(new URL('.', import.meta.url)),
    runDir: false,
    handleSignals: false,
  });
  const session = await startControlSession(nexus, new LogHistory(), { pipeline: 'bench-dashboard.yaml' });
  let page: Page | undefined;
  let client: Awaited<ReturnType<typeof plotsClient>> | undefined;
  try {
    if (watcher === 'browser') page = await browser.newPage({ viewport: VIEWPORT });
    await nexus.setup();
    await nexus.run();
    if (page !== undefined) {
      await page.navigate(dashboardAddress(session.info.url, session.token));
      // Drawing: the frame's panel has its image.
      await page.waitFor(`document.querySelector(${JSON.stringify(`${FRAME_PANEL} canvas`)}) !== null`, {
        what: `the dashboard's frame panel (${FRAME_PANEL} canvas)`,
        timeoutMs: 60_000,
      });
    }
    if (watcher === 'client') {
      client = await plotsClient(session.info.url, session.token, scenario.pinned ? '1' : undefined);
    }
    await sleep(1000); // warm: JIT, the page's first layout
    const analysis = () => nexus.metrics().actors.find((actor) => actor.name === 'Analysis')!.steps;
    const drawn = async () => (page !== undefined ? imagesDrawn(page) : (client?.received() ?? 0));
    const before = { steps: analysis(), at: performance.now(), drawn: await drawn() };
    await sleep(seconds * 1000);
    const after = { steps: analysis(), at: performance.now(), drawn: await drawn() };
    const elapsed = (after.at - before.at) / 1000;
    const latency = nexus.metrics().links.find((link) => link.connection === 'frames')?.latencyMs;
    const result: RoundFigures = {
      framesPerS: (after.steps - before.steps) / elapsed,
      p50: latency?.p50 ?? Number.NaN,
      p99: latency?.p99 ?? Number.NaN,
    };
    if (watcher !== 'none') result.pageFramesPerS = (after.drawn - before.drawn) / elapsed;
    return result;
  } finally {
    client?.close();
    await page?.close();
    await nexus.quit();
    await session.close();
  }
}

export async function runDashboardOverhead(options: DashboardOverheadOptions): Promise<DashboardOverheadResults> {
  const started = performance.now();
  const runtime = await detectRuntime();
  const browser = await Chromium.launch(VIEWPORT);
  let version: string;
  const rows: DashboardOverheadRow[] = [];
  const said: Record<Watcher, string> = {
    none: 'no page       ',
    client: 'a client      ',
    browser: 'a browser page',
  };
  try {
    version = await browser.version();
    options.log(
      `dashboard overhead: ${runtime.name} ${runtime.version}, Chromium ${version} headless over a bare DevTools connection, ${options.rounds} rounds of ${options.seconds} s: no page, a protocol client drawing nothing, a browser drawing the page`,
    );
    for (const scenario of SCENARIOS) {
      let drawing = browser;
      let unpin: (() => void) | undefined;
      if (scenario.pinned) {
        const problem = pinningProblem();
        if (problem !== undefined) {
          options.log(`${scenario.name}: skipped (${problem})`);
          continue;
        }
        drawing = await Chromium.launch({ ...VIEWPORT, prefix: ['taskset', '-c', '1'] });
        unpin = pinThisProcess(0);
      }
      const figures: Record<Watcher, RoundFigures[]> = { none: [], client: [], browser: [] };
      try {
        for (let round = 0; round < options.rounds; round++) {
          // Rotate which goes first, so a machine that speeds up or slows down over the run favours none.
          const order = WATCHERS.map((_, index) => WATCHERS[(index + round) % WATCHERS.length]!);
          for (const watcher of order) {
            const result = await measureRound(scenario, watcher, drawing, options.seconds);
            figures[watcher].push(result);
            options.log(
              `${scenario.name}, round ${round + 1}, ${said[watcher]}: ${perS(result.framesPerS)} frames/s, latency p50 ${us(result.p50)} ms, p99 ${us(result.p99)} ms${
                result.pageFramesPerS === undefined ? '' : `; ${perS(result.pageFramesPerS)} images/s reached it`
              }`,
            );
          }
        }
      } finally {
        unpin?.();
        if (drawing !== browser) await drawing.close();
      }
      const mode = (list: RoundFigures[]): ModeFigures => {
        const entry: ModeFigures = {
          framesPerS: median(list.map((each) => each.framesPerS)),
          rounds: list.map((each) => each.framesPerS),
          latencyP50Ms: median(list.map((each) => each.p50)),
          latencyP99Ms: median(list.map((each) => each.p99)),
        };
        const page = list.map((each) => each.pageFramesPerS).filter((value) => value !== undefined);
        if (page.length > 0) entry.pageFramesPerS = median(page);
        return entry;
      };
      const none = mode(figures.none);
      const client = mode(figures.client);
      const page = mode(figures.browser);
      rows.push({
        scenario: scenario.name,
        none,
        client,
        browser: page,
        ratio: { client: client.framesPerS / none.framesPerS, browser: page.framesPerS / none.framesPerS },
      });
    }
  } finally {
    await browser.close();
  }
  return {
    kind: 'dashboard-overhead',
    date: new Date().toISOString(),
    runtime: { name: runtime.name, version: runtime.version },
    browser: `Chromium ${version}`,
    rounds: options.rounds,
    seconds: options.seconds,
    rows,
    elapsedSeconds: (performance.now() - started) / 1000,
  };
}

/** Why this machine cannot keep the pipeline and the browser on cores of their own, or undefined. */
function pinningProblem(): string | undefined {
  if (process.platform !== 'linux') return 'pinning to cores needs Linux';
  if (availableParallelism() < 2) return 'it needs two cores';
  if (spawnSync('taskset', ['--version'], { stdio: 'ignore' }).status !== 0) return 'no taskset (util-linux)';
  return undefined;
}

/**
 * Keeps every thread of this process, and the threads it starts from now on (workers inherit it),
 * on CPU `cpu`; returns what puts them back on every CPU.
 */
function pinThisProcess(cpu: number): () => void {
  const taskset = (cpus: string) => {
    const done = spawnSync('taskset', ['--all-tasks', '--cpu-list', '--pid', cpus, String(process.pid)], {
      encoding: 'utf8',
    });
    if (done.status !== 0) throw new Error(`taskset --cpu-list ${cpus} failed: ${done.stderr.trim()}`);
  };
  taskset(String(cpu));
  return () => taskset(`0-${availableParallelism() - 1}`);
}

/** The results as a Markdown table. */
export function renderDashboardOverhead(results: DashboardOverheadResults): string {
  const lines = [
    `Dashboard overhead: ${results.runtime.name} ${results.runtime.version}, ${results.browser} headless over a bare DevTools connection (no driver, no Network domain); medians of ${results.rounds} rounds of ${results.seconds} s each (rotating which goes first): no page, a protocol client that takes every plots message and draws nothing, and a browser drawing the page.`,
    '',
    '| pipeline | frames/s, no page | with a client (÷ none) | with a browser (÷ none) | latency p99 ms: none / client / browser | plots messages/s the client took / images/s the page drew |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const row of results.rows) {
    lines.push(
      `| ${row.scenario} | ${perS(row.none.framesPerS)} | ${perS(row.client.framesPerS)} (${x(row.ratio.client)}) | ${perS(row.browser.framesPerS)} (${x(row.ratio.browser)}) | ${us(row.none.latencyP99Ms)} / ${us(row.client.latencyP99Ms)} / ${us(row.browser.latencyP99Ms)} | ${perS(row.client.pageFramesPerS ?? Number.NaN)} / ${perS(row.browser.pageFramesPerS ?? Number.NaN)} |`,
    );
  }
  return lines.join('\n');
}
