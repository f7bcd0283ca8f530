/**
 * Starts a store fixture as a separate OS process of the runtime the tests run in, as a
 * WorkerHandle speaking JSON lines over stdio — what the store conformance suite's several-processes
 * test needs (`spawnProcess`).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { currentRuntimeName, type WorkerHandle } from '@improv/core';

const root = fileURLToPath(new URL('../../..', import.meta.url));

/** The command line that runs the TypeScript file `script` in this runtime (Node through tsx). */
export function runtimeCommand(script: string): [string, string[]] {
  const runtime = currentRuntimeName();
  if (runtime === 'deno') return [process.execPath, ['run', '-A', script]];
  if (runtime === 'bun') return [process.execPath, [script]];
  return [process.execPath, ['--import', 'tsx', script]];
}

/** Spawns `fixtures/store-process.ts` as a process; its stderr goes into the error of a failure. */
export function spawnStoreProcess(name: string): Promise<WorkerHandle> {
  const script = fileURLToPath(new URL('./fixtures/store-process.ts', import.meta.url));
  const [command, args] = runtimeCommand(script);
  // Bun: no transpiler cache in the child, whose modules `bun test` runs must not reuse.
  const env = { ...process.env, BUN_RUNTIME_TRANSPILER_CACHE_PATH: '0' };
  const child: ChildProcess = spawn(command, args, { cwd: root, env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const messageListeners: ((message: unknown) => void)[] = [];
  const errorListeners: ((error: Error) => void)[] = [];
  const exitListeners: ((code: number) => void)[] = [];
  let buffered = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    let newline = buffered.indexOf('\n');
    while (newline >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      if (line.trim() !== '') {
        const message: unknown = JSON.parse(line);
        for (const listener of messageListeners) listener(message);
      }
      newline = buffered.indexOf('\n');
    }
  });
  child.on('error', (error) => {
    for (const listener of errorListeners) listener(error);
  });
  const exited = new Promise<void>((resolve) => {
    child.on('exit', (code, signal) => {
      const status = code ?? (signal ? 128 : 1);
      if (status !== 0 && stderr.trim() !== '') {
        for (const listener of errorListeners) listener(new Error(`${name}: ${stderr.trim()}`));
      }
      for (const listener of exitListeners) listener(status);
      resolve();
    });
  });
  return Promise.resolve({
    postMessage(message) {
      child.stdin!.write(`${JSON.stringify(message)}\n`);
    },
    onMessage(listener) {
      messageListeners.push(listener);
    },
    onError(listener) {
      errorListeners.push(listener);
    },
    onExit(listener) {
      exitListeners.push(listener);
    },
    async terminate() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  });
}
