import { Actor, type OptionTypes } from '@improv/core';

/** The options of both actors of this file. */
export interface SenderOptions {
  /** Messages per second. Default 200. */
  rate?: number;
  /** Values per message. Default 5. */
  size?: number;
}

/** One reading: its number, when it was taken, and its values (sent in the message itself). */
export interface Reading {
  n: number;
  t: number;
  values: number[];
}

/** The reply the Responder sends back for a reading. */
export interface Reply {
  n: number;
  sum: number;
}

const optionTypes: OptionTypes = { rate: 'number', size: 'number' };

function reading(n: number, size: number): Reading {
  return { n, t: Date.now(), values: Array.from({ length: size }, () => Math.random()) };
}

/** improv's PUB side: sends a reading `rate` times a second and never waits for anyone. */
export class Publisher extends Actor<SenderOptions> {
  static override optionTypes = optionTypes;
  private sent = 0;

  override async runStep(): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 1000 / (this.options.rate ?? 200)));
    await this.q_out.put(reading(this.sent, this.options.size ?? 5));
    this.sent += 1;
  }

  override stop(): void {
    this.log.info(`published ${this.sent} readings`);
  }
}

/** improv's REQ side: sends a reading, then waits for its reply before the next one (a closed loop). */
export class Requester extends Actor<SenderOptions> {
  static override optionTypes = optionTypes;
  private replies = 0;
  private wrong = 0;

  override async runStep(): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 1000 / (this.options.rate ?? 200)));
    const request = reading(this.replies, this.options.size ?? 5);
    await this.q_out.put(request);
    const reply = (await this.q_in.get()) as Reply;
    const sum = request.values.reduce((total, value) => total + value, 0);
    if (reply.n !== request.n || Math.abs(reply.sum - sum) > 1e-9) this.wrong += 1;
    this.replies += 1;
  }

  override stop(): void {
    this.log.info(`got ${this.replies} replies, ${this.wrong} wrong`);
  }
}
