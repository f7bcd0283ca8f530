/**
 * Durations as people write them in a pipeline's `settings:` (`signal_timeout: 5s`).
 *
 * @example
 * ```ts
 * parseDuration('500ms'); // 500
 * parseDuration('1.5m'); // 90000
 * parseDuration(5); // 5000 (a plain number is seconds, as in improv)
 * ```
 * @module
 */

const unitMs: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** The units {@link parseDuration} accepts. */
export const durationUnits: readonly string[] = Object.keys(unitMs);

/**
 * Parses a duration into milliseconds: a number of seconds, or a string such as `"500ms"`, `"5s"`,
 * `"1.5m"`, `"1h"`. Throws a `RangeError` that says what is wrong for anything else.
 */
export function parseDuration(value: number | string): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new RangeError(`${value} is not a number of seconds`);
    return value * 1000;
  }
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
  if (!match) throw new RangeError(`"${value}" is not a duration`);
  const unit = (match[2] ?? '').toLowerCase();
  if (unit === '') return Number(match[1]) * 1000;
  const factor = unitMs[unit];
  if (factor === undefined)
    throw new RangeError(`"${match[2]}" is not a unit of time (use ${durationUnits.join(', ')})`);
  return Number(match[1]) * factor;
}
