/**
 * Actors in OS processes of their own, shared by the Node, Bun and Deno adapters (package-private;
 * all three implement `node:child_process` and `node:net`). A process runs `node-process-child.mjs`
 * under the runtime asked for, which connects back to a Unix socket made for it alone (in the
 * temporary folder, mode 0600, removed once the child is in), proves itself with a one-time token,
 * and then runs the same entry a worker would (`runWorker(endpoint)`) over a
 * {@link ProcessChannel}. Its stdout and stderr (what the actor's console capture cannot see:
 * native code, the runtime's own warnings and crash reports) come back line by line.
 *
 * The handle reports the end once both the process has exited and its channel is drained, so every
 * message it sent is delivered before `onExit`. A process whose parent dies loses its channel and
 * ends itself.
 * @module
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { constants, tmpdir } from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { siblingModule } from '../_module-url.ts';
import { deserializeError, RuntimeUnavailableError, type SerializedError } from '../errors.ts';
import { forwardLines } from './_node-output-lines.ts';
import { ProcessChannel } from './_node-process-channel.ts';
import { type Command, pythonCommand } from './_node-python.ts';
import { createWorkerEvents } from './_worker-events.ts';
import type { ProcessHandle, ProcessRuntime, SpawnProcessOptions } from './adapter.ts';
import { runtimeInstallHelp } from './current.ts';
import { findRuntime, scriptArguments } from './node-binaries.ts';

const bootstrap = fileURLToPath(new URL('./node-process-child.mjs', import.meta.url));
const channelModule = siblingModule(import.meta.url, './_node-process-channel');
const helloType = '__improv_hello';
const errorType = '__improv_error';
/** How long a started process may take to connect and load its entry (a cold Deno or tsx start takes a few seconds). */
const START_TIMEOUT_MS = 60_000;
/** Lines of stderr kept to explain a process that died before it was ready. */
const STDERR_TAIL_LINES = 20;

/** Starts an actor process; resolves once it connected and its entry is loaded (`hello`). */
export async function spawnProcess(options: SpawnProcessOptions): Promise<ProcessHandle> {
  const command =
    options.runtime === 'python'
      ? await pythonCommand(options.name, options.interpreter)
      : jsCommand(options.name, options.runtime, options.maxHeapMb);
  const socketPath = path.join(tmpdir(), `improv-${process.pid}-${randomBytes(6).toString('hex')}.sock`);
  const token = randomBytes(24).toString('hex');
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  chmodSync(socketPath, 0o600);
  const closeServer = () => {
    server.close();
    rmSync(socketPath, { force: true });
  };
  let child: ChildProcess;
  try {
    child = spawn(command.binary, command.args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        ...command.env,
        IMPROV_PROCESS_SOCKET: socketPath,
        IMPROV_PROCESS_TOKEN: token,
        IMPROV_PROCESS_ENTRY: options.entry,
        IMPROV_PROCESS_CHANNEL: channelModule,
        IMPROV_PROCESS_NAME: options.name,
      },
    });
  } catch (error) {
    closeServer();
    throw error;
  }
  return attach(child, server, closeServer, token, options);
}

/** A JavaScript runtime running the bootstrap, which runs `options.entry`. */
function jsCommand(name: string, runtime: ProcessRuntime, maxHeapMb: number | undefined): Command {
  const binary = findRuntime(runtime);
  if (binary === undefined) {
    throw new RuntimeUnavailableError(
      `cannot start actor "${name}" on ${runtime}: it is not installed here; ${runtimeInstallHelp[runtime]}`,
    );
  }
  return { binary, args: scriptArguments(runtime, bootstrap, maxHeapMb) };
}

