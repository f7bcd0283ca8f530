/**
 * The raw baseline of `--placement python`, measured in the same run: libzmq through pyzmq, a PUSH
 * in one Python process and a PULL in another (`pyzmq-peer.py`), over ipc as the pipeline's links —
 * no improv, no msgpack, no store, no credit. Both ends read CLOCK_MONOTONIC, so one way is the
 * receiver's clock at the receive minus the stamp the sender put into the message; throughput is the
 * sender flooding for a while, held back only by the sockets' high-water mark (set to the links'
 * capacity), from its first send to the receiver taking its end marker — as the pipeline's rows are
 * timed. As on a copying store's pipeline rows, the flood runs first and the paced messages then go
 * at least twice the time one message took flat out apart.
 * @module
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { label, perS, us } from '../format.ts';
import type { Rate } from '../results.ts';
import { type LatencySummary, summarize } from '../stats.ts';

const peerScript = fileURLToPath(new URL('./pyzmq-peer.py', import.meta.url));

/** One size of the raw pyzmq baseline. */
export interface PyzmqRow {
  size: number;
  /** µs between two paced messages. */
  intervalUs: number;
  /** One way, sender's stamp to the receive, paced. */
  oneWay: LatencySummary;
  /** The flood: messages that arrived, from the first send to the end marker's arrival. */
  throughput: Omit<Rate, 'cpuUsPerMsg'>;
  /** The sockets' high-water mark (each end). */
  highWaterMark: number;
}

/** The raw pyzmq baseline of a run. */
export interface PyzmqBaseline {
  detail: string;
  /** Versions of the interpreter, pyzmq and libzmq. */
  python: string;
  pyzmq: string;
  libzmq: string;
  rows: PyzmqRow[];
}

/** How the baseline paces and floods, as the pipeline rows of the run do. */
export interface PyzmqOptions {
  /** Paced messages at `size` (before the time budget). */
  count(size: number): number;
  /** The least pace, µs (1 kHz). */
  intervalUs: number;
  /** µs each flood lasts. */
  floodUs: number;
  /** The sockets' high-water mark at `size` (the links' capacity). */
  highWaterMark(size: number): number;
  /** Longest a paced row may take, µs, and the fewest messages it sends within that. */
  budgetUs: number;
  minMessages: number;
}

interface Peer {
  child: ChildProcess;
  ask(command: Record<string, unknown>): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

/** Starts one end and waits for it to say it is ready (its first line). */
async function startPeer(
  interpreter: string,
  role: 'send' | 'recv',
  endpoint: string,
  hwm: number,
): Promise<{ peer: Peer; ready: Record<string, unknown> }> {
  const child = spawn(interpreter, ['-u', peerScript, role, endpoint, String(hwm)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk) => {
    stderr = (stderr + String(chunk)).slice(-4096);
  });
  const lines = createInterface({ input: child.stdout! });
  const waiting: { resolve: (value: Record<string, unknown>) => void; reject: (error: Error) => void }[] = [];
  let gone: Error | undefined;
  const fail = (why: string) => {
    gone ??= new Error(
      `bench: the raw pyzmq ${role === 'send' ? 'sender' : 'receiver'} (${interpreter}) ${why}${stderr.trim() ? `:\n${stderr.trim()}` : ''}`,
    );
    for (const entry of waiting.splice(0)) entry.reject(gone);
  };
  lines.on('line', (line) => {
    const entry = waiting.shift();
    if (entry === undefined) return;
    try {
      const value = JSON.parse(line) as Record<string, unknown>;
      if (typeof value.error === 'string') entry.reject(new Error(`bench: raw pyzmq: ${value.error}`));
      else entry.resolve(value);
    } catch {
      entry.reject(new Error(`bench: the raw pyzmq ${role} printed ${JSON.stringify(line)}, not JSON`));
    }
  });
  child.once('error', (error) => fail(`could not start: ${error.message}`));
  child.once('exit', (code, signal) => {
    // Give stderr a moment to arrive, so the message says why.
    setTimeout(() => fail(`exited (${signal ?? `code ${code}`})`), 50);
  });
  const next = () =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      if (gone) reject(gone);
      else waiting.push({ resolve, reject });
    });
  const peer: Peer = {
    child,
    ask: (command) => {
      const reply = next();
      child.stdin?.write(`${JSON.stringify(command)}\n`);
      return reply;
    },
    close: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.stdin?.end(`${JSON.stringify({ do: 'quit' })}\n`);
      const timer = setTimeout(() => child.kill(), 2000);
      await exited;
      clearTimeout(timer);
    },
  };
  const ready = await next();
  return { peer, ready };
}

