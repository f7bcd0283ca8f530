/**
 * improv's web dashboard: the page (built when the package is installed or packed, and shipped in
 * it) that the control server serves, and the {@link Plot} actor.
 * @module
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export { Plot, type PlotOptions } from './plot.ts';

/** The folder of the built page (`index.html` and `assets/`). */
export const pageFolder: string = fileURLToPath(new URL('../page/', import.meta.url));

/**
 * The built page's folder, or an error saying how to build it: a workspace checkout builds it at
 * `npm install` (the package's `prepare`); an installed package ships it.
 */
export function builtPage(): { ok: true; folder: string } | { ok: false; message: string } {
  if (existsSync(`${pageFolder}index.html`)) return { ok: true, folder: pageFolder };
  return {
    ok: false,
    message: `the dashboard page is not built (no ${pageFolder}index.html); build it with: npm run build -w @improv/dashboard`,
  };
}
