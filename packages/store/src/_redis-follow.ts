/**
 * The redis client's follower of flushed allocations (package-private): {@link FollowedArrays}'s
 * rule, with a copy of what was last written for each (a snapshot, compared with `memcmp` at every
 * flush: ~0.1 ms per 4 MiB) — the server's bytes are a round trip away. The client also asks the
 * server, at most every 100 ms, which followed values are gone (their sink deleted them) and stops
 * following those: an array stays alive to its `WeakRef` until a full garbage collection, long
 * after its frame was read and deleted.
 * Snapshot buffers are recycled through a small pool: a fresh buffer for every frame would cost page
 * faults that take longer than the copy.
 * @module
 */
import { Buffer } from 'node:buffer';
import type { StoreKey, TypedArray } from '@improv/core';
import { type Alive, type Followed, FollowedArrays } from './_follow.ts';

/** Free snapshot buffers kept for reuse, in bytes. */
const POOL_BYTES = 64 * 1024 * 1024;

/** A flushed allocation being followed, with the bytes last written. */
export interface Snapshotted extends Followed {
  readonly snapshot: Buffer;
}

/** What a flush writes for one array: the bytes to send (a snapshot, kept to follow it afterwards). */
export interface Written {
  data: Buffer;
}

export class Follower {
  private readonly followed = new FollowedArrays<Snapshotted>((entry) => this.giveBack(entry.snapshot));
  private readonly pool: Buffer[] = [];
  private poolBytes = 0;

  get size(): number {
    return this.followed.size;
  }

  /** The keys followed now. */
  keys(): StoreKey[] {
    return this.followed.keys();
  }

  /** Followed arrays that changed since they were last written; forgets the ones no longer alive. */
  changed(): Alive<Snapshotted>[] {
    return this.followed.alive().filter(({ array, entry }) => {
      const bytes = bytesOfArray(array);
      return entry.snapshot.byteLength !== bytes.byteLength || !bytes.equals(entry.snapshot);
    });
  }

  /** The bytes to write for `array`: a snapshot (from the pool), which then follows it. */
  prepare(array: TypedArray): Written {
    const bytes = bytesOfArray(array);
    const snapshot = this.take(bytes.byteLength);
    snapshot.set(bytes);
    return { data: snapshot };
  }

  /** Follows `key` from now on (the flush of `written` succeeded). */
  follow(key: StoreKey, array: TypedArray, code: number, shape: readonly number[], written: Written): void {
    const snapshot = written.data;
    this.followed.follow(key, { ref: new WeakRef(array), code, shape, byteLength: snapshot.byteLength, snapshot });
  }

  /** Stops following `key` (deleted, or gone from the server); its snapshot goes back to the pool. */
  forget(key: StoreKey): void {
    this.followed.forget(key);
  }

  /** After a failed write, a snapshot may still be on its way to the socket: reuse none of them. */
  dropPool(): void {
    this.pool.length = 0;
    this.poolBytes = 0;
  }

  clear(): void {
    this.followed.clear();
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
