/**
 * A worker's or a process's own stdout and stderr, line by line (package-private): what the
 * actor's console capture cannot see (`process.stdout.write`, native code, the runtime's warnings).
 * @module
 */

/** The part of a readable stream (`node:stream`) this needs. */
export interface OutputStream {
  setEncoding(encoding: 'utf8'): unknown;
  on(event: 'data', listener: (text: string) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
}

/** Calls `onLine` for every line `stream` carries (without its newline), the last one also without one. */
export function forwardLines(stream: OutputStream, onLine: (line: string) => void): void {
  let partial = '';
  stream.setEncoding('utf8');
  stream.on('data', (text: string) => {
    const lines = (partial + text).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) onLine(line);
  });
  stream.on('end', () => {
    if (partial !== '') onLine(partial);
    partial = '';
  });
}
