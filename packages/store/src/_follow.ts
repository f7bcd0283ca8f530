/**
 * Arrays from `allocate()` after their first flush, as a copying driver (lmdb, redis) follows them
 * (package-private). The contract lets a writer keep such an array, write it again and flush again,
 * so every flush compares the followed arrays with what was written last and writes the changed
 * ones again. To bound what a flush compares, a client follows the array it flushed last whatever
 * its size and, newest first, the ones flushed before it while they are alive (a `WeakRef`), up to
 * {@link MAX_FOLLOWED} arrays and {@link OLDER_BUDGET_BYTES} of them in all besides the newest; the
 * oldest go first. How a driver compares (the store's own bytes, or a snapshot) and how it finds out
 * that a value is gone (deleted by its reader) is its own: it calls {@link FollowedArrays.forget}.
 * @module
 */
import type { StoreKey, TypedArray } from '@improv/core';

/** Most flushed allocations a client follows (the oldest are dropped first). */
export const MAX_FOLLOWED = 16;
/** Bytes of the followed arrays besides the newest one. */
export const OLDER_BUDGET_BYTES = 4 * 1024 * 1024;

/** A flushed allocation being followed; a driver may add what it needs to compare it. */
export interface Followed {
  /** Weak: an array its owner dropped is no longer followed. */
  readonly ref: WeakRef<TypedArray>;
  readonly code: number;
  readonly shape: readonly number[];
  /** Its size when it was followed (counted against {@link OLDER_BUDGET_BYTES}). */
  readonly byteLength: number;
}

/** A followed array that is still alive. */
export interface Alive<E extends Followed> {
  key: StoreKey;
  array: TypedArray;
  entry: E;
}

export class FollowedArrays<E extends Followed = Followed> {
  private readonly entries = new Map<StoreKey, E>();
  private bytes = 0;
  private readonly dropped: ((entry: E) => void) | undefined;

  /** @param dropped called with each entry no longer followed (to recycle what it holds). */
  constructor(dropped?: (entry: E) => void) {
    this.dropped = dropped;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The keys followed now, oldest first. */
  keys(): StoreKey[] {
    return [...this.entries.keys()];
  }

  /** The followed arrays still alive, oldest first; forgets the others. */
  alive(): Alive<E>[] {
    const alive: Alive<E>[] = [];
    for (const [key, entry] of this.entries) {
      const array = entry.ref.deref();
      if (array === undefined) this.forget(key);
      else alive.push({ key, array, entry });
    }
    return alive;
  }

  /** Follows `key` as the newest (its flush succeeded), dropping the oldest beyond the budgets. */
  follow(key: StoreKey, entry: E): void {
    this.forget(key);
    this.entries.set(key, entry);
    this.bytes += entry.byteLength;
    for (const oldest of this.entries.keys()) {
      if (oldest === key) break;
      if (this.entries.size <= MAX_FOLLOWED && this.bytes - entry.byteLength <= OLDER_BUDGET_BYTES) break;
      this.forget(oldest);
    }
  }

  /** Stops following `key` (deleted, gone from the store, or dropped). */
  forget(key: StoreKey): void {
    const entry = this.entries.get(key);
    if (entry === undefined) return;
    this.entries.delete(key);
    this.bytes -= entry.byteLength;
    this.dropped?.(entry);
  }

  /** Follows nothing any more (the client closed); `dropped` is not called. */
  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }
}
