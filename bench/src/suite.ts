/**
 * A whole bench run: baselines first, then the pipeline in every topology, idle CPU and the soak,
 * all in one process so every figure can be set beside a baseline from the same run. Every pipeline
 * uses the store of `--store` (memory by default); a copying store's raw baseline (its own client
 * library, one thread) is measured in the same run.
 *
 * `placement: 'hosts'`: two hosts (network namespaces with an agent each, see hosts.ts) are made
 * first, the Redis server listens on this machine's address on their network too, the pair runs with
 * its source on host a and its sink on host b, and the raw network baselines run between this
 * process and a peer on host b. Only the pair runs (the hop between two hosts), at sizes up to 4 MiB
 * unless `sizes` says otherwise (the raw baselines' sizes).
 *
 * `placement: 'python'`: the pair only, its sink a Python actor (`pipeline/actors.py`) in a Python
 * process of its own, its source a TypeScript worker, over the zmq links and the lmdb (or redis)
 * store; at 8 B, 4 KiB and 4 MiB unless `sizes` says otherwise. Instead of the zeromq.js and TCP
 * baselines, raw pyzmq between two Python processes (`baselines/pyzmq.ts`); the soak's sink is the
 * Python one too. The rows are set beside improv (Python)'s reference figures (report.ts).
 * @module
 */
import os from 'node:os';
import process from 'node:process';
import { DEFAULT_LINK_CAPACITY, detectRuntime, type RuntimeAdapter, type StoreName } from '@improv/core';
import { BaselinePair, measureMemcpy } from './baselines/index.ts';
import { measureNetBaseline, type NetBaseline, type NetPeerPlacement } from './baselines/net.ts';
import { measurePyzmqBaseline, type PyzmqBaseline } from './baselines/pyzmq.ts';
import { monotonicOffsetUs, newEpoch } from './clock.ts';
import { label, mib, perS, signed, us } from './format.ts';
import { type BenchHosts, openBenchHosts } from './hosts.ts';
import type { PathName } from './pipeline/board.ts';
import { hopsOf, type PhaseResult, Scenario, type ScenarioOptions, type TopologyName } from './pipeline/scenario.ts';
import { IMPROV_PYTHON_GOAL, IMPROV_PYTHON_REDIS } from './report.ts';
import {
  type BenchResults,
  type HostsRun,
  type PipelineRow,
  type PortRow,
  type PythonRun,
  type Rate,
  RESULTS_VERSION,
  SIZES,
  type SoakResult,
  type SoakSample,
  type StoreBaselineRow,
} from './results.ts';
import { summarize } from './stats.ts';
import { type BenchStore, openBenchStore, StoreOpenError } from './stores.ts';

/** What to run; `quick` and `full` are the presets, the rest overrides them. */
export interface SuiteOptions {
  quick: boolean;
  /** Paced messages per latency row. */
  samples?: number;
  /** Flat-out time per throughput row, ms. */
  throughputMs?: number;
  /** Soak length, s. */
  soakSeconds?: number;
  /** Payload sizes (default: the full grid). */
  sizes?: readonly number[];
  /**
   * Messages each link of the small-payload pipelines holds, and the raw baselines' window (default
   * {@link CAPACITY_SMALL}; with placement `python`, {@link DEFAULT_LINK_CAPACITY}).
   */
  capacity?: number;
  /** The store of every pipeline (default memory). */
  store?: StoreName;
  /** The links of every pipeline (default local); `zmq` adds the network baselines. */
  transport?: 'local' | 'zmq';
  /** The zmq links' sockets (default auto: the TypeScript ZMTP; zeromq: zeromq.js, Node only). */
  zmqSockets?: 'auto' | 'zeromq' | 'zmtp';
  /** The zmq links on this host: ipc (default, unix sockets) or tcp (loopback, as the raw baselines). */
  zmqProtocol?: 'ipc' | 'tcp';
  /**
   * `process`: every actor in an OS process of its own (needs the zmq links and a store other than
   * memory). `hosts`: the pair across two hosts (needs the zmq links, the redis store, Node as root).
   * `python`: the pair with a Python sink (needs the zmq links, the lmdb or redis store, Node, and
   * `python`).
   */
  placement?: 'worker' | 'process' | 'hosts' | 'python';
  /** With placement `python`: the interpreter (with numpy, pyzmq and msgpack). */
  python?: string;
  /** Progress lines. */
  log: (line: string) => void;
}

