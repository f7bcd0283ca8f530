// Smoke tests of the embedding examples: each runs on its own runtime as a user would start it,
// builds its pipeline in code, checks its result, and must exit 0.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = (name: string) => join(root, 'node_modules', '.bin', name);

const examples = [
  { name: 'embed-node', command: bin('tsx'), args: ['examples/embed-node/main.ts'], says: /mean of 200 frames/ },
  { name: 'embed-bun', command: bin('bun'), args: ['examples/embed-bun/main.ts'], says: /Σn² = 333833500 / },
  {
    name: 'embed-deno',
    command: bin('deno'),
    args: ['run', '-A', 'examples/embed-deno/main.ts'],
    says: /settled at \d+\.\d+ \(target 3\) after \d+ steps/,
  },
];

describe('examples', () => {
  for (const example of examples) {
    it(`${example.name} builds its pipeline in code, gets the right result and exits 0`, () => {
      const result = spawnSync(example.command, example.args, { cwd: root, encoding: 'utf8', timeout: 60_000 });
      const output = `${result.stdout}${result.stderr}`;
      expect(output).toMatch(example.says);
      expect(result.status, output).toBe(0);
    });
  }
});
