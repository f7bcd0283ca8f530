// The dashboard in a real browser: Debian's Chromium, headless, driven through playwright-core,
// on a real pipeline with its control server. Each test starts its own pipeline, server and
// browser. What a user sees is checked: the page behind its token, the graph, states changing when
// a button is clicked, a frame's pixels in its colour map, a series drawn, a failed actor's error.
// Skipped (saying why) only where /usr/bin/chromium is absent; CI installs it.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Nexus } from '@improv/core';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import { LogHistory } from '../src/control/log-history.ts';
import { dashboardAddress } from '../src/control/page.ts';
import { type ControlSession, startControlSession } from '../src/control/session.ts';
import { createDefaultNexus } from '../src/defaults.ts';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
const root = fileURLToPath(new URL('../../..', import.meta.url));
const fixtures = fileURLToPath(new URL('./fixtures/dashboard/', import.meta.url));
const pageSources = join(root, 'packages/dashboard/web');
const builtPage = join(root, 'packages/dashboard/page/index.html');

/** Why the built page cannot be the one under test: missing, or older than its sources. */
function pageProblem(): string | undefined {
  if (!existsSync(builtPage)) return `the dashboard page is not built (${builtPage})`;
  const newest = (folder: string): number =>
    Math.max(
      ...readdirSync(folder, { withFileTypes: true }).map((entry) =>
        entry.isDirectory() ? newest(join(folder, entry.name)) : statSync(join(folder, entry.name)).mtimeMs,
      ),
    );
  if (newest(pageSources) > statSync(builtPage).mtimeMs) return 'the built dashboard page is older than its sources';
  return undefined;
}

const WAIT = { timeout: 30_000 };
const POLL = { timeout: 30_000, interval: 100 };

interface Started {
  nexus: Nexus;
  session: ControlSession;
  browser: Browser;
  page: Page;
  /** The page's address with its token. */
  address: string;
  /** Uncaught errors and console errors of the page (a CSP violation is one). */
  errors: string[];
}

const started: Started[] = [];
afterEach(async () => {
  for (const run of started.splice(0)) {
    await run.browser.close().catch(() => {});
    await run.nexus.quit();
    await run.session.close();
  }
});

