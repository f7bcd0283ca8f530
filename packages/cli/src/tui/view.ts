/**
 * The screen as lines of coloured segments, from the model and the UI's state, for a terminal of
 * a given size: pure functions, so the layout (what fits, which columns go first in a narrow
 * terminal) is decided in one place and every line is at most `width` characters.
 * @module
 */
import type { LinkMetrics, LogLevel } from '@improv/core';
import {
  bar,
  finite,
  fit,
  formatBytes,
  formatClock,
  formatCount,
  formatMiB,
  formatMs,
  formatPercent,
  formatRate,
  formatUptime,
  textLength,
  truncate,
  truncateMiddle,
} from './format.ts';
import type { ActorRow, LiveModel, LogLine } from './model.ts';

/** Colours as Ink (chalk) names them. */
export type Colour = 'green' | 'red' | 'yellow' | 'blue' | 'cyan' | 'magenta' | 'gray' | 'white';

/** A run of text in one style. */
export interface Segment {
  text: string;
  color?: Colour;
  bold?: boolean;
  dim?: boolean;
  inverse?: boolean;
}

/** One screen line. */
export type Line = Segment[];

/** The UI's own state, besides the model. */
export interface ViewState {
  mode: 'full' | 'top';
  /** What the header calls the run (default: its id). */
  title?: string | undefined;
  width: number;
  height: number;
  now: number;
  /** The line being edited: the command line, or the log filter after `/`. */
  input: { kind: 'command' | 'filter'; text: string; cursor: number; hint?: string | undefined };
  /** The log filter (regular expression or text, case aside). */
  filter: string;
  /** The lowest level shown. */
  level: LogLevel;
  /** How many lines the log is scrolled back from its end (0: follows). */
  scroll: number;
}

const levelOrder: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };
const levelColour: Record<LogLevel, Colour | undefined> = {
  debug: 'gray',
  info: undefined,
  warn: 'yellow',
  error: 'red',
};

/** The colour of a pipeline's or an actor's state. */
export function stateColour(state: string): Colour {
  switch (state) {
    case 'running':
      return 'green';
    case 'failed':
      return 'red';
    case 'paused':
    case 'pausing':
      return 'yellow';
    case 'ready':
      return 'cyan';
    case 'stopped':
    case 'stopping':
      return 'blue';
    case 'exited':
    case 'quitting':
      return 'magenta';
    default:
      return 'gray';
  }
}

/** The number of characters of a line. */
export function lineLength(line: Line): number {
  let n = 0;
  for (const segment of line) n += textLength(segment.text);
  return n;
}

/** `line` cut to `width` characters (the last segment that does not fit is cut with `…`). */
export function clip(line: Line, width: number): Line {
  const out: Line = [];
  let room = width;
  for (const segment of line) {
    if (room <= 0) break;
    const length = textLength(segment.text);
    if (length <= room) {
      out.push(segment);
      room -= length;
    } else {
      out.push({ ...segment, text: truncate(segment.text, room) });
      room = 0;
    }
  }
  return out;
}

/** The plain text of a line (for tests and captures). */
export function lineText(line: Line): string {
  return line.map((segment) => segment.text).join('');
}

// ---------------------------------------------------------------------------------------------
// Tables

interface Column<T> {
  header: string;
  width: number;
  align: 'left' | 'right';
  /** Columns with a higher number are dropped first in a narrow terminal; 0 never. */
  drop: number;
  cell(row: T): Segment;
}

interface Table<T> {
  /** The first column takes the room the others leave, between `nameMin` and `namePreferred`. */
  name: { header: string; min: number; preferred: number; cell(row: T, width: number): Segment };
  columns: Column<T>[];
}

interface Laid<T> {
  nameWidth: number;
  columns: Column<T>[];
}

function layTable<T>(table: Table<T>, width: number): Laid<T> {
  let columns = [...table.columns];
  const used = () => columns.reduce((sum, column) => sum + column.width + 1, 0);
  while (used() + table.name.min > width) {
    const droppable = columns.filter((column) => column.drop > 0);
    if (droppable.length === 0) break;
    const first = droppable.reduce((a, b) => (b.drop > a.drop ? b : a));
    columns = columns.filter((column) => column !== first);
  }
  const nameWidth = Math.max(1, Math.min(table.name.preferred, width - used()));
  return { nameWidth, columns };
}

