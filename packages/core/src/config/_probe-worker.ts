/**
 * The worker that imports actor modules for `improv validate` and `createNexus` (package-private):
 * a module that loops forever at import, never settles a top-level await, throws, or calls
 * `process.exit()` takes down this worker, not the validation. Each module's exports come back as
 * shapes (is it an Actor class, does it have runStep), never as values.
 * @module
 */
import { isActorClass } from '../actor.ts';
import type { WorkerEndpoint } from '../runtime/adapter.ts';

/** What validation needs to know of one export. */
export interface ExportShape {
  /** A class that extends Actor (from any copy of @improv/core). */
  actor: boolean;
  /** `typeof`, with `null` and `array` told apart. */
  kind: string;
  /** For a class: whether its prototype has `runStep()`, and improv's `run_step()`. */
  runStep: boolean;
  run_step: boolean;
  /** An actor class's declared {@link Actor.optionTypes} (names → YAML types), when it has them. */
  optionTypes?: Record<string, string>;
}

/** Parent → worker: import this module. */
export interface ProbeRequest {
  specifier: string;
}

/** Worker → parent: what came of it. */
export type ProbeReply =
  | { specifier: string; ok: true; exports: Record<string, ExportShape> }
  | { specifier: string; ok: false; error: { name: string; message: string; code?: string } };

export function runWorker(endpoint: WorkerEndpoint): void {
  let queue = Promise.resolve();
  endpoint.onMessage((message) => {
    const { specifier } = message as ProbeRequest;
    queue = queue.then(async () => endpoint.postMessage(await probe(specifier)));
  });
}

/** `optionTypes` of a class, kept only when it is a mapping of names to type words. */
function declaredOptions(value: unknown): { optionTypes?: Record<string, string> } {
  if (typeof value !== 'function') return {};
  const declared = (value as { optionTypes?: unknown }).optionTypes;
  if (typeof declared !== 'object' || declared === null) return {};
  const entries = Object.entries(declared).filter((entry): entry is [string, string] => typeof entry[1] === 'string');
  return { optionTypes: Object.fromEntries(entries) };
}

async function probe(specifier: string): Promise<ProbeReply> {
  try {
    const module = (await import(/* @vite-ignore */ specifier)) as Record<string, unknown>;
    const exports: Record<string, ExportShape> = {};
    for (const [name, value] of Object.entries(module)) {
      const proto =
        typeof value === 'function' ? (value as { prototype?: Record<string, unknown> }).prototype : undefined;
      exports[name] = {
        actor: isActorClass(value),
        kind: value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value,
        runStep: typeof proto?.runStep === 'function',
        run_step: typeof proto?.run_step === 'function',
        ...declaredOptions(value),
      };
    }
    return { specifier, ok: true, exports };
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    return {
      specifier,
      ok: false,
      error: {
        name: error instanceof Error ? error.name : 'Error',
        message: error instanceof Error ? error.message : String(error),
        ...(typeof code === 'string' ? { code } : {}),
      },
    };
  }
}
