import { afterEach, expect, it, vi } from 'vitest';
import { PUBLISH_EVERY_MS, type PublishedSeries } from '../src/nexus-api.ts';
import { Publisher } from '../src/worker/_publisher.ts';
import type { PublishedMessage } from '../src/worker/protocol.ts';

afterEach(() => {
  vi.useRealTimers();
});

function watched(): { publisher: Publisher; sent: PublishedMessage[]; moved: (readonly ArrayBuffer[])[] } {
  const sent: PublishedMessage[] = [];
  const moved: (readonly ArrayBuffer[])[] = [];
  const publisher = new Publisher(
    (message, transfer) => {
      sent.push(message);
      moved.push(transfer);
    },
    () => {},
  );
  publisher.set(true);
  return { publisher, sent, moved };
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

it("moves the buffers of its own copies of a value's typed arrays up, never the actor's, and none with a series", async () => {
  const { publisher, sent, moved } = watched();
  const frame = new Uint16Array([1, 2, 3, 4]);
  const trace = new Float32Array([0.5]);
  publisher.publish('image', { array: frame, shape: [2, 2], trace });
  publisher.publish('image', 7); // the same name as a series point as well
  await Promise.resolve();
  const image = sent.findIndex((message) => message.data.kind === 'latest');
  const series = sent.findIndex((message) => message.data.kind === 'series');
  expect(moved[series]).toEqual([]);
  const value = (sent[image]!.data as { value: { array: Uint16Array; trace: Float32Array } }).value;
  expect(moved[image]).toEqual([value.array.buffer, value.trace.buffer]);
  expect(moved[image]).not.toContain(frame.buffer);
  expect(value.array).toEqual(frame);
  expect(value.array.buffer).not.toBe(frame.buffer);
});

it('refuses in the step an { array, shape } whose shape does not hold the array (the page could show only text)', () => {
  const { publisher } = watched();
  expect(() => publisher.publish('frame', { array: new Uint8Array(10), shape: [100, 100] })).toThrow(
    'publish("frame", { array, shape }): shape [100, 100] holds 10000 elements but the array has 10; give the shape of the array (rows, columns)',
  );
  expect(() => publisher.publish('frame', { array: new Uint16Array(6), shape: [2, 3] })).not.toThrow();
  expect(() => publisher.publish('frame', { array: new Uint16Array(6), shape: [2, 'x'] })).toThrow(
    /is not a list of whole numbers/,
  );
  // Nobody watches: publishing stays one boolean test, nothing is checked.
  publisher.set(false);
  expect(() => publisher.publish('frame', { array: new Uint8Array(10), shape: [100, 100] })).not.toThrow();
});

it('refuses in the step a value that would reach the page changed (an invalid Date, an Error, a RegExp)', () => {
  const { publisher } = watched();
  expect(() => publisher.publish('when', { at: new Date('soon') })).toThrow(
    /^publish\("when", …\): an invalid Date .* would arrive as 1970-01-01/,
  );
  expect(() => publisher.publish('last error', new Error('boom'))).toThrow(
    /publish\("last error", …\): the Error "boom"/,
  );
  expect(() => publisher.publish('pattern', [/a+/])).toThrow(/the RegExp \/a\+\/ would arrive as \{\}/);
  expect(() => publisher.publish('when', { at: new Date(5) })).not.toThrow();
});

it('marks a field a series point lacked as null, and keeps a published NaN as NaN', async () => {
  const { publisher, sent } = watched();
  publisher.publish('stats', { a: 1 });
  publisher.publish('stats', { a: 2, b: Number.NaN });
  publisher.publish('stats', { b: 3 });
  await Promise.resolve();
  const data = sent.find((message) => message.name === 'stats')!.data as PublishedSeries;
  expect(data.values.a).toEqual([1, 2, null]);
  expect(data.values.b).toEqual([null, Number.NaN, 3]);
});
