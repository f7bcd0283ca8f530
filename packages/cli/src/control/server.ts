/**
 * The control server of a running pipeline: HTTP routes and one WebSocket over Hono, served by the
 * runtime's own server (Node: @hono/node-server with @hono/node-ws; Bun: Bun.serve; Deno:
 * Deno.serve) — one implementation for all three. Every request needs the run's token. Bound to
 * 127.0.0.1 unless the caller asks for another address. The protocol is in protocol.ts and the cli
 * README.
 * @module
 */
import { Buffer } from 'node:buffer';
import { timingSafeEqual } from 'node:crypto';
import process from 'node:process';
import {
  currentRuntimeName,
  type LogLevel,
  type LogRecord,
  logLevels,
  MsgpackEncoder,
  type Nexus,
  type NexusEvent,
  type Published,
} from '@improv/core';
import { Hono } from 'hono';
import type { UpgradeWebSocket, WSContext } from 'hono/ws';
import { graphOf, layoutGraph } from '../graph.ts';
import { executeCommandLine } from './commands.ts';
import type { LogHistory } from './log-history.ts';
import { addPageRoutes } from './page.ts';
import { PlotQueue } from './plots.ts';
import {
  API_PREFIX,
  type ClientMessage,
  type CommandResult,
  type GraphInfo,
  type GraphWithLayout,
  type RunInfo,
  type RunUsage,
  type ServerMessage,
} from './protocol.ts';

/** How often metrics go to subscribed clients. */
export const METRICS_EVERY_MS = 500;
/** How often buffered log records go out (at most ~10 batches a second). */
const LOGS_EVERY_MS = 100;
/** Records in one batch at most; a client that falls further behind is told how many it missed. */
const MAX_BATCH = 500;

/** What {@link startControlServer} needs. */
export interface ControlServerOptions {
  nexus: Nexus;
  /** The run's log so far and from now on. */
  logs: LogHistory;
  /** The run as the registry describes it (its `url` is filled in once the server listens). */
  info: Omit<RunInfo, 'url'>;
  token: string;
  /** Address to bind (default 127.0.0.1). */
  host?: string;
  /** Port (default 0: a free one). */
  port?: number;
}

/** A listening control server. */
export interface ControlServer {
  readonly url: string;
  readonly info: RunInfo;
  /** Tells every client the pipeline has quit, then stops listening. */
  close(): Promise<void>;
}

/** The graph as clients draw it. */
export function graphInfo(nexus: Nexus): GraphInfo {
  return {
    actors: nexus.config.actors.map((actor) => {
      const entry: GraphInfo['actors'][number] = {
        name: actor.name,
        className: actor.className,
        package: actor.package,
      };
      if (actor.process !== undefined) entry.runtime = actor.process.runtime ?? 'process';
      if (actor.process?.host !== undefined) entry.host = actor.process.host;
      return entry;
    }),
    connections: nexus.config.connections.map((connection) => ({
      name: connection.name,
      sources: connection.sources.map((end) => `${end.actor}.${end.link}`),
      sinks: connection.sinks.map((end) => `${end.actor}.${end.link}`),
      capacity: connection.capacity,
      policy: connection.policy,
    })),
  };
}

/** One connected WebSocket client and what it asked for. */
interface Client {
  ws: WSContext;
  name: string;
  metrics: boolean;
  logs: boolean;
  /** Records waiting for the next batch. */
  pending: LogRecord[];
  missed: number;
  taps: Map<number, () => void>;
  /** While the client asked for plots: what was published since its last `plots` message. */
  plots: PlotQueue | undefined;
}

/** The HTTP status of a command result. */
function statusOf(result: CommandResult): 200 | 400 | 409 | 500 {
  if (result.ok) return 200;
  return result.code === 'refused' ? 409 : result.code === 'failed' ? 500 : 400;
}

