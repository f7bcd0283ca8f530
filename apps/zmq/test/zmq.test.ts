import { fileURLToPath } from 'node:url';
import { createDefaultNexus } from '@improv/cli';
import { describe, expect, it } from 'vitest';

/** Runs a demo for `ms` and returns its log lines (`Actor: message`). */
async function runDemo(file: string, ms: number): Promise<string> {
  const lines: string[] = [];
  const nexus = await createDefaultNexus({
    config: fileURLToPath(new URL(`../${file}`, import.meta.url)),
    runDir: false,
    handleSignals: false,
    onEvent: (event) => {
      if (event.type === 'log') lines.push(`${event.record.source}: ${event.record.message}`);
    },
  });
  await nexus.setup();
  await nexus.run();
  await new Promise((resolve) => setTimeout(resolve, ms));
  await nexus.stop();
  await nexus.quit();
  return lines.join('\n');
}

describe('apps/zmq', () => {
  it('publish/subscribe: every reading the Publisher sent arrives at the Subscriber, in order', async () => {
    const log = await runDemo('zmq_ps_demo.yaml', 1000);
    expect(log).toContain('links: 1 link over zmq');
    const sent = Number(/Publisher: published (\d+) readings/.exec(log)?.[1]);
    const got = /Subscriber: received (\d+) readings, (\d+) out of order; mean ([\d.]+)/.exec(log);
    expect(sent, log).toBeGreaterThan(20);
    // Every reading arrived, in order — but for one still on its way over the socket when stop came
    // (stop keeps links' messages for the next run; at 200 readings a second, at most one is in flight).
    expect(Number(got?.[1]), log).toBeLessThanOrEqual(sent);
    expect(Number(got?.[1]), log).toBeGreaterThanOrEqual(sent - 1);
    expect(Number(got?.[2]), log).toBe(0);
    expect(Number(got?.[3]), log).toBeGreaterThan(0.2);
    expect(Number(got?.[3]), log).toBeLessThan(0.8);
  });

  it('request/reply over TCP: every request is answered, with the right sum', async () => {
    const log = await runDemo('zmq_rr_demo.yaml', 1000);
    const replies = /Requester: got (\d+) replies, (\d+) wrong/.exec(log);
    const answered = Number(/Responder: answered (\d+) requests/.exec(log)?.[1]);
    expect(Number(replies?.[1]), log).toBeGreaterThan(20);
    expect(Number(replies?.[2]), log).toBe(0);
    // The Requester may stop with one request answered but its reply not yet read.
    expect(answered - Number(replies?.[1]), log).toBeLessThanOrEqual(1);
  });
});
