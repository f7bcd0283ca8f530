/**
 * What an actor host measures for `nexus.metrics()` and shows for `nexus.tap()` (package-private):
 * time in `runStep()`, the latency of messages that carry `t`, the load of its worker or process,
 * and summaries of the messages its input links return while a tap is on. Everything is kept
 * in the host and goes up with the counters, at most twice a second — never a message per message.
 *
 * - Step times and latencies go into a {@link DurationHistogram} (a fixed array of log-scaled
 *   buckets, emptied at every report). A clock read costs 40–100 ns, as much as a whole step of a
 *   fast actor costs otherwise, so the hot path reads no clock: every step is timed (a
 *   `performance.now()` before and after) while an actor makes up to {@link TIMED_STEPS_PER_WINDOW}
 *   steps a window, and above that a random sample of about that many (each step counts down to the
 *   next timed one; the stride follows the last window's step count).
 * - Latency: an input link's `get()`/`tryGet()` looks at the message it returns at most once every
 *   {@link LATENCY_SAMPLE_EVERY_MS}; the clock is read only every so many calls (the stride follows
 *   the last window's reads, about {@link LATENCY_CHECKS_PER_WINDOW} checks a window), and every other
 *   call costs a counter and returns the link's own promise untouched.
 * - Load ({@link LoadProbe}): event-loop utilisation, CPU and heap, read at each report.
 * - Tap: while Nexus asks for it, every message an input link returns is counted, and at most one
 *   per {@link TAP_EVERY_MS} is summarised and posted.
 * @module
 */

import { getTimeoutError } from '../link/edges.ts';
import type { GetOptions, InputLink, Link } from '../link/transport.ts';
import type { Percentiles } from '../nexus-api.ts';
import { summarizeMessage } from './_summary.ts';
import type { CountersMessage, MeasureSettings, TapRecordMessage } from './protocol.ts';

/** At most one latency sample per input link this often. */
export const LATENCY_SAMPLE_EVERY_MS = 5;
/** Steps timed per reporting window (half a second), at most about: every step of a slower actor. */
export const TIMED_STEPS_PER_WINDOW = 500;
/** Clock checks for a latency sample per input link and window, about (two per sampling period). */
const LATENCY_CHECKS_PER_WINDOW = 200;
/** At most one tap summary per input link this often (~20 a second). */
export const TAP_EVERY_MS = 50;
/** A `t` further than this from the reader's clock is some other clock (performance.now(), µs), not Date.now(). */
const PLAUSIBLE_T_MS = 3_600_000;

// Buckets: below 16 µs one per microsecond; from there 8 per power of two (relative width 1/8, so the
// midpoint is within ±6.25% of any value in it), up to 2^31 µs (35 min), where the last one ends.
const EXACT = 16;
const PER_OCTAVE = 8;
const TOP_EXPONENT = 30;
const BUCKETS = EXACT + (TOP_EXPONENT - 3) * PER_OCTAVE;

/** Durations in a fixed array of log-scaled buckets: constant cost per sample, ±6.25% per figure. */
export class DurationHistogram {
  readonly #counts = new Uint32Array(BUCKETS);
  #total = 0;

  /** Samples since the last {@link reset}. */
  get count(): number {
    return this.#total;
  }

  /** Adds a duration in milliseconds (negative counts as 0). */
  add(ms: number): void {
    this.#counts[bucketOf(ms)]! += 1;
    this.#total += 1;
  }

