import type { WorkerOutputMessage } from './_node-output-lines.ts';

/** Posts what this worker writes to `process.stdout` and `process.stderr` (see `worker-output.mjs`). */
export function postWrites(post: (message: WorkerOutputMessage) => void): void;
