/**
 * The consumer side of a zmq link (package-private; built by `openLink`): one ROUTER that every
 * source of the sink endpoint connects to. Messages wait in one queue per edge (read round-robin,
 * so no source starves the others); each message read or dropped is acknowledged to its source,
 * which gives that source its credit back (see `_output.ts`).
 * @module
 */
import {
  closedLinkError,
  endpointLabel,
  type GetOptions,
  getTimeoutError,
  type InputLink,
  type LinkHooks,
  LinkSourcesGoneError,
  LinkTimeoutError,
  MsgpackDecoder,
} from '@improv/core';
import { DECLINED, FastDecoder } from '@improv/core/codec/fast';
import {
  ACK_FRAME,
  announce,
  BATCHES_WELCOME_FRAMES,
  CONTROL_CLOSED,
  DROPPED_AT_SINK,
  type EdgeCounters,
  edgeCounters,
  FRAME_BATCH,
  FRAME_MESSAGE,
  IN_FLIGHT_GRACE_MS,
  messageEpoch,
  Queue,
  RECEIVED,
  SENT,
  SINK_EPOCH,
  SINK_GONE,
  SOURCE_GONE,
  socketsReleased,
  TAKEN,
  unpackBodies,
  watchControl,
  type ZmqInDescriptor,
} from './_protocol.ts';
import type { RouterSocket, SocketEvent, SocketFactory } from './_socket.ts';
import { ThrottledReport } from './_throttle.ts';

interface InEdge extends EdgeCounters {
  connection: string;
  peer: string;
  capacity: number;
  dropOldest: boolean;
  /** The source's routing id, as the ROUTER addresses it. */
  routingId: Uint8Array;
  queue: Queue<Uint8Array>;
  /** Not yet acknowledged: first `taken` read, then `dropped` dropped. */
  taken: number;
  /** Bytes of the messages taken since the last acknowledgement. */
  takenBytes: number;
  dropped: number;
  /** Acknowledge at once from this many messages read, or from `ackBatchLarge` of {@link LARGE_ACK_BYTES}. */
  ackBatch: number;
  ackBatchLarge: number;
  /** When this sink first saw the source gone with messages it counted as sent still missing. */
  goneSince?: number;
  /** This sink's epoch on the edge (1: the first sink the edge had); see `messageFrame`. */
  epoch: number;
  /** This sink told the source that it reads several messages in one (`FRAME_BATCHES_WELCOME`). */
  welcomed: boolean;
}

interface Waiter {
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/** Messages taken that add up to this many bytes are acknowledged from a quarter of the capacity. */
const LARGE_ACK_BYTES = 256 * 1024;
const latin1 = new TextDecoder('latin1');
/** How often a peer that keeps failing the handshake is reported again. */
const REFUSAL_REPEAT_MS = 30_000;
/** Largest memory a link keeps a view of between messages (see `ZmqInputLink.#frame`). */
const FRAME_CACHE_BYTES = 64 * 1024;

export class ZmqInputLink implements InputLink {
  readonly direction = 'in' as const;
  readonly name: string;
  readonly #label: string;
  readonly #edges: InEdge[];
  readonly #byId = new Map<string, InEdge>();
  readonly #socket: RouterSocket;
  readonly #hooks: LinkHooks;
  readonly #control: Int32Array<SharedArrayBuffer>;
  readonly #maxMessageBytes: number;
  /** Typical messages (as transport-local's links); the general {@link #decoder} takes what it declines. */
  readonly #fast = new FastDecoder();
  readonly #decoder = new MsgpackDecoder();
  /**
   * The memory the last message came in (the messages of a batch share their frame's), whole as
   * bytes and as a view, so that each message does not cost a `DataView` of its own. Only memory up
   * to {@link FRAME_CACHE_BYTES}: a link does not keep a large frame alive while it waits.
   */
  #frame: { buffer: ArrayBufferLike; bytes: Uint8Array; view: DataView } | undefined;
  /** The edge the last message came in on. */
  #lastEdge: InEdge | undefined;
  readonly #waiters: Waiter[] = [];
  readonly #held: Waiter[] = [];
  #onHeld: (() => void) | undefined;
  #next = 0;
  #closedHere = false;
  #ackScheduled = false;
  readonly #refusals = new ThrottledReport(REFUSAL_REPEAT_MS);
  readonly #strangers = new Set<string>();
  /** Sources that sent a `[0x03]` message this sink could not read (said once each). */
  readonly #malformedFrom = new Set<InEdge>();
  /** Resolves when bound; rejects with the bind error (port in use, ...). */
  readonly ready: Promise<void>;

