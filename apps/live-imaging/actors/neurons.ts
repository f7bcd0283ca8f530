/**
 * Where the simulated neurons are: the Microscope draws them and Traces reads them, both from the
 * same seed (Traces does not detect cells; it is told where they are, as after an offline
 * segmentation of a reference image).
 */

/** A small seeded generator (mulberry32): the same seed gives the same numbers everywhere. */
export function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Neuron {
  /** Centre, in pixels. */
  x: number;
  y: number;
  /** Width of its Gaussian body, in pixels. */
  sigma: number;
  /** Brightness above the background at rest, in counts at the centre. */
  brightness: number;
}

/** `count` neurons in a `size`×`size` field, apart from the edges and from each other. */
export function layNeurons(size: number, count: number, seed: number): Neuron[] {
  const next = random(seed);
  const neurons: Neuron[] = [];
  const margin = Math.max(12, size * 0.08);
  for (let tries = 0; neurons.length < count && tries < count * 200; tries++) {
    const sigma = (size / 512) * (4 + next() * 3);
    const x = margin + next() * (size - 2 * margin);
    const y = margin + next() * (size - 2 * margin);
    if (neurons.some((other) => Math.hypot(other.x - x, other.y - y) < 6 * Math.max(sigma, other.sigma))) continue;
    neurons.push({ x, y, sigma, brightness: 250 + next() * 250 });
  }
  return neurons;
}

/** The pixels of a neuron within `radius` sigmas of its centre, with its Gaussian weight at each. */
export function footprint(neuron: Neuron, size: number, radius: number): { index: Int32Array; weight: Float32Array } {
  const reach = Math.ceil(neuron.sigma * radius);
  const index: number[] = [];
  const weight: number[] = [];
  for (let y = Math.max(0, Math.floor(neuron.y - reach)); y <= Math.min(size - 1, Math.ceil(neuron.y + reach)); y++) {
    for (let x = Math.max(0, Math.floor(neuron.x - reach)); x <= Math.min(size - 1, Math.ceil(neuron.x + reach)); x++) {
      const d2 = ((x - neuron.x) ** 2 + (y - neuron.y) ** 2) / neuron.sigma ** 2;
      if (d2 > radius * radius) continue;
      index.push(y * size + x);
      weight.push(Math.exp(-d2 / 2));
    }
  }
  return { index: Int32Array.from(index), weight: Float32Array.from(weight) };
}
