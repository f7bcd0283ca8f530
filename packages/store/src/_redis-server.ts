/**
 * Starts and stops the `redis-server` of a `redis` store that was given no address
 * (package-private).
 *
 * The server listens on a free loopback port (found by binding port 0, retried when another
 * process takes the port first), keeps nothing on disk unless persistence is asked for, and has a
 * `maxmemory` sized from `settings.store_size` with headroom and the `noeviction` policy (the store
 * does its own accounting and eviction; Redis must never drop a value on its own).
 *
 * With `bind`, it also listens on that address of this machine, so actors on other machines reach
 * it; then it requires a random password (given to redis-server on its stdin, `redis-server -`, so
 * it never shows in `ps`), which the store's descriptor carries.
 *
 * Its lifetime is tied to the process that started it: on POSIX systems it runs under a small
 * `/bin/sh` watchdog that reads the pipe of its stdin, and the pipe closes when this process ends —
 * however it ends, `kill -9` included — so the watchdog then stops the server and removes its
 * temporary folder. On Windows (no `/bin/sh`), the server is started directly and stopped from an
 * `exit` handler, which does not run when the process is killed.
 * @module
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, isIP } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { processAlive } from '@improv/core/runtime/pid';

/** How the store's own redis-server is started (`createRedisStore({ server })`). */
export interface RedisServerOptions {
  /** The redis-server program: a name looked up on PATH, or a path. Default `redis-server`. */
  command?: string;
  /**
   * Port to listen on. Default: a free one. When it is taken, the next ports are tried (up to 20,
   * like improv).
   */
  port?: number;
  /**
   * Keep an append-only file (improv's `enable_saving`), so a restarted server has the values
   * again. Default: off — nothing is written to disk (`--save '' --appendonly no`).
   */
  persistence?: {
    /** Folder of the server's files (`--dir`; the AOF goes into its `appendonlydir`). Default: the working folder. */
    dir?: string;
    /** `appendfsync`: `always`, `everysec` or `no` (improv's `fsync_frequency`). Default `no`. */
    fsync?: 'always' | 'everysec' | 'no';
  };
  /**
   * An address of this machine (an IPv4 or IPv6 literal, e.g. `10.0.0.5`) the server listens on as
   * well as 127.0.0.1, so actors on other machines reach it. The server then requires a random
   * password, and the store's descriptor names this address as its `host` and carries the password.
   * Default: none — loopback only, no password.
   */
  bind?: string;
  /** More command-line arguments for redis-server (e.g. `['--io-threads', '4']`). */
  args?: readonly string[];
  /** How long to wait for the server to answer PING, in ms. Default 10 000. */
  startTimeoutMs?: number;
}

