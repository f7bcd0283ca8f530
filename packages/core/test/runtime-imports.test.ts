import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const runtimeDir = fileURLToPath(new URL('../src/runtime/', import.meta.url));

/** The relative modules a file imports, statically or dynamically. */
async function importsOf(file: string): Promise<string[]> {
  const text = await readFile(`${runtimeDir}${file}`, 'utf8');
  return [...text.matchAll(/(?:from\s+|import\s*\()\s*'(\.\/[^']+)'/g)].map((match) => match[1]!.slice(2));
}

it('runtime modules import each other without a cycle (detect.ts loads the adapters; none loads detect.ts)', async () => {
  const files = (await readdir(runtimeDir)).filter((file) => /\.(ts|mjs)$/.test(file));
  const graph = new Map(await Promise.all(files.map(async (file) => [file, await importsOf(file)] as const)));
  const cycles: string[] = [];
  const visit = (file: string, path: string[]): void => {
    if (path.includes(file)) {
      cycles.push([...path.slice(path.indexOf(file)), file].join(' → '));
      return;
    }
    for (const next of graph.get(file) ?? []) visit(next, [...path, file]);
  };
  for (const file of files) visit(file, []);
  expect(graph.get('detect.ts')).toEqual(expect.arrayContaining(['node.ts', 'bun.ts', 'deno.ts']));
  expect([...new Set(cycles)]).toEqual([]);
});
