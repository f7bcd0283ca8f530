/**
 * The interactive prompt of `improv run`: reads commands line by line (from a terminal or a pipe)
 * and prints log lines above the prompt without mangling what is being typed.
 * @module
 */
import process from 'node:process';
import { createInterface, type Interface } from 'node:readline';

/** What {@link startPrompt} needs. */
export interface PromptOptions {
  /** Called for each line; the next line is read once it resolves. */
  onLine(line: string): Promise<void>;
  /**
   * Lines that must never wait long (status, quit): they keep their place in line, but one still
   * waiting after {@link URGENT_AFTER_MS} — an earlier command hangs — is handled at once.
   */
  urgent?(line: string): boolean;
  /** Called at end of input (Ctrl-D, or the pipe closed). */
  onEnd(): void;
  /**
   * Tab completion in a terminal: whole lines that complete `line`, e.g.
   * `(line) => completions(line, actors)` from `command-line.ts`.
   */
  complete?(line: string): string[];
}

/** A running prompt. */
export interface Prompt {
  /** Prints a line above the prompt. */
  print(line: string): void;
  close(): void;
}

/** How long an urgent line waits behind earlier ones before it is handled anyway. */
export const URGENT_AFTER_MS = 1000;

/** Whether a read or write failed because the terminal (or the reader) at its end is gone. */
export function isHangUpError(error: { code?: string }): boolean {
  return error.code === 'EIO' || error.code === 'EPIPE' || error.code === 'ECONNRESET';
}

/** A read from a terminal that was closed (EIO) ends the input; any other error is thrown. */
export function endOfInputError(error: { code?: string }): void {
  if (!isHangUpError(error)) throw error;
}

/** Starts the prompt on stdin/stdout. */
export function startPrompt(options: PromptOptions): Prompt {
  const terminal = Boolean(process.stdin.isTTY && process.stdout.isTTY);
  // A closed terminal fails reads with EIO (while its SIGHUP quits the pipeline): the end of input.
  // Left on after close(): the error may come while the pipeline still quits.
  if (!process.stdin.listeners('error').includes(endOfInputError)) process.stdin.on('error', endOfInputError);
  const complete = options.complete;
  const rl: Interface = createInterface({
    input: process.stdin,
    output: process.stdout,
    terminal,
    prompt: 'improv> ',
    ...(complete ? { completer: (line: string): [string[], string] => [complete(line), line] } : {}),
  });
  let closed = false;
  let queue = Promise.resolve();
  const handle = (line: string) =>
    options.onLine(line).then(() => {
      if (!closed && terminal) rl.prompt();
    });
  rl.on('line', (line) => {
    if (!options.urgent?.(line)) {
      queue = queue.then(() => handle(line));
      return;
    }
    // In order when the line before it is quick (a piped script stays a script); at once when not.
    let started = false;
    const start = () => {
      if (started) return Promise.resolve();
      started = true;
      clearTimeout(timer);
      return handle(line);
    };
    const timer = setTimeout(() => void start(), URGENT_AFTER_MS);
    queue = queue.then(start);
  });
  // readline resets the terminal when the input ends: a closed terminal fails that with EIO.
  rl.on('error', endOfInputError);
  rl.on('close', () => {
    if (!closed) {
      closed = true;
      void queue.then(() => options.onEnd());
    }
  });
  // Ctrl-C at the prompt quits like SIGINT does (readline swallows the signal in a terminal).
  // A real signal, not process.emit: Deno's adapter listens through Deno.addSignalListener.
  rl.on('SIGINT', () => process.kill(process.pid, 'SIGINT'));
  if (terminal) rl.prompt();
  return {
    print(line) {
      if (terminal && !closed) {
        process.stdout.write('\r\x1b[K');
        process.stdout.write(`${line}\n`);
        rl.prompt(true);
      } else {
        process.stdout.write(`${line}\n`);
      }
    },
    close() {
      if (!closed) {
        closed = true;
        rl.close();
      }
    },
  };
}
