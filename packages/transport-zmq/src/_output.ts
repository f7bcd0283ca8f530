/**
 * The producer side of a zmq link (package-private; built by `openLink`): one DEALER per edge,
 * each message encoded once and sent to every sink.
 *
 * Flow control is by credit, end to end: a source may have at most `capacity` messages of an edge
 * that its sink has not yet taken out of its queue, and it keeps a copy of each until the sink
 * acknowledges it. So `block` holds the producer back until the sink's *actor* has read (not just
 * until a socket buffer has room); `drop-oldest` never waits — the sink drops its oldest message
 * and says so, and the source reports that message to the hooks; and when a sink is gone the
 * source knows exactly which messages never got read and reports them too.
 * @module
 */
import {
  closedLinkError,
  type DropReason,
  endpointLabel,
  type LinkHooks,
  LinkMessageTooLargeError,
  MsgpackDecoder,
  type OutputLink,
} from '@improv/core';
import { MessageEncoder } from '@improv/core/codec/fast';
import {
  ACKED_DROPPED,
  ACKED_TAKEN,
  BYTES_SENT,
  CONTROL_CLOSED,
  DROPPED_AT_SOURCE,
  type EdgeCounters,
  edgeCounters,
  FRAME_ACK,
  FRAME_BATCH,
  FRAME_BATCHES_WELCOME,
  messageFrame,
  PACK_MAX_BODY_BYTES,
  packBodies,
  Queue,
  SENT,
  SINK_EPOCH,
  SINK_GONE,
  SOURCE_GONE,
  socketsReleased,
  WAITING,
  watchControl,
  type ZmqOutDescriptor,
} from './_protocol.ts';
import type { DealerSocket, SocketEvent, SocketFactory } from './_socket.ts';

/** Longest a closing source waits for its sinks to acknowledge what it sent (see `#settle`). */
const CLOSE_LINGER_MS = 1000;
/** How often that wait looks at the shared flags (a sink gone, the plan closed). */
const SETTLE_POLL_MS = 20;

interface OutEdge extends EdgeCounters {
  connection: string;
  peer: string;
  address: string;
  /** This DEALER's routing id, as the sink's ROUTER knows it. */
  routingId: Uint8Array;
  capacity: number;
  dropOldest: boolean;
  socket: DealerSocket;
  /** Messages the sink has not yet acknowledged, oldest first. */
  unacked: Queue<Uint8Array>;
  /**
   * `drop-oldest` only: the newest messages held back while the sink process does not even read
   * its socket (its event loop is blocked), so a stalled sink cannot make the source grow without bound.
   */
  backlog: Queue<Uint8Array>;
  /** The sink was gone when last looked at. */
  gone: boolean;
  /** The sink's epoch when last looked at (0: no sink had opened yet). */
  epoch: number;
  /** The first frame of each message: `messageFrame(epoch)`, which this sink's incarnation takes. */
  header: Uint8Array;
  /** The first frame of several messages at once, for the same epoch. */
  batchHeader: Uint8Array;
  /** The sink said it reads several messages in one (`FRAME_BATCHES_WELCOME`), on this socket. */
  batches: boolean;
  /** Messages sent while corked, not yet given to the socket (only while `batches`): they go as one at `uncork`. */
  outbox: Uint8Array[];
  /** What the socket last said about the connection, for reports. */
  state: string;
}

interface PendingPut {
  bytes: Uint8Array;
  resolve(): void;
  reject(error: unknown): void;
}

const resolved: Promise<void> = Promise.resolve();

/** Waiting this long for room without a word from the sink is reported (once per outage). */
const SILENCE_MS = 5000;

/** Puts waiting at once past which a forgotten `await` is suspected. */
const PILING_UP = 256;

/** Unacknowledged messages past `capacity` after which a `drop-oldest` sink counts as stalled. */
function stallSlack(capacity: number): number {
  return Math.max(capacity, 64);
}

