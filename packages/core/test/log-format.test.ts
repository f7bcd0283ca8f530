import { describe, expect, it } from 'vitest';
import { escapeControls, escapeLogRecord, formatLogJson, formatLogRecord, type LogRecord } from '../src/log.ts';
import { formatLogArguments } from '../src/runtime/_node-format.ts';

describe('formatLogArguments (an actor console line)', () => {
  // Each expectation is what `node -e 'console.log(...)'` prints for the same arguments.
  it.each([
    { args: ['%d items', 42], expected: '42 items' },
    { args: ['%s and %s', 'a', 'b'], expected: 'a and b' },
    { args: ['%i / %f', 3.9, '1.5'], expected: '3 / 1.5' },
    { args: ['%j', { a: 1 }], expected: '{"a":1}' },
    { args: ['%o', [1]], expected: '[ 1, [length]: 1 ]' },
    { args: ['%O', { a: 1 }], expected: '{ a: 1 }' },
    { args: ['%cstyled', 'color: red'], expected: 'styled' },
    { args: ['100%% of %d', 3], expected: '100% of 3' },
    { args: ['%d extra', 1, 'left', 2], expected: '1 extra left 2' },
    { args: [NaN], expected: 'NaN' },
    { args: [Infinity, -Infinity], expected: 'Infinity -Infinity' },
    { args: [-0], expected: '-0' },
    { args: ['x', -0], expected: 'x -0' },
    { args: [new Map([[1, 2]])], expected: 'Map(1) { 1 => 2 }' },
    { args: [new Set([1, 'a'])], expected: "Set(2) { 1, 'a' }" },
    { args: [{ a: { b: { c: { d: 1 } } } }], expected: '{ a: { b: { c: [Object] } } }' },
    { args: [[1, [2, [3, [4]]]]], expected: '[ 1, [ 2, [ 3, [Array] ] ] ]' },
    { args: [1n, undefined, null], expected: '1n undefined null' },
    { args: [new Uint8Array([1, 2, 3])], expected: 'Uint8Array(3) [ 1, 2, 3 ]' },
    { args: ['%d items', 3, new Map([[1, 2]]), NaN], expected: '3 items Map(1) { 1 => 2 } NaN' },
    { args: [], expected: '' },
  ] as { args: unknown[]; expected: string }[])('prints $expected', ({ args, expected }) => {
    expect(formatLogArguments(args)).toBe(expected);
  });

  it('shows the class name of an instance', () => {
    class Point {
      x = 1;
      y = 2;
    }
    expect(formatLogArguments([new Point()])).toBe('Point { x: 1, y: 2 }');
  });

  it('shows an Error with its stack, and its own properties', () => {
    const error = Object.assign(new RangeError('out of range'), { code: 'E_RANGE' });
    const text = formatLogArguments(['failed:', error]);
    expect(text).toMatch(/^failed: RangeError: out of range\n\s+at .*log-format\.test\.ts/);
    expect(text).toMatch(/\{\n {2}code: 'E_RANGE'\n\}$/);
  });

  it('never colours', () => {
    expect(formatLogArguments([{ n: 1, s: 'a' }, [true]])).not.toContain('\x1b[');
  });
});

describe('formatLogRecord', () => {
  const record: LogRecord = { time: Date.UTC(2025, 4, 1, 12, 3, 7, 42), level: 'warn', source: 'Cam', message: 'hot' };

  it('shows the time of day (local) by default, as the terminal does', () => {
    expect(formatLogRecord(record)).toMatch(/^\d{2}:\d{2}:\d{2}\.042 WARN {2}Cam: hot$/);
  });

  it('with date, starts with an ISO 8601 timestamp with the offset that stands for the same instant', () => {
    const line = formatLogRecord(record, { date: true });
    const match = /^(\d{4}-\d{2}-\d{2}T(\d{2}:\d{2}:\d{2}\.\d{3})(?:Z|[+-]\d{2}:\d{2})) WARN {2}Cam: hot$/.exec(line);
    expect(match).not.toBeNull();
    expect(new Date(match?.[1] ?? '').getTime()).toBe(record.time);
    // The same local clock as the short form, so a terminal line can be found in the run log.
    expect(formatLogRecord(record).startsWith(match?.[2] ?? '-')).toBe(true);
  });

  it('appends the stack on indented lines only when asked', () => {
    const failed: LogRecord = { ...record, level: 'error', stack: 'Error: hot\n    at x' };
    expect(formatLogRecord(failed, { date: true })).not.toContain('\n');
    expect(formatLogRecord(failed, { stack: true, date: true }).split('\n').slice(1)).toEqual([
      '    Error: hot',
      '        at x',
    ]);
  });
});

describe('formatLogJson', () => {
  const record: LogRecord = {
    time: Date.UTC(2025, 4, 1, 12, 3, 7, 42),
    level: 'info',
    source: 'Cam',
    message: 'a "b"\nc',
  };

  it('writes one JSON object on one line: time with its offset, level, source and message', () => {
    const line = formatLogJson(record);
    expect(line).not.toContain('\n');
    const parsed = JSON.parse(line) as Record<string, unknown>;
    expect(Object.keys(parsed)).toEqual(['time', 'level', 'source', 'message']);
    expect(parsed).toMatchObject({ level: 'info', source: 'Cam', message: 'a "b"\nc' });
    expect(parsed.time).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.042(?:Z|[+-]\d{2}:\d{2})$/);
    expect(new Date(parsed.time as string).getTime()).toBe(record.time);
    // The same timestamp as the run log's text line.
    expect(formatLogRecord(record, { date: true }).startsWith(parsed.time as string)).toBe(true);
  });

  it('adds the stack only when the record has one', () => {
    const parsed = JSON.parse(formatLogJson({ ...record, level: 'error', stack: 'Error: x\n    at y' }));
    expect(parsed).toMatchObject({ level: 'error', stack: 'Error: x\n    at y' });
    expect('stack' in JSON.parse(formatLogJson(record))).toBe(false);
  });
});

describe('escapeControls and escapeLogRecord (what an actor prints, made safe for a terminal)', () => {
  it('shows each control character as \\xNN and leaves text, UTF-8, tabs and newlines as they are', () => {
    expect(escapeControls('clear \x1b[2J title \x1b]0;t\x07 up \x1b[5A csi \x9b2J del \x7f nul \0')).toBe(
      'clear \\x1b[2J title \\x1b]0;t\\x07 up \\x1b[5A csi \\x9b2J del \\x7f nul \\x00',
    );
    const plain = 'héllo ✓ 日本語 🙂\tcolumn\nnext line \\x1b stays';
    expect(escapeControls(plain)).toBe(plain);
    // \r\n line endings lose their \r; a carriage return inside a line (overwriting it) is shown.
    expect(escapeControls('a\r\nb\r')).toBe('a\nb');
    expect(escapeControls('50%\r100%')).toBe('50%\\x0d100%');
  });

  it('escapes message and stack, and returns the same record when there is nothing to escape', () => {
    const record: LogRecord = { time: 0, level: 'error', source: 'A', message: 'ok', stack: 'Error\n    at x' };
    expect(escapeLogRecord(record)).toBe(record);
    expect(escapeLogRecord({ ...record, message: 'bad \x1b[2J', stack: 'Error: \x1b[H\n    at x' })).toEqual({
      ...record,
      message: 'bad \\x1b[2J',
      stack: 'Error: \\x1b[H\n    at x',
    });
  });
});
