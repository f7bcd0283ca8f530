/**
 * The planning side's view of every edge (package-private): counters for `Transport.stats`, and
 * what `detach` and `drain` do to a ring from outside its two endpoints.
 * @module
 */
import { type DrainedMessages, type LinkEdge, type LinkStats, MsgpackDecoder } from '@improv/core';
import {
  BELL_SEQ,
  CONSUMER_CLOSED,
  copyRecord,
  DISCARDED,
  DROPPED,
  PAYLOAD,
  PREFIX_BYTES,
  PRODUCER_CLOSED,
  PRODUCER_SLEEPING,
  READ,
  READ_COUNT,
  type RingViews,
  recordBytes,
  ringViews,
  SPACE_SEQ,
  WRITE,
  WRITTEN,
  wake,
} from './_layout.ts';

/** One edge of a plan, as the transport keeps it. */
export class PlannedEdge {
  readonly edge: LinkEdge;
  readonly ring: RingViews;
  readonly #bell: Int32Array<SharedArrayBuffer>;
  /** Whether its source feeds this edge alone (no fan-out copy of its messages elsewhere). */
  sole = true;
  /**
   * Payload bytes so far, unwrapped from the ring's int32 `PAYLOAD` word at every {@link stats}
   * call: exact as long as fewer than 4 GiB pass between two calls (Nexus calls it at least once a
   * second).
   */
  #bytes = 0;
  #payloadWord = 0;

  constructor(edge: LinkEdge, buffer: SharedArrayBuffer, doorbell: SharedArrayBuffer) {
    this.edge = edge;
    this.ring = ringViews(buffer);
    this.#bell = new Int32Array(doorbell);
  }

  stats(): LinkStats {
    const header = this.ring.header;
    const written = Atomics.load(header, WRITTEN);
    const payload = Atomics.load(header, PAYLOAD);
    this.#bytes += (payload - this.#payloadWord) >>> 0;
    this.#payloadWord = payload;
    const { connection, from, to, capacity, policy } = this.edge;
    return {
      connection,
      from,
      to,
      capacity,
      policy,
      depth: Math.max(0, (written - Atomics.load(header, READ_COUNT)) | 0),
      sent: written >>> 0,
      bytes: this.#bytes,
      dropped: (Atomics.load(header, DROPPED) + Atomics.load(header, DISCARDED)) >>> 0,
      waiting: Atomics.load(header, PRODUCER_SLEEPING) !== 0,
    };
  }

  /** The sink is gone: the producer stops waiting for it and discards what it sends it. */
  closeSink(): void {
    Atomics.store(this.ring.header, CONSUMER_CLOSED, 1);
    wake(this.ring.header, SPACE_SEQ);
  }

  /**
   * The source's worker is gone (also when it is restarted): a put it was waiting in died with it,
   * so the edge no longer says its producer waits for room (the flag it left would say so for ever).
   */
  producerGone(): void {
    Atomics.store(this.ring.header, PRODUCER_SLEEPING, 0);
  }

  /** The source is gone: a sink waiting on this edge alone learns that nothing more comes. */
  closeSource(): void {
    Atomics.store(this.ring.header, PRODUCER_CLOSED, 1);
    wake(this.#bell, BELL_SEQ);
  }

  /**
   * Takes every message out of the ring, as its consumer would (compare-exchange on the read index,
   * so a drop-oldest producer racing us never hands out a record twice), counting them discarded.
   */
  drain(): DrainedMessages | undefined {
    const { ring } = this;
    const header = ring.header;
    const messages: unknown[] = [];
    const decoder = new MsgpackDecoder();
    for (;;) {
      const read = Atomics.load(header, READ);
      if (read === Atomics.load(header, WRITE)) break;
      const position = read & ring.mask;
      const length = ring.data32[position >> 2]!;
      if (length < 0 || length > ring.maxLength) continue;
      const bytes = copyRecord(ring, (position + PREFIX_BYTES) & ring.mask, length);
      if (Atomics.compareExchange(header, READ, read, (read + recordBytes(length)) | 0) !== read) continue;
      Atomics.add(header, READ_COUNT, 1);
      Atomics.add(header, DISCARDED, 1);
      try {
        messages.push(decoder.decode(bytes));
      } catch {
        // Counted as discarded all the same; a record that does not decode carries no key we can find.
      }
    }
    if (messages.length === 0) return undefined;
    const { connection, from, to } = this.edge;
    return { connection, from, to, messages, sole: this.sole };
  }
}
