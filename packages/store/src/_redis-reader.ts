/**
 * A second connection of a redis client that does one thing: `GET` a large value straight into the
 * array that `get()` returns (package-private).
 *
 * node-redis reads a socket the usual way: every read lands in a new 64 KiB buffer, and a large
 * reply is then concatenated into one more new buffer. On Node with glibc's malloc each such
 * buffer of a MiB or more is mapped fresh (`mmap`) and costs page faults, which made a 4 MiB get
 * take ~10× the time of the transfer itself. This reader uses the socket's `onread` option
 * instead: the kernel writes the value's bytes directly into the (fresh, zeroed) typed array that
 * is handed to the caller, and only the few bytes of RESP framing go through a small reused
 * buffer. No copy at all in this process.
 *
 * It only ever has one GET in flight (callers queue), speaks just enough RESP for `AUTH`,
 * `SELECT` and a bulk-string reply, and is used on Node for plain-TCP servers (Bun's and Deno's
 * sockets do not have the problem). Any failure other than a timeout makes the caller fall back to
 * node-redis for that read, and the reader is rebuilt on a later read.
 * @module
 */
import { Buffer } from 'node:buffer';
import { connect, type Socket } from 'node:net';
import type { RedisAddress } from './_redis-connection.ts';

/** Outcome of a read: the value's length (its bytes are in `into`), or `null` when the key is gone. */
export type ReadOutcome = number | null;

/** Thrown when no answer came in time (the caller reports the server as unavailable). */
export class ReaderTimeout extends Error {}

interface Request {
  key: string;
  into: Uint8Array;
  resolve: (outcome: ReadOutcome) => void;
  reject: (error: Error) => void;
}

/** Whether this runtime is Node itself (not Bun or Deno, which also set `process.versions.node`). */
export function isNode(): boolean {
  const versions = process.versions as Record<string, string | undefined>;
  return versions.bun === undefined && (globalThis as { Deno?: unknown }).Deno === undefined;
}

export class BulkReader {
  private readonly address: RedisAddress;
  private readonly connectTimeoutMs: number;
  private socket: Socket | undefined;
  private ready: Promise<void> | undefined;
  private broken = false;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly scratch = Buffer.allocUnsafe(64 * 1024);

  // State of the reply being read.
  private current: Request | undefined;
  private phase: 'line' | 'body' | 'tail' = 'line';
  private line = '';
  private length = 0;
  private received = 0;
  private tail = 0;
  private lineWaiter: ((line: string) => void) | undefined;
  private failure: ((error: Error) => void) | undefined;

  constructor(address: RedisAddress, connectTimeoutMs: number) {
    this.address = address;
    this.connectTimeoutMs = connectTimeoutMs;
  }

  /** False once it failed; the caller then reads through node-redis (and may build a new reader). */
  get usable(): boolean {
    return !this.broken;
  }

  /**
   * `GET key` into `into` (at most `into.byteLength` bytes are taken; a longer value is an error).
   * Rejects with `ReaderTimeout` after `timeoutMs`, and with other errors when the connection fails.
   */
  read(key: string, into: Uint8Array, timeoutMs: number): Promise<ReadOutcome> {
    const run = this.queue.then(() => this.readNow(key, into, timeoutMs));
    this.queue = run.catch(() => {});
    return run;
  }

  close(): void {
    this.broken = true;
    this.socket?.destroy();
    this.socket = undefined;
  }

  private async readNow(key: string, into: Uint8Array, timeoutMs: number): Promise<ReadOutcome> {
    if (this.broken) throw new Error('redis store: the bulk reader is closed');
    try {
      return await this.readOnce(key, into, timeoutMs);
    } catch (error) {
      this.close();
      throw error;
    }
  }

  private async readOnce(key: string, into: Uint8Array, timeoutMs: number): Promise<ReadOutcome> {
    const deadline = Date.now() + timeoutMs;
    await this.withTimeout(this.connectOnce(), Math.min(timeoutMs, this.connectTimeoutMs));
    const socket = this.socket!;
    socket.ref();
    try {
      return await this.withTimeout(
        new Promise<ReadOutcome>((resolve, reject) => {
          this.current = { key, into, resolve, reject };
          this.phase = 'line';
          this.line = '';
          this.received = 0;
          this.failure = reject;
          socket.write(command(['GET', key]));
        }),
        Math.max(deadline - Date.now(), 1),
      );
    } finally {
      this.current = undefined;
      this.failure = undefined;
      if (this.socket === socket) socket.unref();
    }
  }

