import { describe, expect, it } from 'vitest';
import { renderRuntimes, renderStores, renderZmq } from '../src/readme.ts';
import { checkTargets, floorOf, IMPROV_PYTHON_REDIS, renderCsv, renderReport } from '../src/report.ts';
import type { BenchResults, PipelineRow, Rate } from '../src/results.ts';
import type { LatencySummary } from '../src/stats.ts';

const latency = (p50: number): LatencySummary => ({
  n: 100,
  avg: p50 * 1.1,
  p50,
  p90: p50 * 1.5,
  p99: p50 * 2,
  p999: p50 * 3,
  min: p50 / 2,
  max: p50 * 4,
});
const rate = (msgsPerS: number, size: number): Rate => ({
  messages: msgsPerS,
  seconds: 1,
  msgsPerS,
  mbPerS: (msgsPerS * size) / 1e6,
  cpuUsPerMsg: 2,
});
const row = (
  topology: PipelineRow['topology'],
  path: PipelineRow['path'],
  size: number,
  p50: number,
  perS: number,
) => ({
  topology,
  path,
  size,
  hops: topology === 'chain5' ? 4 : 1,
  intervalUs: 1000,
  latency: latency(p50),
  throughput: rate(perS, size),
});

/** A run with round figures: ring hop 10 µs, memcpy of 4 MiB 300 µs. */
function fixture(runtime = 'node', scale = 1): BenchResults {
  return {
    version: 1,
    date: '2026-11-25T10:00:00.000Z',
    quick: false,
    runtime: { name: runtime, version: '1.0.0' },
    platform: { os: 'linux-x64', cpu: 'Test CPU', cores: 2, memoryBytes: 2 ** 34 },
    settings: {
      latencyMessages: 100,
      intervalUs: 1000,
      throughputSeconds: 1,
      spinIterations: 256,
      capacitySmall: 256,
      capacityLarge: 4,
    },
    memcpy: [
      { size: 8, us: 0.01, gbPerS: 0.8 },
      { size: 4_194_304, us: 300, gbPerS: 14 },
    ],
    ring: { latency: latency(10), throughput: rate(5e6, 16) },
    port: [
      { size: 8, intervalUs: 1000, latency: latency(12), roundTrip: latency(24), throughput: rate(4e5, 8) },
      {
        size: 4_194_304,
        intervalUs: 2000,
        latency: latency(1500),
        roundTrip: latency(3000),
        throughput: rate(1e3, 4_194_304),
      },
    ],
    pipeline: [
      row('pair', 'put', 8, 14 * scale, 1.2e6 / scale),
      row('pair', 'allocate', 8, 20 * scale, 9e5 / scale),
      row('pair', 'inline', 8, 12 * scale, 2e6 / scale),
      row('pair', 'put', 4_194_304, 500 * scale, 2e3 / scale),
      row('pair', 'allocate', 4_194_304, 30 * scale, 8e4 / scale),
      row('chain5', 'put', 4_194_304, 360 * scale, 1e3 / scale),
    ],
    idle: { seconds: 3, cpuPercent: 0.2 },
    soak: {
      seconds: 60,
      frameBytes: 1_048_576,
      rateHz: 1000,
      frames: 60_000,
      latency: latency(100),
      samples: [1, 15, 30, 60].map((t) => ({
        t,
        rssBytes: (t === 1 ? 100 : t === 15 ? 105 : 110) * 2 ** 20,
        storeBytes: 0,
        storeObjects: 0,
      })),
      rssStartBytes: 100 * 2 ** 20,
      rssEndBytes: 110 * 2 ** 20,
      rssMaxBytes: 111 * 2 ** 20,
      rssGrowthPercent: 10,
      storeMaxBytes: 2 ** 20,
      storeEndBytes: 0,
      storeEndObjects: 0,
    },
    elapsedSeconds: 200,
  };
}

