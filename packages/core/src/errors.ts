/**
 * Errors raised by improv. Every error has a stable `code` and is recognised across workers and
 * duplicate package copies through {@link ImprovError.isInstance} (where `instanceof` fails).
 *
 * @example
 * ```ts
 * try { await store.get(key) } catch (error) {
 *   if (ObjectNotFoundError.isInstance(error)) log.warn(error.message)
 * }
 * ```
 * @module
 */

const marker = Symbol.for('improv.error');

/** Stable codes of every improv error. */
export type ImprovErrorCode =
  | 'CONFIG_INVALID'
  | 'COMMAND_REFUSED'
  | 'ACTOR_FAILED'
  | 'STORE_FULL'
  | 'OBJECT_NOT_FOUND'
  | 'LINK_MESSAGE_TOO_LARGE'
  | 'LINK_CLOSED'
  | 'LINK_SOURCES_GONE'
  | 'LINK_TIMEOUT'
  | 'ACTOR_UNRESPONSIVE'
  | 'RUNTIME_UNAVAILABLE'
  | 'STORE_UNAVAILABLE';

/** Base class of every improv error. */
export class ImprovError extends Error {
  /** Stable machine-readable code. */
  readonly code: ImprovErrorCode;
  readonly [marker] = true;

  constructor(code: ImprovErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }

  /** True for any improv error, also one from another copy of this package. */
  static isInstance(value: unknown): value is ImprovError {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[marker] === true;
  }

  /** True when `value` is an improv error with the given code. */
  static hasCode(value: unknown, code: ImprovErrorCode): value is ImprovError {
    return ImprovError.isInstance(value) && value.code === code;
  }
}

/**
 * What {@link defineError} returns, written out: inferred, the declaration would copy `Error`'s
 * static members, `NodeJS.CallSite` included, into every user's types.
 */
interface ImprovErrorClass {
  new (message: string, options?: { cause?: unknown }): ImprovError;
  /** True when `value` is an improv error of this class's code (also from another copy of the package). */
  isInstance(value: unknown): value is ImprovError;
}

function defineError(code: ImprovErrorCode): ImprovErrorClass {
  return class extends ImprovError {
    constructor(message: string, options?: { cause?: unknown }) {
      super(code, message, options);
    }
    static override isInstance(value: unknown): value is ImprovError {
      return ImprovError.hasCode(value, code);
    }
  };
}

/** The store has no free block large enough for the value. */
export class StoreFullError extends defineError('STORE_FULL') {}
/**
 * A key that was never stored, was deleted, was evicted (`store_eviction`) or expired (`ttlMs`); the
 * message says which of these the store knows.
 */
export class ObjectNotFoundError extends defineError('OBJECT_NOT_FOUND') {}
/**
 * The store cannot be reached (a Redis server that went away, an LMDB file that cannot be opened):
 * thrown within a bounded time instead of hanging. Nothing was stored or deleted by the failed call;
 * the store's values are where they were. Calls work again once the store is back.
 */
export class StoreUnavailableError extends defineError('STORE_UNAVAILABLE') {}
/** A link message larger than the link can ever hold. */
export class LinkMessageTooLargeError extends defineError('LINK_MESSAGE_TOO_LARGE') {}
/** The link was closed (the actor is quitting). */
export class LinkClosedError extends defineError('LINK_CLOSED') {}
/**
 * `get()` on a link whose every source is gone (their actors failed or died) and that has no
 * message left: none will ever come. Catch it to go on without that input.
 */
export class LinkSourcesGoneError extends defineError('LINK_SOURCES_GONE') {}
/**
 * `get({ timeoutMs })` found no message within the time (improv's `get(timeout=…)` raising
 * `queue.Empty`). Nothing was taken from the link; catch it to go on without a message.
 */
export class LinkTimeoutError extends defineError('LINK_TIMEOUT') {}
/** An actor did not acknowledge a signal within `settings.signal_timeout`; its worker was ended. */
export class ActorUnresponsiveError extends defineError('ACTOR_UNRESPONSIVE') {}
/** A command that the pipeline cannot take in its present state. */
export class CommandRefusedError extends defineError('COMMAND_REFUSED') {}
/** One or more actors failed (setup threw, the worker died, ...). */
export class ActorFailedError extends defineError('ACTOR_FAILED') {}
/** The requested runtime is not installed or cannot start workers. */
export class RuntimeUnavailableError extends defineError('RUNTIME_UNAVAILABLE') {}

/** An error as it crosses a worker boundary. */
export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  code?: string;
}

/** Turns anything thrown into a plain object that can be posted to another thread. */
export function serializeError(error: unknown): SerializedError {
  if (error instanceof Error) {
    const out: SerializedError = { name: error.name, message: error.message };
    if (error.stack !== undefined) out.stack = error.stack;
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string') out.code = code;
    return out;
  }
  return { name: 'Error', message: typeof error === 'string' ? error : safeString(error) };
}

/** The other way: an `Error` again from what {@link serializeError} made (in the thread or process that receives it). */
export function deserializeError(serialized: SerializedError): Error {
  const error = new Error(serialized.message);
  error.name = serialized.name;
  if (serialized.stack !== undefined) error.stack = serialized.stack;
  if (serialized.code !== undefined) (error as { code?: string }).code = serialized.code;
  return error;
}

function safeString(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** `Name: message` of a serialised error, for one-line reports. */
export function describeError(error: SerializedError): string {
  return error.name && error.name !== 'Error' ? `${error.name}: ${error.message}` : error.message;
}
