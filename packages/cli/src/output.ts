/**
 * How the CLI prints log records, states and errors.
 * @module
 */
import { describeError, formatLogRecord, type LogLevel, type LogRecord, type PipelineStatus } from '@improv/core';

const colours: Record<LogLevel, string> = { debug: '\x1b[2m', info: '', warn: '\x1b[33m', error: '\x1b[31m' };
const reset = '\x1b[0m';

/** Where the CLI writes, and whether it may colour. */
export interface Output {
  write(line: string): void;
  colour: boolean;
}

/** A log record as one line (or several, with the stack of an error). */
export function formatRecord(record: LogRecord, output: Output): string {
  const text = formatLogRecord(record, { stack: record.level === 'error' });
  const colour = colours[record.level];
  return output.colour && colour ? `${colour}${text}${reset}` : text;
}

/** The `status` table. */
export function formatStatus(status: PipelineStatus): string {
  const width = Math.max(5, ...status.actors.map((actor) => actor.name.length));
  const lines = [`pipeline: ${status.state}`];
  for (const actor of status.actors) {
    const error = actor.error ? `  ${describeError(actor.error)}` : '';
    lines.push(`  ${actor.name.padEnd(width)}  ${actor.state}${error}`);
  }
  return lines.join('\n');
}
