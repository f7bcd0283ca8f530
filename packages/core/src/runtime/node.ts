/**
 * The Node.js runtime adapter: workers are `node:worker_threads` (Node has no global web `Worker`),
 * TypeScript loads through tsx (Node 20 cannot start a `.ts` worker; newer Node's type stripping
 * refuses files under node_modules), files through `node:fs`.
 *
 * @example
 * ```ts
 * import { createNodeRuntime } from '@improv/core/runtime/node';
 * const nexus = await createNexus({ config: 'pipeline.yaml', runtime: createNodeRuntime(), store, transport });
 * ```
 * @module
 */
import process from 'node:process';
import { nodeFiles, nodePath, onProcessSignal } from './_node-api.ts';
import { spawnProcess } from './_node-processes.ts';
import { checkPythonActor } from './_node-python.ts';
import { spawnThreadWorker } from './_node-workers.ts';
import type { RuntimeAdapter } from './adapter.ts';
import { findRuntime } from './node-binaries.ts';

/** Creates the Node adapter. */
export function createNodeRuntime(): RuntimeAdapter {
  return {
    name: 'node',
    version: process.versions.node,
    heapLimit: true,
    spawnProcess,
    checkPythonActor,
    findRuntime,
    spawnWorker: spawnThreadWorker,
    onShutdownSignal: onProcessSignal,
    ...nodeFiles,
    path: nodePath,
  };
}
