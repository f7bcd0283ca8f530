import { currentRuntimeName, detectRuntime } from '@improv/core';
import { describePipelineConformance } from '@improv/core/testing';
import { createMemoryStore } from '@improv/store';
import { createLocalTransport } from '@improv/transport-local';

// The adapter of the runtime this file runs in: the pipeline suite runs on Node, Bun and Deno alike.
describePipelineConformance({
  name: `${currentRuntimeName()} + memory store + local transport`,
  runtime: await detectRuntime(),
  createStore: createMemoryStore,
  createTransport: createLocalTransport,
});
