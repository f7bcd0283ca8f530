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
  /** Called at end of input (Ctrl-D, or the pipe closed). */
  onEnd(): void;
}

/** A running prompt. */
export interface Prompt {
  /** Prints a line above the prompt. */
  print(line: string): void;
  close(): void;
}

/** Starts the prompt on stdin/stdout. */
export function startPrompt(options: PromptOptions): Prompt {
  const terminal = Boolean(process.stdin.isTTY && process.stdout.isTTY);
  const rl: Interface = createInterface({ input: process.stdin, output: process.stdout, terminal, prompt: 'improv> ' });
  let closed = false;
  let queue = Promise.resolve();
  rl.on('line', (line) => {
    queue = queue
      .then(() => options.onLine(line))
      .then(() => {
        if (!closed && terminal) rl.prompt();
      });
  });
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
