/**
 * One connection of the `redis` store to its server (package-private), over node-redis. It adds
 * what the store contract needs on top:
 *
 * - **Bounded calls.** Every call resolves or rejects within its time bound (`commandTimeoutMs`,
 *   plus transfer time for large values). The offline queue is off, so a call made while the server
 *   is away rejects at once instead of waiting for it; either way with `StoreUnavailableError`
 *   naming the server's address.
 * - **Reconnection** with exponential backoff (50 ms doubling to 2 s, with jitter), for ever: calls
 *   work again as soon as the server is back. Scripts are loaded again on every reconnect (a
 *   restarted server has forgotten them), and a `NOSCRIPT` reply is retried once after loading.
 * - **Transactions** (`MULTI` … `EXEC`) queued in one go, so no other call of this process can slip
 *   in between, and a large value goes to Redis as a plain `SET` (no copy into a Lua string).
 * @module
 */

import { Buffer } from 'node:buffer';
import { StoreFullError, StoreUnavailableError } from '@improv/core';
import { createClient, ErrorReply, RESP_TYPES } from 'redis';
import { allScripts, type Script } from './_redis-scripts.ts';

/** Where a Redis server is and how to log in. */
export interface RedisAddress {
  host: string;
  port: number;
  username?: string;
  password?: string;
  /** Database number (`SELECT`). Default 0. */
  database?: number;
  /** TLS (`rediss://`). */
  tls?: boolean;
}

/** Time bounds of a connection. */
export interface ConnectionTimes {
  /** Bound of one call, in ms, for small values. */
  commandTimeoutMs: number;
  /** Bound of the first connection, in ms. */
  connectTimeoutMs: number;
}

/** An argument of a Redis command. */
export type Arg = string | Buffer;

/** Transfer rate a call is given time for on top of `commandTimeoutMs`: 50 MB/s. */
const BYTES_PER_MS = 50_000;

// Replies of bulk strings as Buffers (values are binary); everything else as node-redis decodes it.
const BUFFERS = { typeMapping: { [RESP_TYPES.BLOB_STRING]: Buffer } } as const;

/** `host:port`, for messages. */
export function describeAddress(address: RedisAddress): string {
  const host = address.host.includes(':') ? `[${address.host}]` : address.host;
  return `${host}:${address.port}`;
}

