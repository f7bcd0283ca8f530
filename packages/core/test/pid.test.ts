import { spawnSync } from 'node:child_process';
import process from 'node:process';
import { expect, it, vi } from 'vitest';
import { processAlive } from '../src/runtime/node-pid.ts';

it('processAlive: this process runs, an ended one does not, and a pid naming a process group is no process', () => {
  expect(processAlive(process.pid)).toBe(true);
  const ended = spawnSync(process.execPath, ['-e', '']).pid;
  expect(ended).toBeGreaterThan(0);
  expect(processAlive(ended!)).toBe(false);
  for (const pid of [0, -1, 1.5, Number.NaN]) expect(processAlive(pid)).toBe(false);
});

it('processAlive counts a process of another user (kill says EPERM) only when asked to', () => {
  const kill = vi.spyOn(process, 'kill').mockImplementation(() => {
    throw Object.assign(new Error('kill EPERM'), { code: 'EPERM' });
  });
  try {
    expect(processAlive(4_000_000)).toBe(true);
    expect(processAlive(4_000_000, { othersCount: false })).toBe(false);
  } finally {
    kill.mockRestore();
  }
});
