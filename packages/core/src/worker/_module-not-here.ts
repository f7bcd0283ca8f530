/**
 * An actor's module that is not on the machine the actor runs on (package-private): `improv
 * validate` found it where the pipeline was read, so it is missing on another host.
 * @module
 */

/** The actor's own module is not where the pipeline said, on the machine this actor runs on. */
export class ModuleNotHereError extends Error {
  override name = 'ModuleNotFoundError';
}

/**
 * `error` of importing the actor's module: when that very file is missing (`improv validate` found it
 * where the pipeline was read, so it is missing on another host), an error that says so.
 */
export function notHere(error: unknown, moduleUrl: string): unknown {
  const code = (error as { code?: unknown } | null)?.code;
  if (!moduleUrl.startsWith('file:')) return error; // an installed package: its own error says it
  const path = decodeURIComponent(new URL(moduleUrl).pathname);
  const message = error instanceof Error ? error.message : String(error);
  if ((code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') || !message.includes(path)) return error;
  return new ModuleNotHereError(
    `its module ${path} is not on the machine it runs on: an actor on another host (host:) needs the project at the same path there; copy or mount it, then start the pipeline again`,
  );
}
