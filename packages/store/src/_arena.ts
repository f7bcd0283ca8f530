/**
 * The shared-memory arena behind the memory store (package-private): a block allocator with
 * boundary tags and segregated free lists, a slot table that maps keys to blocks, a mutex, and the
 * per-value bookkeeping of holds, TTL and eviction — all in SharedArrayBuffers, so every worker
 * that attaches sees the same store.
 *
 * Memory:
 * - `meta` (Int32 words): a header (lock, counters, list heads, free-list heads and their bitmap),
 *   the slot table ({@link SLOT_WORDS} words per slot), a FIFO ring of free slots, and two intrusive
 *   lists through the slots (put order, for eviction; values with a TTL, for expiry).
 * - `arena`: the blocks, addressed in 8-byte units so every typed-array kind can be viewed in
 *   place and a 32-bit offset reaches 16 GiB. Each block starts and ends with a tag unit
 *   (size in units, used flag); a free block keeps its free-list links in its second unit.
 * - `times` (Float64): the next expiry to look at, then per slot its expiry and "held until" time
 *   (`Date.now()` milliseconds).
 *
 * A slot's state word holds a state (low 3 bits) and, above it, the value's generation — or, once
 * RETIRED, the owner id of the client that deleted it (so recovery can finish a delete its worker
 * died in): FREE (on the free-slot ring) → RESERVED (being written, under the lock) → LIVE
 * (published, by compare-and-swap) → RETIRED (deleted, by compare-and-swap, without the lock) → FREE
 * with the next generation once an allocating thread, under the lock, frees the block (the
 * "drain"). Eviction and expiry, under the lock, go LIVE → CLAIMED → LIVE (held after all) or → FREE.
 *
 * Only allocation, draining, eviction and expiry take the lock; reads and deletes do not. A block is
 * never freed without its slot's state word changing first, so a reader loads the word, reads the
 * block, and checks the word again (a seqlock). A delete compare-and-swaps the word LIVE → RETIRED
 * (so the key is stale at once, and a second delete, or eviction, of the value fails) and pushes the slot on a
 * lock-free stack (Treiber: push by compare-and-swap on the head); the lock holder takes the whole
 * stack with one `Atomics.exchange`. Nothing is ever popped singly, so the stack has no ABA problem.
 * @module
 */
import { EVICTION_HIGH_WATER, EVICTION_LOW_WATER } from '@improv/core';

/** Bytes per allocation unit. */
export const UNIT = 8;
/** Smallest block: header tag, two value-header units, footer tag. */
export const MIN_BLOCK_UNITS = 4;
/** Largest arena: block offsets and sizes are positive Int32 numbers of units. */
export const MAX_ARENA_BYTES = 0x7fffffff * UNIT;
/** Format version, checked when a worker attaches. */
const MAGIC = 0x494d5304;

// Header words of `meta`, by cache line (16 words): fixed at creation, read on every call; written
// under the lock; and the retired-stack head, which every delete writes.
const H_MAGIC = 0;
const H_STATE = 1;
const H_TOTAL_UNITS = 2;
const H_SLOT_COUNT = 3;
const H_EVICTION = 4;
const H_NEXT_OWNER = 5;
/**
 * 1 once any value was given a TTL (never reset): until then no read or delete looks at `times`,
 * whose entry for the slot the putting thread has just written (a cache miss on the other core).
 */
const H_TTL_EVER = 6;
const H_LOCK = 16;
const H_WAITERS = 17;
const H_OBJECTS = 18;
const H_USED_UNITS = 19;
const H_SLOT_HEAD = 20;
const H_SLOT_FREE = 21;
const H_TTL_VALUES = 22;
/** The rest of a retired chain a lock holder is freeing, for recovery if it dies meanwhile. */
const H_DRAINING = 23;
/** Head and tail of the put-order list, then of the TTL list. */
const H_LISTS = 24;
const H_RETIRED = 32;
/** Set by a release of an expired value: the next expiry pass should run now. */
const H_REAP_DUE = 33;
const H_BITMAP = 48;
const BITMAP_WORDS = 8;
const H_HEADS = H_BITMAP + BITMAP_WORDS;
// Sizes below 16 units have a class each; above, 8 classes per power of two (TLSF-style), so a
// request rounded up to the next class fits any block of that class without a search.
const CLASS_COUNT = 240;
/**
 * The table of reservation caches (see {@link CACHED}): one entry of a cache line per client that
 * caches — its owner id (0: entry free), and how many slots and units it holds CACHED.
 */
const H_CACHES = H_HEADS + CLASS_COUNT + 8;
const CACHE_ENTRIES = 64;
const CACHE_ENTRY_WORDS = 16;
const E_OWNER = 0;
const E_OBJECTS = 1;
const E_UNITS = 2;
const HEADER_WORDS = H_CACHES + CACHE_ENTRIES * CACHE_ENTRY_WORDS;

/** Words per slot in the slot table. */
export const SLOT_WORDS = 8;
const S_STATE = 0;
/** Owner of a RESERVED slot; next slot on the retired stack of a RETIRED one. */
const S_OWNER = 1;
const S_LINK = 1;
const S_OFFSET = 2;
const S_SIZE = 3;
/** Hold count (see {@link tagged}). */
const S_HOLD = 4;
/** Messages in flight that carry the key (see {@link tagged}). */
const S_FLIGHT = 5;
/** `generation << 2 | READ_MARK` once read; `freed generation << 2 | reason` once evicted or expired. */
const S_MARK = 6;
/** Generation of the slot's value (the state word of a RETIRED slot holds its deleter instead). */
const S_GENERATION = 7;

/** List words per slot (previous, next), put-order list first, then TTL list. */
const LIST_WORDS = 4;
const ORDER = 0;
const TTL = 2;

// `times`: the next expiry worth a pass, then [expires at, held until] per slot.
const T_NEXT_EXPIRY = 0;
const T_SLOTS = 2;

/** Slot states, in the low three bits of the state word; the generation (or a deleter) is in the other 29. */
export const FREE = 0;
export const RESERVED = 1;
export const LIVE = 2;
export const CLAIMED = 3;
export const RETIRED = 4;
/**
 * Reserved ahead for one client's small puts (owner id in the slot's owner word): its block and
 * slot are allocated and counted like any value's, but it holds nothing yet. The client takes one
 * without the lock (CACHED → RESERVED by compare-and-swap); under the lock, a reservation that finds
 * the store full takes it back (CACHED → FREE), and so does recovery when its client died.
 */
export const CACHED = 5;
export const STATE_BITS = 3;
export const STATE_MASK = 7;
export const GENERATION_MASK = 0x1fffffff;

/** Why a slot was freed, in its mark word. */
export const FREED_EVICTED = 1;
export const FREED_EXPIRED = 2;
const READ_MARK = 3;

// Hold and flight words: the low 14 bits of the value's generation above an 18-bit signed count, so
// a late release or track() of an older value of the slot finds another tag and changes nothing.
const COUNT_BITS = 18;
const COUNT_MASK = (1 << COUNT_BITS) - 1;
const TAG_MASK = ~COUNT_MASK;

function tagged(generation: number, count: number): number {
  return (generation << COUNT_BITS) | (count & COUNT_MASK);
}

function countOf(word: number): number {
  return (word << (32 - COUNT_BITS)) >> (32 - COUNT_BITS);
}

function sameTag(word: number, generation: number): boolean {
  return ((word ^ (generation << COUNT_BITS)) & TAG_MASK) === 0;
}

const STATE_OPEN = 1;
const STATE_CLOSED = 2;

const NIL = -1;
const SPIN_LIMIT = 64;
/**
 * A reservation drains the retired stack only this often (and whenever space or a slot runs
 * short): the stack's head is written by every delete, so reading it on every put would cost a
 * cache miss each, and a longer chain is freed in one go.
 */
const DRAIN_EVERY = 32;
/** Slots a client reserves ahead in one lock acquisition, per block size (see {@link CACHED}). */
const CACHE_BATCH = 32;
/** Blocks of up to this many units (values of up to 88 bytes) come from the client's cache. */
const CACHE_MAX_UNITS = 16;

/** The buffers that make up a store, as they travel in the descriptor. */
export interface ArenaBuffers {
  meta: SharedArrayBuffer;
  arena: SharedArrayBuffer;
  times: SharedArrayBuffer;
}

/** What {@link Arena.recover} did. */
export interface RecoveryReport {
  /** True when the dead owner held the allocator lock (the allocator was then rebuilt). */
  lockReleased: boolean;
  /** Values the dead owner had reserved but not yet published, now freed. */
  reservationsFreed: number;
  /** Values the dead owner was deleting (marked deleted, not yet handed to the allocator), now freed. */
  deletesFinished: number;
}

