/**
 * The shape of a bench run's results (`bench/results/<runtime>-<timestamp>.json`).
 * @module
 */
import type { StoreName } from '@improv/core';
import type { MemcpyResult } from './baselines/index.ts';
import type { NetBaseline } from './baselines/net.ts';
import type { PyzmqBaseline } from './baselines/pyzmq.ts';
import type { PathName } from './pipeline/board.ts';
import type { TopologyName } from './pipeline/scenario.ts';
import type { LatencySummary } from './stats.ts';

/** Version of this format; bumped when a field changes meaning. */
export const RESULTS_VERSION = 1;

/** The payload sizes of every table: the grid dora-rs publishes. */
export const SIZES = [8, 64, 512, 4096, 40_960, 409_600, 4_194_304, 41_943_040] as const;

/** Sustained throughput of one configuration. */
export interface Rate {
  messages: number;
  seconds: number;
  msgsPerS: number;
  /** Payload megabytes (1e6 bytes) per second. */
  mbPerS: number;
  /** Process CPU time (every thread) per message, µs; with Python sinks, their processes' added. */
  cpuUsPerMsg: number;
  /** Of `cpuUsPerMsg`, the Python sinks' processes' (`--placement python`, where /proc tells it). */
  peerCpuUsPerMsg?: number;
}

/** One row of the pipeline tables. */
export interface PipelineRow {
  topology: TopologyName;
  /**
   * `put`: the source `store.put`s a payload and sends its key; the sink reads it, checks it and
   * deletes it. `allocate`: the source writes the frame into `store.allocate`d memory. `inline`: the
   * payload travels in the message. `put-delete`: the source `store.put`s a new array and sends its
   * key; the sink deletes it without reading it (the store's allocator, put on one worker and delete
   * on another).
   */
  path: PathName;
  size: number;
  /** Hops from source to sink (4 in the chain). */
  hops: number;
  /** µs between two paced messages of a source (1000, longer for payloads whose copy takes long). */
  intervalUs: number;
  /** Source to sink, paced; per hop in a chain is this divided by `hops`. */
  latency: LatencySummary;
  throughput: Rate;
}

export interface PortRow {
  size: number;
  /** µs between two pings. */
  intervalUs: number;
  /** One-way, paced ping-pong. */
  latency: LatencySummary;
  roundTrip: LatencySummary;
  throughput: Rate;
}

export interface SoakSample {
  /** Seconds since the soak started. */
  t: number;
  rssBytes: number;
  storeBytes: number;
  storeObjects: number;
  /** `--placement python`: RSS of the Python sink's process (where /proc tells it). */
  peerRssBytes?: number;
}

export interface SoakResult {
  seconds: number;
  frameBytes: number;
  rateHz: number;
  frames: number;
  latency: LatencySummary;
  samples: SoakSample[];
  /** RSS after the first second, at the end, and the most seen. */
  rssStartBytes: number;
  rssEndBytes: number;
  rssMaxBytes: number;
  rssGrowthPercent: number;
  storeMaxBytes: number;
  storeEndBytes: number;
  storeEndObjects: number;
}

/**
 * A copying store's own figures, measured in the same run in the bench's main thread with the
 * store's client library directly (lmdb-js, the `redis` client): no improv, no worker, no link.
 */
export interface StoreBaselineRow {
  size: number;
  /** Writing the payload under a key (lmdb: `await db.put`, redis: `await SET`), µs. */
  put: LatencySummary;
  /** Reading it back (lmdb: `db.getBinary`, redis: `await GET`), µs. */
  get: LatencySummary;
  /** One put and then one get of the same key, back to back, µs. */
  putGet: LatencySummary;
  /** put + get pairs back to back for the throughput time; `msgsPerS` counts pairs. */
  throughput: Rate;
}

/** The store the pipelines of a run used. */
export interface StoreRun {
  /** `--store`: memory, lmdb or redis. */
  name: StoreName;
  /** Where it lived, e.g. `a fresh folder in /tmp per pipeline` or `redis-server 7.0.15 on 127.0.0.1:6390`. */
  detail: string;
  /** True when typed arrays are handed out as views of shared memory (the memory store). */
  zeroCopy: boolean;
  /** The raw store baseline (copying stores): what was timed, and its rows. */
  baseline?: { name: string; rows: StoreBaselineRow[] };
  /** Paced frames per second of the soak (1 kHz for memory; what the store sustains well below its limit otherwise). */
  soakRateHz: number;
}

