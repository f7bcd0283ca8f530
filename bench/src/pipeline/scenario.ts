/**
 * One bench pipeline: a topology of bench actors run by a real Nexus (the store of `--store`, the
 * memory store by default; the local transport unless `--transport zmq`; one worker per actor), driven phase by phase through
 * the board. With placement `python` every sink is the Python `BenchSink` of `actors.py`, in a Python
 * process of its own; the other actors stay TypeScript workers.
 * @module
 */
import { readFileSync } from 'node:fs';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { createNexus, type Nexus, type NexusEvent, type StoreDriver } from '@improv/core';
import { createMemoryStore } from '@improv/store';
import { createLocalTransport } from '@improv/transport-local';
import { createZmqTransport } from '@improv/transport-zmq';
import {
  type BenchActorOptions,
  BOARD_BYTES,
  type Board,
  MODE_IDLE,
  MODE_LATENCY,
  MODE_THROUGHPUT,
  openBoard,
  P_CAPACITY,
  P_COUNT,
  P_DURATION_US,
  P_INTERVAL_US,
  P_MODE,
  P_PATH,
  P_SIZE,
  P_SOURCE_DELETES,
  type PathName,
  pathCodes,
  S_END_US,
  S_ERRORS,
  S_FIRST_SEND_US,
  S_RECEIVED,
  S_SENT,
  stat,
  W_DONE,
  W_PHASE,
} from './board.ts';

/** The pipelines the bench runs. */
export type TopologyName = 'pair' | 'chain5' | 'fanout4' | 'fanin4';

/** Hops from a source to a sink. */
export const hopsOf: Record<TopologyName, number> = { pair: 1, chain5: 4, fanout4: 1, fanin4: 1 };

interface ActorPlan {
  name: string;
  className: 'BenchSource' | 'BenchRelay' | 'BenchSink';
  index: number;
  sources?: number;
}

interface Layout {
  actors: ActorPlan[];
  connections: { sources: string[]; sinks: string[] }[];
}

function layoutOf(topology: TopologyName): Layout {
  const source = (name: string, index: number): ActorPlan => ({ name, className: 'BenchSource', index });
  const sink = (name: string, index: number, sources = 1): ActorPlan => ({
    name,
    className: 'BenchSink',
    index,
    sources,
  });
  switch (topology) {
    case 'pair':
      return {
        actors: [source('Source', 0), sink('Sink', 1)],
        connections: [{ sources: ['Source.q_out'], sinks: ['Sink.q_in'] }],
      };
    case 'chain5': {
      const names = ['Source', 'Relay1', 'Relay2', 'Relay3', 'Sink'];
      return {
        actors: [
          source('Source', 0),
          ...[1, 2, 3].map((index): ActorPlan => ({ name: names[index]!, className: 'BenchRelay', index })),
          sink('Sink', 4),
        ],
        connections: names
          .slice(1)
          .map((name, index) => ({ sources: [`${names[index]}.q_out`], sinks: [`${name}.q_in`] })),
      };
    }
    case 'fanout4': {
      const sinks = [1, 2, 3, 4].map((index) => sink(`Sink${index}`, index));
      return {
        actors: [source('Source', 0), ...sinks],
        connections: [{ sources: ['Source.q_out'], sinks: sinks.map((actor) => `${actor.name}.q_in`) }],
      };
    }
    case 'fanin4': {
      const sources = [0, 1, 2, 3].map((index) => source(`Source${index + 1}`, index));
      return {
        actors: [...sources, sink('Sink', 4, 4)],
        connections: [{ sources: sources.map((actor) => `${actor.name}.q_out`), sinks: ['Sink.q_in'] }],
      };
    }
  }
}

