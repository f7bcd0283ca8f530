#!/usr/bin/env node
// `npm run bench`. On Node, TypeScript loads through tsx; Bun and Deno run it natively.
if (!globalThis.Bun && !globalThis.Deno) {
  const { register } = await import('tsx/esm/api');
  register();
}
const { main } = await import('../src/main.ts');
process.exitCode = await main(process.argv.slice(2));
