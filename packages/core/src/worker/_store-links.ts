/**
 * Store keys in the messages of an actor's links (package-private): what the actor host does so
 * that the store's lifetimes need no code in the actor.
 *
 * - After each `runStep`: writes allocated arrays of a copying driver (`flush`), counts the
 *   messages the step took out of the store's in-flight counts, and ends the step's holds
 *   (`release`), so TTL and eviction may free what the step read. Batched deletes are left to the
 *   client (it commits them within ~2 ms), except after `setup()` and `stop()`.
 * - A copying driver: a message leaves the actor only after what the actor put and allocated is
 *   written (`flush`), so a key always reaches its reader with its value written, and batched
 *   deletes are committed, so its reader finds the keys the actor deleted gone.
 * - Group commit: a message sent within {@link FLOOD_GAP_MS} of the actor's last send, while the
 *   store has something to write (`hasUnflushed`), is part of a flood. Its `put` resolves at once
 *   and the message waits here, encoded by its link (`OutputLink.encode`: the bytes the link sends
 *   anyway) or else as a copy, in order, for one flush with the others: until
 *   {@link BATCH_MAX_MESSAGES} wait, the first has waited {@link BATCH_MAX_WAIT_MS} (looked at on
 *   each send and step end), a step runs longer than the gap or throws, the event loop turns, or
 *   the actor parks. No more wait than their link has room for (`OutputLink.room()`): the message
 *   that would not fit goes with them, in the same flush, and its `put` resolves once the link took
 *   it, so a full `block` link holds the actor back as before. A lone message is flushed and sent at
 *   once, as before. One commit of a copying store costs tens of µs: a flood of small messages pays it once
 *   a batch.
 * - `store_eviction` on: a message with keys is counted in flight once per sink when sent, and out
 *   when taken (at the end of the step that took it) or dropped, so eviction never frees a value
 *   whose message still waits in a link.
 *
 * With the memory driver and no eviction the links are handed to the actor as they are: nothing here
 * costs anything on the hot path.
 * @module
 */
import type { GetOptions, InputLink, Link, LinkHooks, OutputLink } from '../link/transport.ts';
import type { StoreClient, StoreKey } from '../store/driver.ts';
import { storeKeysIn } from '../store/keys.ts';
import { nextTurn } from './_next-turn.ts';
import type { StoreUse } from './protocol.ts';

/** A message sent within this long (ms) of the end of the actor's last send is part of a flood. */
export const FLOOD_GAP_MS = 0.05;
/** A flood's messages wait for one flush together: at most this many, */
export const BATCH_MAX_MESSAGES = 64;
/** and the first at most this long (ms) once the actor sends or ends a step again. */
export const BATCH_MAX_WAIT_MS = 1;

interface HeldMessage {
  link: OutputLink;
  /** What goes to the link: its own encoding of the message (`encoded`), or a copy of the message. */
  message: unknown;
  encoded: boolean;
  /** The message's store keys, when messages are tracked (counted in flight as it leaves). */
  keys: StoreKey[] | undefined;
}

/** The store side of one actor's links. */
export class StoreLinks {
  /** Keys of the messages taken during the current step, counted out at its end. */
  #taken: StoreKey[] = [];
  /** Messages of a flood waiting for the store's next flush, in the order they were sent; how many per link. */
  #held: HeldMessage[] = [];
  #heldOn = new Map<OutputLink, number>();
  /** When the first of them was sent, and when the actor's last send or step ended. */
  #heldSince = 0;
  #lastSent = Number.NEGATIVE_INFINITY;
  #lastStepEnded = Number.NEGATIVE_INFINITY;
  /** The flush and hand-over of the held messages while it runs; the links taking the last batch. */
  #handing: Promise<void> | undefined;
  #inLinks: Promise<void> | undefined;
  #turnScheduled = false;
  /** What a release on a later event-loop turn failed with: thrown at the actor's next send or step end. */
  #failure: { error: unknown } | undefined;

  private readonly store: StoreClient;
  private readonly use: StoreUse;

  constructor(store: StoreClient, use: StoreUse) {
    this.store = store;
    this.use = use;
  }

  /** The link as the actor sees it: itself, or a wrapper that minds the store keys it carries. */
  wrap(link: Link): Link {
    if (link.direction === 'out') {
      return this.use.flushBeforeSend || this.use.trackMessages ? new TrackedOutput(link, this) : link;
    }
    return this.use.trackMessages ? new TrackedInput(link, this) : link;
  }

  /** Link hooks for fan-out drops, when messages are tracked. */
  hooks(): Pick<LinkHooks, 'droppedForOneSink'> {
    if (!this.use.trackMessages) return {};
    return {
      droppedForOneSink: (message) => {
        const keys = storeKeysIn(message, this.store);
        if (keys.length > 0) void this.store.track(keys, -1).catch(() => undefined);
      },
    };
  }

