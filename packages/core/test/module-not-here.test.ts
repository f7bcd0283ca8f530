import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect, it } from 'vitest';
import { ModuleNotHereError, notHere } from '../src/worker/_module-not-here.ts';

it('an actor module missing where the actor runs says so, and what a host needs', async () => {
  const folder = mkdtempSync(join(tmpdir(), 'improv-not-here-'));
  rmSync(folder, { recursive: true });
  const url = pathToFileURL(join(folder, 'actors', 'src.ts')).href;
  const error = await import(url).then(
    () => undefined,
    (caught: unknown) => notHere(caught, url),
  );
  expect(error).toBeInstanceOf(ModuleNotHereError);
  expect((error as Error).message).toBe(
    `its module ${join(folder, 'actors', 'src.ts')} is not on the machine it runs on: an actor on another host (host:) needs the project at the same path there; copy or mount it, then start the pipeline again`,
  );
  // Any other import error is left as it is.
  const other = new SyntaxError('Unexpected token');
  expect(notHere(other, url)).toBe(other);
  expect(notHere(other, '@lab/actors')).toBe(other);
});