/** The local transport's default `spinIterations`, so the raw ring waits the same way. */
const SPIN_ITERATIONS = 256;
/**
 * Links of pipelines carrying payloads under {@link LARGE} hold this many messages, unless `--capacity`
 * says otherwise, or the placement is `python`: its rows are set beside improv (Python)'s figures,
 * measured with improv's defaults (its ZeroMQ high-water mark of 1000), so they run with a link's
 * default ({@link DEFAULT_LINK_CAPACITY}), as an improv user's pipeline here would.
 */
export const CAPACITY_SMALL = 256;
/** The most `--capacity` takes: the store is sized for every message in flight. */
export const MAX_CAPACITY = 65_536;
/** Links of pipelines carrying 4 MiB and up hold this many (the store holds every frame in flight). */
const CAPACITY_LARGE = 4;
/** Sizes from here on run in the large-capacity pipelines. */
const LARGE = 1_048_576;
/** Largest payload sent inline (in the message itself rather than through the store). */
const INLINE_MAX = 4096;
const INTERVAL_US = 1000;
/** From this size on, latency rows send a tenth of the messages (each takes milliseconds). */
const FEW_MESSAGES_FROM = 4_194_304;
const SOAK_FRAME_BYTES = 1_048_576;
/**
 * Paced 1 MiB frames per second of the soak: 1 kHz in shared memory; a copying store writes and
 * reads every frame through its library (and Redis through a socket), so it soaks at a pace it
 * sustains with room to spare — the soak looks for growth over time, not for the store's limit.
 */
const SOAK_RATE_HZ: Record<StoreName, number> = { memory: 1000, lmdb: 250, redis: 50 };
/** ...and with a Python sink (`--placement python`), which reads and deletes each frame in Python. */
const PYTHON_SOAK_RATE_HZ = 100;
/** Longest a latency row of a copying store is paced for (fewer messages when its pace is slow), µs. */
const LATENCY_BUDGET_US = 12_000_000;
/** Fewest paced messages of a latency row of a copying store. */
const MIN_PACED_MESSAGES = 50;
/** The store's allocator hot spot: an 8-byte `put` on one worker, `delete` on another. */
const PUT_DELETE_SIZE = 8;
/** The network baselines run up to this size (the links carry store keys; 4 MiB frames go inline nowhere). */
const NET_MAX_SIZE = 4_194_304;
/** Round trips per network baseline row, at most (each is paced at 1 kHz). */
const NET_MAX_ROUND_TRIPS = 2000;
/** Topologies beyond the pair run at these sizes (a small message and a camera frame). */
const TOPOLOGY_SIZES = [64, 4_194_304];
/** `--placement python` runs at these sizes unless told otherwise: the issue's (8 B, 4 KiB, 4 MiB). */
export const PYTHON_SIZES = [8, 4096, 4_194_304];

export async function runSuite(options: SuiteOptions): Promise<BenchResults> {
  const started = performance.now();
  const samples = options.samples ?? (options.quick ? 250 : 3000);
  const throughputUs = (options.throughputMs ?? (options.quick ? 150 : 1000)) * 1000;
  const soakSeconds = options.soakSeconds ?? (options.quick ? 10 : 60);
  const onHosts = options.placement === 'hosts';
  const inPython = options.placement === 'python';
  // Across hosts every row is set beside the raw baselines, which run up to NET_MAX_SIZE.
  const defaultSizes = onHosts ? SIZES.filter((size) => size <= NET_MAX_SIZE) : inPython ? PYTHON_SIZES : SIZES;
  const sizes = [...new Set(options.sizes ?? defaultSizes)].sort((a, b) => a - b);
  const storeName = options.store ?? 'memory';
  if (onHosts && (storeName !== 'redis' || options.transport !== 'zmq')) {
    throw new TypeError('bench: placement hosts runs on the redis store and the zmq links');
  }
  if (inPython && (storeName === 'memory' || options.transport !== 'zmq' || options.python === undefined)) {
    throw new TypeError(
      'bench: placement python runs on the lmdb or redis store and the zmq links, with an interpreter',
    );
  }
  const runtime = await detectRuntime();
  // The hosts first: the Redis server must listen on this machine's address on their network.
  const hosts = onHosts ? await openBenchHosts(options.log) : undefined;
  try {
    let store: BenchStore;
    try {
      store = await openBenchStore(storeName, hosts === undefined ? {} : { bind: hosts.nexusAddress });
    } catch (error) {
      throw new StoreOpenError(storeName, error);
    }
    try {
      return await runWith(store, {
        ...options,
        samples,
        throughputUs,
        soakSeconds,
        sizes,
        runtime,
        started,
        ...(hosts === undefined ? {} : { hosts }),
      });
    } finally {
      await store.close();
    }
  } finally {
    await hosts?.close();
  }
}

