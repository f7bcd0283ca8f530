/**
 * The pipeline `npm run bench -- --dashboard` measures: a camera writing uint16 frames into the
 * store as fast as it can (or at `rate` frames a second), an analysis that reads each frame,
 * publishes its mean (a series point per frame) and hands the frame on to the built-in `Plot`
 * (drop-oldest: the display takes the newest), which shows it as an image while a page watches.
 * @module
 */
import { Actor, type OptionTypes } from '@improv/core';

/** Frames of `size`×`size` uint16, flat out (no `rate`) or `rate` a second. */
export class Camera extends Actor<{ size?: number; rate?: number }> {
  static override optionTypes: OptionTypes = { size: 'number', rate: 'number' };
  private n = 0;

  override async runStep(): Promise<void> {
    if (this.options.rate !== undefined) await new Promise((resolve) => setTimeout(resolve, 1000 / this.options.rate!));
    const size = this.options.size ?? 256;
    const { key, array } = await this.store.allocate('uint16', [size, size]);
    // A moving gradient: cheap to write, and a picture that changes.
    const shift = this.n & 0xff;
    for (let row = 0; row < size; row++) array.fill((row + shift) * 64, row * size, (row + 1) * size);
    await this.q_out.put({ key, n: this.n, t: Date.now() });
    this.n += 1;
  }
}

/** Reads each frame, publishes its mean, passes the frame on to the display. */
export class Analysis extends Actor {
  override async runStep(): Promise<void> {
    const message = (await this.q_in.get()) as { key: string };
    const { array } = await this.store.getArray<Uint16Array>(message.key);
    let sum = 0;
    for (let index = 0; index < array.length; index += 64) sum += array[index]!;
    this.publish('mean', (sum * 64) / array.length);
    await this.q_out.put(message);
  }
}
