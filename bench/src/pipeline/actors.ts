/**
 * The bench's actors: ordinary improv actors, run by Nexus in their own workers, talking over the
 * real store and links. A source sends what the board asks for (paced for latency, flat out for
 * throughput), relays pass messages on after reading the data, and sinks check every value, record
 * its latency, delete it and report. Only the board (bench bookkeeping) bypasses the pipeline.
 * @module
 */
import { Actor, type ActorContext } from '@improv/core';
import { createClock } from '../clock.ts';
import {
  type BenchActorOptions,
  type BenchMessage,
  type Board,
  MODE_IDLE,
  MODE_LATENCY,
  openBoard,
  P_CAPACITY,
  P_COUNT,
  P_DURATION_US,
  P_INTERVAL_US,
  P_MODE,
  P_PATH,
  P_SIZE,
  P_SOURCE_DELETES,
  PATH_ALLOCATE,
  PATH_PUT,
  PATH_PUT_DELETE,
  S_END_US,
  S_ERRORS,
  S_FIRST_SEND_US,
  S_LAST_SEND_US,
  S_RECEIVED,
  S_SENT,
  stat,
  W_DONE,
  W_PHASE,
} from './board.ts';

/** How long a source waits for the next phase before its step returns (so stop never waits long). */
const PHASE_WAIT_MS = 1000;

abstract class BenchActor extends Actor<BenchActorOptions> {
  protected readonly board: Board;
  protected readonly now: () => number;
  protected readonly index: number;

  constructor(context: ActorContext<BenchActorOptions>) {
    super(context);
    this.board = openBoard(this.options.board);
    this.now = createClock(this.options.epochMs);
    this.index = this.options.index;
  }

  protected setStat(slot: number, value: number): void {
    this.board.stats[stat(this.index, slot)] = value;
  }

  /** Data that did not arrive intact; cumulative, the main thread takes differences. */
  protected countError(): void {
    this.board.stats[stat(this.index, S_ERRORS)]! += 1;
  }

  /** Tells the main thread this actor is done with `phase` (after its counters are written). */
  protected finish(phase: number): void {
    Atomics.store(this.board.words, W_DONE + this.index, phase);
    Atomics.notify(this.board.words, W_DONE + this.index);
  }
}

/** Sends what each phase asks for: `store.put` of an existing array, `store.allocate`, or inline. */
export class BenchSource extends BenchActor {
  #phase = 0;
  #payload = new Uint8Array(0);
  /** Blocks this worker between paced messages (never notified: a timed sleep). */
  readonly #sleeper = new Int32Array(new SharedArrayBuffer(4));
  /** Keys sent under fan-out, deleted once every sink must be done with them. */
  readonly #sentKeys: string[] = [];

  async runStep(): Promise<void> {
    const { words, params } = this.board;
    const phase = Atomics.load(words, W_PHASE);
    if (phase === this.#phase) {
      const waiting = Atomics.waitAsync(words, W_PHASE, phase, PHASE_WAIT_MS);
      if (waiting.async) await waiting.value;
      return;
    }
    this.#phase = phase;
    // The previous phase is over for every sink (the main thread waited for them all).
    for (const key of this.#sentKeys.splice(0)) await this.store.delete(key);
    const mode = params[P_MODE]!;
    if (mode === MODE_IDLE) return;
    const size = params[P_SIZE]!;
    if (this.#payload.length !== size) {
      this.#payload = new Uint8Array(size);
      for (let index = 0; index < size; index++) this.#payload[index] = index & 255;
    }
    if (mode === MODE_LATENCY) await this.#paced(phase);
    else await this.#flood(phase);
    this.finish(phase);
  }

  /** One message every `P_INTERVAL_US`, each stamped just before the producer starts on it. */
  async #paced(phase: number): Promise<void> {
    const params = this.board.params;
    const count = params[P_COUNT]!;
    const interval = params[P_INTERVAL_US]!;
    const start = this.now() + interval;
    this.setStat(S_FIRST_SEND_US, start);
    for (let index = 0; index < count; index++) {
      const wait = start + index * interval - this.now();
      if (wait > 0) Atomics.wait(this.#sleeper, 0, 0, wait / 1000);
      await this.#send(phase, index, true);
    }
    this.setStat(S_SENT, count);
    this.setStat(S_LAST_SEND_US, this.now());
  }

  /** As fast as the pipeline takes them for `P_DURATION_US`, then an end marker. */
  async #flood(phase: number): Promise<void> {
    const end = this.now() + this.board.params[P_DURATION_US]!;
    this.setStat(S_FIRST_SEND_US, this.now());
    let index = 0;
    do {
      await this.#send(phase, index, false);
      index++;
    } while ((index & 15) !== 0 || this.now() < end);
    this.setStat(S_SENT, index);
    this.setStat(S_LAST_SEND_US, this.now());
    await this.q_out.put({ p: phase, i: -1, t: this.now() } satisfies BenchMessage);
  }