interface Resolved extends SuiteOptions {
  samples: number;
  throughputUs: number;
  soakSeconds: number;
  sizes: number[];
  runtime: RuntimeAdapter;
  started: number;
  /** `placement: 'hosts'`: the hosts, agents running. */
  hosts?: BenchHosts;
}

async function runWith(store: BenchStore, options: Resolved): Promise<BenchResults> {
  const capacitySmall = options.capacity ?? (options.placement === 'python' ? DEFAULT_LINK_CAPACITY : CAPACITY_SMALL);
  /** Messages in flight at `size`: each link's capacity, and the raw baselines' window. */
  const windowFor = (size: number): number => (size >= LARGE ? CAPACITY_LARGE : capacitySmall);
  const { log, samples, throughputUs, soakSeconds, sizes, runtime, started } = options;
  const epochMs = newEpoch();
  const rate = (received: number, wallUs: number, cpuUs: number, size: number, peerCpuUs?: number): Rate => ({
    messages: received,
    seconds: wallUs / 1e6,
    msgsPerS: received / (wallUs / 1e6),
    mbPerS: (received * size) / wallUs,
    cpuUsPerMsg: cpuUs / received,
    ...(peerCpuUs === undefined ? {} : { peerCpuUsPerMsg: peerCpuUs / received }),
  });

  const transport = options.transport ?? 'local';
  const zmqProtocol = options.zmqProtocol ?? 'ipc';
  const hosts = options.hosts;
  // Python sinks: the interpreter, and their clock (CLOCK_MONOTONIC made this thread's clock).
  const python: ScenarioOptions['python'] =
    options.placement === 'python' && options.python !== undefined
      ? { interpreter: options.python, clockOffsetUs: monotonicOffsetUs(epochMs) }
      : undefined;
  const placed =
    options.placement === 'process'
      ? ', every actor in its own process'
      : hosts
        ? `, the pair's source on host a (${hosts.source.address}) and its sink on host b (${hosts.sink.address})`
        : python
          ? `, the pair's source in a worker and its sink a Python actor (${python.interpreter})`
          : '';
  log(
    `bench: ${runtime.name} ${runtime.version}, ${options.quick ? 'quick' : 'full'} run, ${store.name} store, ${transport} links${placed}`,
  );
  const soakRateHz = python ? Math.min(PYTHON_SOAK_RATE_HZ, SOAK_RATE_HZ[store.name]) : SOAK_RATE_HZ[store.name];
  // First, while the process is fresh: later scenarios leave big shared buffers for the GC to free,
  // which would blur the soak's RSS.
  const soak = await runSoak(runtime, store, soakSeconds, soakRateHz, epochMs, log, python);
  const memcpy = measureMemcpy(sizes, options.quick ? 30 : 200);
  log(`memcpy: ${memcpy.map((row) => `${label(row.size)} ${row.gbPerS.toFixed(1)} GB/s`).join(', ')}`);
  /** Paced messages of a latency row of `size`: a tenth (at least 50) from 4 MiB on, never more than `samples`. */
  const countFor = (size: number) =>
    size >= FEW_MESSAGES_FROM ? Math.min(samples, Math.max(50, Math.round(samples / 10))) : samples;

  const storeBaseline: StoreBaselineRow[] = [];
  if (store.baseline !== undefined) {
    for (const size of sizes) {
      const row = await store.baseline(size, countFor(size), throughputUs);
      storeBaseline.push(row);
      log(
        `raw ${store.name} ${label(size)}: put p50 ${us(row.put.p50)} µs, get p50 ${us(row.get.p50)} µs, put+get p50 ${us(row.putGet.p50)} µs, ${perS(row.throughput.msgsPerS)} pairs/s`,
      );
    }
  }
  /**
   * The pace of a latency row: 1 kHz, or slower where the path copies the payload and one copy
   * takes over half a millisecond (40 MiB: ~5 ms), so every row measures a hop, not a queue.
   * Never slower otherwise: a sink woken after a long sleep wakes measurably slower, which would
   * blur the comparison of sizes.
   */
  const intervalFor = (size: number, copies: boolean) => {
    const copyUs = copies ? (memcpy.find((row) => row.size === size)?.us ?? 0) : 0;
    return Math.max(INTERVAL_US, Math.ceil((2 * copyUs) / 1000) * 1000);
  };

  const ringPair = await BaselinePair.ring(runtime, SPIN_ITERATIONS, epochMs);
  let ring: BenchResults['ring'];
  try {
    await ringPair.latency(Math.min(200, samples), INTERVAL_US, 0);
    const latency = summarize((await ringPair.latency(samples, INTERVAL_US, 0)).samples);
    const flat = await ringPair.throughput(throughputUs, 0, 0);
    ring = { latency, throughput: rate(flat.received, flat.wallUs, flat.cpuUs, 16) };
    log(`raw ring: p50 ${us(latency.p50)} µs, ${perS(ring.throughput.msgsPerS)} msgs/s`);
  } finally {
    await ringPair.close();
  }

  const portPair = await BaselinePair.port(runtime, epochMs);
  const port: PortRow[] = [];
  try {
    await portPair.latency(Math.min(200, samples), INTERVAL_US, 8);
    for (const size of sizes) {
      const measured = await portPair.latency(countFor(size), intervalFor(size, true), size);
      const flat = await portPair.throughput(throughputUs, size, windowFor(size));
      const row: PortRow = {
        size,
        intervalUs: intervalFor(size, true),
        latency: summarize(measured.samples),
        roundTrip: summarize(measured.roundTrips!),
        throughput: rate(flat.received, flat.wallUs, flat.cpuUs, size),
      };
      port.push(row);
      log(`raw MessagePort ${label(size)}: p50 ${us(row.latency.p50)} µs, ${perS(row.throughput.msgsPerS)} msgs/s`);
    }
  } finally {
    await portPair.close();
  }

  const net: NetBaseline[] = [];
  // Across hosts: the measuring side is this process (it keeps the clock), its peer runs on host b.
  const peer: NetPeerPlacement | undefined = hosts && {
    address: hosts.nexusAddress,
    spawn: hosts.sink.spawn,
    where: 'root namespace ↔ host b',
    curve: true,
  };
  // A Python sink's hop is set beside raw pyzmq instead (the links' own, TypeScript, baselines are
  // the other placements').
  let pyzmq: PyzmqBaseline | undefined;
  if (python) {
    pyzmq = await measurePyzmqBaseline(
      python.interpreter,
      sizes,
      {
        count: countFor,
        intervalUs: INTERVAL_US,
        floodUs: throughputUs,
        highWaterMark: windowFor,
        budgetUs: LATENCY_BUDGET_US,
        minMessages: MIN_PACED_MESSAGES,
      },
      log,
    );
  }
  if (transport === 'zmq' && !python) {
    const netSizes = sizes.filter((size) => size <= NET_MAX_SIZE);
    for (const name of ['zeromq', 'tcp'] as const) {
      const baseline = await measureNetBaseline(name, runtime, netSizes, {
        count: (size) => Math.min(countFor(size), NET_MAX_ROUND_TRIPS),
        intervalUs: INTERVAL_US,
        floodMs: Math.round(throughputUs / 1000),
        ...(peer === undefined ? {} : { peer }),
        // Like for like: the raw sockets between two processes of this host go as the links go.
        ipc: zmqProtocol === 'ipc',
      });
      if (baseline === undefined) {
        log(`raw ${name}: not measured on ${runtime.name} (zeromq.js runs on Node only); compare with a Node run`);
        continue;
      }
      net.push(baseline);
      for (const row of baseline.rows) {
        log(`raw ${name} ${label(row.size)}: one way p50 ${us(row.oneWay.p50)} µs, ${perS(row.msgsPerS)} msgs/s`);
      }
    }
  }

  const pipeline: PipelineRow[] = [];
  const runRow = async (scenario: Scenario, path: PathName, size: number) => {
    let intervalUs = intervalFor(size, path !== 'allocate' || !store.zeroCopy);
    let count = countFor(size);
    let flat: PhaseResult | undefined;
    if (!store.zeroCopy) {
      // A copying store's path can take longer per message than the pace above: throughput first,
      // then pace at least twice the time a message takes flat out (per source), so the latency
      // row measures a hop, not a queue — within a time budget per row.
      flat = await scenario.phase({ mode: 'throughput', path, size, durationUs: throughputUs });
      const sources = scenario.topology === 'fanin4' ? 4 : 1;
      const perMessageUs = (flat.wallUs / Math.max(1, flat.sent)) * sources;
      intervalUs = Math.max(intervalUs, Math.ceil((2 * perMessageUs) / 1000) * 1000);
      count = Math.min(count, Math.max(MIN_PACED_MESSAGES, Math.floor(LATENCY_BUDGET_US / intervalUs)));
    }
    const latency = await scenario.phase({ mode: 'latency', path, size, count, intervalUs });
    flat ??= await scenario.phase({ mode: 'throughput', path, size, durationUs: throughputUs });
    const row: PipelineRow = {
      topology: scenario.topology,
      path,
      size,
      hops: hopsOf[scenario.topology],
      intervalUs,
      latency: summarize(latency.samples),
      throughput: rateOf(flat, size),
    };
    pipeline.push(row);
    log(
      `${scenario.topology} ${path} ${label(size)}: p50 ${us(row.latency.p50)} µs, p99 ${us(row.latency.p99)} µs, ${perS(row.throughput.msgsPerS)} msgs/s` +
        (row.throughput.peerCpuUsPerMsg === undefined
          ? ''
          : `, CPU ${row.throughput.cpuUsPerMsg.toFixed(1)} µs/msg (Python ${row.throughput.peerCpuUsPerMsg.toFixed(1)})`),
    );
  };
  const rateOf = (result: PhaseResult, size: number) =>
    rate(result.received, result.wallUs, result.cpuUs, size, result.peerCpuUs);

  let idle: BenchResults['idle'] | undefined;
  // Across hosts, the hop between two hosts: the pair; with Python, the hop into Python: the pair.
  const topologies: TopologyName[] = hosts || python ? ['pair'] : ['pair', 'chain5', 'fanout4', 'fanin4'];
  for (const topology of topologies) {
    const wanted = topology === 'pair' ? sizes : sizes.filter((size) => TOPOLOGY_SIZES.includes(size));
    const groups = [wanted.filter((size) => size < LARGE), wanted.filter((size) => size >= LARGE)];
    for (const [groupIndex, group] of groups.entries()) {
      // The put → delete row runs in the pair of small payloads, which opens for it alone if need be.
      const putDelete = topology === 'pair' && groupIndex === 0;
      if (group.length === 0 && !putDelete) continue;
      const large = groupIndex === 1;
      const capacity = large ? CAPACITY_LARGE : capacitySmall;
      const scenario = await Scenario.open({
        topology,
        capacity,
        storeBytes: storeBytesFor(topology, capacity, Math.max(PUT_DELETE_SIZE, ...group)),
        store: await store.driver(),
        transport,
        zmqSockets: options.zmqSockets ?? 'auto',
        zmqProtocol,
        placement: options.placement ?? 'worker',
        ...(hosts === undefined ? {} : { hosts: { source: hosts.source, sink: hosts.sink } }),
        ...(python === undefined ? {} : { python }),
        maxSamples: samples,
        inlineBytes: INLINE_MAX,
        epochMs,
      });
      try {
        if (idle === undefined) {
          // Idle, in the first pipeline (a pair): it is running, every actor waits for input.
          const seconds = options.quick ? 1 : 3;
          await new Promise((resolve) => setTimeout(resolve, options.quick ? 300 : 1000));
          idle = { seconds, cpuPercent: await scenario.idleCpu(seconds * 1000) };
          log(`idle pipeline: ${idle.cpuPercent.toFixed(2)}% CPU`);
        }
        await warmUp(scenario, group[0] ?? PUT_DELETE_SIZE, samples, throughputUs, !store.zeroCopy);
        for (const path of ['put', 'allocate', 'inline'] as const) {
          for (const size of group) {
            if (path === 'inline' && (topology !== 'pair' || size > INLINE_MAX)) continue;
            await runRow(scenario, path, size);
          }
          if (topology !== 'pair') break;
        }
        if (putDelete) await runRow(scenario, 'put-delete', PUT_DELETE_SIZE);
      } finally {
        await scenario.close();
      }
    }
  }

  if (idle === undefined)
    throw new Error('bench: no pipeline ran, so idle CPU was not measured; pass at least one size');
  return {
    version: RESULTS_VERSION,
    date: new Date().toISOString(),
    quick: options.quick,
    runtime: { name: runtime.name, version: runtime.version },
    store: {
      name: store.name,
      detail: store.detail,
      zeroCopy: store.zeroCopy,
      ...(store.baselineName === undefined ? {} : { baseline: { name: store.baselineName, rows: storeBaseline } }),
      soakRateHz,
    },
    ...(transport === 'zmq'
      ? {
          transport: {
            name: 'zmq' as const,
            detail: `${hosts ? 'tcp with CURVE between the two hosts (keys made for the run)' : zmqProtocol === 'tcp' ? 'tcp on loopback' : 'ipc sockets in a temporary folder'}, ${socketsOf(options.zmqSockets ?? 'auto') === 'zmtp' ? 'ZMTP 3.1 in TypeScript' : 'zeromq.js (libzmq)'}${python ? ' at the source, pyzmq (libzmq) at the Python sink' : ''}`,
            sockets: socketsOf(options.zmqSockets ?? 'auto'),
            protocol: hosts ? 'tcp' : zmqProtocol,
            baselines: net,
            ...(options.placement === 'process' ? { placement: 'process' as const } : {}),
            ...(hosts ? { placement: 'hosts' as const, hosts: hostsRun(hosts) } : {}),
            ...(python && pyzmq ? { placement: 'python' as const, python: pythonRun(python.interpreter, pyzmq) } : {}),
          },
        }
      : {}),
    platform: {
      os: `${process.platform}-${process.arch}`,
      cpu: os.cpus()[0]?.model.trim() ?? 'unknown',
      cores: os.cpus().length,
      memoryBytes: os.totalmem(),
    },
    settings: {
      latencyMessages: samples,
      intervalUs: INTERVAL_US,
      throughputSeconds: throughputUs / 1e6,
      spinIterations: SPIN_ITERATIONS,
      capacitySmall,
      capacityLarge: CAPACITY_LARGE,
    },
    memcpy,
    ring,
    port,
    pipeline,
    idle,
    soak,
    elapsedSeconds: (performance.now() - started) / 1000,
  };
}

