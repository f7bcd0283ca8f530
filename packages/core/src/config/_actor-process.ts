/**
 * Where an actor runs and what happens when it ends (package-private): an actor's `method:`
 * (improv's own key), `runtime:`, `restart:`, `restart_backoff:` and `max_restarts:`, and whether the
 * runtimes actors name are installed. Each problem is a diagnostic at its node; the store's side (the
 * memory store cannot reach a process) is in `_store-settings.ts`.
 * @module
 */

import { runtimeInstallHelp } from '../runtime/current.ts';
import { type ConfigPath, describeValue, type Reporter, showValue } from './_report.ts';
import { didYouMean } from './_suggest.ts';
import type { DraftActor } from './_validate.ts';
import { durationUnits, parseDuration } from './duration.ts';
import {
  type ActorConfig,
  DEFAULT_MAX_RESTARTS,
  DEFAULT_RESTART_BACKOFF_MS,
  MAX_RESTART_BACKOFF_MS,
  type RestartPolicy,
} from './types.ts';

type ActorRuntime = NonNullable<NonNullable<ActorConfig['process']>['runtime']>;

/** The actor keys this module reads. */
export const actorProcessKeys = ['method', 'runtime', 'host', 'restart', 'restart_backoff', 'max_restarts'];
/** `method:` values: improv's `spawn` and `fork`, and `process`, run the actor in a process of its own. */
const processMethods = ['process', 'spawn', 'fork'];
const workerMethods = ['thread', 'worker'];
const methods = [...processMethods, ...workerMethods];
export const actorRuntimes = ['node', 'bun', 'deno'] as const satisfies readonly ActorRuntime[];
export const restartPolicies = ['never', 'on-failure', 'always'] as const satisfies readonly RestartPolicy[];
/** What people write for "no", which YAML 1.2 reads as a string or `false`. */
const noWords = ['no', 'false', 'off', 'none'];

/** An actor's place and restart policy, as read from its keys. */
export interface ActorPlacement {
  /** Present when the actor runs in a process of its own (see `ActorConfig.process`). */
  process?: NonNullable<ActorConfig['process']>;
  /** The key that put it there, as written (`method: fork`, `runtime: bun`), for messages. */
  placedBy?: string;
  restart: ActorConfig['restart'];
}

/** Reads `method`, `runtime`, `restart`, `restart_backoff` and `max_restarts` of actor `name`. */
export function readActorPlacement(
  name: string,
  spec: Record<string, unknown>,
  path: ConfigPath,
  reporter: Reporter,
  python = false,
): ActorPlacement {
  const result: ActorPlacement = {
    restart: { policy: 'never', backoffMs: DEFAULT_RESTART_BACKOFF_MS, maxRestarts: DEFAULT_MAX_RESTARTS },
  };
  const method = readMethod(name, spec.method, [...path, 'method'], reporter);
  const host = readHost(name, spec.host, [...path, 'host'], reporter);
  if (python) {
    // A Python actor runs in a Python process of its own, whatever else is written.
    if (method === 'worker' || spec.runtime !== undefined) {
      const key = method === 'worker' ? 'method' : 'runtime';
      reporter.error(
        [...path, key],
        `actor "${name}": ${String(spec.package)} is a Python actor, which runs in a Python process of its own, not ${key}: ${String(spec[key])}`,
        `remove  ${key}: ${String(spec[key])}  (the interpreter is settings.python, python3 by default)`,
      );
    }
    if (spec.max_heap_mb !== undefined) {
      reporter.error(
        [...path, 'max_heap_mb'],
        `actor "${name}": max_heap_mb limits the heap of a JavaScript actor; ${String(spec.package)} is a Python actor, whose interpreter has no such limit`,
        'remove  max_heap_mb  (limit a Python process from outside, e.g. with ulimit -v or a cgroup)',
      );
    }
    result.process = { runtime: 'python', ...(host === undefined ? {} : { host }) };
    result.placedBy = `package: ${String(spec.package)} is a Python actor`;
    readRestart(name, spec, path, result.restart, reporter);
    return result;
  }
  const runtime = readRuntime(name, spec.runtime, [...path, 'runtime'], reporter);
  const apart = runtime !== undefined ? `runtime: ${runtime}` : host !== undefined ? `host: ${host}` : undefined;
  if (method === 'worker' && apart !== undefined) {
    reporter.error(
      [...path, 'method'],
      `actor "${name}": method: ${String(spec.method)} runs it in a worker of Nexus's process, but ${apart} runs it in a process of its own`,
      `remove  method: ${String(spec.method)}  to run it in a process of its own, or remove  ${apart}  to keep it in a worker`,
    );
  } else if (method === 'process' || apart !== undefined) {
    result.process = {
      ...(runtime === undefined ? {} : { runtime }),
      ...(host === undefined ? {} : { host }),
    };
    result.placedBy = method === 'process' ? `method: ${String(spec.method)}` : (apart ?? 'method: process');
  }
  readRestart(name, spec, path, result.restart, reporter);
  return result;
}

function readMethod(
  name: string,
  value: unknown,
  path: ConfigPath,
  reporter: Reporter,
): 'process' | 'worker' | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string' && processMethods.includes(value)) return 'process';
  if (typeof value === 'string' && workerMethods.includes(value)) return 'worker';
  reporter.error(
    path,
    `actor "${name}": method must be one of ${methods.join(', ')}, not ${showValue(value)}`,
    `${typeof value === 'string' ? didYouMean(value, methods) : ''}write  method: process  (its own OS process; improv's spawn and fork mean the same) or  method: worker  (a worker of Nexus's process, the default)`,
  );
  return undefined;
}

