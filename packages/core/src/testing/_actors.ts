/**
 * Actors used by the pipeline conformance suite. Each reports what happened through its log, so
 * the suite observes them exactly as a user would.
 * @module
 */
import { Actor, type ActorContext } from '../actor.ts';

interface Counts {
  setup: number;
  steps: number;
  stops: number;
}

/** Logs `RESULT <json>` so the suite can read an actor's outcome from the pipeline log. */
function result(actor: Actor<unknown>, value: unknown): void {
  actor.log.info(`RESULT ${JSON.stringify(value)}`);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Sends `{ source, n }` with n = 0, 1, 2, ... (at most `limit`, then idles), every `intervalMs`. With
 * `bytes`, each message also carries `key`: a store value of that many bytes, which the sink deletes.
 * With `stamp`, each message carries its send time `t` (`Date.now()`), and `frame`: a 2×3 float32
 * array with its `shape`.
 */
export class Counter extends Actor<{ limit?: number; intervalMs?: number; bytes?: number; stamp?: boolean }> {
  private readonly counts: Counts = { setup: 0, steps: 0, stops: 0 };
  private n = 0;
  override setup(): void {
    this.counts.setup += 1;
  }
  override async runStep(): Promise<void> {
    this.counts.steps += 1;
    if (this.n >= (this.options.limit ?? Number.POSITIVE_INFINITY)) {
      await sleep(5);
      return;
    }
    const bytes = this.options.bytes;
    const key = bytes === undefined ? undefined : await this.store.put(new Uint8Array(bytes).fill(this.n & 255));
    const message: Record<string, unknown> = { source: this.name, n: this.n };
    if (key !== undefined) message.key = key;
    if (this.options.stamp) {
      message.t = Date.now();
      message.frame = new Float32Array(6).fill(this.n);
      message.shape = [2, 3];
    }
    await this.q_out.put(message);
    this.n += 1;
    if (this.options.intervalMs) await sleep(this.options.intervalMs);
  }
  override stop(): void {
    this.counts.stops += 1;
    result(this, { ...this.counts, sent: this.n });
  }
}

/**
 * Publishes, every `intervalMs`, `count` (n = 0, 1, 2, ...: a series), `stats` (a record of numbers;
 * field `late` from n = 10 on) and `frame` (a 4×4 uint16 array filled with n, as `{ array, shape }`,
 * from one buffer it rewrites: what a watcher gets must be a copy), and now and then `unsendable`, a
 * value holding a function.
 */
export class Publishing extends Actor<{ intervalMs?: number }> {
  private n = 0;
  private readonly frame = new Uint16Array(16);
  override async runStep(): Promise<void> {
    this.publish('count', this.n);
    this.publish('stats', this.n >= 10 ? { twice: 2 * this.n, late: -this.n } : { twice: 2 * this.n });
    this.frame.fill(this.n);
    this.publish('frame', { array: this.frame, shape: [4, 4] });
    // A value no channel can carry: dropped with one warning, and the actor goes on.
    if (this.n % 50 === 5) this.publish('unsendable', { f: () => this.n });
    this.n += 1;
    await sleep(this.options.intervalMs ?? 1);
  }
}

/** Receives messages and reports how many came from each source and whether each source was in order. */
export class Collector extends Actor<{ delayMs?: number }> {
  private readonly counts: Counts = { setup: 0, steps: 0, stops: 0 };
  private readonly received: Record<string, number> = {};
  private outOfOrder = 0;
  override setup(): void {
    this.counts.setup += 1;
  }
  override async runStep(): Promise<void> {
    const message = (await this.q_in.get()) as { source: string; n: number; key?: string };
    if (message.key !== undefined) await this.store.delete(message.key);
    if (this.options.delayMs) await sleep(this.options.delayMs);
    this.counts.steps += 1;
    const expected = this.received[message.source] ?? 0;
    if (message.n !== expected) this.outOfOrder += 1;
    this.received[message.source] = message.n + 1;
  }
  override stop(): void {
    this.counts.stops += 1;
    result(this, { ...this.counts, received: this.received, outOfOrder: this.outOfOrder });
  }
}

/** improv's Threshold pattern: gets a message, then puts it on (a signal between the two must not lose it). */
export class Relay extends Actor {
  override async runStep(): Promise<void> {
    const message = await this.q_in.get();
    await this.q_out.put(message);
  }
}

/** Forgets to await its puts (a common slip): each step sends one message and sleeps a little. */
export class Careless extends Actor {
  private n = 0;
  override async runStep(): Promise<void> {
    void this.q_out.put({ source: this.name, n: this.n++ });
    await sleep(1);
  }
}

/** Only ever puts (never reads its q_in): two of them in a cycle deadlock once the links are full. */
export class Pusher extends Actor {
  override async runStep(): Promise<void> {
    await this.q_out.put({ from: this.name });
  }
}

/** runStep() throws at once every time; with `frameInMessage` the message changes every time. */
export class Throwing extends Actor<{ frameInMessage?: boolean }> {
  private frame = 0;
  override runStep(): void {
    this.frame += 1;
    throw new Error(this.options.frameInMessage ? `bad frame ${this.frame}` : 'step exploded on purpose');
  }
}

/** setup() throws. */
export class FailingSetup extends Actor {
  override setup(): void {
    throw new Error('setup exploded on purpose');
  }
  override runStep(): void {}
}

/** runStep() throws every time; stop() reports how often it was called. */
export class FailingStep extends Actor {
  private steps = 0;
  override async runStep(): Promise<void> {
    this.steps += 1;
    await sleep(1);
    throw new RangeError('step exploded on purpose');
  }
  override stop(): void {
    result(this, { steps: this.steps });
  }
}

/** stop() throws. */
export class FailingStop extends Actor {
  override async runStep(): Promise<void> {
    await sleep(5);
  }
  override stop(): void {
    throw new Error('stop exploded on purpose');
  }
}

/** stop() takes `ms` (saving results, closing a device): a signal timeout must not cut it short. */
export class SlowStop extends Actor<{ ms: number }> {
  override async runStep(): Promise<void> {
    await sleep(5);
  }
  override async stop(): Promise<void> {
    await sleep(this.options.ms);
    result(this, { saved: true });
  }
}

/** A class whose name the console shows for an instance. */
class Point {
  readonly x: number;
  readonly y: number;
  constructor(x: number, y: number) {
    this.x = x;
    this.y = y;
  }
}

/** Writes to its console in setup(), in every way a runtime's console formats. */
export class ConsoleWriter extends Actor {
  override setup(): void {
    console.log('%d items', 3, new Map([[1, 2]]), NaN);
    console.info('%s, %i, %f, %j, %o, %O, %c100%%', 'text', 3.9, '1.5', { a: 1 }, [1], { b: 2 }, 'color: red');
    console.debug(-0, Infinity, new Set([1, 'a']), 1n, undefined, null);
    console.warn(new Point(1, 2), { a: { b: { c: { d: 1 } } } });
    console.error('failed:', new Error('written to the console on purpose'));
    this.log.info('this.log:', NaN, new Map([[1, 2]]), new Point(3, 4), 'text');
  }
  override runStep(): void {}
}

/** The constructor throws, so the actor cannot be loaded. */
export class FailingConstructor extends Actor {
  constructor(context: ActorContext) {
    super(context);
    throw new Error('constructor exploded on purpose');
  }
  override runStep(): void {}
}

/** Kills its own worker during the run: `how` is `exit` (process.exit), `throw` (uncaught error) or `oom`. */
export class Dying extends Actor<{ how: 'exit' | 'throw' | 'oom' | 'loop'; afterSteps?: number; stepMs?: number }> {
  private steps = 0;
  override async runStep(): Promise<void> {
    this.steps += 1;
    if (this.steps < (this.options.afterSteps ?? 3)) {
      // A dying source sends a little first; a dying sink reads (and then stops reading).
      if (this.links.q_out) await this.output('q_out').put({ source: this.name, n: this.steps });
      if (this.links.q_in) await this.input('q_in').get();
      await sleep(this.options.stepMs ?? 2);
      return;
    }
    switch (this.options.how) {
      case 'exit':
        (globalThis as unknown as { process: { exit(code: number): never } }).process.exit(3);
        break;
      case 'throw':
        setTimeout(() => {
          throw new Error('uncaught error on purpose');
        });
        await sleep(1000);
        break;
      case 'oom': {
        const hog: number[][] = [];
        for (;;) hog.push(new Array(1_000_000).fill(hog.length));
      }
      case 'loop':
        for (;;) {
          // never yields: only ending the worker stops it
        }
    }
  }
}

/** runStep() never returns to the event loop: only terminating the worker ends it. */
export class Stuck extends Actor {
  override runStep(): void {
    for (;;) {
      // spin
    }
  }
}