function hostsRun(hosts: BenchHosts): HostsRun {
  return {
    detail:
      'two Linux network namespaces on a bridge with the root namespace (makeHosts of @improv/cli/testing/hosts), an `improv agent` in each, started and stopped by the bench; the Nexus in the root namespace',
    nexusAddress: hosts.nexusAddress,
    source: { name: `a (${hosts.source.namespace})`, address: hosts.source.address },
    sink: { name: `b (${hosts.sink.namespace})`, address: hosts.sink.address },
    baselinePath: `this process (root namespace, ${hosts.nexusAddress}) ↔ a peer process on host b (namespace ${hosts.sink.namespace}, ${hosts.sink.address})`,
  };
}

function pythonRun(interpreter: string, baseline: PyzmqBaseline): PythonRun {
  return {
    interpreter,
    detail:
      "the source a TypeScript actor in a worker of the bench's process, the sink a Python actor (improv_ts) in a Python process of its own; one way from the source's stamp to the sink holding the value, on one clock (the sink reads CLOCK_MONOTONIC, which Node's clock of the run is, offset by a constant measured at the start)",
    baseline,
    improv: IMPROV_PYTHON_REDIS.map((entry) => ({ ...entry })),
    improvGoal: IMPROV_PYTHON_GOAL,
  };
}

