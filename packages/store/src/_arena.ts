/**
 * The shared-memory arena behind the memory store (package-private): a block allocator with
 * boundary tags and segregated free lists, a slot table that maps keys to blocks, and a mutex —
 * all in SharedArrayBuffers, so every worker that attaches sees the same store.
 *
 * Memory:
 * - `meta` (Int32 words): a header (lock, counters, free-list heads and their bitmap), the slot
 *   table (4 words per slot: state, owner, block offset, block size) and a FIFO ring of free slots.
 * - `arena`: the blocks, addressed in 8-byte units so every typed-array kind can be viewed in
 *   place and a 32-bit offset reaches 16 GiB. Each block starts and ends with a tag unit
 *   (size in units, used flag); a free block keeps its free-list links in its second unit.
 *
 * Only allocator changes take the lock. Reads are lock-free: a slot's state word holds its
 * generation and state, a block is never freed without the word changing first, so a reader loads
 * the word, reads the block, and checks the word again (a seqlock, with the writer side under the
 * allocator lock).
 * @module
 */
/** Bytes per allocation unit. */
export const UNIT = 8;
/** Smallest block: header tag, two value-header units, footer tag. */
export const MIN_BLOCK_UNITS = 4;
/** Largest arena: block offsets and sizes are positive Int32 numbers of units. */
export const MAX_ARENA_BYTES = 0x7fffffff * UNIT;
/** Format version, checked when a worker attaches. */
const MAGIC = 0x494d5301;

// Header words of `meta`.
const H_MAGIC = 0;
const H_STATE = 1;
const H_LOCK = 2;
const H_WAITERS = 3;
const H_NEXT_OWNER = 4;
const H_OBJECTS = 5;
const H_USED_UNITS = 6;
const H_TOTAL_UNITS = 7;
const H_SLOT_COUNT = 8;
const H_SLOT_HEAD = 9;
const H_SLOT_FREE = 10;
const H_BITMAP = 16;
const BITMAP_WORDS = 8;
const H_HEADS = H_BITMAP + BITMAP_WORDS;
// Sizes below 16 units have a class each; above, 8 classes per power of two (TLSF-style), so a
// request rounded up to the next class fits any block of that class without a search.
const CLASS_COUNT = 240;
const HEADER_WORDS = H_HEADS + CLASS_COUNT;

const SLOT_WORDS = 4;
const S_STATE = 0;
const S_OWNER = 1;
const S_OFFSET = 2;
const S_SIZE = 3;

/** Slot states, in the low two bits of the state word; the generation is in the other 30. */
export const FREE = 0;
export const RESERVED = 1;
export const LIVE = 2;
export const GENERATION_MASK = 0x3fffffff;

const STATE_OPEN = 1;
const STATE_CLOSED = 2;

const NIL = -1;
const SPIN_LIMIT = 64;

/** The two buffers that make up a store, as they travel in the descriptor. */
export interface ArenaBuffers {
  meta: SharedArrayBuffer;
  arena: SharedArrayBuffer;
}

/** What {@link Arena.recover} did. */
export interface RecoveryReport {
  /** True when the dead owner held the allocator lock (the allocator was then rebuilt). */
  lockReleased: boolean;
  /** Values the dead owner had reserved but not yet published, now freed. */
  reservationsFreed: number;
}

