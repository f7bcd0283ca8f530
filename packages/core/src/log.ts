/**
 * Log records. Every actor's `this.log` (and its `console`) produces records that Nexus gathers into
 * one log: a file in the run folder plus a live stream.
 * @module
 */

/** Severity, lowest first. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** Severity order, for filtering. */
export const logLevels: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

/** One log line from an actor or from Nexus. */
export interface LogRecord {
  /** Milliseconds since the Unix epoch. */
  time: number;
  level: LogLevel;
  /** Actor name, or `nexus`. */
  source: string;
  message: string;
  /** Stack trace, for errors. */
  stack?: string;
}

/** What `this.log` offers an actor. Extra arguments are formatted into the message. */
export interface Logger {
  debug(message: string, ...details: unknown[]): void;
  info(message: string, ...details: unknown[]): void;
  warn(message: string, ...details: unknown[]): void;
  /** An `Error` among the details puts its stack into the record. */
  error(message: string, ...details: unknown[]): void;
}

/**
 * Builds a record from a message and details (`Error`s contribute their stack). `format` turns the
 * other details into text; actor workers pass the runtime's console formatting (NaN, Map, class names).
 */
export function createLogRecord(
  source: string,
  level: LogLevel,
  message: string,
  details: unknown[],
  format: (detail: unknown) => string = formatDetail,
): LogRecord {
  let text = message;
  let stack: string | undefined;
  for (const detail of details) {
    if (detail instanceof Error) {
      text += ` ${detail.name}: ${detail.message}`;
      stack ??= detail.stack;
    } else {
      text += ` ${format(detail)}`;
    }
  }
  const record: LogRecord = { time: Date.now(), level, source, message: text };
  if (stack !== undefined) record.stack = stack;
  return record;
}

function formatDetail(detail: unknown): string {
  if (typeof detail === 'string') return detail;
  if (typeof detail === 'bigint') return `${detail}n`;
  if (ArrayBuffer.isView(detail)) {
    const array = detail as unknown as ArrayLike<number>;
    const shown = Array.from({ length: Math.min(array.length, 8) }, (_, i) => array[i]);
    return `${detail.constructor.name}(${array.length}) [${shown.join(', ')}${array.length > 8 ? ', …' : ''}]`;
  }
  try {
    return (
      JSON.stringify(detail, (_key, value: unknown) => (typeof value === 'bigint' ? `${value}n` : value)) ??
      String(detail)
    );
  } catch {
    return String(detail);
  }
}

/**
 * The control characters (Unicode's Cc: C0, DEL and the C1 controls U+0080–U+009F, which some
 * terminals read as ESC sequences too) but tab and newline.
 */
const controlCharacters = /[^\P{Cc}\t\n]/gu;
const anyControlCharacter = /[^\P{Cc}\t\n]/u;

/**
 * `text` safe to write to a terminal: each control character is shown escaped as `\xNN`, so that an
 * actor printing `\x1b[2J` (clear screen), `\x1b]0;title\x07` or a cursor move shows that text
 * instead of doing it. Tabs and newlines stay, and so does every printable character (UTF-8 text
 * included); a carriage return that ends a line (`\r\n` line endings) is dropped.
 */
export function escapeControls(text: string): string {
  if (!anyControlCharacter.test(text)) return text;
  return text
    .replace(/\r(?=\n|$)/g, '')
    .replace(controlCharacters, (character) => `\\x${character.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/**
 * The record with {@link escapeControls} applied to its message and stack (the same record when
 * there is nothing to escape). Nexus passes every record through this before it is logged or sent.
 */
export function escapeLogRecord(record: LogRecord): LogRecord {
  const message = escapeControls(record.message);
  const stack = record.stack === undefined ? undefined : escapeControls(record.stack);
  if (message === record.message && stack === record.stack) return record;
  return stack === undefined ? { ...record, message } : { ...record, message, stack };
}

/**
 * `HH:MM:SS.mmm LEVEL source: message`, the form the CLI prints, in local time. With `date`, the time
 * is a full ISO 8601 timestamp with the UTC offset (`2025-05-01T14:03:07.042+02:00`), the form the
 * run log uses so a line can be placed after midnight or next to another machine's log. With
 * `stack`, an error's stack follows on indented lines.
 */
export function formatLogRecord(record: LogRecord, options: { stack?: boolean; date?: boolean } = {}): string {
  const date = new Date(record.time);
  const time = options.date ? formatTimestamp(date) : formatClock(date);
  const line = `${time} ${record.level.toUpperCase().padEnd(5)} ${record.source}: ${record.message}`;
  return options.stack && record.stack ? `${line}\n${indent(record.stack)}` : line;
}

/** A log record as one JSON object (see {@link formatLogJson}). */
export interface LogRecordJson {
  /** ISO 8601 with the UTC offset, local time: `2025-05-01T14:03:07.042+02:00`. */
  time: string;
  level: LogLevel;
  source: string;
  message: string;
  /** Present when the record has a stack trace. */
  stack?: string;
}

/**
 * The record as one line of JSON, without the newline:
 * `{"time":"2025-05-01T14:03:07.042+02:00","level":"info","source":"Processor","message":"…"}`,
 * plus `"stack"` for an error that has one. Newlines inside the message or stack are escaped, so
 * one record is always one line (`improv logs --json`, jq, log shippers).
 */
export function formatLogJson(record: LogRecord): string {
  const json: LogRecordJson = {
    time: formatTimestamp(new Date(record.time)),
    level: record.level,
    source: record.source,
    message: record.message,
  };
  if (record.stack !== undefined) json.stack = record.stack;
  return JSON.stringify(json);
}

/** `HH:MM:SS.mmm`, local. */
function formatClock(date: Date): string {
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${String(date.getMilliseconds()).padStart(3, '0')}`;
}

/** `YYYY-MM-DDTHH:MM:SS.mmm+HH:MM`, local, with the offset. */
function formatTimestamp(date: Date): string {
  return `${formatDay(date)}T${formatClock(date)}${formatOffset(date)}`;
}

/** `YYYY-MM-DD`, local. */
function formatDay(date: Date): string {
  return `${String(date.getFullYear()).padStart(4, '0')}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

/** `+HH:MM` / `-HH:MM` east of UTC, or `Z` in UTC itself. */
function formatOffset(date: Date): string {
  const minutes = -date.getTimezoneOffset();
  if (minutes === 0) return 'Z';
  const abs = Math.abs(minutes);
  return `${minutes < 0 ? '-' : '+'}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

function pad(value: number): string {
  return String(value).padStart(2, '0');
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((line) => `    ${line}`)
    .join('\n');
}
