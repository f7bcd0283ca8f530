import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      'packages/*',
      'apps/*',
      'bench',
      { test: { name: 'examples', include: ['examples/*.test.ts'], testTimeout: 90_000 } },
    ],
  },
});
