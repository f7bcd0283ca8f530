/**
 * Arrays from `allocate()` after their first flush (package-private). The contract lets a writer
 * keep such an array, write it again and flush again; a copying driver must then find out what
 * changed without asking the server. The redis client follows, with a copy of what it last wrote
 * (a snapshot, compared with `memcmp` at every flush: ~0.1 ms per 4 MiB), the array it flushed last
 * whatever its size and, newest first, the ones flushed before it while they are alive (a
 * `WeakRef`), up to {@link MAX_FOLLOWED} of them and {@link OLDER_BUDGET_BYTES} of them in all — the
 * same rule as the lmdb driver, so a flush never compares more than that besides the last array.
 * The client also asks the server, at most every 100 ms, which followed values are gone (their sink
 * deleted them) and stops following those: an array stays alive to its `WeakRef` until a full
 * garbage collection, long after its frame was read and deleted.
 * Snapshot buffers are recycled through a small pool: a fresh buffer for every frame would cost page
 * faults that take longer than the copy.
 * @module
 */
import { Buffer } from 'node:buffer';
import type { StoreKey, TypedArray } from '@improv/core';

/** Most flushed allocations a client follows (the oldest are dropped first). */
export const MAX_FOLLOWED = 16;
/** Snapshot bytes of the followed arrays besides the newest one. */
export const OLDER_BUDGET_BYTES = 4 * 1024 * 1024;
/** Free snapshot buffers kept for reuse, in bytes. */
const POOL_BYTES = 64 * 1024 * 1024;

/** A flushed allocation being followed. */
export interface Followed {
  ref: WeakRef<TypedArray>;
  code: number;
  shape: readonly number[];
  /** Bytes last written (a snapshot). */
  snapshot: Buffer;
}

/** What a flush writes for one array: the bytes to send (a snapshot, kept to follow it afterwards). */
export interface Written {
  data: Buffer;
}

export class Follower {
  private readonly followed = new Map<StoreKey, Followed>();
  private readonly pool: Buffer[] = [];
  private poolBytes = 0;
  private snapshotBytes = 0;

  get size(): number {
    return this.followed.size;
  }

  /** The keys followed now. */
  keys(): StoreKey[] {
    return [...this.followed.keys()];
  }

  /** Followed arrays that changed since they were last written; forgets the ones no longer alive. */
  changed(): { key: StoreKey; array: TypedArray; entry: Followed }[] {
    const changes: { key: StoreKey; array: TypedArray; entry: Followed }[] = [];
    for (const [key, entry] of this.followed) {
      const array = entry.ref.deref();
      if (array === undefined) {
        this.forget(key);
        continue;
      }
      const bytes = bytesOfArray(array);
      if (entry.snapshot.byteLength !== bytes.byteLength || !bytes.equals(entry.snapshot)) {
        changes.push({ key, array, entry });
      }
    }
    return changes;
  }

  /** The bytes to write for `array`: a snapshot (from the pool), which then follows it. */
  prepare(array: TypedArray): Written {
    const bytes = bytesOfArray(array);
    const snapshot = this.take(bytes.byteLength);
    snapshot.set(bytes);
    return { data: snapshot };
  }

  /** Follows `key` from now on (the flush of `written` succeeded); the newest is always followed. */
  follow(key: StoreKey, array: TypedArray, code: number, shape: readonly number[], written: Written): void {
    this.forget(key);
    this.followed.set(key, { ref: new WeakRef(array), code, shape, snapshot: written.data });
    this.snapshotBytes += written.data.byteLength;
    for (const oldest of this.followed.keys()) {
      const older = this.snapshotBytes - written.data.byteLength;
      if (oldest === key || (this.followed.size <= MAX_FOLLOWED && older <= OLDER_BUDGET_BYTES)) break;
      this.forget(oldest);
    }
  }

  /** Stops following `key` (deleted, or dropped); its snapshot goes back to the pool. */
  forget(key: StoreKey): void {
    const entry = this.followed.get(key);
    if (entry === undefined) return;
    this.followed.delete(key);
    this.snapshotBytes -= entry.snapshot.byteLength;
    this.giveBack(entry.snapshot);
  }

  /** After a failed write, a snapshot may still be on its way to the socket: reuse none of them. */
  dropPool(): void {
    this.pool.length = 0;
    this.poolBytes = 0;
  }

  clear(): void {
    this.followed.clear();
    this.snapshotBytes = 0;
    this.dropPool();
  }

  private take(byteLength: number): Buffer {
    let best = -1;
    for (let index = 0; index < this.pool.length; index++) {
      const candidate = this.pool[index]!;
      if (
        candidate.buffer.byteLength >= byteLength &&
        (best < 0 || candidate.buffer.byteLength < this.pool[best]!.buffer.byteLength)
      ) {
        best = index;
      }
    }
    if (best < 0) return Buffer.allocUnsafeSlow(byteLength);
    const [whole] = this.pool.splice(best, 1);
    this.poolBytes -= whole!.buffer.byteLength;
    return Buffer.from(whole!.buffer, 0, byteLength);
  }

  private giveBack(snapshot: Buffer): void {
    const capacity = snapshot.buffer.byteLength;
    if (capacity === 0 || this.poolBytes + capacity > POOL_BYTES) return;
    this.pool.push(Buffer.from(snapshot.buffer, 0, capacity));
    this.poolBytes += capacity;
  }
}

function bytesOfArray(array: TypedArray): Buffer {
  return Buffer.from(array.buffer, array.byteOffset, array.byteLength);
}
