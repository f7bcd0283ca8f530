import { spawn } from 'node:child_process';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { currentRuntimeName } from '../src/runtime/detect.ts';

const script = fileURLToPath(new URL('./fixtures/workers/leave-no-handle.mjs', import.meta.url));
/** Ample for five workers; only a process that never exits reaches it. */
const HANG_MS = 30_000;

it(`leaves no handle open once its workers ended: the ${currentRuntimeName()} process exits on its own`, async () => {
  const args = currentRuntimeName() === 'deno' ? ['run', '-A', script] : [script];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (chunk) => {
    out += chunk;
  });
  child.stderr.on('data', (chunk) => {
    out += chunk;
  });
  let hung = false;
  const timer = setTimeout(() => {
    hung = true;
    child.kill('SIGKILL');
  }, HANG_MS);
  const code = await new Promise<number | null>((resolve) => child.on('exit', (exitCode) => resolve(exitCode)));
  clearTimeout(timer);
  expect(hung, `the process did not exit within ${HANG_MS} ms of starting; output:\n${out}`).toBe(false);
  expect(out).toMatch(
    /every worker ended: closed=0 crashed=[1-9]\d* exited=3 busy-terminated=[1-9]\d* waiting-terminated=[1-9]\d*/,
  );
  expect(code).toBe(0);
}, 60_000);
