import { Actor, type OptionTypes } from '@improv/core';

/** The options this actor takes from its entry in pipeline.yaml. */
export interface GeneratorOptions {
  /** Frames per second. Default 100. */
  rate?: number;
  /** Values per frame. Default 8. */
  size?: number;
}

/** Sends a frame of random values `rate` times a second: stands in for a camera or a sensor. */
export class Generator extends Actor<GeneratorOptions> {
  /** Declared, so `improv validate` refuses a misspelt or mistyped option at its line. */
  static override optionTypes: OptionTypes = { rate: 'number', size: 'number' };

  private sent = 0;

  override setup(): void {
    this.log.info(`sending ${this.options.size ?? 8} values, ${this.options.rate ?? 100} times a second`);
  }

  override async runStep(): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 1000 / (this.options.rate ?? 100)));
    // The frame goes into the store; the link carries only its key (and, in t, when it was sent:
    // improv top and the live UI show the link's latency from it).
    const { key, array } = await this.store.allocate('float64', this.options.size ?? 8);
    for (let i = 0; i < array.length; i++) array[i] = Math.random();
    await this.q_out.put({ key, frame: this.sent, t: Date.now() });
    this.sent += 1;
  }

  override stop(): void {
    this.log.info(`sent ${this.sent} frames`);
  }
}
