/**
 * Worker entry of the store conformance suite's hammer test (package-private). It connects to the
 * store of the descriptor it is sent, then runs put → get/verify → delete cycles of values whose
 * content is derived from (writer, sequence), so any mix-up between workers or any torn write is
 * seen as a mismatch. The same value recipes are used by the suite to verify keys in the main thread.
 * @module
 */
import type { WorkerEndpoint } from '../runtime/adapter.ts';
import type { ConnectStore, StoreClient, StoreDescriptor, StoreKey } from '../store/driver.ts';

/** A key a worker kept alive for others to read and delete. */
export interface SharedKey {
  key: StoreKey;
  writer: number;
  sequence: number;
}

/** Messages the suite sends. */
export type HammerCommand =
  | { type: 'connect'; descriptor: StoreDescriptor }
  | {
      type: 'run';
      writer: number;
      /** First sequence number, so two runs of one writer never produce the same value. */
      firstSequence: number;
      cycles: number;
      /** Every `shareEvery`-th value is kept and reported instead of deleted; 0 keeps none. */
      shareEvery: number;
      /** Keys another worker wrote: verify each and delete it, between own cycles. */
      foreign: SharedKey[];
    }
  | { type: 'quit' };

/** What a worker reports after a `run`. */
export interface HammerReport {
  type: 'report';
  writer: number;
  puts: number;
  verified: number;
  foreignVerified: number;
  mismatches: number;
  /** The first few mismatches, described. */
  problems: string[];
  shared: SharedKey[];
}

const WINDOW = 8;
const MAX_PROBLEMS = 10;

/** Length of the array (or sample list) of value `sequence` of `writer`: varies from 0 to ~4000. */
function lengthOf(writer: number, sequence: number): number {
  return (sequence * 7919 + writer * 131) % 4001;
}

function int32At(writer: number, sequence: number, index: number): number {
  return (writer * 1_000_003 + sequence * 31 + index * 7) | 0;
}

function float64At(writer: number, sequence: number, index: number): number {
  return writer * 1e6 + sequence + index / 4096;
}

function uint16At(writer: number, sequence: number, index: number): number {
  return (writer * 4099 + sequence * 13 + index) & 0xffff;
}

/**
 * Stores value `sequence` of `writer`: one of four recipes (a raw Int32Array, a shaped Float64Array,
 * a msgpack object with a nested typed array, an array written in place through `allocate`).
 */
export async function putValue(store: StoreClient, writer: number, sequence: number): Promise<StoreKey> {
  const length = lengthOf(writer, sequence);
  switch (sequence % 4) {
    case 0: {
      const array = new Int32Array(length);
      for (let index = 0; index < length; index++) array[index] = int32At(writer, sequence, index);
      return store.put(array);
    }
    case 1: {
      const rows = 2;
      const columns = Math.floor(length / 2);
      const array = new Float64Array(rows * columns);
      for (let index = 0; index < array.length; index++) array[index] = float64At(writer, sequence, index);
      return store.put(array, { shape: [rows, columns] });
    }
    case 2: {
      const samples = new Float32Array(length % 97);
      for (let index = 0; index < samples.length; index++) samples[index] = index - writer;
      return store.put({
        writer,
        sequence,
        label: `writer ${writer} value ${sequence} ${'x'.repeat(length % 300)}`,
        samples,
        nested: [sequence, -sequence, { ok: true, none: null }],
      });
    }
    default: {
      const { key, array } = await store.allocate('uint16', length);
      for (let index = 0; index < length; index++) array[index] = uint16At(writer, sequence, index);
      // What the actor host does before a key leaves the actor: a copying driver writes it now.
      await store.flush();
      return key;
    }
  }
}

/** Reads value `sequence` of `writer` under `key`; returns a description of what is wrong, or undefined. */
export async function checkValue(
  store: StoreClient,
  key: StoreKey,
  writer: number,
  sequence: number,
): Promise<string | undefined> {
  const where = `value ${sequence} of writer ${writer} (key ${key})`;
  const length = lengthOf(writer, sequence);
  switch (sequence % 4) {
    case 0: {
      const array = await store.get(key);
      if (!(array instanceof Int32Array) || array.length !== length) return `${where}: not an Int32Array(${length})`;
      for (let index = 0; index < length; index++) {
        if (array[index] !== int32At(writer, sequence, index)) return `${where}: element ${index} is ${array[index]}`;
      }
      return undefined;
    }
    case 1: {
      const { array, dtype, shape } = await store.getArray(key);
      const columns = Math.floor(length / 2);
      if (!(array instanceof Float64Array) || dtype !== 'float64' || shape.join() !== `2,${columns}`) {
        return `${where}: not a float64 array of shape [2, ${columns}] (got ${dtype} [${shape.join(', ')}])`;
      }
      for (let index = 0; index < array.length; index++) {
        if (array[index] !== float64At(writer, sequence, index)) return `${where}: element ${index} is ${array[index]}`;
      }
      return undefined;
    }
    case 2: {
      const value = (await store.get(key)) as Record<string, unknown> | null;
      const samples = value?.samples;
      const expectedLabel = `writer ${writer} value ${sequence} ${'x'.repeat(length % 300)}`;
      if (value?.writer !== writer || value.sequence !== sequence || value.label !== expectedLabel) {
        return `${where}: got the object of writer ${String(value?.writer)} value ${String(value?.sequence)}`;
      }
      if (!(samples instanceof Float32Array) || samples.length !== length % 97) return `${where}: samples are wrong`;
      for (let index = 0; index < samples.length; index++) {
        if (samples[index] !== index - writer) return `${where}: sample ${index} is ${samples[index]}`;
      }
      if (JSON.stringify(value.nested) !== JSON.stringify([sequence, -sequence, { ok: true, none: null }])) {
        return `${where}: nested is ${JSON.stringify(value.nested)}`;
      }
      return undefined;
    }
    default: {
      const array = await store.get(key);
      if (!(array instanceof Uint16Array) || array.length !== length) return `${where}: not a Uint16Array(${length})`;
      for (let index = 0; index < length; index++) {
        if (array[index] !== uint16At(writer, sequence, index)) return `${where}: element ${index} is ${array[index]}`;
      }
      return undefined;
    }
  }
}

