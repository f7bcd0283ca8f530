/**
 * Embedding improv in a Node program: a pipeline built in code (no YAML), driven through the
 * Nexus API, with its result read back from the actors' log.
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
      Mean: { package: './actors.ts', class: 'Mean', frames },
    },
    connections: { 'Camera.q_out': ['Mean.q_in'] },
  },
  baseDir: import.meta.dirname,
  runtime: createNodeRuntime(),
  store: createMemoryStore(),
  transport: createLocalTransport(),
  runDir: false,
});

const result = new Promise<{ frames: number; mean: number }>((resolve) => {
  nexus.on((event) => {
    if (event.type === 'log' && event.record.source === 'Mean' && event.record.message.startsWith('RESULT ')) {
      resolve(JSON.parse(event.record.message.slice('RESULT '.length)));
    }
  });
});

await nexus.setup();
await nexus.run();
const { mean } = await result;
await nexus.stop();
await nexus.quit();

// Frame f holds f + i/size for i < size: its mean is f + (size - 1) / (2 size).
const expected = (frames - 1) / 2 + (size - 1) / (2 * size);
console.log(`mean of ${frames} frames × ${size} samples: ${mean.toFixed(4)} (expected ${expected.toFixed(4)})`);
if (Math.abs(mean - expected) > 1e-3) process.exitCode = 1;
