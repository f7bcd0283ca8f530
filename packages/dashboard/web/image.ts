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

/**
 * The smallest and largest finite values of the first `count` of `array` (0 and 0 when none is),
 * and how many were not finite (NaN, +Infinity or -Infinity: left out of the range).
 */
export function range(array: Numbers, count: number): { min: number; max: number; notFinite: number } {
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  let notFinite = 0;
  for (let index = 0; index < count; index++) {
    const value = array[index]!;
    // NaN - NaN and Infinity - Infinity are NaN: only a finite value gives 0.
    if (value - value !== 0) {
      notFinite += 1;
      continue;
    }
    if (value < min) min = value;
    if (value > max) max = value;
  }
  if (min > max) return { min: 0, max: 0, notFinite };
  return { min, max, notFinite };
}

/** Whether `array` can hold values that are not finite (an integer typed array cannot). */
export function mayHoldNotFinite(array: Numbers): boolean {
  return !(
    array instanceof Uint8Array ||
    array instanceof Uint8ClampedArray ||
    array instanceof Int8Array ||
    array instanceof Uint16Array ||
    array instanceof Int16Array ||
    array instanceof Uint32Array ||
    array instanceof Int32Array
  );
}

/**
 * Writes `count` values of one channel through `table` into `out` (the ImageData's Uint32 view).
 * Values at or below `min` take the first colour, at or above `max` the last; NaN and -Infinity
 * the first, +Infinity the last.
 */
export function toPixels(
  array: Numbers,
  count: number,
  min: number,
  max: number,
  table: Uint32Array,
  out: Uint32Array,
  /** The smallest and largest of the values, when known (the automatic range): integers need no more. */
  values?: { min: number; max: number },
): void {
  const scale = max > min ? 256 / (max - min) : 0;
  const span = integerSpan(array, values);
  if (span !== undefined && span.high - span.low < count) {
    // Integers over a span smaller than the frame: each value's colour once, then a lookup per pixel.
    const { low, high } = span;
    const colours = spanColours(high - low + 1);
    for (let value = low; value <= high; value++) {
      const level = (value - min) * scale;
      colours[value - low] = table[level >= 255 ? 255 : level > 0 ? level | 0 : 0]!;
    }
    indexPixels(array as SmallIntegers, count, low, colours, out);
    return;
  }
  for (let index = 0; index < count; index++) {
    const level = (array[index]! - min) * scale;
    out[index] = table[level >= 255 ? 255 : level > 0 ? level | 0 : 0]!;
  }
}

type SmallIntegers = Uint8Array | Uint8ClampedArray | Int8Array | Uint16Array | Int16Array;

/** The values an array of 8- or 16-bit integers can hold (narrowed to `values` when given), else undefined. */
function integerSpan(array: Numbers, values?: { min: number; max: number }): { low: number; high: number } | undefined {
  let low: number;
  let high: number;
  if (array instanceof Uint8Array || array instanceof Uint8ClampedArray) [low, high] = [0, 255];
  else if (array instanceof Int8Array) [low, high] = [-128, 127];
  else if (array instanceof Uint16Array) [low, high] = [0, 65535];
  else if (array instanceof Int16Array) [low, high] = [-32768, 32767];
  else return undefined;
  if (
    values !== undefined &&
    Number.isInteger(values.min) &&
    Number.isInteger(values.max) &&
    values.min <= values.max
  ) {
    low = Math.max(low, values.min);
    high = Math.min(high, values.max);
  }
  return { low, high };
}

let spanTable = new Uint32Array(0);

/** A scratch table of at least `length` colours (kept between frames). */
function spanColours(length: number): Uint32Array {
  if (spanTable.length < length) spanTable = new Uint32Array(Math.max(length, 256));
  return spanTable;
}

function indexPixels(array: SmallIntegers, count: number, low: number, colours: Uint32Array, out: Uint32Array): void {
  for (let index = 0; index < count; index++) out[index] = colours[array[index]! - low]!;
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
