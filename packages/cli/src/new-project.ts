/**
 * `improv new <dir>`: a project that runs with `npm install && npx improv run pipeline.yaml` — a
 * package.json (ES modules, the @improv packages of this CLI's version), a pipeline of two actors,
 * a test that runs it, and a README. The files are those of the package's `template/` folder.
 * @module
 */
import { cpSync, existsSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { makeFolder } from '@improv/core/runtime/folders';
import { ownManifest, packageRoot } from './own-package.ts';
import { shellLine } from './text.ts';

const template = path.join(packageRoot, 'template');

/** What came of `improv new`: the lines to print, and whether it worked. */
export interface NewProjectResult {
  ok: boolean;
  lines: string[];
}

/** Creates the project in `dir` (a new or empty folder). */
export function newProject(dir: string, cwd: string = process.cwd()): NewProjectResult {
  const target = path.resolve(cwd, dir);
  if (existsSync(target)) {
    if (!statSync(target).isDirectory()) {
      return refuse(`${dir} is a file`, 'give the name of a new folder, e.g. improv new my-experiment');
    }
    const entries = readdirSync(target);
    if (entries.length > 0) {
      return refuse(
        `${dir} is not empty (it has ${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', …' : ''})`,
        'give the name of a new folder, or an empty one; improv new never overwrites files',
      );
    }
  }
  const cli = ownManifest();
  const name = packageName(path.basename(target));
  try {
    // The folder first, level by level: cpSync makes missing ones with Node's recursive mkdir, which
    // never returns under /proc.
    makeFolder(target);
    // Entry by entry into the folder, which now exists: Node 22's and 24's cpSync refuse to copy a
    // folder onto an existing one with errorOnExist, even an empty one.
    for (const entry of readdirSync(template)) {
      cpSync(path.join(template, entry), path.join(target, entry), {
        recursive: true,
        errorOnExist: true,
        force: false,
      });
    }
    // npm leaves .gitignore files out of packages; the template's is stored without its dot.
    renameSync(path.join(target, 'gitignore'), path.join(target, '.gitignore'));
    const readme = path.join(target, 'README.md');
    writeFileSync(readme, readFileSync(readme, 'utf8').replaceAll('__NAME__', name));
    const range = `^${String(cli.version)}`;
    const manifest = {
      name,
      private: true,
      type: 'module',
      scripts: {
        start: 'improv run pipeline.yaml',
        validate: 'improv validate pipeline.yaml',
        test: 'node --import tsx --test test/pipeline.test.ts',
      },
      dependencies: { '@improv/core': range, '@improv/store': range, '@improv/transport-local': range },
      devDependencies: { '@improv/cli': range, tsx: cli.dependencies?.tsx ?? '^4' },
      // tsx's esbuild, and lmdb (the lmdb store) with its msgpackr-extract, check their prebuilt
      // binaries after install; npm 11 asks for that to be allowed. zeromq (the zmq transport) ships
      // prebuilt libzmq bindings and needs no script: its script would compile libzmq from source
      // only where no prebuilt binary fits.
      allowScripts: { esbuild: true, lmdb: true, 'msgpackr-extract': true, zeromq: false },
    };
    writeFileSync(path.join(target, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  } catch (error) {
    return refuse(
      `cannot create the project in ${target}: ${(error as Error).message}`,
      'give a folder you can write to',
    );
  }
  // As the user named it: an absolute path stays absolute, a relative one relative.
  const shown = path.isAbsolute(dir) ? target : path.relative(cwd, target) || '.';
  return {
    ok: true,
    lines: [
      `created ${shown}: package.json, pipeline.yaml, actors/generator.ts, actors/processor.ts, test/pipeline.test.ts, README.md`,
      'next:',
      ...(shown === '.' ? [] : [`  cd ${shellLine([shown])}`]),
      '  npm install      (until @improv is on the npm registry: npm install <folder>/*.tgz, the packed packages; see its README)',
      '  npx improv run pipeline.yaml --script "setup; run; wait 2s; stop; quit"',
      '  npm test',
    ],
  };
}

function refuse(message: string, fix: string): NewProjectResult {
  return { ok: false, lines: [`improv new: ${message}`, `  fix: ${fix}`] };
}

/** A folder name as an npm package name: lower case, only the characters npm allows. */
function packageName(folder: string): string {
  const name = folder
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[._-]+|-+$/g, '');
  return name === '' ? 'improv-experiment' : name;
}
