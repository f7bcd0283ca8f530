// The dashboard's server side, in process: the page behind the token (and its cookie), the graph
// with its layout, and what actors publish as paced binary `plots` messages — a page that has not
// drawn the last message gets no next one, and what was published meanwhile is merged, not lost.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { msgpackOptions, type Nexus, type PublishedLatest, type PublishedSeries } from '@improv/core';
import { Decoder } from '@msgpack/msgpack';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { LogHistory } from '../src/control/log-history.ts';
import type { GraphWithLayout, ServerMessage } from '../src/control/protocol.ts';
import { type ControlSession, startControlSession } from '../src/control/session.ts';
import { createDefaultNexus } from '../src/defaults.ts';
import { main } from '../src/main.ts';
import { isolateImprovHome } from './_home.ts';
import { until } from './_run.ts';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const actors = join(root, 'packages/core/src/testing/_actors.ts');
isolateImprovHome();

const running: { nexus: Nexus; session: ControlSession }[] = [];
afterEach(async () => {
  for (const run of running.splice(0)) {
    await run.nexus.quit();
    await run.session.close();
  }
});

async function start() {
  const nexus = await createDefaultNexus({
    config: {
      settings: { store_size: '8MiB' },
      actors: {
        Publisher: { package: actors, class: 'Publishing', intervalMs: 1 },
        Sink: { package: actors, class: 'Collector' },
      },
      connections: { 'Publisher.q_out': ['Sink.q_in'] },
    },
    baseDir: root,
    runDir: false,
    handleSignals: false,
  });
  const session = await startControlSession(nexus, new LogHistory(), { pipeline: 'dashboard-test.yaml' });
  running.push({ nexus, session });
  return { nexus, session, url: session.info.url, token: session.token };
}

describe('the dashboard page', () => {
  it('is served with the token, then its files with the cookie it sets; refused without either', async () => {
    const { url, token } = await start();
    const refused = await fetch(`${url}/`);
    expect(refused.status).toBe(401);
    expect(await refused.text()).toMatch(/a token is required[\s\S]*improv dashboard [\w-]+[\s\S]*token is in/);
    expect((await fetch(`${url}/?token=wrong`)).status).toBe(403);
    expect((await fetch(`${url}/assets/x.js`)).status).toBe(401);

    const page = await fetch(`${url}/?token=${token}`);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toMatch(/<script type="module"[^>]*src="\.\/assets\/[\w-]+\.js"/);
    const policy = page.headers.get('content-security-policy') ?? '';
    expect(policy).toContain("script-src 'self'");
    expect(policy).not.toMatch(/unsafe-eval|script-src[^;]*unsafe-inline/);
    expect(page.headers.get('referrer-policy')).toBe('no-referrer');
    const cookie = page.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Strict/i);
    const script = /src="\.\/(assets\/[\w-]+\.js)"/.exec(html)![1]!;
    const withCookie = await fetch(`${url}/${script}`, { headers: { cookie: cookie.split(';')[0]! } });
    expect(withCookie.status).toBe(200);
    expect(withCookie.headers.get('content-type')).toMatch(/javascript/);
    // The cookie opens the page's files, never the API: commands still need the token.
    const api = await fetch(`${url}/api/v1/status`, { headers: { cookie: cookie.split(';')[0]! } });
    expect(api.status).toBe(401);
  });

  it('gives the graph with its layout: a box for every actor, a route for every edge', async () => {
    const { url, token } = await start();
    const response = await fetch(`${url}/api/v1/graph?layout=1`, { headers: { authorization: `Bearer ${token}` } });
    const graph = (await response.json()) as GraphWithLayout;
    expect(graph.layout.nodes.map((box) => box.node.name).sort()).toEqual(['Publisher', 'Sink']);
    expect(graph.layout.edges).toHaveLength(1);
    expect(graph.layout.edges[0]!.d).toMatch(/^M/);
    expect(graph.layout.width).toBeGreaterThan(0);
  });

  it('sends what actors publish as binary plots messages, at most two before the page says it drew one', async () => {
    const { nexus, url, token } = await start();
    await nexus.setup();
    await nexus.run();
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/api/v1/ws?token=${token}`);
    const decoder = new Decoder(msgpackOptions);
    const plots: Extract<ServerMessage, { type: 'plots' }>[] = [];
    ws.on('message', (data, binary) => {
      if (!binary) return;
      plots.push(decoder.decode(data as Buffer) as Extract<ServerMessage, { type: 'plots' }>);
    });
    await new Promise((resolve) => ws.once('open', resolve));
    ws.send(JSON.stringify({ type: 'plots', on: true }));
    // Two may be unanswered (one on its way while the page draws the other)…
    await until(() => plots.length === 2, 'two plots messages');
    // …and no more: nothing comes until the page says it drew one, however much is published.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(plots).toHaveLength(2);
    ws.send(JSON.stringify({ type: 'drawn' }));
    await until(() => plots.length === 3, 'the third plots message');
    const series = (name: string) =>
      plots.flatMap((message) =>
        message.streams.filter((stream) => stream.name === name).map((stream) => stream.data as PublishedSeries),
      );
    // Every count published while the page was drawing is in the messages, in order, none lost.
    const counts = series('count').flatMap((data) => data.values.value!);
    for (let index = 1; index < counts.length; index++) expect(counts[index]).toBe(counts[index - 1]! + 1);
    // The one sent after the wait holds the ~300 ms published meanwhile, merged.
    expect(series('count').at(-1)!.times.length).toBeGreaterThan(50);
    // Frames: the newest only, as a typed array, the ones replaced counted.
    const frames = plots.flatMap((message) => message.streams.filter((stream) => stream.name === 'frame'));
    const frame = frames.at(-1)!.data as PublishedLatest;
    expect((frame.value as { array: unknown }).array).toBeInstanceOf(Uint16Array);
    expect(frame.skipped).toBeGreaterThan(0);
    ws.send(JSON.stringify({ type: 'plots', on: false }));
    ws.close();
  });
});

describe('improv dashboard', () => {
  it('prints the address of a running pipeline’s page, checked to answer; a bad run id says what runs', async () => {
    const { session } = await start();
    const lines: string[] = [];
    const output = { write: (line: string) => lines.push(line), colour: false };
    expect(await main(['dashboard', session.info.id], output)).toBe(0);
    expect(lines.at(-1)).toMatch(new RegExp(`^dashboard: ${session.info.url}/\\?token=${session.token}$`));
    lines.length = 0;
    expect(await main(['dashboard', 'no-such-run'], output)).toBe(2);
    expect(lines.join('\n')).toMatch(/no-such-run/);
  });
});