/** Adds the routes to `app`; returns what the server's timers and close need. */
function addRoutes(
  app: Hono,
  upgradeWebSocket: UpgradeWebSocket,
  options: ControlServerOptions,
  info: () => RunInfo,
): { clients: Set<Client>; stop(): void } {
  const { nexus, logs, token } = options;
  const expected = Buffer.from(token);
  const clients = new Set<Client>();
  const graph = graphInfo(nexus);
  let laidOut: GraphWithLayout | undefined;
  const load = processLoad();
  const isToken = (given: string) => {
    const buffer = Buffer.from(given);
    return buffer.length === expected.length && timingSafeEqual(buffer, expected);
  };

  app.use(`${API_PREFIX}/*`, async (c, next) => {
    const header = c.req.header('authorization');
    const given = header?.replace(/^Bearer\s+/i, '') ?? c.req.query('token');
    if (given === undefined || given === '') {
      return c.json(
        {
          error: `a token is required: send "Authorization: Bearer <token>" (or ?token=<token>); the token is in ${info().tokenFile}`,
        },
        401,
      );
    }
    if (!isToken(given)) {
      return c.json({ error: `wrong token: the token of run ${info().id} is in ${info().tokenFile}` }, 403);
    }
    await next();
  });

  app.get(`${API_PREFIX}/info`, (c) => c.json({ ...info(), usage: load.usage() }));
  app.get(`${API_PREFIX}/status`, (c) => c.json(nexus.status()));
  app.get(`${API_PREFIX}/metrics`, (c) => c.json(nexus.metrics()));
  app.get(`${API_PREFIX}/graph`, (c) => {
    if (c.req.query('layout') === undefined) return c.json(graph);
    laidOut ??= { ...graph, layout: layoutGraph(graphOf(nexus.config)) };
    return c.json(laidOut);
  });
  app.get(`${API_PREFIX}/logs`, (c) => {
    const limit = Number(c.req.query('limit') ?? 1000);
    const level = c.req.query('level');
    if (level !== undefined && !(logLevels as readonly string[]).includes(level)) {
      return c.json({ error: `unknown level "${level}"; use ${logLevels.join(', ')}` }, 400);
    }
    if (!Number.isInteger(limit) || limit < 1) return c.json({ error: 'limit must be a positive whole number' }, 400);
    const filter: { actor?: string; level?: LogLevel; grep?: RegExp } = {};
    const actor = c.req.query('actor');
    if (actor !== undefined) filter.actor = actor;
    if (level !== undefined) filter.level = level as LogLevel;
    const grep = c.req.query('grep');
    if (grep !== undefined) {
      try {
        filter.grep = new RegExp(grep, 'i');
      } catch (error) {
        return c.json({ error: `grep: ${(error as Error).message}` }, 400);
      }
    }
    return c.json({ records: logs.recent(limit, filter) });
  });
  app.post(`${API_PREFIX}/command`, async (c) => {
    let body: { line?: unknown };
    try {
      body = (await c.req.json()) as { line?: unknown };
    } catch {
      return c.json({ ok: false, code: 'bad-request', message: 'the body must be JSON: {"line": "pause"}' }, 400);
    }
    if (typeof body?.line !== 'string') {
      return c.json({ ok: false, code: 'bad-request', message: 'the body must be JSON: {"line": "pause"}' }, 400);
    }
    const result = await give(body.line, `http ${c.req.header('user-agent') ?? 'client'}`);
    return c.json(result, statusOf(result));
  });
  app.get(
    `${API_PREFIX}/ws`,
    upgradeWebSocket(() => {
      let client: Client | undefined;
      return {
        onOpen: (_event, ws) => {
          client = {
            ws,
            name: `client ${clients.size + 1}`,
            metrics: false,
            logs: false,
            pending: [],
            missed: 0,
            taps: new Map(),
            plots: undefined,
          };
          clients.add(client);
          send(client, { type: 'hello', info: info(), status: nexus.status(), graph });
        },
        onMessage: (event, ws) => {
          if (client === undefined) return;
          let message: ClientMessage;
          try {
            message = JSON.parse(String(event.data)) as ClientMessage;
          } catch {
            ws.close(1003, 'messages must be JSON');
            return;
          }
          void handle(client, message);
        },
        onClose: () => {
          if (client === undefined) return;
          for (const untap of client.taps.values()) untap();
          clients.delete(client);
          if (client.plots !== undefined) plotsFor(client, false);
        },
      };
    }),
  );

  /** Gives a command line; quit answers at once (the pipeline then closes every connection). */
  const give = async (line: string, by: string): Promise<CommandResult> => {
    if (/^\s*(quit|exit)\s*$/i.test(line)) {
      void executeCommandLine(nexus, line, by);
      return { ok: true, message: 'quitting' };
    }
    return executeCommandLine(nexus, line, by);
  };

  const handle = async (client: Client, message: ClientMessage): Promise<void> => {
    switch (message.type) {
      case 'command': {
        const result = await give(message.line, client.name);
        send(client, { type: 'result', id: message.id, result });
        return;
      }
      case 'subscribe': {
        if (message.metrics !== undefined) client.metrics = message.metrics;
        if (message.metrics) send(client, { type: 'metrics', metrics: nexus.metrics() });
        if (message.logs === true && !client.logs) {
          client.logs = true;
          const history = logs.recent(message.history ?? 200);
          if (history.length > 0) send(client, { type: 'logs', records: history });
        } else if (message.logs === false) client.logs = false;
        return;
      }
      case 'tap': {
        try {
          const untap = nexus.tap(message.connection, (record) =>
            send(client, { type: 'tap', tap: message.tap, record }),
          );
          client.taps.get(message.tap)?.();
          client.taps.set(message.tap, untap);
          send(client, {
            type: 'result',
            id: message.tap,
            result: { ok: true, message: `tapping ${message.connection}` },
          });
        } catch (error) {
          send(client, {
            type: 'result',
            id: message.tap,
            result: { ok: false, code: 'refused', message: (error as Error).message },
          });
        }
        return;
      }
      case 'untap': {
        client.taps.get(message.tap)?.();
        client.taps.delete(message.tap);
        return;
      }
      case 'plots': {
        plotsFor(client, message.on === true);
        return;
      }
      case 'drawn': {
        client.plots?.drawn();
        return;
      }
      default:
        client.ws.close(1003, `unknown message type ${(message as { type?: unknown }).type}`);
    }
  };

  addPageRoutes(app, { isToken, runId: options.info.id, tokenFile: options.info.tokenFile });

  // One watch of what actors publish while any client wants plots; each client's queue paces it.
  let unwatch: (() => void) | undefined;
  const plotsFor = (client: Client, on: boolean) => {
    if (on && client.plots === undefined) client.plots = new PlotQueue((streams) => sendPlots(client, streams));
    if (!on) {
      client.plots?.close();
      client.plots = undefined;
    }
    const wanted = [...clients].some((each) => each.plots !== undefined);
    if (wanted && unwatch === undefined) {
      try {
        unwatch = nexus.watchPublished(published);
      } catch {
        // The pipeline has quit: nothing will be published.
      }
    } else if (!wanted && unwatch !== undefined) {
      unwatch();
      unwatch = undefined;
    }
  };
  const published = (value: Published) => {
    for (const client of clients) {
      if (client.plots === undefined) continue;
      client.plots.add(value);
    }
  };

  const stopLogs = logs.on((record) => {
    for (const client of clients) {
      if (!client.logs) continue;
      if (client.pending.length >= MAX_BATCH) client.missed += 1;
      else client.pending.push(record);
    }
  });
  const stopEvents = nexus.on((event: NexusEvent) => {
    if (event.type === 'log') return;
    for (const client of clients) send(client, { type: 'event', event });
  });
  const metricsTimer = setInterval(() => {
    let metrics: ReturnType<Nexus['metrics']> | undefined;
    for (const client of clients) {
      if (!client.metrics) continue;
      metrics ??= nexus.metrics();
      send(client, { type: 'metrics', metrics });
    }
  }, METRICS_EVERY_MS);
  const flushLogs = () => {
    for (const client of clients) {
      if (client.pending.length === 0) continue;
      const records = client.pending;
      client.pending = [];
      if (client.missed > 0) {
        records.push({
          time: Date.now(),
          level: 'warn',
          source: 'server',
          message: `${client.missed} log record(s) were not sent to this client: it read too slowly`,
        });
        client.missed = 0;
      }
      send(client, { type: 'logs', records });
    }
  };
  const logsTimer = setInterval(flushLogs, LOGS_EVERY_MS);
  for (const timer of [metricsTimer, logsTimer]) (timer as { unref?: () => void }).unref?.();
  return {
    clients,
    stop() {
      unwatch?.();
      load.stop();
      stopLogs();
      stopEvents();
      clearInterval(metricsTimer);
      clearInterval(logsTimer);
      // The last records (the actors' stop() output, "pipeline exited") still reach the followers.
      flushLogs();
    },
  };
}

