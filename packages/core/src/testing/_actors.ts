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

/** Sends `{ source, n }` with n = 0, 1, 2, ... (at most `limit`, then idles), every `intervalMs`. */
export class Counter extends Actor<{ limit?: number; intervalMs?: number }> {
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
    await this.q_out.put({ source: this.name, n: this.n });
    this.n += 1;
    if (this.options.intervalMs) await sleep(this.options.intervalMs);
  }
  override stop(): void {
    this.counts.stops += 1;
    result(this, { ...this.counts, sent: this.n });
  }
}

/** Receives messages and reports how many came from each source and whether each source was in order. */
export class Collector extends Actor {
  private readonly counts: Counts = { setup: 0, steps: 0, stops: 0 };
  private readonly received: Record<string, number> = {};
  private outOfOrder = 0;
  override setup(): void {
    this.counts.setup += 1;
  }
  override async runStep(): Promise<void> {
    const message = (await this.q_in.get()) as { source: string; n: number };
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

/** The constructor throws, so the actor cannot be loaded. */
export class FailingConstructor extends Actor {
  constructor(context: ActorContext) {
    super(context);
    throw new Error('constructor exploded on purpose');
  }
  override runStep(): void {}
}

/** Kills its own worker during the run: `how` is `exit` (process.exit), `throw` (uncaught error) or `oom`. */
export class Dying extends Actor<{ how: 'exit' | 'throw' | 'oom'; afterSteps?: number }> {
  private steps = 0;
  override async runStep(): Promise<void> {
    this.steps += 1;
    if (this.steps < (this.options.afterSteps ?? 3)) {
      await sleep(2);
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
