/**
 * Embedding improv in a Node program: a pipeline built in code (no YAML), driven through the
 * Nexus API, its results read by the program through a link of its own (`host.inputs`).
 *
 *   npx tsx examples/embed-node/main.ts        (Node 20; Node 22.18+ also runs `node main.ts`)
 */
import { createNexus } from '@improv/core';
import { createNodeRuntime } from '@improv/core/runtime/node';
import { createMemoryStore } from '@improv/store';
import { createLocalTransport } from '@improv/transport-local';

const frames = 200;
const size = 1024;

const nexus = await createNexus({
  config: {
    settings: { store_size: '16MiB' },
    actors: {
      Camera: { package: './actors.ts', class: 'Camera', frames, size },
      Mean: { package: './actors.ts', class: 'Mean' },
    },
    connections: { 'Camera.q_out': ['Mean.q_in'] },
  },
  baseDir: import.meta.dirname,
  runtime: createNodeRuntime(),
  store: createMemoryStore(),
  transport: createLocalTransport(),
  runDir: false,
  // This program reads what Mean puts on q_out, as another actor would.
  host: { inputs: ['Mean.q_out'] },
});

await nexus.setup();
await nexus.run();
const means = nexus.input<{ frame: number; mean: number }>('Mean.q_out');
let total = 0;
for (let received = 0; received < frames; received++) total += (await means.get()).mean;
const mean = total / frames;
await nexus.stop();
await nexus.quit();

// Frame f holds f + i/size for i < size: its mean is f + (size - 1) / (2 size).
const expected = (frames - 1) / 2 + (size - 1) / (2 * size);
console.log(`mean of ${frames} frames × ${size} samples: ${mean.toFixed(4)} (expected ${expected.toFixed(4)})`);
if (Math.abs(mean - expected) > 1e-3) process.exitCode = 1;
