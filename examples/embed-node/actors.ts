import { Actor } from '@improv/core';

/** Writes `frames` frames of `size` samples in place in shared memory and sends their keys. */
export class Camera extends Actor<{ frames: number; size: number }> {
  private sent = 0;

  override async runStep(): Promise<void> {
    if (this.sent === this.options.frames) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      return;
    }
    const { key, array } = await this.store.allocate('float32', [this.options.size]);
    for (let i = 0; i < array.length; i++) array[i] = this.sent + i / array.length;
    await this.q_out.put({ key, frame: this.sent });
    this.sent += 1;
  }
}

/** Reads every frame as a zero-copy view and puts the frame's mean on `q_out` (the program reads it). */
export class Mean extends Actor {
  override async runStep(): Promise<void> {
    const { key, frame } = (await this.q_in.get()) as { key: string; frame: number };
    const samples = await this.store.get<Float32Array>(key);
    let total = 0;
    for (const value of samples) total += value;
    await this.store.delete(key);
    await this.q_out.put({ frame, mean: total / samples.length });
  }
}
