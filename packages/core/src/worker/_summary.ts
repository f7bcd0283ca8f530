/**
 * One line that says what a message is without carrying its data (package-private): what
 * `nexus.tap()` shows. The actor host of a sink summarises the messages its actor reads while a tap
 * is on; the Python host (`improv_ts/_host.py`, `summarize`) writes the same format.
 *
 * Format: objects as `{ key: value, ... }` and arrays as `[a, b, …+N]`, expanded at the top and one
 * level down (deeper: `{…}`, `[…N]`); typed arrays as their class and length (`Float32Array[262144]`),
 * or their shape when a sibling field `shape` (numbers whose product is the length) gives one
 * (`Float32Array[512×512]`); strings the store recognises as its keys as `"<key>" (store key)`,
 * shortened in the middle past 32 characters; other strings cut at 24 characters; numbers with at
 * most 6 significant digits unless they are integers; the whole cut at `max` characters.
 *
 * @example
 * ```ts
 * summarizeMessage({ key, t: Date.now(), frame: new Float32Array(4), shape: [2, 2] }, (s) => store.isKey(s));
 * // '{ key: "m1b2c3.4" (store key), t: 1733312345678, frame: Float32Array[2×2], shape: [2, 2] }'
 * ```
 * @module
 */
import { dtypeCodeOf, typedArrayConstructors } from '../codec.ts';

/** Longest summary, in characters. */
export const SUMMARY_MAX = 200;
/** Characters of a string shown before it is cut. */
const STRING_MAX = 24;
/** A store key longer than this is shortened in the middle. */
const KEY_MAX = 32;
/** Items of an array shown before `…+N`. */
const ITEMS_MAX = 8;
/** Containers at this depth are collapsed (0: the message, 1: its fields). */
const COLLAPSE_AT = 2;

/** The summary of `message`; `isKey` tells store keys (`StoreClient.isKey`). */
export function summarizeMessage(
  message: unknown,
  isKey?: (value: string) => boolean,
  max: number = SUMMARY_MAX,
): string {
  const text = render(message, 0, { isKey, budget: max + 1 }, undefined);
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

interface Context {
  isKey: ((value: string) => boolean) | undefined;
  /** Characters still worth rendering: containers stop adding items once it is spent. */
  budget: number;
}

function render(value: unknown, depth: number, context: Context, shape: number[] | undefined): string {
  switch (typeof value) {
    case 'undefined':
      return 'undefined';
    case 'boolean':
      return String(value);
    case 'number':
      return formatNumber(value);
    case 'bigint':
      return `${value}n`;
    case 'string':
      return formatString(value, context.isKey);
    case 'symbol':
    case 'function':
      return typeof value;
  }
  if (value === null) return 'null';
  if (ArrayBuffer.isView(value)) {
    if (value instanceof DataView) return `DataView[${value.byteLength} B]`;
    const code = dtypeCodeOf(value);
    const name = code === 0 ? (value.constructor?.name ?? 'TypedArray') : typedArrayConstructors[code - 1]!.name;
    const length = (value as unknown as { length: number }).length;
    const dims = shape !== undefined && product(shape) === length ? shape.join('×') : String(length);
    return `${name}[${dims}]`;
  }
  if (value instanceof ArrayBuffer) return `ArrayBuffer[${value.byteLength} B]`;
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString();
  if (Array.isArray(value)) {
    if (depth >= COLLAPSE_AT) return `[…${value.length}]`;
    return `[${items(value.slice(0, ITEMS_MAX), value.length, depth, context)}]`;
  }
  if (value instanceof Set) {
    if (depth >= COLLAPSE_AT) return `Set(${value.size})`;
    return `Set(${value.size}) {${wrap(items([...value].slice(0, ITEMS_MAX), value.size, depth, context))}}`;
  }
  if (value instanceof Map) {
    if (depth >= COLLAPSE_AT) return `Map(${value.size})`;
    const parts: string[] = [];
    let used = 0;
    for (const [key, item] of value) {
      if (used >= context.budget || parts.length >= ITEMS_MAX) break;
      const part = `${render(key, depth + 1, context, undefined)} => ${render(item, depth + 1, context, undefined)}`;
      parts.push(part);
      used += part.length + 2;
    }
    const more = value.size - parts.length;
    return `Map(${value.size}) {${wrap(parts.join(', ') + (more > 0 ? `, …+${more}` : ''))}}`;
  }
  if (depth >= COLLAPSE_AT) return '{…}';
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record);
  if (keys.length === 0) return '{}';
  const shapeField = shapeOf(record.shape);
  const parts: string[] = [];
  let used = 0;
  for (const key of keys) {
    if (used >= context.budget) break;
    const part = `${formatKey(key)}: ${render(record[key], depth + 1, context, shapeField)}`;
    parts.push(part);
    used += part.length + 2;
  }
  const more = keys.length - parts.length;
  return `{ ${parts.join(', ')}${more > 0 ? `, …+${more}` : ''} }`;
}

function items(values: readonly unknown[], total: number, depth: number, context: Context): string {
  const parts: string[] = [];
  let used = 0;
  for (const item of values) {
    if (used >= context.budget) break;
    const part = render(item, depth + 1, context, undefined);
    parts.push(part);
    used += part.length + 2;
  }
  const more = total - parts.length;
  return parts.join(', ') + (more > 0 ? `${parts.length > 0 ? ', ' : ''}…+${more}` : '');
}

function wrap(inner: string): string {
  return inner === '' ? '' : ` ${inner} `;
}

function formatNumber(value: number): string {
  if (Number.isInteger(value) || !Number.isFinite(value)) return String(value);
  return String(Number(value.toPrecision(6)));
}

function formatString(value: string, isKey: ((value: string) => boolean) | undefined): string {
  let key = false;
  try {
    key = isKey?.(value) === true;
  } catch {
    // A store that cannot tell (closed) makes it a plain string.
  }
  if (key) {
    const shown = value.length > KEY_MAX ? `${value.slice(0, 8)}…${value.slice(-6)}` : value;
    return `${JSON.stringify(shown)} (store key)`;
  }
  return JSON.stringify(value.length > STRING_MAX ? `${value.slice(0, STRING_MAX)}…` : value);
}

function formatKey(key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? key : JSON.stringify(key);
}

/** A `shape` field's dimensions, when it is a short list of whole numbers. */
function shapeOf(value: unknown): number[] | undefined {
  if (!Array.isArray(value) || value.length === 0 || value.length > 8) return undefined;
  return value.every((dim) => Number.isSafeInteger(dim) && (dim as number) >= 0) ? (value as number[]) : undefined;
}

function product(values: readonly number[]): number {
  return values.reduce((total, value) => total * value, 1);
}
