/**
 * The stores as a user meets them through the CLI: improv's minimal demo on lmdb and on a Redis
 * that improv starts itself (allocated frames reach the Processor written, not as zeros), a kept
 * lmdb store read back after the whole CLI was killed with SIGKILL, and the errors of bad store
 * settings at their file:line:column.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { currentRuntimeName } from '@improv/core';
import { scriptArguments } from '@improv/core/runtime/binaries';
import { openLmdbStoreReader } from '@improv/store/lmdb';
import { describe, expect, it } from 'vitest';
import type { RuntimeName } from '../src/runtime-switch.ts';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const bin = join(root, 'packages/cli/bin/improv.mjs');
const minimal = join(root, 'apps/minimal/minimal.yaml');
const core = join(root, 'packages/core/src/index.ts');
const cliCommand = [...scriptArguments(currentRuntimeName() as RuntimeName, bin)];

function project(files: Record<string, string>): string {
  const folder = mkdtempSync(join(tmpdir(), 'improv-stores-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(folder, name), text);
  return folder;
}

function improv(args: string[], cwd = root): { status: number | null; output: string } {
  const result = spawnSync(process.execPath, [...cliCommand, ...args], { cwd, encoding: 'utf8', timeout: 120_000 });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

/** The Processor's closing line: how many frames, and their average. */
function processed(output: string): { count: number; average: number[] } {
  const match = /processed (\d+) frames; average \[([^\]]*)\]/.exec(output);
  expect(match, output).not.toBeNull();
  return { count: Number(match![1]), average: match![2]!.split(', ').map(Number) };
}