  /** Sends `message` over `link` (a wrapped output link's `put`). */
  async send(link: OutputLink, message: unknown): Promise<void> {
    if (!this.use.flushBeforeSend) {
      await this.#track(message, link.sinks);
      return link.put(message);
    }
    this.#throwFailure();
    const now = performance.now();
    let held: { message: unknown; encoded: boolean } | undefined;
    /** No room for one more in the link: the actor waits until the link took it, as it would without the store. */
    let full = false;
    if (
      this.#held.length === 0 &&
      this.#handing === undefined &&
      (now - this.#lastSent >= FLOOD_GAP_MS || this.store.hasUnflushed?.() !== true)
    ) {
      held = undefined;
    } else {
      // It waits, encoded by its link or as a copy: the actor may reuse what it sent once its put resolved.
      try {
        held =
          link.encode !== undefined && link.putEncoded !== undefined
            ? { message: link.encode(message), encoded: true }
            : { message: structuredClone(message), encoded: false };
      } catch {
        await this.handOver(); // so that the link's own error names what cannot be sent
      }
      full = (this.#heldOn.get(link) ?? 0) >= (link.room?.() ?? 0);
    }
    if (held === undefined) {
      // On its own: written and sent at once.
      try {
        await this.store.flush();
        await this.#track(message, link.sinks);
        await link.put(message);
      } finally {
        this.#lastSent = performance.now();
      }
      return;
    }
    if (this.#held.length === 0) this.#heldSince = now;
    this.#held.push({ link, message: held.message, encoded: held.encoded, keys: this.#keysOf(message) });
    this.#heldOn.set(link, (this.#heldOn.get(link) ?? 0) + 1);
    this.#lastSent = now;
    if (full || this.#held.length >= BATCH_MAX_MESSAGES || now - this.#heldSince >= BATCH_MAX_WAIT_MS) {
      // The actor waits until its links took the batch (this message with it, in the same flush): a
      // full link holds the producer back. Its send ends then: the next is part of the same flood.
      try {
        await this.handOver();
        await this.#inLinks;
      } finally {
        this.#lastSent = performance.now();
      }
      this.#throwFailure();
    } else if (!this.#turnScheduled) {
      this.#turnScheduled = true;
      nextTurn(() => {
        this.#turnScheduled = false;
        if (this.#held.length > 0) this.handOver().catch((error: unknown) => (this.#failure ??= { error }));
      });
    }
  }

  /**
   * Flushes the store, then hands the held messages to their links, each link's in order (a full
   * link queues them, as it does a waiting `put`); resolves once they are handed over. The host calls
   * it before it parks the actor, so that what the actor sent is in its links, not here. A flush
   * that fails keeps the messages held, for the next try.
   */
  handOver(): Promise<void> {
    this.#handing ??= this.#handOverAll().finally(() => {
      this.#handing = undefined;
    });
    return this.#handing;
  }

  async #handOverAll(): Promise<void> {
    while (this.#held.length > 0) {
      const batch = this.#held;
      this.#held = [];
      this.#heldOn.clear();
      try {
        await this.store.flush();
        for (const { link, keys } of batch) await this.#trackKeys(keys, link.sinks);
      } catch (error) {
        this.#held = batch.concat(this.#held);
        for (const { link } of this.#held) this.#heldOn.set(link, (this.#heldOn.get(link) ?? 0) + 1);
        this.#heldSince = performance.now();
        throw error;
      }
      // Corked: a link may send what it can send now of the batch as one (`OutputLink.cork`).
      const links = new Set<OutputLink>();
      for (const { link } of batch) links.add(link);
      for (const link of links) link.cork?.();
      let puts: Promise<void>[];
      try {
        puts = batch.map(({ link, message, encoded }) => (encoded ? link.putEncoded!(message) : link.put(message)));
      } finally {
        for (const link of links) link.uncork?.();
      }
      this.#inLinks = Promise.allSettled(puts).then((results) => {
        for (const result of results) {
          if (result.status === 'rejected') {
            this.#failure ??= { error: result.reason };
            return;
          }
        }
      });
    }
  }

  /**
   * At quit, once the last flush failed: drops the messages still waiting for it (what they carry
   * was never written, so no reader could use them) and returns how many waited on each link, by
   * name, for the host to report. Nothing was counted in flight for them: that happens as they leave.
   */
  async dropHeld(): Promise<Map<string, number>> {
    await this.#handing?.catch(() => undefined);
    const dropped = new Map<string, number>();
    for (const { link } of this.#held) dropped.set(link.name, (dropped.get(link.name) ?? 0) + 1);
    this.#held = [];
    this.#heldOn.clear();
    return dropped;
  }

  #throwFailure(): void {
    const failure = this.#failure;
    if (failure === undefined) return;
    this.#failure = undefined;
    throw failure.error;
  }

