/**
 * ZeroMQ links as a user meets them through the CLI: improv's minimal demo with `--transport zmq`,
 * over ipc and over CURVE-encrypted tcp, one connection on zmq beside local ones, `improv keys`, and
 * the errors of bad transport settings at their file:line:column.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { currentRuntimeName } from '@improv/core';
import { scriptArguments } from '@improv/core/runtime/binaries';
import { describe, expect, it } from 'vitest';
import type { RuntimeName } from '../src/runtime-switch.ts';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const bin = join(root, 'packages/cli/bin/improv.mjs');
const minimal = join(root, 'apps/minimal/minimal.yaml');
const template = join(root, 'packages/cli/template/actors');
const cliCommand = [...scriptArguments(currentRuntimeName() as RuntimeName, bin)];

function improv(
  args: string[],
  cwd = root,
  env: Record<string, string> = {},
): { status: number | null; output: string } {
  const result = spawnSync(process.execPath, [...cliCommand, ...args], {
    cwd,
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, ...env },
  });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

function folder(files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'improv-zmq-cli-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

/** The minimal demo's two actors, with `settings` and `connections` as given. */
function pipeline(settings: string, connections = 'connections:\n  Generator.q_out: [Processor.q_in]\n'): string {
  return `settings:\n${settings}actors:\n  Generator:\n    package: ${join(template, 'generator.ts')}\n    class: Generator\n    rate: 200\n  Processor:\n    package: ${join(template, 'processor.ts')}\n    class: Processor\n${connections}`;
}

/** The frames the Generator sent reached the Processor (but the last one or two at stop), with real random values. */
function expectDelivered(output: string): void {
  const sent = /sent (\d+) frames/.exec(output);
  const got = /processed (\d+) frames; average \[([^\]]*)\]/.exec(output);
  expect(sent, output).not.toBeNull();
  expect(got, output).not.toBeNull();
  expect(Number(got![1]), output).toBeGreaterThan(10);
  // Stop reaches the Processor with at most the last frame or two still on the link.
  expect(Number(sent![1]) - Number(got![1]), output).toBeGreaterThanOrEqual(0);
  expect(Number(sent![1]) - Number(got![1]), output).toBeLessThanOrEqual(2);
  for (const value of got![2]!.split(', ').map(Number)) {
    expect(value, output).toBeGreaterThan(0.2);
    expect(value, output).toBeLessThan(0.8);
  }
}

const script = ['--no-log-files', '--script', 'setup; run; wait 1500ms; stop; quit'];