/** This process's CPU (in cores, over the last second) and resident memory, sampled once a second. */
function processLoad(): { usage(): RunUsage; stop(): void } {
  let last = { at: performance.now(), cpu: process.cpuUsage() };
  let cpu = 0;
  const timer = setInterval(() => {
    const now = { at: performance.now(), cpu: process.cpuUsage() };
    const used = now.cpu.user + now.cpu.system - last.cpu.user - last.cpu.system;
    cpu = used / 1000 / Math.max(1, now.at - last.at);
    last = now;
  }, 1000);
  (timer as { unref?: () => void }).unref?.();
  return {
    usage: () => ({ cpu, rssBytes: process.memoryUsage().rss }),
    stop: () => clearInterval(timer),
  };
}

function send(client: Client, message: ServerMessage): void {
  if (client.ws.readyState !== 1) return;
  try {
    client.ws.send(JSON.stringify(message));
  } catch {
    // A client gone mid-send is removed by its close event.
  }
}

const plotEncoder = new MsgpackEncoder();

/** Sends a client one `plots` message (its {@link PlotQueue} decides when). */
function sendPlots(client: Client, streams: Published[]): void {
  if (client.ws.readyState !== 1) return;
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = plotEncoder.encode({ type: 'plots', streams } satisfies ServerMessage);
  } catch {
    // A value msgpack refuses deeper than the actor's publish() looks (a "__proto__" key, a lone
    // surrogate): that stream stays as it was on the page, the others go.
    const sendable = streams.filter((stream) => {
      try {
        plotEncoder.encode(stream);
        return true;
      } catch {
        return false;
      }
    });
    if (sendable.length === 0) return;
    bytes = plotEncoder.encode({ type: 'plots', streams: sendable } satisfies ServerMessage);
  }
  try {
    client.ws.send(bytes);
  } catch {
    // A client gone mid-send is removed by its close event.
  }
}

