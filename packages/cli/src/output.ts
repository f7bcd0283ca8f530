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

/** The `status` table: every actor (state, steps, errors) and every link (depth, sent, dropped, waiting). */
export function formatStatus(status: PipelineStatus): string {
  const width = Math.max(5, ...status.actors.map((actor) => actor.name.length));
  const stateWidth = Math.max(...status.actors.map((actor) => actor.state.length), 5);
  const lines = [`pipeline: ${status.state}`];
  for (const actor of status.actors) {
    const counts = `${actor.steps} step${actor.steps === 1 ? '' : 's'}${actor.errors > 0 ? `, ${actor.errors} error${actor.errors === 1 ? '' : 's'}` : ''}`;
    const error = actor.error ? `  ${describeError(actor.error)}` : '';
    const place = actor.process
      ? `  [${actor.process.runtime} process ${actor.process.pid}${actor.process.host ? ` on ${actor.process.host}` : ''}]`
      : '';
    const restarts = actor.restarts > 0 ? `, restarted ${actor.restarts}×` : '';
    lines.push(
      `  ${actor.name.padEnd(width)}  ${actor.state.padEnd(stateWidth)}  ${counts}${restarts}${place}${error}`,
    );
  }
  if (status.links.length > 0) {
    const names = status.links.map((link) => `${link.from.actor}.${link.from.link} → ${link.to.actor}.${link.to.link}`);
    const linkWidth = Math.max(...names.map((name) => name.length));
    lines.push('links:');
    status.links.forEach((link, index) => {
      const waiting =
        link.waitingMs !== undefined
          ? `  blocked: ${link.from.actor} has waited ${(link.waitingMs / 1000).toFixed(1)} s for room`
          : link.waiting
            ? '  blocked'
            : '';
      lines.push(
        `  ${names[index]!.padEnd(linkWidth)}  ${link.depth}/${link.capacity} waiting, ${link.sent} sent, ${link.dropped} dropped${waiting}`,
      );
    });
  }
  return lines.join('\n');
}