  async #send(phase: number, index: number, stamp: boolean): Promise<void> {
    const params = this.board.params;
    const path = params[P_PATH]!;
    let message: BenchMessage;
    if (path === PATH_ALLOCATE) {
      const t = stamp ? this.now() : 0;
      const { key, array } = await this.store.allocate('uint8', params[P_SIZE]!);
      // The frame's content is the acquisition's business (a camera writes it in place); the
      // stamp lets the sink check that this very frame arrived.
      if (array.length > 0) array[0] = index & 255;
      message = { p: phase, i: index, t, k: key };
    } else if (path === PATH_PUT_DELETE) {
      // A new array every time, as a producer that makes a fresh buffer per message would.
      const t = stamp ? this.now() : 0;
      message = { p: phase, i: index, t, k: await this.store.put(new Uint8Array(params[P_SIZE]!)) };
    } else {
      const payload = this.#payload;
      if (payload.length > 0) payload[0] = index & 255;
      const t = stamp ? this.now() : 0;
      message =
        path === PATH_PUT
          ? { p: phase, i: index, t, k: await this.store.put(payload) }
          : { p: phase, i: index, t, d: payload };
    }
    await this.q_out.put(message);
    if (message.k !== undefined && params[P_SOURCE_DELETES] === 1) {
      // With `block` links of capacity C, once this put returned every sink has taken all but the
      // last C messages, and a sink is done with a message once it takes the next one.
      this.#sentKeys.push(message.k);
      if (this.#sentKeys.length > params[P_CAPACITY]! + 1) await this.store.delete(this.#sentKeys.shift()!);
    }
  }
}

/** Reads the data behind every message (a view, no copy) and passes the message on. */
export class BenchRelay extends BenchActor {
  async runStep(): Promise<void> {
    const message = (await this.q_in.get()) as BenchMessage;
    if (message.k !== undefined && message.i >= 0) {
      const data = await this.store.get<Uint8Array>(message.k);
      if (data.length > 0 && data[0] !== (message.i & 255)) this.countError();
    }
    await this.q_out.put(message);
  }
}

/**
 * Checks every value, records its latency (paced phases), deletes it and reports the phase. On the
 * `put-delete` path it deletes the key without reading the value (a delete that finds nothing counts
 * as an error).
 */
export class BenchSink extends BenchActor {
  readonly #samples: Float64Array | undefined;
  readonly #sources: number;
  #phase = -1;
  #latency = false;
  #size = 0;
  #sinkDeletes = true;
  #readsData = true;
  #expected = 0;
  #received = 0;
  #ends = 0;

  constructor(context: ActorContext<BenchActorOptions>) {
    super(context);
    this.#samples = this.options.samples === undefined ? undefined : new Float64Array(this.options.samples);
    this.#sources = this.options.sources ?? 1;
  }

  async runStep(): Promise<void> {
    const message = (await this.q_in.get()) as BenchMessage;
    if (message.p !== this.#phase) {
      // An actor in a process of its own sees the board through a mirror: the source's first message
      // can come before the new phase's parameters. They are there once the phase word is.
      const words = this.board.words;
      while (Atomics.load(words, W_PHASE) < message.p) {
        const waiting = Atomics.waitAsync(words, W_PHASE, Atomics.load(words, W_PHASE), PHASE_WAIT_MS);
        if (waiting.async) await waiting.value;
      }
      this.#begin(message.p);
    }
    if (message.i < 0) {
      this.#ends += 1;
      if (this.#ends === this.#sources) this.#end();
      return;
    }
    if (this.#readsData) {
      const data = message.k === undefined ? message.d : await this.store.get<Uint8Array>(message.k);
      if (
        !(data instanceof Uint8Array) ||
        data.length !== this.#size ||
        (data.length > 0 && data[0] !== (message.i & 255))
      ) {
        this.countError();
      }
    }
    const samples = this.#samples;
    if (this.#latency && samples !== undefined && this.#received < samples.length) {
      samples[this.#received] = this.now() - message.t;
    }
    if (message.k === undefined) {
      if (!this.#readsData) this.countError();
    } else if (this.#sinkDeletes && !(await this.store.delete(message.k)) && !this.#readsData) {
      this.countError();
    }
    this.#received += 1;
    if (this.#latency && this.#received === this.#expected) this.#end();
  }

  #begin(phase: number): void {
    const params = this.board.params;
    this.#phase = phase;
    this.#latency = params[P_MODE] === MODE_LATENCY;
    this.#size = params[P_SIZE]!;
    this.#sinkDeletes = params[P_SOURCE_DELETES] !== 1;
    this.#readsData = params[P_PATH] !== PATH_PUT_DELETE;
    this.#expected = params[P_COUNT]! * this.#sources;
    this.#received = 0;
    this.#ends = 0;
  }

  #end(): void {
    this.setStat(S_RECEIVED, this.#received);
    this.setStat(S_END_US, this.now());
    this.finish(this.#phase);
  }
}
