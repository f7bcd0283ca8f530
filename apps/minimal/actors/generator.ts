import { Actor, type OptionTypes } from '@improv/core';

/** Options of the Generator (keys of its YAML entry). */
export interface GeneratorOptions {
  /** Frames per second; 0 sends as fast as the pipeline takes them. Default 200. */
  rate?: number;
  /** Elements per frame. Default 5. */
  size?: number;
}

/**
 * improv's minimal Generator: puts random vectors into the store and sends their keys.
 * Each frame is written in place in shared memory (`store.allocate`), so no copy is made at all.
 */
export class Generator extends Actor<GeneratorOptions> {
  /** Declared, so `improv validate` refuses a misspelt or mistyped option at its line. */
  static override optionTypes: OptionTypes = { rate: 'number', size: 'number' };

  private sent = 0;
  private next = 0;

  override setup(): void {
    this.log.info(`will send ${this.size}-element frames at ${this.rate || 'full'} ${this.rate ? 'Hz' : 'speed'}`);
  }

  get rate(): number {
    return this.options.rate ?? 200;
  }

  get size(): number {
    return this.options.size ?? 5;
  }

  override async runStep(): Promise<void> {
    if (this.rate > 0) {
      const now = performance.now();
      if (this.next === 0 || now - this.next > 1000) this.next = now;
      if (this.next > now) await new Promise((resolve) => setTimeout(resolve, this.next - now));
      this.next += 1000 / this.rate;
    }
    const { key, array } = await this.store.allocate('float64', this.size);
    for (let i = 0; i < array.length; i++) array[i] = Math.random() * 100;
    await this.q_out.put({ key, frame: this.sent });
    this.sent += 1;
  }

  override stop(): void {
    this.log.info(`sent ${this.sent} frames`);
  }
}