async function run(store: StoreClient, command: Extract<HammerCommand, { type: 'run' }>): Promise<HammerReport> {
  const report: HammerReport = {
    type: 'report',
    writer: command.writer,
    puts: 0,
    verified: 0,
    foreignVerified: 0,
    mismatches: 0,
    problems: [],
    shared: [],
  };
  const fail = (problem: string) => {
    report.mismatches++;
    if (report.problems.length < MAX_PROBLEMS) report.problems.push(problem);
  };
  const check = async (key: StoreKey, writer: number, sequence: number) => {
    try {
      const problem = await checkValue(store, key, writer, sequence);
      if (problem === undefined) return true;
      fail(problem);
    } catch (error) {
      fail(`value ${sequence} of writer ${writer} (key ${key}): ${String(error)}`);
    }
    return false;
  };
  // A window of live values: each is verified right after its put and again just before its
  // delete, so a value overwritten by another worker while it lived is caught too.
  const window: { key: StoreKey; sequence: number }[] = [];
  const foreign = command.foreign;
  const retire = async (entry: { key: StoreKey; sequence: number }) => {
    if (await check(entry.key, command.writer, entry.sequence)) report.verified++;
    if (command.shareEvery > 0 && (entry.sequence + 1) % command.shareEvery === 0) {
      report.shared.push({ key: entry.key, writer: command.writer, sequence: entry.sequence });
    } else if (!(await store.delete(entry.key))) {
      fail(`value ${entry.sequence} of writer ${command.writer} (key ${entry.key}): delete() returned false`);
    } else if (await store.has(entry.key)) {
      fail(`value ${entry.sequence} of writer ${command.writer} (key ${entry.key}): has() is true after delete()`);
    }
  };
  for (let cycle = 0; cycle < command.cycles; cycle++) {
    const sequence = command.firstSequence + cycle;
    const key = await putValue(store, command.writer, sequence);
    report.puts++;
    if (await check(key, command.writer, sequence)) report.verified++;
    window.push({ key, sequence });
    if (window.length > WINDOW) await retire(window.shift()!);
    // Interleave the other workers' keys with our own traffic, so cross-worker reads and deletes
    // run while everyone is allocating and freeing.
    const other = foreign[cycle];
    if (other !== undefined) {
      if (await check(other.key, other.writer, other.sequence)) report.foreignVerified++;
      if (!(await store.delete(other.key))) fail(`foreign key ${other.key}: delete() returned false`);
    }
  }
  for (const entry of window.splice(0)) await retire(entry);
  for (const other of foreign.slice(command.cycles)) {
    if (await check(other.key, other.writer, other.sequence)) report.foreignVerified++;
    if (!(await store.delete(other.key))) fail(`foreign key ${other.key}: delete() returned false`);
  }
  // As the actor host does after each runStep: the reads above held the values they read.
  await store.release();
  return report;
}

/**
 * Worker entry: handles one command at a time, in order. A test also runs it in a separate OS
 * process, with an endpoint over that process's stdin and stdout.
 */
export function runWorker(endpoint: WorkerEndpoint): void {
  let store: StoreClient | undefined;
  let queue = Promise.resolve();
  const handle = async (command: HammerCommand) => {
    if (command.type === 'connect') {
      const module = (await import(command.descriptor.module)) as { connectStore: ConnectStore };
      store = await module.connectStore(command.descriptor);
      endpoint.postMessage({ type: 'connected' });
    } else if (command.type === 'run') {
      if (store === undefined) throw new Error('store hammer worker: "run" before "connect"');
      endpoint.postMessage(await run(store, command));
    } else {
      await store?.close();
      endpoint.close();
    }
  };
  endpoint.onMessage((message) => {
    queue = queue
      .then(() => handle(message as HammerCommand))
      .catch((error: unknown) => {
        endpoint.postMessage({
          type: 'failed',
          message: error instanceof Error ? (error.stack ?? error.message) : String(error),
        });
      });
  });
}
