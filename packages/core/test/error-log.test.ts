import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { placeOf, stackPlace } from '../src/worker/_error-log.ts';

const packages = fileURLToPath(new URL('../..', import.meta.url));

function thrown(name: string, frames: string[]): Error {
  const error = new Error('full');
  error.name = name;
  error.stack = [`${name}: full`, ...frames.map((frame) => `    at ${frame}`)].join('\n');
  return error;
}

it("placeOf names the user's line, not improv's, a library's or the runtime's", () => {
  const error = thrown('StoreFullError', [
    `MemoryClient.put (${packages}store/src/memory.ts:317:13)`,
    'process.processTicksAndRejections (node:internal/process/task_queues:95:5)',
    `encode (/home/lab/exp/node_modules/@msgpack/msgpack/dist.cjs/Encoder.cjs:79:10)`,
    'Source.runStep (file:///home/lab/exp/actors/source.ts:8:5)',
    `runLoop (${packages}core/src/worker/host.ts:200:7)`,
  ]);
  expect(placeOf(error)).toBe('StoreFullError at /home/lab/exp/actors/source.ts:8:5');
  // Installed, improv is in node_modules: its frames are passed over the same way.
  const installed = thrown('StoreUnavailableError', [
    'RedisClient.get (/home/lab/exp/node_modules/@improv/store/dist/redis.js:255:12)',
    'Sink.runStep (/home/lab/exp/actors/sink.ts:12:20)',
  ]);
  expect(placeOf(installed)).toBe('StoreUnavailableError at /home/lab/exp/actors/sink.ts:12:20');
  // `improv new`'s template, run from this repository, is an actor like any other.
  const template = thrown('TypeError', [
    `MemoryClient.put (${packages}store/src/memory.ts:317:13)`,
    `Generator.runStep (${packages}cli/template/actors/generator.ts:20:9)`,
  ]);
  expect(placeOf(template)).toBe(`TypeError at ${packages}cli/template/actors/generator.ts:20:9`);
});

it('placeOf falls back to the first frame when none is the user’s, and to the class without a stack', () => {
  const inside = thrown('RangeError', [`grow (${packages}store/src/_arena.ts:10:3)`, 'node:internal/x:1:1']);
  expect(placeOf(inside)).toBe(`RangeError at ${packages}store/src/_arena.ts:10:3`);
  const bare = new TypeError('no stack');
  bare.stack = 'TypeError: no stack';
  expect(placeOf(bare)).toBe('TypeError');
  expect(placeOf('text')).toBe('a string value');
  expect(placeOf(undefined)).toBe('an undefined value');
});

it('stackPlace reads a Python traceback: the innermost frame of the user’s, not improv_ts, the standard library or packages', () => {
  const traceback = [
    'Traceback (most recent call last):',
    '  File "/usr/lib/improv/packages/python/improv_ts/_host.py", line 512, in serve',
    '    self.call(self.run_step)',
    '  File "/home/lab/exp/actors/analysis.py", line 14, in run_step',
    '    sys.exit(3)',
    '  File "/usr/lib/python3.11/some.py", line 3, in helper',
    'SystemExit: 3',
  ].join('\n');
  expect(stackPlace(traceback, true)).toBe('/home/lab/exp/actors/analysis.py:14');
  const inside = '  File "/usr/lib/python3/dist-packages/numpy/core.py", line 9, in f\nValueError: x';
  expect(stackPlace(inside, true)).toBeUndefined();
  expect(stackPlace(inside)).toBe('/usr/lib/python3/dist-packages/numpy/core.py:9');
});