describe('zmq links through the CLI', () => {
  it("runs improv's minimal demo with --transport zmq (ipc in the run folder)", { timeout: 120_000 }, () => {
    const { status, output } = improv(['run', minimal, '--transport', 'zmq', ...script]);
    expect(status, output).toBe(0);
    expect(output).toContain('links: 1 link over zmq');
    expectDelivered(output);
  });

  for (const runtime of ['bun', 'deno'] as const) {
    it(`runs the demo with --transport zmq on ${runtime} (the TypeScript ZMTP)`, { timeout: 120_000 }, () => {
      const { status, output } = improv(['run', minimal, '--transport', 'zmq', '--runtime', runtime, ...script]);
      expect(status, output).toBe(0);
      expect(output).toContain(`runtime ${runtime}`);
      expectDelivered(output);
    });
  }

  it('runs one connection on zmq beside the local default, as the connection says', { timeout: 120_000 }, () => {
    const dir = folder({
      'pipeline.yaml': pipeline(
        '  store_size: 64MiB\n',
        'connections:\n  frames:\n    sources: [Generator.q_out]\n    sinks: [Processor.q_in]\n    transport: zmq\n',
      ),
    });
    const { status, output } = improv(['run', 'pipeline.yaml', ...script], dir);
    expect(status, output).toBe(0);
    expect(output).toContain('links: 1 link over zmq');
    expectDelivered(output);
  });

  it('makes a key pair with improv keys, refuses to overwrite it, and runs CURVE tcp links with it', {
    timeout: 120_000,
  }, () => {
    const dir = folder({
      'pipeline.yaml': pipeline('  transport: zmq\n  zmq: { protocol: tcp, bind: 127.0.0.1, keys: keys/pipeline }\n'),
    });
    const made = improv(['keys', '--out', 'keys/pipeline'], dir);
    expect(made.status, made.output).toBe(0);
    expect(made.output).toContain('keys/pipeline.key_secret');
    expect(statSync(join(dir, 'keys/pipeline.key_secret')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(dir, 'keys/pipeline.key'), 'utf8')).toMatch(/public-key = "[^"]{40}"/);
    expect(readFileSync(join(dir, 'keys/pipeline.key'), 'utf8')).not.toContain('secret-key');
    const again = improv(['keys', '--out', 'keys/pipeline'], dir);
    expect(again.status).toBe(2);
    expect(again.output).toContain('already exists; pass --force');
    // An --out that names no file (it would write hidden ".key" files) is refused, writing nothing.
    for (const out of ['', 'keys/', '..']) {
      const nameless = improv(['keys', '--out', out], dir);
      expect(nameless.status, nameless.output).toBe(2);
      expect(nameless.output).toContain(`improv keys: --out ${JSON.stringify(out)} names no file`);
    }
    // A folder that cannot be written: the file and the fix, no bare system error.
    const unwritable = improv(['keys', '--out', '/proc/improv-keys'], dir);
    expect(unwritable.status, unwritable.output).toBe(2);
    expect(unwritable.output).toContain(
      'improv keys: cannot write /proc/improv-keys.key_secret (ENOENT): choose an --out in a folder you can write to',
    );
    expect(readdirSync(join(dir, 'keys')).sort()).toEqual(['pipeline.key', 'pipeline.key_secret']);
    const run = improv(['run', 'pipeline.yaml', ...script], dir);
    expect(run.status, run.output).toBe(0);
    expectDelivered(run.output);
    // The same files through the environment, with no keys in the YAML.
    writeFileSync(join(dir, 'env.yaml'), pipeline('  transport: zmq\n  zmq: { protocol: tcp }\n'));
    const viaEnv = improv(['run', 'env.yaml', ...script], dir, { IMPROV_ZMQ_KEYS: 'keys/pipeline' });
    expect(viaEnv.status, viaEnv.output).toBe(0);
    expectDelivered(viaEnv.output);
  });

  it('reads its key files the way pyzmq does (zmq.auth.load_certificate)', { timeout: 60_000 }, (context) => {
    const python = spawnSync('/usr/bin/python3', ['-c', 'import zmq.auth'], { encoding: 'utf8' });
    if (python.status !== 0) context.skip();
    const dir = folder();
    expect(improv(['keys', '--out', join(dir, 'k')]).status).toBe(0);
    const read = spawnSync(
      '/usr/bin/python3',
      [
        '-c',
        `import zmq.auth; p, s = zmq.auth.load_certificate(${JSON.stringify(join(dir, 'k.key_secret'))}); print(p.decode(), s.decode())`,
      ],
      { encoding: 'utf8' },
    );
    expect(read.status, read.stderr).toBe(0);
    const [publicKey] = read.stdout.trim().split(' ');
    expect(readFileSync(join(dir, 'k.key'), 'utf8')).toContain(`public-key = "${publicKey}"`);
  });

  it('reports bad transport settings at their file:line:column: validate and run alike', { timeout: 120_000 }, () => {
    const dir = folder({
      'exposed.yaml': pipeline('  transport: zmq\n  zmq: { protocol: tcp, bind: 198.18.0.1 }\n'),
      'nokeys.yaml': pipeline('  transport: zmq\n  zmq: { protocol: tcp, keys: keys/missing }\n'),
      'unknown.yaml': pipeline('  transport: zeromq\n'),
      'address.yaml': pipeline('  transport: zmq\n  zmq: { protocol: tcp, bind: 127.0.0.1:5555 }\n'),
      // 192.0.2.0/24 is for documentation: no machine's address (nothing is sent there).
      'elsewhere.yaml': pipeline('  transport: zmq\n  zmq: { protocol: tcp, bind: 192.0.2.10, keys: k1/pair }\n'),
    });
    expect(improv(['keys', '--out', 'k1/pair'], dir).status).toBe(0);
    const cases: [string, string, string][] = [
      ['exposed.yaml', 'exposed.yaml:3:31', 'exposes the pipeline'],
      [
        'nokeys.yaml',
        'nokeys.yaml:3:31',
        `cannot read the CURVE secret key ${join(dir, 'keys/missing.key_secret')} (no such file); make a pair with  improv keys`,
      ],
      ['unknown.yaml', 'unknown.yaml:2:14', 'transport must be one of local, zmq, not "zeromq"'],
      ['address.yaml', 'address.yaml:3:31', 'has a port; ports are picked for each link'],
      [
        'elsewhere.yaml',
        'elsewhere.yaml:3:31',
        'zmq transport: bind 192.0.2.10 is not an address of this machine, so its links cannot listen there',
      ],
    ];
    for (const [file, where, message] of cases) {
      for (const command of ['validate', 'run'] as const) {
        const { status, output } = improv([command, file, ...(command === 'run' ? script : [])], dir);
        expect(status, output).toBe(2);
        expect(output, `${command} ${file}`).toContain(where);
        expect(output, `${command} ${file}`).toContain(message);
        expect(output).not.toMatch(/\n\s+at /);
      }
    }
    const badEnv = improv(['validate', 'unknown.yaml'.replace('unknown', 'exposed')], dir, {
      IMPROV_ZMQ_KEYS: 'nowhere/k',
    });
    expect(badEnv.output).toContain('IMPROV_ZMQ_KEYS=nowhere/k: cannot read the CURVE secret key');
  });
});