/** The same run on a copying store, with its raw baseline: put+get of 4 MiB in 600 µs, 1500 pairs/s. */
function storeFixture(store: 'lmdb' | 'redis'): BenchResults {
  const results = fixture();
  results.store = {
    name: store,
    detail: 'a test store',
    zeroCopy: false,
    baseline: {
      name: 'raw client',
      rows: [
        {
          size: 4_194_304,
          put: latency(400),
          get: latency(200),
          putGet: latency(600),
          throughput: rate(1500, 4_194_304),
        },
      ],
    },
    soakRateHz: 100,
  };
  results.pipeline.push(row('pair', 'put', 1_048_576, 200, 5e3));
  return results;
}

describe('floors', () => {
  it('adds one memcpy to the ring hop for paths that copy, none for allocate, one ring per hop in a chain', () => {
    const results = fixture();
    expect(floorOf(results, { path: 'put', size: 4_194_304, hops: 1 }).p50).toBe(310);
    expect(floorOf(results, { path: 'allocate', size: 4_194_304, hops: 1 }).p50).toBe(10);
    expect(floorOf(results, { path: 'put', size: 4_194_304, hops: 4 }).p50).toBe(340);
  });

  it('adds the memcpy to allocate too on a copying store (it writes the frame at flush)', () => {
    expect(floorOf(storeFixture('lmdb'), { path: 'allocate', size: 4_194_304, hops: 1 }).p50).toBe(310);
  });
});

describe('targets', () => {
  it('says which are met and by how much the others are missed', () => {
    const checks = new Map(checkTargets(fixture()).map((check) => [check.target, check]));
    expect(checks.get('8 B hop p50 via put ≤ 1.5× raw ring')).toMatchObject({ met: true });
    expect(checks.get('8 B hop p50 via allocate ≤ 1.5× raw ring')).toMatchObject({ met: false });
    expect(checks.get('8 B hop p50 via allocate ≤ 1.5× raw ring')!.ratio).toBeCloseTo(20 / 15, 5);
    expect(checks.get('8 B throughput via allocate ≥ 1 M msgs/s')).toMatchObject({ met: false });
    expect(checks.get('8 B throughput via put ≥ 2× raw MessagePort')).toMatchObject({ met: true });
    expect(checks.get('4 MiB hop p50 via put ≤ 1.5× (memcpy 4 MiB + ring hop)')).toMatchObject({ met: false });
    expect(checks.get('4 MiB hop p50 via put ≤ 1.5× (memcpy 4 MiB + ring hop)')!.ratio).toBeCloseTo(500 / 465, 5);
    expect(checks.get('allocate flat in size: 4 MiB p50 ≤ 2× 8 B p50')).toMatchObject({ met: true });
    expect(checks.get('idle pipeline < 1% CPU')).toMatchObject({ met: true });
    // Growth once warm: from the sample a quarter of the way in (105 MiB at 15 s) to the end (110 MiB).
    expect(checks.get('RSS growth < 5% over the 60 s soak, once warm')).toMatchObject({ met: true });
    expect(checks.get('RSS growth < 5% over the 60 s soak, once warm')!.ratio).toBeCloseTo(((5 / 105) * 100) / 5, 5);
  });
});