function attach(
  child: ChildProcess,
  server: Server,
  closeServer: () => void,
  token: string,
  options: SpawnProcessOptions,
): Promise<ProcessHandle> {
  const outputListeners: ((line: string, stream: 'stdout' | 'stderr') => void)[] = [];
  const stderrTail: string[] = [];
  for (const stream of ['stdout', 'stderr'] as const) {
    const output = child[stream];
    if (output) forwardLines(output, (line) => emitLine(line, stream));
  }
  function emitLine(line: string, stream: 'stdout' | 'stderr') {
    if (stream === 'stderr') {
      stderrTail.push(line);
      if (stderrTail.length > STDERR_TAIL_LINES) stderrTail.shift();
    }
    for (const listener of outputListeners) listener(line, stream);
  }

  let channel: ProcessChannel | undefined;
  let exitCode: number | undefined;
  let channelClosed = false;
  let errorReported = false;
  let markGone!: () => void;
  const gone = new Promise<void>((resolve) => {
    markGone = resolve;
  });
  const events = createWorkerEvents(
    (message, transfer) => {
      if (transfer !== undefined && transfer.length > 0) {
        throw new TypeError(`actor "${options.name}" runs in its own process: nothing can be transferred to it`);
      }
      channel?.send(message);
    },
    async () => {
      if (exitCode === undefined) child.kill('SIGKILL');
      await gone;
    },
  );
  const handle: ProcessHandle = {
    ...events.handle,
    pid: child.pid ?? -1,
    runtime: options.runtime,
    onOutput: (listener) => void outputListeners.push(listener),
  };

  return new Promise((resolve, reject) => {
    let ready = false;
    const startTimer = setTimeout(() => {
      fail(
        new Error(
          `actor "${options.name}": its ${options.runtime} process did not start within ${START_TIMEOUT_MS / 1000} s`,
        ),
      );
      child.kill('SIGKILL');
    }, START_TIMEOUT_MS);
    const fail = (error: Error) => {
      if (ready) return;
      ready = true;
      clearTimeout(startTimer);
      closeServer();
      reject(error);
    };
    const ended = () => {
      if (exitCode === undefined || (channel !== undefined && !channelClosed)) return;
      clearTimeout(startTimer);
      closeServer();
      if (!ready) {
        const tail = stderrTail.filter((line) => line.trim() !== '').join('\n');
        fail(
          new Error(
            `actor "${options.name}": its ${options.runtime} process exited with code ${exitCode} before it was ready${tail ? `:\n${tail}` : ''}`,
          ),
        );
      }
      // A process that died without reporting an error (out of memory, a native crash) often said why on stderr.
      const telling = exitCode !== 0 && !errorReported ? tellingLine(stderrTail) : undefined;
      if (telling !== undefined) events.error(new Error(`${telling} (exit code ${exitCode})`));
      events.exit(exitCode);
      markGone();
    };
    child.once('error', (error) => {
      // Not started at all (the binary could not be run): no `exit` follows.
      fail(new Error(`actor "${options.name}": could not start ${options.runtime}: ${error.message}`));
      exitCode ??= 1;
      channelClosed = true;
      events.exit(exitCode);
      markGone();
    });
    child.once('exit', (code, signal) => {
      exitCode = code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0);
      // The output streams end with the process; let their last lines come in first.
      setTimeout(ended, 0);
    });
    server.on('connection', (socket: Socket) => {
      if (channel !== undefined) {
        socket.destroy(); // one child, one channel
        return;
      }
      const candidate = new ProcessChannel(socket, 'parent');
      let proven = false;
      candidate.onClose(() => {
        if (!proven) return;
        channelClosed = true;
        ended();
      });
      candidate.onMessage((message) => {
        const typed = message as { type?: unknown; token?: unknown; error?: SerializedError } | null;
        if (!proven) {
          if (typed?.token !== token) {
            socket.destroy();
            return;
          }
          proven = true;
          channel = candidate;
          closeServer();
          return;
        }
        if (typed?.type === helloType && !ready) {
          ready = true;
          clearTimeout(startTimer);
          resolve(handle);
        } else if (typed?.type === errorType && typed.error) {
          errorReported = true;
          const error = deserializeError(typed.error);
          if (!ready) fail(error);
          events.error(error);
        } else {
          events.message(message);
        }
      });
    });
  });
}

/** The line of a crashed process's stderr that says what went wrong (V8's fatal errors, a panic, a signal), if any. */
function tellingLine(lines: readonly string[]): string | undefined {
  return lines.find((line) => /fatal|out of memory|panic|segmentation fault|error:/i.test(line))?.trim();
}
