import { expect, it } from 'vitest';
import { formatBytes, formatUptime } from '../src/format.ts';

it('formatBytes writes sizes as every front end and store message shows them', () => {
  expect(formatBytes(0)).toBe('0 B');
  expect(formatBytes(1023)).toBe('1023 B');
  expect(formatBytes(512.6)).toBe('513 B'); // a rate in bytes per second
  expect(formatBytes(1024)).toBe('1.00 KiB');
  expect(formatBytes(2000)).toBe('1.95 KiB');
  expect(formatBytes(16 * 2 ** 20)).toBe('16.00 MiB');
  expect(formatBytes(1.5 * 2 ** 30)).toBe('1.50 GiB');
  expect(formatBytes(2 ** 50)).toBe('1024.00 TiB');
});

it('formatUptime writes the time since a start', () => {
  expect(formatUptime(45_000)).toBe('0:45');
  expect(formatUptime(3_723_000)).toBe('1:02:03');
  expect(formatUptime(2 * 86_400_000 + 3 * 3_600_000 + 4 * 60_000 + 5000)).toBe('2d 03:04:05');
});