/** Why a reservation failed, for the error message the client builds. */
export interface FullReport {
  reason: 'space' | 'objects';
  askedUnits: number;
  freeUnits: number;
  largestFreeUnits: number;
  capacityUnits: number;
  maxObjects: number;
  /** With eviction on: values eviction may not free because they are held (or being written)… */
  held?: number;
  /** …and because nobody has read them yet. */
  unread?: number;
}

/** Throws `StoreFullError` out of {@link Arena.reserve}; the client turns the report into words. */
export type FullHandler = (report: FullReport) => never;

function sizeClass(units: number): number {
  if (units < 16) return units;
  const log = 31 - Math.clz32(units);
  return 16 + ((log - 4) << 3) + ((units >>> (log - 3)) & 7);
}

function lowestBit(word: number): number {
  return 31 - Math.clz32(word & -word);
}

function metaWords(slotCount: number): number {
  return HEADER_WORDS + slotCount * (SLOT_WORDS + 1 + LIST_WORDS);
}

/**
 * Buffers for a new store: `totalUnits` of arena and `slotCount` slots; with `evictOldest`,
 * reservations free the oldest read, unheld values (`store_eviction: oldest`).
 */
export function createArenaBuffers(totalUnits: number, slotCount: number, evictOldest = false): ArenaBuffers {
  const meta = new SharedArrayBuffer(metaWords(slotCount) * 4);
  const arena = new SharedArrayBuffer(totalUnits * UNIT);
  const times = new SharedArrayBuffer((T_SLOTS + 2 * slotCount) * 8);
  const words = new Int32Array(meta);
  words[H_STATE] = STATE_OPEN;
  words[H_TOTAL_UNITS] = totalUnits;
  words[H_SLOT_COUNT] = slotCount;
  words[H_SLOT_FREE] = slotCount;
  words[H_EVICTION] = evictOldest ? 1 : 0;
  words[H_RETIRED] = NIL;
  words[H_DRAINING] = NIL;
  words.fill(NIL, H_LISTS, H_LISTS + 4);
  words.fill(NIL, H_HEADS, H_HEADS + CLASS_COUNT);
  const fifo = HEADER_WORDS + slotCount * SLOT_WORDS;
  for (let slot = 0; slot < slotCount; slot++) words[fifo + slot] = slot;
  const floats = new Float64Array(times);
  floats[T_NEXT_EXPIRY] = Number.POSITIVE_INFINITY;
  const created = new Arena({ meta, arena, times });
  created.insertFree(0, totalUnits);
  // Written last: a half-built store fails the magic check instead of looking empty.
  Atomics.store(words, H_MAGIC, MAGIC);
  return { meta, arena, times };
}

/** True when `buffers` look like the buffers of a memory store of this format. */
export function isArenaBuffers(value: { readonly [key: string]: unknown }): boolean {
  return (
    value.meta instanceof SharedArrayBuffer &&
    value.arena instanceof SharedArrayBuffer &&
    value.times instanceof SharedArrayBuffer &&
    value.meta.byteLength >= HEADER_WORDS * 4 &&
    Atomics.load(new Int32Array(value.meta, 0, 1), 0) === MAGIC
  );
}

/** One thread's handle on the shared arena. Every method is safe to call from many threads. */
export class Arena {
  readonly buffer: SharedArrayBuffer;
  readonly meta: Int32Array;
  /** The arena as Int32 words, for tags and value headers. */
  readonly words: Int32Array;
  /** Expiry and held-until times (see the module comment). */
  readonly times: Float64Array;
  readonly totalUnits: number;
  readonly slotCount: number;
  /** True when reservations evict the oldest read, unheld values (`store_eviction: oldest`). */
  readonly evictOldest: boolean;
  private readonly fifo: number;
  private readonly lists: number;
  private readonly highUnits: number;
  private readonly lowUnits: number;
  /** Reservations of this thread, to drain the retired stack on every {@link DRAIN_EVERY}th one. */
  private reservations = 0;
  /**
   * The slots this thread reserved ahead for {@link cacheOwner}, per block size in units: a stack
   * of CACHED slots each (a slot taken back meanwhile fails its compare-and-swap and is skipped).
   */
  private readonly cacheSlots: Int32Array[] = [];
  /** The CACHED state word each cached slot had when reserved (a slot taken back has another). */
  private readonly cacheWords: Int32Array[] = [];
  /** Per block size: next cached slot to take, and how many the cache holds. */
  private readonly cacheAt = new Int32Array(CACHE_MAX_UNITS + 1);
  private readonly cacheEnd = new Int32Array(CACHE_MAX_UNITS + 1);
  /** The owner whose cache this is (0: none yet), and its entry in the header's table. */
  private cacheOwner = 0;
  private cacheEntry = NIL;

  constructor(buffers: ArenaBuffers) {
    this.buffer = buffers.arena;
    this.meta = new Int32Array(buffers.meta);
    this.words = new Int32Array(buffers.arena);
    this.times = new Float64Array(buffers.times);
    this.totalUnits = this.meta[H_TOTAL_UNITS]!;
    this.slotCount = this.meta[H_SLOT_COUNT]!;
    this.evictOldest = this.meta[H_EVICTION] === 1;
    this.fifo = HEADER_WORDS + this.slotCount * SLOT_WORDS;
    this.lists = this.fifo + this.slotCount;
    this.highUnits = Math.floor(this.totalUnits * EVICTION_HIGH_WATER);
    this.lowUnits = Math.floor(this.totalUnits * EVICTION_LOW_WATER);
  }

  /** A new owner id (≥ 1) for a client; it marks the lock and reservations the client holds. */
  newOwnerId(): number {
    return Atomics.add(this.meta, H_NEXT_OWNER, 1) + 1;
  }

  isOpen(): boolean {
    return Atomics.load(this.meta, H_STATE) === STATE_OPEN;
  }

  markClosed(): void {
    Atomics.store(this.meta, H_STATE, STATE_CLOSED);
  }

  /**
   * Space and values in use, exactly: frees what deletes retired first (under the lock), so a
   * delete that has returned is counted.
   */
  usage(owner: number, timeoutMs: number): { usedUnits: number; objects: number } {
    this.lock(owner, timeoutMs);
    try {
      this.drain();
      // Reserved ahead but holding nothing: not values, and free for whoever needs them.
      const cached = this.cachedTotals();
      return { usedUnits: this.meta[H_USED_UNITS]! - cached.units, objects: this.meta[H_OBJECTS]! - cached.objects };
    } finally {
      this.unlock(owner);
    }
  }

  // ---- lock ------------------------------------------------------------------------------------

