/**
 * Store keys in the messages of an actor's links (package-private): what the actor host does so
 * that the store's lifetimes need no code in the actor.
 *
 * - After each `runStep`: writes allocated arrays of a copying driver (`flush`), counts the
 *   messages the step took out of the store's in-flight counts, and ends the step's holds
 *   (`release`), so TTL and eviction may free what the step read. Batched deletes are left to the
 *   client (it commits them within ~2 ms), except after `setup()` and `stop()`.
 * - A copying driver: before a message leaves the actor, arrays from `allocate` are flushed, so a key
 *   always reaches its reader with its frame written, and batched deletes are committed, so its
 *   reader finds the keys the actor deleted gone.
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
import type { StoreUse } from './protocol.ts';

/** The store side of one actor's links. */
export class StoreLinks {
  /** Keys of the messages taken during the current step, counted out at its end. */
  #taken: StoreKey[] = [];

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

  /** Before `message` is sent over a link of `sinks` sinks. */
  async beforeSend(message: unknown, sinks: number): Promise<void> {
    if (this.use.flushBeforeSend) await this.store.flush();
    if (!this.use.trackMessages) return;
    const keys = storeKeysIn(message, this.store);
    if (keys.length > 0) await this.store.track(keys, sinks);
  }

  /** A message was taken from an input link. */
  taken(message: unknown): void {
    for (const key of storeKeysIn(message, this.store)) this.#taken.push(key);
  }

  /**
   * After each `runStep` (and after `setup()` and `stop()`, with `commitDeletes`): flush, count taken
   * messages out, release holds.
   */
  async stepEnded(options?: { commitDeletes?: boolean }): Promise<void> {
    await this.store.flush({ deletes: options?.commitDeletes === true });
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

  async put(message: unknown): Promise<void> {
    await this.store.beforeSend(message, this.link.sinks);
    return this.link.put(message);
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
