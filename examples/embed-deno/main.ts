/**
 * Embedding improv in a Deno program: a closed loop — a controller and a plant feed each other
 * (a cycle in the graph), the controller adapting until the plant sits at its target.
 *
 *   deno run -A examples/embed-deno/main.ts [target]
 */
import { createNexus } from '@improv/core';
import { createDenoRuntime } from '@improv/core/runtime/deno';
import { createMemoryStore } from '@improv/store';
import { createLocalTransport } from '@improv/transport-local';

const target = Number(Deno.args[0] ?? 3);
if (!Number.isFinite(target)) {
  console.error(`embed-deno: the target must be a number, not ${JSON.stringify(Deno.args[0])}`);
  console.error('  fix: deno run -A examples/embed-deno/main.ts 3');
  Deno.exit(2);
}
const tolerance = 1e-6;

const nexus = await createNexus({
  config: {
    actors: {
      Plant: { package: './actors.ts', class: 'Plant', a: 0.5 },
      Controller: { package: './actors.ts', class: 'Controller', target, gain: 0.3, tolerance },
    },
    connections: {
      'Plant.q_out': ['Controller.q_in'],
      'Controller.q_out': ['Plant.q_in'],
    },
  },
  baseDir: import.meta.dirname,
  runtime: createDenoRuntime(),
  store: createMemoryStore(),
  transport: createLocalTransport(),
  runDir: false,
});

const result = new Promise<{ steps: number; y: number }>((resolve) => {
  nexus.on((event) => {
    if (event.type === 'log' && event.record.source === 'Controller' && event.record.message.startsWith('RESULT ')) {
      resolve(JSON.parse(event.record.message.slice('RESULT '.length)));
    }
  });
});

await nexus.setup();
await nexus.run();
const { steps, y } = await result;
await nexus.stop();
await nexus.quit();

console.log(`Deno ${Deno.version.deno}: the loop settled at ${y.toFixed(7)} (target ${target}) after ${steps} steps`);
if (Math.abs(y - target) >= tolerance) Deno.exitCode = 1;
