/**
 * The defaults the CLI wires: the shared-memory store and SharedArrayBuffer-ring links.
 * @module
 */
import { createNexus, type Nexus, type NexusOptions, type StoreSizeLimits } from '@improv/core';
import { createMemoryStore } from '@improv/store';
import { createLocalTransport } from '@improv/transport-local';

/** Options of {@link createDefaultNexus}: those of `createNexus`, with store and transport optional. */
export type DefaultNexusOptions = Omit<NexusOptions, 'store' | 'transport'> &
  Partial<Pick<NexusOptions, 'store' | 'transport'>>;

/** `createNexus` with the memory store and the local transport unless others are given. */
export function createDefaultNexus(options: DefaultNexusOptions): Promise<Nexus> {
  return createNexus({
    ...options,
    store: options.store ?? createMemoryStore(),
    transport: options.transport ?? createLocalTransport(),
  });
}

/** The sizes the default store can open, for `improv validate`. */
export function defaultStoreSizeLimits(): StoreSizeLimits {
  return createMemoryStore().sizeLimits;
}
