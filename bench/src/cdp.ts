/**
 * A small Chrome DevTools Protocol client: launches Debian's Chromium headless with
 * `--remote-debugging-port=0`, opens pages (targets), navigates them and evaluates expressions in
 * them — commands and their answers over the `ws` package, nothing else.
 *
 * Why not playwright: its driver enables DevTools' Network domain on every page, and the renderer
 * then base64-encodes every binary WebSocket frame for it (half a megabyte per 512×512 uint16 image
 * on the dashboard: a quarter of a core more, and a renderer that falls behind). This client enables
 * no domain unless its caller sends the `*.enable` command itself, and never the Network domain.
 *
 * Used by `npm run bench -- --dashboard` (`dashboard.ts`) and `scripts/dashboard-profile.mts`.
 *
 * ```ts
 * const chromium = await Chromium.launch();
 * try {
 *   const page = await chromium.newPage();
 *   await page.navigate('http://127.0.0.1:8080/');
 *   await page.waitFor('document.querySelector("canvas") !== null', { what: 'a canvas' });
 *   console.log(await page.evaluate<string>('document.title'));
 *   await page.close();
 * } finally {
 *   await chromium.close();
 * }
 * ```
 * @module
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type WebSocket from 'ws';

/** Debian's Chromium, which the dashboard's browser tests drive too. */
export const CHROMIUM = '/usr/bin/chromium';

/** How long a command may wait for its answer before it fails (a hung or gone browser). */
const COMMAND_TIMEOUT_MS = 60_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A DevTools protocol error, or a connection that closed or did not answer. */
export class CdpError extends Error {
  override name = 'CdpError';
}

interface Waiting {
  method: string;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** What the protocol sends: an answer (with `id`) or an event (with `method`; ignored here). */
interface Incoming {
  id?: number;
  result?: unknown;
  error?: { code?: number; message: string; data?: string };
}

/**
 * One DevTools WebSocket (to the browser or to one target): commands only, no domain enabled unless
 * its caller asks. Events are ignored. Commands still waiting when the socket closes fail.
 */
export class CdpSession {
  readonly #socket: WebSocket;
  #next = 1;
  #closed: string | undefined;
  readonly #waiting = new Map<number, Waiting>();

  private constructor(socket: WebSocket) {
    this.#socket = socket;
    socket.on('message', (data) => {
      const message = JSON.parse(data.toString()) as Incoming;
      if (message.id === undefined) return;
      const waiting = this.#waiting.get(message.id);
      if (waiting === undefined) return;
      this.#waiting.delete(message.id);
      clearTimeout(waiting.timer);
      if (message.error !== undefined) {
        const detail = message.error.data === undefined ? '' : ` (${message.error.data})`;
        waiting.reject(new CdpError(`${waiting.method}: ${message.error.message}${detail}`));
      } else {
        waiting.resolve(message.result);
      }
    });
    socket.on('error', () => {}); // the 'close' that follows fails what waits
    socket.on('close', () => this.#fail('the DevTools connection closed'));
  }

  /** Connects to a DevTools WebSocket (`ws://…/devtools/browser/…` or `…/devtools/page/…`). */
  static async open(url: string): Promise<CdpSession> {
    // Loaded here, not at the top: importing this module costs nothing until a browser is wanted.
    const { WebSocket } = await import('ws');
    const socket = new WebSocket(url, { perMessageDeflate: false, maxPayload: 1 << 30 });
    return new Promise((resolve, reject) => {
      socket.once('open', () => resolve(new CdpSession(socket)));
      socket.once('error', (error) => reject(new CdpError(`cannot connect to ${url}: ${error.message}`)));
    });
  }

  /** Whether the connection is closed (by `close()`, the browser, or the target going away). */
  get closed(): boolean {
    return this.#closed !== undefined;
  }

  /** Sends a command and resolves to its result (`T`: the result's shape, as the protocol documents it). */
  send<T = unknown>(method: string, params: object = {}): Promise<T> {
    if (this.#closed !== undefined) return Promise.reject(new CdpError(`${method}: ${this.#closed}`));
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id);
        reject(new CdpError(`${method}: no answer after ${COMMAND_TIMEOUT_MS / 1000} s`));
      }, COMMAND_TIMEOUT_MS);
      this.#waiting.set(id, { method, resolve: resolve as (value: unknown) => void, reject, timer });
      this.#socket.send(JSON.stringify({ id, method, params }));
    });
  }

  /** Closes the connection; commands still waiting fail. */
  close(): void {
    this.#fail('the DevTools connection was closed');
    this.#socket.close();
  }

  #fail(why: string): void {
    this.#closed ??= why;
    for (const [id, waiting] of this.#waiting) {
      this.#waiting.delete(id);
      clearTimeout(waiting.timer);
      waiting.reject(new CdpError(`${waiting.method}: ${why}`));
    }
  }
}