function headerLine<T>(table: Table<T>, laid: Laid<T>): Line {
  const line: Line = [{ text: fit(table.name.header, laid.nameWidth), bold: true }];
  for (const column of laid.columns)
    line.push({ text: ` ${fit(column.header, column.width, column.align)}`, bold: true });
  return line;
}

function rowLine<T>(table: Table<T>, laid: Laid<T>, row: T): Line {
  const name = table.name.cell(row, laid.nameWidth);
  const line: Line = [{ ...name, text: fit(name.text, laid.nameWidth) }];
  for (const column of laid.columns) {
    const cell = column.cell(row);
    line.push({ text: ' ' }, { ...cell, text: fit(cell.text, column.width, column.align) });
  }
  return line;
}

const plain = (text: string): Segment => ({ text });

/** A count, in `style` when above zero (errors red, restarts yellow). */
function countCell(value: unknown, style: Omit<Segment, 'text'>): Segment {
  const count = finite(value);
  return count !== undefined && count > 0 ? { text: formatCount(count), ...style } : plain(formatCount(count));
}

/** The load column: CPU of the actor's own process, else its event-loop utilisation (marked `e`). */
function loadCell(row: ActorRow): Segment {
  const cpu = finite(row.metrics?.cpu);
  if (cpu !== undefined) return plain(formatPercent(cpu));
  const elu = finite(row.metrics?.elu);
  if (elu !== undefined) return { text: `${formatPercent(elu)}e`, dim: false };
  return plain('-');
}

function actorTable(rows: ActorRow[]): Table<ActorRow> {
  const longest = Math.max(4, ...rows.map((row) => textLength(row.name)));
  return {
    name: {
      header: 'ACTOR',
      min: 6,
      preferred: Math.min(28, longest),
      cell: (row, width) => ({ text: truncate(row.name, width), bold: true }),
    },
    columns: [
      {
        header: 'STATE',
        width: 8,
        align: 'left',
        drop: 0,
        cell: (row) => ({ text: String(row.state), color: stateColour(String(row.state)) }),
      },
      { header: 'IN/S', width: 6, align: 'right', drop: 4, cell: (row) => plain(formatRate(row.inRate)) },
      { header: 'OUT/S', width: 6, align: 'right', drop: 2, cell: (row) => plain(formatRate(row.outRate)) },
      {
        header: 'STEP/S',
        width: 6,
        align: 'right',
        drop: 1,
        cell: (row) => plain(formatRate(row.metrics?.stepsPerSecond)),
      },
      {
        header: 'ERR',
        width: 5,
        align: 'right',
        drop: 3,
        cell: (row) => countCell(row.metrics?.errors, { color: 'red', bold: true }),
      },
      { header: 'P50ms', width: 6, align: 'right', drop: 7, cell: (row) => plain(formatMs(row.metrics?.stepMs?.p50)) },
      { header: 'P99ms', width: 6, align: 'right', drop: 5, cell: (row) => plain(formatMs(row.metrics?.stepMs?.p99)) },
      { header: 'CPU', width: 5, align: 'right', drop: 6, cell: loadCell },
      { header: 'HEAP', width: 6, align: 'right', drop: 8, cell: (row) => plain(formatMiB(row.metrics?.heapBytes)) },
      {
        header: 'RST',
        width: 3,
        align: 'right',
        drop: 9,
        cell: (row) => countCell(row.metrics?.restarts, { color: 'yellow' }),
      },
    ],
  };
}

type LinkRow = Partial<LinkMetrics>;

export function linkName(link: LinkRow): string {
  const end = (endpoint: { actor?: string; link?: string } | undefined) =>
    endpoint ? `${endpoint.actor ?? '?'}.${endpoint.link ?? '?'}` : '?';
  return `${end(link.from)} → ${end(link.to)}`;
}

function depthText(link: LinkRow): string {
  return `${formatCount(link.depth)}/${formatCount(link.capacity)}`;
}

