/**
 * The run's recent log, kept in memory for clients that attach later (`improv logs`, the TUI, the
 * dashboard): the last {@link HISTORY} records, and every new one to listeners.
 * @module
 */
import { type LogLevel, type LogRecord, logLevels } from '@improv/core';

/** Records kept. */
export const HISTORY = 5000;

/** What {@link LogHistory.recent} and `improv logs` filter by. */
export interface LogFilter {
  /** Only this source (an actor's name, or `nexus`), case-insensitive. */
  actor?: string;
  /** Only this level and above. */
  level?: LogLevel;
  /** Only records whose `source: message` matches. */
  grep?: RegExp;
}

/** Does `record` pass `filter`? */
export function matchesFilter(record: LogRecord, filter: LogFilter): boolean {
  if (filter.actor !== undefined && record.source.toLowerCase() !== filter.actor.toLowerCase()) return false;
  if (filter.level !== undefined && logLevels.indexOf(record.level) < logLevels.indexOf(filter.level)) return false;
  if (filter.grep !== undefined) {
    filter.grep.lastIndex = 0;
    if (!filter.grep.test(`${record.source}: ${record.message}`)) return false;
  }
  return true;
}

export class LogHistory {
  readonly #records: LogRecord[] = [];
  readonly #listeners = new Set<(record: LogRecord) => void>();

  push(record: LogRecord): void {
    this.#records.push(record);
    if (this.#records.length > HISTORY) this.#records.splice(0, this.#records.length - HISTORY);
    for (const listener of this.#listeners) listener(record);
  }

  /** The last `limit` records that pass `filter`, oldest first. */
  recent(limit: number, filter: LogFilter = {}): LogRecord[] {
    const found: LogRecord[] = [];
    for (let i = this.#records.length - 1; i >= 0 && found.length < limit; i--) {
      const record = this.#records[i]!;
      if (matchesFilter(record, filter)) found.push(record);
    }
    return found.reverse();
  }

  /** Every later record; returns the function that stops it. */
  on(listener: (record: LogRecord) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