/** A running redis-server started by the store. */
export interface RunningServer {
  /** Where this machine reaches it: 127.0.0.1. */
  readonly host: string;
  readonly port: number;
  /** The address of `bind`, where other machines reach it. */
  readonly bind?: string;
  /** The password it requires (with `bind` only). */
  readonly password?: string;
  /** Process id of redis-server itself. */
  readonly pid: number;
  /** Stops the server (and waits until it has exited), and removes its temporary folder. */
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';
const DEFAULT_START_TIMEOUT_MS = 10_000;
const PORT_ATTEMPTS = 20;

/**
 * The watchdog: starts redis-server ("$0" "$@") in the background, prints its pid, and kills it
 * when its own stdin (a pipe from the opener) reaches end-of-file; exits with the server's code.
 * When the first argument is `-` (config on stdin), the first line of its stdin is the server's
 * config: `printf`, a builtin, hands it over, so it never is in a command line.
 * When it exits, the temporary folder in $IMPROV_REDIS_TMP goes too — after a failure, once it has
 * printed the end of the server's log (`tail`, not a builtin: a closed stdout must not kill the
 * watchdog before it cleans up).
 */
const WATCHDOG = `
exec 3<&0
if [ "$1" = "-" ]; then
  IFS= read -r config <&3
  printf '%s\\n' "$config" | "$0" "$@" >/dev/null 2>&1 3<&- &
else
  "$0" "$@" </dev/null >/dev/null 2>&1 3<&- &
fi
pid=$!
echo "$pid"
( read _ignored <&3; kill -TERM "$pid" 2>/dev/null ) &
watcher=$!
exec 3<&-
wait "$pid"
code=$?
kill "$watcher" 2>/dev/null
if [ "$code" != 0 ]; then tail -n 3 "$IMPROV_REDIS_TMP/redis.log" 2>/dev/null; fi
case "$IMPROV_REDIS_TMP" in
  */improv-redis-*) rm -rf "$IMPROV_REDIS_TMP" ;;
esac
exit "$code"
`;

const running = new Set<{ pid: number }>();
let exitHandlerInstalled = false;

function installExitHandler(): void {
  if (exitHandlerInstalled) return;
  exitHandlerInstalled = true;
  process.on('exit', () => {
    for (const server of running) {
      try {
        process.kill(server.pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
  });
}

/** Starts a redis-server for a store of `maxmemoryBytes`; resolves once it answers PING. */
export async function startRedisServer(options: RedisServerOptions, maxmemoryBytes: number): Promise<RunningServer> {
  const command = options.command ?? 'redis-server';
  const program = findProgram(command);
  const startTimeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  if (!(startTimeoutMs > 0)) {
    throw new RangeError(`redis store: server.startTimeoutMs must be a positive number of ms, got ${startTimeoutMs}`);
  }
  const fsync = options.persistence?.fsync ?? 'no';
  if (!['always', 'everysec', 'no'].includes(fsync)) {
    throw new RangeError(`redis store: server.persistence.fsync must be always, everysec or no, got ${String(fsync)}`);
  }
  const bind = options.bind === undefined ? undefined : checkBind(options.bind);
  // Open to the network: never without a password (sent on stdin, see WATCHDOG).
  const password = bind === undefined ? undefined : randomBytes(24).toString('hex');
  const config = password === undefined ? undefined : `requirepass ${password}`;
  if (options.port !== undefined && !(Number.isInteger(options.port) && options.port >= 1 && options.port <= 65_535)) {
    throw new RangeError(`redis store: server.port must be a port number from 1 to 65535, got ${String(options.port)}`);
  }
  const failures: string[] = [];
  for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
    const port = options.port === undefined ? await freePort() : options.port + attempt;
    if (port > 65_535) break;
    // A folder per attempt: the watchdog of a failed one removes its own.
    const temp = mkdtempSync(path.join(tmpdir(), `improv-redis-${process.pid}-`));
    const dataDir = options.persistence === undefined ? temp : path.resolve(options.persistence.dir ?? process.cwd());
    const logFile = path.join(temp, 'redis.log');
    let outcome: LaunchOutcome;
    try {
      const args = [
        ...(config === undefined ? [] : ['-']),
        '--port',
        String(port),
        '--bind',
        HOST,
        ...(bind === undefined || bind === HOST ? [] : [bind]),
        // With a password (bind), protected mode lets every client in: they must AUTH anyway.
        '--protected-mode',
        'yes',
        '--daemonize',
        'no',
        '--save',
        '',
        '--appendonly',
        options.persistence === undefined ? 'no' : 'yes',
        ...(options.persistence === undefined ? [] : ['--appendfsync', fsync]),
        '--dir',
        dataDir,
        '--logfile',
        logFile,
        '--maxmemory',
        String(maxmemoryBytes),
        '--maxmemory-policy',
        'noeviction',
        ...(options.args ?? []),
      ];
      outcome = await launch({ program, args, config, port, bind, password, temp, logFile, startTimeoutMs });
    } catch (error) {
      removeFolder(temp);
      throw error;
    }
    if ('server' in outcome) return outcome.server;
    removeFolder(temp);
    failures.push(`port ${port}: ${outcome.failure}`);
    if (!outcome.portTaken) break;
  }
  throw new Error(
    `redis store: could not start ${program} (${failures.join('; ')}). Fix the problem above, or give the address of a running server (settings.redis: { host, port } or url)`,
  );
}

/**
 * Checks `server.bind`: one IP address literal, not a wildcard (the descriptor names it as the host
 * other machines connect to).
 */
export function checkBind(bind: unknown): string {
  if (typeof bind !== 'string' || isIP(bind) === 0) {
    throw new RangeError(
      `redis store: server.bind must be an IP address of this machine (IPv4 like 10.0.0.5, or IPv6 like fd00::5), got ${typeof bind === 'string' ? JSON.stringify(bind) : String(bind)}; give the address other machines reach this one at (\`ip addr\` lists them), not a host name`,
    );
  }
  if (isIP(bind) === 4 ? bind === '0.0.0.0' : /^[0:]+$/.test(bind)) {
    throw new RangeError(
      `redis store: server.bind must be one address of this machine, not ${bind} (every address): the store's descriptor names it as the host other machines connect to; give e.g. 10.0.0.5`,
    );
  }
  return bind;
}

type LaunchOutcome = { server: RunningServer } | { failure: string; portTaken: boolean };

interface LaunchPlan {
  program: string;
  args: string[];
  /** Config lines for redis-server's stdin (`args` then start with `-`). */
  config: string | undefined;
  port: number;
  bind: string | undefined;
  password: string | undefined;
  temp: string;
  logFile: string;
  startTimeoutMs: number;
}

async function launch(plan: LaunchPlan): Promise<LaunchOutcome> {
  const { program, args, config, port, bind, password, temp, logFile, startTimeoutMs } = plan;
  const posix = process.platform !== 'win32';
  const child: ChildProcess = posix
    ? spawn('/bin/sh', ['-c', WATCHDOG, program, ...args], {
        stdio: ['pipe', 'pipe', 'ignore'],
        env: { ...process.env, IMPROV_REDIS_TMP: temp },
      })
    : spawn(program, args, { stdio: [config === undefined ? 'ignore' : 'pipe', 'ignore', 'ignore'] });
  if (config !== undefined) {
    // The watchdog reads the first line and keeps the pipe for its lifetime; without one, the
    // server reads to end-of-file.
    child.stdin?.on('error', () => {});
    child.stdin?.write(`${config}\n`);
    if (!posix) child.stdin?.end();
  }
  let exited = false;
  let exitCode: number | null = null;
  const exitPromise = new Promise<void>((resolve) => {
    child.once('exit', (code) => {
      exited = true;
      exitCode = code;
      resolve();
    });
  });
  let spawnError: Error | undefined;
  child.once('error', (error) => {
    spawnError = error;
    exited = true;
  });
  // The server's pid: the watchdog prints it first; without a watchdog, it is the child's.
  let pid = posix ? 0 : (child.pid ?? 0);
  // What the watchdog prints: the pid, and after a failure the end of the log.
  let text = '';
  const outputEnded = new Promise<void>((resolve) => {
    if (child.stdout) child.stdout.once('close', () => resolve());
    else resolve();
  });
  if (posix) {
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      text += chunk;
      const line = /^(\d+)\n/.exec(text);
      if (line && pid === 0) pid = Number(line[1]);
    });
  }
  // Never keep the opener's event loop alive for the server's sake.
  child.unref();
  unrefStream(child.stdin);
  unrefStream(child.stdout);
  const entry = { pid: 0 };

  const deadline = Date.now() + startTimeoutMs;
  let answer = '';
  while (!exited && Date.now() < deadline) {
    answer = await ping(port, Math.min(500, Math.max(deadline - Date.now(), 1)));
    if (answer === 'PONG' && pid !== 0) break;
    await delay(answer === 'LOADING' ? 50 : 20);
  }
  if (spawnError !== undefined) {
    return { failure: `cannot run it: ${spawnError.message}`, portTaken: false };
  }
  if (exited || answer !== 'PONG' || pid === 0) {
    const why = exited
      ? `it exited${exitCode === null ? '' : ` with code ${exitCode}`}`
      : `it did not answer PING within ${startTimeoutMs} ms`;
    if (!exited) await stopChild(child, pid, exitPromise);
    // The watchdog has removed the log by now; it printed its end first.
    await Promise.race([outputEnded, delay(1000)]);
    const log = tail(logFile) || lastLines(text.replace(/^\d+\n/, ''));
    const portTaken = /address already in use|EADDRINUSE/i.test(log);
    const ended = `${why}${log ? `; its log ends: ${log}` : ''}`;
    if (bind !== undefined && !portTaken && log.includes(`listening socket ${bind}:`)) {
      return { failure: `cannot listen on ${bind}: is it an address of this machine? (${ended})`, portTaken };
    }
    return { failure: ended, portTaken };
  }
  entry.pid = pid;
  running.add(entry);
  recordServer(temp, pid, port);
  installExitHandler();
  let stopped: Promise<void> | undefined;
  return {
    server: {
      host: HOST,
      port,
      ...(bind === undefined ? {} : { bind }),
      ...(password === undefined ? {} : { password }),
      pid,
      stop() {
        stopped ??= (async () => {
          running.delete(entry);
          await stopChild(child, pid, exitPromise);
          removeFolder(temp);
        })();
        return stopped;
      },
    },
  };
}

/**
 * The record of a running server in its temporary folder, `{ "pid", "port" }`: when this process
 * dies together with its watchdog (a signal to the whole process group that ends both), the server
 * lives on, and `improv cleanup` finds it here — its pid, and the port it announces in its process
 * title, so that no other redis-server is ever taken for it.
 */
export const SERVER_RECORD = 'redis-server.json';

function recordServer(temp: string, pid: number, port: number): void {
  try {
    writeFileSync(path.join(temp, SERVER_RECORD), `${JSON.stringify({ pid, port })}\n`);
  } catch {
    // the folder went away: nothing to find later either
  }
}

/** Stops the server: SIGTERM (Redis shuts down cleanly), SIGKILL after 5 s; waits for the watchdog. */
async function stopChild(child: ChildProcess, pid: number, exited: Promise<void>): Promise<void> {
  const signal = (name: NodeJS.Signals) => {
    try {
      if (pid !== 0) process.kill(pid, name);
    } catch {
      // already gone
    }
  };
  signal('SIGTERM');
  child.stdin?.end();
  const done = await Promise.race([exited.then(() => true), delay(5000).then(() => false)]);
  if (!done) {
    signal('SIGKILL');
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
    await Promise.race([exited, delay(1000)]);
  }
  // The watchdog has exited once its server has; make sure the server's port is free too.
  for (let index = 0; index < 50 && pid !== 0 && processAlive(pid, { othersCount: false }); index++) await delay(20);
}

/** Sends PING on a fresh connection: `PONG`, `LOADING` (still reading its files) or '' (no answer). */
function ping(port: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const socket = createConnection({ host: HOST, port });
    const finish = (answer: string) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => finish(''), timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk: string) => {
      text += chunk;
      if (text.includes('\r\n'))
        // Any answer but LOADING means it serves (a password set with `args` answers NOAUTH).
        finish(text.startsWith('-LOADING') ? 'LOADING' : 'PONG');
    });
    socket.on('error', () => finish(''));
  });
}

