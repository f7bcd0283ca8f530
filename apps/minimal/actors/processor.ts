import { Actor } from '@improv/core';

/** A frame notice as the Generator sends it. */
export interface FrameMessage {
  key: string;
  frame: number;
}

/** improv's minimal Processor: reads each frame from the store and keeps a running average. */
export class Processor extends Actor {
  private count = 0;
  private sum: Float64Array | undefined;

  override async runStep(): Promise<void> {
    const { key } = (await this.q_in.get()) as FrameMessage;
    const frame = await this.store.get<Float64Array>(key);
    this.sum ??= new Float64Array(frame.length);
    for (let i = 0; i < frame.length; i++) this.sum[i] = (this.sum[i] ?? 0) + (frame[i] ?? 0);
    this.count += 1;
    await this.store.delete(key);
  }

  /** The running average so far (empty before the first frame). */
  average(): number[] {
    return this.sum ? Array.from(this.sum, (value) => value / this.count) : [];
  }

  override stop(): void {
    const average = this.average().map((value) => value.toFixed(2));
    this.log.info(`processed ${this.count} frames; average [${average.join(', ')}]`);
  }
}
