import { Actor, type OptionTypes } from '@improv/core';
import type { ControlMessage, FrameMessage, Target } from './messages.ts';

interface CameraOptions {
  /** Frames a second (default 50). */
  rate?: number;
  /** Frames are size × size float32 (default 256). */
  size?: number;
  /** How many cells (default 6). */
  cells?: number;
  /** How many of them do not respond to the stimulus (default 1): what the analysis has to find out. */
  silent?: number;
  /** How much a stimulated cell brightens, in units of its own brightness (default 1.5). */
  boost?: number;
  /** Seeds the cells' places and flicker (default 7): the same seed, the same sample. */
  seed?: number;
}

interface Cell {
  x: number;
  y: number;
  /** Peak brightness without stimulus. */
  base: number;
  /** Flicker: ±25 % at this many cycles a second, from this phase. */
  hz: number;
  phase: number;
  responds: boolean;
  /** The stimulus's effect now: rises toward `boost` while stimulated, decays after (a calcium indicator's few frames). */
  lit: number;
}

/** Gaussian spots of this width (pixels), drawn out to `REACH` pixels from the centre. */
const SIGMA = 2.5;
const REACH = 8;

/** mulberry32: a small seeded generator, so the cells are the same every run. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A synthetic two-photon microscope: `size`×`size` float32 frames of noise with a few flickering
 * cells, `rate` a second, into the store; `{ key, t, n, stimulus }` onto `q_out`. It reads the next
 * stimulus from `q_ctl` without waiting and shines it on the cell at that place: from the next frame
 * that cell brightens (unless it is one of the `silent` ones).
 */
export class Camera extends Actor<CameraOptions> {
  static override optionTypes: OptionTypes = {
    rate: 'number',
    size: 'number',
    cells: 'number',
    silent: 'number',
    boost: 'number',
    seed: 'number',
  };
  private cells: Cell[] = [];
  private stamp = new Float32Array(0);
  private n = 0;
  private started = 0;
  private stimulus: Target | null = null;
  private stimulated: Cell | undefined;
  private changes = 0;

  override setup(): void {
    const size = this.size;
    const count = this.options.cells ?? 6;
    const silent = this.options.silent ?? 1;
    if (size < 4 * REACH) throw new Error(`size must be at least ${4 * REACH}, not ${size}`);
    const random = seeded(this.options.seed ?? 7);
    const margin = 2 * REACH;
    for (let tries = 0; this.cells.length < count && tries < 10_000; tries++) {
      const x = Math.round(margin + random() * (size - 2 * margin));
      const y = Math.round(margin + random() * (size - 2 * margin));
      if (this.cells.some((cell) => Math.hypot(cell.x - x, cell.y - y) < 3 * REACH)) continue;
      this.cells.push({
        x,
        y,
        base: 0.8 + 0.4 * random(),
        hz: 0.2 + random(),
        phase: 2 * Math.PI * random(),
        responds: this.cells.length < count - silent,
        lit: 0,
      });
    }
    if (this.cells.length < count) throw new Error(`${count} cells do not fit in a ${size}×${size} frame`);
    const side = 2 * REACH + 1;
    this.stamp = new Float32Array(side * side);
    for (let dy = -REACH; dy <= REACH; dy++) {
      for (let dx = -REACH; dx <= REACH; dx++) {
        this.stamp[(dy + REACH) * side + dx + REACH] = Math.exp(-(dx * dx + dy * dy) / (2 * SIGMA * SIGMA));
      }
    }
    const where = (cell: Cell) => `(${cell.x}, ${cell.y})`;
    const quiet = this.cells.filter((cell) => !cell.responds);
    this.log.info(
      `${size}×${size} frames at ${this.rate}/s; ${this.cells.length} cells at ${this.cells.map(where).join(' ')}` +
        (quiet.length ? `; not responding to the stimulus: ${quiet.map(where).join(' ')}` : ''),
    );
  }

  override async runStep(): Promise<void> {
    if (this.started === 0) this.started = Date.now() - (this.n * 1000) / this.rate;
    // Keep time: frame n is due n/rate seconds after the first one (no drift from slow steps).
    const due = this.started + (this.n * 1000) / this.rate;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    else if (wait < -1000) this.started = Date.now() - (this.n * 1000) / this.rate; // fell behind: start over

    this.readControl();
    const frame = this.makeFrame();
    const key = await this.store.put(frame, { shape: [this.size, this.size] });
    const message: FrameMessage = { key, t: Date.now(), n: this.n++, stimulus: this.stimulus };
    await this.output<FrameMessage>('q_out').put(message);
  }

  override stop(): void {
    this.readControl(); // a stimulus decided after the last frame: taken, so none is left on the link at quit
    this.log.info(`made ${this.n} frames; the stimulus changed ${this.changes} times`);
    this.started = 0; // a later run keeps the rate from its own start
  }

  private get size(): number {
    return this.options.size ?? 256;
  }

  private get rate(): number {
    return this.options.rate ?? 50;
  }

  /** The newest stimulus on `q_ctl`, if any came since the last frame; never waits. */
  private readControl(): void {
    const control = this.input<ControlMessage>('q_ctl');
    let next: ControlMessage | undefined;
    for (let message = control.tryGet(); message !== undefined; message = control.tryGet()) next = message;
    if (next === undefined) return;
    this.stimulus = next;
    this.changes += 1;
    // The light lands on whichever cell is at that place (within a few pixels), if any.
    this.stimulated = next
      ? this.cells.find((cell) => Math.hypot(cell.x - next.x, cell.y - next.y) <= REACH / 2)
      : undefined;
  }

  private makeFrame(): Float32Array {
    const size = this.size;
    const frame = new Float32Array(size * size);
    for (let i = 0; i < frame.length; i++) frame[i] = Math.random() * 0.5;
    const seconds = this.n / this.rate;
    const boost = this.options.boost ?? 1.5;
    const side = 2 * REACH + 1;
    for (const cell of this.cells) {
      const on = cell === this.stimulated && cell.responds;
      cell.lit = 0.7 * cell.lit + 0.3 * (on ? boost : 0);
      const flicker = 1 + 0.25 * Math.sin(2 * Math.PI * cell.hz * seconds + cell.phase);
      const peak = cell.base * (flicker + cell.lit);
      for (let dy = -REACH; dy <= REACH; dy++) {
        const row = (cell.y + dy) * size + cell.x;
        for (let dx = -REACH; dx <= REACH; dx++) {
          frame[row + dx] = frame[row + dx]! + peak * this.stamp[(dy + REACH) * side + dx + REACH]!;
        }
      }
    }
    return frame;
  }
}
