// Runs the whole pipeline for a moment and checks that frames got through:  npm test
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createNexus } from '@improv/core';
import { createMemoryStore } from '@improv/store';
import { createLocalTransport } from '@improv/transport-local';

test('frames flow from the Generator to the Processor', async () => {
  const nexus = await createNexus({
    config: new URL('../pipeline.yaml', import.meta.url).pathname,
    store: createMemoryStore(),
    transport: createLocalTransport(),
  });
  try {
    await nexus.setup();
    await nexus.run();
    const processed = () => nexus.status().actors.find((actor) => actor.name === 'Processor')?.steps ?? 0;
    for (let waited = 0; processed() < 10 && waited < 10_000; waited += 50) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.ok(processed() >= 10, `the Processor handled ${processed()} frames`);
    await nexus.stop();
  } finally {
    await nexus.quit();
  }
});
