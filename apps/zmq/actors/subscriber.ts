import { Actor } from '@improv/core';
import type { Reading, Reply } from './publisher.ts';

/** improv's SUB side: reads every reading and keeps a running mean of its values. */
export class Subscriber extends Actor {
  private count = 0;
  private sum = 0;
  private values = 0;
  private lastN = -1;
  private outOfOrder = 0;

  override async runStep(): Promise<void> {
    const message = (await this.q_in.get()) as Reading;
    if (message.n <= this.lastN) this.outOfOrder += 1;
    this.lastN = message.n;
    for (const value of message.values) this.sum += value;
    this.values += message.values.length;
    this.count += 1;
  }

  override stop(): void {
    const mean = this.values === 0 ? 0 : this.sum / this.values;
    this.log.info(`received ${this.count} readings, ${this.outOfOrder} out of order; mean ${mean.toFixed(3)}`);
  }
}

/** improv's REP side: answers each reading with the sum of its values. */
export class Responder extends Actor {
  private answered = 0;

  override async runStep(): Promise<void> {
    const request = (await this.q_in.get()) as Reading;
    const reply: Reply = { n: request.n, sum: request.values.reduce((total, value) => total + value, 0) };
    await this.q_out.put(reply);
    this.answered += 1;
  }

  override stop(): void {
    this.log.info(`answered ${this.answered} requests`);
  }
}
