import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'cli',
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Runs started by the tests register in a folder of their own, never in the user's ~/.improv.
    env: { IMPROV_HOME: mkdtempSync(join(tmpdir(), 'improv-test-home-')) },
  },
});