/** Options of {@link Scenario.open}. */
export interface ScenarioOptions {
  topology: TopologyName;
  /** Messages each link holds (`block` policy). */
  capacity: number;
  /** `settings.store_size`. */
  storeBytes: number;
  /** The pipeline's store driver (default: a new memory store). */
  store?: StoreDriver;
  /** The links: `local` (default: SharedArrayBuffer rings) or `zmq` (ZeroMQ over ipc). */
  transport?: 'local' | 'zmq';
  /** The zmq links' sockets (default auto). */
  zmqSockets?: 'auto' | 'zeromq' | 'zmtp';
  /** The zmq links between the processes of this host: unix sockets (default) or tcp on loopback. */
  zmqProtocol?: 'ipc' | 'tcp';
  /**
   * `process`: each actor in an OS process of its own (`method: process`; its board is mirrored).
   * `hosts`: each actor in a process on another host (`host:`, through its agent): the sources on
   * `hosts.source`, every other actor on `hosts.sink`; links between hosts go over tcp with CURVE.
   */
  placement?: 'worker' | 'process' | 'hosts' | 'python';
  /**
   * With placement `python` (the sinks in Python, needs the zmq links and the lmdb or redis store):
   * the interpreter (`settings.python`) and `monotonicOffsetUs` of clock.ts for the sinks' clock.
   */
  python?: { interpreter: string; clockOffsetUs: number };
  /** With placement `hosts`: the two hosts (their agents running) and how the Nexus reaches them. */
  hosts?: { source: ScenarioHost; sink: ScenarioHost };
  /** Most latency samples a sink keeps per phase. */
  maxSamples: number;
  /** Largest inline message, so the rings are made big enough for it. */
  inlineBytes: number;
  epochMs: number;
  /** `createNexus({ metrics })`: false turns measuring off in Nexus and every actor host (default on). */
  metrics?: boolean;
}

/** A host of a `hosts` placement, as its `hosts:` entry says it. */
export interface ScenarioHost {
  /** Its name under `hosts:` (an actor's `host:`). */
  key: string;
  address: string;
  port: number;
  /** The Nexus side's copy of the agent's token file (absolute). */
  tokenFile: string;
}

/** What to run. */
export interface PhaseSpec {
  mode: 'latency' | 'throughput';
  path: PathName;
  size: number;
  /** Latency: messages per source. */
  count?: number;
  /** Latency: µs between messages of a source. */
  intervalUs?: number;
  /** Throughput: µs each source sends. */
  durationUs?: number;
  /** Called about once a second while the phase runs (the soak samples memory there). */
  onTick?: () => Promise<void> | void;
}

/** What a phase measured. */
export interface PhaseResult {
  /** Latency samples in µs, of every sink. */
  samples: Float64Array;
  /** Messages sent by all sources. */
  sent: number;
  /** Messages received by all sinks. */
  received: number;
  /** From the first send to the last sink's end, µs. */
  wallUs: number;
  /** Process CPU time (every thread) during the phase, µs; with Python sinks, theirs added. */
  cpuUs: number;
  /** Of `cpuUs`, the Python sinks' processes' (placement `python`, where /proc tells it). */
  peerCpuUs?: number;
}

/** A running bench pipeline. */
export class Scenario {
  readonly topology: TopologyName;
  readonly capacity: number;
  readonly nexus: Nexus;
  readonly #board: Board;
  readonly #samples: Map<number, Float64Array>;
  readonly #layout: Layout;
  /** Process ids of the Python sinks (placement `python`), whose CPU time counts too. */
  #peers: number[] = [];
  #phase = 0;
  /** An error an actor logged since the current phase began: any is fatal to the bench. */
  #error = '';
  #failed = '';

  private constructor(
    topology: TopologyName,
    capacity: number,
    nexus: Nexus,
    board: Board,
    samples: Map<number, Float64Array>,
    layout: Layout,
  ) {
    this.topology = topology;
    this.capacity = capacity;
    this.nexus = nexus;
    this.#board = board;
    this.#samples = samples;
    this.#layout = layout;
  }

