/** The folder Nexus puts on a Python actor process's PYTHONPATH (it holds `improv_ts` and `improv`). */
export declare const pythonPath: string;
/** The module a Python actor process runs (`python -m <entryModule>`). */
export declare const entryModule: string;
