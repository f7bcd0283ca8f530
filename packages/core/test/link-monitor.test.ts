import { afterEach, expect, it, vi } from 'vitest';
import { LinkMonitor } from '../src/link/monitor.ts';
import type { LinkStats, Transport } from '../src/link/transport.ts';

afterEach(() => {
  vi.useRealTimers();
});

/** A monitor over one `block` edge Src.q_out → Slow.q_in whose counters the test sets. */
function watch() {
  const edge: LinkStats = {
    connection: 'c',
    from: { actor: 'Src', link: 'q_out' },
    to: { actor: 'Slow', link: 'q_in' },
    capacity: 2,
    policy: 'block',
    depth: 2,
    sent: 0,
    dropped: 0,
    waiting: true,
  };
  const warnings: string[] = [];
  const monitor = new LinkMonitor({
    transport: { stats: () => [edge] } as unknown as Transport,
    active: () => true,
    actorState: () => 'running',
    warn: (message) => warnings.push(message),
    warnAfterMs: 5000,
    everyMs: 1000,
  });
  return { edge, warnings, monitor };
}

it('warns about a link whose producer has waited for room for 5 s, naming the reader that does not read', () => {
  vi.useFakeTimers();
  const { warnings, monitor } = watch();
  for (let second = 0; second <= 6; second++) {
    monitor.check();
    vi.advanceTimersByTime(1000);
  }
  expect(warnings).toHaveLength(1);
  expect(warnings[0]).toMatch(
    /has been full \(2 of 2 messages\) for [56] s: Src waits to put and Slow \(running\) does not read q_in/,
  );
});

it('does not warn about a slow reader: the producer waits often, but never 5 s at once', () => {
  vi.useFakeTimers();
  const { edge, warnings, monitor } = watch();
  for (let second = 0; second <= 20; second++) {
    monitor.check();
    edge.sent += 1; // the reader took one a second, so one more got in
    vi.advanceTimersByTime(1000);
  }
  expect(warnings).toEqual([]);
  expect(monitor.status()[0]!.waitingMs).toBeLessThan(1500);
});