/** Reads a `redis://[user:password@]host[:port][/db]` or `rediss://` URL. */
export function parseRedisUrl(url: string): RedisAddress {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError(`redis store: "${url}" is not a URL; write e.g. redis://127.0.0.1:6379`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new TypeError(`redis store: "${url}" is not a redis:// or rediss:// URL; write e.g. redis://127.0.0.1:6379`);
  }
  const address: RedisAddress = {
    host: parsed.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1',
    port: parsed.port === '' ? 6379 : Number(parsed.port),
  };
  if (parsed.username !== '') address.username = decodeURIComponent(parsed.username);
  if (parsed.password !== '') address.password = decodeURIComponent(parsed.password);
  const database = parsed.pathname.replace(/^\//, '');
  if (database !== '') {
    const number = Number(database);
    if (!Number.isSafeInteger(number) || number < 0) {
      throw new TypeError(
        `redis store: the database of "${url}" must be a number (redis://host:port/0), not "${database}"`,
      );
    }
    address.database = number;
  }
  if (parsed.protocol === 'rediss:') address.tls = true;
  return address;
}

/** A Redis error reply (node-redis's `ErrorReply`). */
function isErrorReply(value: unknown): value is Error {
  return value instanceof ErrorReply;
}

type Client = ReturnType<typeof createClient>;

export class Connection {
  readonly address: RedisAddress;
  readonly where: string;
  private readonly times: ConnectionTimes;
  private readonly client: Client;
  private lastError: string | undefined;
  private closed = false;

  private constructor(address: RedisAddress, times: ConnectionTimes) {
    this.address = address;
    this.where = describeAddress(address);
    this.times = times;
    const socket = {
      host: address.host,
      port: address.port,
      connectTimeout: Math.max(times.connectTimeoutMs, 100),
      noDelay: true,
      keepAlive: true,
      reconnectStrategy: (retries: number) =>
        Math.min(50 * 2 ** Math.min(retries, 10), 2000) + Math.floor(Math.random() * 50),
      ...(address.tls ? { tls: true as const } : {}),
    };
    this.client = createClient({
      socket,
      ...(address.username === undefined ? {} : { username: address.username }),
      ...(address.password === undefined ? {} : { password: address.password }),
      ...(address.database === undefined ? {} : { database: address.database }),
      disableOfflineQueue: true,
      disableClientInfo: true,
    }) as Client;
    // node-redis reports every failed (re)connection as an 'error' event; without a listener the
    // process would crash. The last one goes into the messages of failed calls.
    this.client.on('error', (error: unknown) => {
      this.lastError = error instanceof Error ? error.message : String(error);
    });
    this.client.on('ready', () => {
      this.lastError = undefined;
      // A restarted server has no scripts: load them before any call of ours (this goes first).
      this.loadScripts().catch(() => {});
    });
  }

  /** Connects within `connectTimeoutMs`, or throws `StoreUnavailableError` naming the address. */
  static async open(address: RedisAddress, times: ConnectionTimes): Promise<Connection> {
    const connection = new Connection(address, times);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const connecting = connection.client.connect().then(
      () => undefined,
      (error: unknown) => error,
    );
    const outcome = await Promise.race([
      connecting,
      new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), times.connectTimeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (outcome === undefined) return connection;
    connection.closed = true;
    connection.client.destroy();
    await connecting;
    const reason = outcome === 'timeout' ? connection.lastError : String((outcome as Error)?.message ?? outcome);
    const login = reason !== undefined && /NOAUTH|WRONGPASS|invalid password|AUTH/i.test(reason);
    throw new StoreUnavailableError(
      login
        ? `redis store: the Redis server at ${connection.where} refused the login (${reason}); give the right password (settings.redis.password, or redis://:password@host:port)`
        : `redis store: cannot connect to the Redis server at ${connection.where} within ${times.connectTimeoutMs} ms${reason ? ` (${describeCause(reason)})` : ''}. Start redis-server there, or fix the address (settings.redis.host/port or url; --store redis with an address); without an address improv-ts starts its own redis-server`,
      { cause: outcome === 'timeout' ? undefined : outcome },
    );
  }

  get isReady(): boolean {
    return this.client.isReady;
  }

  /** One command; `bytes` is how much data it carries either way (for its time bound). */
  async command<T = unknown>(args: readonly Arg[], bytes = 0): Promise<T> {
    this.assertUsable();
    const reply = this.client.sendCommand(args as Arg[], BUFFERS) as Promise<T>;
    return this.bounded(reply, bytes);
  }

  /** EVALSHA of `script` (loading it when the server does not know it). */
  async script<T = unknown>(script: Script, args: readonly Arg[]): Promise<T> {
    try {
      return await this.command<T>(['EVALSHA', script.sha, '0', ...args]);
    } catch (error) {
      if (!isNoScript(error)) throw error;
      await this.loadScripts();
      return await this.command<T>(['EVALSHA', script.sha, '0', ...args]);
    }
  }

  /**
   * `MULTI`, the commands, `EXEC`, written together; resolves to the replies of the commands
   * (error replies as `Error` values in the list). A command that the server refuses to queue
   * (e.g. `OOM` over `maxmemory`) throws it. A `NOSCRIPT` reply reruns the whole transaction once
   * after loading the scripts (every command of ours may run twice).
   */
  async transaction(commands: readonly (readonly Arg[])[], bytes = 0): Promise<unknown[]> {
    const replies = await this.transactionOnce(commands, bytes);
    if (!replies.some(isNoScript)) return replies;
    await this.loadScripts();
    return this.transactionOnce(commands, bytes);
  }

  private async transactionOnce(commands: readonly (readonly Arg[])[], bytes: number): Promise<unknown[]> {
    this.assertUsable();
    const client = this.client;
    let queueError: unknown;
    const noteQueueError = (error: unknown) => {
      queueError ??= error;
    };
    // Queued synchronously, so nothing else of this process gets between MULTI and EXEC.
    client.sendCommand(['MULTI']).catch(noteQueueError);
    for (const args of commands) client.sendCommand(args as Arg[]).catch(noteQueueError);
    const exec = client.sendCommand(['EXEC'], BUFFERS) as Promise<unknown[] | null>;
    let replies: unknown[] | null;
    try {
      replies = await this.bounded(exec, bytes);
    } catch (error) {
      if (queueError !== undefined && isErrorReply(queueError)) throw this.translate(queueError);
      throw error;
    }
    if (!Array.isArray(replies)) throw new Error(`redis store: the transaction on ${this.where} was aborted`);
    return replies;
  }

  /** Loads every script (SCRIPT LOAD), so EVALSHA finds them. */
  async loadScripts(): Promise<void> {
    await Promise.all(allScripts.map((script) => this.command(['SCRIPT', 'LOAD', script.source])));
  }

  /** Closes the connection: gracefully when the server answers, at once otherwise. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.client.isOpen) return;
    if (!this.client.isReady) {
      this.client.destroy();
      return;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const closing = this.client.close().catch(() => {});
    const done = await Promise.race([
      closing.then(() => true),
      new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), this.times.commandTimeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (!done) this.client.destroy();
  }

  /** Ends the connection at once, failing whatever is in flight. */
  destroy(): void {
    this.closed = true;
    if (this.client.isOpen) this.client.destroy();
  }

  /** The error of a call that did not reach the server or got no answer. */
  unavailable(detail?: string, cause?: unknown): StoreUnavailableError {
    const why = detail ?? (this.lastError ? describeCause(this.lastError) : 'the connection is down');
    return new StoreUnavailableError(
      `redis store: the Redis server at ${this.where} is unavailable (${why}); this call stored and deleted nothing. The client reconnects on its own, with backoff, and calls work again once the server is back`,
      cause === undefined ? undefined : { cause },
    );
  }

  private assertUsable(): void {
    if (this.closed)
      throw new Error('redis store: this client was closed; connect a new one with connectStore(descriptor)');
    if (!this.client.isReady) throw this.unavailable();
  }

  /** How long a call that moves `bytes` may take, in ms. */
  timeoutFor(bytes: number): number {
    return this.times.commandTimeoutMs + Math.ceil(bytes / BYTES_PER_MS);
  }

  /** `reply`, or `StoreUnavailableError` when it takes longer than the bound. */
  private bounded<T>(reply: Promise<T>, bytes: number): Promise<T> {
    const limit = this.timeoutFor(bytes);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(this.unavailable(`no answer within ${limit} ms`));
      }, limit);
      reply.then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (error: unknown) => {
          clearTimeout(timer);
          reject(this.translate(error));
        },
      );
    });
  }

  /** A node-redis error as the store's error. */
  translate(error: unknown): Error {
    if (StoreUnavailableError.isInstance(error) || StoreFullError.isInstance(error)) return error as Error;
    if (isErrorReply(error)) {
      const message = error.message;
      if (message.startsWith('OOM')) {
        return new StoreFullError(
          `redis store: the Redis server at ${this.where} is out of memory (its maxmemory is reached: ${message}); nothing was stored. Raise the server's maxmemory, lower settings.store_size, or delete values once every reader is done with them`,
          { cause: error },
        );
      }
      if (/^(LOADING|BUSY|MASTERDOWN|TRYAGAIN)\b/.test(message)) return this.unavailable(message, error);
      if (/^(NOAUTH|WRONGPASS)\b/.test(message)) {
        return new StoreUnavailableError(
          `redis store: the Redis server at ${this.where} refused the login (${message}); give the right password (settings.redis.password or the url)`,
          { cause: error },
        );
      }
      return new Error(`redis store: the Redis server at ${this.where} answered with an error: ${message}`, {
        cause: error,
      });
    }
    if (this.closed) {
      return new Error('redis store: this client was closed; connect a new one with connectStore(descriptor)', {
        cause: error,
      });
    }
    const detail = error instanceof Error ? error.message : String(error);
    return this.unavailable(describeCause(detail), error);
  }
}

function isNoScript(value: unknown): boolean {
  return value instanceof Error && value.message.startsWith('NOSCRIPT');
}

/** A node-redis connection error in words. */
export function describeCause(message: string): string {
  if (/ECONNREFUSED/.test(message)) return 'connection refused: no server listens there';
  if (/NOAUTH|WRONGPASS|invalid password|AUTH/i.test(message)) {
    return `it wants the right password — settings.redis.password, or redis://:password@host:port (${message})`;
  }
  if (/ETIMEDOUT|Connection timeout/i.test(message)) return 'the connection timed out';
  if (/ENOTFOUND|EAI_AGAIN/.test(message)) return 'the host name does not resolve';
  if (/Unknown RESP type/.test(message)) return `what answers there is no Redis server: ${message}`;
  if (/Socket closed unexpectedly/i.test(message)) return 'the server closed the connection';
  if (/The client is offline|ClientOfflineError/i.test(message)) return 'the connection is down';
  return message;
}
