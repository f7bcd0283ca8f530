/**
 * What a published value looks like on the page: a line, an image, a scatter, or text. Pure
 * functions of the decoded value (the server's msgpack with improv's extension types, so typed
 * arrays arrive as typed arrays); nothing received is ever evaluated.
 * @module
 */

/** Numbers the page can plot: a typed array (not bigint) or a plain array of numbers. */
export type Numbers = ArrayLike<number>;

export type Shown =
  | { kind: 'line'; y: Numbers }
  | { kind: 'image'; array: Numbers; rows: number; cols: number; channels: 1 | 3 | 4; dtype: string }
  | { kind: 'scatter'; x: Numbers; y: Numbers }
  | { kind: 'text'; text: string };

type Typed = Exclude<ArrayBufferView, DataView>;

function isTyped(value: unknown): value is Typed {
  return ArrayBuffer.isView(value) && !(value instanceof DataView);
}

/** A typed array or array of numbers as numbers (bigint arrays converted), or undefined. */
export function asNumbers(value: unknown): Numbers | undefined {
  if (isTyped(value)) {
    if (value instanceof BigInt64Array || value instanceof BigUint64Array) return Float64Array.from(value, Number);
    return value as unknown as Numbers;
  }
  if (Array.isArray(value) && value.length > 0 && value.every((item) => typeof item === 'number')) return value;
  return undefined;
}

function dtypeOf(array: unknown, given: unknown): string {
  if (typeof given === 'string') return given;
  if (isTyped(array)) return array.constructor.name.replace(/Array$/, '').toLowerCase();
  return 'number';
}

/** How to show the newest value of a stream. */
export function classify(value: unknown): Shown {
  const numbers = asNumbers(value);
  if (numbers !== undefined) return { kind: 'line', y: numbers };
  if (typeof value === 'object' && value !== null && !Array.isArray(value) && !isTyped(value)) {
    const record = value as Record<string, unknown>;
    if ('array' in record && Array.isArray(record.shape)) {
      const shown = fromShape(record.array, record.shape as unknown[], record.dtype);
      if (shown !== undefined) return shown;
    }
    if ('x' in record && 'y' in record) {
      const x = asNumbers(record.x);
      const y = asNumbers(record.y);
      if (x !== undefined && y !== undefined) return { kind: 'scatter', x, y };
    }
  }
  return { kind: 'text', text: describe(value) };
}

/** `{ array, shape }`: sizes of 1 are dropped (`[1, 512, 512]` is an image); a last size of 3 or 4 is colour. */
function fromShape(arrayValue: unknown, shapeValue: unknown[], dtype: unknown): Shown | undefined {
  const array = asNumbers(arrayValue);
  if (array === undefined) return undefined;
  if (!shapeValue.every((size) => typeof size === 'number' && Number.isInteger(size) && size >= 0)) return undefined;
  const full = shapeValue as number[];
  if (full.reduce((product, size) => product * size, 1) > array.length) return undefined;
  let channels: 1 | 3 | 4 = 1;
  let shape = full.filter((size) => size !== 1);
  const last = full.at(-1);
  if (full.length === 3 && (last === 3 || last === 4) && shape.length === 3) {
    channels = last;
    shape = shape.slice(0, 2);
  }
  if (shape.length === 0 && full.length > 0) return { kind: 'line', y: array };
  if (shape.length === 1) return { kind: 'line', y: array.length === shape[0] ? array : slice(array, shape[0]!) };
  if (shape.length === 2) {
    const [rows, cols] = shape as [number, number];
    if (rows === 0 || cols === 0) return undefined;
    return { kind: 'image', array, rows, cols, channels, dtype: dtypeOf(arrayValue, dtype) };
  }
  return undefined;
}

function slice(array: Numbers, length: number): Numbers {
  return isTyped(array)
    ? (array as unknown as Float64Array).subarray(0, length)
    : Array.prototype.slice.call(array, 0, length);
}

const TEXT_LIMIT = 4000;

/** Any value as text: JSON with typed arrays summarised (`Float32Array[1024]`), bigints as digits. */
export function describe(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (typeof value === 'string') return cut(value);
  let text: string;
  try {
    text = JSON.stringify(
      value,
      (_key, item: unknown) => {
        if (typeof item === 'bigint') return `${item}n`;
        if (isTyped(item)) return `${item.constructor.name}[${(item as unknown as ArrayLike<unknown>).length}]`;
        if (item instanceof ArrayBuffer) return `ArrayBuffer(${item.byteLength} bytes)`;
        if (item instanceof Map) return Object.fromEntries([...item].map(([k, v]) => [String(k), v]));
        if (item instanceof Set) return [...item];
        if (typeof item === 'number' && !Number.isFinite(item)) return String(item);
        if (Array.isArray(item) && item.length > 64) return [...item.slice(0, 64), `… ${item.length - 64} more`];
        return item;
      },
      2,
    );
  } catch (error) {
    text = `(cannot show: ${(error as Error).message})`;
  }
  return cut(text ?? String(value));
}

function cut(text: string): string {
  return text.length > TEXT_LIMIT
    ? `${text.slice(0, TEXT_LIMIT)}… (${text.length - TEXT_LIMIT} more characters)`
    : text;
}