  constructor(descriptor: ZmqInDescriptor, sockets: SocketFactory, hooks: LinkHooks = {}) {
    this.#hooks = hooks;
    this.name = descriptor.endpoint.link;
    this.#label = endpointLabel(descriptor.endpoint);
    this.#control = new Int32Array(descriptor.control);
    this.#maxMessageBytes = descriptor.maxMessageBytes;
    const encoder = new TextEncoder();
    this.#edges = descriptor.edges.map((info) => {
      const counters = edgeCounters(info.counters);
      // A revived actor reopens the descriptor of the one that quit: its sources deliver to it again.
      Atomics.store(counters.flags, SINK_GONE, 0);
      const epoch = Atomics.add(counters.flags, SINK_EPOCH, 1) + 1;
      const edge: InEdge = {
        ...counters,
        connection: info.connection,
        peer: info.peer,
        capacity: info.capacity,
        dropOldest: info.policy === 'drop-oldest',
        routingId: encoder.encode(info.id),
        queue: new Queue(),
        taken: 0,
        takenBytes: 0,
        dropped: 0,
        ackBatch: Math.max(1, Math.ceil(info.capacity / 2)),
        ackBatchLarge: Math.max(1, Math.ceil(info.capacity / 4)),
        epoch,
        welcomed: false,
      };
      this.#byId.set(info.id, edge);
      return edge;
    });
    announce(this.#control);
    this.#socket = sockets.router(descriptor.curve && { curve: descriptor.curve });
    this.#socket.onMessage((frames) => this.#onMessage(frames));
    this.#socket.onEvent((event) => this.#onEvent(event, descriptor.address));
    this.ready = this.#socket.bind(descriptor.address).then(
      () => undefined,
      (error: Error) => {
        this.close();
        throw new Error(`link "${this.#label}": ${error.message}`, { cause: error });
      },
    );
    watchControl(
      this.#control,
      () => this.#serve(),
      () => this.#isClosed(),
    );
  }

  get(options?: GetOptions): Promise<unknown> {
    if (options?.timeoutMs !== undefined) return this.#getWithin(options.timeoutMs);
    if (this.#isClosed()) return Promise.reject(this.#closedError());
    if (this.#onHeld !== undefined) {
      return new Promise((resolve, reject) => {
        this.#held.push({ resolve, reject });
        this.#onHeld?.();
      });
    }
    if (this.#waiters.length === 0) {
      const value = this.#take();
      if (value !== undefined) return Promise.resolve(value);
      if (this.#sourcesGone()) return Promise.reject(this.#goneError());
    }
    return new Promise((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
    });
  }

  #getWithin(ms: number): Promise<unknown> {
    const invalid = getTimeoutError(this.name, ms);
    if (invalid !== undefined) return Promise.reject(invalid);
    if (this.#isClosed()) return Promise.reject(this.#closedError());
    if (this.#onHeld === undefined && this.#waiters.length === 0) {
      const value = this.#take();
      if (value !== undefined) return Promise.resolve(value);
      if (this.#sourcesGone()) return Promise.reject(this.#goneError());
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const timer = setTimeout(() => {
        for (const queue of [this.#waiters, this.#held]) {
          const index = queue.indexOf(waiter);
          if (index !== -1) queue.splice(index, 1);
        }
        reject(new LinkTimeoutError(`no message on ${this.name} within ${ms} ms`));
      }, ms);
      if (this.#onHeld !== undefined) {
        this.#held.push(waiter);
        this.#onHeld();
      } else {
        this.#waiters.push(waiter);
      }
    });
  }

  tryGet(): unknown {
    if (this.#isClosed()) throw this.#closedError();
    if (this.#waiters.length > 0 || this.#onHeld !== undefined) return undefined;
    return this.#take();
  }

  size(): number {
    let total = 0;
    for (const edge of this.#edges) total += edge.queue.length;
    return total;
  }

  hold(onHeld: () => void): void {
    if (this.#closedHere) return;
    this.#onHeld = onHeld;
    this.#held.push(...this.#waiters.splice(0));
    // Also when held already (a stop after a pause): the get parked then still waits.
    if (this.#held.length > 0) onHeld();
  }

  release(): void {
    this.#onHeld = undefined;
    const held = this.#held.splice(0);
    if (held.length === 0) return;
    this.#waiters.push(...held);
    this.#serve();
  }

  close(): Promise<void> {
    if (this.#closedHere) return socketsReleased();
    this.#closedHere = true;
    clearTimeout(this.#recheck);
    this.#flushAcks();
    this.#socket.close();
    // Sources stop waiting for this sink and report what it never read. What it had received but
    // not read stays counted as unread: the planner counts it dropped when it detaches this actor or
    // drains the links at quit, and a restarted sink gets it again from the sources, which kept a copy.
    for (const edge of this.#edges) {
      edge.queue.clear();
      Atomics.store(edge.flags, SINK_GONE, 1);
    }
    announce(this.#control);
    this.#rejectAll(this.#closedError());
    return socketsReleased();
  }

  #isClosed(): boolean {
    return this.#closedHere || Atomics.load(this.#control, CONTROL_CLOSED) !== 0;
  }

  #closedError(): Error {
    return closedLinkError(this.#label, this.#closedHere);
  }

  #rejectAll(error: Error): void {
    for (const waiter of [...this.#held.splice(0), ...this.#waiters.splice(0)]) waiter.reject(error);
  }

  #onMessage(frames: Uint8Array[]): void {
    const [id, type, body] = frames;
    if (id === undefined || this.#closedHere) return;
    const edge = this.#edgeOf(id);
    const kind = type?.[0];
    if (edge === undefined || (kind !== FRAME_MESSAGE && kind !== FRAME_BATCH) || body === undefined) {
      this.#stranger(id, frames);
      return;
    }
    // Sent for an earlier incarnation of this sink (an old connection of the source that came back on
    // its own): not taken, not acknowledged. The source sends it again on a fresh connection once it
    // sees this sink's epoch, as it does everything the earlier one did not acknowledge.
    if ((type!.length > 1 || edge.epoch > 1) && messageEpoch(type!) !== edge.epoch) return;
    if (!edge.welcomed) {
      // Once per source and incarnation of this sink: it may send several messages in one from now on.
      edge.welcomed = true;
      this.#socket.send([edge.routingId, ...BATCHES_WELCOME_FRAMES]);
    }
    if (kind === FRAME_MESSAGE) this.#arrived(edge, body);
    else {
      const bodies = frames.length === 3 ? unpackBodies(body) : undefined;
      if (bodies === undefined) {
        this.#malformed(edge, frames);
        return;
      }
      for (const one of bodies) this.#arrived(edge, one);
    }
    if (this.#waiters.length > 0) this.#serve();
  }

  /** One message from `edge`'s source into its queue (or dropped: too large, or `drop-oldest` full). */
  #arrived(edge: InEdge, body: Uint8Array): void {
    edge.counts[RECEIVED]! += 1;
    if (body.length > this.#maxMessageBytes) {
      edge.counts[DROPPED_AT_SINK]! += 1;
      this.#hooks.warn?.(
        `link "${this.#label}": dropped a ${body.length}-byte message from ${edge.peer}, larger than maxMessageBytes (${this.#maxMessageBytes})`,
      );
      this.#acknowledge(edge, false);
      return;
    }
    edge.queue.push(body);
    if (edge.dropOldest && edge.queue.length > edge.capacity) {
      edge.queue.shift();
      edge.counts[DROPPED_AT_SINK]! += 1;
      this.#acknowledge(edge, false);
    }
  }

  /** The edge whose source has routing id `id`; the last one found is checked first (a flood comes from one source). */
  #edgeOf(id: Uint8Array): InEdge | undefined {
    const last = this.#lastEdge;
    if (last !== undefined) {
      const known = last.routingId;
      let same = known.length === id.length;
      for (let index = 0; same && index < id.length; index++) same = known[index] === id[index];
      if (same) return last;
    }
    const edge = this.#byId.get(latin1.decode(id));
    if (edge !== undefined) this.#lastEdge = edge;
    return edge;
  }

  #stranger(id: Uint8Array, frames: Uint8Array[]): void {
    const key = latin1.decode(id);
    if (this.#strangers.has(key)) return;
    this.#strangers.add(key);
    this.#hooks.warn?.(
      `link "${this.#label}": ignored a message from a peer that is no source of this link (routing id ${JSON.stringify(key)}, ${frames.length} frames); a source connects a DEALER with the routing id its descriptor gives and sends [0x01, msgpack body]`,
    );
  }

  #malformed(edge: InEdge, frames: Uint8Array[]): void {
    if (this.#malformedFrom.has(edge)) return;
    this.#malformedFrom.add(edge);
    this.#hooks.warn?.(
      `link "${this.#label}": ignored a [0x03] message from ${edge.peer} that is not [0x03, one frame: a msgpack array of bin, each a message's body] (${frames.length - 1} frames); the source and this sink may be of different versions of @improv/transport-zmq`,
    );
  }

  #onEvent(event: SocketEvent, address: string): void {
    if (event.type !== 'handshake-failed') return;
    // A refused peer retries every few milliseconds: said once, then at most every 30 s with a count.
    const refusals = this.#refusals.note();
    if (refusals === undefined) return;
    const again = refusals > 1 ? ` (${refusals} refusals since the last report)` : '';
    this.#hooks.warn?.(
      `link "${this.#label}" (${address}): refused a peer at ${event.address}: ${event.reason} — it does not have the pipeline's CURVE keys${again}`,
    );
  }

  /** Hands waiting messages to pending gets, and fails them once every source is gone. */
  #recheck: ReturnType<typeof setTimeout> | undefined;

  #serve(): void {
    if (this.#isClosed()) {
      this.#rejectAll(this.#closedError());
      return;
    }
    while (this.#waiters.length > 0 && this.#onHeld === undefined) {
      let value: unknown;
      try {
        value = this.#take();
      } catch (error) {
        this.#waiters.shift()!.reject(error);
        continue;
      }
      if (value === undefined) {
        if (this.#sourcesGone()) this.#rejectAll(this.#goneError());
        return;
      }
      this.#waiters.shift()!.resolve(value);
    }
  }

  /** The message in `bytes` by the fast path, or {@link DECLINED}. */
  #decodeFast(bytes: Uint8Array): unknown {
    const buffer = bytes.buffer;
    let frame = this.#frame;
    if (frame?.buffer !== buffer) {
      if (buffer.byteLength > FRAME_CACHE_BYTES) {
        return this.#fast.decode(bytes, new DataView(buffer, bytes.byteOffset, bytes.byteLength), 0, bytes.length);
      }
      frame = { buffer, bytes: new Uint8Array(buffer), view: new DataView(buffer) };
      this.#frame = frame;
    }
    const start = bytes.byteOffset;
    return this.#fast.decode(frame.bytes, frame.view, start, start + bytes.length);
  }

  /** The next message of the next non-empty edge (round-robin), or `undefined`. */
  #take(): unknown {
    const edges = this.#edges;
    const count = edges.length;
    for (let k = 0; k < count; k++) {
      let index = this.#next + k;
      if (index >= count) index -= count;
      const edge = edges[index]!;
      const bytes = edge.queue.shift();
      if (bytes === undefined) continue;
      this.#next = index + 1 === count ? 0 : index + 1;
      edge.counts[TAKEN]! += 1;
      this.#acknowledge(edge, true, bytes.length);
      const fast = this.#decodeFast(bytes);
      return fast === DECLINED ? this.#decoder.decode(bytes) : fast;
    }
    return undefined;
  }

  /**
   * Counts one message out of `edge`'s queue for its source. Reads are acknowledged in batches of
   * half the capacity (a quarter once that quarter carried {@link LARGE_ACK_BYTES}), and always
   * before the event loop turns, so a producer never waits while its sink has room for long: a
   * consumer that reads one message and then awaits something else must not starve it. Not more
   * often: an acknowledgement is a write that wakes the producer's thread, which costs a busy sink as
   * much as a dozen small messages (a quarter of the capacity cost an 8 B flood an eighth of its
   * rate). Larger messages get their credit back sooner: with half the capacity, 4 KiB messages
   * moved a fifth fewer a second, the producer waiting on credit with the socket idle.
   */
  #acknowledge(edge: InEdge, taken: boolean, size = 0): void {
    if (taken) {
      if (edge.dropped > 0) this.#sendAck(edge);
      edge.taken += 1;
      edge.takenBytes += size;
      if (edge.taken >= edge.ackBatch || (edge.taken >= edge.ackBatchLarge && edge.takenBytes >= LARGE_ACK_BYTES)) {
        this.#sendAck(edge);
      }
    } else {
      edge.dropped += 1;
    }
    if (!this.#ackScheduled && (edge.taken > 0 || edge.dropped > 0)) {
      this.#ackScheduled = true;
      setTimeout(() => this.#flushAcks(), 0);
    }
  }

  #flushAcks(): void {
    this.#ackScheduled = false;
    for (const edge of this.#edges) if (edge.taken > 0 || edge.dropped > 0) this.#sendAck(edge);
  }

  #sendAck(edge: InEdge): void {
    const payload = new Uint8Array(8);
    const view = new DataView(payload.buffer);
    view.setUint32(0, edge.taken, true);
    view.setUint32(4, edge.dropped, true);
    edge.taken = 0;
    edge.takenBytes = 0;
    edge.dropped = 0;
    this.#socket.send([edge.routingId, ACK_FRAME, payload]);
  }

  /**
   * True once every source is gone, everything it sent has arrived, and nothing is left. A source
   * that died may have counted as sent what never left its process: what has not arrived
   * {@link IN_FLIGHT_GRACE_MS} after the source was seen gone never will.
   */
  #sourcesGone(): boolean {
    for (const edge of this.#edges) {
      if (Atomics.load(edge.flags, SOURCE_GONE) === 0) {
        delete edge.goneSince;
        return false;
      }
      if (edge.queue.length > 0) return false;
      if (edge.counts[RECEIVED]! < edge.counts[SENT]!) {
        const now = performance.now();
        if (edge.goneSince === undefined) edge.goneSince = now;
        if (now - (edge.goneSince ?? now) < IN_FLIGHT_GRACE_MS) {
          this.#recheck ??= setTimeout(() => {
            this.#recheck = undefined;
            this.#serve();
          }, IN_FLIGHT_GRACE_MS);
          return false;
        }
      }
    }
    return true;
  }

  #goneError(): LinkSourcesGoneError {
    const peers = this.#edges.map((edge) => edge.peer).join(', ');
    return new LinkSourcesGoneError(
      `link "${this.#label}": every source (${peers}) is gone — its actor failed or died — and no message is left; no more will come. Catch LinkSourcesGoneError to go on without this input`,
    );
  }
}