/** Starts the server; resolves once it listens. */
export async function startControlServer(options: ControlServerOptions): Promise<ControlServer> {
  const hostname = options.host ?? '127.0.0.1';
  const port = options.port ?? 0;
  const app = new Hono();
  let url = '';
  const info = (): RunInfo => ({ ...options.info, url });
  const listen = await listenerFor(app, hostname, port, (upgrade) => addRoutes(app, upgrade, options, info));
  url = `http://${hostname.includes(':') ? `[${hostname}]` : hostname}:${listen.port}`;
  const { clients, stop } = listen.routes;
  return {
    get url() {
      return url;
    },
    get info() {
      return info();
    },
    async close() {
      stop();
      for (const client of clients) {
        send(client, { type: 'closed' });
        for (const untap of client.taps.values()) untap();
        try {
          client.ws.close(1000, 'the pipeline has quit');
        } catch {
          // already closing
        }
      }
      clients.clear();
      await listen.close();
    },
  };
}

type Routes = ReturnType<typeof addRoutes>;

/** Serves `app` with the runtime's own server; `routes` adds the routes once the WebSocket upgrade is known. */
async function listenerFor(
  app: Hono,
  hostname: string,
  port: number,
  routes: (upgrade: UpgradeWebSocket) => Routes,
): Promise<{ port: number; routes: Routes; close(): Promise<void> }> {
  const runtime = currentRuntimeName();
  if (runtime === 'bun') {
    const { upgradeWebSocket, websocket } = await import('hono/bun');
    const added = routes(upgradeWebSocket as UpgradeWebSocket);
    const bun = (globalThis as unknown as { Bun: BunLike }).Bun;
    const server = bun.serve({ hostname, port, fetch: app.fetch, websocket });
    return { port: server.port, routes: added, close: async () => server.stop(true) };
  }
  if (runtime === 'deno') {
    const { upgradeWebSocket } = await import('hono/deno');
    const added = routes(upgradeWebSocket as UpgradeWebSocket);
    const deno = (globalThis as unknown as { Deno: DenoLike }).Deno;
    let server: { shutdown(): Promise<void> } | undefined;
    const listening = await new Promise<number>((resolve) => {
      server = deno.serve({ hostname, port, onListen: (addr) => resolve(addr.port) }, app.fetch);
    });
    return {
      port: listening,
      routes: added,
      close: async () => {
        await server?.shutdown();
      },
    };
  }
  const { serve } = await import('@hono/node-server');
  const { createNodeWebSocket } = await import('@hono/node-ws');
  const { upgradeWebSocket, injectWebSocket, wss } = createNodeWebSocket({ app });
  const added = routes(upgradeWebSocket as UpgradeWebSocket);
  let server: ReturnType<typeof serve> | undefined;
  const listening = await new Promise<number>((resolve, reject) => {
    server = serve({ fetch: app.fetch, hostname, port }, (address) => resolve(address.port));
    server.once('error', reject);
  });
  const node = server!;
  injectWebSocket(node);
  return {
    port: listening,
    routes: added,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of wss.clients) socket.terminate();
        (node as { closeAllConnections?: () => void }).closeAllConnections?.();
        node.close(() => resolve());
      }),
  };
}

interface BunLike {
  serve(options: { hostname: string; port: number; fetch: Hono['fetch']; websocket: unknown }): {
    port: number;
    stop(force?: boolean): void;
  };
}

interface DenoLike {
  serve(
    options: { hostname: string; port: number; onListen(addr: { port: number }): void },
    handler: Hono['fetch'],
  ): { shutdown(): Promise<void> };
}
