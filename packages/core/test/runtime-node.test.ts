import { describe, expect, it } from 'vitest';
import { createNodeRuntime } from '../src/runtime/node.ts';

const runtime = createNodeRuntime();
const entry = new URL('./fixtures/workers/echo.ts', import.meta.url).href;

function nextMessage(worker: Awaited<ReturnType<typeof runtime.spawnWorker>>): Promise<unknown> {
  return new Promise((resolve) => worker.onMessage(resolve));
}

describe('node runtime adapter', () => {
  it('starts a TypeScript worker, exchanges messages posted right after start, and ends it cleanly', async () => {
    const worker = await runtime.spawnWorker({ name: 'echo', entry });
    const reply = nextMessage(worker);
    worker.postMessage({ type: 'ping', value: 42 });
    expect(await reply).toEqual({ type: 'echo', value: 42 });
    const exited = new Promise<number>((resolve) => worker.onExit(resolve));
    worker.postMessage({ type: 'quit' });
    expect(await exited).toBe(0);
  });

  it('reports an uncaught error in the worker and its exit', async () => {
    const worker = await runtime.spawnWorker({ name: 'crash', entry });
    const error = new Promise<Error>((resolve) => worker.onError(resolve));
    const exited = new Promise<number>((resolve) => worker.onExit(resolve));
    worker.postMessage({ type: 'crash' });
    expect((await error).message).toContain('crashed on purpose');
    expect(await exited).not.toBe(0);
  });

  it('reports process.exit in the worker as an exit with its code', async () => {
    const worker = await runtime.spawnWorker({ name: 'exit', entry });
    const exited = new Promise<number>((resolve) => worker.onExit(resolve));
    worker.postMessage({ type: 'exit' });
    expect(await exited).toBe(7);
  });

  it('rejects when the entry cannot be loaded', async () => {
    await expect(
      runtime.spawnWorker({ name: 'missing', entry: new URL('./fixtures/workers/nope.ts', import.meta.url).href }),
    ).rejects.toThrow(/nope/);
  });
});
