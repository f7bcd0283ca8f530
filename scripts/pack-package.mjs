// Turns a workspace package into what its npm tarball holds, and back (the `prepack` and `postpack`
// scripts of every @improv/* package, so `npm pack` and `changeset publish` both go through it).
//
// In the workspace a package runs from `src/*.ts` with no build step (its `exports` name the .ts
// files). A published package cannot: Node does not load TypeScript from node_modules. So before
// packing, this compiles `src` to `dist` (JavaScript, declarations and their maps; relative `.ts`
// imports rewritten to `.js`), copies the plain JavaScript files of `src` beside them, and points
// `exports` at `dist` (`types` + `default` per entry). After packing it puts package.json back and
// removes `dist`, so the workspace never runs stale compiled code.
//
// Usage (from a package's folder): node ../../scripts/pack-package.mjs prepack|postpack
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const mode = process.argv[2];
const folder = process.cwd();
const root = new URL('..', import.meta.url).pathname;
const manifest = join(folder, 'package.json');
/** The workspace's package.json while the packed one is in its place. */
const saved = join(folder, '.package.workspace.json');

function restore() {
  if (existsSync(saved)) renameSync(saved, manifest);
  rmSync(join(folder, 'dist'), { recursive: true, force: true });
}

/** `./src/a/b.ts` → `{ types: './dist/a/b.d.ts', default: './dist/a/b.js' }`. */
function compiled(target) {
  if (typeof target !== 'string' || !/^\.\/src\/.*\.ts$/.test(target)) {
    throw new Error(`${manifest}: export ${JSON.stringify(target)} is not a ./src/*.ts file; give it one`);
  }
  const base = target.replace(/^\.\/src\//, './dist/').replace(/\.ts$/, '');
  return { types: `${base}.d.ts`, default: `${base}.js` };
}

/** Plain JavaScript in src (worker bootstraps), which tsc does not copy. */
function copyJavaScript(from, to) {
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    const source = join(from, entry.name);
    if (entry.isDirectory()) copyJavaScript(source, join(to, entry.name));
    else if (/\.(?:mjs|cjs|js)$/.test(entry.name)) cpSync(source, join(to, entry.name));
  }
}

if (mode === 'prepack') {
  restore(); // a pack that failed half-way left the packed manifest behind
  // npm does not create --pack-destination, and fails after prepack when it is missing, which
  // would leave the packed manifest in the workspace (postpack runs only on success).
  const destination = process.env.npm_config_pack_destination;
  if (destination) mkdirSync(resolve(process.env.INIT_CWD ?? '.', destination), { recursive: true });
  const workspace = readFileSync(manifest, 'utf8');
  const pkg = JSON.parse(workspace);
  execFileSync(join(root, 'node_modules', '.bin', 'tsc'), ['-p', join(folder, 'tsconfig.build.json')], {
    stdio: 'inherit',
  });
  copyJavaScript(join(folder, 'src'), join(folder, 'dist'));
  pkg.exports = Object.fromEntries(Object.entries(pkg.exports).map(([path, target]) => [path, compiled(target)]));
  pkg.types = pkg.exports['.'].types;
  pkg.files = [...new Set(['dist', ...(pkg.files ?? [])])];
  // `prepare` builds in the workspace (the dashboard's page); the tarball ships what it built, and a
  // user's install must run nothing (npm would, for a tarball or a git dependency).
  if (pkg.scripts !== undefined) delete pkg.scripts.prepare;
  writeFileSync(saved, workspace);
  writeFileSync(manifest, `${JSON.stringify(pkg, null, 2)}\n`);
  console.error(`${pkg.name}: compiled to ${relative(folder, join(folder, 'dist'))}/, exports point there`);
} else if (mode === 'postpack') {
  restore();
} else {
  console.error('usage: node scripts/pack-package.mjs prepack|postpack (from the package folder)');
  process.exit(2);
}
