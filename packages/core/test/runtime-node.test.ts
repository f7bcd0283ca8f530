import { describe } from 'vitest';
import { currentRuntimeName } from '../src/runtime/detect.ts';
import { createNodeRuntime } from '../src/runtime/node.ts';
import { describeRuntimeConformance } from '../src/testing/runtime.ts';

describe.skipIf(currentRuntimeName() !== 'node')('node', () => {
  describeRuntimeConformance({ name: 'node', runtime: createNodeRuntime });
});
