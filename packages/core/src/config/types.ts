/**
 * The shape of a validated pipeline, as Nexus uses it. YAML (or an object with the same keys) goes
 * in; a {@link PipelineConfig} or a list of {@link Diagnostic}s comes out.
 * @module
 */
import { ImprovError } from '../errors.ts';
import type { Endpoint, LinkPolicy } from '../link/transport.ts';
import type { StoreEviction } from '../store/driver.ts';

/** Default `settings.store_size`: 256 MiB. */
export const DEFAULT_STORE_SIZE_BYTES = 256 * 1024 * 1024;
/** Default capacity of a connection, in messages per sink. */
export const DEFAULT_LINK_CAPACITY = 1024;
/** Largest `capacity` of a connection, for every transport: 2³⁰ messages per sink. */
export const MAX_LINK_CAPACITY = 2 ** 30;
/** Default `settings.signal_timeout`: how long an actor may take to acknowledge a signal. */
export const DEFAULT_SIGNAL_TIMEOUT_MS = 5000;
/** Default `settings.import_timeout`: how long an actor module may take to load when it is checked. */
export const DEFAULT_IMPORT_TIMEOUT_MS = 10_000;

/** Default `restart_backoff` of an actor: the first wait before it is restarted. */
export const DEFAULT_RESTART_BACKOFF_MS = 1000;
/** The longest wait between restarts: `restart_backoff` doubles up to it, and may not be longer. */
export const MAX_RESTART_BACKOFF_MS = 30_000;
/** Default `max_restarts` of an actor. */
export const DEFAULT_MAX_RESTARTS = 5;

/** What an actor does when its `runStep()` throws (`on_error` in the YAML). */
export type OnError = 'continue' | 'fail';

/**
 * When an actor that ended is started again (`restart:` in the YAML): `never` (default), `on-failure`
 * (when its worker or process ends abnormally: a crash, a signal, a non-zero exit code) or `always`
 * (whenever it ends before the pipeline quits).
 */
export type RestartPolicy = 'never' | 'on-failure' | 'always';

/** `settings:` after validation. */
export interface PipelineSettings {
  /**
   * `python`: the interpreter of the pipeline's Python actors (`.py` packages), a command on `PATH`
   * or a path; absent: `python3` on `PATH`.
   */
  python?: string;
  /** `store_size`, in bytes (YAML accepts a number of bytes or `"512MiB"`, `"2GB"`, ...). */
  storeSizeBytes: number;
  /**
   * `signal_timeout`, in milliseconds (YAML: a number of seconds, or `"500ms"`, `"5s"`, `"1m"`):
   * an actor that does not acknowledge pause, resume, stop or run within it is reported
   * unresponsive, its worker is ended and it is marked failed. `setup` is not bounded by it.
   */
  signalTimeoutMs: number;
  /**
   * `import_timeout`, in milliseconds (YAML as `signal_timeout`): how long each actor module may take
   * to load when `validate` and `run` check it, in a worker of their own. A module that loops or
   * awaits forever at its top level is reported after it instead of hanging the command.
   */
  importTimeoutMs: number;
  /** The store: which driver, its eviction and the driver's own settings. */
  store: StoreSettings;
  /** The links: which transport connections use by default, and the zmq transport's settings. */
  transport: TransportSettings;
}

/** The transports a pipeline can name in `settings.transport` and a connection's `transport:`. */
export type TransportName = 'local' | 'zmq';

/** `settings.transport` and `settings.zmq` after validation. */
export interface TransportSettings {
  /** `transport`: what connections without a `transport:` of their own use — `local` (default) or `zmq`. */
  name: TransportName;
  /** `zmq:` — used by connections on the zmq transport. */
  zmq: {
    /** `protocol`: `ipc` (default; unix sockets in the run folder, one host) or `tcp` (between hosts). */
    protocol: 'ipc' | 'tcp';
    /** `bind`: the address tcp listeners bind (default 127.0.0.1); anything else needs `keys`. */
    bind?: string;
    /**
     * `keys`: the CURVE key pair, as the path (relative to the config file's folder) written by
     * `improv keys`, without its `.key` / `.key_secret` ending. The CLI also reads `IMPROV_ZMQ_KEYS`.
     */
    keys?: string;
  };
  /** Where each transport setting is written, so an error found when the transport opens can point at it. */
  origins: Partial<Record<'transport' | 'zmq' | 'zmq.bind' | 'zmq.keys', SettingOrigin>>;
}