function readRuntime(name: string, value: unknown, path: ConfigPath, reporter: Reporter): ActorRuntime | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string' && (actorRuntimes as readonly string[]).includes(value)) return value as ActorRuntime;
  reporter.error(
    path,
    `actor "${name}": runtime must be one of ${actorRuntimes.join(', ')}, not ${showValue(value)}`,
    `${typeof value === 'string' ? didYouMean(value, actorRuntimes) : ''}write e.g.  runtime: bun  (the actor runs in its own process on that runtime), or remove it to run the actor on the runtime Nexus runs in`,
  );
  return undefined;
}

function readHost(name: string, value: unknown, path: ConfigPath, reporter: Reporter): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string' && value.trim() !== '') return value.trim();
  reporter.error(
    path,
    `actor "${name}": host must be the name of an entry of hosts:, not ${describeValue(value)}`,
    'write e.g.  host: rig  (with  rig: { address: 10.0.0.2 }  under hosts:), or remove it to run the actor on this machine',
  );
  return undefined;
}

function readRestart(
  name: string,
  spec: Record<string, unknown>,
  path: ConfigPath,
  restart: ActorConfig['restart'],
  reporter: Reporter,
): void {
  let policyValid = true;
  if (spec.restart !== undefined) {
    const value = spec.restart;
    if (typeof value === 'string' && (restartPolicies as readonly string[]).includes(value)) {
      restart.policy = value as RestartPolicy;
    } else {
      policyValid = false;
      const no = value === false || (typeof value === 'string' && noWords.includes(value.toLowerCase()));
      const suggestion = no
        ? 'did you mean "never"? '
        : typeof value === 'string'
          ? didYouMean(value, restartPolicies)
          : '';
      reporter.error(
        [...path, 'restart'],
        `actor "${name}": restart must be one of ${restartPolicies.join(', ')}, not ${showValue(value)}`,
        `${suggestion}write  restart: on-failure  (start it again when it crashes or exits with an error) or  restart: always  (also when it ends by itself); never is the default`,
      );
    }
  }
  const given: string[] = [];
  if (spec.restart_backoff !== undefined) {
    const backoff = readBackoff(spec.restart_backoff);
    if (typeof backoff === 'number') {
      restart.backoffMs = backoff;
      given.push('restart_backoff');
    } else {
      reporter.error(
        [...path, 'restart_backoff'],
        `actor "${name}": restart_backoff ${backoff.problem}`,
        `give seconds as a number, or a string with a unit: restart_backoff: 500ms (units ${durationUnits.join(', ')}), more than 0 and at most 30s; it is the wait before the first restart, doubling per restart in a row up to 30 s`,
      );
    }
  }
  if (spec.max_restarts !== undefined) {
    const value = spec.max_restarts;
    if (typeof value === 'number' && Number.isInteger(value) && value >= 0) {
      restart.maxRestarts = value;
      given.push('max_restarts');
    } else {
      reporter.error(
        [...path, 'max_restarts'],
        `actor "${name}": max_restarts must be a whole number >= 0, not ${describeValue(value)}`,
        `write e.g.  max_restarts: ${DEFAULT_MAX_RESTARTS}  (how many restarts in a row before the actor is left failed; default ${DEFAULT_MAX_RESTARTS})`,
      );
    }
  }
  if (!policyValid || restart.policy !== 'never') return;
  for (const key of given) {
    reporter.warning(
      [...path, key],
      `actor "${name}": ${key} has no effect with restart: never${spec.restart === undefined ? ' (the default)' : ''}`,
      `add  restart: on-failure  (or always) to restart the actor, or remove ${key}`,
      { part: 'key' },
    );
  }
}

/** `restart_backoff` in milliseconds, or what is wrong with it. */
function readBackoff(value: unknown): number | { problem: string } {
  if (typeof value !== 'number' && typeof value !== 'string') {
    return { problem: `must be a number of seconds or a string such as "1s", not ${describeValue(value)}` };
  }
  let ms: number;
  try {
    ms = parseDuration(value);
  } catch (error) {
    return { problem: `is invalid: ${(error as Error).message}` };
  }
  if (ms <= 0) return { problem: `must be more than 0, not ${showValue(value)}` };
  if (ms > MAX_RESTART_BACKOFF_MS) {
    return { problem: `must be at most 30s (the longest wait between restarts), not ${showValue(value)}` };
  }
  return ms;
}

/**
 * What the runtime check needs of the adapter. `findRuntime` is optional: an adapter without it (an
 * embedding program's own) skips the check, and a missing runtime is found when the actor starts.
 */
export interface RuntimeFinder {
  readonly name: string;
  findRuntime?(name: ActorRuntime): string | undefined;
}

/** Reports each actor whose `runtime:` names a runtime that is not installed here (looked up once per runtime). */
export function checkRuntimesInstalled(
  actors: readonly DraftActor[],
  adapter: RuntimeFinder,
  reporter: Reporter,
): void {
  if (typeof adapter.findRuntime !== 'function') return;
  const installed = new Map<ActorRuntime, boolean>();
  for (const actor of actors) {
    const runtime = actor.process?.runtime;
    // On another host, the agent there finds the runtime when it starts the actor. Python's
    // interpreter is checked with the actor's file (`_python.ts`).
    if (runtime === undefined || runtime === 'python' || actor.process?.host !== undefined) continue;
    let found = installed.get(runtime);
    if (found === undefined) {
      found = adapter.findRuntime(runtime) !== undefined;
      installed.set(runtime, found);
    }
    if (found) continue;
    reporter.error(
      ['actors', actor.name, 'runtime'],
      `actor "${actor.name}": runtime ${runtime} is not installed`,
      `${runtimeInstallHelp[runtime]}, or remove  runtime: ${runtime}  to run it on ${adapter.name}`,
      { part: 'key' },
    );
  }
}