function linkTable(rows: LinkRow[], width: number): Table<LinkRow> {
  const longest = Math.max(4, ...rows.map((row) => textLength(linkName(row))));
  const countWidth = Math.max(5, ...rows.map((row) => depthText(row).length));
  const barWidth = width >= 100 ? 12 : width >= 70 ? 8 : 4;
  return {
    name: {
      header: 'LINK',
      min: 12,
      preferred: Math.min(48, longest),
      cell: (row, nameWidth) => plain(truncateMiddle(linkName(row), nameWidth)),
    },
    columns: [
      {
        header: 'DEPTH',
        width: barWidth + 1 + countWidth,
        align: 'left',
        drop: 0,
        cell: (row) => {
          const depth = finite(row.depth) ?? 0;
          const capacity = finite(row.capacity) ?? 0;
          const fraction = capacity > 0 ? depth / capacity : 0;
          const colour: Colour = fraction >= 1 || row.waiting ? 'red' : fraction >= 0.75 ? 'yellow' : 'green';
          // One segment per cell: the bar's colour, then the count right-aligned in its own room.
          return { text: `${bar(fraction, barWidth)} ${fit(depthText(row), countWidth, 'right')}`, color: colour };
        },
      },
      { header: 'MSG/S', width: 6, align: 'right', drop: 1, cell: (row) => plain(formatRate(row.messagesPerSecond)) },
      {
        header: 'DROPS',
        width: 6,
        align: 'right',
        drop: 2,
        cell: (row) => {
          const dropped = finite(row.dropped);
          return dropped !== undefined && dropped > 0
            ? { text: formatCount(dropped), color: 'yellow' }
            : plain(formatCount(dropped));
        },
      },
      { header: 'P50ms', width: 6, align: 'right', drop: 4, cell: (row) => plain(formatMs(row.latencyMs?.p50)) },
      { header: 'P99ms', width: 6, align: 'right', drop: 3, cell: (row) => plain(formatMs(row.latencyMs?.p99)) },
    ],
  };
}

/** A table cut to `rows` lines (header included); the last shown row says how many more there are. */
function tableLines<T>(table: Table<T>, rows: T[], width: number, room: number, noun: string): Line[] {
  if (room <= 0) return [];
  const laid = layTable(table, width);
  const lines: Line[] = [headerLine(table, laid)];
  const shown = Math.max(0, room - 1);
  if (rows.length <= shown) {
    for (const row of rows) lines.push(rowLine(table, laid, row));
  } else if (shown > 0) {
    for (const row of rows.slice(0, shown - 1)) lines.push(rowLine(table, laid, row));
    lines.push([{ text: `… ${rows.length - (shown - 1)} more ${noun}`, dim: true }]);
  }
  return lines.map((line) => clip(line, width));
}

/** How many lines the actors and the links get out of `room` (headers included). */
function share(actors: number, links: number, room: number): [number, number] {
  const wantA = actors + 1;
  const wantL = links > 0 ? links + 1 : 0;
  if (wantA + wantL <= room) return [wantA, wantL];
  if (wantL === 0) return [Math.min(wantA, room), 0];
  const half = Math.ceil(room / 2);
  if (wantA <= half) return [wantA, room - wantA];
  if (wantL <= room - half) return [room - wantL, wantL];
  return [half, room - half];
}

// ---------------------------------------------------------------------------------------------
// Screen parts

function pipelineName(model: LiveModel): string {
  const file = String(model.source.info?.pipeline ?? '');
  const base = file.split(/[\\/]/).pop() ?? '';
  return base.replace(/\.ya?ml$/i, '');
}

function headerLine2(model: LiveModel, view: ViewState): Line {
  const info = model.source.info;
  const title = view.title ?? info?.id ?? pipelineName(model);
  const name = pipelineName(model);
  const state = model.state();
  const line: Line = [{ text: view.mode === 'top' ? 'improv top ' : 'improv ', bold: true, color: 'cyan' }];
  line.push({ text: title, bold: true });
  if (name !== '' && !title.startsWith(name)) line.push({ text: ` (${name})` });
  line.push({ text: '  ' }, { text: state, bold: true, color: stateColour(state) });
  const started = finite(info?.startedAt);
  if (started !== undefined) line.push({ text: `  up ${formatUptime(view.now - started)}` });
  if (info?.url && view.mode === 'full') line.push({ text: `  ${info.url}`, dim: true });
  return clip(line, view.width);
}

