import { Actor } from '@improv/core';

/** What the Generator puts on its link. */
export interface FrameMessage {
  key: string;
  frame: number;
  /** When it was sent, in milliseconds since the Unix epoch. */
  t: number;
}

/** Averages every frame it gets: the place for your analysis. */
export class Processor extends Actor {
  private count = 0;
  private sum: Float64Array | undefined;

  override async runStep(): Promise<void> {
    const { key } = (await this.q_in.get()) as FrameMessage;
    const frame = await this.store.get<Float64Array>(key);
    this.sum ??= new Float64Array(frame.length);
    let total = 0;
    for (let i = 0; i < frame.length; i++) {
      this.sum[i] = (this.sum[i] ?? 0) + (frame[i] ?? 0);
      total += frame[i] ?? 0;
    }
    this.count += 1;
    // On the dashboard (improv run --dashboard): this frame's mean and the running average, over time.
    // `publishing` is false while no page watches: then nothing is computed or kept.
    if (this.publishing) this.publish('mean', { frame: total / frame.length, running: this.average() });
    // Read and done with: free its room in the store.
    await this.store.delete(key);
  }

  /** The mean of every value of every frame so far. */
  private average(): number {
    if (!this.sum || this.count === 0) return Number.NaN;
    let total = 0;
    for (const value of this.sum) total += value;
    return total / this.sum.length / this.count;
  }

  override stop(): void {
    const average = this.sum ? Array.from(this.sum, (value) => (value / this.count).toFixed(3)) : [];
    this.log.info(`processed ${this.count} frames; average [${average.join(', ')}]`);
  }
}
