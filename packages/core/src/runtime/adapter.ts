/**
 * The runtime contract: everything Nexus needs from Node, Bun or Deno — starting workers, files,
 * paths and process signals — behind one interface, so the rest of core never touches a
 * runtime-specific module. Adapters live beside this file (`node.ts`, `bun.ts`, `deno.ts`);
 * `detect.ts` picks the one for the runtime in use, and an adapter passed to `createNexus`
 * explicitly always wins over that default.
 *
 * Workers are started with a ready handshake: the worker's bootstrap attaches its message handler
 * first, then posts `{ type: '__improv_hello' }`, and nothing is posted to it before that (Bun and
 * Deno drop such messages). Messages that arrive before the entry calls `endpoint.onMessage` are
 * buffered by the bootstrap and delivered in order, so every adapter behaves the same.
 *
 * @example
 * ```ts
 * const worker = await adapter.spawnWorker({ name: 'Processor', entry: hostUrl });
 * worker.onMessage((message) => console.log(message));
 * worker.postMessage({ type: 'init', ... });
 * ```
 * @module
 */

/** How to start one worker. */
export interface SpawnWorkerOptions {
  /** Thread name, shown in debuggers and crash reports. */
  name: string;
  /**
   * URL of the module the worker runs. It must export `runWorker(endpoint: WorkerEndpoint)`; the
   * adapter's bootstrap imports it (TypeScript included) and calls it.
   */
  entry: string;
  /**
   * Heap limit of the worker in MiB. Enforced only where {@link RuntimeAdapter.heapLimit} is true;
   * elsewhere it is ignored (the runtime has no per-worker limit).
   */
  maxHeapMb?: number;
}

/**
 * The signals that quit a pipeline cleanly: Ctrl-C, `kill`/`timeout`/systemd, and the terminal
 * closing (a hang-up).
 */
export type ShutdownSignal = 'SIGINT' | 'SIGTERM' | 'SIGHUP';

/** The JavaScript runtimes an actor process can run on. */
export type ProcessRuntime = 'node' | 'bun' | 'deno';
/** What an actor process runs on: a JavaScript runtime, or Python (an actor in a `.py` file). */
export type ActorRuntime = ProcessRuntime | 'python';

/**
 * How to start one actor process. The process runs `entry` exactly as a worker would
 * (`runWorker(endpoint)`), over a control channel that carries the same messages; a
 * `SharedArrayBuffer` in a message arrives as a copy kept alike with the original (each word written
 * by one side only), so descriptors made for workers work unchanged.
 */
export interface SpawnProcessOptions {
  /** The actor's name: in error messages, and in the process's environment (`IMPROV_PROCESS_NAME`). */
  name: string;
  /** URL of the module the process runs; it must export `runWorker(endpoint: WorkerEndpoint)`. */
  entry: string;
  /**
   * The runtime the process runs on (its binary is found with `findRuntime`). `python` runs the
   * Python actor host (`@improv/python`) with {@link interpreter} instead of `entry`.
   */
  runtime: ActorRuntime;
  /** `python`: the interpreter, a command on `PATH` or a path (`settings.python`). */
  interpreter?: string;
  /** V8 heap limit in MiB (Node and Deno; Bun has none to set). */
  maxHeapMb?: number;
}

/** What {@link RuntimeAdapter.checkPythonActor} looks at. */
export interface PythonCheckOptions {
  /** The actor's `.py` file. */
  file: string;
  className: string;
  /** improv's dotted form (`actors.sample_processor`), imported as a package from its root. */
  package?: string;
  /** `settings.python`; default `python3` on `PATH`. */
  interpreter?: string;
  timeoutMs: number;
}

/** What is wrong with a Python actor's file, or that nothing is. */
export type PythonCheck =
  | { ok: true; runStep: string; interpreter?: string }
  | {
      ok: false;
      /**
       * `no-interpreter`, `deps` (improv's own modules missing: `module`), `syntax`,
       * `missing-module` (`module`), `import` (it raised), `no-class` (`classes` it has),
       * `not-actor`, `no-run-step` or `timeout`.
       */
      kind: string;
      message: string;
      file?: string;
      line?: number;
      module?: string;
      classes?: string[];
      interpreter?: string;
    };

/** Nexus's handle on an actor process: a {@link WorkerHandle}, plus what only a process has. */
export interface ProcessHandle extends WorkerHandle {
  /** The operating system's process id. */
  readonly pid: number;
  readonly runtime: ActorRuntime;
  /**
   * Called for each line the process writes to stdout or stderr itself — native code, the
   * runtime's own warnings and crash reports; an actor's `console.*` goes to the log as records.
   */
  onOutput(listener: (line: string, stream: 'stdout' | 'stderr') => void): void;
}

/** What can be moved to a worker instead of copied: a `MessagePort` (a direct channel) or an `ArrayBuffer`. */
export type Transferable = InstanceType<typeof MessagePort> | ArrayBuffer;