function storeLine(model: LiveModel, width: number): Line | undefined {
  const store = model.metrics?.store;
  if (!store) return undefined;
  const used = finite(store.usedBytes);
  const capacity = finite(store.capacityBytes);
  const fraction = used !== undefined && capacity !== undefined && capacity > 0 ? used / capacity : undefined;
  const line: Line = [{ text: 'store ', bold: true }, { text: String(store.driver ?? '?') }, { text: '  ' }];
  if (fraction !== undefined) {
    line.push(
      { text: bar(fraction, 10), color: fraction >= 0.9 ? 'red' : fraction >= 0.75 ? 'yellow' : 'green' },
      { text: ' ' },
    );
  }
  line.push({ text: `${formatBytes(used)} / ${formatBytes(capacity)}` });
  if (fraction !== undefined) line.push({ text: ` (${Math.round(fraction * 100)}%)` });
  line.push({ text: `, ${formatCount(store.objects)} objects` });
  return clip(line, width);
}

/** Whether a log line passes the level and text filters (the UI's own lines always do). */
export function logMatcher(level: LogLevel, filter: string): (line: LogLine) => boolean {
  const minimum = levelOrder[level] ?? 1;
  let test: ((text: string) => boolean) | undefined;
  if (filter !== '') {
    try {
      const pattern = new RegExp(filter, 'i');
      test = (text) => pattern.test(text);
    } catch {
      const lower = filter.toLowerCase();
      test = (text) => text.toLowerCase().includes(lower);
    }
  }
  return (line) => {
    if (line.note) return true;
    if ((levelOrder[line.level] ?? 1) < minimum) return false;
    return test === undefined || test(`${line.source}: ${line.text}`);
  };
}

function logLine(line: LogLine, width: number): Line {
  const time = line.cont ? '        ' : formatClock(line.time);
  if (line.note) {
    const colour: Colour =
      line.note === 'ok' ? 'green' : line.note === 'error' ? 'red' : line.note === 'command' ? 'cyan' : 'yellow';
    const prefix: Segment = { text: line.cont ? '' : `${time} `, dim: true };
    return clip([prefix, { text: line.text, color: colour }], width);
  }
  const colour = levelColour[line.level];
  if (line.cont)
    return clip([{ text: `${time}       ` }, { text: line.text, ...(colour ? { color: colour } : {}) }], width);
  return clip(
    [
      { text: `${time} `, dim: true },
      { text: line.level.toUpperCase().padEnd(5), ...(colour ? { color: colour } : {}), bold: line.level !== 'debug' },
      { text: ` ${line.source}: `, bold: true },
      { text: line.text, ...(colour ? { color: colour } : {}) },
    ],
    width,
  );
}

/** The log lines to show (the last `rows` that pass the filters, `scroll` lines back), and how many pass in all. */
export function visibleLog(model: LiveModel, view: ViewState, rows: number): { lines: LogLine[]; total: number } {
  const matches = logMatcher(view.level, view.filter);
  const passing = model.log.filter(matches);
  const back = Math.min(Math.max(0, view.scroll), Math.max(0, passing.length - rows));
  const end = passing.length - back;
  return { lines: passing.slice(Math.max(0, end - rows), end), total: passing.length };
}

function logTitle(view: ViewState, width: number, scrolled: number): Line {
  const left: Line = [
    { text: '─ log ', dim: true },
    { text: `≥${view.level}`, bold: true },
  ];
  if (view.filter !== '') left.push({ text: ' · filter ', dim: true }, { text: view.filter, color: 'yellow' });
  if (scrolled > 0) left.push({ text: ` · ${scrolled} back, End follows`, color: 'yellow' });
  const right: Line = [
    { text: ' F8', bold: true, color: 'cyan' },
    { text: ' level ' },
    { text: '/', bold: true, color: 'cyan' },
    { text: ' filter ' },
    { text: 'PgUp', bold: true, color: 'cyan' },
    { text: ' back ' },
  ];
  const used = lineLength(left) + 1;
  const rightLength = lineLength(right);
  if (used + rightLength + 1 <= width) {
    return [...left, { text: ` ${'─'.repeat(width - used - rightLength)}`, dim: true }, ...right];
  }
  return clip([...left, { text: ` ${'─'.repeat(Math.max(0, width - used))}`, dim: true }], width);
}

