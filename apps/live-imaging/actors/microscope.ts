import { Actor, type OptionTypes } from '@improv/core';
import { footprint, layNeurons, random } from './neurons.ts';

export interface MicroscopeOptions {
  /** Frames per second (default 30). */
  rate?: number;
  /** Pixels per side (default 512). */
  size?: number;
  /** Simulated neurons (default 12). */
  neurons?: number;
  /** Seed of the neurons' places and sizes (default 7). */
  seed?: number;
  /** Spikes per second per neuron, on average (default 0.6). */
  firing?: number;
}

/** Decay time of a calcium transient, seconds (GCaMP6s-like: fast rise, slow fall). */
const TAU_S = 0.8;
/** Noise: a table of near-Gaussian values, read from a random place each frame (no per-pixel RNG). */
const NOISE_BITS = 20;
const NOISE_SD = 14;

/**
 * A synthetic two-photon microscope: each frame is a uint16 image of a dim, uneven background with
 * neurons whose brightness follows their calcium (each spike adds a transient that decays with
 * {@link TAU_S}), plus noise. Frames are written in place into the store (`allocate`) and their keys
 * sent with the frame number and the time.
 */
export class Microscope extends Actor<MicroscopeOptions> {
  static override optionTypes: OptionTypes = {
    rate: 'number',
    size: 'number',
    neurons: 'number',
    seed: 'number',
    firing: 'number',
  };

  private frame = 0;
  private size = 512;
  private background = new Float32Array(0);
  /** The noise's scale at each pixel of the background (its shot-noise part: √(background / 220)). */
  private noiseScale = new Float32Array(0);
  private bodies: { index: Int32Array; weight: Float32Array; brightness: number }[] = [];
  private calcium = new Float64Array(0);
  private noise = new Int16Array(1 << NOISE_BITS);
  private next = random(1);
  private started = 0;

  override setup(): void {
    const size = this.options.size ?? 512;
    this.size = size;
    const seed = this.options.seed ?? 7;
    const neurons = layNeurons(size, this.options.neurons ?? 12, seed);
    this.bodies = neurons.map((neuron) => ({ ...footprint(neuron, size, 3), brightness: neuron.brightness }));
    this.calcium = new Float64Array(neurons.length);
    // Background: a dim, smooth unevenness, as a real field of view has.
    this.background = new Float32Array(size * size);
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const r = Math.hypot(x - size / 2, y - size / 2) / size;
        this.background[y * size + x] = 220 * (1 - 0.6 * r * r) + 30 * Math.sin(x / 37) * Math.cos(y / 53);
      }
    }
    this.noiseScale = this.background.map((value) => Math.sqrt(value / 220));
    this.next = random(seed + 1);
    for (let i = 0; i < this.noise.length; i++) {
      // Sum of four uniforms: near-Gaussian, mean 0, sd NOISE_SD.
      const u = this.next() + this.next() + this.next() + this.next() - 2;
      this.noise[i] = Math.round(u * NOISE_SD * Math.sqrt(3));
    }
    this.log.info(`${neurons.length} neurons in a ${size}×${size} field, ${this.options.rate ?? 30} frames a second`);
  }

  override async runStep(): Promise<void> {
    const rate = this.options.rate ?? 30;
    // Paced to the clock, not to the step: a slow step does not slow the stream's average rate. But
    // a microscope does not image faster to make up for lost time: after a pause, a stop or a long
    // stall the clock starts again from now (no burst of the frames that were never taken).
    const period = 1000 / rate;
    const now = performance.now();
    if (this.started === 0 || now - (this.started + this.frame * period) > 4 * period) {
      this.started = now - this.frame * period;
    }
    const wait = this.started + this.frame * period - now;
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));

    const { key, array } = await this.store.allocate('uint16', [this.size, this.size]);
    const background = this.background;
    const noise = this.noise;
    const mask = noise.length - 1;
    const offset = Math.floor(this.next() * noise.length);
    // The background with its noise, everywhere...
    const scale = this.noiseScale;
    for (let i = 0; i < array.length; i++) {
      const value = background[i]! + noise[(offset + i) & mask]! * scale[i]!;
      array[i] = Math.min(Math.max(value, 0), 65535);
    }
    // ...then each neuron's pixels again, with its calcium: brighter, and noisier (shot-like noise
    // grows with the light). The bodies do not overlap (layNeurons keeps them 6 sigmas apart).
    const spikeChance = (this.options.firing ?? 0.6) / rate;
    const decay = Math.exp(-1 / (rate * TAU_S));
    this.bodies.forEach((body, n) => {
      let c = this.calcium[n]! * decay;
      if (this.next() < spikeChance) c += 0.8 + this.next() * 1.2;
      this.calcium[n] = c;
      const gain = body.brightness * (1 + c);
      const { index, weight } = body;
      for (let j = 0; j < index.length; j++) {
        const i = index[j]!;
        const light = background[i]! + gain * weight[j]!;
        const value = light + noise[(offset + i) & mask]! * Math.sqrt(light / 220);
        array[i] = Math.min(Math.max(value, 0), 65535);
      }
    });
    await this.q_out.put({ key, frame: this.frame, t: Date.now() });
    this.frame += 1;
  }

  override stop(): void {
    this.log.info(`imaged ${this.frame} frames`);
  }
}
