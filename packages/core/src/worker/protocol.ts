/**
 * Messages on the control channel between Nexus and an actor's worker (MessagePort). Data never
 * travels here: only signals down, and state and log records up — and, while a tap is on, at most
 * ~20 summaries a second per tapped link.
 * @module
 */
import type { OnError } from '../config/types.ts';
import type { SerializedError } from '../errors.ts';
import type { LinkDescriptor } from '../link/transport.ts';
import type { LogRecord } from '../log.ts';
import type { Percentiles, PublishedLatest, PublishedSeries } from '../nexus-api.ts';
import type { ActorState, Signal } from '../signals.ts';
import type { StoreDescriptor } from '../store/driver.ts';

/** Words of `InitMessage.control`. */
export const CONTROL_SIGNALS = 0;
export const CONTROL_HEARTBEAT = 1;
export const CONTROL_BYTES = 8;

/** How the actor's links meet the store: set from the driver and `settings.store_eviction`. */
export interface StoreUse {
  /** The driver copies (`zeroCopy: false`): allocated arrays are flushed before a message leaves. */
  flushBeforeSend: boolean;
  /** `store_eviction` is on: messages with keys are counted in and out of the store (`track`). */
  trackMessages: boolean;
}

/** What an actor host measures besides its counters (absent: nothing, `createNexus({ metrics: false })`). */
export interface MeasureSettings {
  /**
   * The actor has an OS process of its own: its CPU is the process's (`process.cpuUsage()`); in a
   * worker it is the thread's, where the runtime tells it (`process.threadCpuUsage()`).
   */
  ownProcess: boolean;
}

/** Nexus → worker, once after the handshake: what to load and how to reach links and store. */
export interface InitMessage {
  type: 'init';
  actor: {
    name: string;
    moduleUrl: string;
    className: string;
    options: Record<string, unknown>;
    onError: OnError;
    /** The `package` as written (a Python actor host imports improv's dotted form as a package). */
    package?: string;
  };
  links: Record<string, LinkDescriptor>;
  store: StoreDescriptor;
  /** What the actor host does with store keys in messages (see `worker/_store-links.ts`). */
  storeUse: StoreUse;
  /**
   * Int32Array(2) over a SharedArrayBuffer: word {@link CONTROL_SIGNALS} is bumped by Nexus with
   * every signal it posts; word {@link CONTROL_HEARTBEAT} by the worker every `heartbeatMs` while
   * its event loop turns, so Nexus can tell a worker stuck in a loop that never yields.
   */
  control: SharedArrayBuffer;
  /** How often the worker bumps its heartbeat (see {@link heartbeatPeriodMs}). */
  heartbeatMs: number;
  /** What to measure for `nexus.metrics()` (see `worker/_meter.ts`); absent: metrics are off. */
  measure?: MeasureSettings;
}

/**
 * The heartbeat period for a `settings.signal_timeout`: a tenth of it, from 50 ms to 500 ms — often
 * enough that a healthy worker is never taken for a stuck one, seldom enough that an idle pipeline
 * costs no CPU to speak of (each beat wakes every worker and Nexus).
 */
export function heartbeatPeriodMs(signalTimeoutMs: number): number {
  return Math.min(500, Math.max(50, Math.round(signalTimeoutMs / 10)));
}

/** Nexus → worker: act on a signal. */
export interface SignalMessage {
  type: 'signal';
  signal: Signal;
}

/** Worker → Nexus: the actor's new state. */
export interface StateMessage {
  type: 'state';
  state: ActorState;
  /** With `failed`: what went wrong, and in which hook (`run`: runStep() threw under `on_error: fail`). */
  error?: SerializedError;
  phase?: 'load' | 'setup' | 'run';
}

/**
 * Worker → Nexus: the actor took the signal — for stop, it is parked and its `stop()` begins, which
 * may take as long as it needs (the signal timeout bounds only this acknowledgement).
 */
export interface AckMessage {
  type: 'ack';
  signal: Signal;
}

/** Nexus → worker: start (`on`) or stop summarising the messages input link `link` returns (`nexus.tap()`). */
export interface TapRequestMessage {
  type: 'tap';
  link: string;
  on: boolean;
}

/**
 * Nexus → worker: somebody watches (`on`) what the actor publishes (`nexus.watchPublished()`), or
 * nobody does any more. While off, `this.publish()` keeps and sends nothing.
 */
export interface PublishRequestMessage {
  type: 'publish';
  on: boolean;
}

/**
 * Worker → Nexus: what the actor published under `name` since the last delivery — numbers as a
 * series, other values newest-only — at most ~60 times a second per name, while publishing is on.
 */
export interface PublishedMessage {
  type: 'published';
  name: string;
  data: PublishedSeries | PublishedLatest;
}

/**
 * Worker → Nexus: the actor's counters, and what it measured over the window since its last report
 * (`measure` in init), at most twice a second: when the counters changed, a step ended or a
 * latency was sampled in the window, or the load moved (ELU or CPU by 0.01, heap by 1%). A state
 * change sends the counters alone first. Fields measured nothing in the window are absent.
 */
export interface CountersMessage {
  type: 'counters';
  /** runStep() calls that returned. */
  steps: number;
  /** runStep() calls that threw. */
  errors: number;
  /** Time in runStep() over the window, in ms (p50, p99 of a log-scaled histogram, ±7%). */
  stepMs?: Percentiles;
  /** By input link name: ms from the `t` (Date.now()) of sampled messages to their read. */
  latencyMs?: Record<string, Percentiles>;
  /** Event-loop utilisation of the worker or process over the window, 0..1 (Python: share of time not waiting in its poll). */
  elu?: number;
  /** CPU over the window, in cores: the process's (own process) or the worker thread's (where the runtime tells it). */
  cpu?: number;
  /** Heap in use by the worker's or process's isolate, bytes (Python: the process's resident set size). */
  heapBytes?: number;
}

/** Worker → Nexus: one message an input link returned, summarised, while that link is tapped. */
export interface TapRecordMessage {
  type: 'tap';
  link: string;
  /** When it was read, ms since the Unix epoch. */
  time: number;
  summary: string;
  /** Messages of this link read since the previous record and not summarised. */
  skipped: number;
}

/** Worker → Nexus: the store client's owner id, right after connecting (see `StoreClient.ownerId`). */
export interface StoreOwnerMessage {
  type: 'store-owner';
  ownerId: number;
}

/** Worker → Nexus: one log record. */
export interface LogMessage {
  type: 'log';
  record: LogRecord;
}

export type ToWorker = InitMessage | SignalMessage | TapRequestMessage | PublishRequestMessage;
export type FromWorker =
  | StateMessage
  | LogMessage
  | StoreOwnerMessage
  | CountersMessage
  | AckMessage
  | TapRecordMessage
  | PublishedMessage;
