/**
 * The CLI's exit codes, for every command.
 * @module
 */

/** 0 ok, 1 failure at run time, 2 usage or config error (nothing was started). */
export const exitCodes = { ok: 0, failure: 1, usage: 2 } as const;