/** Why a reservation failed, for the error message the client builds. */
export interface FullReport {
  reason: 'space' | 'objects';
  askedUnits: number;
  freeUnits: number;
  largestFreeUnits: number;
  capacityUnits: number;
  maxObjects: number;
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

/** Buffers for a new store: `totalUnits` of arena and `slotCount` slots. */
export function createArenaBuffers(totalUnits: number, slotCount: number): ArenaBuffers {
  const meta = new SharedArrayBuffer((HEADER_WORDS + slotCount * (SLOT_WORDS + 1)) * 4);
  const arena = new SharedArrayBuffer(totalUnits * UNIT);
  const words = new Int32Array(meta);
  words[H_STATE] = STATE_OPEN;
  words[H_TOTAL_UNITS] = totalUnits;
  words[H_SLOT_COUNT] = slotCount;
  words[H_SLOT_FREE] = slotCount;
  words.fill(NIL, H_HEADS, H_HEADS + CLASS_COUNT);
  const fifo = HEADER_WORDS + slotCount * SLOT_WORDS;
  for (let slot = 0; slot < slotCount; slot++) words[fifo + slot] = slot;
  const created = new Arena({ meta, arena });
  created.insertFree(0, totalUnits);
  // Written last: a half-built store fails the magic check instead of looking empty.
  Atomics.store(words, H_MAGIC, MAGIC);
  return { meta, arena };
}

/** True when `buffers` look like the buffers of a memory store of this format. */
export function isArenaBuffers(value: { readonly [key: string]: unknown }): boolean {
  return (
    value.meta instanceof SharedArrayBuffer &&
    value.arena instanceof SharedArrayBuffer &&
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
  readonly totalUnits: number;
  readonly slotCount: number;
  private readonly fifo: number;

  constructor(buffers: ArenaBuffers) {
    this.buffer = buffers.arena;
    this.meta = new Int32Array(buffers.meta);
    this.words = new Int32Array(buffers.arena);
    this.totalUnits = this.meta[H_TOTAL_UNITS]!;
    this.slotCount = this.meta[H_SLOT_COUNT]!;
    this.fifo = HEADER_WORDS + this.slotCount * SLOT_WORDS;
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

  usedUnits(): number {
    return Atomics.load(this.meta, H_USED_UNITS);
  }

  objects(): number {
    return Atomics.load(this.meta, H_OBJECTS);
  }

  // ---- lock ------------------------------------------------------------------------------------

  /**
   * Takes the allocator lock for `owner`: a compare-and-swap, a short spin (critical sections are a
   * few hundred instructions), then `Atomics.wait` so a blocked thread uses no CPU. Throws after
   * `timeoutMs` naming the holder, which then most likely died inside the lock.
   */
  lock(owner: number, timeoutMs: number): void {
    const meta = this.meta;
    if (Atomics.compareExchange(meta, H_LOCK, 0, owner) === 0) return;
    for (let spin = 0; spin < SPIN_LIMIT; spin++) {
      if (Atomics.load(meta, H_LOCK) === 0 && Atomics.compareExchange(meta, H_LOCK, 0, owner) === 0) return;
    }
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
    return (generation << 2) | LIVE | 0;
  }

  /**
   * Reserves a block of `units` and a slot for `owner`. Returns the slot; the block offset is in
   * the slot table. The value is invisible to readers until {@link publish}. Calls `onFull` (which
   * throws) when no block or slot is free.
   */
  reserve(owner: number, units: number, timeoutMs: number, onFull: FullHandler): number {
    const meta = this.meta;
    this.lock(owner, timeoutMs);
    let full: FullReport | undefined;
    let slot = NIL;
    try {
      if (meta[H_SLOT_FREE] === 0) {
        full = this.fullReport('objects', units);
      } else {
        const block = units <= this.totalUnits ? this.allocBlock(units) : NIL;
        if (block === NIL) {
          full = this.fullReport('space', units);
        } else {
          slot = this.popSlot();
          const base = this.slotBase(slot);
          meta[base + S_OWNER] = owner;
          meta[base + S_OFFSET] = block;
          meta[base + S_SIZE] = this.words[2 * block]!;
          const generation = Atomics.load(meta, base + S_STATE) >>> 2;
          Atomics.store(meta, base + S_STATE, (generation << 2) | RESERVED);
          Atomics.add(meta, H_OBJECTS, 1);
        }
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

  generationOf(slot: number): number {
    return Atomics.load(this.meta, this.slotBase(slot) + S_STATE) >>> 2;
  }

  /** Makes a reserved value visible. False when recovery freed the reservation meanwhile. */
  publish(slot: number): boolean {
    const base = this.slotBase(slot) + S_STATE;
    const word = Atomics.load(this.meta, base);
    if ((word & 3) !== RESERVED) return false;
    return Atomics.compareExchange(this.meta, base, word, (word & ~3) | LIVE) === word;
  }

  /** Frees a reservation that will not be published (the copy into it failed). */
  abandon(owner: number, slot: number, timeoutMs: number): void {
    this.lock(owner, timeoutMs);
    try {
      const base = this.slotBase(slot);
      const word = Atomics.load(this.meta, base + S_STATE);
      if ((word & 3) === RESERVED && this.meta[base + S_OWNER] === owner) this.releaseSlot(slot, word);
    } finally {
      this.unlock(owner);
    }
  }

  /** Lock-free: the block of a live value, or -1 when the key is stale. */
  lookup(slot: number, generation: number): number {
    const base = this.slotBase(slot);
    if (Atomics.load(this.meta, base + S_STATE) !== Arena.liveWord(generation)) return NIL;
    return Atomics.load(this.meta, base + S_OFFSET);
  }

  /** Lock-free: true while the value of `slot`/`generation` is live (the seqlock's second read). */
  isLive(slot: number, generation: number): boolean {
    return Atomics.load(this.meta, this.slotBase(slot) + S_STATE) === Arena.liveWord(generation);
  }

  /** Deletes a live value. False when the key is stale. */
  delete(owner: number, slot: number, generation: number, timeoutMs: number): boolean {
    this.lock(owner, timeoutMs);
    try {
      const word = Atomics.load(this.meta, this.slotBase(slot) + S_STATE);
      if (word !== Arena.liveWord(generation)) return false;
      this.releaseSlot(slot, word);
      return true;
    } finally {
      this.unlock(owner);
    }
  }

  /** Under the lock: bumps the generation first (readers see the key go stale), then frees. */
  private releaseSlot(slot: number, word: number): void {
    const meta = this.meta;
    const base = this.slotBase(slot);
    const next = ((word >>> 2) + 1) & GENERATION_MASK;
    Atomics.store(meta, base + S_STATE, (next << 2) | FREE);
    this.freeBlock(meta[base + S_OFFSET]!);
    this.pushSlot(slot);
    Atomics.sub(meta, H_OBJECTS, 1);
  }

  private popSlot(): number {
    const meta = this.meta;
    const head = meta[H_SLOT_HEAD]!;
    const slot = meta[this.fifo + head]!;
    meta[H_SLOT_HEAD] = head + 1 === this.slotCount ? 0 : head + 1;
    meta[H_SLOT_FREE]! -= 1;
    return slot;
  }

  // A FIFO rather than a stack: a freed slot is reused as late as possible, so its 30-bit
  // generation wraps (and an ancient key could alias) only after 2^30 × slotCount reuses.
  private pushSlot(slot: number): void {
    const meta = this.meta;
    let tail = meta[H_SLOT_HEAD]! + meta[H_SLOT_FREE]!;
    if (tail >= this.slotCount) tail -= this.slotCount;
    meta[this.fifo + tail] = slot;
    meta[H_SLOT_FREE]! += 1;
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

  private allocBlock(units: number): number {
    const block = this.findFree(units);
    if (block === NIL) return NIL;
    let size = this.words[2 * block]!;
    this.removeFree(block, size);
    if (size - units >= MIN_BLOCK_UNITS) {
      this.insertFree(block + units, size - units);
      size = units;
    }
    this.setTags(block, size, 1);
    Atomics.add(this.meta, H_USED_UNITS, size);
    return block;
  }

  /** Frees a used block and merges it with free neighbours (boundary tags make both O(1)). */
  private freeBlock(block: number): void {
    const words = this.words;
    let start = block;
    let size = words[2 * block]!;
    Atomics.sub(this.meta, H_USED_UNITS, size);
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
    return {
      reason,
      askedUnits,
      freeUnits: this.totalUnits - this.meta[H_USED_UNITS]!,
      largestFreeUnits: this.largestFreeUnits(),
      capacityUnits: this.totalUnits,
      maxObjects: this.slotCount,
    };
  }

  // ---- recovery ----------------------------------------------------------------------------------

  /**
   * Cleans up after a client whose worker died. If it held the allocator lock, the allocator may be
   * half-updated, so the lock is taken over and the free lists are rebuilt from the slot table
   * (the slot table is the truth: a block is in use exactly when a non-free slot points at it).
   * Reservations the dead client never published are freed either way.
   */
  recover(deadOwner: number, owner: number, timeoutMs: number): RecoveryReport {
    const meta = this.meta;
    const lockReleased = deadOwner !== 0 && Atomics.compareExchange(meta, H_LOCK, deadOwner, owner) === deadOwner;
    if (!lockReleased) this.lock(owner, timeoutMs);
    let reservationsFreed = 0;
    try {
      for (let slot = 0; slot < this.slotCount; slot++) {
        const base = this.slotBase(slot);
        const word = Atomics.load(meta, base + S_STATE);
        if ((word & 3) !== RESERVED || meta[base + S_OWNER] !== deadOwner) continue;
        reservationsFreed++;
        if (lockReleased) {
          Atomics.store(meta, base + S_STATE, (((word >>> 2) + 1) & GENERATION_MASK) << 2);
        } else {
          this.releaseSlot(slot, word);
        }
      }
      if (lockReleased) this.rebuild();
    } finally {
      this.unlock(owner);
    }
    return { lockReleased, reservationsFreed };
  }

  /** Under the lock: rewrites every tag, free list, counter and the slot ring from the slot table. */
  private rebuild(): void {
    const meta = this.meta;
    const blocks: { offset: number; units: number; slot: number }[] = [];
    for (let slot = 0; slot < this.slotCount; slot++) {
      const base = this.slotBase(slot);
      const word = Atomics.load(meta, base + S_STATE);
      if ((word & 3) === FREE) continue;
      const offset = meta[base + S_OFFSET]!;
      const units = meta[base + S_SIZE]!;
      if (offset >= 0 && units >= MIN_BLOCK_UNITS && offset + units <= this.totalUnits) {
        blocks.push({ offset, units, slot });
      } else {
        // A slot that was half written when its owner died: it never held a readable value.
        Atomics.store(meta, base + S_STATE, (((word >>> 2) + 1) & GENERATION_MASK) << 2);
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
        const word = Atomics.load(meta, base + S_STATE);
        Atomics.store(meta, base + S_STATE, (((word >>> 2) + 1) & GENERATION_MASK) << 2);
        continue;
      }
      if (offset > cursor) this.insertGap(cursor, offset - cursor);
      this.setTags(offset, units, 1);
      used += units;
      objects++;
      cursor = offset + units;
    }
    if (cursor < this.totalUnits) this.insertGap(cursor, this.totalUnits - cursor);
    Atomics.store(meta, H_USED_UNITS, used);
    Atomics.store(meta, H_OBJECTS, objects);
    meta[H_SLOT_HEAD] = 0;
    meta[H_SLOT_FREE] = 0;
    for (let slot = 0; slot < this.slotCount; slot++) {
      if ((Atomics.load(meta, this.slotBase(slot) + S_STATE) & 3) === FREE) this.pushSlot(slot);
    }
  }

  private insertGap(offset: number, units: number): void {
    if (units >= MIN_BLOCK_UNITS) this.insertFree(offset, units);
    // Gaps are whole freed blocks, so never this small; if one is, fence it off as used rather
    // than corrupt the free lists (it is lost until the store closes).
    else this.setTags(offset, units, 1);
  }

  // ---- consistency check (tests) -----------------------------------------------------------------

  /**
   * Walks every block and free list and returns the problems found (empty when consistent). Takes
   * the lock; meant for tests and debugging.
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
      if (used !== meta[H_USED_UNITS]) problems.push(`used units: counter ${meta[H_USED_UNITS]}, blocks ${used}`);
      let taken = 0;
      for (let slot = 0; slot < this.slotCount; slot++) {
        if ((Atomics.load(meta, this.slotBase(slot) + S_STATE) & 3) !== FREE) taken++;
      }
      if (taken !== usedBlocks) problems.push(`${taken} slots in use but ${usedBlocks} used blocks`);
      if (taken !== meta[H_OBJECTS]) problems.push(`objects: counter ${meta[H_OBJECTS]}, slots ${taken}`);
      if (taken + meta[H_SLOT_FREE]! !== this.slotCount) problems.push('free-slot ring count is wrong');
    } finally {
      this.unlock(owner);
    }
    return problems;
  }
}
