/**
 * Worker entry of the runtime conformance suite (package-private) that starts listening late, after
 * 100 ms of event-loop turns: messages the parent posts right after the handshake arrive before the
 * entry listens, and must be buffered, not lost (Bun and Deno drop them without a buffer).
 * @module
 */
import type { WorkerEndpoint } from '../runtime/adapter.ts';
import { answer } from './_runtime-worker.ts';

/** Entry point: answers after a delay. */
export async function runWorker(endpoint: WorkerEndpoint): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 100));
  answer(endpoint);
}
