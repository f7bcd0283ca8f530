/**
 * The CLI's own package: its folder (one up from src/ in the workspace and from dist/ when
 * installed) and its package.json, read when asked for (Deno without --allow-read must not be asked
 * on every start).
 * @module
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The folder of the @improv/cli package. */
export const packageRoot = fileURLToPath(new URL('..', import.meta.url));

/** What the CLI reads of its package.json. */
export interface OwnManifest {
  version?: unknown;
  dependencies?: Record<string, string>;
}

/** The CLI's package.json. Throws the runtime's error when it cannot be read. */
export function ownManifest(): OwnManifest {
  return JSON.parse(readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as OwnManifest;
}
