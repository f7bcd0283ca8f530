/**
 * Frames to pixels: 256-entry colour tables (from d3-scale-chromatic) packed as the canvas's 32-bit
 * pixels, and the conversion of a frame into a preallocated ImageData — one pass, no allocation per
 * pixel or per frame (a new ImageData only when the frame's size changes).
 * @module
 */
import { interpolateInferno, interpolateMagma, interpolateViridis } from 'd3-scale-chromatic';
import type { Numbers } from './classify.ts';

export const colourMaps = ['viridis', 'gray', 'magma', 'inferno'] as const;
export type ColourMap = (typeof colourMaps)[number];

const littleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** One opaque pixel as the canvas's Uint32 view holds it (RGBA in memory order). */
export function pixel(r: number, g: number, b: number): number {
  return littleEndian ? ((255 << 24) | (b << 16) | (g << 8) | r) >>> 0 : ((r << 24) | (g << 16) | (b << 8) | 255) >>> 0;
}

/** `#rrggbb` or `rgb(r, g, b)` as numbers. */
function parse(colour: string): [number, number, number] {
  if (colour.startsWith('#') && colour.length === 7) {
    return [0, 2, 4].map((at) => Number.parseInt(colour.slice(1 + at, 3 + at), 16)) as [number, number, number];
  }
  const parts =
    /rgba?\(([^)]*)\)/
      .exec(colour)?.[1]
      ?.split(',')
      .map((part) => Number.parseFloat(part)) ?? [];
  return [parts[0] ?? 0, parts[1] ?? 0, parts[2] ?? 0];
}

const tables = new Map<ColourMap, Uint32Array>();

/** The 256 colours of `map`, low to high, as pixels. */
export function lut(map: ColourMap): Uint32Array {
  let table = tables.get(map);
  if (table !== undefined) return table;
  table = new Uint32Array(256);
  const interpolate =
    map === 'viridis'
      ? interpolateViridis
      : map === 'magma'
        ? interpolateMagma
        : map === 'inferno'
          ? interpolateInferno
          : undefined;
  for (let index = 0; index < 256; index++) {
    const [r, g, b] = interpolate === undefined ? [index, index, index] : parse(interpolate(index / 255));
    table[index] = pixel(Math.round(r), Math.round(g), Math.round(b));
  }
  tables.set(map, table);
  return table;
}

/** The smallest and largest finite values of the first `count` of `array` (NaN skipped). */
export function range(array: Numbers, count: number): { min: number; max: number } {
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (let index = 0; index < count; index++) {
    const value = array[index]!;
    if (value < min) min = value;
    if (value > max) max = value;
  }
  if (min > max) return { min: 0, max: 0 };
  return { min, max };
}

/**
 * Writes `count` values of one channel through `table` into `out` (the ImageData's Uint32 view).
 * Values at or below `min` take the first colour, at or above `max` the last; NaN the first.
 */
export function toPixels(
  array: Numbers,
  count: number,
  min: number,
  max: number,
  table: Uint32Array,
  out: Uint32Array,
): void {
  const scale = max > min ? 256 / (max - min) : 0;
  for (let index = 0; index < count; index++) {
    const level = (array[index]! - min) * scale;
    out[index] = table[level >= 255 ? 255 : level > 0 ? level | 0 : 0]!;
  }
}

/** Writes an RGB(A) frame (`channels` values per pixel, interleaved), each scaled from [min, max] to 0..255. */
export function toColourPixels(
  array: Numbers,
  count: number,
  channels: 3 | 4,
  min: number,
  max: number,
  out: Uint32Array,
): void {
  const scale = max > min ? 255 / (max - min) : 0;
  const level = (value: number) => {
    const scaled = (value - min) * scale;
    return scaled >= 255 ? 255 : scaled > 0 ? scaled | 0 : 0;
  };
  for (let index = 0, at = 0; index < count; index++, at += channels) {
    out[index] = pixel(level(array[at]!), level(array[at + 1]!), level(array[at + 2]!));
  }
}
