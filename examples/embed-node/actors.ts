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

/** Reads every frame as a zero-copy view, keeps the mean of all samples, and reports it at the end. */
export class Mean extends Actor<{ frames: number }> {
  private frames = 0;
  private total = 0;
  private samples = 0;

  override async runStep(): Promise<void> {
    const { key } = (await this.q_in.get()) as { key: string };
    const frame = await this.store.get<Float32Array>(key);
    for (const value of frame) this.total += value;
    this.samples += frame.length;
    await this.store.delete(key);
    this.frames += 1;
    if (this.frames === this.options.frames) {
      this.log.info(`RESULT ${JSON.stringify({ frames: this.frames, mean: this.total / this.samples })}`);
    }
  }
}
