import { describe } from 'vitest';
import { createDenoRuntime } from '../src/runtime/deno.ts';
import { currentRuntimeName } from '../src/runtime/detect.ts';
import { describeRuntimeConformance } from '../src/testing/runtime.ts';

describe.skipIf(currentRuntimeName() !== 'deno')('deno', () => {
  describeRuntimeConformance({ name: 'deno', runtime: createDenoRuntime });
});
