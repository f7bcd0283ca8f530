/**
 * The client side of the control protocol: HTTP requests with the run's token, and the WebSocket
 * connection the TUI, `improv top`, `improv logs --follow` and `improv tap` read.
 * @module
 */
import type { PipelineMetrics, TapRecord } from '@improv/core';
import {
  API_PREFIX,
  type ClientMessage,
  type CommandResult,
  type GraphInfo,
  type LiveSource,
  type RunInfo,
  type ServerMessage,
} from './protocol.ts';
import type { RunTarget } from './registry.ts';

/** An error the control server (or its absence) gave; its message is for the user as it is. */
export class ControlError extends Error {
  override name = 'ControlError';
  /** The HTTP status, when the server answered. */
  readonly status: number | undefined;
  constructor(message: string, status?: number) {
    super(message);
    this.status = status;
  }
}

/** Where the run is, for messages. */
function describe(target: RunTarget): string {
  return target.info ? `run ${target.info.id} (${target.url})` : target.url;
}

/**
 * Calls a route and returns its JSON. A run that does not answer, a refused token and an error
 * answer each become a {@link ControlError} that says what happened; a command's refusal (409) is
 * returned as its result, not thrown.
 */
export async function request<T>(target: RunTarget, method: 'GET' | 'POST', route: string, body?: unknown): Promise<T> {
  let response: Response;
  try {
    const init: RequestInit = { method, headers: { authorization: `Bearer ${target.token}` } };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      (init.headers as Record<string, string>)['content-type'] = 'application/json';
    }
    response = await fetch(`${target.url}${API_PREFIX}${route}`, init);
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    throw new ControlError(
      `${describe(target)} does not answer (${cause?.code ?? cause?.message ?? (error as Error).message}); is it still running? improv list shows what runs`,
    );
  }
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ControlError(
      `${describe(target)} answered ${response.status} with something that is not JSON: ${text.slice(0, 200)}`,
      response.status,
    );
  }
  if (response.status === 401 || response.status === 403) {
    throw new ControlError(
      `${describe(target)} refused the token: ${(json as { error?: string }).error ?? response.statusText}`,
      response.status,
    );
  }
  // A command's refusal or failure is its result (409, 400, 500 with { ok: false }), not an error.
  const isResult = route === '/command' && typeof json === 'object' && json !== null && 'ok' in json;
  if (!response.ok && !isResult) {
    throw new ControlError(
      `${describe(target)}: ${(json as { error?: string }).error ?? response.statusText}`,
      response.status,
    );
  }
  return json as T;
}

/** Sends a command line; the result says whether it went through. */
export function sendCommand(target: RunTarget, line: string): Promise<CommandResult> {
  return request<CommandResult>(target, 'POST', '/command', { line });
}

/** The WebSocket class of this runtime (Node 20 has none: the `ws` package). */
async function webSocketClass(): Promise<typeof WebSocket> {
  const global = (globalThis as { WebSocket?: typeof WebSocket }).WebSocket;
  if (global !== undefined) return global;
  const { WebSocket: NodeWebSocket } = await import('ws');
  return NodeWebSocket as unknown as typeof WebSocket;
}

/** A live connection to a run (the TUI's {@link LiveSource}), plus taps. */
export interface RunConnection extends LiveSource {
  /** Opens a tap on `connection`; rejects with the server's refusal (an unknown connection). */
  tap(connection: string, listener: (record: TapRecord) => void): Promise<() => void>;
  /**
   * Once `closed` has settled: why the run closed the connection — `quit` (its pipeline quit, or
   * this side closed it) or `lost` (the server went away: its process died, or the network), with
   * what the close said. Undefined while open.
   */
  ending(): { how: 'quit' | 'lost'; reason: string } | undefined;
}

/** Connects to a run's WebSocket; resolves after its hello. */
export async function connectRun(target: RunTarget): Promise<RunConnection> {
  const Socket = await webSocketClass();
  const wsUrl = `${target.url.replace(/^http/i, 'ws')}${API_PREFIX}/ws?token=${encodeURIComponent(target.token)}`;
  const socket = new Socket(wsUrl);
  const listeners = new Set<(message: ServerMessage) => void>();
  const pending = new Map<number, (result: CommandResult) => void>();
  const taps = new Map<number, (record: TapRecord) => void>();
  let nextId = 1;
  let latest: PipelineMetrics | undefined;
  let ending: { how: 'quit' | 'lost'; reason: string } | undefined;
  let endClosed: () => void = () => {};
  const closed = new Promise<void>((resolve) => {
    endClosed = resolve;
  });
  const hello = await new Promise<Extract<ServerMessage, { type: 'hello' }>>((resolve, reject) => {
    socket.onmessage = (event) => {
      const message = JSON.parse(String(event.data)) as ServerMessage;
      if (message.type === 'hello') {
        resolve(message);
        return;
      }
      if (message.type === 'metrics') latest = message.metrics;
      if (message.type === 'result') {
        pending.get(message.id)?.(message.result);
        pending.delete(message.id);
      }
      if (message.type === 'tap') taps.get(message.tap)?.(message.record);
      for (const listener of [...listeners]) listener(message);
    };
    socket.onerror = () => {
      reject(
        new ControlError(
          `${describe(target)} does not answer on its WebSocket; is it still running? improv list shows what runs`,
        ),
      );
    };
    socket.onclose = (event) => {
      const reason = event.code === 1006 ? 'the server went away' : event.reason || `code ${event.code}`;
      ending = { how: event.code === 1000 ? 'quit' : 'lost', reason };
      reject(new ControlError(`${describe(target)} closed the connection (${reason}); check the token`));
      for (const resolve of pending.values())
        resolve({ ok: false, code: 'failed', message: `the connection closed (${reason})` });
      pending.clear();
      endClosed();
    };
  });
  const post = (message: ClientMessage) => {
    if (socket.readyState === 1) socket.send(JSON.stringify(message));
  };
  const call = (send: (id: number) => ClientMessage) =>
    new Promise<CommandResult>((resolve) => {
      const id = nextId++;
      pending.set(id, resolve);
      post(send(id));
      if (socket.readyState !== 1) {
        pending.delete(id);
        resolve({ ok: false, code: 'failed', message: 'the connection is closed' });
      }
    });
  const info: RunInfo = hello.info;
  const graph: GraphInfo = hello.graph;
  return {
    info,
    graph,
    status: hello.status,
    closed,
    ending: () => ending,
    latest: () => latest,
    on(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    command: (line) => call((id) => ({ type: 'command', id, line })),
    subscribe(options) {
      post({ type: 'subscribe', ...options });
    },
    async tap(connection, listener) {
      let tapId = 0;
      const result = await call((id) => {
        tapId = id;
        taps.set(id, listener);
        return { type: 'tap', tap: id, connection };
      });
      if (!result.ok) {
        taps.delete(tapId);
        throw new ControlError(result.message);
      }
      return () => {
        taps.delete(tapId);
        post({ type: 'untap', tap: tapId });
      };
    },
    close() {
      socket.close();
    },
  };
}
