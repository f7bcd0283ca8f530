import { describe } from 'vitest';
import { createBunRuntime } from '../src/runtime/bun.ts';
import { currentRuntimeName } from '../src/runtime/detect.ts';
import { describeRuntimeConformance } from '../src/testing/runtime.ts';

describe.skipIf(currentRuntimeName() !== 'bun')('bun', () => {
  describeRuntimeConformance({ name: 'bun', runtime: createBunRuntime });
});
