/**
 * The raw ring baseline: a single-producer single-consumer ring of fixed 16-byte records
 * (timestamp, sequence number) in a SharedArrayBuffer — no encoding, no store, no framing. It
 * waits the way the local transport does: spin a few hundred iterations, then sleep with
 * `Atomics.waitAsync` on a doorbell (flag, then re-check), so its figures are the floor the
 * transport's own mechanism allows.
 * @module
 */

const HEAD = 0; // records written (a wrapping int32); producer
const TAIL = 16; // records read (wrapping); consumer
const CONSUMER_SLEEPING = 32;
const BELL = 33;
const PRODUCER_SLEEPING = 48;
const SPACE = 49;
const HEADER_BYTES = 256;
const RECORD_FLOATS = 2;

/** Records a ring holds. */
export const RING_RECORDS = 1024;

/** A new ring buffer. */
export function createRingBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(HEADER_BYTES + RING_RECORDS * RECORD_FLOATS * 8);
}

const pause = (Atomics as { pause?: () => void }).pause;
/** The transport's spin step: `Atomics.pause()` where the runtime has it. */
const relax: () => void = pause === undefined ? () => {} : () => pause.call(Atomics);

function wake(words: Int32Array<SharedArrayBuffer>, index: number): void {
  Atomics.add(words, index, 1);
  Atomics.notify(words, index);
}

export class RingProducer {
  readonly #words: Int32Array<SharedArrayBuffer>;
  readonly #data: Float64Array<SharedArrayBuffer>;
  readonly #spin: number;
  #head = 0;
  #tail = 0;

  constructor(buffer: SharedArrayBuffer, spin: number) {
    this.#words = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    this.#data = new Float64Array(buffer, HEADER_BYTES);
    this.#spin = spin;
    this.#head = Atomics.load(this.#words, HEAD);
  }

  /** Writes a record; returns a promise only when it had to wait for room. */
  put(time: number, sequence: number): undefined | Promise<void> {
    if (!this.#hasRoom()) {
      for (let index = 0; index < this.#spin; index++) {
        relax();
        if (this.#hasRoom()) return this.#write(time, sequence);
      }
      return this.#sleepThenPut(time, sequence);
    }
    return this.#write(time, sequence);
  }

  #hasRoom(): boolean {
    if (((this.#head - this.#tail) | 0) < RING_RECORDS) return true;
    this.#tail = Atomics.load(this.#words, TAIL);
    return ((this.#head - this.#tail) | 0) < RING_RECORDS;
  }

  #write(time: number, sequence: number): undefined {
    const slot = (this.#head & (RING_RECORDS - 1)) * RECORD_FLOATS;
    this.#data[slot] = time;
    this.#data[slot + 1] = sequence;
    this.#head = (this.#head + 1) | 0;
    Atomics.store(this.#words, HEAD, this.#head);
    if (Atomics.load(this.#words, CONSUMER_SLEEPING) !== 0) wake(this.#words, BELL);
    return undefined;
  }

  async #sleepThenPut(time: number, sequence: number): Promise<void> {
    const words = this.#words;
    while (!this.#hasRoom()) {
      Atomics.store(words, PRODUCER_SLEEPING, 1);
      const seq = Atomics.load(words, SPACE);
      if (!this.#hasRoom()) {
        const result = Atomics.waitAsync(words, SPACE, seq);
        if (result.async) await result.value;
      }
      Atomics.store(words, PRODUCER_SLEEPING, 0);
    }
    this.#write(time, sequence);
  }
}

export class RingConsumer {
  readonly #words: Int32Array<SharedArrayBuffer>;
  readonly #data: Float64Array<SharedArrayBuffer>;
  readonly #spin: number;
  #head = 0;
  #tail = 0;
  /** The last record taken: time, sequence. */
  time = 0;
  sequence = 0;

  constructor(buffer: SharedArrayBuffer, spin: number) {
    this.#words = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    this.#data = new Float64Array(buffer, HEADER_BYTES);
    this.#spin = spin;
    this.#tail = Atomics.load(this.#words, TAIL);
  }

  /** Takes the next record into `time`/`sequence`; returns a promise only when it had to sleep. */
  take(): undefined | Promise<void> {
    if (this.#hasData()) return this.#read();
    for (let index = 0; index < this.#spin; index++) {
      relax();
      if (this.#hasData()) return this.#read();
    }
    return this.#sleepThenTake();
  }

  #hasData(): boolean {
    if (this.#tail !== this.#head) return true;
    this.#head = Atomics.load(this.#words, HEAD);
    return this.#tail !== this.#head;
  }

  #read(): undefined {
    const slot = (this.#tail & (RING_RECORDS - 1)) * RECORD_FLOATS;
    this.time = this.#data[slot]!;
    this.sequence = this.#data[slot + 1]!;
    this.#tail = (this.#tail + 1) | 0;
    Atomics.store(this.#words, TAIL, this.#tail);
    if (Atomics.load(this.#words, PRODUCER_SLEEPING) !== 0) wake(this.#words, SPACE);
    return undefined;
  }

  async #sleepThenTake(): Promise<void> {
    const words = this.#words;
    while (!this.#hasData()) {
      Atomics.store(words, CONSUMER_SLEEPING, 1);
      const seq = Atomics.load(words, BELL);
      if (!this.#hasData()) {
        const result = Atomics.waitAsync(words, BELL, seq);
        if (result.async) await result.value;
      }
      Atomics.store(words, CONSUMER_SLEEPING, 0);
    }
    this.#read();
  }
}
