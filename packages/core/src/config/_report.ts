/**
 * Collecting diagnostics while walking a config. The walk works on plain values (the YAML's
 * `toJS()`, or an object the caller built); a {@link Locator} maps a path back to the YAML node so
 * each diagnostic gets its line and column.
 * @module
 */
import type { Diagnostic, SettingOrigin } from './types.ts';

/** A path into the config, e.g. `['actors', 'Processor', 'package']`. */
export type ConfigPath = (string | number)[];

/** A 1-based position in the YAML text. */
export interface Position {
  line: number;
  column: number;
}

/**
 * Finds the YAML node at `path`: its key (`part: 'key'`, for problems with a name) or its value.
 * Returns `undefined` when there is no text to point at (a config given as an object).
 */
export type Locator = (path: ConfigPath, part: 'key' | 'value') => Position | undefined;

/** Where to point at, when it is not the diagnostic's own path. */
export interface ReportOptions {
  /** Path of the node to point at; default: the diagnostic's path. */
  at?: ConfigPath;
  /** Point at the key (the name) rather than the value; default `value`. */
  part?: 'key' | 'value';
  /** An exact position, when the caller already knows it (YAML syntax errors). */
  position?: Position;
}

/** Gathers diagnostics for one config. */
export class Reporter {
  readonly diagnostics: Diagnostic[] = [];
  readonly #file: string | undefined;
  readonly #locate: Locator;

  constructor(file: string | undefined, locate: Locator) {
    this.#file = file;
    this.#locate = locate;
  }

  error(path: ConfigPath, message: string, fix: string | undefined, options: ReportOptions = {}): void {
    this.add('error', path, message, fix, options);
  }

  warning(path: ConfigPath, message: string, fix: string | undefined, options: ReportOptions = {}): void {
    this.add('warning', path, message, fix, options);
  }

  /** Where the node at `path` is written, for an error found later (when the store opens). */
  origin(path: ConfigPath, part: 'key' | 'value' = 'value'): SettingOrigin {
    const position = this.#locate(path, part);
    return { path: [...path], ...(this.#file === undefined ? {} : { file: this.#file }), ...position };
  }

  /** A reporter for the same file whose diagnostics are kept apart (for work done concurrently). */
  fork(): Reporter {
    return new Reporter(this.#file, this.#locate);
  }

  add(
    severity: Diagnostic['severity'],
    path: ConfigPath,
    message: string,
    fix: string | undefined,
    options: ReportOptions = {},
  ): void {
    const diagnostic: Diagnostic = { severity, message, path: [...path] };
    if (fix !== undefined && fix !== '') diagnostic.fix = fix;
    if (this.#file !== undefined) diagnostic.file = this.#file;
    const position = options.position ?? this.#locate(options.at ?? path, options.part ?? 'value');
    if (position) {
      diagnostic.line = position.line;
      diagnostic.column = position.column;
    }
    this.diagnostics.push(diagnostic);
  }
}

/** A locator for configs without text. */
export const noPositions: Locator = () => undefined;

/** `actors.Processor.package`, `connections.frames.sinks[1]`. */
export function formatPath(path: ConfigPath): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else out += out === '' ? segment : `.${segment}`;
  }
  return out;
}

/** A plain `{ ... }` value (YAML mapping), not an array, `null` or a class instance. */
export function isMapping(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/** What a value is, in YAML words, for messages such as "expected a mapping, got a list". */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (isMapping(value)) return 'a mapping';
  if (typeof value === 'string') return `the string "${value}"`;
  if (typeof value === 'number' || typeof value === 'boolean') return `${typeof value} ${String(value)}`;
  if (typeof value === 'function') return 'a function';
  return `a ${typeof value}`;
}

/** A value as written: strings quoted, numbers and booleans as they are, anything else described. */
export function showValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return describeValue(value);
}
