import { createNodeRuntime } from '@improv/core/runtime/node';
import { describePipelineConformance } from '@improv/core/testing';
import { createMemoryStore } from '@improv/store';
import { createLocalTransport } from '@improv/transport-local';

describePipelineConformance({
  name: 'node + memory store + local transport',
  runtime: createNodeRuntime(),
  createStore: createMemoryStore,
  createTransport: createLocalTransport,
});
