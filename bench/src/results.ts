/**
 * The shape of a bench run's results (`bench/results/<runtime>-<timestamp>.json`).
 * @module
 */
import type { MemcpyResult } from './baselines/index.ts';
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
  /** Process CPU time (every thread) per message, µs. */
  cpuUsPerMsg: number;
}

/** One row of the pipeline tables. */
export interface PipelineRow {
  topology: TopologyName;
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

export interface BenchResults {
  version: typeof RESULTS_VERSION;
  date: string;
  quick: boolean;
  runtime: { name: string; version: string };
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