/** Which sockets a zmq run's links used (`auto`: the TypeScript ZMTP). */
function socketsOf(choice: 'auto' | 'zeromq' | 'zmtp'): 'zeromq' | 'zmtp' {
  return choice === 'zeromq' ? 'zeromq' : 'zmtp';
}

/**
 * JIT and caches warm before the first measured row of a pipeline. On a copying store a few paced
 * messages (200 frames of 4 MiB through a chain of Redis hops would take longer than a phase may).
 */
async function warmUp(
  scenario: Scenario,
  size: number,
  samples: number,
  throughputUs: number,
  copying: boolean,
): Promise<void> {
  const count = Math.min(copying ? 20 : 200, samples);
  await scenario.phase({ mode: 'latency', path: 'put', size, count, intervalUs: copying ? 1000 : 200 });
  await scenario.phase({ mode: 'throughput', path: 'put', size, durationUs: Math.min(200_000, throughputUs) });
}

/**
 * Room for every value in flight: each link holds `capacity` keys and each actor one more; a chain
 * has four links, fan-in four sources; under fan-out the four links carry the same keys, which the
 * source keeps `capacity + 1` messages longer.
 */
function storeBytesFor(topology: TopologyName, capacity: number, size: number): number {
  const values = {
    pair: capacity + 2,
    chain5: 4 * (capacity + 2),
    fanout4: 2 * (capacity + 2),
    fanin4: 4 * (capacity + 2),
  }[topology];
  return Math.max(64 * 1_048_576, Math.ceil((values * (size + 4096) * 1.25) / 1_048_576) * 1_048_576);
}

