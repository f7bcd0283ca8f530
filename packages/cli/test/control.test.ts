// The control protocol, in process: a real pipeline (apps/minimal) with its control server, driven
// over HTTP and WebSocket as the TUI, the CLI's client commands and scripts do.
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import type { LogRecord, Nexus, PipelineStatus } from '@improv/core';
import { afterEach, describe, expect, it } from 'vitest';
import { connectRun, request, sendCommand } from '../src/control/client.ts';
import { LogHistory } from '../src/control/log-history.ts';
import type { RunInfo, ServerMessage } from '../src/control/protocol.ts';
import { listRuns, register, resolveRun, unregister } from '../src/control/registry.ts';
import { type ControlSession, startControlSession } from '../src/control/session.ts';
import { createDefaultNexus } from '../src/defaults.ts';
import { isolateImprovHome } from './_home.ts';
import { until } from './_run.ts';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const minimal = join(root, 'apps/minimal/minimal.yaml');

const home = isolateImprovHome();

interface Started {
  nexus: Nexus;
  session: ControlSession;
  logs: LogHistory;
  url: string;
  token: string;
}

const started: Started[] = [];
afterEach(async () => {
  for (const run of started.splice(0)) {
    await run.nexus.quit();
    await run.session.close();
  }
});

async function start(runDir: string | false = false): Promise<Started> {
  const logs = new LogHistory();
  const nexus = await createDefaultNexus({
    config: minimal,
    runDir,
    handleSignals: false,
    onEvent: (event) => {
      if (event.type === 'log') logs.push(event.record);
    },
  });
  const session = await startControlSession(nexus, logs, { pipeline: minimal });
  const run = { nexus, session, logs, url: session.info.url, token: session.token };
  started.push(run);
  return run;
}

const target = (run: Started) => ({ url: run.url, token: run.token, info: run.session.info });