  /** Starts the pipeline: every actor loaded, set up and running, waiting for the first phase. */
  static async open(options: ScenarioOptions): Promise<Scenario> {
    const layout = layoutOf(options.topology);
    const hosts = options.placement === 'hosts' ? options.hosts : undefined;
    if (options.placement === 'hosts' && hosts === undefined) {
      throw new TypeError('bench: placement hosts needs ScenarioOptions.hosts (the source and sink hosts)');
    }
    const python = options.placement === 'python' ? options.python : undefined;
    if (options.placement === 'python' && (python === undefined || options.transport !== 'zmq')) {
      throw new TypeError(
        'bench: placement python needs ScenarioOptions.python (interpreter, clock offset) and the zmq transport',
      );
    }
    const boardBuffer = new SharedArrayBuffer(BOARD_BYTES);
    const samples = new Map<number, Float64Array>();
    const actors: Record<string, Record<string, unknown>> = {};
    for (const actor of layout.actors) {
      const actorOptions: BenchActorOptions = { board: boardBuffer, index: actor.index, epochMs: options.epochMs };
      if (actor.className === 'BenchSink') {
        const buffer = new SharedArrayBuffer(options.maxSamples * (actor.sources ?? 1) * 8);
        samples.set(actor.index, new Float64Array(buffer));
        actorOptions.samples = buffer;
        actorOptions.sources = actor.sources ?? 1;
      }
      const inPython = python !== undefined && actor.className === 'BenchSink';
      if (inPython) actorOptions.clockOffsetUs = python.clockOffsetUs;
      actors[actor.name] = {
        package: inPython ? pythonActorsFile : actorsFile,
        class: actor.className,
        ...(options.placement === 'process' ? { method: 'process' } : {}),
        ...(hosts === undefined ? {} : { host: (actor.className === 'BenchSource' ? hosts.source : hosts.sink).key }),
        ...actorOptions,
      };
    }
    const connections: Record<string, unknown> = {};
    layout.connections.forEach((connection, index) => {
      connections[`link${index + 1}`] = { ...connection, capacity: options.capacity, policy: 'block' };
    });
    // Events from the very start (loading included): kept until the scenario exists, then watched.
    const early: NexusEvent[] = [];
    let watch = (event: NexusEvent): void => {
      early.push(event);
    };
    const hostsSection =
      hosts === undefined
        ? {}
        : {
            hosts: Object.fromEntries(
              [hosts.source, hosts.sink].map((host) => [
                host.key,
                { address: host.address, port: host.port, token_file: host.tokenFile },
              ]),
            ),
          };
    let nexus: Nexus;
    try {
      nexus = await createNexus({
        config: {
          settings: { store_size: options.storeBytes, ...(python === undefined ? {} : { python: python.interpreter }) },
          ...hostsSection,
          actors,
          connections,
        },
        // Imported only here: a run without hosts never loads the agent's client.
        ...(hosts === undefined ? {} : { agents: (await import('@improv/transport-zmq/agent')).connectAgent }),
        store: options.store ?? createMemoryStore(),
        transport:
          options.transport === 'zmq'
            ? [
                createZmqTransport({ sockets: options.zmqSockets ?? 'auto', protocol: options.zmqProtocol ?? 'ipc' }),
                createLocalTransport({ bytesPerMessage: Math.max(128, options.inlineBytes + 64) }),
              ]
            : createLocalTransport({ bytesPerMessage: Math.max(128, options.inlineBytes + 64) }),
        runDir: false,
        handleSignals: false,
        ...(options.metrics === false ? { metrics: false } : {}),
        onEvent: (event) => watch(event),
      });
    } catch (error) {
      throw new Error(`bench: the ${options.topology} pipeline did not start: ${describe(error)}`, { cause: error });
    }
    const scenario = new Scenario(options.topology, options.capacity, nexus, openBoard(boardBuffer), samples, layout);
    for (const event of early.splice(0)) scenario.#watch(event);
    watch = (event) => {
      scenario.#watch(event);
    };
    try {
      await nexus.setup();
      await nexus.run();
    } catch (error) {
      await nexus.quit();
      throw new Error(`bench: the ${options.topology} pipeline did not start: ${describe(error)}`, { cause: error });
    }
    if (python !== undefined) {
      scenario.#peers = nexus
        .status()
        .actors.flatMap((actor) => (actor.process?.runtime === 'python' ? [actor.process.pid] : []));
    }
    return scenario;
  }

