/**
 * The runtime contract: everything Nexus needs from Node, Bun or Deno — starting workers, files,
 * paths and process signals — behind one interface, so the rest of core never touches a
 * runtime-specific module. Adapters live beside this file (`node.ts`, ...); an adapter passed to
 * `createNexus` explicitly always wins over the detected default.
 *
 * Workers are started with a ready handshake: the worker posts `{ type: 'hello' }` once its message
 * handler is attached, and nothing is posted to it before that (Bun and Deno drop such messages).
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
  /** Heap limit of the worker in MiB, where the runtime supports one. */
  maxHeapMb?: number;
}

/** Nexus's handle on a running worker. */
export interface WorkerHandle {
  /** Posts a structured-clonable message (shared buffers are shared, not copied). */
  postMessage(message: unknown): void;
  /** Called for every message the worker posts. */
  onMessage(listener: (message: unknown) => void): void;
  /** Called when the worker dies of an uncaught error (out of memory included). */
  onError(listener: (error: Error) => void): void;
  /** Called once when the worker has ended, with its exit code (0 for a normal end). */
  onExit(listener: (code: number) => void): void;
  /** Ends the worker at once and resolves when it is gone. */
  terminate(): Promise<void>;
}

/** The worker's side of its control channel, handed to `runWorker`. */
export interface WorkerEndpoint {
  postMessage(message: unknown): void;
  onMessage(listener: (message: unknown) => void): void;
  /** Closes the channel so the worker can end once it has nothing else to do. */
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
  /** Starts a worker and resolves once its ready handshake (`hello`) has arrived. */
  spawnWorker(options: SpawnWorkerOptions): Promise<WorkerHandle>;
  /**
   * Calls `handler` on SIGINT or SIGTERM instead of the default exit. Returns a function that removes
   * the handler again.
   */
  onShutdownSignal(handler: (signal: 'SIGINT' | 'SIGTERM') => void): () => void;
  /** Reads a UTF-8 file. Rejects with the runtime's error (`code: 'ENOENT'`, ...). */
  readTextFile(path: string): Promise<string>;
  /** True when `path` is an existing file. */
  isFile(path: string): Promise<boolean>;
  /** Creates a folder and its parents. */
  makeDirectory(path: string): Promise<void>;
  /** Opens (creating) a file for appending. */
  openAppendFile(path: string): Promise<AppendFile>;
  /** The current working directory. */
  cwd(): string;
  /** Path helpers. */
  readonly path: PathApi;
}