/** A loopback port nobody listens on right now (another process may take it before us: retried). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** The program's path, or an error saying how to install redis-server. */
function findProgram(command: string): string {
  if (typeof command !== 'string' || command === '') {
    throw new TypeError(`redis store: server.command must be the name or path of redis-server, got ${String(command)}`);
  }
  const candidates =
    command.includes('/') || command.includes('\\')
      ? [path.resolve(command)]
      : (process.env.PATH ?? '')
          .split(path.delimiter)
          .filter((folder) => folder !== '')
          .flatMap((folder) =>
            process.platform === 'win32'
              ? [path.join(folder, command), path.join(folder, `${command}.exe`)]
              : [path.join(folder, command)],
          );
  for (const candidate of candidates) {
    try {
      if (!statSync(candidate).isFile()) continue;
      if (process.platform !== 'win32') accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  const where =
    command.includes('/') || command.includes('\\')
      ? `there is no program at ${path.resolve(command)}`
      : `"${command}" is not on PATH`;
  throw new Error(
    `redis store: no Redis server address is set, so improv-ts starts its own redis-server — but ${where}. Install Redis (Debian/Ubuntu: sudo apt-get install redis-server; Fedora: sudo dnf install redis; macOS: brew install redis; or run one in Docker: docker run -p 6379:6379 redis), or use a running server: settings.redis: { host, port } (or url: redis://host:port)`,
  );
}

function unrefStream(stream: unknown): void {
  (stream as { unref?: () => void } | null | undefined)?.unref?.();
}

function tail(file: string): string {
  try {
    return lastLines(readFileSync(file, 'utf8'));
  } catch {
    return '';
  }
}

/** The last 3 lines of a Redis log, without their pid and time stamp. */
function lastLines(log: string): string {
  const lines = log.trim().split('\n');
  // `1234:M 04 Dec 2026 07:59:27.680 # Failed listening on port …` → `Failed listening on port …`
  return lines
    .slice(-3)
    .map((line) => line.replace(/^\d+:[A-Z] [^:]*\d:\d\d:\d\d\.\d+ [*#.-] /, '').trim())
    .filter((line) => line !== '')
    .join(' | ');
}

function removeFolder(folder: string): void {
  try {
    rmSync(folder, { recursive: true, force: true });
  } catch {
    // best effort
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `maxmemory` of the store's own server: the store, and headroom for Redis's own bookkeeping. */
export function serverMaxmemory(sizeBytes: number): number {
  // jemalloc rounds large strings up to its size classes (up to 25 %), each value has a few hundred
  // bytes of metadata, and a put briefly holds a value that may be refused: 1.5 × + 64 MiB.
  return Math.ceil(sizeBytes * 1.5) + 64 * 1024 * 1024;
}
