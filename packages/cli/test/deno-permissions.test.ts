/**
 * Deno started without `-A`: the CLI names the permissions it lacks and how to grant them, and an
 * embedding program that may not read an actor's folder hears that, not "module not found".
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findRuntimeBinary } from '@improv/core/runtime/binaries';
import { afterAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const deno = findRuntimeBinary('deno', { from: [root] });
const bin = join(root, 'packages/cli/bin/improv.mjs');
const minimal = join(root, 'apps/minimal/minimal.yaml');

function denoRun(flags: string[], script: string, args: string[]) {
  const result = spawnSync(deno!, ['run', ...flags, script, ...args], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  return { code: result.status, output: `${result.stdout}${result.stderr}` };
}

describe.skipIf(deno === undefined)('Deno without -A', () => {
  const outside = mkdtempSync(join(tmpdir(), 'improv-deno-permissions-'));
  afterAll(() => rmSync(outside, { recursive: true, force: true }));

  it('validate names the missing permissions and the command that grants them', () => {
    const { code, output } = denoRun([], bin, ['validate', minimal]);
    expect(code).toBe(2);
    expect(output).toContain(
      'improv validate: Deno was not given the read and env permissions it needs (it needs --allow-read --allow-env;',
    );
    expect(output).toContain(`fix: run it as  deno run -A ${relative(root, bin)} validate ${minimal}`);
    expect(output).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('run needs write, sys and net as well, and says so before it starts anything', () => {
    const { code, output } = denoRun(['--allow-read', '--allow-env'], bin, [
      'run',
      minimal,
      '--script',
      'setup; run; quit',
    ]);
    expect(code).toBe(2);
    expect(output).toContain('improv run: Deno was not given the write, sys and net permissions it needs');
    expect(output).toContain(`--script 'setup; run; quit'`);
    expect(output).not.toContain('INFO');
  });

  it('an embedding program hears that reading the module was refused, with the flag, not "not found"', () => {
    writeFileSync(join(outside, 'pipeline.yaml'), 'actors:\n  Camera:\n    package: camera.ts\n    class: Camera\n');
    writeFileSync(join(outside, 'camera.ts'), 'export class Camera {}\n');
    // The program lives in the repository (Deno resolves its packages from there); the experiment does not.
    mkdirSync(join(root, 'runs'), { recursive: true });
    const programs = mkdtempSync(join(root, 'runs', '.deno-permissions-'));
    const script = join(programs, 'embed.ts');
    writeFileSync(
      script,
      [
        `import { formatDiagnostics, parseConfig } from '${join(root, 'packages/core/src/index.ts')}';`,
        `import { createDenoRuntime } from '${join(root, 'packages/core/src/runtime/deno.ts')}';`,
        `const result = await parseConfig(${JSON.stringify(`actors:\n  Camera:\n    package: camera.ts\n    class: Camera\n`)}, {`,
        `  file: ${JSON.stringify(join(outside, 'pipeline.yaml'))}, adapter: createDenoRuntime() });`,
        'console.log(formatDiagnostics(result.diagnostics));',
      ].join('\n'),
    );
    // May read the program and the repository (its packages), not the experiment's folder.
    const { code, output } = denoRun([`--allow-read=${script},${root}`, '--allow-env'], script, []);
    expect(output).toContain(
      `actor "Camera": cannot look for its module at ${join(outside, 'camera.ts')}: Requires read access`,
    );
    expect(output).toContain('fix: Deno was not given the permission: run it with --allow-read (or -A)');
    expect(output).not.toContain('not found');
    expect(code).toBe(0);
    rmSync(programs, { recursive: true, force: true });
  });
});
