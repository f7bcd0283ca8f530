/**
 * Arrays from `allocate()` after their first flush (package-private). The contract lets a writer
 * keep such an array, write it again and flush again; a copying driver must then find out what
 * changed without asking the server. The redis client follows its most recent flushed allocations
 * (at most {@link MAX_FOLLOWED}, each only while its array is alive: a `WeakRef`) with what it
 * last wrote: a copy (a snapshot, compared with `memcmp`: ~0.1 ms per 4 MiB) for arrays up to
 * {@link MAX_SNAPSHOT_BYTES}, within a budget of {@link SNAPSHOT_BUDGET_BYTES} for all of them;
 * a 64-bit hash of the bytes for larger ones. Snapshot buffers are recycled through a small pool:
 * a fresh buffer for every frame would cost page faults that take longer than the copy.
 * @module
 */
import { Buffer } from 'node:buffer';
import type { StoreKey, TypedArray } from '@improv/core';

/** Most flushed allocations a client follows (the oldest are dropped first). */
export const MAX_FOLLOWED = 16;
/** Largest array followed with a snapshot; larger ones are followed with a hash. */
export const MAX_SNAPSHOT_BYTES = 16 * 1024 * 1024;
/** All snapshots of a client together. */
export const SNAPSHOT_BUDGET_BYTES = 64 * 1024 * 1024;
/** Free snapshot buffers kept for reuse, in bytes. */
const POOL_BYTES = 64 * 1024 * 1024;

/** A flushed allocation being followed. */
export interface Followed {
  ref: WeakRef<TypedArray>;
  code: number;
  shape: readonly number[];
  /** Bytes last written (a snapshot), or … */
  snapshot?: Buffer;
  /** … their hash, for a large array. */
  hash?: string;
}

/** What a flush writes for one array: the bytes to send, and how to follow it afterwards. */
export interface Written {
  data: Buffer;
  snapshot?: Buffer;
  hash?: string;
}

export class Follower {
  private readonly followed = new Map<StoreKey, Followed>();
  private readonly pool: Buffer[] = [];
  private poolBytes = 0;
  private snapshotBytes = 0;

  get size(): number {
    return this.followed.size;
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
      const same =
        entry.snapshot !== undefined
          ? entry.snapshot.byteLength === bytes.byteLength && bytes.equals(entry.snapshot)
          : entry.hash === hashOf(bytes);
      if (!same) changes.push({ key, array, entry });
    }
    return changes;
  }

  /** The bytes to write for `array` (a snapshot from the pool when small enough), and its follow data. */
  prepare(array: TypedArray, previous: Followed | undefined): Written {
    const bytes = bytesOfArray(array);
    if (bytes.byteLength > MAX_SNAPSHOT_BYTES) return { data: bytes, hash: hashOf(bytes) };
    let snapshot = previous?.snapshot;
    if (snapshot === undefined || snapshot.byteLength !== bytes.byteLength) snapshot = this.take(bytes.byteLength);
    snapshot.set(bytes);
    return { data: snapshot, snapshot };
  }

  /** Follows `key` from now on (the flush of `written` succeeded). */
  follow(key: StoreKey, array: TypedArray, code: number, shape: readonly number[], written: Written): void {
    const previous = this.followed.get(key);
    if (previous?.snapshot !== undefined && previous.snapshot !== written.snapshot) this.giveBack(previous.snapshot);
    if (previous?.snapshot !== undefined) this.snapshotBytes -= previous.snapshot.byteLength;
    this.followed.delete(key);
    const entry: Followed = { ref: new WeakRef(array), code, shape };
    if (written.snapshot !== undefined) {
      entry.snapshot = written.snapshot;
      this.snapshotBytes += written.snapshot.byteLength;
    } else {
      entry.hash = written.hash!;
    }
    this.followed.set(key, entry);
    for (const oldest of this.followed.keys()) {
      if (this.followed.size <= MAX_FOLLOWED && this.snapshotBytes <= SNAPSHOT_BUDGET_BYTES) break;
      this.forget(oldest);
    }
  }

  /** Stops following `key` (deleted, or dropped); its snapshot goes back to the pool. */
  forget(key: StoreKey): void {
    const entry = this.followed.get(key);
    if (entry === undefined) return;
    this.followed.delete(key);
    if (entry.snapshot !== undefined) {
      this.snapshotBytes -= entry.snapshot.byteLength;
      this.giveBack(entry.snapshot);
    }
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

/** A 64-bit hash of `bytes` (two 32-bit FNV-style lanes over 32-bit words), as hex. */
export function hashOf(bytes: Buffer): string {
  const words = bytes.byteLength >>> 2;
  let h1 = 0x811c9dc5 | 0;
  let h2 = 0x9e3779b9 | 0;
  if (bytes.byteOffset % 4 === 0) {
    const view = new Int32Array(bytes.buffer, bytes.byteOffset, words);
    for (let index = 0; index < words; index++) {
      const word = view[index]!;
      h1 = Math.imul(h1 ^ word, 0x01000193);
      h2 = Math.imul(h2 + word, 0x85ebca6b) ^ (h2 >>> 13);
    }
  } else {
    for (let index = 0; index < words; index++) {
      const word = bytes.readInt32LE(index * 4);
      h1 = Math.imul(h1 ^ word, 0x01000193);
      h2 = Math.imul(h2 + word, 0x85ebca6b) ^ (h2 >>> 13);
    }
  }
  for (let index = words * 4; index < bytes.byteLength; index++) {
    h1 = Math.imul(h1 ^ bytes[index]!, 0x01000193);
    h2 = Math.imul(h2 + bytes[index]!, 0x85ebca6b) ^ (h2 >>> 13);
  }
  return `${(h1 >>> 0).toString(16)}.${(h2 >>> 0).toString(16)}.${bytes.byteLength}`;
}
