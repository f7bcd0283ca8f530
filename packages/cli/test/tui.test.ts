import { EventEmitter } from 'node:events';
import type { ActorMetrics, LinkMetrics, LogRecord, PipelineMetrics, PipelineStatus } from '@improv/core';
import { afterEach, describe, expect, it } from 'vitest';
import type { CommandResult, GraphInfo, LiveSource, RunInfo, ServerMessage } from '../src/control/protocol.ts';
import { decodeKeys, renderScreen, runTui, type TuiController, type TuiExit } from '../src/tui/index.ts';

// ---------------------------------------------------------------------------------------------
// A fake run, terminal and keyboard

class FakeSource implements LiveSource {
  readonly info: RunInfo = {
    id: 'minimal-3fa2',
    pipeline: '/lab/apps/minimal/minimal.yaml',
    pid: 4242,
    url: 'http://127.0.0.1:41234',
    tokenFile: '/lab/runs/minimal/control.token',
    startedAt: Date.now() - 65_000,
    runtime: 'node',
    version: '0.1.0',
  };
  readonly graph: GraphInfo;
  /** The hello's status: a pipeline just loaded, unless a test gives another. */
  status: PipelineStatus;
  /** What the UI asked to stream. */
  readonly subscriptions: { metrics?: boolean; logs?: boolean; history?: number }[] = [];
  readonly lines: string[] = [];
  answer: (line: string) => CommandResult = (line) => ({ ok: true, message: `${line}: done, the pipeline is running` });
  readonly closed: Promise<void>;
  #listeners = new Set<(message: ServerMessage) => void>();
  #latest: PipelineMetrics | undefined;
  #endClosed: () => void = () => {};

  constructor(actors: string[]) {
    this.status = {
      state: 'waiting',
      actors: actors.map((name) => ({ name, state: 'waiting', steps: 0, errors: 0, restarts: 0 })),
      links: [],
    };
    this.graph = {
      actors: actors.map((name) => ({ name, className: name, package: 'actors.ts' })),
      connections: [],
    };
    this.closed = new Promise((resolve) => {
      this.#endClosed = resolve;
    });
  }

  subscribe(options: { metrics?: boolean; logs?: boolean; history?: number }): void {
    this.subscriptions.push(options);
  }
  latest(): PipelineMetrics | undefined {
    return this.#latest;
  }