export class ZmqOutputLink implements OutputLink {
  readonly direction = 'out' as const;
  readonly name: string;
  readonly #label: string;
  readonly #edges: OutEdge[];
  readonly #hooks: LinkHooks;
  /** Opens this endpoint's DEALER for an edge (again, after its sink went away). */
  readonly #openDealer: (edge: OutEdge) => DealerSocket;
  readonly #control: Int32Array<SharedArrayBuffer>;
  readonly #maxMessageBytes: number;
  readonly #encoder: MessageEncoder;
  readonly #queue: PendingPut[] = [];
  #pumping = false;
  #closedHere = false;
  #onHeld: (() => void) | undefined;
  /** Resolves the pump's current wait (an acknowledgement came, a flag changed, a release). */
  #wakeUp: (() => void) | undefined;
  /** Resolves the wait of {@link #settle} at close (an acknowledgement came). */
  #acknowledged: (() => void) | undefined;
  #warnedPilingUp = false;
  /** When a sink last acknowledged anything (or the link opened). */
  #lastAck = Date.now();
  #silenceTimer: ReturnType<typeof setTimeout> | undefined;
  #silenceReported = false;
  /** Edges with messages in their outbox, sent by {@link uncork}. */
  #outboxes: OutEdge[] = [];
  /** Between `cork()` and `uncork()`. */
  #corked = false;

