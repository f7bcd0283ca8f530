import { Actor } from '@improv/core';

/** Sends n = 1 … count, once each. */
export class Counter extends Actor<{ count: number }> {
  private n = 0;

  override async runStep(): Promise<void> {
    if (this.n === this.options.count) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      return;
    }
    this.n += 1;
    await this.q_out.put(this.n);
  }
}

/** Raises each number it gets to `power` and sends `{ power, value }` on. */
export class Power extends Actor<{ power: number }> {
  override async runStep(): Promise<void> {
    const n = (await this.q_in.get()) as number;
    await this.q_out.put({ power: this.options.power, value: n ** this.options.power });
  }
}

/** Sums what the Power actors send (fan-in) per power, and reports once all have arrived. */
export class Sum extends Actor<{ expected: number }> {
  private readonly sums = new Map<number, number>();
  private received = 0;

  override async runStep(): Promise<void> {
    const { power, value } = (await this.q_in.get()) as { power: number; value: number };
    this.sums.set(power, (this.sums.get(power) ?? 0) + value);
    this.received += 1;
    if (this.received === this.options.expected) {
      this.log.info(`RESULT ${JSON.stringify(Object.fromEntries(this.sums))}`);
    }
  }
}
