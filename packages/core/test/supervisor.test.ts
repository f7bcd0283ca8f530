import { afterEach, describe, expect, it, vi } from 'vitest';
import type { PipelineConfig } from '../src/config/types.ts';
import type { Transport } from '../src/link/transport.ts';
import { Supervisor } from '../src/supervisor.ts';
import { CONTROL_HEARTBEAT, heartbeatPeriodMs } from '../src/worker/protocol.ts';

const TIMEOUT_MS = 2000;
const EVERY_MS = heartbeatPeriodMs(TIMEOUT_MS);

/** A supervisor of one running actor whose heartbeat the test bumps, on a clock the test moves. */
function watch() {
  let clock = 0;
  const warnings: string[] = [];
  const ended: string[] = [];
  const control = new Int32Array(new SharedArrayBuffer(64));
  const supervisor = new Supervisor({
    config: { settings: { signalTimeoutMs: TIMEOUT_MS }, actors: [{ name: 'Worker' }] } as unknown as PipelineConfig,
    transport: { stats: () => [] } as unknown as Transport,
    store: () => undefined,
    actors: () => [{ name: 'Worker', state: 'running', control }],
    watching: () => true,
    unresponsive: (actor) => ended.push(actor),
    silentFor: () => 0,
    log: (_level, message) => warnings.push(message),
    now: () => clock,
  });
  /** `ms` pass, the heartbeat is bumped as a live worker does (unless `stuck`) and the supervisor looks each period. */
  const pass = (ms: number, stuck = false) => {
    for (let elapsed = 0; elapsed < ms; elapsed += EVERY_MS) {
      clock += EVERY_MS;
      if (!stuck) Atomics.add(control, CONTROL_HEARTBEAT, 1);
      vi.advanceTimersByTime(EVERY_MS);
    }
  };
  /** Nexus's whole process stops for `ms` (its worker with it), then goes on: one late look. */
  const suspend = (ms: number) => {
    clock += ms;
    vi.advanceTimersByTime(EVERY_MS);
  };
  /** The clock moves `ms` with no look at all (Nexus's process stopped, not yet going on). */
  const stand = (ms: number) => {
    clock += ms;
  };
  return { supervisor, warnings, ended, pass, suspend, stand };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('the supervisor watches heartbeats', () => {
  it('a worker whose event loop stands still is warned about once', () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const { supervisor, warnings, pass } = watch();
    supervisor.start();
    pass(1000);
    expect(warnings).toEqual([]);
    pass(TIMEOUT_MS * 2, true);
    supervisor.stop();
    expect(warnings).toEqual([expect.stringMatching(/actor "Worker": it has not returned to its event loop for 2 s/)]);
  });

  it('Nexus stopped and continued (Ctrl-Z, fg) is not taken for a stuck worker: that time does not count', () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const { supervisor, warnings, ended, pass, suspend } = watch();
    supervisor.start();
    pass(1000);
    // Stopped for longer than the timeout; on going on, the first look comes before the worker's bump.
    suspend(TIMEOUT_MS * 3);
    pass(1000);
    suspend(TIMEOUT_MS - EVERY_MS);
    pass(1000);
    supervisor.stop();
    expect(warnings).toEqual([]);
    expect(ended).toEqual([]);
  });

  it('unseenMs counts the time Nexus could not look, on one clock for heartbeats and commands, before the late look too', () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const { supervisor, pass, suspend, stand } = watch();
    supervisor.start();
    pass(1000);
    expect(supervisor.unseenMs()).toBe(0);
    // Still stopped, or just gone on before the first look: the gap is counted already.
    stand(TIMEOUT_MS * 3);
    expect(supervisor.unseenMs()).toBe(TIMEOUT_MS * 3 - 2 * EVERY_MS);
    // The late look takes it in; it is counted once.
    suspend(0);
    expect(supervisor.unseenMs()).toBe(TIMEOUT_MS * 3 - 2 * EVERY_MS);
    pass(1000);
    expect(supervisor.unseenMs()).toBe(TIMEOUT_MS * 3 - 2 * EVERY_MS);
    supervisor.stop();
  });
});
