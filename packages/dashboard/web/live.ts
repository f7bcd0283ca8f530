/**
 * The page's connection to the run's control server, and everything it knows about the run: one
 * object outside the components (they re-render when it says it changed). HTTP for the laid-out
 * graph; the WebSocket for the rest — JSON text frames, and binary msgpack `plots` frames.
 * The token is given by the page's entry (`main.tsx`: from the address, or the tab's storage after a reload).
 * @module
 */

import type {
  ActorState,
  LogRecord,
  NexusEvent,
  PipelineMetrics,
  PipelineState,
  PipelineStatus,
  SerializedError,
} from '@improv/core';
import type {
  ClientMessage,
  CommandResult,
  GraphWithLayout,
  RunInfo,
  ServerMessage,
} from '../../cli/src/control/protocol.ts';
import { BufferPool, pageDecoder } from './decode.ts';
import { PlotStore } from './plot-store.ts';
import type { ConnectionState } from './states.ts';

const API = '/api/v1';

/** How many metrics samples the charts keep: 2 minutes at one every 500 ms. */
export const HISTORY_SAMPLES = 240;
/** How many log records the page keeps. */
export const LOG_LIMIT = 5000;

export interface ActorView {
  state: ActorState;
  error?: SerializedError;
}

/** A link's key in the metrics and in the layout: connection, source and sink endpoints. */
export function linkKey(connection: string, from: string, fromLink: string, to: string, toLink: string): string {
  return `${connection}|${from}.${fromLink}|${to}.${toLink}`;
}

/** Metrics over time for the sparklines: one shared time axis, a column per actor and per link. */
export class MetricsHistory {
  readonly times: number[] = [];
  readonly columns = new Map<string, (number | null)[]>();

  add(metrics: PipelineMetrics): void {
    const at = this.times.length;
    this.times.push(metrics.time / 1000);
    const put = (key: string, value: number) => {
      let column = this.columns.get(key);
      if (column === undefined) {
        column = new Array<number | null>(at).fill(null);
        this.columns.set(key, column);
      }
      column.push(value);
    };
    for (const actor of metrics.actors) put(`actor:${actor.name}`, actor.stepsPerSecond);
    for (const link of metrics.links) {
      put(
        `link:${linkKey(link.connection, link.from.actor, link.from.link, link.to.actor, link.to.link)}`,
        link.messagesPerSecond,
      );
    }
    for (const column of this.columns.values()) if (column.length <= at) column.push(null);
    if (this.times.length > HISTORY_SAMPLES) {
      const over = this.times.length - HISTORY_SAMPLES;
      this.times.splice(0, over);
      for (const column of this.columns.values()) column.splice(0, over);
    }
  }
}

export interface ResultView {
  line: string;
  result: CommandResult;
  at: number;
}

export class Live {
  connection: ConnectionState | 'open' = 'connecting';
  /** Why the page cannot show the run (refused, no token), or why the connection was lost. */
  problem: string | undefined;
  info: RunInfo | undefined;
  graph: GraphWithLayout | undefined;
  pipelineState: PipelineState | undefined;
  readonly actors = new Map<string, ActorView>();
  metrics: PipelineMetrics | undefined;
  readonly history = new MetricsHistory();
  /** When the pipeline quit (the `closed` message). */
  closedAt: number | undefined;
  lastResult: ResultView | undefined;
  /** Commands given and not answered yet, by id. */
  readonly pending = new Map<number, { line: string; resolve: (result: CommandResult) => void }>();
  readonly logs: LogRecord[] = [];
  readonly plots: PlotStore;

  readonly #token: string | undefined;
  #ws: WebSocket | undefined;
  #nextId = 1;
  #retryMs = 1000;
  readonly #pool = new BufferPool();
  readonly #decoder = pageDecoder(this.#pool);
  readonly #listeners = new Set<() => void>();
  readonly #logListeners = new Set<(records: LogRecord[], reset: boolean) => void>();
  readonly #metricsListeners = new Set<() => void>();

  constructor(token: string | undefined) {
    this.#token = token;
    this.plots = new PlotStore(() => this.#send({ type: 'drawn' }), this.#pool);
    if (token === undefined || token === '') {
      this.connection = 'no-token';
      this.problem =
        'This page needs the run’s token. Open the address that `improv run --dashboard` printed, or run `improv dashboard <run-id>` to print it again.';
    }
  }

  /** Any change the header, graph or tables show. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** New log records (`reset`: the page starts its log over, after reconnecting). */
  onLogs(listener: (records: LogRecord[], reset: boolean) => void): () => void {
    this.#logListeners.add(listener);
    return () => this.#logListeners.delete(listener);
  }

  /** A metrics sample arrived (the sparklines redraw). */
  onMetrics(listener: () => void): () => void {
    this.#metricsListeners.add(listener);
    return () => this.#metricsListeners.delete(listener);
  }

  #changed(): void {
    for (const listener of this.#listeners) listener();
  }

  /** Loads the graph and opens the WebSocket. */
  start(): void {
    if (this.#token === undefined || this.#token === '') return;
    void this.#loadGraph();
    this.#connect();
  }

  async #loadGraph(): Promise<void> {
    try {
      const response = await fetch(`${API}/graph?layout=1`, {
        headers: { authorization: `Bearer ${this.#token}` },
        cache: 'no-store',
      });
      if (response.status === 401 || response.status === 403) {
        const body = (await response.json().catch(() => ({}))) as { error?: string };
        this.#refuse(body.error ?? `the server refused the token (${response.status})`);
        return;
      }
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      this.graph = (await response.json()) as GraphWithLayout;
      this.#changed();
    } catch (error) {
      if (this.connection === 'closed') return;
      // The graph is drawn once the server answers again (after a reconnect).
      this.problem = `could not load the graph: ${(error as Error).message}`;
      this.#changed();
    }
  }

  #refuse(message: string): void {
    this.connection = 'refused';
    this.problem = message;
    this.#ws?.close();
    this.#changed();
  }