/** Nexus's handle on a running worker. */
export interface WorkerHandle {
  /**
   * Posts a structured-clonable message (shared buffers are shared, not copied). Objects in
   * `transfer` are moved to the worker: a `MessagePort` gives it a channel of its own (to another
   * worker, say), an `ArrayBuffer` changes hands without a copy and is unusable here afterwards.
   */
  postMessage(message: unknown, transfer?: readonly Transferable[]): void;
  /** Called for every message the worker posts. */
  onMessage(listener: (message: unknown) => void): void;
  /**
   * Called when the worker dies of an uncaught error or an unhandled rejection (out of memory
   * included). `onExit` follows with a non-zero code.
   */
  onError(listener: (error: Error) => void): void;
  /**
   * Called once when the worker has ended, after the messages it posted, with its exit code: 0 for
   * a normal end (the worker closed its channel), the code it passed to `process.exit()`, non-zero
   * after an uncaught error or `terminate()`. A listener added after the end is called at once.
   */
  onExit(listener: (code: number) => void): void;
  /**
   * Where the runtime can capture them (Node): called for each line the worker writes to stdout or
   * stderr itself (`process.stdout.write`; an actor's `console.*` goes to the log as records).
   * Without a listener they go to this process's stdout and stderr, as they would uncaptured.
   */
  onOutput?(listener: (line: string, stream: 'stdout' | 'stderr') => void): void;
  /** Ends the worker at once and resolves when it is gone. Does nothing once it has ended. */
  terminate(): Promise<void>;
}

/**
 * The worker's side of its control channel, handed to `runWorker`. While the channel is open it
 * keeps the worker alive, also when all the worker does is wait (a pending `Atomics.waitAsync`
 * alone keeps no worker alive, on Node, Bun or Deno).
 */
export interface WorkerEndpoint {
  /**
   * Posts a structured-clonable message to the parent. The `ArrayBuffer`s in `transfer` change
   * hands without a copy where the channel is a worker's (they are unusable here afterwards); a
   * process's channel copies them as it encodes.
   */
  postMessage(message: unknown, transfer?: readonly ArrayBuffer[]): void;
  /**
   * Sets the one listener for the parent's messages; messages that arrived before it was set are
   * delivered to it first, in order.
   */
  onMessage(listener: (message: unknown) => void): void;
  /** Closes the channel; the worker then ends (exit code 0) once it has nothing else to do. */
  close(): void;
}

/** A file opened for appending (the run log). */
export interface AppendFile {
  /** Appends text; writes are ordered. */
  write(text: string): void;
  /** Flushes and closes. */
  close(): Promise<void>;
}

/** Path helpers of the platform. */
export interface PathApi {
  resolve(...segments: string[]): string;
  join(...segments: string[]): string;
  dirname(path: string): string;
  basename(path: string, suffix?: string): string;
  relative(from: string, to: string): string;
  isAbsolute(path: string): boolean;
  /** `file://` URL of an absolute path. */
  toFileUrl(path: string): string;
}

/** A runtime: Node, Bun or Deno. */
export interface RuntimeAdapter {
  /** `node`, `bun` or `deno`. */
  readonly name: string;
  /** Version of the runtime, e.g. `20.20.2`. */
  readonly version: string;
  /**
   * Whether `SpawnWorkerOptions.maxHeapMb` is enforced. True on Node and Deno (`resourceLimits`);
   * false on Bun, whose workers have no per-worker heap limit (Nexus then logs a debug note).
   */
  readonly heapLimit: boolean;
  /** Starts a worker and resolves once its ready handshake (`hello`) has arrived. */
  spawnWorker(options: SpawnWorkerOptions): Promise<WorkerHandle>;
  /**
   * Starts an actor in an OS process of its own, on any of the three runtimes, and resolves once
   * its ready handshake has arrived. `onExit` gets the exit code, or 128 + the signal's number for
   * a process a signal ended (134 for `abort()`, 137 for SIGKILL); the process ends by itself when
   * its channel is lost, so none outlives the program that started it. Rejects with
   * `RuntimeUnavailableError` when the runtime is not installed.
   */
  spawnProcess(options: SpawnProcessOptions): Promise<ProcessHandle>;
  /**
   * The path of runtime `name`'s binary (the nearest `node_modules/.bin` walking up from the
   * working directory or from improv's own folder, then `PATH`), or undefined when it is not
   * installed. The runtime in use is always found.
   */
  findRuntime(name: ProcessRuntime): string | undefined;
  /**
   * Imports a Python actor's file with the interpreter it will run on (with `@improv/python` on its
   * path) and reports what is wrong: no interpreter, improv's own modules missing, a syntax error
   * (file and line), a missing module, no such class, no `run_step`; or a timeout.
   */
  checkPythonActor(options: PythonCheckOptions): Promise<PythonCheck>;
  /**
   * Calls `handler` on SIGINT, SIGTERM or SIGHUP (the terminal closed) instead of the default exit.
   * Returns a function that removes the handler again.
   */
  onShutdownSignal(handler: (signal: ShutdownSignal) => void): () => void;
  /** Reads a UTF-8 file. Rejects with the runtime's error (`code: 'ENOENT'`, ...). */
  readTextFile(path: string): Promise<string>;
  /**
   * True when `path` is an existing file; false when it is missing or not a file. Rejects when the
   * runtime may not look (no permission: `EACCES`, or Deno's `NotCapable` without `--allow-read`).
   */
  isFile(path: string): Promise<boolean>;
  /**
   * Creates a folder and its missing parents (a folder that exists is fine) and checks that it can
   * be written to. Rejects with an error naming the path and what is wrong (a file in the way, no
   * permission, a place where folders cannot be made such as /proc) — never hangs.
   */
  makeDirectory(path: string): Promise<void>;
  /** Opens (creating) a file for appending. */
  openAppendFile(path: string): Promise<AppendFile>;
  /** The current working directory. */
  cwd(): string;
  /** Path helpers. */
  readonly path: PathApi;
}
