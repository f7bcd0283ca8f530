/**
 * Short number and text formats for the live UI's fixed-width columns (each result fits the
 * width its column gives: rates and counts in 6 characters, durations in 6, heaps in 6).
 * @module
 */
import { formatBytes as formatSize } from '@improv/core/format';

/** `value` when it is a finite number, else `undefined` (metrics fields may be absent or null). */
export function finite(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

/** A rate or other non-negative quantity in at most 6 characters: `0`, `3.4`, `512`, `12.3k`, `450k`, `1.2M`. */
export function formatRate(value: unknown): string {
  const v = finite(value);
  if (v === undefined) return '-';
  if (v === 0) return '0';
  if (v < 0) return `-${formatRate(-v)}`;
  if (v < 100) return v.toFixed(1);
  if (v < 10_000) return String(Math.round(v));
  return withUnit(v);
}

/** A count (messages, errors) in at most 6 characters: `0`, `1234`, `12.3k`, `4.5M`. */
export function formatCount(value: unknown): string {
  const v = finite(value);
  if (v === undefined) return '-';
  if (v < 10_000) return String(Math.round(v));
  return withUnit(v);
}

function withUnit(v: number): string {
  for (const [size, unit] of [
    [1e12, 'T'],
    [1e9, 'G'],
    [1e6, 'M'],
    [1e3, 'k'],
  ] as const) {
    if (v >= size) {
      const scaled = v / size;
      return `${scaled < 100 ? scaled.toFixed(1) : Math.round(scaled)}${unit}`;
    }
  }
  return String(Math.round(v));
}

/** A duration in milliseconds, in at most 6 characters: `0.004`, `0.42`, `3.25`, `45.6`, `512`, `12.3s`. */
export function formatMs(value: unknown): string {
  const v = finite(value);
  if (v === undefined) return '-';
  if (v < 0.01) return v.toFixed(3);
  if (v < 10) return v.toFixed(2);
  if (v < 100) return v.toFixed(1);
  if (v < 10_000) return String(Math.round(v));
  if (v < 100_000) return `${(v / 1000).toFixed(1)}s`;
  return `${Math.round(v / 1000)}s`;
}

/** Heap size in MiB, in at most 6 characters: `4.2M`, `123M`, `2.1G`. */
export function formatMiB(bytes: unknown): string {
  const v = finite(bytes);
  if (v === undefined) return '-';
  const mib = v / 2 ** 20;
  if (mib < 10) return `${mib.toFixed(1)}M`;
  if (mib < 1000) return `${Math.round(mib)}M`;
  return `${(mib / 1024).toFixed(1)}G`;
}

/** Bytes for the store line and `improv list` (core's `formatBytes`: `512 B`, `1.00 GiB`), `?` when unknown. */
export function formatBytes(bytes: unknown): string {
  const v = finite(bytes);
  return v === undefined ? '?' : formatSize(v);
}

/** Load as a percentage: CPU in cores (1 = 100 %), or event-loop utilisation (0..1). */
export function formatPercent(value: unknown): string {
  const v = finite(value);
  return v === undefined ? '-' : `${Math.round(v * 100)}%`;
}

export { formatUptime } from '@improv/core/format';

/** `HH:MM:SS` of a time, local. */
export function formatClock(time: number): string {
  const date = new Date(time);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}`;
}

/** Characters of `text` (code points, so a surrogate pair is not cut). */
function chars(text: string): string[] {
  return Array.from(text);
}

/** The length of `text` in code points. */
export function textLength(text: string): number {
  let n = 0;
  for (const _ of text) n += 1;
  return n;
}

/** `text` cut to `width` characters, the last one `…` when cut. */
export function truncate(text: string, width: number): string {
  if (width <= 0) return '';
  const list = chars(text);
  if (list.length <= width) return text;
  if (width === 1) return '…';
  return `${list.slice(0, width - 1).join('')}…`;
}

/** `text` cut to `width` characters in the middle (`Generator.q_o…ssor.q_in`), so both ends stay. */
export function truncateMiddle(text: string, width: number): string {
  if (width <= 0) return '';
  const list = chars(text);
  if (list.length <= width) return text;
  if (width < 5) return truncate(text, width);
  const head = Math.ceil((width - 1) / 2);
  const tail = width - 1 - head;
  return `${list.slice(0, head).join('')}…${list.slice(list.length - tail).join('')}`;
}

/** `text` cut or padded with spaces to exactly `width` characters. */
export function fit(text: string, width: number, align: 'left' | 'right' = 'left'): string {
  const cut = truncate(text, width);
  const room = width - textLength(cut);
  if (room <= 0) return cut;
  return align === 'left' ? cut + ' '.repeat(room) : ' '.repeat(room) + cut;
}

/** A bar of `width` cells, `fraction` (0..1) of them full: `███░░░░░`. */
export function bar(fraction: number, width: number): string {
  if (width <= 0) return '';
  const f = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
  // Anything in the link shows at least one cell; a full link fills them all.
  const full = f === 0 ? 0 : Math.max(1, Math.min(width, Math.round(f * width)));
  return '█'.repeat(full) + '░'.repeat(width - full);
}
