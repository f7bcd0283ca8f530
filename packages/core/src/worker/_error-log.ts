/**
 * Summarises errors that repeat, by where they come from (error class + throwing location), not by
 * their text: a message that carries a frame number or a time is still the same error. The first
 * error from each place is logged in full with its stack; later ones are counted and summarised at
 * most once a second. Package-private, used by the actor host.
 * @module
 */
import type { Logger } from '../log.ts';

/** How often repeats are summarised. */
const SUMMARY_EVERY_MS = 1000;
/** Places remembered at once; an actor with more distinct failing places starts over. */
const MAX_PLACES = 200;

interface Place {
  /** Repeats since the last summary. */
  repeats: number;
  lastMessage: string;
}

export class ErrorLog {
  readonly #log: Logger;
  readonly #what: string;
  readonly #places = new Map<string, Place>();
  #lastSummary = 0;
  #pending = 0;

  /** `what` names the failing call in log lines, e.g. `runStep()`. */
  constructor(log: Logger, what: string) {
    this.#log = log;
    this.#what = what;
  }

  /** Logs `error` in full the first time its place is seen, else counts it. */
  record(error: unknown, note: string): void {
    const place = placeOf(error);
    const seen = this.#places.get(place);
    if (seen === undefined) {
      if (this.#places.size >= MAX_PLACES) this.#places.clear();
      this.#places.set(place, { repeats: 0, lastMessage: messageOf(error) });
      this.#log.error(`${this.#what} threw; ${note}:`, error);
      return;
    }
    seen.repeats += 1;
    seen.lastMessage = messageOf(error);
    this.#pending += 1;
    this.flush(false);
  }

  /** Logs the summary of repeats now (`force`), or when a second has passed since the last. */
  flush(force: boolean): void {
    if (this.#pending === 0) return;
    const now = performance.now();
    if (!force && now - this.#lastSummary < SUMMARY_EVERY_MS) return;
    for (const [place, seen] of this.#places) {
      if (seen.repeats === 0) continue;
      this.#log.error(
        `${this.#what} threw ${place} ${seen.repeats} more time${seen.repeats === 1 ? '' : 's'} (last: ${seen.lastMessage})`,
      );
      seen.repeats = 0;
    }
    this.#pending = 0;
    this.#lastSummary = now;
  }

  /** Forgets every place: the next error from each is logged in full again. */
  reset(): void {
    this.flush(true);
    this.#places.clear();
  }
}

/**
 * Where improv's own packages are (`packages/` of this repository, or `node_modules/@improv/` once
 * installed): the folder that holds this package's folder.
 */
const OWN_PACKAGES = decodeURIComponent(new URL('../../..', import.meta.url).pathname);

/**
 * `TypeError at actors/x.ts:12:5`: the error's class and the first frame of its stack in the user's
 * code — not in improv's packages (their `src/` or `dist/`), a library in `node_modules`, or the
 * runtime — so a `StoreFullError` thrown inside the store names the actor's line that called `put`.
 * The first frame when no frame is the user's.
 */
export function placeOf(error: unknown): string {
  if (!(error instanceof Error)) {
    const kind = error === null ? 'null' : typeof error;
    return `${/^[aeiou]/.test(kind) ? 'an' : 'a'} ${kind} value`;
  }
  const location = stackPlace(error.stack);
  return location === undefined ? error.name : `${error.name} at ${location}`;
}

/**
 * The place (`/lab/actors/x.ts:12:5`) that {@link placeOf} names, from a stack's text: the first
 * frame in the user's code, else (unless `usersOnly`) the first frame; undefined for none.
 */
export function stackPlace(stack: string | undefined, usersOnly = false): string | undefined {
  // A Python traceback (a Python actor's): `File "/lab/analysis.py", line 12, in run_step`, the
  // innermost frame last; its own package, the standard library and installed packages are not the user's.
  const python = [...(stack ?? '').matchAll(/^\s*File "([^"]+)", line (\d+)/gm)].map(([, file, line]) => ({
    location: `${file}:${line}`,
    users: file!.startsWith('/') && !/\/(improv_ts|improv)\/|\/lib\/python3[^/]*\/|-packages\//.test(file!),
  }));
  if (python.length > 0) {
    const users = python.filter((frame) => frame.users).at(-1);
    return users?.location ?? (usersOnly ? undefined : python.at(-1)!.location);
  }
  const locations = (stack ?? '')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.startsWith('at '))
    // `at fn (file:line:col)` or `at file:line:col`; keep the location only.
    .map((frame) => (/\(([^()]+)\)$/.exec(frame)?.[1] ?? frame.slice(3)).replace(/^file:\/\//, ''));
  return locations.find(isUsersCode) ?? (usersOnly ? undefined : locations[0]);
}

function isUsersCode(location: string): boolean {
  if (!location.startsWith('/')) return false; // node:…, internal/…, <anonymous>, native
  if (location.includes('/node_modules/')) return false; // libraries, and improv once installed
  if (!location.startsWith(OWN_PACKAGES)) return true;
  // In this repository only the packages' code (src/, dist/) is improv's; `improv new`'s template is the user's.
  return !/^[^/]+\/(src|dist)\//.test(location.slice(OWN_PACKAGES.length));
}

function messageOf(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
