/**
 * Messages on the control channel between Nexus and an actor's worker (MessagePort). Data never
 * travels here: only signals down, and state and log records up.
 * @module
 */
import type { OnError } from '../config/types.ts';
import type { SerializedError } from '../errors.ts';
import type { LinkDescriptor } from '../link/transport.ts';
import type { LogRecord } from '../log.ts';
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

/** Worker → Nexus: the actor's counters, at most twice a second while they change. */
export interface CountersMessage {
  type: 'counters';
  /** runStep() calls that returned. */
  steps: number;
  /** runStep() calls that threw. */
  errors: number;
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

export type ToWorker = InitMessage | SignalMessage;
export type FromWorker = StateMessage | LogMessage | StoreOwnerMessage | CountersMessage | AckMessage;
