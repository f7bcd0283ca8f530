import { Actor, type OptionTypes } from '@improv/core';
import { type FrameMessage, pid, runtime } from './where.ts';

const SIZE = 64;

/** A 64×64 frame of noise with a bright spot that circles the middle, `rate` frames a second. */
export class Camera extends Actor<{ rate?: number }> {
  static override optionTypes: OptionTypes = { rate: 'number' };
  private n = 0;

  override setup(): void {
    this.log.info(`on ${runtime}, pid ${pid}`);
  }

  override async runStep(): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 1000 / (this.options.rate ?? 100)));
    const frame = new Float32Array(SIZE * SIZE);
    for (let i = 0; i < frame.length; i++) frame[i] = Math.random() * 0.5;
    const angle = this.n / 50;
    const cx = Math.round(SIZE / 2 + 20 * Math.cos(angle));
    const cy = Math.round(SIZE / 2 + 20 * Math.sin(angle));
    for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) frame[(cy + dy) * SIZE + cx + dx] = 4;
    const key = await this.store.put(frame, { shape: [SIZE, SIZE] });
    const message: FrameMessage = { n: this.n++, key, via: [`Camera@${runtime}`] };
    await this.output<FrameMessage>('q_out').put(message);
  }
}