  /** Runs one phase and waits until every source and sink is done with it. */
  async phase(spec: PhaseSpec): Promise<PhaseResult> {
    const { words, params, stats } = this.#board;
    for (const [index, samples] of this.#samples) {
      const expected = (spec.count ?? 0) * (this.#layout.actors.find((actor) => actor.index === index)?.sources ?? 1);
      if (spec.mode === 'latency' && expected > samples.length) {
        throw new RangeError(
          `bench: ${expected} paced messages per sink, but the sinks keep ${samples.length} samples (ScenarioOptions.maxSamples)`,
        );
      }
    }
    const phase = ++this.#phase;
    params[P_MODE] = spec.mode === 'latency' ? MODE_LATENCY : MODE_THROUGHPUT;
    params[P_PATH] = pathCodes[spec.path];
    params[P_SIZE] = spec.size;
    params[P_COUNT] = spec.count ?? 0;
    params[P_INTERVAL_US] = spec.intervalUs ?? 1000;
    params[P_DURATION_US] = spec.durationUs ?? 0;
    params[P_SOURCE_DELETES] = this.topology === 'fanout4' ? 1 : 0;
    params[P_CAPACITY] = this.capacity;
    const errorsBefore = this.#errors();
    this.#error = '';
    const cpuBefore = process.cpuUsage();
    const peerBefore = this.#peerCpuUs();
    Atomics.store(words, W_PHASE, phase);
    Atomics.notify(words, W_PHASE);
    const expectedUs = spec.mode === 'latency' ? (spec.count ?? 0) * (spec.intervalUs ?? 1000) : (spec.durationUs ?? 0);
    const what = `${spec.mode} of ${spec.path} ${spec.size} B through ${this.topology}`;
    await this.#waitDone(phase, 30_000 + (expectedUs / 1000) * 4, what, spec.onTick);
    const cpu = process.cpuUsage(cpuBefore);
    const peerAfter = this.#peerCpuUs();
    const peerCpuUs = peerBefore === undefined || peerAfter === undefined ? undefined : peerAfter - peerBefore;
    const errors = this.#errors() - errorsBefore;
    if (errors > 0) {
      throw new Error(
        `bench: ${what}: ${errors} messages arrived with the wrong data (length or stamp); the store or transport is broken`,
      );
    }
    let sent = 0;
    let received = 0;
    let firstSend = Number.POSITIVE_INFINITY;
    let end = 0;
    const collected: Float64Array[] = [];
    for (const actor of this.#layout.actors) {
      if (actor.className === 'BenchSource') {
        sent += stats[stat(actor.index, S_SENT)]!;
        firstSend = Math.min(firstSend, stats[stat(actor.index, S_FIRST_SEND_US)]!);
      } else if (actor.className === 'BenchSink') {
        const got = stats[stat(actor.index, S_RECEIVED)]!;
        received += got;
        end = Math.max(end, stats[stat(actor.index, S_END_US)]!);
        if (spec.mode === 'latency') collected.push(this.#samples.get(actor.index)!.slice(0, got));
      }
    }
    const perSink = spec.mode === 'latency' ? (spec.count ?? 0) * (this.topology === 'fanin4' ? 4 : 1) : sent;
    const sinks = this.#layout.actors.filter((actor) => actor.className === 'BenchSink').length;
    if (received !== perSink * sinks) {
      throw new Error(`bench: ${what}: ${sent} messages sent but ${received} received (expected ${perSink * sinks})`);
    }
    return {
      samples: concat(collected),
      sent,
      received,
      wallUs: end - firstSend,
      cpuUs: cpu.user + cpu.system + (peerCpuUs ?? 0),
      ...(peerCpuUs === undefined ? {} : { peerCpuUs }),
    };
  }

  /**
   * CPU use of the whole process (every thread) while the pipeline runs and nothing is sent, in % of
   * one core; with Python sinks, their processes' added.
   */
  async idleCpu(ms: number): Promise<number> {
    const before = process.cpuUsage();
    const peerBefore = this.#peerCpuUs();
    const start = performance.now();
    await new Promise((resolve) => setTimeout(resolve, ms));
    const cpu = process.cpuUsage(before);
    const peerAfter = this.#peerCpuUs();
    const peer = peerBefore === undefined || peerAfter === undefined ? 0 : peerAfter - peerBefore;
    return ((cpu.user + cpu.system + peer) / 1000 / (performance.now() - start)) * 100;
  }

  /** RSS of the Python sinks' processes (`VmRSS` of /proc), bytes; undefined without them or where /proc does not tell it. */
  peerRssBytes(): number | undefined {
    if (this.#peers.length === 0) return undefined;
    let total = 0;
    for (const pid of this.#peers) {
      try {
        const kib = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
        if (kib === undefined) return undefined;
        total += Number(kib) * 1024;
      } catch {
        return undefined;
      }
    }
    return total;
  }

  /**
   * CPU time of the Python sinks' processes so far, µs: the first field of `/proc/<pid>/schedstat`
   * (ns on a CPU, every thread). Undefined without Python sinks, or where /proc does not tell it.
   */
  #peerCpuUs(): number | undefined {
    if (this.#peers.length === 0) return undefined;
    let total = 0;
    for (const pid of this.#peers) {
      try {
        total += Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1000;
      } catch {
        return undefined;
      }
    }
    return Number.isFinite(total) ? total : undefined;
  }

  /** Wakes the sources, then stops and quits the pipeline. */
  async close(): Promise<void> {
    const { words, params } = this.#board;
    params[P_MODE] = MODE_IDLE;
    Atomics.store(words, W_PHASE, ++this.#phase);
    Atomics.notify(words, W_PHASE);
    await this.nexus.quit();
  }

  #errors(): number {
    let total = 0;
    for (const actor of this.#layout.actors) total += this.#board.stats[stat(actor.index, S_ERRORS)]!;
    return total;
  }

  #watch(event: NexusEvent): void {
    if (event.type === 'log' && event.record.level === 'error' && this.#error === '')
      this.#error = event.record.message;
    if (event.type === 'actor-state' && (event.state === 'failed' || event.state === 'exited')) {
      this.#failed = `actor ${event.actor} ${event.state}${event.error ? `: ${event.error.message}` : ''}`;
    }
  }

  async #waitDone(phase: number, timeoutMs: number, what: string, onTick?: () => Promise<void> | void): Promise<void> {
    const words = this.#board.words;
    const start = performance.now();
    let nextTick = start + 1000;
    for (const actor of this.#layout.actors) {
      if (actor.className === 'BenchRelay') continue;
      const word = W_DONE + actor.index;
      for (;;) {
        const seen = Atomics.load(words, word);
        if (seen === phase) break;
        if (this.#failed !== '') throw new Error(`bench: ${what}: ${this.#failed}`);
        if (this.#error !== '') throw new Error(`bench: ${what}: an actor failed: ${this.#error}`);
        const now = performance.now();
        if (now - start > timeoutMs) {
          throw new Error(`bench: ${what}: ${actor.name} did not finish within ${Math.round(timeoutMs / 1000)} s`);
        }
        if (onTick !== undefined && now >= nextTick) {
          nextTick += 1000;
          await onTick();
        }
        const waiting = Atomics.waitAsync(words, word, seen, onTick === undefined ? 200 : Math.max(1, nextTick - now));
        if (waiting.async) await waiting.value;
      }
    }
  }
}

const actorsFile = fileURLToPath(new URL('./actors.ts', import.meta.url));
const pythonActorsFile = fileURLToPath(new URL('./actors.py', import.meta.url));

function concat(arrays: Float64Array[]): Float64Array {
  const out = new Float64Array(arrays.reduce((total, array) => total + array.length, 0));
  let offset = 0;
  for (const array of arrays) {
    out.set(array, offset);
    offset += array.length;
  }
  return out;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
