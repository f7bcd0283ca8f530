/**
 * Store keys inside messages. A message refers to stored data by key; when a link drops a message
 * (drop-oldest, a gone sink, quit), nobody will read it, so the keys it carries are released —
 * deleted — as its sink would have done after reading it. A key is any string of the message (at
 * any depth: fields, array items, map keys and values) that the store recognises as one of its own
 * keys (`StoreClient.isKey`).
 * @module
 */
import type { StoreClient, StoreKey } from './driver.ts';

/** Every key of `store` found in `message`, once each. */
export function storeKeysIn(message: unknown, store: Pick<StoreClient, 'isKey'>): StoreKey[] {
  const keys = new Set<StoreKey>();
  const seen = new Set<object>();
  const visit = (value: unknown): void => {
    if (typeof value === 'string') {
      if (store.isKey(value)) keys.add(value);
      return;
    }
    if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value) || seen.has(value)) return;
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
  return [...keys];
}

/** Deletes every key of `store` found in `message`; resolves to how many values were freed. */
export async function releaseKeys(message: unknown, store: StoreClient): Promise<number> {
  let freed = 0;
  for (const key of storeKeysIn(message, store)) {
    if (await store.delete(key)) freed += 1;
  }
  return freed;
}
