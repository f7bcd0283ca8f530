import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_LINK_CAPACITY } from '@improv/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pythonProblem } from '../src/python.ts';
import type { BenchResults } from '../src/results.ts';

const bin = fileURLToPath(new URL('../bin/bench.mjs', import.meta.url));

function bench(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    child.on('exit', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/** The smallest run that still goes through every part: baselines, all topologies, idle, soak. */
const tiny = ['--samples', '20', '--throughput-ms', '20', '--soak', '1', '--sizes', '8,4MiB'];

let out: string;
beforeAll(async () => {
  out = await mkdtemp(join(tmpdir(), 'improv-bench-'));
});
afterAll(async () => {
  await rm(out, { recursive: true, force: true });
});

async function resultsOf(runtime: string): Promise<{ json: BenchResults; csv: string }> {
  // `node-<time>` (memory store), not `node-lmdb-<time>`.
  const names = (await readdir(out)).filter((name) => new RegExp(`^${runtime}-\\d`).test(name));
  const json = names.find((name) => name.endsWith('.json'));
  const csv = names.find((name) => name.endsWith('.csv'));
  expect(json, `results of ${runtime} in ${names.join(', ')}`).toBeDefined();
  expect(csv).toBeDefined();
  return {
    json: JSON.parse(await readFile(join(out, json!), 'utf8')) as BenchResults,
    csv: await readFile(join(out, csv!), 'utf8'),
  };
}

describe('npm run bench', () => {
  for (const runtime of ['node', 'bun', 'deno']) {
    it(`runs every part on ${runtime} and writes the tables, JSON and CSV`, async () => {
      const { code, stdout, stderr } = await bench([...tiny, '--runtime', runtime, '--out', out]);
      expect(code, stderr).toBe(0);
      for (const heading of [
        '### Baselines',
        '### One hop',
        '### One link',
        '### Topologies',
        '### CPU and memory',
        '### Targets',
      ]) {
        expect(stdout).toContain(heading);
      }
      const { json, csv } = await resultsOf(runtime);
      expect(json.runtime.name).toBe(runtime);
      const rows = json.pipeline.map((row) => `${row.topology} ${row.path} ${row.size}`);
      expect(rows.sort()).toEqual(
        [
          'pair put 8',
          'pair allocate 8',
          'pair inline 8',
          'pair put-delete 8',
          'pair put 4194304',
          'pair allocate 4194304',
          'chain5 put 4194304',
          'fanout4 put 4194304',
          'fanin4 put 4194304',
        ].sort(),
      );
      for (const row of json.pipeline) {
        // 20 paced messages per row (from 4 MiB on a tenth, at least 50, but never more than asked);
        // four sinks (fan-out) or sources (fan-in) make four times as many.
        expect(row.latency.n).toBe(row.topology === 'fanout4' || row.topology === 'fanin4' ? 80 : 20);
        expect(row.throughput.messages).toBeGreaterThan(0);
      }
      expect(json.port.map((row) => row.size)).toEqual([8, 4_194_304]);
      expect(json.store?.name).toBe('memory');
      expect(stdout).toContain(`## improv bench: ${runtime} ${json.runtime.version}, memory store`);
      expect(json.settings.capacitySmall).toBe(256);
      expect(stdout).toContain('links of 256 messages (4 from 1 MiB)');
      expect(stdout).toContain('### Store allocator hot spot: 8 B put → key over a ring → delete on the other worker');
      expect(json.soak.frames).toBe(1000);
      expect(json.soak.storeEndObjects).toBe(0);
      // Header, 2 ring rows, 2 per MessagePort size, 2 per pipeline row, the soak.
      expect(csv.trim().split('\n')).toHaveLength(1 + 2 + 2 * 2 + 2 * 9 + 1);
    });
  }

  /** A short run on another store: the pair at 8 B and 4 KiB (no topology runs at these sizes), its links holding 64. */
  const storeRun = ['--samples', '20', '--throughput-ms', '50', '--soak', '1', '--sizes', '8,4KiB', '--capacity', '64'];

  async function storeResults(store: string): Promise<{ json: BenchResults; csv: string }> {
    const names = (await readdir(out)).filter((name) => name.startsWith(`node-${store}-`));
    const json = names.find((name) => name.endsWith('.json'));
    const csv = names.find((name) => name.endsWith('.csv'));
    expect(json, `results of ${store} in ${names.join(', ')}`).toBeDefined();
    expect(csv).toBeDefined();
    return {
      json: JSON.parse(await readFile(join(out, json!), 'utf8')) as BenchResults,
      csv: await readFile(join(out, csv!), 'utf8'),
    };
  }

  for (const store of ['lmdb', 'redis']) {
    it(`runs the pipeline on the ${store} store beside ${store}'s own client`, async () => {
      const leftovers = async () =>
        (await readdir(tmpdir())).filter((name) => name.startsWith('improv-bench-lmdb-')).length;
      const before = await leftovers();
      const { code, stdout, stderr } = await bench([...storeRun, '--store', store, '--runtime', 'node', '--out', out]);
      expect(code, stderr).toBe(0);
      const { json, csv } = await storeResults(store);
      expect(json.store?.name).toBe(store);
      expect(json.store?.zeroCopy).toBe(false);
      expect(stdout).toContain(`## improv bench: node ${json.runtime.version}, ${store} store`);
      expect(stdout).toContain(`### ${store} by itself (same run)`);
      expect(json.settings.capacitySmall).toBe(64);
      expect(stdout).toContain('links of 64 messages (4 from 1 MiB)');
      expect(stdout).toContain('### Store allocator hot spot');
      const rows = json.pipeline.map((row) => `${row.topology} ${row.path} ${row.size}`);
      expect(rows.sort()).toEqual(
        [
          'pair put 8',
          'pair allocate 8',
          'pair inline 8',
          'pair put 4096',
          'pair allocate 4096',
          'pair inline 4096',
          'pair put-delete 8',
        ].sort(),
      );
      for (const row of json.pipeline) {
        expect(row.latency.n).toBe(20);
        expect(row.throughput.messages).toBeGreaterThan(0);
      }
      const baseline = json.store?.baseline;
      expect(baseline?.rows.map((row) => row.size)).toEqual([8, 4096]);
      for (const row of baseline?.rows ?? []) {
        expect(row.putGet.n).toBe(20);
        expect(row.throughput.messages).toBeGreaterThan(0);
      }
      // The soak runs at the store's own pace, and leaves nothing behind in the store.
      expect(json.soak.frames).toBe(json.store!.soakRateHz);
      expect(json.soak.storeEndObjects).toBe(0);
      expect(csv).toContain(`,baseline-${store}-putget-latency,4096,`);
      expect(csv).toContain(`,${store}-pair-put-delete-throughput,8,`);
      if (store === 'redis') {
        expect(stdout).toContain(
          "### Beside improv (Python)'s Redis store — published reference, not measured in this run",
        );
        expect(stdout).toContain('| 4 KiB | 3,309 | 3,811 |');
      } else {
        // The run's LMDB folder is gone.
        expect(await leftovers()).toBe(before);
      }
    });
  }

  it('says what to do, with exit code 1 and no stack trace, when redis-server is missing', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'improv-bench-no-redis-'));
    try {
      const { code, stderr } = await bench([...storeRun, '--store', 'redis', '--out', out], {
        ...process.env,
        PATH: empty,
      });
      expect(code).toBe(1);
      // The driver's own message, as the CLI shows it.
      expect(stderr).toMatch(/^improv-bench: the redis store did not open: redis store: .*redis-server/m);
      expect(stderr).not.toMatch(/^\s+at /m);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });

  it('puts the newest results of each runtime into a README', async () => {
    const readme = join(out, 'README.md');
    await writeFile(readme, '# x\n\n<!-- bench:start -->\nSTALE-CONTENT\n<!-- bench:end -->\n\nafter\n');
    const { code, stderr } = await bench(['readme', '--out', out, '--readme', readme]);
    expect(code, stderr).toBe(0);
    const text = await readFile(readme, 'utf8');
    expect(text).not.toContain('STALE-CONTENT');
    expect(text).toMatch(/\| target \| node \S+ \| bun \S+ \| deno \S+ \|/);
    expect(text).toContain('Runtimes side by side');
    expect(text).toContain('#### Stores side by side: node');
    expect(text).toMatch(/\| size \| path \| memory p50 µs \| lmdb p50 µs \| redis p50 µs \|/);
    expect(text).toContain('after');
  });

  it('refuses --placement hosts with flags it cannot honour, before making any host', async () => {
    const store = await bench(['--placement', 'hosts', '--store', 'lmdb']);
    expect(store.code).toBe(2);
    expect(store.stderr).toContain('--placement hosts needs a store the hosts reach over the network');
    expect(store.stderr).toContain(
      'not --store lmdb; drop it (--placement hosts implies --transport zmq --store redis)',
    );
    const transport = await bench(['--placement', 'hosts', '--transport', 'local']);
    expect(transport.code).toBe(2);
    expect(transport.stderr).toContain('not --transport local');
    const runtime = await bench(['--placement', 'hosts', '--runtime', 'bun']);
    expect(runtime.code).toBe(2);
    expect(runtime.stderr).toContain('--placement hosts runs on Node only');
    // Not root (or no ip netns): says why, with exit code 2; as root the run would start instead.
    if (process.getuid?.() !== 0) {
      const user = await bench(['--placement', 'hosts', '--quick']);
      expect(user.code).toBe(2);
      expect(user.stderr).toContain('needs Node running as root and a working `ip netns`');
    }
  });

  it('refuses --placement python with flags it cannot honour, before starting any pipeline', async () => {
    const store = await bench(['--placement', 'python', '--store', 'memory']);
    expect(store.code).toBe(2);
    expect(store.stderr).toContain('--placement python needs a store the Python process reaches, lmdb or redis');
    expect(store.stderr).toContain('drop it (--placement python implies --store lmdb) or give --store redis');
    const transport = await bench(['--placement', 'python', '--transport', 'local']);
    expect(transport.code).toBe(2);
    expect(transport.stderr).toContain('not --transport local');
    const runtime = await bench(['--placement', 'python', '--runtime', 'deno']);
    expect(runtime.code).toBe(2);
    expect(runtime.stderr).toContain('--placement python runs on Node only');
    const alone = await bench(['--python', '/usr/bin/python3']);
    expect(alone.code).toBe(2);
    expect(alone.stderr).toContain('add --placement python, or drop --python');
    const missing = await bench(['--placement', 'python', '--python', '/nonexistent/python3', '--out', out]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--python /nonexistent/python3: /nonexistent/python3 did not run (ENOENT)');
    const help = await bench(['--help']);
    expect(help.stdout).toContain('--python <interpreter>');
    // Commander wraps the help text: compare it with the line breaks taken out.
    const flat = help.stdout.replace(/\s+/g, ' ');
    expect(flat).toContain('or python (the pair only: its source a TypeScript worker, its sink a Python actor');
    expect(flat).toContain('implies --transport zmq --store lmdb (or give --store redis)');
  });

  const python = '/usr/bin/python3';
  it.skipIf(pythonProblem(python) !== undefined)(
    'runs the TypeScript → Python pair beside raw pyzmq and improv (Python)',
    async () => {
      const { code, stdout, stderr } = await bench([
        ...['--samples', '20', '--throughput-ms', '50', '--soak', '1', '--sizes', '8'],
        '--placement',
        'python',
        '--python',
        python,
        '--out',
        out,
      ]);
      expect(code, stderr).toBe(0);
      expect(stdout).toContain('### TypeScript → Python hop beside raw pyzmq (same run) and improv (Python)');
      expect(stdout).toContain('Actors: **a TypeScript source, a Python sink**');
      const name = (await readdir(out)).find(
        (file) => file.startsWith('node-python-lmdb-zmq-') && file.endsWith('.json'),
      );
      expect(name).toBeDefined();
      const json = JSON.parse(await readFile(join(out, name!), 'utf8')) as BenchResults;
      expect(json.transport?.placement).toBe('python');
      expect(json.store?.name).toBe('lmdb');
      expect(json.transport?.python?.interpreter).toBe(python);
      expect(json.transport?.python?.baseline.rows.map((row) => row.size)).toEqual([8]);
      // Without --capacity, a link's default (as improv's figures come from its defaults), raw pyzmq's window too.
      expect(json.settings.capacitySmall).toBe(DEFAULT_LINK_CAPACITY);
      expect(json.transport?.python?.baseline.rows[0]?.highWaterMark).toBe(DEFAULT_LINK_CAPACITY);
      expect(stdout).toContain(`links of ${DEFAULT_LINK_CAPACITY} messages (4 from 1 MiB)`);
      expect(json.transport?.baselines).toEqual([]);
      const rows = json.pipeline.map((row) => `${row.topology} ${row.path} ${row.size}`);
      expect(rows.sort()).toEqual(['pair allocate 8', 'pair inline 8', 'pair put 8', 'pair put-delete 8'].sort());
      for (const row of json.pipeline) {
        expect(row.latency.n).toBe(20);
        expect(row.throughput.messages).toBeGreaterThan(0);
      }
      // The Python sink deleted every frame of the soak.
      expect(json.soak.frames).toBe(json.store!.soakRateHz);
      expect(json.soak.storeEndObjects).toBe(0);
    },
  );

  it('refuses bad input with a message that says what to give', async () => {
    const sizes = await bench(['--sizes', '8,12zz']);
    expect(sizes.code).toBe(2);
    expect(sizes.stderr).toContain('"12zz" has an unknown unit "zz"');
    const runtime = await bench(['--runtime', 'python']);
    expect(runtime.code).toBe(2);
    expect(runtime.stderr).toMatch(/Allowed choices are node, bun, deno/);
    const store = await bench(['--store', 'foo']);
    expect(store.code).toBe(2);
    expect(store.stderr).toMatch(/'foo' is invalid\. Allowed choices are memory, lmdb, redis/);
    const protocol = await bench(['--transport', 'zmq', '--zmq-protocol', 'udp']);
    expect(protocol.code).toBe(2);
    expect(protocol.stderr).toMatch(/'udp' is invalid\. Allowed choices are ipc, tcp/);
    const capacity = await bench(['--capacity', '0']);
    expect(capacity.code).toBe(2);
    expect(capacity.stderr).toContain('give a whole number of messages from 1 to 65536');
    const capacityDashboard = await bench(['--capacity', '1024', '--dashboard']);
    expect(capacityDashboard.code).toBe(2);
    expect(capacityDashboard.stderr).toContain(
      '--capacity sets the links of the pipeline rows, not those of --dashboard; drop --capacity',
    );
    const noZmq = await bench(['--zmq-protocol', 'tcp']);
    expect(noZmq.code).toBe(2);
    expect(noZmq.stderr).toContain('--zmq-protocol is for the zmq links; add --transport zmq, or drop --zmq-protocol');
    // Before the run, not after minutes of it.
    const file = join(out, 'a-file');
    await writeFile(file, '');
    const folder = await bench(['--out', file]);
    expect(folder.code).toBe(2);
    expect(folder.stderr).toContain(
      `cannot use ${file} as a folder: ${file} is a file, not a folder; pass --out <dir>`,
    );
    const proc = await bench(['--out', '/proc/improv-bench/results']);
    expect(proc.code).toBe(2);
    expect(proc.stderr).toContain('cannot use /proc/improv-bench/results as a folder');
    const readme = await bench(['readme', '--out', join(out, 'nothing-here')]);
    expect(readme.code).toBe(1);
    expect(readme.stderr).toContain('no results in');
  });
});
