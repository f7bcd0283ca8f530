/** Number, size and time formatting for the page's dense tables and labels. @module */
import { formatBytes } from '@improv/core/format';

/** A rate or count in at most 4 significant characters: `0`, `3.20`, `184`, `12.4k`, `1.20M`, `3.14e15`. */
export function compact(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return '–';
  const magnitude = Math.abs(value);
  if (magnitude === 0) return '0';
  if (magnitude < 10) return value.toFixed(magnitude < 0.01 ? 3 : 2);
  if (magnitude < 100) return value.toFixed(1);
  if (magnitude < 10_000) return value.toFixed(0);
  if (magnitude < 1e6) return `${(value / 1e3).toFixed(1)}k`;
  if (magnitude < 1e9) return `${(value / 1e6).toFixed(2)}M`;
  if (magnitude < 1e12) return `${(value / 1e9).toFixed(2)}G`;
  return exponent(value, 2);
}

/** A number as `1.23e15` (`-4.5e-7`; `digits` after the point, or as many as it needs). */
export function exponent(value: number, digits?: number): string {
  return value.toExponential(digits).replace('e+', 'e');
}

/** Bytes as B, KiB, MiB, GiB, as the CLI and the store's messages write them (core's `formatBytes`). */
export function bytes(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return '–';
  return formatBytes(value);
}

/** Milliseconds with a precision fit for step times and latencies. */
export function ms(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return '–';
  if (value < 1) return value.toFixed(3);
  if (value < 100) return value.toFixed(2);
  return value.toFixed(0);
}

/** A duration in whole seconds: `0:14`, `12:03`, `3:02:45`, `2d 03:02:45`. */
export { formatUptime as uptime } from '@improv/core/format';

/** A local wall-clock time with milliseconds: `14:53:02.042`. */
export function clock(time: number, withMs = true): string {
  const date = new Date(time);
  const two = (n: number) => String(n).padStart(2, '0');
  const base = `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}`;
  return withMs ? `${base}.${String(date.getMilliseconds()).padStart(3, '0')}` : base;
}

/** A CPU share in cores as a percentage of one core. */
export function percent(cores: number | undefined): string {
  if (cores === undefined || !Number.isFinite(cores)) return '–';
  return `${(cores * 100).toFixed(cores < 0.1 ? 1 : 0)}%`;
}