/** `Runtime.evaluate`'s answer, as far as this client reads it. */
interface EvaluateResult<T> {
  result: { type: string; value?: T; description?: string };
  exceptionDetails?: { text: string; exception?: { description?: string } };
}

/** How {@link Page.waitFor} waits. */
export interface WaitForOptions {
  /** What is awaited, for the error (default: the expression). */
  what?: string;
  /** Default 60 000. */
  timeoutMs?: number;
  /** Between polls; default 250. */
  intervalMs?: number;
}

/** A page (a target) of the browser, through its own DevTools connection. */
export class Page {
  readonly targetId: string;
  readonly session: CdpSession;
  readonly #browser: CdpSession;

  constructor(targetId: string, session: CdpSession, browser: CdpSession) {
    this.targetId = targetId;
    this.session = session;
    this.#browser = browser;
  }

  /** Sends a command to the page (e.g. `Profiler.start`); see {@link CdpSession.send}. */
  send<T = unknown>(method: string, params: object = {}): Promise<T> {
    return this.session.send<T>(method, params);
  }

  /** Navigates to `url`; resolves once the navigation commits (not when the page has loaded). */
  async navigate(url: string): Promise<void> {
    const answer = await this.send<{ frameId: string; errorText?: string }>('Page.navigate', { url });
    if (answer.errorText !== undefined) throw new CdpError(`cannot open ${url}: ${answer.errorText}`);
  }

  /**
   * Evaluates a JavaScript expression in the page and resolves to its value (returned by value: JSON
   * data). An exception in the page rejects with its description.
   */
  async evaluate<T>(expression: string): Promise<T> {
    const answer = await this.send<EvaluateResult<T>>('Runtime.evaluate', { expression, returnByValue: true });
    if (answer.exceptionDetails !== undefined) {
      const { text, exception } = answer.exceptionDetails;
      throw new CdpError(`in the page: ${exception?.description ?? text}`);
    }
    return answer.result.value as T;
  }

  /**
   * Polls `expression` (every `intervalMs`, default 250) until it is truthy; rejects after `timeoutMs`
   * (default 60 s) with "`what` not there after … s". Errors while the page loads (no context yet)
   * are retried; a closed connection is not.
   */
  async waitFor(expression: string, options: WaitForOptions = {}): Promise<void> {
    const { what = expression, timeoutMs = 60_000, intervalMs = 250 } = options;
    const started = performance.now();
    let last = '';
    for (;;) {
      try {
        if (await this.evaluate<boolean>(`Boolean(${expression})`)) return;
        last = '';
      } catch (error) {
        if (this.session.closed) throw error;
        last = error instanceof Error ? error.message : String(error);
      }
      if (performance.now() - started > timeoutMs) {
        throw new CdpError(
          `${what} not there after ${Math.round(timeoutMs / 1000)} s${last === '' ? '' : ` (last error: ${last})`}`,
        );
      }
      await sleep(intervalMs);
    }
  }

  /** Closes the page's connection and the target (best effort: a target or browser already gone is fine). */
  async close(): Promise<void> {
    this.session.close();
    if (this.#browser.closed) return;
    await this.#browser.send('Target.closeTarget', { targetId: this.targetId }).catch(() => {});
  }
}

export interface LaunchOptions {
  /** The executable (default {@link CHROMIUM}). */
  executable?: string;
  /** The window's size in CSS pixels (default 1400×900). */
  width?: number;
  height?: number;
  /** More command-line switches. */
  args?: string[];
  /** How long to wait for Chromium's DevTools address (default 30 s). */
  timeoutMs?: number;
  /** A command that runs Chromium, e.g. `['taskset', '-c', '1']` to keep it on CPU 1. */
  prefix?: string[];
}

/** A headless Chromium started by hand, with a fresh profile folder, and a DevTools connection to it. */
export class Chromium {
  /** The browser's process (its children are the renderers, the GPU process, …). */
  readonly process: ChildProcess;
  /** The browser's DevTools WebSocket address. */
  readonly endpoint: string;
  readonly #browser: CdpSession;
  readonly #profileDir: string;
  readonly #size: { width: number; height: number };

  private constructor(
    process: ChildProcess,
    endpoint: string,
    browser: CdpSession,
    profileDir: string,
    size: { width: number; height: number },
  ) {
    this.process = process;
    this.endpoint = endpoint;
    this.#browser = browser;
    this.#profileDir = profileDir;
    this.#size = size;
  }