/** The store drivers a pipeline can name in `settings.store`. */
export type StoreName = 'memory' | 'lmdb' | 'redis';

/** `settings.store`, `settings.store_eviction`, `settings.lmdb`, `settings.redis` after validation. */
export interface StoreSettings {
  /** `store`: `memory` (default; `lmdb` when an actor runs in its own process, see `chosenFor`), `lmdb` or `redis`. */
  driver: StoreName;
  /** `store_eviction`: `none` (default) or `oldest`. */
  eviction: StoreEviction;
  /** `lmdb:` — used when `driver` is `lmdb`. */
  lmdb: {
    /** `path` as written (relative to the config file's folder); absent: a folder the CLI picks. */
    path?: string;
    /** `keep`: the store stays after quit, readable with `improv store ls/get` (default false). */
    keep: boolean;
    /** `sync`: flush to disk at every commit, surviving power loss too (default false). */
    sync: boolean;
  };
  /**
   * `redis:` (or improv's top-level `redis_config:`) — used when `driver` is `redis`. With `host`
   * or `url` improv-ts connects to that server; without, it starts its own on `port` (default: a
   * free one).
   */
  redis: {
    host?: string;
    port?: number;
    url?: string;
    password?: string;
    /** Whether the server improv-ts starts keeps an append-only file (improv's `enable_saving`). */
    saving: boolean;
    /** `fsync_frequency` of that file: `always`, `everysec` or `no` (improv: every_write, every_second, no_schedule). */
    fsync?: 'always' | 'everysec' | 'no';
    /** `aof_dirname`: the folder of that file. */
    aofDir?: string;
  };
  /** Where each store setting is written, so an error found when the store opens can point at it. */
  origins: Partial<Record<'store' | 'store_size' | 'store_eviction' | 'lmdb' | 'redis', SettingOrigin>>;
  /**
   * Why `driver` was chosen when `store` is not written but the default would not do, for the CLI
   * to log, e.g. `actor "Camera" runs in its own process (method: process)`: the memory store lives
   * in one process's memory, so a pipeline with process actors gets `lmdb` (with its `lmdb:` settings,
   * by default a temporary database removed at quit). `origins.store` stays absent then.
   */
  chosenFor?: string;
}

/** Where a setting is written: its path, and file:line:column when there is a file. */
export interface SettingOrigin {
  path: (string | number)[];
  file?: string;
  line?: number;
  column?: number;
}

/** One actor after validation. */
export interface ActorConfig {
  name: string;
  /** `package` as written in the YAML. */
  package: string;
  /** What the worker imports: a `file://` URL, or a bare package specifier. */
  moduleUrl: string;
  /** `class`: the export that holds the actor class. */
  className: string;
  /**
   * Every other key of the actor: the keys improv-ts reads itself (`max_heap_mb`, `on_error`,
   * `method`, `runtime`, `restart`, `restart_backoff`, `max_restarts`) and improv's `daemon` are not in it.
   */
  options: Record<string, unknown>;
  /** `max_heap_mb`: heap limit of the actor's worker in MiB; the runtime's default when absent. */
  maxHeapMb?: number;
  /**
   * `on_error`: `continue` (default) logs a throwing `runStep()` and calls it again after a back-off
   * (1 ms doubling to 1 s, reset by a step that succeeds); `fail` makes the actor failed at the first error.
   */
  onError: OnError;
  /**
   * Present when the actor runs in an OS process of its own rather than a worker of Nexus's process.
   * Set by `method: process` (improv's own key; `spawn` and `fork` are accepted synonyms, while
   * `thread` and `worker` keep the worker), or by `runtime:`, which implies a process of its own.
   * A Python actor (a `.py` package) always runs in a process of its own, on `python`.
   */
  process?: {
    /**
     * `runtime`: the runtime the process runs on; absent: the one Nexus runs in. `python` for a
     * Python actor (set from its file, not written).
     */
    runtime?: 'node' | 'bun' | 'deno' | 'python';
    /** `python`: the interpreter (`settings.python`, default `python3` on `PATH`). */
    interpreter?: string;
    /**
     * `host`: the machine (an entry of `hosts:`) whose `improv agent` starts the process; absent:
     * this machine. Implies a process of its own.
     */
    host?: string;
  };
  /** What happens when the actor's worker or process ends before the pipeline quits. */
  restart: {
    /** `restart`: `never` (default), `on-failure` or `always` (see {@link RestartPolicy}). */
    policy: RestartPolicy;
    /**
     * `restart_backoff`, in milliseconds (YAML as `signal_timeout`; default 1000): the wait before
     * the first restart. Each restart in a row doubles it, up to {@link MAX_RESTART_BACKOFF_MS} (30 s).
     */
    backoffMs: number;
    /** `max_restarts`: how many restarts in a row (default 5) before the actor is left failed. */
    maxRestarts: number;
  };
}

