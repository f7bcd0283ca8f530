import { Actor } from '@improv/core';
import { type FrameMessage, pid, runtime } from './where.ts';

/** A 3×3 box blur of each frame: a new frame in the store, the old one deleted. */
export class Denoise extends Actor {
  override setup(): void {
    this.log.info(`on ${runtime}, pid ${pid}`);
  }

  override async runStep(): Promise<void> {
    const message = await this.input<FrameMessage>('q_in').get();
    const frame = await this.store.get<Float32Array>(message.key);
    const size = Math.round(Math.sqrt(frame.length));
    const out = new Float32Array(frame.length);
    for (let y = 1; y < size - 1; y++) {
      for (let x = 1; x < size - 1; x++) {
        let sum = 0;
        for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) sum += frame[(y + dy) * size + x + dx]!;
        out[y * size + x] = sum / 9;
      }
    }
    const key = await this.store.put(out, { shape: [size, size] });
    await this.store.delete(message.key);
    await this.output<FrameMessage>('q_out').put({ ...message, key, via: [...message.via, `Denoise@${runtime}`] });
  }
}
