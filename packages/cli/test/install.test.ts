/**
 * The packages as a user gets them: packed (`npm pack`, compiled JavaScript and declarations),
 * installed into a folder outside this repository, a project made there with `improv new`, its
 * TypeScript actors run on Node, Bun and Deno, and its own test run with `npm test`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const hasPython = spawnSync('/usr/bin/python3', ['-c', 'import numpy, zmq, msgpack']).status === 0;

const root = fileURLToPath(new URL('../../..', import.meta.url));
const packages = [
  '@improv/python',
  '@improv/core',
  '@improv/dashboard',
  '@improv/store',
  '@improv/transport-local',
  '@improv/transport-zmq',
  '@improv/cli',
];
/** Bun and Deno as a user who installed them would have them: on PATH. */
const { NODE_OPTIONS: _options, VITEST: _vitest, ...inherited } = process.env;
const env = { ...inherited, PATH: `${join(root, 'node_modules', '.bin')}${delimiter}${process.env.PATH}` };

function sh(command: string, args: string[], cwd: string) {
  const result = spawnSync(command, args, { cwd, env, encoding: 'utf8', timeout: 240_000 });
  return { code: result.status, output: `${result.stdout ?? ''}${result.stderr ?? ''}` };
}

describe('installed from the packed tarballs, outside the repository', () => {
  const outside = mkdtempSync(join(tmpdir(), 'improv-install-'));
  const tarballs = join(outside, 'tarballs');
  const lab = join(outside, 'lab');
  let tgz: string[] = [];

  beforeAll(() => {
    mkdirSync(tarballs);
    // Packed from a copy: prepack points the manifests at dist/ for a moment, which the tests running
    // beside this one must never see in the workspace.
    const copy = join(outside, 'workspace');
    for (const path of ['package.json', 'tsconfig.base.json', 'scripts/pack-package.mjs']) {
      cpSync(join(root, path), join(copy, path));
    }
    for (const name of packages) {
      const folder = join('packages', name.replace('@improv/', ''));
      cpSync(join(root, folder), join(copy, folder), {
        recursive: true,
        filter: (source) => !/[\\/](?:node_modules|dist)$/.test(source),
      });
    }
    symlinkSync(join(root, 'node_modules'), join(copy, 'node_modules'));
    execFileSync('npm', ['pack', ...packages.flatMap((name) => ['-w', name]), '--pack-destination', tarballs], {
      cwd: copy,
      env,
      stdio: 'pipe',
    });
    tgz = readdirSync(tarballs).map((file) => join(tarballs, file));
    // A first folder to get the CLI from (as `npm install -D @improv/cli` would).
    const bootstrap = join(outside, 'bootstrap');
    mkdirSync(bootstrap);
    writeFileSync(join(bootstrap, 'package.json'), '{ "private": true, "type": "module" }\n');
    const installed = sh('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', ...tgz], bootstrap);
    expect(installed.code, installed.output).toBe(0);
    const created = sh(join(bootstrap, 'node_modules', '.bin', 'improv'), ['new', 'lab'], outside);
    expect(created.code, created.output).toBe(0);
    expect(created.output).toContain('created lab: package.json, pipeline.yaml');
    // The scaffold asks for the @improv packages of this version; from the tarballs until published.
    const labInstall = sh('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', ...tgz], lab);
    expect(labInstall.code, labInstall.output).toBe(0);
    expect(labInstall.output).not.toContain('npm warn');
  }, 300_000);

  afterAll(() => rmSync(outside, { recursive: true, force: true }));

  it('ships compiled JavaScript and declarations, and runs none of the workspace TypeScript', () => {
    const core = join(lab, 'node_modules', '@improv', 'core');
    const manifest = JSON.parse(readFileSync(join(core, 'package.json'), 'utf8'));
    expect(manifest.exports['.']).toEqual({ types: './dist/index.d.ts', default: './dist/index.js' });
    expect(existsSync(join(core, 'dist', 'index.js'))).toBe(true);
    expect(existsSync(join(core, 'dist', 'runtime', 'node-worker.mjs'))).toBe(true);
    expect(existsSync(join(lab, 'node_modules', '@improv', 'cli', 'dist', 'main.js'))).toBe(true);
    const scaffold = JSON.parse(readFileSync(join(lab, 'package.json'), 'utf8'));
    expect(scaffold.type).toBe('module');
  });

  it('validates the new project and runs its TypeScript actors on Node', () => {
    expect(sh('npx', ['improv', 'validate', 'pipeline.yaml'], lab).output).toContain(
      'pipeline.yaml: valid — 2 actor(s), 1 connection(s)',
    );
    const run = sh('npx', ['improv', 'run', 'pipeline.yaml', '--script', 'setup; run; wait 1s; stop; quit'], lab);
    expect(run.code, run.output).toBe(0);
    expect(run.output).toMatch(/Processor: processed [1-9]\d* frames/);
  });

  it.each(['bun', 'deno'])('runs the same project on %s', (runtime) => {
    const run = sh(
      'npx',
      ['improv', 'run', 'pipeline.yaml', '--runtime', runtime, '--script', 'setup; run; wait 1s; stop; quit'],
      lab,
    );
    expect(run.code, run.output).toBe(0);
    expect(run.output).toContain(`runtime ${runtime}`);
    expect(run.output).toMatch(/Processor: processed [1-9]\d* frames/);
  });

  it('serves the dashboard page built into the installed package, and runs its Plot actor', () => {
    expect(existsSync(join(lab, 'node_modules', '@improv', 'dashboard', 'page', 'index.html'))).toBe(true);
    const yaml = readFileSync(join(lab, 'pipeline.yaml'), 'utf8');
    // The frame numbers, plotted from the Generator's messages (whose store values the Processor deletes).
    const plot =
      "  Plot:\n    package: '@improv/dashboard/plot'\n    class: Plot\n    field: frame\n    keep_keys: true\n\n";
    writeFileSync(
      join(lab, 'plot.yaml'),
      yaml
        .replace(/^connections:\n/m, `${plot}connections:\n`)
        .replace('Generator.q_out: [Processor.q_in]', 'Generator.q_out: [Processor.q_in, Plot.q_in]'),
    );
    const run = sh(
      'npx',
      ['improv', 'run', 'plot.yaml', '--dashboard', '--script', 'setup; run; wait 500ms; stop; quit'],
      lab,
    );
    expect(run.code, run.output).toBe(0);
    expect(run.output).toMatch(/dashboard: http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]+/);
  });

  it('runs the project on the lmdb and redis stores from the installed packages (their subpath exports)', () => {
    for (const store of ['lmdb', 'redis']) {
      const run = sh(
        'npx',
        ['improv', 'run', 'pipeline.yaml', '--store', store, '--script', 'setup; run; wait 1s; stop; quit'],
        lab,
      );
      expect(run.code, run.output).toBe(0);
      expect(run.output).toMatch(/Processor: processed [1-9]\d* frames/);
    }
    const kept = join(lab, 'kept.lmdb');
    const yaml = readFileSync(join(lab, 'pipeline.yaml'), 'utf8');
    writeFileSync(
      join(lab, 'kept.yaml'),
      yaml.replace(/^settings:\n/m, `settings:\n  store: lmdb\n  lmdb: { path: kept.lmdb, keep: true }\n`),
    );
    const run = sh('npx', ['improv', 'run', 'kept.yaml', '--script', 'setup; run; wait 500ms; stop; quit'], lab);
    expect(run.code, run.output).toBe(0);
    expect(existsSync(join(kept, 'data.mdb'))).toBe(true);
    const listed = sh('npx', ['improv', 'store', 'ls', 'kept.lmdb'], lab);
    expect(listed.code, listed.output).toBe(0);
  });

  it('runs the project over zmq links from the installed packages, and makes keys', () => {
    const run = sh(
      'npx',
      ['improv', 'run', 'pipeline.yaml', '--transport', 'zmq', '--script', 'setup; run; wait 1s; stop; quit'],
      lab,
    );
    expect(run.code, run.output).toBe(0);
    expect(run.output).toContain('links: 1 link over zmq');
    expect(run.output).toMatch(/Processor: processed [1-9]\d* frames/);
    const keys = sh('npx', ['improv', 'keys', '--out', 'keys/lab'], lab);
    expect(keys.code, keys.output).toBe(0);
    expect(existsSync(join(lab, 'keys', 'lab.key_secret'))).toBe(true);
    expect(existsSync(join(lab, 'node_modules', '@improv', 'transport-zmq', 'python', 'improv_zmq_peer.py'))).toBe(
      true,
    );
  });

  it('runs actors in processes of their own, on Node and Bun, from the installed packages', () => {
    const yaml = readFileSync(join(lab, 'pipeline.yaml'), 'utf8');
    writeFileSync(
      join(lab, 'apart.yaml'),
      yaml
        .replace('    class: Generator\n', '    class: Generator\n    runtime: bun\n')
        .replace('    class: Processor\n', '    class: Processor\n    method: process\n'),
    );
    const run = sh('npx', ['improv', 'run', 'apart.yaml', '--script', 'setup; run; wait 1s; stop; quit'], lab);
    expect(run.code, run.output).toBe(0);
    expect(run.output).toContain(
      'in processes of their own: Generator (bun), Processor (node); their links go over zmq',
    );
    expect(run.output).toContain('store: lmdb, because actor "Generator" runs in its own process (runtime: bun)');
    expect(run.output).toMatch(/Processor: processed [1-9]\d* frames/);
  });

  it.skipIf(!hasPython)('runs a Python actor from the installed packages (improv_ts comes with them)', () => {
    writeFileSync(
      join(lab, 'mean.py'),
      [
        'from improv_ts import Actor, Empty',
        '',
        'class Mean(Actor):',
        '    def setup(self):',
        '        self.count = 0',
        '',
        '    def run_step(self):',
        '        try:',
        '            self.q_in.get(timeout=0.05)',
        '        except Empty:',
        '            return',
        '        self.count += 1',
        '',
        '    def stop(self):',
        '        self.log.info(f"Mean: took {self.count} messages")',
        '',
      ].join('\n'),
    );
    const yaml = readFileSync(join(lab, 'pipeline.yaml'), 'utf8');
    writeFileSync(
      join(lab, 'python.yaml'),
      yaml
        .replace(/^settings:\n/m, 'settings:\n  python: /usr/bin/python3\n')
        .replace(/^connections:\n/m, 'connections:\n  Generator.q_out: [Processor.q_in, Mean.q_in]\n')
        .replace(/^ {2}Generator\.q_out: \[Processor\.q_in\]\n/m, '')
        .replace(/^actors:\n/m, 'actors:\n  Mean:\n    package: mean.py\n    class: Mean\n'),
    );
    const run = sh('npx', ['improv', 'run', 'python.yaml', '--script', 'setup; run; wait 1s; stop; quit'], lab);
    expect(run.code, run.output).toBe(0);
    expect(run.output).toContain('in processes of their own: Mean (python)');
    expect(run.output).toMatch(/Mean: took [1-9]\d* messages/);
    expect(existsSync(join(lab, 'node_modules', '@improv', 'python', 'improv_ts', '_host.py'))).toBe(true);
    // Built with LMDB's sources into the lmdb store's library (improv_ts/stores/_liblmdb.py).
    expect(existsSync(join(lab, 'node_modules', '@improv', 'python', 'improv_ts', 'stores', 'improv_lmdb.c'))).toBe(
      true,
    );
  });

  it("passes the new project's own test (npm test)", () => {
    const test = sh('npm', ['test'], lab);
    expect(test.code, test.output).toBe(0);
    // Node 20 reports "# pass 1" (TAP); Node 22 and 24 "ℹ pass 1".
    expect(test.output).toMatch(/(#|ℹ) pass 1/);
  });

  it('refuses to scaffold into a folder that is not empty, touching nothing', () => {
    const again = sh(join(lab, 'node_modules', '.bin', 'improv'), ['new', 'lab'], outside);
    expect(again.code).toBe(2);
    expect(again.output).toContain('improv new: lab is not empty');
  });
});
