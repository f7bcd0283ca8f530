// The server's per-page queue of what actors publish: at most two `plots` messages unanswered, at
// most one per PUBLISH_EVERY_MS, what comes after a quiet period at once, and deliveries of several
// actors within one period sent together, merged per stream.
import { PUBLISH_EVERY_MS, type Published } from '@improv/core';
import { afterEach, expect, it, vi } from 'vitest';
import { PLOTS_IN_FLIGHT, PlotQueue } from '../src/control/plots.ts';

afterEach(() => {
  vi.useRealTimers();
});

const point = (actor: string, value: number): Published => ({
  actor,
  name: 'mean',
  data: { kind: 'series', times: [value], values: { value: [value] }, skipped: 0 },
});
const image = (actor: string, value: number): Published => ({
  actor,
  name: 'frame',
  data: { kind: 'latest', time: value, value: new Uint16Array([value]), skipped: 0 },
});

it('sends after a quiet period at once, then at most one message a period, merging what several actors deliver meanwhile', () => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
  const sent: Published[][] = [];
  const queue = new PlotQueue((streams) => sent.push(streams));
  queue.add(point('Analysis', 1));
  expect(sent).toHaveLength(1);

  vi.advanceTimersByTime(4);
  queue.add(image('Plot', 1));
  queue.add(point('Analysis', 2));
  queue.add(image('Plot', 2));
  expect(sent).toHaveLength(1); // within the period: kept
  vi.advanceTimersByTime(PUBLISH_EVERY_MS - 4);
  expect(sent).toHaveLength(2);
  const second = sent[1]!;
  expect(second.map((stream) => `${stream.actor}/${stream.name}`).sort()).toEqual(['Analysis/mean', 'Plot/frame']);
  expect(second.find((stream) => stream.name === 'frame')!.data).toMatchObject({
    value: new Uint16Array([2]),
    skipped: 1,
  });
  expect(second.find((stream) => stream.name === 'mean')!.data).toMatchObject({ times: [2] });
});

it('holds what comes while two messages are unanswered, and sends it, merged, once the page has drawn one', () => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
  const sent: Published[][] = [];
  const queue = new PlotQueue((streams) => sent.push(streams));
  for (let n = 1; n <= PLOTS_IN_FLIGHT; n++) {
    queue.add(point('Analysis', n));
    vi.advanceTimersByTime(PUBLISH_EVERY_MS);
  }
  expect(sent).toHaveLength(PLOTS_IN_FLIGHT);
  queue.add(point('Analysis', 10));
  queue.add(point('Analysis', 11));
  vi.advanceTimersByTime(10 * PUBLISH_EVERY_MS);
  expect(sent).toHaveLength(PLOTS_IN_FLIGHT); // the page has drawn nothing
  queue.drawn();
  expect(sent).toHaveLength(PLOTS_IN_FLIGHT + 1);
  expect(sent.at(-1)![0]!.data).toMatchObject({ times: [10, 11] });
});

it('sends nothing more once closed, timer and all', () => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
  const sent: Published[][] = [];
  const queue = new PlotQueue((streams) => sent.push(streams));
  queue.add(point('Analysis', 1));
  queue.add(point('Analysis', 2));
  queue.close();
  vi.advanceTimersByTime(2 * PUBLISH_EVERY_MS);
  expect(sent).toHaveLength(1);
});
