/**
 * A worker's or a process's own stdout and stderr, line by line (package-private): what the
 * actor's console capture cannot see (`process.stdout.write`, native code, the runtime's warnings).
 * @module
 */
import process from 'node:process';

/** The part of a readable stream (`node:stream`) this needs. */
export interface OutputStream {
  setEncoding(encoding: 'utf8'): unknown;
  on(event: 'data', listener: (text: string) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
}

/** Text as it comes, in pieces, cut into lines: `push` each piece, `end` once (the last line may lack its newline). */
export interface LineSplitter {
  push(text: string): void;
  end(): void;
}

/** Calls `onLine` for every line of the text pushed into it (without its newline). */
export function splitLines(onLine: (line: string) => void): LineSplitter {
  let partial = '';
  return {
    push(text) {
      const lines = (partial + text).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) onLine(line);
    },
    end() {
      if (partial !== '') onLine(partial);
      partial = '';
    },
  };
}

/** Calls `onLine` for every line `stream` carries (without its newline), the last one also without one. */
export function forwardLines(stream: OutputStream, onLine: (line: string) => void): void {
  const splitter = splitLines(onLine);
  stream.setEncoding('utf8');
  stream.on('data', (text: string) => splitter.push(text));
  stream.on('end', () => splitter.end());
}

/**
 * The message a worker's bootstrap posts for what the worker writes to its stdout or stderr, where
 * the runtime cannot hand that to the parent itself (see `worker-output.mjs`).
 */
export interface WorkerOutputMessage {
  type: '__improv_output';
  stream: 'stdout' | 'stderr';
  text: string;
}

export function isWorkerOutput(message: unknown): message is WorkerOutputMessage {
  return (message as { type?: unknown } | null)?.type === '__improv_output';
}

/**
 * A worker's output, line by line to its listeners (or, until one listens, to this process's stdout or
 * stderr): whole lines (`line`), or {@link WorkerOutputMessage}s (`take` each, `end` at the worker's exit).
 */
export function workerOutputLines(): {
  listeners: ((line: string, stream: 'stdout' | 'stderr') => void)[];
  /** A whole line (from the worker's streams, cut already). */
  line(line: string, stream: 'stdout' | 'stderr'): void;
  take(message: WorkerOutputMessage): void;
  end(): void;
} {
  const listeners: ((line: string, stream: 'stdout' | 'stderr') => void)[] = [];
  const line = (text: string, stream: 'stdout' | 'stderr') => {
    if (listeners.length === 0) process[stream].write(`${text}\n`);
    for (const listener of listeners) listener(text, stream);
  };
  const streams = {
    stdout: splitLines((text) => line(text, 'stdout')),
    stderr: splitLines((text) => line(text, 'stderr')),
  };
  return {
    listeners,
    line,
    take: (message) => streams[message.stream].push(message.text),
    end() {
      streams.stdout.end();
      streams.stderr.end();
    },
  };
}
