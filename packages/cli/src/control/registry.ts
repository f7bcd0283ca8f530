/**
 * The per-user registry of running pipelines: one JSON file per run in `~/.improv/runs/` (or
 * `$IMPROV_HOME/runs/`), written when a control server starts and removed when it stops. `improv
 * list` reads it; `improv cmd/logs/tap/top/client` find a run's URL and token through it; `improv
 * cleanup` removes the entries of runs whose process is gone.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { makeFolder } from '@improv/core/runtime/folders';
import { processAlive } from '@improv/core/runtime/pid';
import type { RunInfo } from './protocol.ts';

/** improv's folder in the user's home (`$IMPROV_HOME`, default `~/.improv`). */
export function improvHome(): string {
  return process.env.IMPROV_HOME ?? path.join(homedir(), '.improv');
}

/** The registry folder. */
export function registryDir(): string {
  return path.join(improvHome(), 'runs');
}

/** A new run id: the pipeline's file name and four hex digits (`minimal-3fa2`). */
export function newRunId(pipeline: string): string {
  const base = path
    .basename(pipeline)
    .replace(/\.ya?ml$/i, '')
    .replace(/[^\w.-]+/g, '_')
    .slice(0, 40);
  return `${base || 'pipeline'}-${randomBytes(2).toString('hex')}`;
}

/** A new control token (32 random bytes, hex). */
export function newToken(): string {
  return randomBytes(32).toString('hex');
}

/** Writes `token` to `file`, readable by this user only. */
export function writeToken(file: string, token: string): void {
  makeFolder(path.dirname(file));
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
}

/** The token in `file`; throws an error naming the file when it cannot be read. */
export function readToken(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new Error(`cannot read the run's token file ${file}: ${(error as Error).message}`);
  }
  const token = text.trim();
  if (!/^[0-9a-f]{16,}$/i.test(token)) {
    throw new Error(
      `the token file ${file} holds no run token (${token === '' ? 'it is empty' : 'a run token is one line of at least 16 hex digits'}); give the token file improv server printed when it started`,
    );
  }
  return token;
}

/** Adds (or replaces) a run's entry. */
export function register(info: RunInfo): void {
  const dir = registryDir();
  makeFolder(dir, { mode: 0o700 });
  const file = path.join(dir, `${info.id}.json`);
  writeFileSync(file, `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
}

/** Removes a run's entry (no error when it is gone already). */
export function unregister(id: string): void {
  rmSync(path.join(registryDir(), `${id}.json`), { force: true });
}

/** An entry of the registry, and whether its process still runs. */
export interface RegistryEntry {
  info: RunInfo;
  /** False when its process is gone (a crashed or killed run): the entry is stale. */
  alive: boolean;
  /** The entry's file. */
  file: string;
}

/** Every entry, oldest first; unreadable files are skipped. */
export function listRuns(): RegistryEntry[] {
  const dir = registryDir();
  let names: string[];
  try {
    names = readdirSync(dir).filter((name) => name.endsWith('.json'));
  } catch {
    return [];
  }
  const entries: RegistryEntry[] = [];
  for (const name of names) {
    const file = path.join(dir, name);
    try {
      const info = JSON.parse(readFileSync(file, 'utf8')) as RunInfo;
      if (typeof info.id !== 'string' || typeof info.pid !== 'number' || typeof info.url !== 'string') continue;
      entries.push({ info, alive: processAlive(info.pid), file });
    } catch {
      // Half-written or foreign: not a run.
    }
  }
  return entries.sort((a, b) => a.info.startedAt - b.info.startedAt);
}

/** Where a client connects: a run's URL and token. */
export interface RunTarget {
  url: string;
  token: string;
  /** The registry entry, when the run was found there. */
  info?: RunInfo;
}

/**
 * Finds the run a command names: a run id (or a unique start of one), a URL (`http://127.0.0.1:41234`,
 * with `--token-file` or `IMPROV_TOKEN`), or nothing when exactly one run is going. Throws an
 * error that says what is running and how to name it.
 */
export function resolveRun(target: string | undefined, tokenFile?: string): RunTarget {
  if (target !== undefined && /^https?:\/\//i.test(target)) {
    const url = target.replace(/\/+$/, '');
    const fromEnv = process.env.IMPROV_TOKEN;
    if (tokenFile !== undefined) return { url, token: readToken(tokenFile) };
    if (fromEnv !== undefined && fromEnv !== '') return { url, token: fromEnv.trim() };
    const known = listRuns().find((entry) => entry.info.url === url);
    if (known !== undefined) return { url, token: readToken(known.info.tokenFile), info: known.info };
    throw new Error(
      `no token for ${url}: give --token-file <file> (the server printed where its token is) or set IMPROV_TOKEN`,
    );
  }
  const all = listRuns();
  const running = all.filter((entry) => entry.alive);
  const names = running.map((entry) => entry.info.id);
  const listing = names.length > 0 ? `running now: ${names.join(', ')}` : 'no pipeline is running on this host';
  if (target === undefined) {
    if (running.length === 1) return targetOf(running[0]!.info);
    if (running.length === 0) throw new Error(`${listing} (start one with improv run or improv server)`);
    throw new Error(`${running.length} pipelines are running; name one: ${names.join(', ')}`);
  }
  const exact = all.find((entry) => entry.info.id === target);
  const started = all.filter((entry) => entry.info.id.startsWith(target));
  // A start of an id that one run going and some gone runs share names the one going.
  const live = started.filter((entry) => entry.alive);
  const matches = exact ? [exact] : live.length === 1 ? live : started;
  if (matches.length === 1) {
    const entry = matches[0]!;
    if (!entry.alive) {
      throw new Error(
        `run ${entry.info.id} is not running any more (its process ${entry.info.pid} is gone; it crashed or was killed); improv cleanup removes what it left`,
      );
    }
    return targetOf(entry.info);
  }
  if (matches.length > 1) {
    throw new Error(`"${target}" names ${matches.length} runs: ${matches.map((entry) => entry.info.id).join(', ')}`);
  }
  throw new Error(`no run "${target}"; ${listing} (improv list shows them)`);
}

function targetOf(info: RunInfo): RunTarget {
  return { url: info.url, token: readToken(info.tokenFile), info };
}
