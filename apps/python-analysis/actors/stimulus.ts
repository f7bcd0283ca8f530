import { Actor } from '@improv/core';
import type { AnalysisMessage, ControlMessage, Target } from './messages.ts';

/** The value at fraction `q` (0…1) of sorted `values`. */
function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

const ms = (value: number) => `${value.toFixed(1)} ms`;
const describe = (target: Target | null | undefined) =>
  target ? `cell ${target.cell} at (${target.x}, ${target.y})` : 'none';

/**
 * Closes the loop: takes the analysis's results, sends each new stimulus it decides to the camera
 * (`q_out` → `Camera.q_ctl`), and logs once a second the frame rate, the loop's latency (from the
 * camera making a frame to its result arriving here) and the stimulus; at stop, a summary.
 */
export class Stimulus extends Actor {
  private analysed = 0;
  private latencies: number[] = [];
  private sent: number | null | undefined;
  private changes = 0;
  private trials = 0;
  private responded = 0;
  private leftOut: string[] = [];
  private current: Target | null = null;
  private firstAt = 0;
  private lastAt = 0;
  private window = { since: 0, frames: 0, latencies: [] as number[] };

  override async runStep(): Promise<void> {
    const result = await this.input<AnalysisMessage>('q_in').get();
    const now = Date.now();
    const latency = now - result.t;
    this.analysed += 1;
    this.latencies.push(latency);
    if (this.firstAt === 0) {
      this.firstAt = now;
      this.window.since = now;
    }
    this.lastAt = now;
    this.window.frames += 1;
    this.window.latencies.push(latency);

    if (result.result) {
      this.trials += 1;
      if (result.result.responds) this.responded += 1;
      else this.leftOut.push(`cell ${result.result.cell} at (${result.result.x}, ${result.result.y})`);
    }
    // A new decision (or the first): the camera gets it. Before the cells are found there is none to send.
    const id = result.stimulus?.id ?? null;
    if (id !== this.sent && !(this.sent === undefined && id === null)) {
      this.sent = id;
      this.current = result.stimulus;
      this.changes += 1;
      await this.output<ControlMessage>('q_out').put(result.stimulus);
    }

    const elapsed = now - this.window.since;
    if (elapsed >= 1000) {
      const sorted = this.window.latencies.sort((a, b) => a - b);
      const cells = result.cells.length ? `${result.cells.length} cells` : 'finding cells';
      this.log.info(
        `${((this.window.frames * 1000) / elapsed).toFixed(1)} frames/s, loop latency median ${ms(quantile(sorted, 0.5))} ` +
          `(p99 ${ms(quantile(sorted, 0.99))}); ${cells}; stimulus: ${describe(this.current)}`,
      );
      this.window = { since: now, frames: 0, latencies: [] };
    }
  }

  override stop(): void {
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const seconds = (this.lastAt - this.firstAt) / 1000;
    this.log.info(
      `analysed ${this.analysed} frames in ${seconds.toFixed(1)} s; loop latency camera → analysis → stimulus: ` +
        `median ${ms(quantile(sorted, 0.5))}, p99 ${ms(quantile(sorted, 0.99))}; ` +
        `the stimulus changed ${this.changes} times (${this.trials} trials, ${this.responded} with a response; ` +
        `left out: ${this.leftOut.length ? this.leftOut.join(', ') : 'none'})`,
    );
  }
}
