/**
 * @improv/store — store drivers for improv. `memory` (the default) keeps every value in one
 * SharedArrayBuffer arena shared by all workers of the process: typed arrays are stored raw and
 * read back as zero-copy views, any other value is msgpack-encoded.
 *
 * @example
 * ```ts
 * import { createMemoryStore } from '@improv/store';
 *
 * const store = await createMemoryStore().open({ sizeBytes: 256 * 1024 * 1024 });
 * const { key, array } = await store.client.allocate('float32', [512, 512]);
 * array.fill(1); // written in place, readable under `key` by every worker
 * const frame = await store.client.get<Float32Array>(key);
 * ```
 * @module
 */
export {
  connectStore,
  createMemoryStore,
  type MemoryOpenStore,
  type MemoryStoreClient,
  type MemoryStoreDescriptor,
  type MemoryStoreDriver,
  type MemoryStoreOptions,
  type RecoveryReport,
} from './memory.ts';