  #connect(): void {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const ws = new WebSocket(`${scheme}://${location.host}${API}/ws?token=${encodeURIComponent(this.#token ?? '')}`);
    ws.binaryType = 'arraybuffer';
    this.#ws = ws;
    ws.onopen = () => {
      this.#retryMs = 1000;
    };
    ws.onmessage = (event: MessageEvent) => {
      let message: ServerMessage;
      try {
        message =
          typeof event.data === 'string'
            ? (JSON.parse(event.data) as ServerMessage)
            : (this.#decoder.decode(new Uint8Array(event.data as ArrayBuffer)) as ServerMessage);
      } catch (error) {
        console.error('improv dashboard: a message could not be read', error);
        return;
      }
      this.#handle(message);
    };
    ws.onclose = () => {
      if (this.#ws !== ws) return;
      this.#ws = undefined;
      for (const [id, pending] of this.pending) {
        pending.resolve({ ok: false, code: 'failed', message: 'the connection ended before an answer came' });
        this.pending.delete(id);
      }
      if (this.connection === 'closed' || this.connection === 'refused') return;
      this.connection = 'lost';
      this.problem = `connection to the control server lost; trying again in ${Math.round(this.#retryMs / 1000)} s`;
      this.#changed();
      setTimeout(() => {
        if (this.connection !== 'lost') return;
        if (this.graph === undefined) void this.#loadGraph();
        this.#connect();
      }, this.#retryMs);
      this.#retryMs = Math.min(this.#retryMs * 2, 10_000);
    };
  }

  #send(message: ClientMessage): boolean {
    if (this.#ws === undefined || this.#ws.readyState !== WebSocket.OPEN) return false;
    this.#ws.send(JSON.stringify(message));
    return true;
  }

  #handle(message: ServerMessage): void {
    switch (message.type) {
      case 'hello': {
        const reconnect = this.info !== undefined;
        this.connection = 'open';
        this.problem = undefined;
        this.info = message.info;
        this.#status(message.status);
        this.#send({ type: 'subscribe', metrics: true, logs: true, history: 200 });
        this.#send({ type: 'plots', on: true });
        if (reconnect) {
          this.logs.length = 0;
          for (const listener of this.#logListeners) listener([], true);
        }
        this.#changed();
        return;
      }
      case 'metrics': {
        const metrics = message.metrics;
        this.metrics = metrics;
        this.pipelineState = metrics.state;
        for (const actor of metrics.actors) {
          const view: ActorView = { state: actor.state };
          if (actor.error !== undefined) view.error = actor.error;
          this.actors.set(actor.name, view);
        }
        this.history.add(metrics);
        for (const listener of this.#metricsListeners) listener();
        this.#changed();
        return;
      }
      case 'event': {
        this.#event(message.event);
        this.#changed();
        return;
      }
      case 'logs': {
        const records = message.records;
        this.logs.push(...records);
        if (this.logs.length > LOG_LIMIT) this.logs.splice(0, this.logs.length - LOG_LIMIT);
        for (const listener of this.#logListeners) listener(records, false);
        return;
      }
      case 'result': {
        const pending = this.pending.get(message.id);
        if (pending === undefined) return;
        this.pending.delete(message.id);
        this.lastResult = { line: pending.line, result: message.result, at: Date.now() };
        pending.resolve(message.result);
        this.#changed();
        return;
      }
      case 'plots': {
        this.plots.receive(message.streams);
        return;
      }
      case 'closed': {
        this.connection = 'closed';
        this.closedAt = Date.now();
        this.problem = undefined;
        this.#changed();
        return;
      }
      case 'tap':
        return;
    }
  }

  #status(status: PipelineStatus): void {
    this.pipelineState = status.state;
    this.actors.clear();
    for (const actor of status.actors) {
      const view: ActorView = { state: actor.state };
      if (actor.error !== undefined) view.error = actor.error;
      this.actors.set(actor.name, view);
    }
  }

  #event(event: Exclude<NexusEvent, { type: 'log' }>): void {
    if (event.type === 'pipeline-state') {
      this.pipelineState = event.state;
      return;
    }
    const view: ActorView = { state: event.state };
    // A revived actor leaves its error behind; a failed one brings it.
    if (event.error !== undefined) view.error = event.error;
    this.actors.set(event.actor, view);
  }

  /** Gives a command line (`run`, `revive Processor`); resolves to the server's answer. */
  command(line: string): Promise<CommandResult> {
    const id = this.#nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, { line, resolve });
      if (!this.#send({ type: 'command', id, line })) {
        this.pending.delete(id);
        const result: CommandResult = { ok: false, code: 'failed', message: 'not connected to the pipeline' };
        this.lastResult = { line, result, at: Date.now() };
        resolve(result);
      }
      this.#changed();
    });
  }
}
