/**
 * @improv/core/testing — conformance suites, written once, that every runtime adapter, store driver
 * and transport runs. Each implementation's test file is a few lines:
 *
 * @example
 * ```ts
 * import { createNodeRuntime } from '@improv/core/runtime/node';
 * import { describeStoreConformance } from '@improv/core/testing';
 * import { createMemoryStore } from '@improv/store';
 *
 * describeStoreConformance({ name: 'memory', createDriver: createMemoryStore, runtime: createNodeRuntime() });
 * ```
 * @module
 */

export { describePipelineConformance, type PipelineConformanceOptions } from './pipeline.ts';
export { describeRuntimeConformance, type RuntimeConformanceOptions } from './runtime.ts';
export { describeStoreConformance, type StoreConformanceOptions } from './store.ts';
export { describeTransportConformance, type TransportConformanceOptions } from './transport.ts';