describe('the control server', () => {
  it('listens on 127.0.0.1 with a token readable by its user only, and is in the registry until it quits', async () => {
    const run = await start();
    const { info } = run.session;
    expect(info.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(info.id).toMatch(/^minimal-[0-9a-f]{4}$/);
    expect(info.tokenFile.startsWith(join(home, 'runs'))).toBe(true);
    expect(statSync(info.tokenFile).mode & 0o777).toBe(0o600);
    expect(readFileSync(info.tokenFile, 'utf8').trim()).toBe(run.token);
    const entry = listRuns().find((each) => each.info.id === info.id);
    expect(entry?.alive).toBe(true);
    expect(entry?.info.url).toBe(info.url);
    expect(resolveRun(info.id.slice(0, 10)).url).toBe(info.url);
    // A run of the same pipeline that is gone (its process dead) does not make the name ambiguous.
    register({ ...info, id: 'minimal-dead', pid: 2 ** 22 + 1, url: 'http://127.0.0.1:1' });
    try {
      expect(resolveRun('minimal').url).toBe(info.url);
    } finally {
      unregister('minimal-dead');
    }

    await run.nexus.quit();
    await run.session.close();
    expect(listRuns().some((each) => each.info.id === info.id)).toBe(false);
    expect(existsSync(info.tokenFile)).toBe(false);
  });

  it('puts the token in the run folder when there is one', async () => {
    const runDir = mkdtempSync(join(tmpdir(), 'improv-rundir-'));
    const run = await start(runDir);
    expect(run.session.info.tokenFile).toBe(join(runDir, 'control.token'));
    expect(run.session.info.runDir).toBe(runDir);
  });

  it('refuses a request without the token (401) and with a wrong one (403), saying where the token is', async () => {
    const run = await start();
    const none = await fetch(`${run.url}/api/v1/status`);
    expect(none.status).toBe(401);
    expect(((await none.json()) as { error: string }).error).toContain(run.session.info.tokenFile);
    const wrong = await fetch(`${run.url}/api/v1/status`, { headers: { authorization: `Bearer ${'0'.repeat(64)}` } });
    expect(wrong.status).toBe(403);
    await expect(request(target({ ...run, token: 'f'.repeat(64) }), 'GET', '/status')).rejects.toThrow(
      /refused the token: wrong token/,
    );
    const ws = await fetch(`${run.url}/api/v1/ws?token=nope`);
    expect(ws.status).toBe(403);
    const byQuery = await fetch(`${run.url}/api/v1/info?token=${run.token}`);
    expect(byQuery.status).toBe(200);
  });

  it('serves info, status, graph and metrics', async () => {
    const run = await start();
    const t = target(run);
    const info = await request<RunInfo & { usage: { cpu: number; rssBytes: number } }>(t, 'GET', '/info');
    expect(info).toMatchObject({ id: run.session.info.id, pid: process.pid, pipeline: minimal });
    expect(info.usage.rssBytes).toBeGreaterThan(1_000_000);
    const status = await request<PipelineStatus>(t, 'GET', '/status');
    expect(status.state).toBe('waiting');
    expect(status.actors.map((actor) => actor.name)).toEqual(['Generator', 'Processor']);
    const graph = await request<{ connections: { sources: string[]; sinks: string[] }[] }>(t, 'GET', '/graph');
    expect(graph.connections).toEqual([
      expect.objectContaining({ sources: ['Generator.q_out'], sinks: ['Processor.q_in'] }),
    ]);
    expect(await sendCommand(t, 'setup')).toMatchObject({ ok: true });
    expect(await sendCommand(t, 'run')).toMatchObject({ ok: true });
    await until(() => run.nexus.status().actors.every((actor) => actor.steps > 20), 'steps');
    const metrics = await request<ReturnType<Nexus['metrics']>>(t, 'GET', '/metrics');
    expect(metrics.state).toBe('running');
    expect(metrics.actors.find((actor) => actor.name === 'Processor')?.steps).toBeGreaterThan(20);
    expect(metrics.links[0]?.sent).toBeGreaterThan(20);
  });

  it('carries out every command, case-insensitive; refuses what cannot be done (409) and answers typos (400)', async () => {
    const run = await start();
    const t = target(run);
    const cases: [string, boolean, number][] = [
      ['run', false, 409], // not set up yet
      ['SETUP', true, 200],
      ['Run', true, 200],
      ['run', false, 409], // running already
      ['pause', true, 200],
      ['resume', true, 200],
      ['stop', true, 200],
      ['revive Processor', false, 409], // not failed
      ['revive Nobody', false, 409], // no such actor: Nexus refuses, and logs it
      ['resme', false, 400],
      ['wait 2s', false, 400],
      ['status', true, 200],
      ['help', true, 200],
    ];
    for (const [line, ok, status] of cases) {
      const response = await fetch(`${run.url}/api/v1/command`, {
        method: 'POST',
        headers: { authorization: `Bearer ${run.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ line }),
      });
      const result = (await response.json()) as { ok: boolean; message: string };
      expect({ line, ok: result.ok, status: response.status }).toEqual({ line, ok, status });
      expect(result.message.length).toBeGreaterThan(0);
    }
    expect((await sendCommand(t, 'resme')).message).toContain('did you mean "resume"');
    expect((await sendCommand(t, 'status')).message).toMatch(/pipeline: stopped\n\s+Generator/);
    const bad = await fetch(`${run.url}/api/v1/command`, {
      method: 'POST',
      headers: { authorization: `Bearer ${run.token}` },
      body: 'pause',
    });
    expect(bad.status).toBe(400);
    // The run log records each command, who gave it, and each refusal.
    const messages = run.logs.recent(1000).map((record) => record.message);
    expect(messages.some((message) => /pause/i.test(message) && /http/i.test(message))).toBe(true);
    expect(messages.some((message) => /refused/i.test(message))).toBe(true);
  });

  it('serves the log, filtered by actor, level and pattern', async () => {
    const run = await start();
    const t = target(run);
    await sendCommand(t, 'setup');
    const all = await request<{ records: LogRecord[] }>(t, 'GET', '/logs?limit=1000');
    expect(all.records.length).toBeGreaterThan(0);
    const nexusOnly = await request<{ records: LogRecord[] }>(t, 'GET', '/logs?actor=nexus');
    expect(nexusOnly.records.every((record) => record.source === 'nexus')).toBe(true);
    const warnings = await request<{ records: LogRecord[] }>(t, 'GET', '/logs?level=warn');
    expect(warnings.records.every((record) => record.level === 'warn' || record.level === 'error')).toBe(true);
    await expect(request(t, 'GET', '/logs?level=loud')).rejects.toThrow(/unknown level "loud"/);
    await expect(request(t, 'GET', '/logs?grep=(')).rejects.toThrow(/grep/);
  });

  it('streams to two WebSocket clients at once: metrics, logs, events, command results and a tap', async () => {
    const run = await start();
    const t = target(run);
    const [first, second] = await Promise.all([connectRun(t), connectRun(t)]);
    try {
      expect(first.info.id).toBe(run.session.info.id);
      expect(first.graph.actors.map((actor) => actor.name)).toEqual(['Generator', 'Processor']);
      const seen: Record<string, ServerMessage[]> = { first: [], second: [] };
      first.on((message) => seen.first!.push(message));
      second.on((message) => seen.second!.push(message));
      first.subscribe({ metrics: true, logs: true });
      second.subscribe({ metrics: true, logs: true });
      expect(await first.command('setup')).toMatchObject({ ok: true });
      expect(await second.command('run')).toMatchObject({ ok: true });
      expect(await second.command('run')).toMatchObject({ ok: false, code: 'refused' });
      // Each sees the other's command as state events and log records.
      for (const name of ['first', 'second']) {
        await until(
          () =>
            seen[name]!.some(
              (message) =>
                message.type === 'event' &&
                message.event.type === 'pipeline-state' &&
                message.event.state === 'running',
            ),
          `${name} sees running`,
        );
        await until(() => seen[name]!.some((message) => message.type === 'logs'), `${name} gets logs`);
      }
      // Metrics keep coming, with rates once the pipeline runs.
      await until(
        () =>
          (first.latest()?.links[0]?.messagesPerSecond ?? 0) > 0 &&
          (second.latest()?.actors[0]?.stepsPerSecond ?? 0) > 0,
        'rates',
      );
      // A tap: summaries of the messages on Generator.q_out.
      const records: string[] = [];
      const untap = await first.tap('Generator.q_out', (record) => records.push(record.summary));
      await until(() => records.length >= 3, 'tap records');
      expect(records[0]).toMatch(/key/);
      untap();
      await expect(second.tap('Generator.q_ot', () => {})).rejects.toThrow(/Generator\.q_out/);
      // quit from one client: both see the end.
      expect(await first.command('quit')).toMatchObject({ ok: true });
      await Promise.all([first.closed, second.closed]);
      expect(seen.second!.some((message) => message.type === 'closed')).toBe(true);
    } finally {
      first.close();
      second.close();
    }
  });
});