/** `rateHz` (1 kHz on the memory store) of 1 MiB frames through `store.put`, the sink deleting each: memory over time. */
async function runSoak(
  runtime: RuntimeAdapter,
  store: BenchStore,
  seconds: number,
  rateHz: number,
  epochMs: number,
  log: (line: string) => void,
  python?: ScenarioOptions['python'],
): Promise<SoakResult> {
  const frames = seconds * rateHz;
  const scenario = await Scenario.open({
    topology: 'pair',
    capacity: 16,
    storeBytes: 64 * 1_048_576,
    store: await store.driver(),
    // A Python sink's soak: the frames go to the Python process, whose RSS is sampled too.
    ...(python === undefined ? {} : { placement: 'python' as const, transport: 'zmq' as const, python }),
    maxSamples: frames,
    inlineBytes: 0,
    epochMs,
  });
  const samples: SoakSample[] = [];
  try {
    const start = performance.now();
    const sample = async () => {
      const usage = await scenario.nexus.store.usage();
      const peerRssBytes = scenario.peerRssBytes();
      samples.push({
        t: (performance.now() - start) / 1000,
        rssBytes: process.memoryUsage.rss(),
        storeBytes: usage.usedBytes,
        storeObjects: usage.objects,
        ...(peerRssBytes === undefined ? {} : { peerRssBytes }),
      });
    };
    log(
      `soak: ${seconds} s of ${rateHz} Hz × 1 MiB frames on ${runtime.name}, ${store.name} store${python ? ', a Python sink' : ''}`,
    );
    const result = await scenario.phase({
      mode: 'latency',
      path: 'put',
      size: SOAK_FRAME_BYTES,
      count: frames,
      intervalUs: 1e6 / rateHz,
      onTick: sample,
    });
    await sample();
    const first = samples[0]!;
    const last = samples[samples.length - 1]!;
    const soak: SoakResult = {
      seconds,
      frameBytes: SOAK_FRAME_BYTES,
      rateHz,
      frames: result.received,
      latency: summarize(result.samples),
      samples,
      rssStartBytes: first.rssBytes,
      rssEndBytes: last.rssBytes,
      rssMaxBytes: Math.max(...samples.map((entry) => entry.rssBytes)),
      rssGrowthPercent: ((last.rssBytes - first.rssBytes) / first.rssBytes) * 100,
      storeMaxBytes: Math.max(...samples.map((entry) => entry.storeBytes)),
      storeEndBytes: last.storeBytes,
      storeEndObjects: last.storeObjects,
    };
    log(
      `soak: RSS ${mib(soak.rssStartBytes)} → ${mib(soak.rssEndBytes)} MiB (${signed(soak.rssGrowthPercent)}%), store ${mib(soak.storeEndBytes)} MiB / ${soak.storeEndObjects} values at the end`,
    );
    return soak;
  } finally {
    await scenario.close();
  }
}