function inputLine(view: ViewState, width: number, pending: boolean): Line {
  const { input } = view;
  const prompt = input.kind === 'filter' ? 'filter> ' : 'improv> ';
  const promptSegment: Segment = { text: prompt, bold: true, color: input.kind === 'filter' ? 'yellow' : 'cyan' };
  const room = Math.max(1, width - prompt.length);
  const chars = Array.from(input.text);
  const cursor = Math.min(Math.max(0, input.cursor), chars.length);
  // Scroll the text sideways so the cursor (one cell) stays visible.
  const start = Math.max(0, cursor + 1 - room);
  const before = chars.slice(start, cursor).join('');
  const at = chars[cursor] ?? ' ';
  const after = chars.slice(cursor + 1, start + room).join('');
  const line: Line = [promptSegment, { text: before }, { text: at, inverse: true }, { text: after }];
  const hint = pending ? '(waiting for the answer…)' : input.hint;
  if (hint) line.push({ text: `  ${hint}`, dim: true });
  return clip(line, width);
}

function footer(view: ViewState, width: number): Line {
  const keys: [string, string][] =
    view.mode === 'top'
      ? [
          ['q', 'quit'],
          ['^C', 'quit'],
        ]
      : [
          ['F2', 'setup'],
          ['F3', 'run'],
          ['F4', 'pause'],
          ['F5', 'resume'],
          ['F6', 'stop'],
          ['F7', 'revive'],
          ['F10', 'quit'],
          ['^D', 'detach'],
          ['F1', 'keys'],
        ];
  const line: Line = [];
  for (const [key, label] of keys) {
    if (lineLength(line) + key.length + label.length + 2 > width) break;
    if (line.length > 0) line.push({ text: ' ' });
    line.push({ text: key, bold: true, color: 'cyan' }, { text: ` ${label}` });
  }
  return clip(line, width);
}

// ---------------------------------------------------------------------------------------------

/** The whole screen: at most `view.height` lines of at most `view.width` characters. `layout.logRows` gets the log's height. */
export function renderScreen(
  model: LiveModel,
  view: ViewState,
  pending = false,
  layout: { logRows?: number } = {},
): Line[] {
  const width = Math.max(10, view.width);
  const height = Math.max(3, view.height);
  const actors = model.actors();
  const links = model.links();
  const store = storeLine(model, width);
  const lines: Line[] = [headerLine2(model, { ...view, width })];

  if (view.mode === 'top') {
    const room = height - 2 - (store ? 1 : 0);
    const [actorRoom, linkRoom] = share(actors.length, links.length, room);
    lines.push(...tableLines(actorTable(actors), actors, width, actorRoom, 'actors'));
    lines.push(...tableLines(linkTable(links, width), links, width, linkRoom, 'links'));
    if (store) lines.push(store);
    while (lines.length < height - 1) lines.push([]);
    lines.push(footer(view, width));
    return lines.slice(0, height);
  }

  // full: header, tables, store, log title, log, command line, footer
  const fixed = 1 + (store ? 1 : 0) + 1 + 1 + 1;
  const room = Math.max(0, height - fixed);
  // The log keeps a third of the room (at least 3 lines; fewer in a very short terminal).
  const logMin = Math.min(room, room >= 12 ? Math.max(3, Math.floor(room / 3)) : Math.min(1, room));
  const [actorRoom, linkRoom] = share(actors.length, links.length, room - logMin);
  lines.push(...tableLines(actorTable(actors), actors, width, actorRoom, 'actors'));
  lines.push(...tableLines(linkTable(links, width), links, width, linkRoom, 'links'));
  if (store) lines.push(store);
  const logRows = Math.max(0, height - lines.length - 3);
  layout.logRows = logRows;
  const { lines: log, total } = visibleLog(model, view, logRows);
  const scrolled = Math.min(view.scroll, Math.max(0, total - logRows));
  lines.push(logTitle(view, width, scrolled));
  // The newest line sits just above the command line, as in a terminal.
  for (let blank = logRows - log.length; blank > 0; blank--) lines.push([]);
  for (const entry of log) lines.push(logLine(entry, width));
  while (lines.length < height - 2) lines.push([]);
  lines.push(inputLine(view, width, pending));
  lines.push(footer(view, width));
  return lines.slice(0, height);
}

/** The screen as plain text, one string per line (for tests and captures). */
export function screenText(lines: Line[]): string {
  return lines.map(lineText).join('\n');
}

export type { LogLine };