describe('targets of another store', () => {
  it("checks lmdb's own 4 MiB goal, not the memory store's", () => {
    const checks = new Map(checkTargets(storeFixture('lmdb')).map((check) => [check.target, check]));
    expect(checks.get('lmdb 4 MiB hop p50 via put ≤ 2× (memcpy 4 MiB + ring hop)')).toMatchObject({ met: true });
    expect(checks.get('lmdb 4 MiB hop p50 via put ≤ 2× (memcpy 4 MiB + ring hop)')!.ratio).toBeCloseTo(500 / 620, 5);
    expect(checks.has('8 B hop p50 via put ≤ 1.5× raw ring')).toBe(false);
    expect(checks.has('4 MiB hop p50 via put ≤ 1.5× (memcpy 4 MiB + ring hop)')).toBe(false);
    expect(checks.get('8 B hop p50 via inline ≤ 1.5× raw ring')).toMatchObject({ met: true });
  });

  it("holds redis to 20× improv (Python)'s published throughput at 1 MiB and 4 MiB", () => {
    const checks = new Map(checkTargets(storeFixture('redis')).map((check) => [check.target, check]));
    const mib4 = checks.get('redis 4 MiB throughput via put ≥ 20× improv (Python) Redis (6 msgs/s, published)');
    expect(mib4).toMatchObject({ met: true });
    expect(mib4!.ratio).toBeCloseTo((20 * 6) / 2e3, 5);
    const mib1 = checks.get('redis 1 MiB throughput via put ≥ 20× improv (Python) Redis (25 msgs/s, published)');
    expect(mib1).toMatchObject({ met: true });
    expect([...checks.keys()].some((target) => target.includes('(memcpy 4 MiB + ring hop)'))).toBe(false);
  });

  it('checks the put → delete row against 1 M msgs/s on the memory store', () => {
    const results = fixture();
    results.pipeline.push(row('pair', 'put-delete', 8, 15, 8e5));
    const check = checkTargets(results).find(
      (entry) => entry.target === '8 B put → key over a link → delete on another worker ≥ 1 M msgs/s',
    );
    expect(check).toMatchObject({ met: false });
    expect(check!.ratio).toBeCloseTo(1e6 / 8e5, 5);
  });
});