  constructor(descriptor: ZmqOutDescriptor, sockets: SocketFactory, hooks: LinkHooks = {}) {
    this.#hooks = hooks;
    this.name = descriptor.endpoint.link;
    this.#label = endpointLabel(descriptor.endpoint);
    this.#encoder = new MessageEncoder(this.#label);
    this.#control = new Int32Array(descriptor.control);
    this.#maxMessageBytes = descriptor.maxMessageBytes;
    this.#openDealer = (edge) => {
      const socket = sockets.dealer({
        routingId: edge.routingId,
        ...(descriptor.curve && { curve: { ...descriptor.curve, serverKey: descriptor.curve.publicKey } }),
      });
      socket.onMessage((frames) => this.#onAck(edge, frames));
      socket.onEvent((event) => this.#onEvent(edge, event));
      socket.connect(edge.address);
      return socket;
    };
    this.#edges = descriptor.edges.map((info) => {
      const counters = edgeCounters(info.counters);
      const epoch = Atomics.load(counters.flags, SINK_EPOCH);
      const edge: OutEdge = {
        ...counters,
        connection: info.connection,
        peer: info.peer,
        address: info.address,
        routingId: new TextEncoder().encode(info.id),
        capacity: info.capacity,
        dropOldest: info.policy === 'drop-oldest',
        socket: undefined as unknown as DealerSocket,
        unacked: new Queue(),
        backlog: new Queue(),
        gone: Atomics.load(counters.flags, SINK_GONE) !== 0,
        epoch,
        header: messageFrame(epoch),
        batchHeader: messageFrame(epoch, FRAME_BATCH),
        batches: false,
        outbox: [],
        state: 'connecting',
      };
      Atomics.store(counters.flags, WAITING, 0);
      // A restarted source is there again: its sink waits for it instead of giving up on it.
      Atomics.store(counters.flags, SOURCE_GONE, 0);
      edge.socket = this.#openDealer(edge);
      return edge;
    });
    watchControl(
      this.#control,
      () => {
        // A sink replaced while this source sends nothing gets what it has to get again now, not at the
        // next put: its new incarnation ignores what the old socket held. (Only a replacement: a sink
        // that looks gone for a moment, because it closed on its way to a restart, is left to `put`.)
        if (!this.#isClosed()) {
          for (const edge of this.#edges) {
            const epoch = Atomics.load(edge.flags, SINK_EPOCH);
            if (epoch !== edge.epoch && Atomics.load(edge.flags, SINK_GONE) === 0) this.#refreshGone(edge);
          }
        }
        this.#wakeUp?.();
      },
      () => this.#closedHere || Atomics.load(this.#control, CONTROL_CLOSED) !== 0,
    );
  }

  get sinks(): number {
    return this.#edges.length;
  }

  put(message: unknown): Promise<void> {
    if (this.#isClosed()) return Promise.reject(closedLinkError(this.#label, this.#closedHere));
    let bytes: Uint8Array;
    try {
      bytes = this.encode(message);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#put(bytes);
  }

  /** The message's msgpack bytes, as `put` sends them (a copy of the encoder's buffer). */
  encode(message: unknown): Uint8Array {
    const bytes = this.#encoder.encode(message);
    if (bytes.length > this.#maxMessageBytes) {
      this.#encoder.shrink();
      throw this.#tooLarge(bytes.length);
    }
    return bytes.slice();
  }

  #tooLarge(length: number): LinkMessageTooLargeError {
    return new LinkMessageTooLargeError(
      `link "${this.#label}": a message of ${length} bytes is larger than the ${this.#maxMessageBytes} bytes a zmq link takes (maxMessageBytes); put large data in the store and send its key`,
    );
  }

  putEncoded(encoded: unknown): Promise<void> {
    if (this.#isClosed()) return Promise.reject(closedLinkError(this.#label, this.#closedHere));
    if (!(encoded instanceof Uint8Array)) {
      return Promise.reject(
        new TypeError(`link "${this.#label}": putEncoded() takes what this link's encode() returned (bytes)`),
      );
    }
    // Bytes from elsewhere that its sinks would drop as too large.
    if (encoded.length > this.#maxMessageBytes) return Promise.reject(this.#tooLarge(encoded.length));
    return this.#put(encoded);
  }

  #put(bytes: Uint8Array): Promise<void> {
    if (this.#queue.length === 0 && this.#onHeld === undefined && this.#hasRoom()) {
      this.#send(bytes);
      return resolved;
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ bytes, resolve, reject });
      if (this.#queue.length >= PILING_UP) this.#pilingUp();
      if (this.#onHeld !== undefined) this.#onHeld();
      else if (!this.#pumping) void this.#pump();
    });
  }

  hold(onHeld: () => void): void {
    if (this.#closedHere) return;
    this.#onHeld = onHeld;
    if (this.#queue.length > 0) onHeld();
  }

  release(): void {
    this.#onHeld = undefined;
    if (this.#queue.length > 0 && !this.#pumping) void this.#pump();
    this.#wakeUp?.();
  }

  async close(): Promise<void> {
    if (this.#closedHere) return socketsReleased();
    this.#closedHere = true;
    clearTimeout(this.#silenceTimer);
    this.uncork();
    for (const pending of this.#queue.splice(0)) {
      this.#report(pending.bytes, 'closed', true);
      pending.resolve();
    }
    this.#wakeUp?.();
    await this.#settle(performance.now() + CLOSE_LINGER_MS);
    // Sockets first, on every path: ending a worker with an open zeromq socket aborts Node.
    for (const edge of this.#edges) {
      edge.socket.close();
      Atomics.store(edge.flags, WAITING, 0);
    }
    return socketsReleased();
  }

  #isClosed(): boolean {
    return this.#closedHere || Atomics.load(this.#control, CONTROL_CLOSED) !== 0;
  }

  /**
   * At close while the pipeline runs (a source that ends on its own): waits until every live sink
   * has acknowledged everything sent, or `deadline`. Closing while a sink still acknowledges loses
   * the last messages on a busy machine: an acknowledgement that reaches the closed socket resets
   * the TCP connection, and the reset drops what the kernel (or the socket's own buffer) had not
   * sent yet. Once a sink has acknowledged everything, it sends nothing more.
   */
  async #settle(deadline: number): Promise<void> {
    for (;;) {
      if (Atomics.load(this.#control, CONTROL_CLOSED) !== 0) return;
      const waiting = this.#edges.some(
        (edge) =>
          (edge.unacked.length > 0 || edge.backlog.length > 0) &&
          Atomics.load(edge.flags, SINK_GONE) === 0 &&
          // A sink known to be unreachable or refusing this source will not acknowledge anything.
          !edge.state.startsWith('refused') &&
          !edge.state.startsWith('cannot connect'),
      );
      const left = deadline - performance.now();
      if (!waiting || left <= 0) return;
      // An acknowledgement wakes it; the flags (a sink gone, the plan closed) are looked at every few ms.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => this.#acknowledged?.(), Math.min(left, SETTLE_POLL_MS));
        this.#acknowledged = () => {
          clearTimeout(timer);
          this.#acknowledged = undefined;
          resolve();
        };
      });
    }
  }

  room(): number {
    if (this.#isClosed() || this.#onHeld !== undefined || this.#queue.length > 0) return 0;
    return this.#credit();
  }

  /** Whether every live `block` sink has credit left (refreshing which sinks are gone). */
  #hasRoom(): boolean {
    return this.#credit() > 0;
  }

  /** The least credit a live `block` sink has left (Infinity without one), refreshing which sinks are gone. */
  #credit(): number {
    let credit = Number.POSITIVE_INFINITY;
    for (const edge of this.#edges) {
      this.#refreshGone(edge);
      if (!edge.gone && !edge.dropOldest) credit = Math.min(credit, edge.capacity - edge.unacked.length);
    }
    return Math.max(0, credit);
  }

  /** Sends one message to every sink (room was checked). */
  #send(bytes: Uint8Array): void {
    let reached = false;
    let missed = 0;
    for (const edge of this.#edges) {
      if (edge.gone) {
        edge.counts[DROPPED_AT_SOURCE]! += 1;
        missed++;
        continue;
      }
      reached = true;
      if (edge.dropOldest && edge.unacked.length >= edge.capacity + stallSlack(edge.capacity)) {
        edge.backlog.push(bytes);
        if (edge.backlog.length > edge.capacity) {
          edge.counts[DROPPED_AT_SOURCE]! += 1;
          this.#report(edge.backlog.shift()!, 'drop-oldest', this.#edges.length === 1);
        }
        continue;
      }
      this.#transmit(edge, bytes);
    }
    // Nobody got it: the whole message is dropped (also under fan-out). Some sinks missed it: each
    // of those copies is dropped for one sink.
    if (!reached) this.#report(bytes, 'sink-gone', true);
    else for (; missed > 0; missed--) this.#report(bytes, 'sink-gone', false);
  }

  #transmit(edge: OutEdge, bytes: Uint8Array): void {
    if (this.#corked && edge.batches) {
      // Sent at `uncork` with the rest of the batch for the same sink (e.g. messages that waited for a
      // store's group commit): one message of many frames costs its sink one read, not one each.
      if (edge.outbox.length === 0) this.#outboxes.push(edge);
      edge.outbox.push(bytes);
    } else {
      edge.socket.send([edge.header, bytes]);
    }
    edge.unacked.push(bytes);
    edge.counts[SENT]! += 1;
    edge.counts[BYTES_SENT]! += bytes.length;
  }

  cork(): void {
    this.#corked = true;
  }

  uncork(): void {
    this.#corked = false;
    this.#sendOutboxes();
  }

  /**
   * Gives each outbox to its socket, in order: several small messages as one `[0x03]` (their bodies
   * packed in one frame), a message on its own or larger than {@link PACK_MAX_BODY_BYTES} as `[0x01]`.
   */
  #sendOutboxes(): void {
    if (this.#outboxes.length === 0) return;
    const edges = this.#outboxes;
    this.#outboxes = [];
    for (const edge of edges) {
      const outbox = edge.outbox;
      if (outbox.length === 0) continue; // emptied meanwhile (its socket was replaced)
      edge.outbox = [];
      let from = 0;
      for (let index = 0; index < outbox.length; index++) {
        if (outbox[index]!.length <= PACK_MAX_BODY_BYTES) continue;
        this.#sendRun(edge, outbox, from, index);
        edge.socket.send([edge.header, outbox[index]!]);
        from = index + 1;
      }
      this.#sendRun(edge, outbox, from, outbox.length);
    }
  }

  /** Sends `bodies[from..to)`: none, one as `[0x01]`, several as one `[0x03]`. */
  #sendRun(edge: OutEdge, bodies: Uint8Array[], from: number, to: number): void {
    if (to - from === 1) edge.socket.send([edge.header, bodies[from]!]);
    else if (to - from > 1) {
      const run = from === 0 && to === bodies.length ? bodies : bodies.slice(from, to);
      edge.socket.send([edge.batchHeader, packBodies(run)]);
    }
  }

  /**
   * Notices a sink that went away, came back, or was replaced by a new one (a restarted actor) while
   * this source was not looking: what the old one had not read is reported, once, or sent to the new one.
   */
  #refreshGone(edge: OutEdge): void {
    const gone = Atomics.load(edge.flags, SINK_GONE) !== 0;
    const epoch = Atomics.load(edge.flags, SINK_EPOCH);
    // The first sink to open (epoch 1) is not a replacement; any later one is, also one this source
    // sees first (the first sink came and went unseen: 0 → 2).
    const replaced = Math.max(edge.epoch, 1) !== Math.max(epoch, 1) && !edge.gone;
    if (epoch !== edge.epoch) {
      edge.epoch = epoch;
      edge.header = messageFrame(epoch);
      edge.batchHeader = messageFrame(epoch, FRAME_BATCH);
    }
    if (gone === edge.gone && !replaced) return;
    edge.gone = gone;
    if (gone || replaced) {
      // A fresh socket, and messages stamped with the new epoch: what the old socket still holds for
      // the old sink may reach the new one (the old socket reconnects by itself, and may have done so
      // before this source looked), and the new sink ignores it; it gets each message once, from here.
      // What waited in the outbox is in `unacked` too: sent again or reported below, as the rest. The
      // new sink says again whether it reads several messages in one.
      edge.socket.close();
      edge.outbox = [];
      edge.batches = false;
      edge.socket = this.#openDealer(edge);
      edge.state = 'connecting';
    }
    if (replaced && !gone) {
      // A restarted sink (detached with `restarting`): everything the old one had not acknowledged
      // goes to the new one, in order — what it never got, and what it got but had not read. A
      // message it read in its last moment (acknowledgements go out once per turn) comes again.
      for (const bytes of [...edge.unacked.clear(), ...edge.backlog.clear()]) {
        edge.socket.send([edge.header, bytes]);
        edge.unacked.push(bytes);
      }
      return;
    }
    const sole = this.#edges.length === 1;
    // Gone: nobody reads these. Back (a revived sink): they were reported when it went.
    for (const bytes of [...edge.unacked.clear(), ...edge.backlog.clear()]) {
      if (gone) this.#report(bytes, 'sink-gone', sole);
    }
  }

  #onAck(edge: OutEdge, frames: Uint8Array[]): void {
    const [type, payload] = frames;
    if (type?.[0] === FRAME_BATCHES_WELCOME) {
      edge.batches = true;
      return;
    }
    if (type?.[0] !== FRAME_ACK || payload === undefined || payload.length < 8) return;
    const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
    const taken = view.getUint32(0, true);
    const dropped = view.getUint32(4, true);
    this.#lastAck = Date.now();
    if (this.#silenceReported) {
      this.#silenceReported = false;
      this.#hooks.warn?.(`link "${this.#label}": ${edge.peer} acknowledges again; messages flow`);
    }
    edge.counts[ACKED_TAKEN]! += taken;
    edge.counts[ACKED_DROPPED]! += dropped;
    for (let n = 0; n < taken; n++) edge.unacked.shift();
    const sole = this.#edges.length === 1;
    for (let n = 0; n < dropped; n++) {
      const bytes = edge.unacked.shift();
      if (bytes !== undefined) this.#report(bytes, 'drop-oldest', sole);
    }
    // A stalled drop-oldest sink reads again: what waited goes out now.
    while (edge.backlog.length > 0 && edge.unacked.length < edge.capacity + stallSlack(edge.capacity)) {
      this.#transmit(edge, edge.backlog.shift()!);
    }
    this.#wakeUp?.();
    this.#acknowledged?.();
  }

  /**
   * Connection news, where the sockets give it (not in worker threads with zeromq.js): a refused
   * handshake is a misconfiguration and said at once; whether the sink is reachable goes into the
   * report of a producer left waiting (a source that starts before its sink is normal).
   */
  #onEvent(edge: OutEdge, event: SocketEvent): void {
    if (event.type === 'handshake-failed') {
      // Said once per outage: the DEALER retries every few milliseconds.
      const already = edge.state.startsWith('refused');
      edge.state = `refused: ${event.reason}`;
      if (already) return;
      this.#hooks.warn?.(
        `link "${this.#label}" → ${edge.peer} (connection "${edge.connection}", ${edge.address}): the sink refused the connection (${event.reason}); both ends need the pipeline's CURVE keys (settings.zmq.keys or IMPROV_ZMQ_KEYS)`,
      );
    } else if (event.type === 'retrying') {
      edge.state = `cannot connect (${event.reason})`;
    } else if (event.type === 'disconnected') {
      edge.state = 'disconnected';
    } else if (event.type === 'connected') {
      edge.state = 'connected';
    }
  }

  /** Sends waiting puts in order, as room comes. */
  async #pump(): Promise<void> {
    this.#pumping = true;
    try {
      while (this.#queue.length > 0) {
        if (this.#isClosed()) {
          const error = closedLinkError(this.#label, this.#closedHere);
          for (const pending of this.#queue.splice(0)) pending.reject(error);
          break;
        }
        if (this.#onHeld !== undefined) {
          this.#onHeld();
          break;
        }
        if (this.#hasRoom()) {
          const pending = this.#queue.shift()!;
          this.#send(pending.bytes);
          pending.resolve();
          continue;
        }
        await this.#waitForChange();
      }
    } finally {
      this.#pumping = false;
      for (const edge of this.#edges) Atomics.store(edge.flags, WAITING, 0);
    }
  }

  /** Sleeps until an acknowledgement, a release, or a change of the plan's flags. */
  #waitForChange(): Promise<void> {
    for (const edge of this.#edges) {
      const full = !edge.gone && !edge.dropOldest && edge.unacked.length >= edge.capacity;
      Atomics.store(edge.flags, WAITING, full ? 1 : 0);
    }
    this.#watchSilence();
    return new Promise((resolve) => {
      this.#wakeUp = () => {
        this.#wakeUp = undefined;
        resolve();
      };
    });
  }

  /**
   * Reports a producer that waits for room while its full sink says nothing: the sink's actor does
   * not read, or its process is gone, unreachable, or refuses this pipeline's CURVE key (a refused
   * handshake delivers nothing, so silence is what the source sees).
   */
  #watchSilence(): void {
    if (this.#silenceTimer !== undefined || this.#silenceReported) return;
    const timer = setTimeout(() => {
      this.#silenceTimer = undefined;
      if (!this.#pumping || this.#queue.length === 0 || this.#isClosed()) return;
      const silent = Date.now() - this.#lastAck;
      if (silent < SILENCE_MS) {
        this.#watchSilence();
        return;
      }
      this.#silenceReported = true;
      const full = this.#edges.filter((edge) => !edge.gone && !edge.dropOldest && edge.unacked.length >= edge.capacity);
      for (const edge of full) {
        this.#hooks.warn?.(
          `link "${this.#label}" → ${edge.peer} (connection "${edge.connection}", ${edge.address}): waiting for room since ${new Date(this.#lastAck).toISOString()} — ${edge.unacked.length} messages unacknowledged, ${this.#queue.length} put() waiting; connection: ${edge.state}. The sink's actor does not read, or its process is gone, unreachable, or refuses this pipeline's CURVE key`,
        );
      }
    }, SILENCE_MS);
    (timer as { unref?: () => void }).unref?.();
    this.#silenceTimer = timer;
  }

  #report(bytes: Uint8Array, reason: DropReason, whole: boolean): void {
    const hook = whole ? this.#hooks.dropped : this.#hooks.droppedForOneSink;
    if (hook === undefined) return;
    try {
      hook(new MsgpackDecoder().decode(bytes), reason);
    } catch {
      // A hook's failure must not break the link.
    }
  }

  #pilingUp(): void {
    if (this.#warnedPilingUp) return;
    this.#warnedPilingUp = true;
    this.#hooks.warn?.(
      `link "${this.#label}": ${this.#queue.length} put() calls are waiting at once — did you forget \`await\` before this.${this.name}.put()? Each unawaited put keeps its message in memory until the sink has room`,
    );
  }
}
