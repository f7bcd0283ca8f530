import { afterEach, expect, it, vi } from 'vitest';
import { PUBLISH_EVERY_MS } from '../src/nexus-api.ts';
import { Publisher } from '../src/worker/_publisher.ts';
import type { PublishedMessage } from '../src/worker/protocol.ts';

afterEach(() => {
  vi.useRealTimers();
});

function watched(): { publisher: Publisher; sent: PublishedMessage[] } {
  const sent: PublishedMessage[] = [];
  const publisher = new Publisher(
    (message) => sent.push(message),
    () => {},
  );
  publisher.set(true);
  return { publisher, sent };
}

it('sends what a turn publishes after a quiet period at once, and the next values a period after that delivery', async () => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
  const { publisher, sent } = watched();
  publisher.publish('frame', new Uint16Array([1]));
  publisher.publish('mean', 1);
  expect(sent).toEqual([]); // not inside publish(): the rest of the turn goes with it
  await Promise.resolve();
  expect(sent.map((message) => message.name).sort()).toEqual(['frame', 'mean']);

  vi.advanceTimersByTime(PUBLISH_EVERY_MS - 6);
  publisher.publish('frame', new Uint16Array([2]));
  publisher.publish('frame', new Uint16Array([3]));
  await Promise.resolve();
  expect(sent).toHaveLength(2); // a delivery went less than a period ago: kept, newest only
  vi.advanceTimersByTime(6);
  expect(sent).toHaveLength(3);
  expect(sent[2]!.data).toMatchObject({ kind: 'latest', value: new Uint16Array([3]), skipped: 1 });

  // Quiet again for longer than a period: the next value goes at once.
  vi.advanceTimersByTime(3 * PUBLISH_EVERY_MS);
  publisher.publish('frame', new Uint16Array([4]));
  await Promise.resolve();
  expect(sent).toHaveLength(4);
});

it('drops what was kept, timer and all, when nobody watches any more', async () => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
  const { publisher, sent } = watched();
  publisher.publish('mean', 1);
  publisher.set(false);
  await Promise.resolve();
  vi.advanceTimersByTime(2 * PUBLISH_EVERY_MS);
  expect(sent).toEqual([]);
});
