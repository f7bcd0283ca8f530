import { Actor, type OptionTypes } from '@improv/core';
import { footprint, layNeurons } from './neurons.ts';

export interface TracesOptions {
  /** The frames' pixels per side, and the neurons' seed and count: the Microscope's (defaults 512, 7, 12). */
  size?: number;
  seed?: number;
  neurons?: number;
}

/** How fast the baseline F0 of a trace rises back after a transient (per frame); it falls at once. */
const BASELINE_RISE = 0.002;

/**
 * Extracts each neuron's trace from every frame: the mean of its region (the pixels within 1.5
 * sigmas of its centre, known from the Microscope's seed), as ΔF/F against a running baseline F0
 * (the lower envelope of the trace). Publishes them as `traces` ({ n0, n1, ... }: a time series per
 * neuron on the dashboard) and passes the frame on (`q_out`) for display; the frame's store value is
 * deleted by whoever reads it last (the Plot) or by the link that drops it.
 */
export class Traces extends Actor<TracesOptions> {
  static override optionTypes: OptionTypes = { size: 'number', seed: 'number', neurons: 'number' };

  private regions: Int32Array[] = [];
  private baseline: number[] = [];
  private frames = 0;

  override setup(): void {
    const size = this.options.size ?? 512;
    this.regions = layNeurons(size, this.options.neurons ?? 12, this.options.seed ?? 7).map(
      (neuron) => footprint(neuron, size, 1.5).index,
    );
    this.baseline = this.regions.map(() => Number.NaN);
  }

  override async runStep(): Promise<void> {
    const message = (await this.q_in.get()) as { key: string; frame: number; t: number };
    const { array } = await this.store.getArray<Uint16Array>(message.key);
    const traces: Record<string, number> = {};
    this.regions.forEach((region, n) => {
      let sum = 0;
      for (let i = 0; i < region.length; i++) sum += array[region[i]!]!;
      const f = sum / region.length;
      const previous = this.baseline[n]!;
      const f0 = Number.isNaN(previous) || f < previous ? f : previous + (f - previous) * BASELINE_RISE;
      this.baseline[n] = f0;
      traces[`n${n}`] = (f - f0) / f0;
    });
    this.publish('traces', traces);
    this.frames += 1;
    await this.q_out.put({ key: message.key, frame: message.frame, t: message.t });
  }

  override stop(): void {
    this.log.info(`extracted ${this.regions.length} traces from ${this.frames} frames`);
  }
}
