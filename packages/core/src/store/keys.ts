/**
 * Store keys inside messages. A message refers to stored data by key; when a link drops a message
 * (drop-oldest, a gone sink, quit), nobody will read it, so the keys it carries are released —
 * deleted — as its sink would have done after reading it. A key is any string of the message (at
 * any depth: fields, array items, map keys and values) that the store recognises as one of its own
 * keys (`StoreClient.isKey`).
 * @module
 */
import { ObjectNotFoundError } from '../errors.ts';
import type { StoreClient, StoreKey, StoreOpenOptions } from './driver.ts';

/** Every key of `store` found in `message`, once each. */
export function storeKeysIn(message: unknown, store: Pick<StoreClient, 'isKey'>): StoreKey[] {
  const keys: StoreKey[] = [];
  if (typeof message === 'string') {
    if (store.isKey(message)) keys.push(message);
    return keys;
  }
  if (!isContainer(message)) return keys;
  // The typical message, a plain object of numbers and strings such as `{ k: key, t, i }`, is read
  // in one pass that allocates nothing but the result: every link message goes through here.
  if (Object.getPrototypeOf(message) === Object.prototype) {
    let flat = true;
    for (const field in message) {
      if (!Object.hasOwn(message, field)) continue;
      const value = (message as Record<string, unknown>)[field];
      if (typeof value === 'string') {
        if (store.isKey(value) && !keys.includes(value)) keys.push(value);
      } else if (isContainer(value)) {
        flat = false;
        break;
      }
    }
    if (flat) return keys;
    keys.length = 0;
  }
  const found = new Set<StoreKey>();
  const seen = new Set<object>();
  const visit = (value: unknown): void => {
    if (typeof value === 'string') {
      if (store.isKey(value)) found.add(value);
      return;
    }
    if (!isContainer(value) || seen.has(value)) return;
    seen.add(value);
    if (Array.isArray(value) || value instanceof Set) for (const item of value) visit(item);
    else if (value instanceof Map) {
      for (const [key, item] of value) {
        visit(key);
        visit(item);
      }
    } else for (const item of Object.values(value)) visit(item);
  };
  visit(message);
  for (const key of found) keys.push(key);
  return keys;
}

/** An object whose contents may hold keys: anything but `null` and typed arrays (binary data). */
function isContainer(value: unknown): value is object {
  return value !== null && typeof value === 'object' && !ArrayBuffer.isView(value);
}

/** Deletes every key of `store` found in `message`; resolves to how many values were freed. */
export async function releaseKeys(message: unknown, store: StoreClient): Promise<number> {
  let freed = 0;
  for (const key of storeKeysIn(message, store)) {
    if (await store.delete(key)) freed += 1;
  }
  return freed;
}

/** Default {@link StoreOpenOptions.leaseMs}: how long a hold protects a value without renewal. */
export const DEFAULT_STORE_LEASE_MS = 60_000;
/** With `store_eviction: oldest`, eviction starts when a put would take the store above this share of its capacity… */
export const EVICTION_HIGH_WATER = 0.95;
/** …and frees values until the store is below this share (and the new value fits). */
export const EVICTION_LOW_WATER = 0.85;

/** Why a key holds no value, as far as a store knows. */
export type MissingReason = 'unknown' | 'evicted' | 'expired' | 'foreign';

/**
 * The `ObjectNotFoundError` of every driver, so they word it alike: it names the key, says why
 * where the store knows (evicted, expired, a key of another store) and what to do.
 */
export function objectNotFound(driver: string, key: StoreKey, reason: MissingReason): ObjectNotFoundError {
  switch (reason) {
    case 'evicted':
      return new ObjectNotFoundError(
        `${driver} store: the value under key "${key}" was evicted (settings.store_eviction: oldest) to make room, after it had been read and was no longer held. Hold a value by reading it in the runStep that uses it, raise settings.store_size, or turn eviction off`,
      );
    case 'expired':
      return new ObjectNotFoundError(
        `${driver} store: the value under key "${key}" expired (its time to live, ttlMs, passed before it was read). Give it a longer time to live, or read it sooner`,
      );
    case 'foreign':
      return new ObjectNotFoundError(
        `${driver} store: key "${key}" is not a key of this store (it comes from another store or an earlier run); keys are only valid in the store that created them`,
      );
    default:
      return new ObjectNotFoundError(
        `${driver} store: no value under key "${key}": it was deleted, or never stored. A key stays readable until delete(key); keep it until every reader is done. Under fan-out (one message to several sinks) only one actor may delete it, or let the store free it: a time to live at put (ttlMs; ttl_ms in Python), or settings.store_eviction: oldest`,
      );
  }
}
