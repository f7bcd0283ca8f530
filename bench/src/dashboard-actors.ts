/**
 * The pipeline `npm run bench -- --dashboard` measures: a camera writing uint16 frames into the
 * store as fast as it can (or at `rate` frames a second), an analysis that reads each frame,
 * publishes its mean (a series point per frame) and hands the frame on to the built-in `Plot`
 * (drop-oldest: the display takes the newest), which shows it as an image while a page watches.
 * @module
 */
import { Actor, type OptionTypes } from '@improv/core';

/**
 * Frames of `size`×`size` uint16, flat out (no `rate`) or `rate` a second. Paced on an absolute
 * schedule (frame n is due n / rate s after the first), so neither the time a frame takes to write
 * nor timers' whole-millisecond granularity slows it: 60 Hz gives 60 frames a second (a
 * setTimeout(1000 / rate) after each frame's work gave fewer). A camera that falls more than a
 * frame behind skips ahead (as a real one drops frames) rather than sending a burst to catch up.
 */
export class Camera extends Actor<{ size?: number; rate?: number }> {
  static override optionTypes: OptionTypes = { size: 'number', rate: 'number' };
  private n = 0;
  /** When the next frame is due (performance.now() ms), once pacing has started. */
  private due: number | undefined;

  override async runStep(): Promise<void> {
    if (this.options.rate !== undefined) await this.pace(1000 / this.options.rate);
    const size = this.options.size ?? 256;
    const { key, array } = await this.store.allocate('uint16', [size, size]);
    // A moving gradient: cheap to write, and a picture that changes.
    const shift = this.n & 0xff;
    for (let row = 0; row < size; row++) array.fill((row + shift) * 64, row * size, (row + 1) * size);
    await this.q_out.put({ key, n: this.n, t: Date.now() });
    this.n += 1;
  }

  /** Waits until the next frame is due, then schedules the one after it `period` ms later. */
  private async pace(period: number): Promise<void> {
    const now = performance.now();
    this.due ??= now;
    if (now - this.due > period) this.due = now; // more than a frame late: skip, no burst
    const wait = this.due - now;
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    this.due += period;
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