  /** p50 and p99 in milliseconds (bucket midpoints, rounded to 1 µs), or undefined without samples. */
  percentiles(): Percentiles | undefined {
    if (this.#total === 0) return undefined;
    return { p50: this.#quantile(0.5), p99: this.#quantile(0.99) };
  }

  reset(): void {
    if (this.#total === 0) return;
    this.#counts.fill(0);
    this.#total = 0;
  }

  #quantile(q: number): number {
    const rank = Math.max(1, Math.ceil(q * this.#total));
    let seen = 0;
    for (let bucket = 0; bucket < BUCKETS; bucket++) {
      seen += this.#counts[bucket]!;
      if (seen >= rank) return Math.round(midpointUs(bucket)) / 1000;
    }
    return Math.round(midpointUs(BUCKETS - 1)) / 1000;
  }
}

function bucketOf(ms: number): number {
  const us = ms > 0 ? Math.min(ms * 1000, 2 ** 31 - 1) | 0 : 0;
  if (us < EXACT) return us;
  const exponent = 31 - Math.clz32(us); // ≥ 4
  return EXACT + (exponent - 4) * PER_OCTAVE + ((us >>> (exponent - 3)) & (PER_OCTAVE - 1));
}

function midpointUs(bucket: number): number {
  if (bucket < EXACT) return bucket;
  const exponent = 4 + Math.floor((bucket - EXACT) / PER_OCTAVE);
  const step = 2 ** (exponent - 3);
  const low = (PER_OCTAVE + ((bucket - EXACT) % PER_OCTAVE)) * step;
  return low + step / 2;
}

/** What the runtime offers for {@link LoadProbe}, found once (globals only: no runtime import here). */
interface CpuUsage {
  user: number;
  system: number;
}
interface RuntimeProcess {
  cpuUsage?: (previous?: CpuUsage) => CpuUsage;
  threadCpuUsage?: (previous?: CpuUsage) => CpuUsage;
  memoryUsage?: () => { heapUsed: number };
}
interface EventLoopUtilization {
  idle: number;
  active: number;
  utilization: number;
}
type EluFunction = (previous?: EventLoopUtilization) => EventLoopUtilization;

/** Load of this worker or process over the time since the last read. */
export interface Load {
  elu?: number;
  cpu?: number;
  heapBytes?: number;
}

/**
 * Reads the load of the worker or process it runs in, as deltas between two reads: event-loop
 * utilisation (Node; Bun's and Deno's `eventLoopUtilization` always report zero time, which is
 * how they are told apart: no time counted, no figure), CPU in cores (the process's own with
 * `ownProcess`, else the thread's where `process.threadCpuUsage` exists), heap in use.
 */
export class LoadProbe {
  readonly #process: RuntimeProcess | undefined;
  readonly #elu: EluFunction | undefined;
  readonly #cpu: ((previous?: CpuUsage) => CpuUsage) | undefined;
  #lastElu: EventLoopUtilization | undefined;
  #lastCpu: CpuUsage | undefined;
  #lastWall = performance.now();

  constructor(ownProcess: boolean) {
    const runtimeProcess = (globalThis as { process?: RuntimeProcess }).process;
    this.#process = runtimeProcess;
    const elu = (performance as unknown as { eventLoopUtilization?: EluFunction }).eventLoopUtilization;
    this.#elu = typeof elu === 'function' ? elu.bind(performance) : undefined;
    const cpu = ownProcess ? runtimeProcess?.cpuUsage : runtimeProcess?.threadCpuUsage;
    this.#cpu = typeof cpu === 'function' ? cpu.bind(runtimeProcess) : undefined;
    this.read();
  }

  /** The load since the last call. */
  read(): Load {
    const load: Load = {};
    const wall = performance.now();
    const wallMs = wall - this.#lastWall;
    this.#lastWall = wall;
    if (this.#elu !== undefined) {
      try {
        const now = this.#elu();
        if (this.#lastElu !== undefined) {
          const idle = now.idle - this.#lastElu.idle;
          const active = now.active - this.#lastElu.active;
          if (idle + active > 0) load.elu = round3(active / (idle + active));
        }
        this.#lastElu = now;
      } catch {
        // Measured nothing: absent.
      }
    }
    if (this.#cpu !== undefined) {
      try {
        const now = this.#cpu();
        if (this.#lastCpu !== undefined && wallMs > 0) {
          const usedUs = now.user - this.#lastCpu.user + (now.system - this.#lastCpu.system);
          load.cpu = round3(Math.max(0, usedUs) / 1000 / wallMs);
        }
        this.#lastCpu = now;
      } catch {
        // Measured nothing: absent.
      }
    }
    try {
      const heap = this.#process?.memoryUsage?.().heapUsed;
      if (typeof heap === 'number' && heap > 0) load.heapBytes = heap;
    } catch {
      // Measured nothing: absent.
    }
    return load;
  }
}

function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}

/** One input link's latency samples and tap. */
class InputWatch {
  readonly name: string;
  readonly latency = new DurationHistogram();
  /** performance.now() from which the next latency sample may be taken. */
  nextSampleAt = 0;
  /** Reads in the current window, and reads left until the next clock check. */
  reads = 0;
  countdown = 1;
  stride = 1;
  tapping = false;
  /** performance.now() of the last summary posted. */
  lastSummary = Number.NEGATIVE_INFINITY;
  skipped = 0;

  constructor(name: string) {
    this.name = name;
  }
}

/** The measuring side of one actor host. */
export class ActorMeter {
  /** Whether steps, latency and load are measured (`createNexus({ metrics })`); set by {@link start}. */
  measuring = false;
  readonly #steps = new DurationHistogram();
  /** Steps in the current window, steps left until the next timed one, and the mean stride. */
  #stepsInWindow = 0;
  #stepCountdown = 1;
  #stepStride = 1;
  readonly #inputs = new Map<string, InputWatch>();
  #probe: LoadProbe | undefined;
  readonly #post: (message: TapRecordMessage) => void;
  #isKey: ((value: string) => boolean) | undefined;
  /** The load as last reported, to tell a change worth a report. */
  #reported: Load = {};

  /** `post` sends tap records up. Taps work from the start; measuring begins with {@link start}. */
  constructor(post: (message: TapRecordMessage) => void) {
    this.#post = post;
  }

  /** Begins measuring as init says (absent: metrics are off). */
  start(measure: MeasureSettings | undefined): void {
    this.measuring = measure !== undefined;
    this.#probe = measure === undefined ? undefined : new LoadProbe(measure.ownProcess);
  }

  /** Store keys are marked in summaries once the store is open. */
  set isKey(isKey: (value: string) => boolean) {
    this.#isKey = isKey;
  }

  /**
   * Called before every step: the clock now when this step is timed (measuring, and its turn), else
   * -1. Pass it to {@link stepEnded} when the step has settled.
   */
  stepStarts(): number {
    if (!this.measuring) return -1;
    this.#stepsInWindow += 1;
    if (--this.#stepCountdown > 0) return -1;
    this.#stepCountdown = jittered(this.#stepStride);
    return performance.now();
  }

  /** A step that {@link stepStarts} began has settled (returned, or what it returned settled, or it threw). */
  stepEnded(started: number): void {
    if (started >= 0) this.#steps.add(performance.now() - started);
  }

  /**
   * The link as the actor sees it: an input link is watched (latency samples while measuring,
   * summaries while tapped); an output link is returned as it is.
   */
  wrap(link: Link): Link {
    if (link.direction !== 'in') return link;
    let watch = this.#inputs.get(link.name);
    if (watch === undefined) {
      watch = new InputWatch(link.name);
      this.#inputs.set(link.name, watch);
    }
    return new WatchedInput(link, watch, this);
  }

  /** Starts or stops summarising what input link `name` returns. */
  tap(name: string, on: boolean): void {
    let watch = this.#inputs.get(name);
    if (watch === undefined) {
      // A tap that comes before the links are open: kept for the link of that name.
      watch = new InputWatch(name);
      this.#inputs.set(name, watch);
    }
    watch.tapping = on;
    watch.skipped = 0;
    watch.lastSummary = Number.NEGATIVE_INFINITY;
  }

  /** Whether {@link WatchedInput} must look at the message a call returns (tapping, or a latency check is due). */
  due(watch: InputWatch): boolean {
    if (watch.tapping) return true;
    if (!this.measuring) return false;
    watch.reads += 1;
    if (--watch.countdown > 0) return false;
    watch.countdown = watch.stride;
    return true;
  }

  /** Looks at a message an input link returned (see {@link due}). */
  seen(watch: InputWatch, message: unknown): void {
    const now = performance.now();
    if (this.measuring && now >= watch.nextSampleAt) {
      watch.nextSampleAt = now + LATENCY_SAMPLE_EVERY_MS;
      const t = typeof message === 'object' && message !== null ? (message as { t?: unknown }).t : undefined;
      if (typeof t === 'number') {
        const ms = Date.now() - t;
        if (Math.abs(ms) < PLAUSIBLE_T_MS) watch.latency.add(ms);
      }
    }
    if (!watch.tapping) return;
    if (now - watch.lastSummary < TAP_EVERY_MS) {
      watch.skipped += 1;
      return;
    }
    watch.lastSummary = now;
    let summary: string;
    try {
      summary = summarizeMessage(message, this.#isKey);
    } catch (error) {
      summary = `(could not be summarised: ${error instanceof Error ? error.message : String(error)})`;
    }
    this.#post({ type: 'tap', link: watch.name, time: Date.now(), summary, skipped: watch.skipped });
    watch.skipped = 0;
  }

  /**
   * The counters message of the window that ends now (the windows start over), or undefined when it
   * says nothing new: steps and errors as they were last reported, no step or latency sample in the
   * window, and the load about the same (ELU and CPU within 0.01, heap within 1%).
   */
  report(steps: number, errors: number, changed: boolean): CountersMessage | undefined {
    const message: CountersMessage = { type: 'counters', steps, errors };
    if (!this.measuring) return changed ? message : undefined;
    let news = changed;
    const stepMs = this.#steps.percentiles();
    this.#steps.reset();
    this.#stepStride = Math.max(1, Math.round(this.#stepsInWindow / TIMED_STEPS_PER_WINDOW));
    this.#stepCountdown = Math.min(this.#stepCountdown, this.#stepStride);
    this.#stepsInWindow = 0;
    if (stepMs !== undefined) {
      message.stepMs = stepMs;
      news = true;
    }
    for (const watch of this.#inputs.values()) {
      watch.stride = Math.max(1, Math.floor(watch.reads / LATENCY_CHECKS_PER_WINDOW));
      watch.countdown = Math.min(watch.countdown, watch.stride);
      watch.reads = 0;
      const latency = watch.latency.percentiles();
      watch.latency.reset();
      if (latency === undefined) continue;
      message.latencyMs ??= {};
      message.latencyMs[watch.name] = latency;
      news = true;
    }
    const load = this.#probe!.read();
    if (load.elu !== undefined) message.elu = load.elu;
    if (load.cpu !== undefined) message.cpu = load.cpu;
    if (load.heapBytes !== undefined) message.heapBytes = load.heapBytes;
    const before = this.#reported;
    if (
      moved(before.elu, load.elu, 0.01) ||
      moved(before.cpu, load.cpu, 0.01) ||
      moved(before.heapBytes, load.heapBytes, 0.01 * (before.heapBytes ?? 0))
    ) {
      news = true;
    }
    if (!news) return undefined;
    this.#reported = load;
    return message;
  }
}

/** A countdown of `stride` on average, at random from 1 to 2 × stride − 1 (so no periodic pattern of steps is sampled in step). */
function jittered(stride: number): number {
  return stride === 1 ? 1 : 1 + Math.floor(Math.random() * (2 * stride - 1));
}

function moved(before: number | undefined, now: number | undefined, tolerance: number): boolean {
  if (before === undefined || now === undefined) return before !== now;
  return Math.abs(now - before) > tolerance;
}

/** An input link whose messages the meter may look at; everything else is the link's own. */
class WatchedInput implements InputLink {
  readonly direction = 'in';
  readonly #link: InputLink;
  readonly #watch: InputWatch;
  readonly #meter: ActorMeter;
  readonly #seen: (message: unknown) => unknown;

  constructor(link: InputLink, watch: InputWatch, meter: ActorMeter) {
    this.#link = link;
    this.#watch = watch;
    this.#meter = meter;
    this.#seen = (message) => {
      meter.seen(watch, message);
      return message;
    };
  }

  get name(): string {
    return this.#link.name;
  }

  get(options?: GetOptions): Promise<unknown> {
    if (options?.timeoutMs !== undefined) {
      // Checked here as well as by the transport: a transport that only checks ≥ 0 would pass a
      // timeout beyond the timer's range, which fires at once.
      const invalid = getTimeoutError(this.#link.name, options.timeoutMs);
      if (invalid !== undefined) return Promise.reject(invalid);
    }
    const message = this.#link.get(options);
    // Most calls: the link's own promise, untouched.
    return this.#meter.due(this.#watch) ? message.then(this.#seen) : message;
  }

  tryGet(): unknown {
    const message = this.#link.tryGet();
    if (message !== undefined && this.#meter.due(this.#watch)) this.#meter.seen(this.#watch, message);
    return message;
  }

  size(): number {
    return this.#link.size();
  }

  hold(onHeld: () => void): void {
    this.#link.hold(onHeld);
  }

  release(): void {
    this.#link.release();
  }

  close(): void | Promise<void> {
    return this.#link.close();
  }
}