  on(listener: (message: ServerMessage) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async command(line: string): Promise<CommandResult> {
    this.lines.push(line);
    return this.answer(line);
  }

  close(): void {
    this.end();
  }

  emit(message: ServerMessage): void {
    if (message.type === 'metrics') this.#latest = message.metrics;
    for (const listener of [...this.#listeners]) listener(message);
  }

  end(): void {
    this.#endClosed();
  }
}

class FakeStdout extends EventEmitter {
  columns: number;
  rows: number;
  isTTY = false;
  readonly frames: string[] = [];
  constructor(columns: number, rows: number) {
    super();
    this.columns = columns;
    this.rows = rows;
  }
  write(chunk: string): boolean {
    this.frames.push(String(chunk));
    return true;
  }
}

class FakeStdin extends EventEmitter {
  isTTY = true;
  #queue: string[] = [];
  setEncoding(): void {}
  setRawMode(): void {}
  ref(): void {}
  unref(): void {}
  resume(): void {}
  pause(): void {}
  read(): string | null {
    return this.#queue.shift() ?? null;
  }
  /** Keys as the terminal sends them (each call one chunk). */
  type(data: string): void {
    this.#queue.push(data);
    this.emit('readable');
  }
}

const F = { 7: '\x1b[18~', 8: '\x1b[19~', 10: '\x1b[21~' } as const;

// biome-ignore lint/suspicious/noControlCharactersInRegex: removing escape codes is the point
const plain = (frame: string) => frame.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');

function actor(name: string, over: Partial<ActorMetrics> = {}): ActorMetrics {
  return {
    name,
    state: 'running',
    steps: 100,
    errors: 0,
    restarts: 0,
    stepsPerSecond: 10,
    errorsPerSecond: 0,
    stepMs: { p50: 0.5, p99: 2 },
    elu: 0.25,
    heapBytes: 24 * 2 ** 20,
    ...over,
  };
}

function link(from: string, to: string, over: Partial<LinkMetrics> = {}): LinkMetrics {
  return {
    connection: `${from}.q_out`,
    from: { actor: from, link: 'q_out' },
    to: { actor: to, link: 'q_in' },
    capacity: 64,
    policy: 'block',
    depth: 0,
    sent: 0,
    dropped: 0,
    waiting: false,
    messagesPerSecond: 10,
    droppedPerSecond: 0,
    ...over,
  };
}

function snapshot(rate: number, over: Partial<PipelineMetrics> = {}): PipelineMetrics {
  return {
    time: Date.now(),
    state: 'running',
    actors: [
      actor('Generator', { stepsPerSecond: rate }),
      actor('Processor', { stepsPerSecond: rate, cpu: 0.5 }),
      actor('Sink', { stepsPerSecond: rate }),
    ],
    links: [
      link('Generator', 'Processor', { messagesPerSecond: rate, depth: 32 }),
      link('Processor', 'Sink', { messagesPerSecond: rate }),
      link('Generator', 'Sink', { messagesPerSecond: rate, connection: 'Generator.q_aux' }),
    ],
    store: { driver: 'memory', usedBytes: 2 ** 20, capacityBytes: 2 ** 30, objects: 12 },
    ...over,
  };
}

function record(message: string, level: LogRecord['level'] = 'info', source = 'Processor'): LogRecord {
  return { time: Date.now(), level, source, message };
}

interface Harness {
  source: FakeSource;
  stdout: FakeStdout;
  stdin: FakeStdin;
  controller: TuiController;
  done: Promise<TuiExit>;
  /** The last frame, without colours. */
  screen(): string;
  /** Waits until the screen satisfies `check` (fails after a few seconds). */
  until(check: (screen: string) => boolean): Promise<string>;
}

const running: Harness[] = [];

async function start(
  options: { mode?: 'full' | 'top'; columns?: number; rows?: number; actors?: string[]; status?: PipelineStatus } = {},
): Promise<Harness> {
  const source = new FakeSource(options.actors ?? ['Generator', 'Processor', 'Sink']);
  if (options.status !== undefined) source.status = options.status;
  const stdout = new FakeStdout(options.columns ?? 80, options.rows ?? 24);
  const stdin = new FakeStdin();
  let controller: TuiController | undefined;
  const done = runTui(source, {
    mode: options.mode ?? 'full',
    stdout: stdout as unknown as NodeJS.WriteStream,
    stdin: stdin as unknown as NodeJS.ReadStream,
    debug: true,
    onController: (made) => {
      controller = made;
    },
  });
  const screen = () => plain(stdout.frames.at(-1) ?? '');
  const until = async (check: (screen: string) => boolean) => {
    for (let i = 0; i < 150; i++) {
      if (check(screen())) return screen();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error(`the screen never showed what was expected:\n${screen()}`);
  };
  const harness: Harness = { source, stdout, stdin, controller: controller!, done, screen, until };
  running.push(harness);
  await until((text) => text.includes('ACTOR'));
  return harness;
}

afterEach(async () => {
  for (const harness of running.splice(0)) {
    harness.source.end();
    await harness.done;
  }
});

/** Every line of every frame written fits `width`. */
function widest(stdout: FakeStdout): number {
  let widest = 0;
  for (const frame of stdout.frames) {
    for (const line of plain(frame).split('\n')) widest = Math.max(widest, Array.from(line).length);
  }
  return widest;
}

// ---------------------------------------------------------------------------------------------

describe('the live UI (full)', () => {
  it('shows the actors and the state from the hello before the first metrics', async () => {
    const status: PipelineStatus = {
      state: 'waiting',
      actors: ['Generator', 'Processor', 'Sink'].map((name) => ({
        name,
        state: 'waiting',
        steps: 0,
        errors: 0,
        restarts: 0,
      })),
      links: [],
    };
    const { screen } = await start({ status });
    const text = screen();
    expect(text).toMatch(/improv minimal-3fa2 +waiting +up 1:0\d +http:\/\/127\.0\.0\.1:41234/);
    expect(text).toMatch(/^Generator +waiting /m);
    expect(text).toMatch(/^Processor +waiting /m);
    expect(text).toMatch(/^improv> *$/m);
    expect(text).toContain('F2 setup');
    expect(text).toContain('^D detach');
  });

  it('shows the rates of each snapshot: steps/s, msgs/s in and out, and a depth bar', async () => {
    const { source, until } = await start();
    source.emit({ type: 'metrics', metrics: snapshot(10) });
    let text = await until((screen) => /^Generator +running/m.test(screen));
    // Generator: no input, out = 10 + 10 (two links); Sink: in = 10 + 10.
    expect(text).toMatch(/^Generator +running +- +20\.0 +10\.0 +0 +0\.50 +2\.00 +25%e +24M +0/m);
    expect(text).toMatch(/^Processor +running +10\.0 +10\.0 +10\.0 +0 .* 50% /m);
    expect(text).toMatch(/^Sink +running +20\.0 +- +10\.0/m);
    expect(text).toMatch(/Generator\.q_out → Processor\.q_in +████░░░░ +32\/64 +10\.0/);
    expect(text).toMatch(/store memory .*1\.00 MiB \/ 1\.00 GiB .*12 objects/);

    source.emit({ type: 'metrics', metrics: snapshot(250) });
    text = await until((screen) => screen.includes('500'));
    expect(text).toMatch(/^Generator +running +- +500 +250 /m);
    expect(text).toMatch(/^Sink +running +500 +- +250/m);
  });

  it('never breaks on metrics with fields missing', async () => {
    const { source, until } = await start();
    const bare = {
      time: Date.now(),
      state: 'running',
      actors: [{ name: 'Generator', state: 'failed' }, { name: 'Processor' }],
      links: [{ from: { actor: 'Generator', link: 'q_out' }, to: { actor: 'Processor', link: 'q_in' } }],
    } as unknown as PipelineMetrics;
    source.emit({ type: 'metrics', metrics: bare });
    const text = await until((screen) => /^Generator +failed/m.test(screen));
    expect(text).toMatch(/^Generator +failed +- +- +- +- +- +- +- +- +-/m);
    expect(text).toMatch(/Generator\.q_out → Processor\.q_in +░+ +-\/-/);
  });

  it('shows the log, filtered by text (/, Esc clears) and by level (F8)', async () => {
    const { source, stdin, until } = await start();
    source.emit({
      type: 'logs',
      records: [
        record('frame 1 segmented'),
        record('fit did not converge', 'warn', 'Analysis'),
        record('store put 512 bytes', 'debug', 'Generator'),
        record('frame 2 segmented'),
      ],
    });
    let text = await until((screen) => screen.includes('frame 2 segmented'));
    expect(text).toMatch(/\d\d:\d\d:\d\d INFO +Processor: frame 1 segmented/);
    expect(text).toMatch(/WARN +Analysis: fit did not converge/);
    expect(text).not.toContain('store put'); // debug is below the default level

    stdin.type('/');
    stdin.type('FRAME \\d');
    text = await until((screen) => screen.includes('filter> FRAME \\d'));
    expect(text).toContain('frame 1 segmented');
    expect(text).not.toContain('fit did not converge');
    stdin.type('\r');
    text = await until((screen) => /^improv> *$/m.test(screen));
    expect(text).toContain('filter FRAME \\d');
    expect(text).not.toContain('fit did not converge');

    stdin.type('\x1b');
    text = await until((screen) => screen.includes('fit did not converge'));
    expect(text).toContain('frame 2 segmented');

    // F8 cycles the level: warn and above, then error, then debug.
    stdin.type(F[8]);
    text = await until((screen) => screen.includes('≥warn'));
    expect(text).toContain('fit did not converge');
    expect(text).not.toContain('frame 1 segmented');
    stdin.type(F[8]);
    stdin.type(F[8]);
    text = await until((screen) => screen.includes('≥debug'));
    expect(text).toContain('store put 512 bytes');
  });

  it('scrolls the log back with PgUp, keeps those lines as more arrive, and End follows again', async () => {
    const { source, stdin, stdout, until } = await start();
    source.emit({ type: 'logs', records: Array.from({ length: 60 }, (_, i) => record(`line ${i}`)) });
    await until((screen) => screen.includes('line 59'));
    stdin.type('\x1b[5~');
    let text = await until((screen) => screen.includes('back, End follows'));
    expect(text).not.toContain('line 59');
    const shown = text.split('\n').filter((line) => / line \d+$/.test(line));
    const frames = stdout.frames.length;
    source.emit({ type: 'logs', records: Array.from({ length: 5 }, (_, i) => record(`more ${i}`)) });
    text = await until(() => stdout.frames.length > frames);
    expect(text.split('\n').filter((line) => / line \d+$/.test(line))).toEqual(shown);
    stdin.type('\x1b[F');
    text = await until((screen) => screen.includes('more 4'));
    expect(text).not.toContain('back, End follows');
  });

  it('keeps at most 1000 log lines', async () => {
    const { source, controller } = await start();
    for (let i = 0; i < 30; i++)
      source.emit({ type: 'logs', records: Array.from({ length: 100 }, (_, j) => record(`line ${i * 100 + j}`)) });
    expect(controller.model.log.length).toBeLessThanOrEqual(1000);
    expect(controller.model.log.at(-1)?.text).toBe('line 2999');
  });

  it('sends a typed command and shows its result, or its refusal in red', async () => {
    const { source, stdin, until, controller } = await start();
    stdin.type('pause');
    await until((screen) => screen.includes('improv> pause'));
    stdin.type('\r');
    let text = await until((screen) => screen.includes('pause: done'));
    expect(source.lines).toEqual(['pause']);
    expect(text).toMatch(/improv> pause\n.*pause: done, the pipeline is running/);

    source.answer = () => ({ ok: false, code: 'refused', message: 'the pipeline is paused; resume it first' });
    stdin.type('pause\r');
    text = await until((screen) => screen.includes('refused: the pipeline is paused'));
    const segments = renderScreen(controller.model, controller.view()).flat();
    expect(segments.find((segment) => segment.text.startsWith('refused:'))?.color).toBe('red');
    expect(segments.find((segment) => segment.text.startsWith('pause: done'))?.color).toBe('green');

    // Up brings the last line back.
    stdin.type('\x1b[A');
    text = await until((screen) => /improv> pause/.test(screen.split('\n').at(-2) ?? ''));
    expect(text.split('\n').at(-2)).toMatch(/^improv> pause/);
  });

  it('completes rev<Tab> to revive and the actor after it', async () => {
    const { source, stdin, until, controller } = await start();
    stdin.type('rev');
    stdin.type('\t');
    await until((screen) => /^improv> revive *$/m.test(screen));
    expect(controller.editor.text).toBe('revive ');
    stdin.type('Pro\t');
    await until((screen) => screen.includes('improv> revive Processor'));
    stdin.type('\r');
    await until((screen) => screen.includes('revive Processor: done'));
    expect(source.lines).toEqual(['revive Processor']);
  });

  it('F7 asks which failed actor to revive', async () => {
    const { source, stdin, until } = await start();
    source.emit({ type: 'metrics', metrics: snapshot(5) });
    source.emit({
      type: 'event',
      event: { type: 'actor-state', actor: 'Processor', state: 'failed', previous: 'running' },
    });
    await until((screen) => /^Processor +failed/m.test(screen));
    stdin.type(F[7]);
    const text = await until((screen) => screen.includes('improv> revive Processor'));
    expect(text).toContain('Enter revives it');
    expect(source.lines).toEqual([]);
  });

  it('F-keys give commands; Ctrl-D detaches without a command', async () => {
    const { source, stdin, until, done } = await start();
    stdin.type('\x1b[15~'); // F5
    await until((screen) => screen.includes('improv> resume'));
    expect(source.lines).toEqual(['resume']);
    stdin.type('\x04');
    expect(await done).toBe('detach');
    expect(source.lines).toEqual(['resume']);
  });

  it('Ctrl-C quits the pipeline and ends when the source closes', async () => {
    const { source, stdin, done } = await start();
    source.answer = (line) => {
      if (line === 'quit') setTimeout(() => source.end(), 10);
      return { ok: true, message: 'quitting' };
    };
    stdin.type('\x03');
    expect(await done).toBe('closed');
    expect(source.lines).toEqual(['quit']);
  });

  it('never writes wider than the terminal, and follows a resize', async () => {
    const long = ['AVeryLongActorNameThatGoesOnAndOnForever', 'Processor', 'Sink'];
    for (const columns of [80, 60, 40]) {
      const { source, stdout, until } = await start({ columns, rows: 24, actors: long });
      source.emit({
        type: 'metrics',
        metrics: snapshot(123456.7, {
          actors: long.map((name) => actor(name, { stepsPerSecond: 123456.7, errors: 1e9, restarts: 12345 })),
          links: [link(long[0]!, 'Processor', { depth: 1e6, capacity: 1e7, dropped: 1e12 })],
        }),
      });
      source.emit({ type: 'logs', records: [record('x'.repeat(300), 'error', long[0])] });
      await until((screen) => screen.includes('ERROR'));
      expect(widest(stdout)).toBeLessThanOrEqual(columns);
    }
    const { stdout, until } = await start({ columns: 120, rows: 40 });
    await until((screen) => screen.includes('F1 keys'));
    stdout.columns = 50;
    stdout.emit('resize');
    const text = await until((screen) => !screen.includes('F1 keys'));
    for (const line of text.split('\n')) expect(Array.from(line).length).toBeLessThanOrEqual(50);
  });

  it('draws a handful of frames for 1000 messages that arrive at once', async () => {
    const { source, stdout, until } = await start();
    await until((screen) => screen.includes('ACTOR'));
    const before = stdout.frames.length;
    for (let i = 0; i < 1000; i++) {
      if (i % 10 === 0) source.emit({ type: 'metrics', metrics: snapshot(i) });
      else source.emit({ type: 'logs', records: [record(`message ${i}`)] });
    }
    await until((screen) => screen.includes('message 999'));
    // A few more redraw periods: nothing is left to draw.
    await new Promise((resolve) => setTimeout(resolve, 350));
    const frames = stdout.frames.length - before;
    expect(frames).toBeGreaterThanOrEqual(1);
    expect(frames).toBeLessThan(10);
  });
});

describe('the live UI (top)', () => {
  it('shows the tables only, and q leaves', async () => {
    const { source, stdin, until, done } = await start({ mode: 'top' });
    source.emit({ type: 'metrics', metrics: snapshot(7) });
    const text = await until((screen) => /^Generator +running/m.test(screen));
    expect(text).toMatch(/^improv top minimal-3fa2 +running/);
    expect(text).toContain('LINK');
    expect(text).not.toContain('improv>');
    stdin.type('q');
    expect(await done).toBe('quit');
    expect(source.lines).toEqual([]);
  });
});

describe('decodeKeys', () => {
  it('tells F-keys, arrows, Alt and Ctrl apart, and splits typed runs', () => {
    expect(decodeKeys('\x1bOQ')).toEqual([{ type: 'fn', n: 2 }]);
    expect(decodeKeys('\x1b[21~')).toEqual([{ type: 'fn', n: 10 }]);
    expect(decodeKeys('\x1b[[A')).toEqual([{ type: 'fn', n: 1 }]);
    expect(decodeKeys('\x1b[1;5A')).toEqual([{ type: 'key', name: 'up' }]);
    expect(decodeKeys('\x1bp')).toEqual([{ type: 'alt', char: 'p' }]);
    expect(decodeKeys('\x1b')).toEqual([{ type: 'key', name: 'escape' }]);
    expect(decodeKeys('\x04')).toEqual([{ type: 'ctrl', letter: 'd' }]);
    expect(decodeKeys('rev\tx\r')).toEqual([
      { type: 'text', text: 'rev' },
      { type: 'key', name: 'tab' },
      { type: 'text', text: 'x' },
      { type: 'key', name: 'enter' },
    ]);
    expect(decodeKeys('a\x7f')).toEqual([
      { type: 'text', text: 'a' },
      { type: 'key', name: 'backspace' },
    ]);
  });
});