/** A pipeline of the fixture actors (`actors: { Name: Class }`, connections as in YAML), its server, a browser. */
async function start(
  actors: Record<string, { class: string } & Record<string, unknown>>,
  connections: Record<string, unknown> = {},
): Promise<Started> {
  const problem = pageProblem();
  if (problem !== undefined) throw new Error(`${problem}: build it with npm run build -w @improv/dashboard`);
  const logs = new LogHistory();
  const nexus = await createDefaultNexus({
    config: {
      settings: { store_size: '16MiB' },
      actors: Object.fromEntries(
        Object.entries(actors).map(([name, actor]) => [name, { package: 'actors.ts', ...actor }]),
      ),
      connections,
    },
    baseDir: fixtures,
    runDir: false,
    handleSignals: false,
    onEvent: (event) => {
      if (event.type === 'log') logs.push(event.record);
    },
  });
  let session: ControlSession | undefined;
  let browser: Browser | undefined;
  try {
    session = await startControlSession(nexus, logs, { pipeline: join(fixtures, 'dashboard-browser.yaml') });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(`uncaught: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(`console: ${message.text()}`);
    });
    const run: Started = {
      nexus,
      session,
      browser,
      page,
      address: dashboardAddress(session.info.url, session.token),
      errors,
    };
    started.push(run);
    return run;
  } catch (error) {
    await browser?.close();
    await nexus.quit();
    await session?.close();
    throw error;
  }
}

/** The state the page shows for `actor` (its graph node's `data-state`). */
const shownState = (page: Page, actor: string) => page.getAttribute(`[data-actor="${actor}"]`, 'data-state');
const shownStatus = (page: Page) => page.getAttribute('[data-status]', 'data-state');

/** What the page's code below uses of a <canvas> (this package is typed without the DOM library). */
interface Canvas {
  width: number;
  height: number;
  getContext(kind: '2d'): {
    getImageData(x: number, y: number, width: number, height: number): { data: ArrayLike<number> };
  };
}

/** RGBA of pixels of the frame's canvas, at [x, y] points (x = column, y = row). */
function framePixels(page: Page, stream: string, points: [number, number][]) {
  return page.$eval(
    `[data-stream="${stream}"] canvas.image`,
    (canvas, at) => {
      const element = canvas as unknown as Canvas;
      if (element.width === 0 || element.height === 0) return undefined;
      const context = element.getContext('2d')!;
      return {
        width: element.width,
        height: element.height,
        pixels: at.map(([x, y]) => Array.from(context.getImageData(x, y, 1, 1).data)),
      };
    },
    points,
  );
}

/** How many pixels of the chart canvas in `stream`'s panel are within 40 of `rgb` (each channel). */
function chartPixelsNear(page: Page, stream: string, rgb: [number, number, number]) {
  return page.$eval(
    `[data-stream="${stream}"] .u-wrap canvas`,
    (canvas, colour) => {
      const element = canvas as unknown as Canvas;
      const data = element.getContext('2d')!.getImageData(0, 0, element.width, element.height).data;
      let count = 0;
      for (let index = 0; index < data.length; index += 4) {
        if (
          Math.abs(data[index]! - colour[0]) < 40 &&
          Math.abs(data[index + 1]! - colour[1]) < 40 &&
          Math.abs(data[index + 2]! - colour[2]) < 40
        ) {
          count += 1;
        }
      }
      return count;
    },
    rgb,
  );
}

/** What the layout check below uses of an element and of the page (typed without the DOM library). */
interface Box {
  tagName: string;
  textContent: string | null;
  title?: string;
  parentElement: Box | null;
  scrollWidth: number;
  clientWidth: number;
  closest(selector: string): Box | null;
  getAttribute(name: string): string | null;
  getBoundingClientRect(): { left: number; right: number; width: number };
}
interface LayoutWindow {
  document: { querySelectorAll(selector: string): Iterable<Box>; documentElement: Box };
  getComputedStyle(element: Box): { overflowX: string; textOverflow: string; display: string };
}

/**
 * What spills out of its box on the page, as sentences (none: an empty list). An element must lie
 * across inside its panel (the innermost), unless an element between them clips or scrolls it —
 * then that one is checked instead; an element that cuts its text must end it with an ellipsis and
 * have every word of it in its title; only `.metrics` (the tables) may scroll sideways; and the
 * page itself must not.
 */
function layoutProblems(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const { document, getComputedStyle } = globalThis as unknown as LayoutWindow;
    const problems: string[] = [];
    const name = (element: Box) =>
      `<${element.tagName.toLowerCase()} class="${element.getAttribute('class') ?? ''}"> "${(element.textContent ?? '').trim().slice(0, 40)}"`;
    const root = document.documentElement;
    if (root.scrollWidth > root.clientWidth)
      problems.push(`the page scrolls sideways (${root.scrollWidth} > ${root.clientWidth})`);
    for (const element of document.querySelectorAll('.panel, .panel *')) {
      const style = getComputedStyle(element);
      if (style.display === 'none') continue;
      const box = element.getBoundingClientRect();
      const panel = element.parentElement?.closest('.panel') ?? element.parentElement?.closest('.main');
      // Clipped or scrolled by an element inside its panel: that element is what must fit.
      let confined = false;
      for (let up = element.parentElement; up !== null && up !== panel; up = up.parentElement) {
        if (getComputedStyle(up).overflowX !== 'visible') confined = true;
      }
      if (panel !== null && panel !== undefined && !confined && box.width > 0) {
        const outer = panel.getBoundingClientRect();
        if (box.left < outer.left - 1 || box.right > outer.right + 1) {
          problems.push(
            `${name(element)} spans ${box.left}…${box.right}, outside ${name(panel)} at ${outer.left}…${outer.right}`,
          );
        }
      }
      if (element.scrollWidth > element.clientWidth + 1) {
        if (style.overflowX === 'auto' || style.overflowX === 'scroll') {
          if (!(element.getAttribute('class') ?? '').split(' ').includes('metrics'))
            problems.push(`${name(element)} scrolls sideways`);
        } else if (style.overflowX !== 'visible') {
          const words = (element.textContent ?? '').trim().split(/\s+/);
          const title = element.title ?? '';
          if (style.textOverflow !== 'ellipsis') problems.push(`${name(element)} is cut without an ellipsis`);
          else if (!words.every((word) => title.includes(word)))
            problems.push(`${name(element)} is cut and its title "${title}" lacks some of it`);
        }
      }
    }
    return problems;
  });
}

describe.skipIf(!haveChromium)(
  haveChromium
    ? 'the dashboard in Chromium (headless)'
    : `the dashboard in Chromium — skipped: no ${CHROMIUM} (apt-get install chromium)`,
  () => {
    it('loads with the token (which it then removes from the address bar) and is refused without it', async () => {
      const { page, address, session, browser, errors } = await start(
        { Gradient: { class: 'Gradient' }, Sink: { class: 'Sink' } },
        { frames: { sources: ['Gradient.q_out'], sinks: ['Sink.q_in'] } },
      );
      const response = await page.goto(address);
      expect(response?.status()).toBe(200);
      await page.waitForSelector('[data-status][data-state="waiting"]', WAIT);
      expect(page.url()).not.toContain('token');
      expect(page.url()).toBe(`${session.info.url}/`);
      await expect.poll(() => page.textContent('.top'), POLL).toContain(session.info.id);
      // Reloaded (the address has no token now): the tab kept it, and the page connects again.
      await page.reload();
      await page.waitForSelector('[data-status][data-state="waiting"]', WAIT);
      await expect.poll(() => page.textContent('.top'), POLL).toContain(session.info.id);

      // A browser that was never given the token: refused, and told where the token is.
      const stranger = await browser.newPage();
      const refused = await stranger.goto(`${session.info.url}/`);
      expect(refused?.status()).toBe(401);
      const body = (await stranger.textContent('body')) ?? '';
      expect(body).toContain('a token is required');
      expect(body).toContain(session.info.tokenFile);
      expect(body).toContain(`improv dashboard ${session.info.id}`);
      const wrong = await stranger.goto(`${session.info.url}/?token=not-the-token`);
      expect(wrong?.status()).toBe(403);
      expect(await stranger.textContent('body')).toContain('wrong token');
      // Its scripts are refused too (no cookie): nothing of the page runs.
      expect(await stranger.locator('[data-status]').count()).toBe(0);
      // The page ran without a script error or a Content-Security-Policy violation.
      expect(errors).toEqual([]);
    });

    it('shows every actor of the pipeline in its graph, and every link with its live rate', async () => {
      const { page, address, nexus, errors } = await start(
        { Gradient: { class: 'Gradient' }, Sink: { class: 'Sink' }, Other: { class: 'Sink' } },
        { frames: { sources: ['Gradient.q_out'], sinks: ['Sink.q_in', 'Other.q_in'] } },
      );
      await page.goto(address);
      for (const name of ['Gradient', 'Sink', 'Other']) {
        await page.waitForSelector(`[data-actor="${name}"]`, WAIT);
        await expect.poll(() => shownState(page, name), POLL).toBe('waiting');
      }
      expect(await page.locator('[data-actor]').count()).toBe(3);
      // Fan-out: an edge per sink, both of connection `frames`.
      expect(await page.locator('g.edge[data-connection="frames"]').count()).toBe(2);
      await nexus.setup();
      await nexus.run();
      // Messages flow: the edge labels show a rate above zero.
      await expect
        .poll(async () => {
          const text = (await page.locator('.edge-label[data-connection="frames"] .rate').first().textContent()) ?? '';
          return Number.parseFloat(text);
        }, POLL)
        .toBeGreaterThan(0);
      expect(errors).toEqual([]);
    });

    it('changes the states shown when a command button is clicked', async () => {
      const { page, address, nexus, errors } = await start(
        { Gradient: { class: 'Gradient' }, Sink: { class: 'Sink' } },
        { frames: { sources: ['Gradient.q_out'], sinks: ['Sink.q_in'] } },
      );
      await page.goto(address);
      await page.waitForSelector('[data-status][data-state="waiting"]', WAIT);
      // Only what the pipeline would accept can be clicked.
      expect(await page.isDisabled('[data-command="run"]')).toBe(true);
      const steps: [string, string][] = [
        ['setup', 'ready'],
        ['run', 'running'],
        ['pause', 'paused'],
        ['resume', 'running'],
        ['stop', 'stopped'],
        ['run', 'running'],
      ];
      for (const [command, state] of steps) {
        await page.click(`[data-command="${command}"]`, WAIT);
        await expect.poll(() => shownStatus(page), POLL).toBe(state);
        for (const actor of ['Gradient', 'Sink']) await expect.poll(() => shownState(page, actor), POLL).toBe(state);
        expect(nexus.status().state).toBe(state);
        // The answer is shown, and the log has the command.
        await expect.poll(() => page.textContent('.result'), POLL).toContain(`${command}: done`);
      }
      await expect.poll(() => page.textContent('.log'), POLL).toContain('command pause');
      // Quit asks for a second click, then the page keeps the last view and says the pipeline quit.
      await page.click('[data-command="quit"]');
      expect(await page.textContent('[data-command="quit"]')).toContain('again');
      await page.click('[data-command="quit"]');
      await nexus.closed;
      await expect.poll(() => shownStatus(page), POLL).toBe('closed');
      expect(await page.textContent('.banner.closed')).toContain('quit');
      expect(await page.locator('[data-actor="Gradient"]').count()).toBe(1);
      expect(errors).toEqual([]);
    });

    it('draws a published frame as an image in its colour map and range (pixels checked)', async () => {
      const { page, address, nexus, errors } = await start({ Gradient: { class: 'Gradient', size: 64 } });
      await page.goto(address);
      await nexus.setup();
      await nexus.run();
      const stream = 'Gradient/frame';
      await page.waitForSelector(`[data-stream="${stream}"] canvas.image`, WAIT);
      const corners: [number, number][] = [
        [0, 0],
        [63, 63],
        [32, 0],
        [63, 0],
        [16, 16],
      ];
      // The gradient runs from 0 (top-left) to 2016 (bottom-right); the range follows it: viridis
      // from its first colour (#440154) to its last (#fde725).
      await expect.poll(() => framePixels(page, stream, corners), POLL).toMatchObject({ width: 64, height: 64 });
      const viridis = (await framePixels(page, stream, corners))!.pixels;
      expect(viridis[0]).toEqual([0x44, 0x01, 0x54, 255]);
      expect(viridis[1]).toEqual([0xfd, 0xe7, 0x25, 255]);
      // Half way (value 512 of 2016) is neither end: viridis's blue-green.
      expect(viridis[4]).not.toEqual(viridis[0]);
      expect(viridis[4]).not.toEqual(viridis[1]);

      // Grey: black to white, and the middle of the top row (512 of 2016) a quarter up.
      await page.selectOption(`[data-stream="${stream}"] select`, 'gray');
      await expect
        .poll(async () => (await framePixels(page, stream, corners))!.pixels[1], POLL)
        .toEqual([255, 255, 255, 255]);
      const grey = (await framePixels(page, stream, corners))!.pixels;
      expect(grey[0]).toEqual([0, 0, 0, 255]);
      expect(grey[2]![0]).toBeGreaterThan(50);
      expect(grey[2]![0]).toBeLessThan(80);

      // A fixed range 0..1008: the top-right corner (1008) is white already, (16, 16) = 512 about half.
      await page.fill(`[data-stream="${stream}"] input[title^="highest"]`, '1008');
      await page.fill(`[data-stream="${stream}"] input[title^="lowest"]`, '0');
      await page.press(`[data-stream="${stream}"] input[title^="lowest"]`, 'Enter');
      await expect
        .poll(async () => (await framePixels(page, stream, corners))!.pixels[3], POLL)
        .toEqual([255, 255, 255, 255]);
      expect(await page.isChecked(`[data-stream="${stream}"] input[type="checkbox"]`)).toBe(false);
      const fixed = (await framePixels(page, stream, corners))!.pixels;
      expect(fixed[4]![0]).toBeGreaterThan(120);
      expect(fixed[4]![0]).toBeLessThan(140);
      // The panel says what it shows and keeps drawing new frames.
      expect(await page.textContent(`[data-stream="${stream}"] .plot-detail`)).toContain('uint16 64×64');
      const updates = async () => Number(await page.getAttribute(`[data-stream="${stream}"]`, 'data-updates'));
      const before = await updates();
      await expect.poll(updates, POLL).toBeGreaterThan(before);
      expect(errors).toEqual([]);
    });

    it('draws published numbers as a time series, and lines, scatters and text in their panels', async () => {
      const { page, address, nexus, errors } = await start({ Gradient: { class: 'Gradient', size: 16 } });
      await page.goto(address);
      await nexus.setup();
      await nexus.run();
      await page.waitForSelector('[data-stream="Gradient/level"][data-kind="series"] .u-wrap canvas', WAIT);
      // The series' line (the first series colour, #6f9fd8) is drawn: many pixels of it.
      await expect.poll(() => chartPixelsNear(page, 'Gradient/level', [0x6f, 0x9f, 0xd8]), POLL).toBeGreaterThan(50);
      await expect
        .poll(async () => (await page.textContent('[data-stream="Gradient/level"] .plot-meta')) ?? '', POLL)
        .toMatch(/^[1-9][\d.]* points\/s · skipped \d+/);

      await page.waitForSelector('[data-stream="Gradient/profile"][data-kind="line"] .u-wrap canvas', WAIT);
      await expect.poll(() => chartPixelsNear(page, 'Gradient/profile', [0x6f, 0x9f, 0xd8]), POLL).toBeGreaterThan(20);
      await page.waitForSelector('[data-stream="Gradient/spots"][data-kind="scatter"] .u-wrap canvas', WAIT);
      // The scatter's points: the second series colour (#ffa54f).
      await expect.poll(() => chartPixelsNear(page, 'Gradient/spots', [0xff, 0xa5, 0x4f]), POLL).toBeGreaterThan(20);
      await page.waitForSelector('[data-stream="Gradient/note"][data-kind="text"]', WAIT);
      await expect.poll(() => page.textContent('[data-stream="Gradient/note"] pre'), POLL).toContain('"a gradient"');
      expect(errors).toEqual([]);
    });

    it('draws the finite values of a series, line and image holding NaN or ±Infinity, and says what it left out', async () => {
      const { page, address, nexus, errors } = await start({ NotFinite: { class: 'NotFinite' } });
      await page.goto(address);
      await nexus.setup();
      await nexus.run();
      const note = (stream: string) => page.textContent(`[data-stream="${stream}"] .plot-note`);
      // A series with NaN and ±Infinity among its numbers: its finite points are drawn, the rest counted.
      await page.waitForSelector('[data-stream="NotFinite/level"][data-kind="series"] .u-wrap canvas', WAIT);
      await expect.poll(() => chartPixelsNear(page, 'NotFinite/level', [0x6f, 0x9f, 0xd8]), POLL).toBeGreaterThan(50);
      await expect
        .poll(() => note('NotFinite/level'), POLL)
        .toMatch(/^[1-9]\d* values? not finite \(NaN\/±Infinity\) not drawn$/);
      // Only NaN: an empty chart, and the note says why.
      await expect
        .poll(() => note('NotFinite/blank'), POLL)
        .toMatch(/^[1-9]\d* values? not finite \(NaN\/±Infinity\) not drawn$/);
      // A line of 16 values, 3 of them not finite: the other 13 are drawn, over their own range.
      await page.waitForSelector('[data-stream="NotFinite/profile"][data-kind="line"] .u-wrap canvas', WAIT);
      await expect.poll(() => chartPixelsNear(page, 'NotFinite/profile', [0x6f, 0x9f, 0xd8]), POLL).toBeGreaterThan(20);
      await expect.poll(() => note('NotFinite/profile'), POLL).toBe('3 values not finite (NaN/±Infinity) not drawn');
      expect(await page.textContent('[data-stream="NotFinite/profile"] .plot-detail')).toBe('16 values, 0 … 15.0');
      // An 8×8 float32 gradient 0 … 14 with 4 values not finite: the colour range is that of the
      // finite values (0 and 14 are viridis's ends), and the note counts the others.
      const stream = 'NotFinite/frame';
      await page.waitForSelector(`[data-stream="${stream}"] canvas.image`, WAIT);
      await expect
        .poll(() => note(stream), POLL)
        .toMatch(/^4 values not finite \(NaN\/±Infinity\) left out of the range/);
      await expect
        .poll(async () => (await framePixels(page, stream, [[0, 0]]))?.pixels[0], POLL)
        .toEqual([0x44, 0x01, 0x54, 255]);
      const corners = (await framePixels(page, stream, [
        [0, 0],
        [7, 7],
        [4, 3],
        [2, 0],
      ]))!.pixels;
      expect(corners[1]).toEqual([0xfd, 0xe7, 0x25, 255]);
      // Half way (7 of 14) is neither end; +Infinity (column 2 of row 0) takes the last colour.
      expect(corners[2]).not.toEqual(corners[0]);
      expect(corners[2]).not.toEqual(corners[1]);
      expect(corners[3]).toEqual([0xfd, 0xe7, 0x25, 255]);
      expect(await page.inputValue(`[data-stream="${stream}"] input[title^="highest"]`)).toBe('14');
      // Publishing them failed nowhere.
      expect(nexus.status().state).toBe('running');
      expect(errors).toEqual([]);
    });

    it('keeps long names, long titles and big numbers inside their panels, at 800 px wide and at 1400', async () => {
      const long = 'AnActorWhoseNameIsLongerThanAnyColumnOfTheMetricsTableCouldHold';
      const { page, address, nexus, errors } = await start(
        {
          [long]: { class: 'Wide' },
          [`${long}Too`]: { class: 'Sink' },
          Gradient: { class: 'Gradient', size: 16 },
        },
        {
          [`a_connection_whose_name_is_long_as_well_${'x'.repeat(40)}`]: {
            sources: ['Gradient.q_out'],
            sinks: [`${long}Too.q_in`],
          },
        },
      );
      await page.setViewportSize({ width: 800, height: 900 });
      await page.goto(address);
      await nexus.setup();
      await nexus.run();
      for (const kind of ['image', 'series', 'line', 'scatter', 'text']) {
        await page.waitForSelector(`[data-kind="${kind}"]`, WAIT);
      }
      await page.waitForSelector(`[data-stream^="${long}/"][data-kind="series"] .u-wrap canvas`, WAIT);
      await page.waitForSelector('.metrics [data-link]', WAIT);
      await expect.poll(() => layoutProblems(page), POLL).toEqual([]);
      // The long names are there, cut: their whole text on hover.
      const plotName = page.locator(`[data-stream^="${long}/"][data-kind="series"] .plot-name`);
      expect(await plotName.getAttribute('title')).toContain(`${long}/a_published_stream_whose_name_goes_on_`);
      expect(await page.locator('.metrics td.name').first().getAttribute('title')).toContain(long);
      // Numbers past the billions are written short: 1.47e21, not 1468000000000.00G.
      await expect
        .poll(() => page.textContent(`[data-stream^="${long}/"][data-kind="line"] .plot-detail`), POLL)
        .toMatch(/^32 values, \d\.\d\de\d+ … \d\.\d\de\d+$/);
      // Wide: the same page, nothing spilling either.
      await page.setViewportSize({ width: 1400, height: 900 });
      await expect.poll(() => layoutProblems(page), POLL).toEqual([]);
      expect(errors).toEqual([]);
      // Longer than the test's own 30 s: a failing poll then reports what spills, not a timeout.
    }, 120_000);

    it('shows a failed actor in red with its error, and offers to revive it', async () => {
      const { page, address, errors } = await start({ Gradient: { class: 'Gradient' }, Broken: { class: 'Broken' } });
      await page.goto(address);
      await page.waitForSelector('[data-status][data-state="waiting"]', WAIT);
      await page.click('[data-command="setup"]');
      await page.waitForSelector('[data-actor="Broken"][data-state="failed"]', WAIT);
      // In the graph: a red box, its error under it.
      const node = page.locator('[data-actor="Broken"]');
      expect(await node.locator('rect.box').getAttribute('stroke')).toBe('#f85149');
      await expect
        .poll(() => node.locator('text.error').textContent(), POLL)
        .toContain('calibration file not found: /data/rig-3/calibration.tif');
      expect(await shownState(page, 'Gradient')).not.toBe('failed');
      // Above the graph: the whole error and a revive button; the refused setup's answer in the header.
      expect(await page.textContent('[data-failure="Broken"]')).toContain('calibration file not found');
      expect(await page.isVisible('[data-revive="Broken"]')).toBe(true);
      await expect.poll(() => page.getAttribute('.result', 'data-result'), POLL).toBe('refused');
      expect(await page.textContent('.result')).toMatch(/Broken|calibration/);
      await expect.poll(() => page.textContent('.log'), POLL).toContain('calibration file not found');
      // Revive gives the command for that actor (here its setup fails again, and the page says so).
      await page.click('.failures [data-revive="Broken"]');
      await expect.poll(() => page.textContent('.log'), POLL).toContain('command revive Broken');
      await expect.poll(() => page.getAttribute('.result', 'title'), POLL).toMatch(/^revive Broken: /);
      expect(await shownState(page, 'Broken')).toBe('failed');
      expect(errors).toEqual([]);
    });
  },
);
