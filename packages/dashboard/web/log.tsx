/**
 * The log: newest at the bottom, coloured by level, at most {@link LOG_LIMIT} lines, following the
 * end unless scrolled back. Lines are made as text nodes only: a record is never read as HTML.
 * @module
 */
import type { LogLevel, LogRecord } from '@improv/core';
import { memo } from 'preact/compat';
import { useLayoutEffect, useRef, useState } from 'preact/hooks';
import { clock } from './format.ts';
import { type Live, LOG_LIMIT } from './live.ts';

const levels: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

function lineOf(record: LogRecord): HTMLElement {
  const line = document.createElement('div');
  line.className = `log-line level-${record.level}`;
  const parts: [string, string][] = [
    ['time', clock(record.time)],
    ['level', record.level.toUpperCase()],
    ['source', record.source],
    ['message', record.message],
  ];
  for (const [name, text] of parts) {
    const span = document.createElement('span');
    span.className = name;
    span.textContent = text;
    line.append(span);
  }
  if (record.stack !== undefined) {
    line.title = record.stack;
    const stack = document.createElement('div');
    stack.className = 'stack';
    stack.textContent = record.stack.split('\n').slice(1, 4).join('\n');
    line.append(stack);
  }
  return line;
}

export const LogPanel = memo(function LogPanel({ live }: { live: Live }) {
  const body = useRef<HTMLDivElement>(null);
  const count = useRef<HTMLSpanElement>(null);
  const [level, setLevel] = useState<LogLevel>('info');
  const [filter, setFilter] = useState('');

  useLayoutEffect(() => {
    const element = body.current;
    if (element === null) return;
    const least = levels.indexOf(level);
    const needle = filter.trim().toLowerCase();
    const shows = (record: LogRecord) =>
      levels.indexOf(record.level) >= least &&
      (needle === '' || `${record.source} ${record.message}`.toLowerCase().includes(needle));
    const append = (records: LogRecord[]) => {
      const following = element.scrollTop + element.clientHeight >= element.scrollHeight - 8;
      const fragment = document.createDocumentFragment();
      for (const record of records) if (shows(record)) fragment.append(lineOf(record));
      element.append(fragment);
      let over = element.childElementCount - LOG_LIMIT;
      while (over-- > 0) element.firstElementChild?.remove();
      if (following) element.scrollTop = element.scrollHeight;
      if (count.current !== null) count.current.textContent = `${element.childElementCount} lines`;
    };
    element.replaceChildren();
    append(live.logs);
    element.scrollTop = element.scrollHeight;
    return live.onLogs((records, reset) => {
      if (reset) element.replaceChildren();
      append(records);
    });
  }, [live, level, filter]);

  return (
    <section class="panel log-panel">
      <header class="panel-head">
        <span class="panel-title">log</span>
        <select
          value={level}
          title="show this level and above"
          onChange={(event) => setLevel((event.currentTarget as HTMLSelectElement).value as LogLevel)}
        >
          {levels.map((name) => (
            <option key={name} value={name}>
              ≥ {name}
            </option>
          ))}
        </select>
        <input
          type="search"
          placeholder="filter (actor or text)"
          value={filter}
          onInput={(event) => setFilter(event.currentTarget.value)}
        />
        <span class="dim" ref={count} />
      </header>
      <div class="log" ref={body} />
    </section>
  );
});
