/**
 * Embedding improv in a Bun program: fan-out (every number goes to two actors) and fan-in (both
 * answers come back into one), built in code with no YAML.
 *
 *   bun examples/embed-bun/main.ts
 */
import { createNexus } from '@improv/core';
import { createBunRuntime } from '@improv/core/runtime/bun';
import { createMemoryStore } from '@improv/store';
import { createLocalTransport } from '@improv/transport-local';

const count = 1000;

const nexus = await createNexus({
  config: {
    actors: {
      Counter: { package: './actors.ts', class: 'Counter', count },
      Square: { package: './actors.ts', class: 'Power', power: 2 },
      Cube: { package: './actors.ts', class: 'Power', power: 3 },
      Sum: { package: './actors.ts', class: 'Sum', expected: 2 * count },
    },
    connections: {
      'Counter.q_out': ['Square.q_in', 'Cube.q_in'],
      answers: { sources: ['Square.q_out', 'Cube.q_out'], sinks: ['Sum.q_in'] },
    },
  },
  baseDir: import.meta.dirname,
  runtime: createBunRuntime(),
  store: createMemoryStore(),
  transport: createLocalTransport(),
  runDir: false,
});

const result = new Promise<Record<string, number>>((resolve) => {
  nexus.on((event) => {
    if (event.type === 'log' && event.record.source === 'Sum' && event.record.message.startsWith('RESULT ')) {
      resolve(JSON.parse(event.record.message.slice('RESULT '.length)));
    }
  });
});

const started = performance.now();
await nexus.setup();
await nexus.run();
const sums = await result;
const ms = performance.now() - started;
await nexus.stop();
await nexus.quit();

const squares = (count * (count + 1) * (2 * count + 1)) / 6;
const cubes = ((count * (count + 1)) / 2) ** 2;
console.log(
  `Bun ${process.versions.bun}: Σn² = ${sums[2]} (expected ${squares}), Σn³ = ${sums[3]} (expected ${cubes}) in ${ms.toFixed(0)} ms`,
);
if (sums[2] !== squares || sums[3] !== cubes) process.exitCode = 1;
