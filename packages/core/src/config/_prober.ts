/**
 * Imports actor modules in a worker of their own, one after another, each within a time limit
 * (package-private). A module that does not finish loading in time, or ends the worker while
 * loading, is reported as such and the worker is replaced for the modules after it.
 * @module
 */

import { siblingModule } from '../_module-url.ts';
import type { RuntimeAdapter, WorkerHandle } from '../runtime/adapter.ts';
import type { ExportShape, ProbeReply } from './_probe-worker.ts';

/** What importing one module came to. */
export type ImportOutcome =
  | { ok: true; exports: Record<string, ExportShape> }
  | { ok: false; error: { name: string; message: string; code?: string } };

const entry = siblingModule(import.meta.url, './_probe-worker');

interface Pending {
  specifier: string;
  resolve(outcome: ImportOutcome): void;
}

export class ModuleProber {
  readonly #adapter: RuntimeAdapter;
  readonly #timeoutMs: number;
  readonly #queue: Pending[] = [];
  readonly #outcomes = new Map<string, Promise<ImportOutcome>>();
  #running = false;

  constructor(adapter: RuntimeAdapter, timeoutMs: number) {
    this.#adapter = adapter;
    this.#timeoutMs = timeoutMs;
  }

  /** Imports `specifier` (once, however often it is asked for). */
  import(specifier: string): Promise<ImportOutcome> {
    let outcome = this.#outcomes.get(specifier);
    if (outcome === undefined) {
      outcome = new Promise((resolve) => this.#queue.push({ specifier, resolve }));
      this.#outcomes.set(specifier, outcome);
      if (!this.#running) void this.#drain();
    }
    return outcome;
  }

  async #drain(): Promise<void> {
    this.#running = true;
    let worker: Probe | undefined;
    try {
      while (this.#queue.length > 0) {
        const next = this.#queue.shift()!;
        worker ??= await Probe.start(this.#adapter);
        const outcome = await worker.import(next.specifier, this.#timeoutMs);
        if (worker.broken) {
          await worker.end();
          worker = undefined;
        }
        next.resolve(outcome);
      }
    } catch (error) {
      // The worker itself could not start: every module waiting gets that error.
      const message = error instanceof Error ? error.message : String(error);
      for (const pending of this.#queue.splice(0)) {
        pending.resolve({
          ok: false,
          error: { name: 'Error', message: `its modules could not be checked: ${message}` },
        });
      }
    } finally {
      await worker?.end();
      this.#running = false;
    }
  }
}

/** One probe worker. */
class Probe {
  readonly #handle: WorkerHandle;
  #reply: ((reply: ProbeReply) => void) | undefined;
  #exited: ((code: number) => void) | undefined;
  #exitCode: number | undefined;
  /** Set when the worker ended or hung: it is not used again. */
  broken = false;

  static async start(adapter: RuntimeAdapter): Promise<Probe> {
    return new Probe(await adapter.spawnWorker({ name: 'improv module check', entry }));
  }

  private constructor(handle: WorkerHandle) {
    this.#handle = handle;
    handle.onMessage((message) => this.#reply?.(message as ProbeReply));
    handle.onExit((code) => {
      this.#exitCode = code;
      this.broken = true;
      this.#exited?.(code);
    });
  }

  import(specifier: string, timeoutMs: number): Promise<ImportOutcome> {
    return new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const finish = (outcome: ImportOutcome) => {
        clearTimeout(timer);
        this.#reply = undefined;
        this.#exited = undefined;
        resolve(outcome);
      };
      const ended = (code: number) =>
        finish({
          ok: false,
          error: {
            name: 'Error',
            message: `the module ended the process while loading (exit code ${code}) — does it call process.exit() at import?`,
            code: 'IMPROV_MODULE_EXITED',
          },
        });
      if (this.#exitCode !== undefined) return ended(this.#exitCode);
      this.#reply = (reply) => {
        if (reply.specifier !== specifier) return;
        finish(reply.ok ? { ok: true, exports: reply.exports } : { ok: false, error: reply.error });
      };
      this.#exited = ended;
      timer = setTimeout(() => {
        this.broken = true;
        finish({
          ok: false,
          error: {
            name: 'Error',
            message: `the module did not finish loading within ${timeoutMs / 1000} s — does it loop, or await something that never settles, at import?`,
            code: 'IMPROV_MODULE_TIMEOUT',
          },
        });
      }, timeoutMs);
      this.#handle.postMessage({ specifier });
    });
  }

  end(): Promise<void> {
    return this.#handle.terminate();
  }
}