describe('report', () => {
  it('names the store in the title', () => {
    expect(renderReport(fixture())).toContain('## improv bench: node 1.0.0, memory store\n');
    expect(renderReport(storeFixture('lmdb'))).toContain('## improv bench: node 1.0.0, lmdb store\n');
  });

  it("sets a copying store's pipeline beside its raw client, memcpy and the ring hop, as ratios", () => {
    const text = renderReport(storeFixture('lmdb'));
    expect(text).toContain('### lmdb by itself (same run)');
    // timed pairs, raw put, get, put+get p50 and p99, pairs/s | floor, raw ÷ floor | pipeline p50, ÷ raw, ÷ floor, msgs/s, × raw.
    expect(text).toContain(
      '| 4 MiB | 100 | 400 | 200 | 600 | 1200 | 1.5 k | 310 | 1.94× | 500 | 0.83× | 1.61× | 2.0 k | 1.33× |',
    );
    expect(text).not.toContain('improv (Python)');
  });

  it("labels improv (Python)'s Redis figures as a published reference, not a measurement", () => {
    const text = renderReport(storeFixture('redis'));
    expect(text).toContain("### Beside improv (Python)'s Redis store — published reference, not measured in this run");
    // 4 MiB: improv 193,646 µs / 6 msgs/s; this run 500 µs / 2000 msgs/s.
    expect(text).toContain('| 4 MiB | 193,646 | 6 | 500 | 387.3× | 2.0 k | 333.3× |');
    // A size this run did not measure keeps the reference and leaves ours empty.
    expect(text).toContain('| 64 KiB | 6,406 | 374 | – | – | – | – |');
    expect(IMPROV_PYTHON_REDIS.map((entry) => entry.size)).toEqual([8, 4096, 65_536, 1_048_576, 4_194_304]);
  });

  it('shows the put → delete row beside the raw ring', () => {
    const results = fixture();
    results.pipeline.push(row('pair', 'put-delete', 8, 15, 1.5e6));
    const text = renderReport(results);
    expect(text).toContain('### Store allocator hot spot: 8 B put → key over a ring → delete on the other worker');
    expect(text).toContain('| 8 B put → delete | 1.50 M | 2.00 | 5.00 M | 0.30× | 15.0 |');
    expect(text).toContain('| 8 B | put → delete | 1.50 M |');
  });

  it('prints every pipeline row beside its floor and MessagePort, as ratios', () => {
    const text = renderReport(fixture());
    expect(text).toContain('| 4 MiB | put | 1 ms | 550 | 500 | 750 | 1000 | 1500 | 310 | 1.61× | 1500 | 0.33× |');
    expect(text).toContain('| chain of 5 (4 hops) | 4 MiB | 360 | 720 | 340 | 1.06× | 90.0 |');
    expect(text).toContain('missed by');
  });

  it("prefixes another store's CSV rows with its name and adds its raw baseline", () => {
    const lines = renderCsv(storeFixture('redis')).trim().split('\n');
    for (const line of lines) expect(line.split(',')).toHaveLength(10);
    expect(lines.some((line) => line.includes(',redis-pair-put-latency,4194304,'))).toBe(true);
    expect(lines.some((line) => line.includes(',baseline-redis-putget-latency,4194304,660.000,600.000,'))).toBe(true);
    expect(lines.some((line) => line.includes(',pair-put-latency,'))).toBe(false);
  });

  it('sets the pair across two hosts beside raw zeromq between the namespaces, and says where each end was', () => {
    const results = storeFixture('redis');
    const oneWay = (p50: number) => ({ ...latency(p50), n: 100 });
    results.transport = {
      name: 'zmq',
      detail: 'tcp with CURVE between the two hosts (keys made for the run), ZMTP 3.1 in TypeScript',
      sockets: 'zmtp',
      placement: 'hosts',
      hosts: {
        detail: 'two Linux network namespaces on a bridge',
        nexusAddress: '198.18.64.1',
        source: { name: 'a (imhx-0n0)', address: '198.18.64.2' },
        sink: { name: 'b (imhx-0n1)', address: '198.18.64.3' },
        baselinePath: 'this process (root namespace, 198.18.64.1) ↔ a peer process on host b',
      },
      baselines: [
        {
          name: 'zeromq',
          detail: 'zeromq.js PUSH → PULL over tcp, CURVE, this process ↔ host b',
          curve: true,
          rows: [{ size: 8, oneWay: oneWay(40), msgsPerS: 2e5, mbPerS: 1.6 }],
        },
      ],
    };
    const text = renderReport(results);
    expect(text).toContain(
      'Actors: **on two hosts** — the source on host a (imhx-0n0), 198.18.64.2, the sink on host b',
    );
    expect(text).toContain(
      'Raw network baselines: this process (root namespace, 198.18.64.1) ↔ a peer process on host b',
    );
    expect(text).toContain('the source on host a, the sink on host b, tcp with CURVE');
    // 8 B inline: 12 µs against raw zeromq's 40 µs, 2 M msgs/s against its 200 k.
    expect(text).toContain('| 8 B | inline | 12.0 | 40.0 | 0.30× | 2.00 M | 200.0 k | 10.0× |');
    expect(text).toContain('| zeromq.js PUSH → PULL over tcp, CURVE, this process ↔ host b | 8 B | 40.0 |');
    expect(text).not.toContain('each in its own worker');
  });

  it('sets a TypeScript → Python hop beside raw pyzmq and improv (Python), and holds every row to 20× improv', () => {
    const results = storeFixture('lmdb');
    const withPython = (entry: PipelineRow, peerCpuUsPerMsg: number) => ({
      ...entry,
      throughput: { ...entry.throughput, peerCpuUsPerMsg },
    });
    results.pipeline = [
      withPython(row('pair', 'put', 8, 300, 5e4), 12.5),
      withPython(row('pair', 'inline', 8, 150, 2e5), 4),
      withPython(row('pair', 'put', 512, 310, 4e4), 13),
      withPython(row('pair', 'put', 4_194_304, 3000, 300), 900),
      row('pair', 'put-delete', 8, 200, 6e4),
    ];
    const raw = (size: number, p50: number, msgsPerS: number) => ({
      size,
      intervalUs: 1000,
      oneWay: latency(p50),
      throughput: { messages: msgsPerS, seconds: 1, msgsPerS, mbPerS: (msgsPerS * size) / 1e6 },
      highWaterMark: size >= 1_048_576 ? 4 : 256,
    });
    results.transport = {
      name: 'zmq',
      detail:
        'ipc sockets in a temporary folder, ZMTP 3.1 in TypeScript at the source, pyzmq (libzmq) at the Python sink',
      sockets: 'zmtp',
      placement: 'python',
      baselines: [],
      python: {
        interpreter: '/usr/bin/python3',
        detail: 'the source a TypeScript actor in a worker, the sink a Python actor',
        baseline: {
          detail: 'pyzmq 24.0.1 (libzmq 4.3.4) PUSH → PULL over ipc, two Python 3.11.2 processes',
          python: '3.11.2',
          pyzmq: '24.0.1',
          libzmq: '4.3.4',
          rows: [raw(8, 80, 5e5), raw(512, 85, 4e5), raw(4_194_304, 1500, 100)],
        },
        improv: IMPROV_PYTHON_REDIS.map((entry) => ({ ...entry })),
        improvGoal: 20,
      },
    };
    const text = renderReport(results);
    expect(text).toContain('Actors: **a TypeScript source, a Python sink**');
    expect(text).toContain('### TypeScript → Python hop beside raw pyzmq (same run) and improv (Python)');
    expect(text).toContain('**not measured in this run**');
    // p50, p99, raw p50, × raw | msgs/s, Python CPU, raw msgs/s, × raw | improv p50, ÷ ours, msgs/s, × improv, verdict.
    expect(text).toContain(
      '| 8 B | put | 300 | 600 | 80.0 | 3.75× | 50.0 k | 12.5 | 500.0 k | 0.10× | 4,177 | 13.9× | 5,743 | 8.71× | missed (8.71×) |',
    );
    expect(text).toContain(
      '| 8 B | inline | 150 | 300 | 80.0 | 1.88× | 200.0 k | 4.0 | 500.0 k | 0.40× | 4,177 | 27.8× | 5,743 | 34.8× | **met** |',
    );
    expect(text).toContain(
      '| 512 B | put | 310 | 620 | 85.0 | 3.65× | 40.0 k | 13.0 | 400.0 k | 0.10× | – | – | – | – | no improv figure |',
    );
    expect(text).toContain(
      '| 4 MiB | put | 3000 | 6000 | 1500 | 2.00× | 300 | 900.0 | 100 | 3.00× | 193,646 | 64.5× | 6 | 50.0× | **met** |',
    );
    expect(text).toContain('| 8 B | 1 ms × 100 | 88.0 | 80.0 | 120 | 160 | 240 | 500.0 k | 4.0 | 256 |');
    expect(text).toContain('the source in a worker, the sink in a Python process');
    expect(text).toContain('### Store allocator hot spot: 8 B put in TypeScript → key over a link → delete in Python');
    // The TypeScript links' own tables (raw zeromq.js, raw TCP) are not this run's.
    expect(text).not.toContain('### Network baselines');
    expect(text).not.toContain('### zmq links beside raw zeromq.js');
    const checks = new Map(checkTargets(results).map((check) => [check.target, check]));
    const put8 = checks.get("TypeScript → Python 8 B via put ≥ 20× improv (Python)'s 5,743 msgs/s");
    expect(put8).toMatchObject({ met: false });
    expect(put8!.ratio).toBeCloseTo((20 * 5743) / 5e4, 5);
    expect(checks.get("TypeScript → Python 4 MiB via put ≥ 20× improv (Python)'s 6 msgs/s")).toMatchObject({
      met: true,
    });
    // Only improv's goal: not the TypeScript floors, nor the rows without an improv figure or data read.
    expect([...checks.keys()].filter((target) => target.startsWith('TypeScript → Python'))).toHaveLength(3);
    expect(checks.has('8 B hop p50 via inline ≤ 1.5× raw ring')).toBe(false);
    expect([...checks.keys()].some((target) => target.includes('(memcpy 4 MiB + ring hop)'))).toBe(false);
    const csv = renderCsv(results).trim().split('\n');
    for (const line of csv) expect(line.split(',')).toHaveLength(10);
    expect(csv.some((line) => line.includes(',lmdb-python-pair-put-latency,8,'))).toBe(true);
    expect(csv.some((line) => line.includes(',baseline-pyzmq-latency,8,88.000,80.000,'))).toBe(true);
    expect(csv.some((line) => line.includes(',baseline-pyzmq-throughput,4194304,10000.000,,,,100'))).toBe(true);
  });

  it('writes the dora-benchmark CSV columns', () => {
    const lines = renderCsv(fixture()).trim().split('\n');
    expect(lines[0]).toBe('date,language,platform,name,size_bytes,avg_us,p50_us,p90_us,p99_us,n');
    for (const line of lines) expect(line.split(',')).toHaveLength(10);
    expect(lines).toContain(
      '2026-11-25T10:00:00.000Z,typescript-node,linux-x64,pair-put-latency,8,15.400,14.000,21.000,28.000,100',
    );
    // Throughput rows: time per message at the sustained rate, no percentiles.
    expect(lines).toContain(
      '2026-11-25T10:00:00.000Z,typescript-node,linux-x64,pair-put-throughput,8,0.833,,,,1200000',
    );
  });

  it('sets the lmdb and redis runs beside the memory store, with their dates, and their tables only when asked', () => {
    const full = renderStores([fixture('node')], [storeFixture('lmdb'), storeFixture('redis')]);
    expect(full).toContain('| size | path | memory p50 µs | lmdb p50 µs | redis p50 µs |');
    expect(full).toContain('lmdb 2026-11-25T10:00:00.000Z, redis 2026-11-25T10:00:00.000Z');
    expect(full).toContain('All tables: node 1.0.0, lmdb store');
    const summary = renderStores([fixture('node')], [storeFixture('lmdb'), storeFixture('redis')], false);
    expect(summary).toContain('| size | path | memory p50 µs | lmdb p50 µs | redis p50 µs |');
    expect(summary).not.toContain('All tables');
  });

  it('sets Bun and Deno beside Node and names the worst row', () => {
    const text = renderRuntimes([fixture('node'), fixture('bun', 2), fixture('deno', 1.2)]);
    expect(text).toContain('| target | node 1.0.0 | bun 1.0.0 | deno 1.0.0 |');
    expect(text).toMatch(/Target missed on 12 of 24 figures: bun pair put 8 B p50 2\.00×, .* Node's\./);
    const within = renderRuntimes([fixture('node'), fixture('deno', 1.2)]);
    expect(within).toMatch(/Every row of deno is within 1\.5× of Node/);
  });

  it('sets zmq links over tcp beside the same links over ipc, each its own column, and the raw sockets of each', () => {
    const raw = (name: 'zeromq' | 'tcp', protocol: 'ipc' | undefined, msgsPerS: number) => ({
      name,
      detail: 'a test baseline',
      ...(protocol === undefined ? {} : { protocol }),
      rows: [{ size: 8, oneWay: latency(50), msgsPerS, mbPerS: (msgsPerS * 8) / 1e6 }],
    });
    const zmqRun = (protocol: 'ipc' | 'tcp' | undefined, scale: number): BenchResults => {
      const results = fixture('node', scale);
      results.transport = {
        name: 'zmq',
        detail: 'a test transport, ZMTP 3.1 in TypeScript',
        sockets: 'zmtp',
        ...(protocol === undefined ? {} : { protocol }),
        // Baselines written before their field are tcp; an ipc run's are ipc.
        baselines:
          protocol === 'tcp'
            ? [raw('zeromq', undefined, 3e5), raw('tcp', undefined, 4e5)]
            : [raw('zeromq', 'ipc', 1e5), raw('tcp', 'ipc', 2e5)],
      };
      return results;
    };
    // A run from before the field is ipc.
    const text = renderZmq([zmqRun('tcp', 0.5), zmqRun(undefined, 1)], undefined);
    expect(text).toContain(
      '| size | zmq ZMTP (TS), node | zmq ZMTP (TS) over tcp, node | raw zeromq.js over ipc | raw unix socket | raw zeromq.js over tcp | raw TCP |',
    );
    expect(text).toContain('· 100.0 k/s | 50.0 µs · 200.0 k/s | 50.0 µs · 300.0 k/s | 50.0 µs · 400.0 k/s |');
    expect(text).toContain('over tcp on loopback (`settings.zmq.protocol: tcp`)');
  });
});