  /** Starts Chromium headless (`--no-sandbox`, a temporary profile, about:blank) and connects to it. */
  static async launch(options: LaunchOptions = {}): Promise<Chromium> {
    const executable = options.executable ?? CHROMIUM;
    const size = { width: options.width ?? 1400, height: options.height ?? 900 };
    const timeoutMs = options.timeoutMs ?? 30_000;
    const profileDir = mkdtempSync(join(tmpdir(), 'improv-chromium-'));
    // With a prefix, Chromium is an argument of the prefix's command (`taskset -c 1 chromium …`).
    const [command, ...before] = options.prefix?.length ? [...options.prefix, executable] : [executable];
    const child = spawn(
      command,
      [
        ...before,
        '--headless',
        '--no-sandbox',
        '--remote-debugging-port=0',
        `--user-data-dir=${profileDir}`,
        `--window-size=${size.width},${size.height}`,
        '--no-first-run',
        '--no-default-browser-check',
        '--disable-background-networking',
        '--disable-extensions',
        '--mute-audio',
        ...(options.args ?? []),
        'about:blank',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    // Chromium logs to stderr all along: keep reading it (a full pipe would stall it), keep the tail.
    let seen = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      seen = (seen + chunk.toString()).slice(-8192);
    });
    let session: CdpSession | undefined;
    try {
      const endpoint = await new Promise<string>((resolve, reject) => {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const settle = (then: () => void) => {
          clearTimeout(timer);
          child.stderr!.off('data', look);
          child.off('exit', exited);
          child.off('error', failed);
          then();
        };
        function look() {
          const match = /DevTools listening on (ws:\/\/\S+)/.exec(seen);
          if (match !== null) settle(() => resolve(match[1]!));
        }
        function exited(code: number | null, signal: string | null) {
          const why = `${executable} exited (${code ?? signal}) before its DevTools address:\n${seen}`;
          settle(() => reject(new CdpError(why)));
        }
        function failed(error: Error) {
          settle(() => reject(new CdpError(`cannot start ${executable}: ${error.message}`)));
        }
        timer = setTimeout(() => {
          const why = `no DevTools address from ${executable} after ${timeoutMs / 1000} s:\n${seen}`;
          settle(() => reject(new CdpError(why)));
        }, timeoutMs);
        child.stderr!.on('data', look);
        child.once('exit', exited);
        child.once('error', failed);
      });
      session = await CdpSession.open(endpoint);
      return new Chromium(child, endpoint, session, profileDir, size);
    } catch (error) {
      session?.close();
      await stop(child, 0);
      removeProfile(profileDir);
      throw error;
    }
  }

  /** The browser's version, e.g. `156.0.8078.114`. */
  async version(): Promise<string> {
    const { product } = await this.#browser.send<{ product: string }>('Browser.getVersion');
    return product.slice(product.indexOf('/') + 1);
  }

  /** The page Chromium opened at start (about:blank). */
  async firstPage(): Promise<Page> {
    const { targetInfos } = await this.#browser.send<{ targetInfos: { targetId: string; type: string }[] }>(
      'Target.getTargets',
    );
    const target = targetInfos.find((each) => each.type === 'page');
    if (target === undefined) throw new CdpError('Chromium has no page');
    return this.#attach(target.targetId);
  }

  /**
   * A new page (a new target) at about:blank, in a window of its own (a second tab of one window
   * would hide the first, which then stops drawing), of the launch's window size. With `viewport`,
   * the page's viewport is exactly that (`Emulation.setDeviceMetricsOverride`, as playwright sets its
   * viewport); without, it is the window less what headless Chromium keeps for its frame.
   */
  async newPage(options: { viewport?: { width: number; height: number } } = {}): Promise<Page> {
    const { targetId } = await this.#browser.send<{ targetId: string }>('Target.createTarget', {
      url: 'about:blank',
      newWindow: true,
      width: this.#size.width,
      height: this.#size.height,
    });
    const page = await this.#attach(targetId);
    if (options.viewport !== undefined) {
      await page.send('Emulation.setDeviceMetricsOverride', {
        ...options.viewport,
        deviceScaleFactor: 1,
        mobile: false,
      });
    }
    return page;
  }

  async #attach(targetId: string): Promise<Page> {
    const { host } = new URL(this.endpoint);
    return new Page(targetId, await CdpSession.open(`ws://${host}/devtools/page/${targetId}`), this.#browser);
  }

  /** Closes the browser (Browser.close, then SIGTERM, then SIGKILL) and removes its profile folder. */
  async close(): Promise<void> {
    if (!this.#browser.closed && this.process.exitCode === null && this.process.signalCode === null) {
      const closing = this.#browser.send('Browser.close').catch(() => {});
      await within(closing, 5000);
    }
    this.#browser.close();
    await stop(this.process);
    // Chromium's helpers may write into the profile a moment longer.
    await sleep(500);
    removeProfile(this.#profileDir);
  }
}

/** Resolves to whether `promise` settled within `ms` (leaving no timer behind). */
function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    void promise.then(
      () => {
        clearTimeout(timer);
        resolve(true);
      },
      () => {
        clearTimeout(timer);
        resolve(true);
      },
    );
  });
}

/** Waits `graceMs` for `child` to exit, then sends SIGTERM, and SIGKILL 5 s later. */
async function stop(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  if (await within(exited, graceMs)) return;
  child.kill('SIGTERM');
  if (await within(exited, 5000)) return;
  child.kill('SIGKILL');
  await exited;
}

function removeProfile(dir: string): void {
  try {
    rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  } catch {}
}