export interface BenchResults {
  version: typeof RESULTS_VERSION;
  date: string;
  quick: boolean;
  runtime: { name: string; version: string };
  /** The store of every pipeline of the run. Absent in results written before `--store`: memory. */
  store?: StoreRun;
  /** `--transport zmq`: every link of every pipeline over ZeroMQ, and the network baselines of the run. Absent: local. */
  transport?: TransportRun;
  platform: { os: string; cpu: string; cores: number; memoryBytes: number };
  settings: {
    latencyMessages: number;
    intervalUs: number;
    throughputSeconds: number;
    spinIterations: number;
    capacitySmall: number;
    capacityLarge: number;
  };
  memcpy: MemcpyResult[];
  ring: { latency: LatencySummary; throughput: Rate };
  port: PortRow[];
  pipeline: PipelineRow[];
  idle: { seconds: number; cpuPercent: number };
  soak: SoakResult;
  /** Seconds the whole run took. */
  elapsedSeconds: number;
}

/** The links of a `--transport zmq` run. */
export interface TransportRun {
  name: 'zmq';
  /** How the links went, in words. */
  detail: string;
  /** The sockets of the links: zeromq.js (libzmq) or the TypeScript ZMTP. */
  sockets: 'zeromq' | 'zmtp';
  /** Between the processes of one host: unix sockets or tcp on loopback (results written before the field: ipc). */
  protocol?: 'ipc' | 'tcp';
  /** Raw zeromq.js PUSH → PULL and raw TCP, between two processes (zeromq absent on Bun). */
  baselines: NetBaseline[];
  /**
   * `--placement process`: every actor of every pipeline in an OS process of its own. `--placement
   * hosts`: the pair's source on one host, its sink on another (network namespaces), links over tcp
   * with CURVE; `hosts` says where. `--placement python`: every sink a Python actor (a Python process
   * of its own), the sources TypeScript workers; `python` says more. Absent: workers.
   */
  placement?: 'process' | 'hosts' | 'python';
  /** `--placement hosts`: the hosts, and where the raw baselines' two ends were. */
  hosts?: HostsRun;
  /** `--placement python`: the interpreter, the raw pyzmq baseline and improv's reference figures. */
  python?: PythonRun;
}

/** What a `--placement python` run used and measured besides the pipeline. */
export interface PythonRun {
  /** The interpreter of the Python sink and of the raw baseline (`--python`). */
  interpreter: string;
  /** Where each end of the hop ran and how its one-way latency is timed, in words. */
  detail: string;
  /** Raw pyzmq PUSH → PULL between two Python processes, measured in the same run. */
  baseline: PyzmqBaseline;
  /**
   * improv (Python)'s figures the rows are set beside: one-way p50 and most msgs/s by size. A fixed
   * reference measured before on this kind of machine, copied, never measured by the bench.
   */
  improv: { size: number; p50Us: number; msgsPerS: number }[];
  /** The target: at least this many times improv's msgs/s at every size it has a figure for. */
  improvGoal: number;
}

/** Where a `--placement hosts` run put things. */
export interface HostsRun {
  /** How the hosts were made, in words (e.g. two Linux network namespaces on a bridge). */
  detail: string;
  /** This process (the Nexus, the store's server, the raw baselines' measuring side), on the hosts' network. */
  nexusAddress: string;
  /** The host of the source actor. */
  source: { name: string; address: string };
  /** The host of the sink actor (and of the raw baselines' peer). */
  sink: { name: string; address: string };
  /** Between which two the raw network baselines ran, in words. */
  baselinePath: string;
}

/** The transport a run used (`local` unless `--transport zmq`). */
export function transportOf(results: Pick<BenchResults, 'transport'>): 'local' | 'zmq' {
  return results.transport?.name ?? 'local';
}

/** The store a run used (results written before `--store` ran on the memory store). */
export function storeOf(results: Pick<BenchResults, 'store'>): StoreName {
  return results.store?.name ?? 'memory';
}
