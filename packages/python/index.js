// The folder Nexus puts on a Python actor process's PYTHONPATH: it holds the `improv_ts` package
// (the actor host, links and stores) and the `improv` compatibility package.
import { fileURLToPath } from 'node:url';

export const pythonPath = fileURLToPath(new URL('.', import.meta.url));
/** The module a Python actor process runs (`python -m <entryModule>`). */
export const entryModule = 'improv_ts._process';
