/**
 * Sizes in bytes as people write them in a pipeline's `settings:` (`store_size: 512MiB`).
 *
 * @example
 * ```ts
 * parseByteSize('512MiB'); // 536870912
 * parseByteSize('2 GB'); // 2000000000
 * parseByteSize(250_000_000); // 250000000
 * ```
 * @module
 */
import { closest } from './_suggest.ts';

const unitBytes: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

/** The units {@link parseByteSize} accepts, as they are usually written. */
export const byteSizeUnits: readonly string[] = ['B', 'kB', 'MB', 'GB', 'TB', 'KiB', 'MiB', 'GiB', 'TiB'];

/**
 * Parses a size: a whole number of bytes, or a string such as `"512MiB"`, `"1.5 GiB"`, `"2GB"`,
 * `"250_000_000"` (units are case-insensitive; `kB`/`MB`/`GB` are powers of 1000, `KiB`/`MiB`/`GiB`
 * powers of 1024). Throws a `RangeError` that says what is wrong for anything else, including
 * sizes below one byte and fractional byte counts.
 */
export function parseByteSize(value: number | string): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new RangeError(`${value} is not a size in bytes (expected a whole number >= 1)`);
    }
    return value;
  }
  // Underscores as digit separators, as in improv's Python default `250_000_000`.
  const match = /^(\d+(?:_\d+)*(?:\.\d+)?)\s*([A-Za-z]*)$/.exec(value.trim());
  if (!match) {
    throw new RangeError(`"${value}" is not a size (expected a number with an optional unit, e.g. "512MiB")`);
  }
  const [, digits = '', unit = ''] = match;
  const multiplier = unit === '' ? 1 : unitBytes[unit.toLowerCase()];
  if (multiplier === undefined) {
    const suggestion = closest(unit, byteSizeUnits);
    throw new RangeError(
      `"${value}" has an unknown unit "${unit}"${suggestion ? ` (did you mean "${suggestion}"?)` : ''}; units: ${byteSizeUnits.join(', ')}`,
    );
  }
  const bytes = Number(digits.replaceAll('_', '')) * multiplier;
  // Rounding only absorbs float error (0.3 kB); a genuinely fractional byte count is refused below.
  const rounded = Math.round(bytes);
  if (Math.abs(bytes - rounded) > 1e-6 * Math.max(1, bytes) || rounded < 1 || !Number.isSafeInteger(rounded)) {
    throw new RangeError(`"${value}" is not a whole number of bytes >= 1`);
  }
  return rounded;
}
