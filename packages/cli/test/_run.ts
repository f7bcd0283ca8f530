// What the pipeline tests of this package share: a Nexus whose log records and state changes are
// kept, the records actors write for tests (`WHERE <runtime> <pid>`, `TALLY <json>`), waiting for a
// condition, and whether a process is alive.
import process from 'node:process';
import type { LogRecord, Nexus, NexusEvent, NexusOptions } from '@improv/core';
import { afterEach } from 'vitest';

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until `condition()` holds, up to `ms`; throws naming `what` when it never does. */
export async function until(condition: () => boolean, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!condition() && Date.now() < end) await sleep(10);
  if (!condition()) throw new Error(`timed out waiting for ${what}`);
}

/** Whether process `pid` is alive. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export interface Run {
  nexus: Nexus;
  logs: LogRecord[];
  /** Actor state changes, with the time Nexus reported them (Date.now()). */
  changes: { actor: string; state: string; at: number }[];
  /** `WHERE <runtime> <pid>` records of `actor`, oldest first. */
  where(actor: string): { runtime: string; pid: number }[];
  /** The last `TALLY <json>` record of `actor`, parsed. */
  tally(actor: string): { counts: Record<string, number>; last?: unknown; first?: unknown[] } | undefined;
  /** Records of `actor` whose message starts with `prefix`. */
  messages(actor: string, prefix: string): LogRecord[];
  state(actor: string): string | undefined;
}

const running: Nexus[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((nexus) => nexus.quit()));
});

/**
 * Starts a Nexus with `create(options)` (which gets `onEvent` added) and keeps what it reports;
 * every Nexus started here quits after each test.
 */
export async function startRun(create: (options: Pick<NexusOptions, 'onEvent'>) => Promise<Nexus>): Promise<Run> {
  const logs: LogRecord[] = [];
  const changes: Run['changes'] = [];
  const nexus = await create({
    onEvent: (event: NexusEvent) => {
      if (event.type === 'log') logs.push(event.record);
      if (event.type === 'actor-state') changes.push({ actor: event.actor, state: event.state, at: Date.now() });
    },
  });
  running.push(nexus);
  const messages = (actor: string, prefix: string) =>
    logs.filter((record) => record.source === actor && record.message.startsWith(prefix));
  return {
    nexus,
    logs,
    changes,
    messages,
    where: (actor) =>
      messages(actor, 'WHERE ').map((record) => {
        const [, runtime, pid] = record.message.split(' ');
        return { runtime: runtime!, pid: Number(pid) };
      }),
    tally: (actor) => {
      const last = messages(actor, 'TALLY ').at(-1);
      return last ? JSON.parse(last.message.slice('TALLY '.length)) : undefined;
    },
    state: (actor) => nexus.status().actors.find((entry) => entry.name === actor)?.state,
  };
}