/** A loopback port nobody listens on now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function redisAnswers(port: number): Promise<boolean> {
  return spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' }).stdout?.trim() === 'PONG';
}

/** Polls `condition` every 50 ms for up to 40 s. */
async function until(condition: () => Promise<boolean> | boolean, what: string): Promise<void> {
  const deadline = Date.now() + 40_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('stores through the CLI', () => {
  for (const store of ['lmdb', 'redis'] as const) {
    it(`runs improv's minimal demo with --store ${store}: allocated frames arrive written`, {
      timeout: 120_000,
    }, () => {
      const { status, output } = improv([
        'run',
        minimal,
        '--store',
        store,
        '--no-log-files',
        '--script',
        'setup; run; wait 1500ms; stop; quit',
      ]);
      expect(status, output).toBe(0);
      const { count, average } = processed(output);
      expect(count, output).toBeGreaterThan(10);
      // Random values in [0, 1): frames that were never written would average 0.
      for (const value of average) {
        expect(value, output).toBeGreaterThan(0.2);
        expect(value, output).toBeLessThan(0.8);
      }
    });
  }

  for (const [store, count] of [
    ['lmdb', 20_000],
    ['redis', 2_000],
  ] as const) {
    it(`a flood of keys through ${store} arrives whole and in order, across pause and resume, though the source reuses its message`, {
      timeout: 120_000,
    }, () => {
      // The actor host lets a flood's messages wait for one store commit: what waits must be a copy
      // (the source rewrites its message once put resolves) and must all go, in order.
      const folder = project({
        'package.json': '{ "type": "module" }',
        'actors.ts': `import { Actor } from ${JSON.stringify(core)};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
export class Flood extends Actor {
  private n = 0;
  private readonly message = { key: '', n: 0, v: new Uint8Array(8) };
  override async runStep(): Promise<void> {
    if (this.n >= ${count}) return sleep(5);
    this.message.key = await this.store.put(new Float64Array([this.n]));
    this.message.n = this.n;
    this.message.v[0] = this.n & 255;
    await this.output('q_out').put(this.message);
    this.n += 1;
  }
  override stop(): void {
    console.log(\`sent \${this.n}\`);
  }
}
export class Check extends Actor {
  private next = 0;
  private bad = 0;
  override async runStep(): Promise<void> {
    const { key, n, v } = (await this.input('q_in').get()) as { key: string; n: number; v: Uint8Array };
    const [stored] = await this.store.get<Float64Array>(key);
    if (n !== this.next || stored !== n || v[0] !== (n & 255)) this.bad += 1;
    this.next = n + 1;
    await this.store.delete(key);
  }
  override stop(): void {
    console.log(\`received \${this.next}, \${this.bad} out of order or changed\`);
  }
}
`,
        'pipeline.yaml': `actors:
  Source: { package: actors.ts, class: Flood }
  Sink: { package: actors.ts, class: Check }
connections:
  Source.q_out: [Sink.q_in]
`,
      });
      const { status, output } = improv(
        [
          'run',
          'pipeline.yaml',
          '--store',
          store,
          '--no-log-files',
          '--script',
          'setup; run; wait 300ms; pause; wait 200ms; resume; wait 6s; stop; quit',
        ],
        folder,
      );
      expect(status, output).toBe(0);
      expect(output).toContain(`sent ${count}`);
      expect(output).toContain(`received ${count}, 0 out of order or changed`);
    });
  }

  it('keeps every value whose put returned, untorn, when the whole CLI is killed with SIGKILL (lmdb keep: true)', {
    timeout: 120_000,
  }, async () => {
    const folder = project({
      'package.json': '{ "type": "module" }',
      'writer.ts': `import { Actor } from ${JSON.stringify(core)};
export class Writer extends Actor {
  private n = 0;
  override async runStep(): Promise<void> {
    const frame = new Float64Array(2048).fill(this.n);
    const key = await this.store.put(frame, { shape: [32, 64] });
    console.log(\`stored \${key} \${this.n}\`);
    this.n += 1;
  }
}
`,
      'pipeline.yaml': `settings:
  store: lmdb
  store_size: 512MiB
  lmdb: { path: data/run.lmdb, keep: true }
actors:
  Writer:
    package: writer.ts
    class: Writer
`,
    });
    const child = spawn(
      process.execPath,
      [...cliCommand, 'run', 'pipeline.yaml', '--no-log-files', '--script', 'setup; run; wait 120s; quit'],
      { cwd: folder, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    const stored = new Map<string, number>();
    const enough = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`fewer than 200 values were stored in 60 s:\n${output}`)),
        60_000,
      );
      const take = (chunk: Buffer) => {
        output += chunk;
        for (const match of output.matchAll(/stored (\S+) (\d+)/g)) stored.set(match[1]!, Number(match[2]));
        if (stored.size >= 200) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout.on('data', take);
      child.stderr.on('data', take);
      child.on('exit', () => reject(new Error(`improv exited before 200 values were stored:\n${output}`)));
    });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    await enough;
    child.kill('SIGKILL');
    await exited;
    // Lines printed after the kill was decided may be missing; every printed one must be there.
    for (const match of output.matchAll(/stored (\S+) (\d+)/g)) stored.set(match[1]!, Number(match[2]));
    const reader = await openLmdbStoreReader(join(folder, 'data/run.lmdb'));
    try {
      for (const [key, n] of stored) {
        const found = reader.read(key);
        expect(found, `value ${n} (key ${key}) is missing after SIGKILL`).toBeDefined();
        const { array, shape } = found!.value as { array: Float64Array; shape: number[] };
        expect(shape).toEqual([32, 64]);
        expect(array.length).toBe(2048);
        expect(
          array.every((value) => value === n),
          `value ${n} (key ${key}) is torn`,
        ).toBe(true);
      }
    } finally {
      await reader.close();
    }
    // The kept store reads with improv store ls too.
    const listed = improv(['store', 'ls', 'data/run.lmdb'], folder);
    expect(listed.status, listed.output).toBe(0);
    expect(listed.output).toContain([...stored.keys()][0]);
  });

  it('a Redis that goes away mid-run: actors get StoreUnavailableError, the log says so, and work goes on once it is back', {
    timeout: 120_000,
  }, async () => {
    const port = await freePort();
    const startRedis = () =>
      spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
        stdio: 'ignore',
      });
    let redis = startRedis();
    const folder = project({
      'package.json': '{ "type": "module" }',
      'counter.ts': `import { Actor } from ${JSON.stringify(core)};
export class Counter extends Actor {
  private n = 0;
  override async runStep(): Promise<void> {
    const { key } = (await this.q_in.get()) as { key: string };
    await this.store.get(key);
    await this.store.delete(key);
    this.n += 1;
    if (this.n % 20 === 0) console.log(\`counted \${this.n}\`);
  }
}
`,
      'pipeline.yaml': `settings:
  store: redis
  redis: { host: 127.0.0.1, port: ${port} }
actors:
  Generator:
    package: ${join(root, 'packages/cli/template/actors/generator.ts')}
    class: Generator
    rate: 100
  Counter:
    package: counter.ts
    class: Counter
connections:
  Generator.q_out: [Counter.q_in]
`,
    });
    try {
      await until(() => redisAnswers(port), 'redis-server to answer');
      const child = spawn(
        process.execPath,
        [...cliCommand, 'run', 'pipeline.yaml', '--no-log-files', '--script', 'setup; run; wait 60s; stop; quit'],
        { cwd: folder, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk));
      child.stderr.on('data', (chunk: Buffer) => (output += chunk));
      const counted = () => Math.max(0, ...[...output.matchAll(/counted (\d+)/g)].map((match) => Number(match[1])));
      await until(async () => counted() >= 40, `frames to be counted:\n${output}`);
      redis.kill('SIGKILL');
      await until(async () => /StoreUnavailableError/.test(output), `the outage to be reported:\n${output}`);
      const before = counted();
      redis = startRedis();
      await until(async () => counted() >= before + 40, `counting to go on after Redis came back:\n${output}`);
      child.kill('SIGINT');
      await new Promise((resolve) => child.on('exit', resolve));
      expect(output).toMatch(/127\.0\.0\.1:\d+/);
    } finally {
      redis.kill('SIGKILL');
    }
  });

  it('points at the setting when the store cannot open: an lmdb path nobody may write, a Redis nobody answers', {
    timeout: 120_000,
  }, () => {
    const blocker = project({ 'a-file': 'not a folder' });
    const folder = project({
      'pipeline.yaml': `settings:
  store: lmdb
  lmdb: { path: ${join(blocker, 'a-file', 'store.lmdb')} }
actors:
  Generator:
    package: ${join(root, 'packages/cli/template/actors/generator.ts')}
    class: Generator
`,
      'redis.yaml': `settings:
  store: redis
  redis: { host: 127.0.0.1, port: 1 }
actors:
  Generator:
    package: ${join(root, 'packages/cli/template/actors/generator.ts')}
    class: Generator
`,
      'unknown.yaml': `settings:
  store: plasma
actors:
  Generator:
    package: ${join(root, 'packages/cli/template/actors/generator.ts')}
    class: Generator
`,
    });
    const lmdb = improv(['run', 'pipeline.yaml', '--no-log-files', '--script', 'quit'], folder);
    expect(lmdb.status, lmdb.output).toBe(2);
    expect(lmdb.output).toMatch(/pipeline\.yaml:3:9/);
    expect(lmdb.output).toContain('store.lmdb');
    expect(lmdb.output).not.toMatch(/\n\s+at /); // no stack trace
    // It never started: no "pipeline exited" before "not started".
    expect(lmdb.output).not.toContain('pipeline exited');
    const redis = improv(['run', 'redis.yaml', '--no-log-files', '--script', 'quit'], folder);
    expect(redis.status, redis.output).toBe(2);
    expect(redis.output).toMatch(/redis\.yaml:3:10/);
    expect(redis.output).toMatch(/127\.0\.0\.1:1/);
    expect(redis.output).not.toMatch(/\n\s+at /);
    // validate finds both first, and creates nothing.
    const lmdbChecked = improv(['validate', 'pipeline.yaml', '--no-check-modules'], folder);
    expect(lmdbChecked.status, lmdbChecked.output).toBe(2);
    expect(lmdbChecked.output).toMatch(
      /pipeline\.yaml:3:9: error: lmdb store: cannot create or write the store folder .*store\.lmdb \(cannot use .* as a folder: .*a-file is a file, not a folder\)/,
    );
    const redisChecked = improv(['validate', 'redis.yaml', '--no-check-modules'], folder);
    expect(redisChecked.status, redisChecked.output).toBe(2);
    expect(redisChecked.output).toContain(
      'redis.yaml:3:10: error: redis store: nothing answers at 127.0.0.1:1 (connection refused: no server listens there)',
    );
    if (existsSync('/proc/self')) {
      // A place no folder can be made (free space 0 B there): validate gives run's reason, not the size.
      writeFileSync(
        join(folder, 'proc.yaml'),
        `settings:\n  store: lmdb\n  lmdb: { path: /proc/run.lmdb }\nactors:\n  G: { package: ${join(root, 'packages/cli/template/actors/generator.ts')}, class: Generator }\n`,
      );
      for (const command of [
        ['validate', '--no-check-modules'],
        ['run', '--no-log-files', '--script', 'quit'],
      ]) {
        const proc = improv([command[0]!, 'proc.yaml', ...command.slice(1)], folder);
        expect(proc.status, proc.output).toBe(2);
        expect(proc.output).toContain(
          'proc.yaml:3:9: error: lmdb store: cannot create or write the store folder /proc/run.lmdb',
        );
        expect(proc.output).not.toContain('does not fit');
      }
    }
    const unknown = improv(['validate', 'unknown.yaml', '--no-check-modules'], folder);
    expect(unknown.status, unknown.output).toBe(2);
    expect(unknown.output).toMatch(/unknown\.yaml:2:10/);
    expect(unknown.output).toMatch(/store must be one of memory, lmdb, redis/);
  });

  it('validate refuses a store_size the lmdb or redis store cannot hold, at its line, as run does', {
    timeout: 120_000,
  }, () => {
    const generator = join(root, 'packages/cli/template/actors/generator.ts');
    const folder = project({
      'small.yaml': `settings:\n  store: lmdb\n  store_size: 1KiB\nactors:\n  G: { package: ${generator}, class: Generator }\n`,
      'process.yaml': `settings:\n  store_size: 9TiB\nactors:\n  G: { package: ${generator}, class: Generator, method: process }\n`,
      'redis.yaml': `settings:\n  store: redis\n  store_size: 100TiB\nactors:\n  G: { package: ${generator}, class: Generator }\n`,
      'memory.yaml': `settings:\n  store: redis\n  store_size: 60TiB\nactors:\n  G: { package: ${generator}, class: Generator }\n`,
      // Within lmdb's limits, and more than any disk this runs on has free.
      'disk.yaml': `settings:\n  store: lmdb\n  store_size: 8TiB\n  lmdb: { path: data/run.lmdb, keep: true }\nactors:\n  G: { package: ${generator}, class: Generator }\n`,
    });
    const small = improv(['validate', 'small.yaml', '--no-check-modules'], folder);
    expect(small.status, small.output).toBe(2);
    expect(small.output).toContain(
      'small.yaml:3:15: error: settings: store_size of 1024 bytes is less than the lmdb store can hold (4096 to 8796093022208 bytes)',
    );
    expect(small.output).toContain('fix: give a size from 4 KiB to 8 TiB');
    // An actor in its own process makes the store lmdb: its limits apply.
    const processes = improv(['validate', 'process.yaml', '--no-check-modules'], folder);
    expect(processes.status, processes.output).toBe(2);
    expect(processes.output).toMatch(
      /process\.yaml:2:15: error: settings: store_size of \d+ bytes is more than the lmdb store/,
    );
    const redis = improv(['validate', 'redis.yaml', '--no-check-modules'], folder);
    expect(redis.status, redis.output).toBe(2);
    expect(redis.output).toMatch(
      /redis\.yaml:3:15: error: settings: store_size of \d+ bytes is more than the redis store/,
    );
    expect(redis.output).toContain('fix: give a size from 1 KiB to 64 TiB');
    // Within the driver's limits, but more than this machine's memory for the redis-server improv starts.
    const memory = improv(['validate', 'memory.yaml', '--no-check-modules'], folder);
    expect(memory.status, memory.output).toBe(2);
    expect(memory.output).toMatch(
      /memory\.yaml:3:15: error: settings: store_size of \d+ bytes is more than the .* of memory this machine has/,
    );
    // A size the disk cannot hold, measured where the store's folder will be made (it is not made).
    const disk = improv(['validate', 'disk.yaml', '--no-check-modules'], folder);
    expect(disk.status, disk.output).toBe(2);
    expect(disk.output).toMatch(
      /disk\.yaml:3:15: error: lmdb store: settings\.store_size of 8\.00 TiB \(8796093022208 bytes\) does not fit on the filesystem of .*run\.lmdb: only .* is free/,
    );
    expect(disk.output).toContain(
      'fix: lower settings.store_size, free disk space, or give settings.lmdb.path on another disk',
    );
    expect(existsSync(join(folder, 'data'))).toBe(false);
    // run refuses the same, before any actor starts.
    const run = improv(['run', 'small.yaml', '--no-log-files', '--script', 'quit'], folder);
    expect(run.status, run.output).toBe(2);
    expect(run.output).toMatch(/small\.yaml:3:15: error: .*store_size/);
    const runDisk = improv(['run', 'disk.yaml', '--no-log-files', '--script', 'quit'], folder);
    expect(runDisk.status, runDisk.output).toBe(2);
    expect(runDisk.output).toMatch(/does not fit on the filesystem of .*run\.lmdb/);
  });

  it('validate logs in to the Redis server as run would: a wrong or missing password is refused at settings.redis, a size beyond its maxmemory at store_size', {
    timeout: 60_000,
  }, async () => {
    const port = await freePort();
    const redis = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--requirepass',
        'secret',
        '--maxmemory',
        '512mb',
      ],
      { stdio: 'ignore' },
    );
    try {
      await until(
        () =>
          spawnSync('redis-cli', ['-p', String(port), '-a', 'secret', '--no-auth-warning', 'ping'], {
            encoding: 'utf8',
          }).stdout?.trim() === 'PONG',
        'redis-server to answer',
      );
      const pipeline = (password: string) => `settings:
  store: redis
  redis: { host: 127.0.0.1, port: ${port}${password} }
actors:
  Generator:
    package: ${join(root, 'packages/cli/template/actors/generator.ts')}
    class: Generator
`;
      const folder = project({
        'wrong.yaml': pipeline(', password: wrong'),
        'none.yaml': pipeline(''),
        'right.yaml': pipeline(', password: secret'),
        'big.yaml': pipeline(', password: secret').replace('  store: redis\n', '  store: redis\n  store_size: 1GiB\n'),
      });
      const wrong = improv(['validate', 'wrong.yaml', '--no-check-modules'], folder);
      expect(wrong.status, wrong.output).toBe(2);
      expect(wrong.output).toMatch(
        new RegExp(
          `wrong\\.yaml:3:10: error: redis store: the Redis server at 127\\.0\\.0\\.1:${port} refused the login \\(WRONGPASS`,
        ),
      );
      expect(wrong.output).toContain('give the right password');
      const none = improv(['validate', 'none.yaml', '--no-check-modules'], folder);
      expect(none.status, none.output).toBe(2);
      expect(none.output).toMatch(/NOAUTH/);
      const right = improv(['validate', 'right.yaml', '--no-check-modules'], folder);
      expect(right.status, right.output).toBe(0);
      // More than the server's maxmemory: refused at store_size, as opening the store refuses it.
      const big = improv(['validate', 'big.yaml', '--no-check-modules'], folder);
      expect(big.status, big.output).toBe(2);
      expect(big.output).toMatch(
        new RegExp(
          `big\\.yaml:3:15: error: redis store: settings\\.store_size of 1\\.00 GiB \\(1073741824 bytes\\) is more than the maxmemory of the Redis server at 127\\.0\\.0\\.1:${port}, 512\\.00 MiB`,
        ),
      );
      const run = improv(['run', 'big.yaml', '--no-log-files', '--script', 'quit'], folder);
      expect(run.status, run.output).toBe(2);
      expect(run.output).toMatch(/is more than the maxmemory of the Redis server/);
    } finally {
      redis.kill('SIGKILL');
    }
  });

  it('--store memory with an actor in its own process: refused at that actor, naming the flag and the fix, no stack', {
    timeout: 120_000,
  }, () => {
    const folder = project({
      'pipeline.yaml': `actors:
  Generator:
    package: ${join(root, 'packages/cli/template/actors/generator.ts')}
    class: Generator
    method: process
`,
    });
    const run = improv(['run', 'pipeline.yaml', '--store', 'memory', '--no-log-files', '--script', 'quit'], folder);
    expect(run.status, run.output).toBe(2);
    expect(run.output).toContain(
      `pipeline.yaml:2:3: error: --store memory (given on the command line) cannot be reached by actor "Generator", which runs in its own process (method: process): the memory store lives in improv's own process`,
    );
    expect(run.output).toMatch(/fix: run with {2}--store lmdb .* or {2}--store redis/);
    expect(run.output).not.toMatch(/\n\s+at /);
    // The store the settings would have chosen is not announced: --store replaced it.
    expect(run.output).not.toContain('store: lmdb, because');
  });
});