  /** Counts the store keys of `message` in flight once per sink, when messages are tracked. */
  #track(message: unknown, sinks: number): Promise<void> {
    return this.#trackKeys(this.#keysOf(message), sinks);
  }

  /** The store keys `message` carries, when messages are tracked (undefined when they are not). */
  #keysOf(message: unknown): StoreKey[] | undefined {
    return this.use.trackMessages ? storeKeysIn(message, this.store) : undefined;
  }

  /** Counts `keys` in flight once per sink (nothing when there are none). */
  async #trackKeys(keys: StoreKey[] | undefined, sinks: number): Promise<void> {
    if (keys !== undefined && keys.length > 0) await this.store.track(keys, sinks);
  }

  /** A message was taken from an input link. */
  taken(message: unknown): void {
    for (const key of storeKeysIn(message, this.store)) this.#taken.push(key);
  }

  /**
   * After each `runStep` (and after `setup()` and `stop()`, with `commitDeletes`): flush, count taken
   * messages out, release holds. Held messages go with the flush (always with `handOver`: the
   * actor is about to park, or its step threw) unless the step was as short as a flood's gap and
   * the first waited less than {@link BATCH_MAX_WAIT_MS}: then the next steps' messages join them.
   */
  stepEnded(options?: { commitDeletes?: boolean; handOver?: boolean }): Promise<void> | undefined {
    // Nothing waits, nothing was taken, the store has nothing to flush or release: done, without a
    // promise (the common step of an actor on the memory store).
    if (
      this.#held.length === 0 &&
      this.#handing === undefined &&
      this.#taken.length === 0 &&
      this.#failure === undefined &&
      options?.commitDeletes !== true &&
      this.store.isIdle?.() === true
    ) {
      if (this.use.flushBeforeSend) this.#lastStepEnded = performance.now();
      return undefined;
    }
    return this.#stepEnded(options);
  }

  async #stepEnded(options?: { commitDeletes?: boolean; handOver?: boolean }): Promise<void> {
    // Only messages to a copying store ever wait: the clock is read for those alone.
    let now = 0;
    let stepTook = 0;
    if (this.use.flushBeforeSend) {
      now = performance.now();
      stepTook = now - this.#lastStepEnded;
      this.#lastStepEnded = now;
    }
    this.#throwFailure();
    const waiting = this.#held.length > 0 || this.#handing !== undefined;
    if (
      !waiting ||
      options?.commitDeletes === true ||
      options?.handOver === true ||
      stepTook >= FLOOD_GAP_MS ||
      now - this.#heldSince >= BATCH_MAX_WAIT_MS
    ) {
      if (waiting) await this.handOver();
      await this.store.flush({ deletes: options?.commitDeletes === true });
    }
    if (this.#taken.length > 0) {
      const taken = this.#taken;
      this.#taken = [];
      await this.store.track(taken, -1);
    }
    await this.store.release();
  }
}

/** Delegates everything to the link but `put`, which minds the store first. */
class TrackedOutput implements OutputLink {
  readonly direction = 'out';

  private readonly link: OutputLink;
  private readonly store: StoreLinks;

  constructor(link: OutputLink, store: StoreLinks) {
    this.link = link;
    this.store = store;
  }

  get name(): string {
    return this.link.name;
  }

  get sinks(): number {
    return this.link.sinks;
  }

  put(message: unknown): Promise<void> {
    return this.store.send(this.link, message);
  }

  hold(onHeld: () => void): void {
    this.link.hold(onHeld);
  }

  release(): void {
    this.link.release();
  }

  close(): void | Promise<void> {
    // The link's own promise: the host awaits it before the worker ends (sockets released).
    return this.link.close();
  }
}

/** Delegates everything to the link but `get`/`tryGet`, which note the keys they take. */
class TrackedInput implements InputLink {
  readonly direction = 'in';

  private readonly link: InputLink;
  private readonly store: StoreLinks;

  constructor(link: InputLink, store: StoreLinks) {
    this.link = link;
    this.store = store;
  }

  get name(): string {
    return this.link.name;
  }

  async get(options?: GetOptions): Promise<unknown> {
    const message = await this.link.get(options);
    this.store.taken(message);
    return message;
  }

  tryGet(): unknown {
    const message = this.link.tryGet();
    if (message !== undefined) this.store.taken(message);
    return message;
  }

  size(): number {
    return this.link.size();
  }

  hold(onHeld: () => void): void {
    this.link.hold(onHeld);
  }

  release(): void {
    this.link.release();
  }

  close(): void | Promise<void> {
    // The link's own promise: the host awaits it before the worker ends (sockets released).
    return this.link.close();
  }
}
