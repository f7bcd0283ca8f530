// Keeps the package boundaries of DESIGN.md: core imports no runtime-specific module outside
// runtime/node*, no store driver and no transport; implementations depend on core, never on each other.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const importPattern = /(?:^|[\s;])(?:import|export)\b[^'"`]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;
const rules = [
  {
    dir: 'packages/core/src',
    allow: (file) => /^runtime\/node[^/]*$/.test(file),
    forbidden: [/^node:/, /^bun:?/, /^@improv\/(?!core)/, /^(fs|path|url|os|worker_threads|child_process)$/],
    deno: true,
  },
  { dir: 'packages/store/src', forbidden: [/^@improv\/(?!core)/] },
  { dir: 'packages/transport-local/src', forbidden: [/^@improv\/(?!core)/] },
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
    if (rule.allow?.(local)) continue;
    const text = readFileSync(file, 'utf8');
    const lines = text.split('\n');
    lines.forEach((line, index) => {
      // Doc comments show imports in examples; only code counts.
      if (/^\s*(\/\/|\*|\/\*\*)/.test(line)) return;
      for (const match of line.matchAll(importPattern)) {
        const specifier = match[1] ?? match[2];
        if (rule.forbidden.some((pattern) => pattern.test(specifier))) {
          problems.push(`${relative(root, file)}:${index + 1}: imports "${specifier}", which ${rule.dir} must not`);
        }
      }
      if (rule.deno && /\bDeno\.\w/.test(line)) {
        problems.push(`${relative(root, file)}:${index + 1}: uses Deno.* outside runtime/`);
      }
    });
  }
}
if (problems.length > 0) {
  console.error(`Package boundaries broken (see DESIGN.md, "Packages and their boundaries"):\n${problems.join('\n')}`);
  console.error(
    'Fix: move runtime-specific code into packages/core/src/runtime/<runtime>.ts, and depend on @improv/core only.',
  );
  process.exit(1);
}
console.log('package boundaries: ok');