  /**
   * Takes the allocator lock for `owner`: a compare-and-swap, a short spin (critical sections are a
   * few hundred instructions), then `Atomics.wait` so a blocked thread uses no CPU. Throws after
   * `timeoutMs` naming the holder, which then most likely died inside the lock.
   */
  lock(owner: number, timeoutMs: number): void {
    if (this.tryLock(owner)) return;
    const meta = this.meta;
    Atomics.add(meta, H_WAITERS, 1);
    try {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const holder = Atomics.compareExchange(meta, H_LOCK, 0, owner);
        if (holder === 0) return;
        const left = deadline - Date.now();
        if (left <= 0) {
          throw new Error(
            `memory store: the allocator lock has been held by client #${holder} for over ${timeoutMs} ms; that client's worker most likely died inside the store (or is stopped in a debugger). Call recoverFromDeadOwner(${holder}) on the open store once its worker has exited, or restart the pipeline`,
          );
        }
        Atomics.wait(meta, H_LOCK, holder, left);
      }
    } finally {
      Atomics.sub(meta, H_WAITERS, 1);
    }
  }

  /** The lock without waiting: a compare-and-swap and a short spin. False when it is held. */
  tryLock(owner: number): boolean {
    const meta = this.meta;
    if (Atomics.compareExchange(meta, H_LOCK, 0, owner) === 0) return true;
    for (let spin = 0; spin < SPIN_LIMIT; spin++) {
      if (Atomics.load(meta, H_LOCK) === 0 && Atomics.compareExchange(meta, H_LOCK, 0, owner) === 0) return true;
    }
    return false;
  }

  unlock(owner: number): void {
    // Compare-and-swap, not a store: if recovery took the lock from an owner wrongly declared dead,
    // that owner's late unlock must not release the recoverer's lock.
    Atomics.compareExchange(this.meta, H_LOCK, owner, 0);
    if (Atomics.load(this.meta, H_WAITERS) > 0) Atomics.notify(this.meta, H_LOCK, 1);
  }

  // ---- slots -----------------------------------------------------------------------------------

  slotBase(slot: number): number {
    return HEADER_WORDS + slot * SLOT_WORDS;
  }

  /** The state word a live value of `slot`/`generation` has. */
  static liveWord(generation: number): number {
    return (generation << STATE_BITS) | LIVE;
  }

  /** The state word of a value deleted by `owner`, until the drain frees it. */
  static retiredWord(owner: number): number {
    return ((owner & GENERATION_MASK) << STATE_BITS) | RETIRED;
  }

  /** The FREE state word that follows the value in `slot` (its generation + 1). */
  private freedWord(slot: number): number {
    return ((this.meta[this.slotBase(slot) + S_GENERATION]! + 1) & GENERATION_MASK) << STATE_BITS;
  }

  /**
   * Reserves a block of `units` and a slot for `owner`. Returns the slot; the block offset is in
   * the slot table. The value is invisible to readers until {@link publish}. `expiresAt` (0: never)
   * is the value's TTL deadline; `heldUntil` > 0 starts it with one hold (an allocation's). Frees
   * the blocks of deleted values (every {@link DRAIN_EVERY}th call, and whenever space runs short),
   * then — when the store is full — expired values nobody holds and, with eviction on, the oldest
   * read and unheld values. Calls `onFull` (which throws) when no block or slot is free even so.
   */
  reserve(owner: number, units: number, timeoutMs: number, onFull: FullHandler, expiresAt = 0, heldUntil = 0): number {
    // A small value with no TTL and no hold, in a store without eviction (whose put-order list must
    // follow the puts): from this client's cache, without the lock.
    if (
      units <= CACHE_MAX_UNITS &&
      expiresAt === 0 &&
      heldUntil === 0 &&
      !this.evictOldest &&
      (owner === this.cacheOwner || this.cacheOwner === 0)
    ) {
      const slot = this.takeCached(owner, units, timeoutMs);
      if (slot !== NIL) return slot;
    }
    return this.reserveOne(owner, units, timeoutMs, onFull, expiresAt, heldUntil);
  }

  /**
   * Lock-free: a cached slot of `units` turned RESERVED for `owner`, refilling the cache (one lock
   * acquisition for {@link CACHE_BATCH} slots) when it is empty; -1 when the store has no room to
   * spare for caches (then the caller reserves one under the lock, as without a cache).
   */
  private takeCached(owner: number, units: number, timeoutMs: number): number {
    const meta = this.meta;
    for (;;) {
      let at = this.cacheAt[units]!;
      if (at === this.cacheEnd[units]) {
        if (this.refill(owner, units, timeoutMs) === 0) return NIL;
        at = 0;
      }
      const slot = this.cacheSlots[units]![at]!;
      const word = this.cacheWords[units]![at]!;
      this.cacheAt[units] = at + 1;
      const base = this.slotBase(slot);
      // Fails when a full store or recovery took it back meanwhile (its word changed): skipped.
      if (Atomics.compareExchange(meta, base + S_STATE, word, (word & ~STATE_MASK) | RESERVED) === word) {
        Atomics.sub(meta, this.cacheEntry + E_OBJECTS, 1);
        Atomics.sub(meta, this.cacheEntry + E_UNITS, meta[base + S_SIZE]!);
        return slot;
      }
    }
  }

  /**
   * Fills the cache of `units` with up to {@link CACHE_BATCH} CACHED slots under one lock
   * acquisition (after a drain of the retired stack); returns how many. None while the store has
   * less than a quarter of its slots or space free: near full, every block stays free for whoever
   * needs it. The first call claims an entry in the header's table of caches (none free: no cache).
   */
  private refill(owner: number, units: number, timeoutMs: number): number {
    const meta = this.meta;
    const spare = (): boolean =>
      meta[H_SLOT_FREE]! >= (this.slotCount >>> 2) + CACHE_BATCH &&
      this.totalUnits - meta[H_USED_UNITS]! >= (this.totalUnits >>> 2) + CACHE_BATCH * units;
    // A first look without the lock, so a store short of room costs no second lock per put.
    if (!spare()) return 0;
    if (this.cacheOwner === 0) {
      for (let entry = H_CACHES; entry < HEADER_WORDS; entry += CACHE_ENTRY_WORDS) {
        if (Atomics.compareExchange(meta, entry + E_OWNER, 0, owner) === 0) {
          this.cacheEntry = entry;
          break;
        }
      }
      // No entry free: this client reserves under the lock, as without a cache.
      this.cacheOwner = this.cacheEntry === NIL ? -1 : owner;
      if (this.cacheEntry === NIL) return 0;
    }
    if (this.cacheSlots[units] === undefined) {
      this.cacheSlots[units] = new Int32Array(CACHE_BATCH);
      this.cacheWords[units] = new Int32Array(CACHE_BATCH);
    }
    const slots = this.cacheSlots[units]!;
    const words = this.cacheWords[units]!;
    let count = 0;
    let cachedUnits = 0;
    this.lock(owner, timeoutMs);
    try {
      this.drain();
      for (; count < CACHE_BATCH && spare(); count++) {
        const block = this.allocate(units);
        if (block === NIL) break;
        const slot = this.popSlot();
        const base = this.slotBase(slot);
        const generation = Atomics.load(meta, base + S_STATE) >>> STATE_BITS;
        // What reserve() writes for a value with no TTL and no hold; the state word last.
        meta[base + S_OWNER] = owner;
        meta[base + S_OFFSET] = block;
        meta[base + S_SIZE] = this.words[2 * block]!;
        meta[base + S_HOLD] = tagged(generation, 0);
        meta[base + S_FLIGHT] = tagged(generation, 0);
        meta[base + S_MARK] = 0;
        meta[base + S_GENERATION] = generation;
        this.times[T_SLOTS + 2 * slot] = 0;
        meta[H_OBJECTS]! += 1;
        cachedUnits += meta[base + S_SIZE]!;
        const word = (generation << STATE_BITS) | CACHED;
        Atomics.store(meta, base + S_STATE, word);
        slots[count] = slot;
        words[count] = word;
      }
      Atomics.add(meta, this.cacheEntry + E_OBJECTS, count);
      Atomics.add(meta, this.cacheEntry + E_UNITS, cachedUnits);
    } finally {
      this.unlock(owner);
    }
    this.cacheAt[units] = 0;
    this.cacheEnd[units] = count;
    return count;
  }

  /** Frees what is left in this thread's cache for `owner` and gives up its entry (client close). */
  dropCache(owner: number, timeoutMs: number): void {
    if (this.cacheOwner !== owner || this.cacheEntry === NIL) return;
    this.lock(owner, timeoutMs);
    try {
      for (let units = 0; units <= CACHE_MAX_UNITS; units++) {
        const slots = this.cacheSlots[units];
        const words = this.cacheWords[units];
        if (slots === undefined || words === undefined) continue;
        for (let at = this.cacheAt[units]!; at < this.cacheEnd[units]!; at++) this.uncacheSlot(slots[at]!, words[at]!);
        this.cacheAt[units] = 0;
        this.cacheEnd[units] = 0;
      }
      this.releaseEntry(this.cacheEntry, owner);
    } finally {
      this.unlock(owner);
    }
    this.cacheOwner = 0;
    this.cacheEntry = NIL;
  }

  /**
   * Under the lock: frees a CACHED slot whose state word is `word` and takes it out of its owner's
   * count; false when its owner took it (or it changed) first.
   */
  private uncacheSlot(slot: number, word: number): boolean {
    const meta = this.meta;
    const base = this.slotBase(slot);
    const units = meta[base + S_SIZE]!;
    const owner = meta[base + S_OWNER]!;
    if (Atomics.compareExchange(meta, base + S_STATE, word, this.freedWord(slot)) !== word) return false;
    this.freeSlot(slot);
    this.forgetCached(owner, units);
    return true;
  }

  /** A CACHED slot of `owner`, of `units`, was freed: out of its entry's count. */
  private forgetCached(owner: number, units: number): void {
    const entry = this.entryOf(owner);
    if (entry === NIL) return;
    Atomics.sub(this.meta, entry + E_OBJECTS, 1);
    Atomics.sub(this.meta, entry + E_UNITS, units);
  }

  /** What every client's cache holds, by the counts of the table of caches. */
  private cachedTotals(): { objects: number; units: number } {
    let objects = 0;
    let units = 0;
    for (let entry = H_CACHES; entry < HEADER_WORDS; entry += CACHE_ENTRY_WORDS) {
      objects += Atomics.load(this.meta, entry + E_OBJECTS);
      units += Atomics.load(this.meta, entry + E_UNITS);
    }
    return { objects, units };
  }

  /** Gives up `owner`'s entry in the table of caches, its counts cleared. */
  private releaseEntry(entry: number, owner: number): void {
    Atomics.store(this.meta, entry + E_OBJECTS, 0);
    Atomics.store(this.meta, entry + E_UNITS, 0);
    Atomics.compareExchange(this.meta, entry + E_OWNER, owner, 0);
  }

  private entryOf(owner: number): number {
    for (let entry = H_CACHES; entry < HEADER_WORDS; entry += CACHE_ENTRY_WORDS) {
      if (Atomics.load(this.meta, entry + E_OWNER) === owner) return entry;
    }
    return NIL;
  }

  /**
   * Under the lock, when the store is full: frees every client's CACHED slots (a client that takes
   * one meanwhile wins its compare-and-swap, and this skips it). Returns how many.
   */
  private takeBackCaches(): number {
    const meta = this.meta;
    if (this.cachedTotals().objects <= 0) return 0;
    let freed = 0;
    for (let slot = 0; slot < this.slotCount; slot++) {
      const word = Atomics.load(meta, this.slotBase(slot) + S_STATE);
      if ((word & STATE_MASK) === CACHED && this.uncacheSlot(slot, word)) freed++;
    }
    return freed;
  }

  private reserveOne(
    owner: number,
    units: number,
    timeoutMs: number,
    onFull: FullHandler,
    expiresAt: number,
    heldUntil: number,
  ): number {
    const meta = this.meta;
    this.lock(owner, timeoutMs);
    let full: FullReport | undefined;
    let slot = NIL;
    try {
      if ((++this.reservations & (DRAIN_EVERY - 1)) === 0) this.drain();
      let block = this.evictOldest && meta[H_USED_UNITS]! + units > this.highUnits ? NIL : this.allocate(units);
      if (block === NIL) {
        // Short of space (or above the high-water mark): what deletes freed goes back first.
        if (this.drain() > 0 && !this.evictOldest) block = this.allocate(units);
      }
      if (block === NIL) {
        const now = Date.now();
        if (meta[H_TTL_VALUES]! > 0 && (meta[H_REAP_DUE] !== 0 || now >= this.times[T_NEXT_EXPIRY]!)) {
          this.reap(now);
        }
        block = this.evictOldest ? this.evict(units, now) : this.allocate(units);
      }
      // What clients reserved ahead for their small puts comes back before the store is full.
      if (block === NIL && this.takeBackCaches() > 0) block = this.allocate(units);
      if (block === NIL) {
        full = this.fullReport(meta[H_SLOT_FREE] === 0 ? 'objects' : 'space', units);
      } else {
        slot = this.popSlot();
        const base = this.slotBase(slot);
        const generation = Atomics.load(meta, base + S_STATE) >>> STATE_BITS;
        // Plain writes, published by the state store below. A late hold, track or read mark of the
        // slot's previous value finds another tag (or generation) from here on and changes nothing.
        meta[base + S_OWNER] = owner;
        meta[base + S_OFFSET] = block;
        meta[base + S_SIZE] = this.words[2 * block]!;
        meta[base + S_HOLD] = tagged(generation, heldUntil > 0 ? 1 : 0);
        meta[base + S_FLIGHT] = tagged(generation, 0);
        meta[base + S_MARK] = 0;
        meta[base + S_GENERATION] = generation;
        const times = T_SLOTS + 2 * slot;
        this.times[times] = expiresAt;
        if (heldUntil > 0) this.times[times + 1] = heldUntil;
        if (expiresAt > 0) {
          // Before the value is published, so whoever gets its key sees the flag.
          if (meta[H_TTL_EVER] === 0) Atomics.store(meta, H_TTL_EVER, 1);
          this.linkTail(TTL, slot);
          Atomics.add(meta, H_TTL_VALUES, 1);
          if (expiresAt < this.times[T_NEXT_EXPIRY]!) this.times[T_NEXT_EXPIRY] = expiresAt;
        }
        if (this.evictOldest) this.linkTail(ORDER, slot);
        meta[H_OBJECTS]! += 1;
        Atomics.store(meta, base + S_STATE, (generation << STATE_BITS) | RESERVED);
      }
    } finally {
      this.unlock(owner);
    }
    if (full !== undefined) onFull(full);
    return slot;
  }

  /** Block offset (units) of a slot, as written by {@link reserve}. */
  blockOf(slot: number): number {
    return Atomics.load(this.meta, this.slotBase(slot) + S_OFFSET);
  }

  /** Block size (units) of a slot. */
  blockUnitsOf(slot: number): number {
    return Atomics.load(this.meta, this.slotBase(slot) + S_SIZE);
  }

  /**
   * Makes a reserved value visible; returns its generation (for its key), or -1 when recovery freed
   * the reservation meanwhile. Read from the word it swaps: once live, expiry may free the value at
   * once and the slot move on to a newer generation.
   */
  publish(slot: number): number {
    const index = this.slotBase(slot) + S_STATE;
    const word = Atomics.load(this.meta, index);
    if ((word & STATE_MASK) !== RESERVED) return NIL;
    if (Atomics.compareExchange(this.meta, index, word, (word & ~STATE_MASK) | LIVE) !== word) return NIL;
    return word >>> STATE_BITS;
  }

  /** Frees a reservation that will not be published (the copy into it failed). */
  abandon(owner: number, slot: number, timeoutMs: number): void {
    this.lock(owner, timeoutMs);
    try {
      const base = this.slotBase(slot);
      const word = Atomics.load(this.meta, base + S_STATE);
      if ((word & STATE_MASK) === RESERVED && this.meta[base + S_OWNER] === owner) this.releaseSlot(slot, word);
    } finally {
      this.unlock(owner);
    }
  }

  /**
   * Lock-free: the state word of `slot`, once no eviction or expiry pass is deciding about it
   * (CLAIMED lasts a few loads under the lock; waiting for the lock waits it out).
   */
  private settledState(slot: number, generation: number, owner: number, timeoutMs: number): number {
    const index = this.slotBase(slot) + S_STATE;
    const claimed = (generation << STATE_BITS) | CLAIMED;
    let word = Atomics.load(this.meta, index);
    for (let spin = 0; word === claimed; spin++) {
      if (spin >= SPIN_LIMIT) {
        this.lock(owner, timeoutMs);
        this.unlock(owner);
      }
      word = Atomics.load(this.meta, index);
    }
    return word;
  }

  /** Lock-free: the block of a live value, or -1 when the key is stale. */
  lookup(slot: number, generation: number, owner: number, timeoutMs: number): number {
    if (this.settledState(slot, generation, owner, timeoutMs) !== Arena.liveWord(generation)) return NIL;
    return Atomics.load(this.meta, this.slotBase(slot) + S_OFFSET);
  }

  /** Lock-free: true while the value of `slot`/`generation` is live (the seqlock's second read). */
  isLive(slot: number, generation: number, owner: number, timeoutMs: number): boolean {
    return this.settledState(slot, generation, owner, timeoutMs) === Arena.liveWord(generation);
  }

  /**
   * Lock-free: true when TTL or eviction may free the value in `slot` (it has a TTL, or the store
   * evicts): only then do holds and read marks matter for it. A slot reused meanwhile fails the
   * caller's seqlock check anyway.
   */
  mayFree(slot: number): boolean {
    return this.evictOldest || (Atomics.load(this.meta, H_TTL_EVER) !== 0 && this.times[T_SLOTS + 2 * slot]! > 0);
  }

  /**
   * Lock-free: true when the live value of `slot`/`generation` is past its TTL and nobody holds it —
   * it reads as gone from then on, before an expiry pass frees it.
   */
  isExpired(slot: number, generation: number): boolean {
    if (Atomics.load(this.meta, H_TTL_EVER) === 0) return false;
    const expiresAt = this.times[T_SLOTS + 2 * slot]!;
    if (!(expiresAt > 0)) return false;
    const now = Date.now();
    return expiresAt <= now && !this.isHeld(this.slotBase(slot), slot, generation, now);
  }

  /**
   * Lock-free delete: LIVE → RETIRED(owner) by compare-and-swap (readers see the key go stale at
   * once), then a push on the retired stack; the next allocation frees the block. False when the
   * key is stale — also when another delete or an eviction got there first.
   */
  retire(slot: number, generation: number, owner: number, timeoutMs: number): boolean {
    const meta = this.meta;
    const base = this.slotBase(slot);
    const live = Arena.liveWord(generation);
    const retired = Arena.retiredWord(owner);
    for (;;) {
      const word = Atomics.compareExchange(meta, base + S_STATE, live, retired);
      if (word === live) break;
      if (word !== ((generation << STATE_BITS) | CLAIMED)) return false;
      this.settledState(slot, generation, owner, timeoutMs);
    }
    let head = Atomics.load(meta, H_RETIRED);
    for (;;) {
      // Published by the compare-and-swap below (sequentially consistent), read after the drain's exchange.
      meta[base + S_LINK] = head;
      const seen = Atomics.compareExchange(meta, H_RETIRED, head, slot);
      if (seen === head) return true;
      head = seen;
    }
  }

  /** How many deleted values wait on the retired stack for a drain (tests, debugging). */
  retiredCount(): number {
    let count = 0;
    let slot = Atomics.load(this.meta, H_RETIRED);
    for (; slot !== NIL && count < this.slotCount; count++) slot = this.meta[this.slotBase(slot) + S_LINK]!;
    return count;
  }

  // ---- holds, messages in flight, reads (lock-free) -------------------------------------------------

  /**
   * Takes a hold on the value of `slot`/`generation` until `until` (ms). The caller must then check
   * the value is still live ({@link isLive}) and {@link unhold} when it is not.
   *
   * The race with eviction and expiry, which run under the lock and free only unheld values: the
   * reader writes "held until", then increments the hold count, then reads the state word; the
   * evictor first claims the slot (LIVE → CLAIMED), then reads the hold count and "held until", and
   * puts the slot back to LIVE when held. Count and state are sequentially consistent atomics, and
   * the time is written before the count, so an evictor that sees the count sees the time too.
   * Either the reader's increment comes before the evictor reads the count — the evictor keeps the
   * value — or the claim comes before the reader's state read — the reader sees CLAIMED, waits for
   * the verdict, and sees LIVE (kept) or a freed slot (then undoes its hold). Never both freed and
   * held. False when the slot already holds a newer value.
   */
  hold(slot: number, generation: number, until: number): boolean {
    const times = T_SLOTS + 2 * slot + 1;
    if (this.times[times]! < until) this.times[times] = until;
    return this.addTagged(this.slotBase(slot), S_HOLD, generation, 1);
  }

  /** Extends a hold this client already has (a read renews its lease). */
  renew(slot: number, until: number): void {
    const times = T_SLOTS + 2 * slot + 1;
    if (this.times[times]! < until) this.times[times] = until;
  }

  /**
   * Ends one hold on `slot`/`generation` (nothing when the slot holds a newer value since). When an
   * expired value has no hold left, the next expiry pass runs at once.
   */
  unhold(slot: number, generation: number, now: number): void {
    const base = this.slotBase(slot);
    if (!this.addTagged(base, S_HOLD, generation, -1)) return;
    const expiresAt = this.times[T_SLOTS + 2 * slot]!;
    if (expiresAt > 0 && expiresAt <= now && Atomics.load(this.meta, base + S_STATE) === Arena.liveWord(generation)) {
      Atomics.store(this.meta, H_REAP_DUE, 1);
    }
  }

  /** Adds `delta` to the count of messages in flight that carry the key (see `StoreClient.track`). */
  track(slot: number, generation: number, delta: number): void {
    this.addTagged(this.slotBase(slot), S_FLIGHT, generation, delta);
  }

  /** Marks the value read (eviction frees only values read at least once). */
  markRead(slot: number, generation: number): void {
    const index = this.slotBase(slot) + S_MARK;
    const mark = (generation << 2) | READ_MARK;
    if (Atomics.load(this.meta, index) !== mark) Atomics.store(this.meta, index, mark);
  }

  /**
   * Why the value of `slot`/`generation` is gone: evicted or expired when the slot remembers so and
   * holds no newer value yet, expired when it is past its TTL but not yet freed, else unknown.
   */
  missingReason(slot: number, generation: number): 'evicted' | 'expired' | 'unknown' {
    const base = this.slotBase(slot);
    const word = Atomics.load(this.meta, base + S_STATE);
    if (word === Arena.liveWord(generation) || word === ((generation << STATE_BITS) | CLAIMED)) {
      return this.isExpired(slot, generation) ? 'expired' : 'unknown';
    }
    // Deleted (RETIRED), or reused since: nothing more to say.
    if (word !== ((generation + 1) & GENERATION_MASK) << STATE_BITS) return 'unknown';
    const mark = Atomics.load(this.meta, base + S_MARK);
    if (mark >>> 2 !== generation) return 'unknown';
    return (mark & 3) === FREED_EVICTED ? 'evicted' : (mark & 3) === FREED_EXPIRED ? 'expired' : 'unknown';
  }

  /**
   * Compare-and-swap loop on a tagged count word of the slot at `base`; false (and no change) when
   * the slot holds another value. The full generation is checked too, so a key older by a multiple
   * of 2^14 generations changes nothing either (short of a reuse between the check and the swap).
   */
  private addTagged(base: number, field: number, generation: number, delta: number): boolean {
    const meta = this.meta;
    const index = base + field;
    let word = Atomics.load(meta, index);
    for (;;) {
      if (!sameTag(word, generation) || meta[base + S_GENERATION] !== generation) return false;
      const seen = Atomics.compareExchange(
        meta,
        index,
        word,
        (word & TAG_MASK) | ((countOf(word) + delta) & COUNT_MASK),
      );
      if (seen === word) return true;
      word = seen;
    }
  }

  /** Held: a hold count above 0 whose lease has not lapsed. */
  private isHeld(base: number, slot: number, generation: number, now: number): boolean {
    const word = Atomics.load(this.meta, base + S_HOLD);
    return sameTag(word, generation) && countOf(word) > 0 && now < this.times[T_SLOTS + 2 * slot + 1]!;
  }

  private inFlight(base: number, generation: number): boolean {
    const word = Atomics.load(this.meta, base + S_FLIGHT);
    return sameTag(word, generation) && countOf(word) > 0;
  }

  // ---- expiry and eviction (under the lock) --------------------------------------------------------

  /**
   * The expiry timer's pass, from the thread that opened the store: frees retired blocks and
   * expired values nobody holds, when there are any. Never waits for the lock: a busy lock skips
   * this pass.
   */
  tick(owner: number): void {
    const meta = this.meta;
    const retired = Atomics.load(meta, H_RETIRED) !== NIL;
    const now = Date.now();
    const due =
      Atomics.load(meta, H_TTL_VALUES) > 0 &&
      (Atomics.load(meta, H_REAP_DUE) !== 0 || now >= this.times[T_NEXT_EXPIRY]!);
    if ((!retired && !due) || !this.tryLock(owner)) return;
    try {
      this.drain();
      if (due) this.reap(now);
    } finally {
      this.unlock(owner);
    }
  }

  /** Frees every expired value nobody holds; notes when the next pass is worth running. */
  private reap(now: number): void {
    const meta = this.meta;
    Atomics.store(meta, H_REAP_DUE, 0);
    let next = Number.POSITIVE_INFINITY;
    let slot = meta[H_LISTS + TTL]!;
    while (slot !== NIL) {
      const following = meta[this.lists + LIST_WORDS * slot + TTL + 1]!;
      const expiresAt = this.times[T_SLOTS + 2 * slot]!;
      if (expiresAt > now) {
        if (expiresAt < next) next = expiresAt;
      } else if (!this.tryFree(slot, now, FREED_EXPIRED)) {
        const state = Atomics.load(meta, this.slotBase(slot) + S_STATE) & STATE_MASK;
        // Held: look again when the lease lapses (a release that ends the last hold asks sooner).
        // Not yet published: look again on the next pass.
        const again = state === LIVE ? this.times[T_SLOTS + 2 * slot + 1]! : state === RESERVED ? now : next;
        if (again < next) next = again;
      }
      slot = following;
    }
    this.times[T_NEXT_EXPIRY] = next;
  }

  /**
   * Frees the oldest values that are read and not held until the reservation of `units` fits and,
   * when the store is above its high-water mark, until it is at its low-water mark. Returns the
   * block, or -1.
   */
  private evict(units: number, now: number): number {
    const meta = this.meta;
    let slot = meta[H_LISTS + ORDER]!;
    if (meta[H_USED_UNITS]! + units > this.highUnits) {
      while (slot !== NIL && meta[H_USED_UNITS]! + units > this.lowUnits) {
        const following = meta[this.lists + LIST_WORDS * slot + ORDER + 1]!;
        this.tryFree(slot, now, FREED_EVICTED);
        slot = following;
      }
    }
    let block = this.allocate(units);
    while (block === NIL && slot !== NIL) {
      const following = meta[this.lists + LIST_WORDS * slot + ORDER + 1]!;
      if (this.tryFree(slot, now, FREED_EVICTED)) block = this.allocate(units);
      slot = following;
    }
    // A delete that raced with the walk freed nothing yet: its block is on the retired stack.
    if (block === NIL && this.drain() > 0) block = this.allocate(units);
    return block;
  }

  /**
   * Frees a live value that is not held — for eviction also read and with no message in flight.
   * The slot is claimed first and the holds checked after (see {@link hold}); a value found held
   * is put back untouched.
   */
  private tryFree(slot: number, now: number, reason: number): boolean {
    const meta = this.meta;
    const base = this.slotBase(slot);
    const word = Atomics.load(meta, base + S_STATE);
    if ((word & STATE_MASK) !== LIVE) return false;
    const generation = word >>> STATE_BITS;
    const evicting = reason === FREED_EVICTED;
    if (this.kept(base, slot, generation, now, evicting)) return false;
    const claimed = (generation << STATE_BITS) | CLAIMED;
    // Fails when a delete retired it meanwhile: the drain frees it.
    if (Atomics.compareExchange(meta, base + S_STATE, word, claimed) !== word) return false;
    if (this.kept(base, slot, generation, now, evicting)) {
      Atomics.store(meta, base + S_STATE, word);
      return false;
    }
    Atomics.store(meta, base + S_MARK, (generation << 2) | reason);
    Atomics.store(meta, base + S_STATE, ((generation + 1) & GENERATION_MASK) << STATE_BITS);
    this.freeSlot(slot);
    return true;
  }

  /** Held — or, for eviction, also unread or in a link. */
  private kept(base: number, slot: number, generation: number, now: number, evicting: boolean): boolean {
    return (
      this.isHeld(base, slot, generation, now) ||
      (evicting &&
        (Atomics.load(this.meta, base + S_MARK) !== ((generation << 2) | READ_MARK) || this.inFlight(base, generation)))
    );
  }

  /** With eviction on, why nothing could be evicted: values held (or being written), and unread. */
  private census(now: number): { held: number; unread: number } {
    const meta = this.meta;
    let held = 0;
    let unread = 0;
    for (let slot = meta[H_LISTS + ORDER]!; slot !== NIL; slot = meta[this.lists + LIST_WORDS * slot + ORDER + 1]!) {
      const base = this.slotBase(slot);
      const word = Atomics.load(meta, base + S_STATE);
      const generation = word >>> STATE_BITS;
      const state = word & STATE_MASK;
      if (
        state === RESERVED ||
        (state === LIVE && (this.isHeld(base, slot, generation, now) || this.inFlight(base, generation)))
      ) {
        held++;
      } else if (state === LIVE && Atomics.load(meta, base + S_MARK) !== ((generation << 2) | READ_MARK)) {
        unread++;
      }
    }
    return { held, unread };
  }

  // ---- freeing (under the lock) --------------------------------------------------------------------

  /**
   * Takes the whole retired stack and frees its blocks and slots. Returns how many. The chain being
   * freed is kept in the header so recovery finds it if this thread dies half-way.
   */
  private drain(): number {
    const meta = this.meta;
    if (Atomics.load(meta, H_RETIRED) === NIL) return 0;
    let slot = Atomics.exchange(meta, H_RETIRED, NIL);
    meta[H_DRAINING] = slot;
    let freed = 0;
    while (slot !== NIL) {
      const base = this.slotBase(slot);
      const next = meta[base + S_LINK]!;
      const word = Atomics.load(meta, base + S_STATE);
      // Only RETIRED slots: recovery frees one its dead deleter never pushed (and a client wrongly
      // declared dead may push it yet).
      if ((word & STATE_MASK) === RETIRED) {
        Atomics.store(meta, base + S_STATE, this.freedWord(slot));
        this.freeSlot(slot);
        freed++;
      }
      slot = next;
      meta[H_DRAINING] = slot;
    }
    return freed;
  }

  /** Frees a RESERVED slot: bumps the generation first (readers see the key go stale), then frees. */
  private releaseSlot(slot: number, word: number): void {
    const next = ((word >>> STATE_BITS) + 1) & GENERATION_MASK;
    Atomics.store(this.meta, this.slotBase(slot) + S_STATE, next << STATE_BITS);
    this.freeSlot(slot);
  }

  /** Frees the block of a slot whose state word is already FREE, and returns the slot to the ring. */
  private freeSlot(slot: number): void {
    const meta = this.meta;
    const base = this.slotBase(slot);
    const units = meta[base + S_SIZE]!;
    // Size 0: a retired slot whose block recovery found overlapping another (see rebuild).
    if (units > 0) {
      this.freeBlock(meta[base + S_OFFSET]!);
      meta[H_USED_UNITS]! -= units;
      meta[H_OBJECTS]! -= 1;
    }
    if (this.times[T_SLOTS + 2 * slot]! > 0) {
      this.unlink(TTL, slot);
      Atomics.sub(meta, H_TTL_VALUES, 1);
    }
    if (this.evictOldest) this.unlink(ORDER, slot);
    this.pushSlot(slot);
  }

  private popSlot(): number {
    const meta = this.meta;
    const head = meta[H_SLOT_HEAD]!;
    const slot = meta[this.fifo + head]!;
    meta[H_SLOT_HEAD] = head + 1 === this.slotCount ? 0 : head + 1;
    meta[H_SLOT_FREE]! -= 1;
    return slot;
  }

  // A FIFO rather than a stack: a freed slot is reused as late as possible, so its 29-bit
  // generation wraps (and an ancient key could alias) only after 2^29 × slotCount reuses.
  private pushSlot(slot: number): void {
    const meta = this.meta;
    let tail = meta[H_SLOT_HEAD]! + meta[H_SLOT_FREE]!;
    if (tail >= this.slotCount) tail -= this.slotCount;
    meta[this.fifo + tail] = slot;
    meta[H_SLOT_FREE]! += 1;
  }

  // ---- lists through the slots (under the lock) ----------------------------------------------------

  private linkTail(list: number, slot: number): void {
    const meta = this.meta;
    const node = this.lists + LIST_WORDS * slot + list;
    const tail = meta[H_LISTS + list + 1]!;
    meta[node] = tail;
    meta[node + 1] = NIL;
    if (tail === NIL) meta[H_LISTS + list] = slot;
    else meta[this.lists + LIST_WORDS * tail + list + 1] = slot;
    meta[H_LISTS + list + 1] = slot;
  }

  private unlink(list: number, slot: number): void {
    const meta = this.meta;
    const node = this.lists + LIST_WORDS * slot + list;
    const previous = meta[node]!;
    const next = meta[node + 1]!;
    if (previous === NIL) meta[H_LISTS + list] = next;
    else meta[this.lists + LIST_WORDS * previous + list + 1] = next;
    if (next === NIL) meta[H_LISTS + list + 1] = previous;
    else meta[this.lists + LIST_WORDS * next + list] = previous;
  }

  // ---- blocks (all under the lock) -------------------------------------------------------------

  private setTags(block: number, units: number, used: number): void {
    const words = this.words;
    words[2 * block] = units;
    words[2 * block + 1] = used;
    const footer = 2 * (block + units - 1);
    words[footer] = units;
    words[footer + 1] = used;
  }

  /** Writes a free block's tags and pushes it on its class list. */
  insertFree(block: number, units: number): void {
    const words = this.words;
    const meta = this.meta;
    this.setTags(block, units, 0);
    const sizeClassIndex = sizeClass(units);
    const head = meta[H_HEADS + sizeClassIndex]!;
    words[2 * block + 2] = head;
    words[2 * block + 3] = NIL;
    if (head !== NIL) words[2 * head + 3] = block;
    meta[H_HEADS + sizeClassIndex] = block;
    meta[H_BITMAP + (sizeClassIndex >>> 5)]! |= 1 << (sizeClassIndex & 31);
  }

  private removeFree(block: number, units: number): void {
    const words = this.words;
    const meta = this.meta;
    const next = words[2 * block + 2]!;
    const previous = words[2 * block + 3]!;
    if (previous !== NIL) {
      words[2 * previous + 2] = next;
    } else {
      const sizeClassIndex = sizeClass(units);
      meta[H_HEADS + sizeClassIndex] = next;
      if (next === NIL) meta[H_BITMAP + (sizeClassIndex >>> 5)]! &= ~(1 << (sizeClassIndex & 31));
    }
    if (next !== NIL) words[2 * next + 3] = previous;
  }

  /** First non-empty class ≥ `from`, or -1. */
  private firstClassFrom(from: number): number {
    const meta = this.meta;
    let index = from >>> 5;
    if (index >= BITMAP_WORDS) return NIL;
    let bits = meta[H_BITMAP + index]! & (-1 << (from & 31));
    for (;;) {
      if (bits !== 0) return (index << 5) + lowestBit(bits);
      index++;
      if (index === BITMAP_WORDS) return NIL;
      bits = meta[H_BITMAP + index]!;
    }
  }

  private findFree(units: number): number {
    let start = units;
    if (units >= 16) {
      const log = 31 - Math.clz32(units);
      start = sizeClass(units + (1 << (log - 3)) - 1);
    }
    const found = this.firstClassFrom(start);
    if (found !== NIL) return this.meta[H_HEADS + found]!;
    // Nothing in a class that surely fits: fall back to first fit within the request's own class,
    // so a request never fails while any free block can hold it.
    const own = sizeClass(units);
    if (own === start) return NIL;
    for (let block = this.meta[H_HEADS + own]!; block !== NIL; block = this.words[2 * block + 2]!) {
      if (this.words[2 * block]! >= units) return block;
    }
    return NIL;
  }

  /** A block of `units` when a slot and the space are free, else -1. */
  private allocate(units: number): number {
    if (this.meta[H_SLOT_FREE] === 0 || units > this.totalUnits) return NIL;
    const block = this.findFree(units);
    if (block === NIL) return NIL;
    let size = this.words[2 * block]!;
    this.removeFree(block, size);
    if (size - units >= MIN_BLOCK_UNITS) {
      this.insertFree(block + units, size - units);
      size = units;
    }
    this.setTags(block, size, 1);
    this.meta[H_USED_UNITS]! += size;
    return block;
  }

  /** Frees a used block and merges it with free neighbours (boundary tags make both O(1)). */
  private freeBlock(block: number): void {
    const words = this.words;
    let start = block;
    let size = words[2 * block]!;
    const next = block + size;
    if (next < this.totalUnits && words[2 * next + 1] === 0) {
      const nextSize = words[2 * next]!;
      this.removeFree(next, nextSize);
      size += nextSize;
    }
    if (block > 0 && words[2 * (block - 1) + 1] === 0) {
      const previousSize = words[2 * (block - 1)]!;
      start = block - previousSize;
      this.removeFree(start, previousSize);
      size += previousSize;
    }
    this.insertFree(start, size);
  }

  private largestFreeUnits(): number {
    const meta = this.meta;
    for (let word = BITMAP_WORDS - 1; word >= 0; word--) {
      const bits = meta[H_BITMAP + word]!;
      if (bits === 0) continue;
      const sizeClassIndex = (word << 5) + 31 - Math.clz32(bits);
      let largest = 0;
      for (let block = meta[H_HEADS + sizeClassIndex]!; block !== NIL; block = this.words[2 * block + 2]!) {
        largest = Math.max(largest, this.words[2 * block]!);
      }
      return largest;
    }
    return 0;
  }

  private fullReport(reason: FullReport['reason'], askedUnits: number): FullReport {
    const report: FullReport = {
      reason,
      askedUnits,
      freeUnits: this.totalUnits - this.meta[H_USED_UNITS]!,
      largestFreeUnits: this.largestFreeUnits(),
      capacityUnits: this.totalUnits,
      maxObjects: this.slotCount,
    };
    if (this.evictOldest) Object.assign(report, this.census(Date.now()));
    return report;
  }

  // ---- recovery ----------------------------------------------------------------------------------

  /**
   * Cleans up after a client whose worker died. If it held the allocator lock, the allocator may be
   * half-updated, so the lock is taken over and the free lists are rebuilt from the slot table
   * (the slot table is the truth: a block is in use exactly when a non-free slot points at it).
   * Either way, reservations the dead client never published are freed, and so are values it died
   * deleting (marked RETIRED by it but not on the retired stack: only it would have pushed them).
   * Its holds lapse by themselves.
   */
  recover(deadOwner: number, owner: number, timeoutMs: number): RecoveryReport {
    const meta = this.meta;
    const lockReleased = deadOwner !== 0 && Atomics.compareExchange(meta, H_LOCK, deadOwner, owner) === deadOwner;
    if (!lockReleased) this.lock(owner, timeoutMs);
    let reservationsFreed = 0;
    let deletesFinished = 0;
    try {
      // The chain a dead lock holder was draining is off the stack but not yet freed.
      if (lockReleased) this.finishDrain();
      const retiredByDead = Arena.retiredWord(deadOwner);
      let stacked: Uint8Array | undefined;
      for (let slot = 0; slot < this.slotCount; slot++) {
        const base = this.slotBase(slot);
        const word = Atomics.load(meta, base + S_STATE);
        if ((word & STATE_MASK) === RESERVED && meta[base + S_OWNER] === deadOwner) {
          reservationsFreed++;
          if (lockReleased) Atomics.store(meta, base + S_STATE, this.freedWord(slot));
          else this.releaseSlot(slot, word);
        } else if ((word & STATE_MASK) === CACHED && meta[base + S_OWNER] === deadOwner) {
          // Reserved ahead by the dead client and never used: freed, not counted (it held nothing).
          if (lockReleased) Atomics.store(meta, base + S_STATE, this.freedWord(slot));
          else this.uncacheSlot(slot, word);
        } else if (word === retiredByDead) {
          stacked ??= this.stackedSlots();
          if (stacked[slot] === 1) continue;
          deletesFinished++;
          Atomics.store(meta, base + S_STATE, this.freedWord(slot));
          if (!lockReleased) this.freeSlot(slot);
        }
      }
      if (lockReleased) this.rebuild();
      // Its entry in the table of caches: counts and all (it may have died between a take and its count).
      const entry = this.entryOf(deadOwner);
      if (entry !== NIL) this.releaseEntry(entry, deadOwner);
    } finally {
      this.unlock(owner);
    }
    return { lockReleased, reservationsFreed, deletesFinished };
  }

  /** Under the lock: marks every slot on the retired stack (pushes after this are by live clients). */
  private stackedSlots(): Uint8Array {
    const stacked = new Uint8Array(this.slotCount);
    let slot = Atomics.load(this.meta, H_RETIRED);
    for (let steps = 0; slot >= 0 && slot < this.slotCount && steps < this.slotCount; steps++) {
      stacked[slot] = 1;
      slot = this.meta[this.slotBase(slot) + S_LINK]!;
    }
    return stacked;
  }

  /** Under the lock, after its drainer died: marks the rest of the chain it was draining FREE (rebuild frees the blocks). */
  private finishDrain(): void {
    const meta = this.meta;
    let slot = meta[H_DRAINING]!;
    for (let steps = 0; slot >= 0 && slot < this.slotCount && steps < this.slotCount; steps++) {
      const base = this.slotBase(slot);
      if ((Atomics.load(meta, base + S_STATE) & STATE_MASK) === RETIRED) {
        Atomics.store(meta, base + S_STATE, this.freedWord(slot));
      }
      slot = meta[base + S_LINK]!;
    }
    meta[H_DRAINING] = NIL;
  }

  /**
   * Under the lock: rewrites every tag, free list, counter, list and the slot ring from the slot
   * table. A claim the dead owner left is undone (the value was live). RETIRED slots keep their
   * blocks: they are on the retired stack, or about to be pushed by a delete running right now, and
   * a drain frees them.
   */
  private rebuild(): void {
    const meta = this.meta;
    const blocks: { offset: number; units: number; slot: number }[] = [];
    for (let slot = 0; slot < this.slotCount; slot++) {
      const base = this.slotBase(slot);
      const word = Atomics.load(meta, base + S_STATE);
      if ((word & STATE_MASK) === CLAIMED) Atomics.store(meta, base + S_STATE, (word & ~STATE_MASK) | LIVE);
      if ((word & STATE_MASK) === FREE) continue;
      const offset = meta[base + S_OFFSET]!;
      const units = meta[base + S_SIZE]!;
      if (offset >= 0 && units >= MIN_BLOCK_UNITS && offset + units <= this.totalUnits) {
        blocks.push({ offset, units, slot });
      } else {
        // A slot that was half written when its owner died: it never held a readable value.
        if ((word & STATE_MASK) === CACHED) this.forgetCached(meta[base + S_OWNER]!, meta[base + S_SIZE]!);
        Atomics.store(meta, base + S_STATE, this.freedWord(slot));
      }
    }
    blocks.sort((a, b) => a.offset - b.offset);
    meta.fill(0, H_BITMAP, H_BITMAP + BITMAP_WORDS);
    meta.fill(NIL, H_HEADS, H_HEADS + CLASS_COUNT);
    let cursor = 0;
    let used = 0;
    let objects = 0;
    for (const { offset, units, slot } of blocks) {
      if (offset < cursor) {
        const base = this.slotBase(slot);
        // Its block is not its own. A RETIRED one stays RETIRED (its delete may still be pushing
        // it) with size 0, which the drain frees without a block.
        const state = Atomics.load(meta, base + S_STATE) & STATE_MASK;
        if (state === RETIRED) meta[base + S_SIZE] = 0;
        else {
          if (state === CACHED) this.forgetCached(meta[base + S_OWNER]!, units);
          Atomics.store(meta, base + S_STATE, this.freedWord(slot));
        }
        continue;
      }
      if (offset > cursor) this.insertGap(cursor, offset - cursor);
      this.setTags(offset, units, 1);
      used += units;
      objects++;
      cursor = offset + units;
    }
    if (cursor < this.totalUnits) this.insertGap(cursor, this.totalUnits - cursor);
    meta[H_USED_UNITS] = used;
    meta[H_OBJECTS] = objects;
    meta[H_SLOT_HEAD] = 0;
    meta[H_SLOT_FREE] = 0;
    for (let slot = 0; slot < this.slotCount; slot++) {
      if ((Atomics.load(meta, this.slotBase(slot) + S_STATE) & STATE_MASK) === FREE) this.pushSlot(slot);
    }
    this.rebuildLists();
  }

  /** Under the lock: the put-order list (in its old order as far as it can be followed) and the TTL list. */
  private rebuildLists(): void {
    const meta = this.meta;
    const inUse = (slot: number) => (Atomics.load(meta, this.slotBase(slot) + S_STATE) & STATE_MASK) !== FREE;
    const order: number[] = [];
    if (this.evictOldest) {
      const seen = new Uint8Array(this.slotCount);
      let slot = meta[H_LISTS + ORDER]!;
      while (slot >= 0 && slot < this.slotCount && seen[slot] === 0) {
        seen[slot] = 1;
        if (inUse(slot)) order.push(slot);
        slot = meta[this.lists + LIST_WORDS * slot + ORDER + 1]!;
      }
      for (let other = 0; other < this.slotCount; other++) if (seen[other] === 0 && inUse(other)) order.push(other);
    }
    meta.fill(NIL, H_LISTS, H_LISTS + 4);
    for (const slot of order) this.linkTail(ORDER, slot);
    let ttlValues = 0;
    for (let slot = 0; slot < this.slotCount; slot++) {
      if (!inUse(slot) || !(this.times[T_SLOTS + 2 * slot]! > 0)) continue;
      this.linkTail(TTL, slot);
      ttlValues++;
    }
    meta[H_TTL_VALUES] = ttlValues;
    this.times[T_NEXT_EXPIRY] = 0;
  }

  private insertGap(offset: number, units: number): void {
    if (units >= MIN_BLOCK_UNITS) this.insertFree(offset, units);
    // Gaps are whole freed blocks, so never this small; if one is, fence it off as used rather
    // than corrupt the free lists (it is lost until the store closes).
    else this.setTags(offset, units, 1);
  }

  // ---- consistency check (tests) -----------------------------------------------------------------

  /**
   * Walks every block, free list, slot list and the retired stack and returns the problems found
   * (empty when consistent). Takes the lock; deletes do not, so run it when none is under way.
   * Meant for tests and debugging.
   */
  check(owner: number, timeoutMs: number): string[] {
    const problems: string[] = [];
    const words = this.words;
    const meta = this.meta;
    this.lock(owner, timeoutMs);
    try {
      let block = 0;
      let used = 0;
      let usedBlocks = 0;
      let freeBlocks = 0;
      let previousFree = false;
      while (block < this.totalUnits) {
        const units = words[2 * block]!;
        const flag = words[2 * block + 1]!;
        if (units < 1 || block + units > this.totalUnits) {
          problems.push(`block at unit ${block} has a bad size ${units}`);
          break;
        }
        const footer = 2 * (block + units - 1);
        if (words[footer] !== units || words[footer + 1] !== flag) {
          problems.push(`block at unit ${block}: footer does not match header`);
        }
        if (flag === 1) {
          used += units;
          usedBlocks++;
          previousFree = false;
        } else {
          if (previousFree) problems.push(`free block at unit ${block} was not merged with its free neighbour`);
          freeBlocks++;
          previousFree = true;
        }
        block += units;
      }
      let listed = 0;
      for (let sizeClassIndex = 0; sizeClassIndex < CLASS_COUNT; sizeClassIndex++) {
        const head = meta[H_HEADS + sizeClassIndex]!;
        const bit = (meta[H_BITMAP + (sizeClassIndex >>> 5)]! >>> (sizeClassIndex & 31)) & 1;
        if ((head !== NIL) !== (bit === 1)) problems.push(`class ${sizeClassIndex}: bitmap and list disagree`);
        let previous = NIL;
        for (let free = head; free !== NIL; free = words[2 * free + 2]!) {
          if (words[2 * free + 1] !== 0) problems.push(`used block at unit ${free} is on free list ${sizeClassIndex}`);
          if (sizeClass(words[2 * free]!) !== sizeClassIndex)
            problems.push(`block at unit ${free} is on the wrong list`);
          if (words[2 * free + 3] !== previous) problems.push(`block at unit ${free} has a bad back link`);
          previous = free;
          if (++listed > freeBlocks) {
            problems.push('free lists are longer than the number of free blocks (a cycle?)');
            return problems;
          }
        }
      }
      if (listed !== freeBlocks) problems.push(`${freeBlocks} free blocks but ${listed} on the free lists`);
      // Retired blocks stay tagged used, and counted, until a drain frees them.
      if (used !== meta[H_USED_UNITS]) problems.push(`used units: counter ${meta[H_USED_UNITS]}, blocks ${used}`);
      let taken = 0;
      let retired = 0;
      let withTtl = 0;
      let cached = 0;
      let cachedUnits = 0;
      for (let slot = 0; slot < this.slotCount; slot++) {
        const state = Atomics.load(meta, this.slotBase(slot) + S_STATE) & STATE_MASK;
        if (state === CLAIMED) problems.push(`slot ${slot} is claimed outside the lock`);
        if (state === FREE) continue;
        taken++;
        if (state === RETIRED) retired++;
        if (state === CACHED) {
          cached++;
          cachedUnits += meta[this.slotBase(slot) + S_SIZE]!;
        }
        if (this.times[T_SLOTS + 2 * slot]! > 0) withTtl++;
      }
      if (taken !== usedBlocks) problems.push(`${taken} slots in use but ${usedBlocks} used blocks`);
      if (taken !== meta[H_OBJECTS]) problems.push(`objects: counter ${meta[H_OBJECTS]}, slots ${taken}`);
      if (taken + meta[H_SLOT_FREE]! !== this.slotCount) problems.push('free-slot ring count is wrong');
      let stacked = 0;
      for (let slot = Atomics.load(meta, H_RETIRED); slot !== NIL; slot = meta[this.slotBase(slot) + S_LINK]!) {
        if ((Atomics.load(meta, this.slotBase(slot) + S_STATE) & STATE_MASK) !== RETIRED) {
          problems.push(`slot ${slot} is on the retired stack but not retired`);
        }
        if (++stacked > retired) break;
      }
      if (stacked !== retired) problems.push(`${retired} slots retired but ${stacked} on the retired stack`);
      if (meta[H_DRAINING] !== NIL) problems.push('a drain was left unfinished');
      const counted = this.cachedTotals();
      if (counted.objects !== cached || counted.units !== cachedUnits) {
        problems.push(
          `${cached} slots (${cachedUnits} units) cached, but the caches count ${counted.objects} (${counted.units})`,
        );
      }
      if (withTtl !== meta[H_TTL_VALUES])
        problems.push(`values with a TTL: counter ${meta[H_TTL_VALUES]}, slots ${withTtl}`);
      this.checkList(TTL, withTtl, problems);
      if (this.evictOldest) this.checkList(ORDER, taken, problems);
    } finally {
      this.unlock(owner);
    }
    return problems;
  }

  private checkList(list: number, expected: number, problems: string[]): void {
    const meta = this.meta;
    const name = list === ORDER ? 'put-order list' : 'TTL list';
    let count = 0;
    let previous = NIL;
    for (let slot = meta[H_LISTS + list]!; slot !== NIL; slot = meta[this.lists + LIST_WORDS * slot + list + 1]!) {
      if ((Atomics.load(meta, this.slotBase(slot) + S_STATE) & STATE_MASK) === FREE) {
        problems.push(`${name} holds free slot ${slot}`);
      }
      if (meta[this.lists + LIST_WORDS * slot + list] !== previous)
        problems.push(`${name}: bad back link at slot ${slot}`);
      previous = slot;
      if (++count > expected) break;
    }
    if (meta[H_LISTS + list + 1] !== previous) problems.push(`${name}: tail is not its last slot`);
    if (count !== expected) problems.push(`${name}: ${count} slots listed, ${expected} expected`);
  }
}
