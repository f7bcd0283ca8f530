// Keeps the package boundaries of DESIGN.md: core imports no store driver and no transport, and uses
// runtime-specific modules only in its runtime adapters — node:* in runtime/node*, runtime/_node*
// (shared by the adapters), runtime/bun* and runtime/deno*; bun:* only in runtime/bun*; Deno.* only
// in runtime/deno*. Implementations depend on core, never on each other. `@improv/python` holds
// the files the Python runtime runs (no code of core's): the runtime adapters may locate it, as they
// locate the Bun and Deno binaries.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const importPattern = /(?:^|[\s;])(?:import|export)\b[^'"`]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;
const rules = [
  {
    dir: 'packages/core/src',
    /** What a file may use beyond the rule: `node` (node:* and Node's bare built-ins), `bun`, `deno`. */
    allow: (file) => {
      if (/^runtime\/_?node[^/]*$/.test(file)) return ['node', 'python'];
      if (/^runtime\/bun[^/]*$/.test(file)) return ['node', 'bun'];
      if (/^runtime\/deno[^/]*$/.test(file)) return ['node', 'deno'];
      return [];
    },
    forbidden: [
      { pattern: /^node:/, unless: 'node' },
      { pattern: /^(fs|path|url|os|process|worker_threads|child_process)$/, unless: 'node' },
      { pattern: /^bun(:|$)/, unless: 'bun' },
      { pattern: /^@improv\/python$/, unless: 'python' },
      { pattern: /^@improv\/(?!core|python$)/ },
    ],
    deno: true,
  },
  { dir: 'packages/store/src', forbidden: [{ pattern: /^@improv\/(?!core)/ }] },
  { dir: 'packages/transport-local/src', forbidden: [{ pattern: /^@improv\/(?!core)/ }] },
  { dir: 'packages/transport-zmq/src', forbidden: [{ pattern: /^@improv\/(?!core)/ }] },
];

function* walk(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(path);
    else if (/\.(ts|mts|js|mjs)$/.test(entry.name)) yield path;
  }
}

const problems = [];
for (const rule of rules) {
  const base = join(root, rule.dir);
  for (const file of walk(base)) {
    const local = relative(base, file);
    const allowed = rule.allow?.(local) ?? [];
    const text = readFileSync(file, 'utf8');
    const lines = text.split('\n');
    lines.forEach((line, index) => {
      // Doc comments show imports in examples; only code counts.
      if (/^\s*(\/\/|\*|\/\*\*)/.test(line)) return;
      for (const match of line.matchAll(importPattern)) {
        const specifier = match[1] ?? match[2];
        if (rule.forbidden.some(({ pattern, unless }) => pattern.test(specifier) && !allowed.includes(unless))) {
          problems.push(`${relative(root, file)}:${index + 1}: imports "${specifier}", which ${rule.dir} must not`);
        }
      }
      if (rule.deno && !allowed.includes('deno') && /\bDeno\.\w/.test(line)) {
        problems.push(`${relative(root, file)}:${index + 1}: uses Deno.* outside runtime/deno*`);
      }
    });
  }
}
if (problems.length > 0) {
  console.error(`Package boundaries broken (see DESIGN.md, "Packages and their boundaries"):\n${problems.join('\n')}`);
  console.error(
    'Fix: move runtime-specific code into packages/core/src/runtime/<runtime>.ts (node:* shared by every adapter into runtime/_node-*.ts), and depend on @improv/core only.',
  );
  process.exit(1);
}
console.log('package boundaries: ok');