  private connectOnce(): Promise<void> {
    this.ready ??= new Promise<void>((resolve, reject) => {
      const socket = connect({
        host: this.address.host,
        port: this.address.port,
        noDelay: true,
        onread: {
          buffer: () => this.nextBuffer(),
          callback: (bytes: number, buffer: Uint8Array) => {
            this.onRead(bytes, buffer);
            return true;
          },
        },
      });
      this.socket = socket;
      this.failure = reject;
      socket.once('error', (error) => this.fail(error));
      socket.once('close', () => this.fail(new Error('the connection closed')));
      socket.once('connect', () => {
        this.handshake().then(resolve, reject);
      });
    });
    return this.ready;
  }

  private async handshake(): Promise<void> {
    const { username, password, database } = this.address;
    if (password !== undefined) {
      await this.simple(username === undefined ? ['AUTH', password] : ['AUTH', username, password]);
    }
    if (database !== undefined && database !== 0) await this.simple(['SELECT', String(database)]);
    this.socket!.unref();
  }

  /** Sends a command whose answer is one line (`+OK`); throws on an error line. */
  private simple(args: string[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.phase = 'line';
      this.line = '';
      this.lineWaiter = (line) => {
        this.lineWaiter = undefined;
        if (line.startsWith('+')) resolve();
        else reject(new Error(`redis store: ${args[0]} failed: ${line.slice(1)}`));
      };
      this.socket!.write(command(args));
    });
  }

  /** Where the next read goes: the value's array while its bytes come, else the small buffer. */
  private nextBuffer(): Uint8Array {
    const request = this.current;
    if (this.phase === 'body' && request !== undefined) {
      return request.into.subarray(this.received, this.length);
    }
    return this.scratch;
  }

  private onRead(bytes: number, buffer: Uint8Array): void {
    try {
      if (buffer !== this.scratch) {
        // Straight into the array.
        this.received += bytes;
        if (this.received === this.length) this.phase = 'tail';
        this.tail = 0;
        return;
      }
      this.consume(this.scratch.subarray(0, bytes));
    } catch (error) {
      this.fail(error instanceof Error ? error : new Error(String(error)));
    }
  }

  /** RESP framing (and, when a reply fits in one read, the value too) from the small buffer. */
  private consume(chunk: Uint8Array): void {
    let offset = 0;
    while (offset < chunk.byteLength) {
      if (this.phase === 'line') {
        const end = chunk.indexOf(10, offset);
        const piece = Buffer.from(
          chunk.buffer,
          chunk.byteOffset + offset,
          (end < 0 ? chunk.byteLength : end + 1) - offset,
        );
        this.line += piece.toString('latin1');
        offset += piece.byteLength;
        if (end < 0) return;
        const line = this.line.replace(/\r?\n$/, '');
        this.line = '';
        this.onLine(line);
        continue;
      }
      if (this.phase === 'body') {
        const take = Math.min(this.length - this.received, chunk.byteLength - offset);
        this.current!.into.set(chunk.subarray(offset, offset + take), this.received);
        this.received += take;
        offset += take;
        if (this.received === this.length) {
          this.phase = 'tail';
          this.tail = 0;
        }
        continue;
      }
      // tail: the CRLF after the value.
      const take = Math.min(2 - this.tail, chunk.byteLength - offset);
      this.tail += take;
      offset += take;
      if (this.tail === 2) this.finish(this.length);
    }
  }

  private onLine(line: string): void {
    if (this.lineWaiter !== undefined) {
      this.lineWaiter(line);
      return;
    }
    const request = this.current;
    if (request === undefined) throw new Error(`unexpected reply "${line.slice(0, 40)}"`);
    if (line.startsWith('-')) throw new Error(line.slice(1));
    if (!line.startsWith('$')) throw new Error(`unexpected reply "${line.slice(0, 40)}"`);
    const length = Number(line.slice(1));
    if (length < 0) {
      this.finish(null);
      return;
    }
    if (!Number.isSafeInteger(length) || length > request.into.byteLength) {
      throw new Error(`the value has ${length} bytes, more than its header says (${request.into.byteLength})`);
    }
    this.length = length;
    this.received = 0;
    this.tail = 0;
    this.phase = length === 0 ? 'tail' : 'body';
  }

  private finish(outcome: ReadOutcome): void {
    const request = this.current;
    this.current = undefined;
    this.phase = 'line';
    request?.resolve(outcome);
  }

  private fail(error: Error): void {
    const reject = this.failure;
    this.failure = undefined;
    const request = this.current;
    this.current = undefined;
    this.broken = true;
    this.socket?.destroy();
    reject?.(error);
    request?.reject(error);
  }

  private async withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      return await Promise.race([
        promise,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            this.fail(new ReaderTimeout(`no answer within ${ms} ms`));
            reject(new ReaderTimeout(`no answer within ${ms} ms`));
          }, ms);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** A RESP array of bulk strings. */
function command(args: readonly string[]): string {
  let text = `*${args.length}\r\n`;
  for (const arg of args) text += `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`;
  return text;
}