/**
 * Measures the raw pyzmq baseline at `sizes` with `interpreter` (which must have pyzmq). Each size
 * gets a fresh pair of processes, so each runs with its own high-water mark.
 */
export async function measurePyzmqBaseline(
  interpreter: string,
  sizes: readonly number[],
  options: PyzmqOptions,
  log: (line: string) => void,
): Promise<PyzmqBaseline> {
  const folder = await mkdtemp(path.join(tmpdir(), 'improv-bench-pyzmq-'));
  const rows: PyzmqRow[] = [];
  let versions = { python: '?', pyzmq: '?', libzmq: '?' };
  try {
    for (const [at, size] of sizes.entries()) {
      const hwm = options.highWaterMark(size);
      const endpoint = `ipc://${path.join(folder, `pair-${at}`)}`;
      const receiver = await startPeer(interpreter, 'recv', endpoint, hwm);
      let sender: Awaited<ReturnType<typeof startPeer>> | undefined;
      try {
        sender = await startPeer(interpreter, 'send', endpoint, hwm);
        versions = {
          python: String(receiver.ready.python),
          pyzmq: String(receiver.ready.pyzmq),
          libzmq: String(receiver.ready.libzmq),
        };
        const send = sender.peer;
        const receive = receiver.peer;
        const paced = async (bytes: number, count: number, intervalUs: number) => {
          const [got] = await Promise.all([
            receive.ask({ do: 'latency', size: bytes, count }),
            send.ask({ do: 'latency', size: bytes, count, intervalUs }),
          ]);
          if (Number(got.errors) > 0)
            throw new Error(`bench: raw pyzmq ${bytes} B: ${got.errors} messages of the wrong length`);
          return got.samples as number[];
        };
        // Warm: the connection, the first allocations.
        await paced(8, 50, options.intervalUs);
        const [arrived, sent] = await Promise.all([
          receive.ask({ do: 'flood', size }),
          send.ask({ do: 'flood', size, durationUs: options.floodUs }),
        ]);
        const received = Number(arrived.received);
        if (received !== Number(sent.sent) || Number(arrived.errors) > 0) {
          throw new Error(
            `bench: raw pyzmq ${size} B flood: ${sent.sent} sent, ${received} arrived (${arrived.errors} of the wrong length)`,
          );
        }
        const wallUs = Number(arrived.endUs) - Number(sent.firstUs);
        const perMessageUs = wallUs / Math.max(1, received);
        const intervalUs = Math.max(options.intervalUs, Math.ceil((2 * perMessageUs) / 1000) * 1000);
        const count = Math.min(
          options.count(size),
          Math.max(options.minMessages, Math.floor(options.budgetUs / intervalUs)),
        );
        const samples = await paced(size, count, intervalUs);
        const row: PyzmqRow = {
          size,
          intervalUs,
          oneWay: summarize(samples),
          throughput: {
            messages: received,
            seconds: wallUs / 1e6,
            msgsPerS: received / (wallUs / 1e6),
            mbPerS: (received * size) / wallUs,
          },
          highWaterMark: hwm,
        };
        rows.push(row);
        log(
          `raw pyzmq ${label(size)}: one way p50 ${us(row.oneWay.p50)} µs, p99 ${us(row.oneWay.p99)} µs, ${perS(row.throughput.msgsPerS)} msgs/s`,
        );
      } finally {
        await sender?.peer.close();
        await receiver.peer.close();
      }
    }
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
  return {
    detail: `pyzmq ${versions.pyzmq} (libzmq ${versions.libzmq}) PUSH → PULL over ipc, two Python ${versions.python} processes`,
    ...versions,
    rows,
  };
}