/** One connection after validation (both YAML forms end up here). */
export interface ConnectionConfig {
  /** The YAML key: a connection name, or `Actor.link` in improv's short form. */
  name: string;
  sources: Endpoint[];
  sinks: Endpoint[];
  /** Messages each sink holds before `policy` applies. */
  capacity: number;
  policy: LinkPolicy;
  /** `transport:` when the connection names one; otherwise `settings.transport` applies. */
  transport?: TransportName;
}

/** The port `improv agent` listens on when `--listen` names none, and a host entry's default. */
export const DEFAULT_AGENT_PORT = 7310;
/** The agent's token file when none is named, in the home folder (on one machine, agent and Nexus share it). */
export const DEFAULT_AGENT_TOKEN_FILE = '~/.improv/agent.token';

/** One entry of `hosts:`: a machine where `improv agent` runs. */
export interface HostConfig {
  /** The key under `hosts:`, which actors name in `host:`. */
  name: string;
  /** `address`: where the agent listens (host name or IP address). */
  address: string;
  /** `port`: the agent's port (default {@link DEFAULT_AGENT_PORT}). */
  port: number;
  /**
   * `token_file`: the agent's token (a copy of the file `improv agent` made), resolved against the
   * config's folder; `~/` is the home folder. Default {@link DEFAULT_AGENT_TOKEN_FILE}.
   */
  tokenFile: string;
  /**
   * Where `token_file` is written (the host's entry when it is not): a problem with the token file
   * (unreadable, not a token, refused by the agent) is reported there.
   */
  tokenFileOrigin?: SettingOrigin;
}

/** A validated pipeline. */
export interface PipelineConfig {
  /** Absolute path of the YAML file, or `<object>` for a config given as an object. */
  source: string;
  /** Folder that relative `package` paths were resolved from. */
  baseDir: string;
  settings: PipelineSettings;
  /** In the order they were written. */
  actors: ActorConfig[];
  connections: ConnectionConfig[];
  /**
   * `hosts:`, the machines actors may be placed on with `host:`. Empty when there are none, or when
   * the config was loaded with every host mapped to this machine (`hostsLocal`).
   */
  hosts: HostConfig[];
}

/** One problem found in a config. */
export interface Diagnostic {
  severity: 'error' | 'warning';
  /** What is wrong, naming the thing. */
  message: string;
  /** How to put it right. */
  fix?: string;
  /** The YAML file, when there is one. */
  file?: string;
  /** 1-based line and column of the offending node, when known. */
  line?: number;
  column?: number;
  /** Where in the document, e.g. `['actors', 'Processor', 'package']`. */
  path: (string | number)[];
}

/** A config with at least one error. `diagnostics` holds all of them (warnings too). */
export class ConfigError extends ImprovError {
  readonly diagnostics: Diagnostic[];
  constructor(message: string, diagnostics: Diagnostic[]) {
    super('CONFIG_INVALID', message);
    this.diagnostics = diagnostics;
  }
  static override isInstance(value: unknown): value is ConfigError {
    return ImprovError.hasCode(value, 'CONFIG_INVALID');
  }
}
